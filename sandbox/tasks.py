"""Sandbox tasks: real moto ``Task`` objects walked through the ECS task lifecycle.

A task's simulator state lives on the moto object itself (``task._sandbox``), so
``POST /moto-api/reset`` forgets it together with the task. Time is counted in simulator
ticks; every transition takes at least one tick, as ECS never jumps states in one read.
"""

from __future__ import annotations

import contextlib
import enum
import uuid
from dataclasses import dataclass
from typing import Any

from moto.core.utils import utcnow
from moto.ec2 import ec2_backends
from moto.ecs.models import Cluster, Container, EC2ContainerServiceBackend, Task, TaskDefinition

from sandbox.behaviour import Behaviour, pull_error, seconds_to_ticks

# A task counts as healthy (may replace an old one, resets the circuit breaker) only after
# running this long; a crashing container exits before that.
STABLE_TICKS = 3
CRASH_AFTER_TICKS = 2
FAIL_AFTER_TICKS = 2

ESSENTIAL_EXITED = "Essential container in task exited"

_STOP_WALK = {
    "PROVISIONING": "DEPROVISIONING",
    "PENDING": "DEPROVISIONING",
    "ACTIVATING": "DEPROVISIONING",
    "RUNNING": "DEACTIVATING",
    "DEACTIVATING": "STOPPING",
    "STOPPING": "DEPROVISIONING",
    "DEPROVISIONING": "STOPPED",
}


class Change(enum.Enum):
    NONE = "none"
    RUNNING = "running"  # just became RUNNING
    HEALTHY = "healthy"  # has been RUNNING for STABLE_TICKS
    EXITED = "exited"  # stopped on its own (failed to start, crashed, finished)
    STOPPED = "stopped"  # reached STOPPED


@dataclass
class TaskSim:
    behaviour: Behaviour
    deployment_id: str | None
    next_tick: int
    tick_seconds: float
    running_since: int | None = None
    exit_at: int | None = None
    healthy: bool = False
    registered: bool = False  # with the service's target groups
    failed: bool = False  # stopped on its own without ever being healthy


def sim_of(task: Task) -> TaskSim:
    state: TaskSim = task._sandbox  # type: ignore[attr-defined]
    return state


def is_alive(task: Task) -> bool:
    return task.desired_status == "RUNNING"


def _containers(task: Task, td: TaskDefinition) -> list[Container]:
    containers = []
    for definition in td.container_definitions:
        container = Container(td)
        container.name = definition.get("name")
        container.image = definition.get("image")
        container.cpu = definition.get("cpu", 0)
        container.memory = definition.get("memory")
        container.task_arn = task.task_arn
        container.container_arn = (
            f"arn:aws:ecs:{task.region_name}:{task._account_id}:container/"
            f"{task.cluster_name}/{task.id}/{uuid.uuid4()}"
        )
        container.health_status = "UNKNOWN"
        container.exitCode = None
        container.reason = None
        container.last_status = "PENDING"
        containers.append(container)
    return containers


def _availability_zone(task: Task) -> str | None:
    for attachment in task.attachments:
        for detail in attachment.get("details", []):
            if detail.get("name") == "subnetId":
                try:
                    subnet = ec2_backends[task._account_id][task.region_name].get_subnet(
                        detail["value"]
                    )
                except Exception:  # the subnet was deleted meanwhile: leave the AZ out
                    return None
                return str(subnet.availability_zone)
    return None


def prepare(
    task: Task, td: TaskDefinition, behaviour: Behaviour, deployment_id: str | None,
    tick: int, tick_seconds: float,
) -> None:
    """Turn a freshly built moto task into a sandbox task at PROVISIONING."""
    # moto walks tasks one state per DescribeTasks call; the simulator owns the walk.
    task._transitions = []
    task.last_status = "PROVISIONING"
    task.desired_status = "RUNNING"
    task.stopped_reason = None
    task.stop_code = None
    task.created_at = utcnow()
    task.version = 1
    task.cpu = td.cpu
    task.memory = td.memory
    task.health_status = "UNKNOWN"
    task.connectivity = None
    task.platform_family = "Linux" if task.launch_type != "EC2" else None
    if task.launch_type == "FARGATE" and task.platform_version in (None, "", "LATEST"):
        task.platform_version = "1.4.0"
    task.availability_zone = _availability_zone(task)
    task.containers = _containers(task, td)
    task._sandbox = TaskSim(
        behaviour=behaviour, deployment_id=deployment_id, next_tick=tick + 1,
        tick_seconds=tick_seconds,
    )


def new_service_task(
    backend: EC2ContainerServiceBackend,
    cluster: Cluster,
    td: TaskDefinition,
    *,
    service_name: str,
    deployment_id: str,
    launch_type: str,
    network_configuration: dict[str, Any] | None,
    platform_version: str | None,
    behaviour: Behaviour,
    tick: int,
    tick_seconds: float,
) -> Task:
    task = Task(
        cluster=cluster,
        task_definition=td,
        container_instance_arn=None,
        resource_requirements=None,
        backend=backend,
        group=f"service:{service_name}",
        launch_type=launch_type,
        started_by=deployment_id,
        networking_configuration=network_configuration or None,
        platform_version=platform_version,
    )
    # Real task ids are 32 hex digits; moto's are dashed UUIDs.
    task.id = uuid.uuid4().hex
    prepare(task, td, behaviour, deployment_id, tick, tick_seconds)
    backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
    return task


def adopt_run_task(
    backend: EC2ContainerServiceBackend, task: Task, behaviour: Behaviour,
    tick: int, tick_seconds: float,
) -> None:
    """Take over a task moto's RunTask just created."""
    cluster_tasks = backend.tasks[task.cluster_name]
    cluster_tasks.pop(task.task_arn, None)
    task.id = uuid.uuid4().hex
    td = backend.describe_task_definition(task.task_definition_arn)
    prepare(task, td, behaviour, None, tick, tick_seconds)
    cluster_tasks[task.task_arn] = task


def request_stop(task: Task, tick: int, stop_code: str, reason: str) -> None:
    """The scheduler or a user stops the task; it walks down to STOPPED from here."""
    if not is_alive(task):
        return
    task.desired_status = "STOPPED"
    task.stop_code = stop_code
    task.stopped_reason = reason
    task.stopping_at = utcnow()
    task.version += 1
    sim_of(task).next_tick = tick + 1


def _exit(task: Task, tick: int, stop_code: str, reason: str, exit_codes: bool) -> None:
    sim = sim_of(task)
    now = utcnow()
    task.desired_status = "STOPPED"
    task.stop_code = stop_code
    task.stopped_reason = reason
    task.stopping_at = now
    task.execution_stopped_at = now
    sim.failed = not sim.healthy
    plans = {p.name: p for p in sim.behaviour.containers}
    for container in task.containers:
        plan = plans.get(container.name)
        container.last_status = "STOPPED"
        if sim.behaviour.fail_image is not None and container.image == sim.behaviour.fail_image:
            container.reason = pull_error(container.image)
        elif exit_codes:
            if container.name == sim.behaviour.crash_container:
                container.exitCode = 1
            else:
                container.exitCode = plan.exit_code if plan else 0
                if plan and plan.exit_reason:
                    container.reason = plan.exit_reason[:1024]
    sim.next_tick = tick + 1


def _to_running(task: Task, tick: int) -> None:
    sim = sim_of(task)
    now = utcnow()
    task.last_status = "RUNNING"
    task.started_at = now
    task.connectivity = "CONNECTED"
    task.connectivity_at = now
    for container in task.containers:
        container.last_status = "RUNNING"
        container.runtime_id = f"{task.id}-{uuid.uuid4().int % 10**10}"
    sim.running_since = tick
    if sim.behaviour.crash_container is not None:
        sim.exit_at = tick + CRASH_AFTER_TICKS
    else:
        runs = [
            p.run_seconds for p in sim.behaviour.containers
            if p.essential and p.run_seconds is not None
        ]
        if runs:
            sim.exit_at = tick + seconds_to_ticks(min(runs), sim.tick_seconds)


def _walk_down(task: Task, tick: int) -> Change:
    sim = sim_of(task)
    nxt = _STOP_WALK.get(task.last_status)
    if nxt is None:
        return Change.NONE
    now = utcnow()
    was_running = task.last_status == "RUNNING"
    task.last_status = nxt
    task.version += 1
    sim.next_tick = tick + 1
    if was_running or nxt == "DEPROVISIONING":
        task.execution_stopped_at = getattr(task, "execution_stopped_at", None) or now
        for container in task.containers:
            if container.last_status == "RUNNING" and container.exitCode is None:
                container.exitCode = 0
            container.last_status = "STOPPED"
    if nxt != "STOPPED":
        return Change.NONE
    task.stopped_at = now
    _release_network(task)
    return Change.STOPPED


def _release_network(task: Task) -> None:
    # ECS deletes a task's ENI when it stops; keeping them would grow EC2 without bound.
    ec2 = ec2_backends[task._account_id][task.region_name]
    for attachment in task.attachments:
        attachment["status"] = "DELETED"
        for detail in attachment.get("details", []):
            if detail.get("name") == "networkInterfaceId":
                # already gone after a reset, or deleted by a user
                with contextlib.suppress(Exception):
                    ec2.delete_network_interface(detail["value"])


def step(task: Task, tick: int) -> Change:
    """Advance the task by at most one state; returns what happened."""
    sim = sim_of(task)
    status = task.last_status
    if status == "STOPPED":
        return Change.NONE
    if not is_alive(task):
        if tick < sim.next_tick:
            return Change.NONE
        return _walk_down(task, tick)
    if status == "RUNNING":
        if sim.exit_at is not None and tick >= sim.exit_at:
            _exit(task, tick, "EssentialContainerExited", ESSENTIAL_EXITED, exit_codes=True)
            return Change.EXITED
        if not sim.healthy and sim.running_since is not None and (
            tick - sim.running_since >= STABLE_TICKS
        ):
            sim.healthy = True
            return Change.HEALTHY
        return Change.NONE
    if tick < sim.next_tick:
        return Change.NONE
    task.version += 1
    if status == "PROVISIONING":
        task.last_status = "PENDING"
        task.pull_started_at = utcnow()
        sim.next_tick = tick + (
            FAIL_AFTER_TICKS if sim.behaviour.fail_image else sim.behaviour.pending_ticks
        )
        return Change.NONE
    if status == "PENDING":
        if sim.behaviour.fail_image is not None:
            _exit(task, tick, "TaskFailedToStart", pull_error(sim.behaviour.fail_image),
                  exit_codes=False)
            return Change.EXITED
        task.last_status = "ACTIVATING"
        task.pull_stopped_at = utcnow()
        sim.next_tick = tick + 1
        return Change.NONE
    if status == "ACTIVATING":
        _to_running(task, tick)
        return Change.RUNNING
    return Change.NONE
