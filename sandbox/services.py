"""The ECS service scheduler, imitated: deployments, rolling replacement, scaling, the
deployment circuit breaker and rollback, draining on delete.

Its state lives on the moto ``Service`` (``service._sandbox``) and is rendered into the
attributes moto serialises (``deployments``, ``runningCount``, ``events`` ...). Every
function here runs under the sandbox lock, either in a request thread (create, update,
delete) or in the simulator thread (``step``).
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.core.utils import utcnow
from moto.ecs.models import EC2ContainerServiceBackend, Service, Task
from moto.elbv2.models import elbv2_backends

from sandbox import events, tasks
from sandbox.behaviour import behaviour_for
from sandbox.tasks import Change, is_alive, sim_of

IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
FAILED = "FAILED"

DEFAULT_DEPLOYMENT_CONFIGURATION: dict[str, Any] = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}

# UpdateService fields that start a new deployment (all others, desiredCount included, do not).
DEPLOYMENT_FIELDS = (
    "networkConfiguration",
    "platformVersion",
    "loadBalancers",
    "serviceRegistries",
    "serviceConnectConfiguration",
    "vpcLatticeConfigurations",
    "volumeConfigurations",
)

_rng = random.Random()


def new_deployment_id() -> str:
    return f"ecs-svc/{_rng.randint(10**18, 2**63 - 1)}"


def in_progress_reason(deployment_id: str) -> str:
    return f"ECS deployment {deployment_id} in progress."


def completed_reason(deployment_id: str) -> str:
    return f"ECS deployment {deployment_id} completed."


CIRCUIT_BREAKER_FAILED = "ECS deployment circuit breaker: tasks failed to start."


def rolling_back_reason(deployment_id: str) -> str:
    return f"ECS deployment circuit breaker: rolling back to deploymentId {deployment_id}."


def failure_threshold(desired: int) -> int:
    return min(200, max(3, math.ceil(0.5 * desired)))


@dataclass
class Deployment:
    id: str
    task_definition: str
    launch_type: str
    platform_version: str | None
    network_configuration: dict[str, Any] | None
    desired: int
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    rollout_state: str = IN_PROGRESS
    rollout_reason: str = ""
    failed_tasks: int = 0
    consecutive_failures: int = 0
    next_launch_tick: int = 0
    had_healthy: bool = False
    tasks: list[Task] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.rollout_reason:
            self.rollout_reason = in_progress_reason(self.id)

    def alive(self) -> list[Task]:
        return [t for t in self.tasks if is_alive(t)]

    def healthy(self) -> list[Task]:
        return [t for t in self.tasks if is_alive(t) and sim_of(t).healthy]

    def render(self, status: str) -> dict[str, Any]:
        running = sum(1 for t in self.tasks if is_alive(t) and t.last_status == "RUNNING")
        pending = sum(1 for t in self.tasks if is_alive(t) and t.last_status != "RUNNING")
        return {
            "id": self.id,
            "status": status,
            "taskDefinition": self.task_definition,
            "desiredCount": self.desired,
            "pendingCount": pending,
            "runningCount": running,
            "failedTasks": self.failed_tasks,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "launchType": self.launch_type,
            "platformVersion": self.platform_version,
            "platformFamily": "Linux" if self.launch_type == "FARGATE" else None,
            "networkConfiguration": self.network_configuration,
            "rolloutState": self.rollout_state,
            "rolloutStateReason": self.rollout_reason,
        }


@dataclass
class ServiceSim:
    deployments: list[Deployment]
    last_completed: Deployment | None = None
    steady: bool = False


def state_of(service: Service) -> ServiceSim | None:
    state: ServiceSim | None = getattr(service, "_sandbox", None)
    return state


def _deployment_for(service: Service, desired: int) -> Deployment:
    return Deployment(
        id=new_deployment_id(),
        task_definition=str(service.task_definition),
        launch_type=service.launch_type or "FARGATE",
        platform_version=(
            service.platform_version
            or ("LATEST" if service.launch_type == "FARGATE" else None)
        ),
        network_configuration=copy.deepcopy(service.network_configuration) or None,
        desired=desired,
    )


def deployment_configuration(service: Service) -> dict[str, Any]:
    config: dict[str, Any] = getattr(service, "deployment_configuration", None) or {}
    return config


def render(service: Service) -> None:
    state = state_of(service)
    if state is None:
        return
    rendered = [
        d.render("PRIMARY" if i == 0 else "ACTIVE") for i, d in enumerate(state.deployments)
    ]
    service.deployments = rendered
    service.running_count = sum(d["runningCount"] for d in rendered)
    service.pending_count = sum(d["pendingCount"] for d in rendered)
    if state.deployments:
        service.task_definition = state.deployments[0].task_definition


def adopt_new_service(service: Service, params: dict[str, Any]) -> None:
    """CreateService: keep what moto drops and start the first deployment."""
    config = copy.deepcopy(DEFAULT_DEPLOYMENT_CONFIGURATION)
    given = params.get("deploymentConfiguration") or {}
    config.update(copy.deepcopy(given))
    service.deployment_configuration = config
    service.health_check_grace_period_seconds = params.get("healthCheckGracePeriodSeconds")
    service.enable_execute_command = bool(params.get("enableExecuteCommand", False))
    service.enable_ecs_managed_tags = bool(params.get("enableECSManagedTags", False))
    for key, attr in (
        ("capacityProviderStrategy", "capacity_provider_strategy"),
        ("placementConstraints", "placement_constraints"),
        ("placementStrategy", "placement_strategy"),
    ):
        if params.get(key) is not None:
            setattr(service, attr, params[key])
    service.created_at = utcnow()
    service.pending_count = 0
    service.running_count = 0
    if service.deployment_controller.get("type", "ECS") != "ECS":
        return
    service._sandbox = ServiceSim([_deployment_for(service, service.desired_count)])
    render(service)


def comparable(service: Service) -> dict[str, Any]:
    """The deployment-triggering settings of a service, to compare before/after an update."""
    return {
        "taskDefinition": service.task_definition,
        "networkConfiguration": copy.deepcopy(service.network_configuration),
        "platformVersion": service.platform_version,
        "loadBalancers": copy.deepcopy(service.load_balancers),
        "serviceRegistries": copy.deepcopy(service.service_registries),
    }


def apply_update(
    service: Service, params: dict[str, Any], before: dict[str, Any],
    previous_config: dict[str, Any],
) -> None:
    """UpdateService, after moto stored the fields: decide whether it is a new deployment."""
    if params.get("deploymentConfiguration") is not None:
        merged = copy.deepcopy(previous_config or DEFAULT_DEPLOYMENT_CONFIGURATION)
        merged.update(copy.deepcopy(params["deploymentConfiguration"]))
        service.deployment_configuration = merged
    state = state_of(service)
    if state is None:
        return
    trigger = bool(params.get("forceNewDeployment"))
    trigger = trigger or service.task_definition != before["taskDefinition"]
    after = comparable(service)
    for key in DEPLOYMENT_FIELDS:
        if params.get(key) is not None and after.get(key, params[key]) != before.get(key):
            trigger = True
    if trigger:
        state.deployments.insert(0, _deployment_for(service, service.desired_count))
        state.steady = False
    elif state.deployments and state.deployments[0].rollout_state != FAILED:
        state.deployments[0].desired = service.desired_count
        state.deployments[0].updated_at = utcnow()
    render(service)


def start_draining(service: Service) -> None:
    """DeleteService: ECS keeps the service DRAINING until its tasks are gone."""
    service.status = "DRAINING"
    service.desired_count = 0
    state = state_of(service)
    if state is None:
        service.status = "INACTIVE"
        return
    for d in state.deployments:
        d.desired = 0
    render(service)


class Controller:
    """Steps every simulated service of one ECS backend by one tick."""

    def __init__(self, backend: EC2ContainerServiceBackend, tick: int, tick_seconds: float):
        self.backend = backend
        self.tick = tick
        self.tick_seconds = tick_seconds

    def step(self, service: Service) -> None:
        state = state_of(service)
        if state is None or service.status == "INACTIVE":
            return
        registered: list[Task] = []
        deregistered: list[Task] = []
        primary = state.deployments[0]
        for deployment in state.deployments:
            for task in list(deployment.tasks):
                self._step_task(service, deployment, primary, task, registered, deregistered)

        self._circuit_breaker(service, state)
        primary = state.deployments[0]
        desired = service.desired_count if service.status == "ACTIVE" else 0
        if primary.rollout_state != FAILED:
            primary.desired = desired
        stopped_ids = self._scale_in(service, primary, deregistered)
        started_ids = self._launch(service, state, desired)
        stopped_ids += self._replace_old(service, state, desired, deregistered)
        for old in state.deployments[1:]:
            old.desired = len(old.alive())
        _record_events(service, started_ids, stopped_ids, registered, deregistered)

        state.deployments[1:] = [d for d in state.deployments[1:] if d.tasks]
        self._settle(service, state)
        if service.status == "DRAINING" and not any(d.tasks for d in state.deployments):
            service.status = "INACTIVE"
        render(service)

    def _step_task(self, service: Service, deployment: Deployment, primary: Deployment,
                   task: Task, registered: list[Task], deregistered: list[Task]) -> None:
        """Advance one task a tick and apply what changed to its deployment."""
        change = tasks.step(task, self.tick)
        if not is_alive(task) and self._deregister(service, task):
            # a user's StopTask, a crash or a scheduler stop: ECS drains the target
            deregistered.append(task)
        if change is Change.NONE:
            return
        deployment.updated_at = utcnow()
        if change is Change.RUNNING:
            if self._register(service, task):
                registered.append(task)
        elif change is Change.HEALTHY:
            deployment.consecutive_failures = 0
            if deployment is primary and primary.rollout_state == IN_PROGRESS:
                primary.had_healthy = True
                primary.failed_tasks = 0
        elif change is Change.EXITED:
            if sim_of(task).failed:
                deployment.failed_tasks += 1
                deployment.consecutive_failures += 1
                deployment.next_launch_tick = self.tick + min(
                    2 * deployment.consecutive_failures, 20
                )
        elif change is Change.STOPPED:
            deployment.tasks.remove(task)

    def _circuit_breaker(self, service: Service, state: ServiceSim) -> None:
        primary = state.deployments[0]
        breaker = deployment_configuration(service).get("deploymentCircuitBreaker") or {}
        if not breaker.get("enable") or primary.rollout_state != IN_PROGRESS:
            return
        if primary.had_healthy or primary.failed_tasks < failure_threshold(primary.desired):
            return
        primary.rollout_state = FAILED
        primary.rollout_reason = CIRCUIT_BREAKER_FAILED
        primary.updated_at = utcnow()
        events.add(service.events, events.deployment_failed(service.name, primary.id))
        previous = state.last_completed
        if not breaker.get("rollback") or previous is None or previous.id == primary.id:
            return
        events.add(service.events, events.rolling_back(service.name, previous.id))
        target = next((d for d in state.deployments if d.id == previous.id), None)
        if target is None:
            target = copy.copy(previous)
            target.tasks = []
            target.created_at = utcnow()
        else:
            state.deployments.remove(target)
        target.rollout_state = IN_PROGRESS
        target.rollout_reason = rolling_back_reason(previous.id)
        target.failed_tasks = 0
        target.consecutive_failures = 0
        target.had_healthy = False
        target.next_launch_tick = 0
        target.updated_at = utcnow()
        state.deployments.insert(0, target)
        state.steady = False

    def _scale_in(
        self, service: Service, primary: Deployment, deregistered: list[Task]
    ) -> list[str]:
        alive = primary.alive()
        extra = len(alive) - primary.desired
        if extra <= 0:
            return []
        # Not-yet-healthy tasks go first, newest first, as they serve nothing yet.
        victims = sorted(alive, key=lambda t: (sim_of(t).healthy, -t.created_at.timestamp()))
        victims = victims[:extra]
        return self._stop(service, victims, deregistered)

    def _launch(self, service: Service, state: ServiceSim, desired: int) -> list[str]:
        primary = state.deployments[0]
        if primary.rollout_state == FAILED or self.tick < primary.next_launch_tick:
            return []
        need = primary.desired - len(primary.alive())
        if need <= 0:
            return []
        config = deployment_configuration(service)
        max_total = math.floor(desired * int(config.get("maximumPercent", 200)) / 100)
        total_alive = sum(len(d.alive()) for d in state.deployments)
        count = min(need, max(0, max_total - total_alive))
        if count == 0 and not any(d.alive() for d in state.deployments[1:]):
            count = need  # a maximumPercent below 100 must not stop a service from starting
        started = []
        for _ in range(count):
            task = self._new_task(service, primary)
            if task is None:
                break
            primary.tasks.append(task)
            started.append(task.id)
        if started:
            primary.updated_at = utcnow()
        return started

    def _new_task(self, service: Service, deployment: Deployment) -> Task | None:
        try:
            td = self.backend.describe_task_definition(deployment.task_definition)
            cluster = self.backend.clusters[service.cluster_name]
            return tasks.new_service_task(
                self.backend, cluster, td,
                service_name=service.name,
                deployment_id=deployment.id,
                launch_type=deployment.launch_type,
                network_configuration=deployment.network_configuration,
                platform_version=deployment.platform_version,
                behaviour=behaviour_for(td.container_definitions),
                tick=self.tick,
                tick_seconds=self.tick_seconds,
            )
        except Exception as exc:  # surfaced as an ECS service event, as ECS does
            message = getattr(exc, "message", None) or str(exc)
            events.add(service.events, events.launch_failed(service.name, message))
            deployment.next_launch_tick = self.tick + 20
            return None

    def _replace_old(
        self, service: Service, state: ServiceSim, desired: int, deregistered: list[Task]
    ) -> list[str]:
        old = state.deployments[1:]
        if not old:
            return []
        victims: list[Task] = []
        for d in old:
            victims += [t for t in d.alive() if not sim_of(t).healthy]
        config = deployment_configuration(service)
        min_healthy = math.ceil(desired * int(config.get("minimumHealthyPercent", 100)) / 100)
        healthy_total = sum(len(d.healthy()) for d in state.deployments)
        spare = healthy_total - min_healthy
        primary = state.deployments[0]
        if spare <= 0 and primary.rollout_state != FAILED:
            max_total = math.floor(desired * int(config.get("maximumPercent", 200)) / 100)
            total_alive = sum(len(d.alive()) for d in state.deployments)
            blocked = total_alive >= max_total and len(primary.alive()) < primary.desired
            if blocked and not any(not sim_of(t).healthy for t in primary.alive()):
                spare = 1  # min 100 % / max 100 % would never progress otherwise
        for d in reversed(old):
            for task in d.healthy():
                if spare <= 0:
                    break
                victims.append(task)
                spare -= 1
        return self._stop(service, victims, deregistered)

    def _stop(self, service: Service, victims: list[Task], deregistered: list[Task]) -> list[str]:
        stopped_running = []
        for task in victims:
            was_running = task.last_status == "RUNNING"
            deployment_id = sim_of(task).deployment_id or task.started_by
            tasks.request_stop(
                task, self.tick, "ServiceSchedulerInitiated",
                f"Scaling activity initiated by (deployment {deployment_id})",
            )
            if self._deregister(service, task):
                deregistered.append(task)
            if was_running:
                stopped_running.append(task.id)
        return stopped_running

    def _settle(self, service: Service, state: ServiceSim) -> None:
        primary = state.deployments[0]
        settled = (
            len(state.deployments) == 1
            and primary.rollout_state != FAILED
            and len(primary.tasks) == primary.desired
            and all(is_alive(t) and sim_of(t).healthy for t in primary.tasks)
            and service.status == "ACTIVE"
        )
        if not settled:
            state.steady = False
            return
        if primary.rollout_state == IN_PROGRESS:
            primary.rollout_state = COMPLETED
            primary.rollout_reason = completed_reason(primary.id)
            primary.updated_at = utcnow()
            events.add(service.events, events.deployment_completed(service.name, primary.id))
            snapshot = copy.copy(primary)
            snapshot.tasks = []
            state.last_completed = snapshot
        if not state.steady:
            events.add(service.events, events.steady_state(service.name))
            state.steady = True

    def _register(self, service: Service, task: Task) -> bool:
        return self._targets(service, task, register=True)

    def _deregister(self, service: Service, task: Task) -> bool:
        if not sim_of(task).registered:
            return False
        return self._targets(service, task, register=False)

    def _targets(self, service: Service, task: Task, register: bool) -> bool:
        balancers = [lb for lb in service.load_balancers or [] if lb.get("targetGroupArn")]
        if not balancers:
            return False
        ip = _private_ip(task)
        if ip is None:  # no awsvpc ENI: nothing an ip target group could point at
            return False
        elbv2 = elbv2_backends[task._account_id][task.region_name]
        for lb in balancers:
            target = {"Id": ip, "Port": lb.get("containerPort")}
            try:
                if register:
                    elbv2.register_targets(lb["targetGroupArn"], [target])
                else:
                    elbv2.deregister_targets(lb["targetGroupArn"], [target])
            except Exception:  # target group deleted or never created: ECS only logs it
                pass
        sim_of(task).registered = register
        return True


def _private_ip(task: Task) -> str | None:
    for attachment in task.attachments:
        for detail in attachment.get("details", []):
            if detail.get("name") == "privateIPv4Address":
                return str(detail["value"])
    return None


def _by_target_group(service: Service, changed: list[Task]) -> dict[str, int]:
    if not changed:
        return {}
    return {
        lb["targetGroupArn"]: len(changed)
        for lb in service.load_balancers or []
        if lb.get("targetGroupArn")
    }


def _record_events(service: Service, started_ids: list[str], stopped_ids: list[str],
                   registered: list[Task], deregistered: list[Task]) -> None:
    """One tick's service events, in the order ECS shows them."""
    name = service.name
    if started_ids:
        events.add(service.events, events.started(name, started_ids))
    for tg, count in _by_target_group(service, registered).items():
        events.add(service.events, events.registered(name, count, tg))
    if stopped_ids:
        events.add(service.events, events.stopped(name, stopped_ids))
    for tg, count in _by_target_group(service, deregistered).items():
        events.add(service.events, events.deregistered(name, count, tg))
