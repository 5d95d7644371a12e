"""Whether a service is still as a deployment left it, before its rollback writes.

A rollback restores what its deployment replaced, or deletes what it created. When someone
deployed the service since, doing that would destroy their work (issue 17: a requested
rollback of a long-superseded execution deleted the live service). So every rollback step
first compares the service's PRIMARY deployment with what its deployment left behind and
refuses when they differ. Pure: a DescribeServices answer in, a refusal (or None) out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agent.context import TaskFailed

DESIRED_COUNT = "ecs:service:DesiredCount"


@dataclass(frozen=True)
class LeftBehind:
    """What a deployment left on one service.

    ``task_definitions``: the one it deployed first, then any it accepts as its own (the
    one it replaced, which ECS's circuit breaker rolls back to). ``desired_counts``: the
    counts it left (empty: not checked); ``scaling``: (min, max) of the autoscaling it
    attached, which may move the count within those bounds; ``scaling_optional``: no
    autoscaling is as good as ``scaling`` (a later step of the deployment, or of an
    earlier attempt at the rollback, takes it off or attaches it, and may have stopped
    before it did)."""

    service_name: str
    task_definitions: tuple[str, ...]
    deployment_id: str | None = None
    desired_counts: tuple[int, ...] = ()
    scaling: tuple[int, int] | None = None
    scaling_optional: bool = False


def short_name(arn: str | None) -> str:
    """``web:17`` for a task definition ARN (what people recognise in a message)."""
    return "(none)" if not arn else arn.rsplit("/", 1)[-1]


def scaling_bounds(targets: Iterable[dict[str, Any]]) -> tuple[int, int] | None:
    """(min, max) desired count of the first scalable target on a service's count."""
    for target in targets:
        if target.get("ScalableDimension", DESIRED_COUNT) == DESIRED_COUNT:
            low, high = target.get("MinCapacity"), target.get("MaxCapacity")
            if low is not None and high is not None:
                return int(low), int(high)
    return None


def _primary(service: dict[str, Any]) -> dict[str, Any]:
    deployments = service.get("deployments") or []
    found = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    return found or {"taskDefinition": service.get("taskDefinition")}


def _count_refusal(name: str, live: int, left: LeftBehind) -> str | None:
    if left.scaling is not None:
        low, high = left.scaling
        if low <= live <= high or live in left.desired_counts:
            return None
        return (f"service {name}'s desired count is now {live}, outside the {low}..{high} "
                "its autoscaling allows: someone changed it since")
    if not left.desired_counts or live in left.desired_counts:
        return None
    ours = " or ".join(str(c) for c in left.desired_counts)
    return (f"service {name}'s desired count is now {live}; this deployment left {ours}: "
            "someone changed it since")


def refusal(service: dict[str, Any] | None, left: LeftBehind) -> str | None:
    """Why a rollback must not write to ``service``, or None when it is as ``left``.

    A service that is not ACTIVE is not judged here: each step knows what a missing or
    draining service means for it."""
    if service is None or str(service.get("status", "ACTIVE")) != "ACTIVE":
        return None
    name = left.service_name
    primary = _primary(service)
    ours = left.deployment_id is not None and primary.get("id") == left.deployment_id
    running = primary.get("taskDefinition")
    if not ours and running not in left.task_definitions:
        if not left.task_definitions:
            return (f"service {name} is ACTIVE running {short_name(running)}, but this "
                    "deployment did not get as far as deploying it: it is someone else's; "
                    "refusing to roll back over it")
        return (f"service {name}'s PRIMARY deployment now runs {short_name(running)}; this "
                f"deployment left {short_name(left.task_definitions[0])}: someone deployed "
                "since; refusing to roll back over it")
    reason = _count_refusal(name, int(service.get("desiredCount") or 0), left)
    return None if reason is None else f"{reason}; refusing to roll back over it"


def _bounds(bounds: tuple[int, int] | None) -> str:
    return "none" if bounds is None else f"{bounds[0]}..{bounds[1]}"


def scaling_refusal(live_targets: Iterable[dict[str, Any]], left: LeftBehind) -> str | None:
    """Why the service's autoscaling (DescribeScalableTargets) is not the one this
    deployment left, or None."""
    live = scaling_bounds(live_targets)
    if live == left.scaling or (live is None and left.scaling_optional):
        return None
    ours = _bounds(left.scaling)
    if left.scaling_optional and left.scaling is not None:
        ours += " or none"
    return (f"service {left.service_name}'s autoscaling is now {_bounds(live)}; this "
            f"deployment left {ours}: someone changed it since; refusing to roll back "
            "over it")


def check(service: dict[str, Any] | None, left: LeftBehind,
          live_targets: Iterable[dict[str, Any]] | None = None) -> None:
    """Raise TaskFailed (the step fails, nothing written) when ``refusal`` (or, given the
    live scalable targets, ``scaling_refusal``) says so."""
    reason = refusal(service, left)
    if reason is None and live_targets is not None and service is not None:
        reason = scaling_refusal(live_targets, left)
    if reason is not None:
        raise TaskFailed(reason[0].upper() + reason[1:] + ". Deploy the version you want "
                         "instead, or check who changed the service.")
