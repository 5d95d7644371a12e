"""Has *our* deployment reached steady state? A pure verdict, then the polling loop.

``assess`` decides from one DescribeServices answer, the deployment id this task created
(from the Create/UpdateService answer) and what was already printed. It never trusts
"one deployment and running == desired" alone: after a circuit-breaker rollback the
service is exactly that, on the previous task definition, and that is a failure.
``wait_for_steady_state`` polls through a shared describer (see ``describe.py``), prints
each service event once, and on failure lists why the new tasks stopped.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from agent.context import TaskFailed, TaskTimedOut, UnitLog
from tasks.aws.ports import EcsClient
from tasks.ecs.errors import aws_errors

CIRCUIT_BREAKER_ROLLBACK = "ECS deployment circuit breaker: rolling back"
_SCALE_IN_REASON = "Scaling activity initiated by"
_DEPLOYMENT_IN_EVENT = re.compile(r"\(deployment (ecs-svc/\d+)\)")
_ROLLING_BACK_TO = re.compile(r"rolling back to deployment (ecs-svc/\d+)")
# Events report failure with these phrases (see ecs-api-facts.md, section 2).
_FAILED_EVENT = "deployment failed"
_ROLLING_BACK_EVENT = "rolling back to deployment"


class Phase(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class ServiceEvent:
    id: str
    created_at: datetime
    message: str


@dataclass(frozen=True)
class Counts:
    running: int
    desired: int
    pending: int


@dataclass(frozen=True)
class Target:
    """What this task deployed: the deployment it created and its task definition."""

    service_name: str
    deployment_id: str | None
    task_definition: str


@dataclass(frozen=True)
class Verdict:
    phase: Phase
    reason: str = ""
    new_events: tuple[ServiceEvent, ...] = ()
    counts: Counts | None = None
    # One line on where our deployment stands, for progress and timeout messages.
    summary: str = ""


def same_task_definition(a: str | None, b: str | None) -> bool:
    """Compare task definitions given as ARNs or ``family:revision``."""
    if not a or not b:
        return False
    return a == b or a.rsplit("/", 1)[-1] == b.rsplit("/", 1)[-1]


def events_of(service: dict[str, Any] | None) -> list[ServiceEvent]:
    """The service's events, newest first as ECS returns them."""
    result = []
    for raw in (service or {}).get("events") or []:
        if not raw.get("id"):
            continue
        created = raw.get("createdAt")
        if not isinstance(created, datetime):
            created = datetime.now(UTC)
        elif created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        result.append(ServiceEvent(str(raw["id"]), created, str(raw.get("message", ""))))
    return result


def event_ids(service: dict[str, Any] | None) -> set[str]:
    """Ids to seed the seen set with, from a Create/UpdateService answer."""
    return {e.id for e in events_of(service)}


def new_events(service: dict[str, Any] | None, seen: Iterable[str],
               not_before: datetime | None = None) -> tuple[ServiceEvent, ...]:
    """Events not printed yet, oldest first. ECS returns newest first; we stop at the
    first event older than ``not_before`` (the deploy start less a clock-skew margin)."""
    seen = set(seen)
    fresh: list[ServiceEvent] = []
    for event in events_of(service):
        if not_before is not None and event.created_at < not_before:
            break
        if event.id not in seen:
            fresh.append(event)
    fresh.reverse()
    return tuple(fresh)


def _counts(deployment: dict[str, Any]) -> Counts:
    return Counts(int(deployment.get("runningCount") or 0),
                  int(deployment.get("desiredCount") or 0),
                  int(deployment.get("pendingCount") or 0))


def _describe(deployment: dict[str, Any]) -> str:
    c = _counts(deployment)
    text = (f"deployment {deployment.get('id', '?')} has {c.running}/{c.desired} running"
            f"{f', {c.pending} pending' if c.pending else ''}")
    if deployment.get("rolloutState"):
        text += f", rolloutState {deployment['rolloutState']}"
    return text


def _event_failure(events: Iterable[ServiceEvent], deployment_id: str | None) -> str | None:
    for event in events:
        text = event.message
        if _FAILED_EVENT in text:
            named = _DEPLOYMENT_IN_EVENT.search(text)
            # A failure event about some other (older) deployment is not ours.
            if named is None or deployment_id is None or named.group(1) == deployment_id:
                return text
        if _ROLLING_BACK_EVENT in text:
            back_to = _ROLLING_BACK_TO.search(text)
            # Rolling back *to* our deployment is what a rollback step waits for.
            if back_to is None or back_to.group(1) != deployment_id:
                return text
    return None


def assess(service: dict[str, Any] | None, target: Target, seen: Iterable[str] = (),
           not_before: datetime | None = None) -> Verdict:
    """Judge one DescribeServices answer (``None`` = the service is MISSING)."""
    name = target.service_name
    if service is None:
        return Verdict(Phase.FAILED, f"Service {name} no longer exists (MISSING)",
                       summary="service MISSING")
    events = new_events(service, seen, not_before)
    status = service.get("status", "ACTIVE")
    if status != "ACTIVE":
        return Verdict(Phase.FAILED, f"Service {name} is {status}: it was deleted while "
                       "the deployment was running", events, summary=f"service {status}")

    deployments: list[dict[str, Any]] = list(service.get("deployments") or [])
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    ours = next((d for d in deployments if target.deployment_id is not None
                 and d.get("id") == target.deployment_id), None)
    if ours is None and target.deployment_id is None:
        ours = primary
    counts = _counts(ours) if ours is not None else None
    summary = _describe(ours) if ours is not None else (
        f"deployment {target.deployment_id} is gone; "
        + (_describe(primary) if primary else "no deployments"))
    reason = _failure(target, ours, primary, events)
    if reason is not None:
        return Verdict(Phase.FAILED, reason, events, counts, summary)
    if ours is None or counts is None:
        return _by_service_counts(service, deployments, events)
    return _progress(service, deployments, ours, counts, summary, events)


def _failure(target: Target, ours: dict[str, Any] | None, primary: dict[str, Any] | None,
             events: tuple[ServiceEvent, ...]) -> str | None:
    """Why our deployment has failed (or was rolled back or superseded), or None."""
    name = target.service_name
    mine = ours or {}
    our_id = target.deployment_id or mine.get("id", "?")
    if mine.get("rolloutState") == "FAILED":
        why = mine.get("rolloutStateReason") or "rolloutState FAILED"
        return f"Deployment {our_id} of service {name} failed: {why}"
    # ECS's own words first: a failure event names the cause better than "superseded"
    # when the failed deployment has already drained away by the time we look.
    bad_event = _event_failure(events, target.deployment_id)
    if bad_event is not None:
        return f"Deployment {our_id} of service {name} failed: {bad_event}"
    if primary is not None and primary is not ours and str(
            primary.get("rolloutStateReason", "")).startswith(CIRCUIT_BREAKER_ROLLBACK):
        return (f"Deployment {our_id} of service {name} failed and ECS is rolling "
                f"back: {primary['rolloutStateReason']}")
    if target.deployment_id is not None and (primary is None or ours is not primary):
        other = primary.get("id", "?") if primary else "none"
        return (f"Deployment {our_id} of service {name} is no longer PRIMARY "
                f"(PRIMARY is {other}): it was rolled back or superseded")
    if primary is not None and primary.get("taskDefinition") and not same_task_definition(
            primary.get("taskDefinition"), target.task_definition):
        return (f"Service {name} runs task definition {primary['taskDefinition']}, "
                f"not {target.task_definition}: it was rolled back or superseded")
    return None


def _by_service_counts(service: dict[str, Any], deployments: list[dict[str, Any]],
                       events: tuple[ServiceEvent, ...]) -> Verdict:
    """No deployments at all (an external controller): only the service counts remain."""
    running = int(service.get("runningCount") or 0)
    desired = int(service.get("desiredCount") or 0)
    counts = Counts(running, desired, int(service.get("pendingCount") or 0))
    done = running == desired and not deployments
    return Verdict(Phase.SUCCEEDED if done else Phase.IN_PROGRESS, "", events, counts,
                   f"service has {running}/{desired} running")


def _progress(service: dict[str, Any], deployments: list[dict[str, Any]],
              ours: dict[str, Any], counts: Counts, summary: str,
              events: tuple[ServiceEvent, ...]) -> Verdict:
    only = len(deployments) == 1
    rollout = ours.get("rolloutState")
    # Without rolloutState (behind a Classic Load Balancer) a deployment at 0/0 is not
    # done while the service wants tasks: judge against the service's desired count too.
    wanted = int(service.get("desiredCount") or 0)
    steady = only and counts.running == counts.desired and (
        rollout == "COMPLETED" or (rollout is None and counts.running >= wanted))
    return Verdict(Phase.SUCCEEDED if steady else Phase.IN_PROGRESS, "", events, counts,
                   summary if only else f"{summary}; {len(deployments) - 1} older "
                   "deployment(s) still draining")


# --------------------------------------------------------------------------- the loop


class ServiceDescriber(Protocol):
    async def describe(self, service: str, *, delay: float) -> dict[str, Any] | None:
        """The service as DescribeServices shows it ``delay`` seconds from now
        (``None`` when MISSING)."""
        ...


@dataclass
class WatchState:
    """What one watch has printed so far; seed ``seen`` from the Create/UpdateService
    answer so old history is not replayed."""

    seen: set[str] = field(default_factory=set)
    counts: Counts | None = None
    announced_steady_wait: bool = False
    summary: str = ""


def human_duration(seconds: float) -> str:
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "",
             f"{secs}s" if secs or not (hours or minutes) else ""]
    return "".join(parts)


def print_progress(log: UnitLog, verdict: Verdict, state: WatchState, *, cluster: str,
                   service_name: str) -> None:
    """Print what changed since the last poll: new events, then counts."""
    source = f"ecs:service/{cluster}/{service_name}"
    for event in verdict.new_events:
        state.seen.add(event.id)
        log.aws_event(source=source, event_id=event.id, created_at=event.created_at,
                      message=event.message)
    counts = verdict.counts
    # Pending counts flicker as tasks move through their states; the line is about running.
    shown = state.counts
    if verdict.phase is Phase.FAILED:
        counts = None  # a failed deployment's counts drop to 0/0: noise next to the reason
    if counts is not None and (shown is None or (counts.running, counts.desired)
                               != (shown.running, shown.desired)):
        state.counts = counts
        log.info(f"Waiting for pending tasks to finish. {counts.running}/{counts.desired} "
                 "running ...")
    if verdict.summary:
        state.summary = verdict.summary
    if (counts is not None and counts.running == counts.desired
            and verdict.phase is not Phase.FAILED and not state.announced_steady_wait):
        state.announced_steady_wait = True
        log.info(f"Waiting for Service {service_name} to reach steady state")


async def wait_for_steady_state(
    *, describer: ServiceDescriber, ecs: EcsClient | None, log: UnitLog, cluster: str,
    target: Target, state: WatchState, poll_interval: float, give_up_after: float,
    not_before: datetime | None = None,
) -> dict[str, Any]:
    """Poll until our deployment succeeds (return the service) or fails (raise
    TaskFailed with the reason, after printing the stopped tasks of our deployment)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after
    name = target.service_name
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise _timed_out(name, give_up_after, state)
        try:
            async with asyncio.timeout(remaining):
                with aws_errors(f"DescribeServices for service {name} in cluster {cluster}"):
                    service = await describer.describe(name,
                                                       delay=min(poll_interval, remaining))
        except TimeoutError:
            raise _timed_out(name, give_up_after, state) from None
        verdict = assess(service, target, state.seen, not_before)
        print_progress(log, verdict, state, cluster=cluster, service_name=name)
        if verdict.phase is Phase.SUCCEEDED:
            log.info(f"Service {name} reached steady state")
            assert service is not None
            return service
        if verdict.phase is Phase.FAILED:
            stopped = await print_stopped_tasks(ecs, log, cluster, target.deployment_id)
            reason = verdict.reason
            if stopped:
                reason += f" (a task stopped: {stopped[0]})"
            raise TaskFailed(reason)


def _timed_out(name: str, timeout: float, state: WatchState) -> TaskTimedOut:
    where = state.summary or "DescribeServices had not answered yet"
    return TaskTimedOut(f"Service {name} did not reach steady state within "
                      f"{human_duration(timeout)}: {where}. Raise steadyStateTimeout if "
                      "the service needs longer, or check its events above.")


# --------------------------------------------------------------------------- diagnosis


def describe_stopped_task(task: dict[str, Any]) -> list[str]:
    """Log lines for one stopped task: why it stopped and how each container ended."""
    task_id = str(task.get("taskArn", "?")).rsplit("/", 1)[-1]
    reason = task.get("stoppedReason") or "no reason given"
    code = f" [{task['stopCode']}]" if task.get("stopCode") else ""
    lines = [f"- task {task_id}: {reason}{code}"]
    for container in task.get("containers") or []:
        parts = []
        if container.get("exitCode") is not None:
            parts.append(f"exit code {container['exitCode']}")
        if container.get("reason") and container["reason"] != task.get("stoppedReason"):
            parts.append(str(container["reason"]))
        if parts:
            lines.append(f"    container {container.get('name', '?')}: {', '.join(parts)}")
    return lines


async def print_stopped_tasks(ecs: EcsClient | None, log: UnitLog, cluster: str,
                              deployment_id: str | None, limit: int = 10) -> list[str]:
    """List the STOPPED tasks our deployment started; return their stopped reasons.
    A diagnosis must never hide the failure itself, so AWS errors here are only logged."""
    if deployment_id is None or ecs is None:
        return []
    try:
        arns: list[str] = []
        paginator = ecs.get_paginator("list_tasks")
        async for page in paginator.paginate(cluster=cluster, startedBy=deployment_id,
                                             desiredStatus="STOPPED"):
            arns.extend(page.get("taskArns", []))
        tasks: list[dict[str, Any]] = []
        for i in range(0, len(arns), 100):
            answer = await ecs.describe_tasks(cluster=cluster, tasks=arns[i:i + 100])
            tasks.extend(answer.get("tasks", []))
    except Exception as exc:
        log.warn(f"Could not list the stopped tasks of deployment {deployment_id}: {exc}")
        return []
    tasks = [t for t in tasks
             if not str(t.get("stoppedReason", "")).startswith(_SCALE_IN_REASON)]
    if not tasks:
        log.info(f"No stopped tasks were found for deployment {deployment_id}.")
        return []
    epoch = datetime.min.replace(tzinfo=UTC)
    tasks.sort(key=lambda t: t.get("stoppedAt") or t.get("createdAt") or epoch, reverse=True)
    log.info(f"Stopped tasks of deployment {deployment_id} ({len(tasks)}, newest first):")
    for task in tasks[:limit]:
        for line in describe_stopped_task(task):
            log.info(line)
    if len(tasks) > limit:
        log.info(f"... and {len(tasks) - limit} more")
    return [str(t.get("stoppedReason") or "no reason given") for t in tasks]
