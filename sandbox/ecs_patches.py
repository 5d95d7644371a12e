"""Hooks into moto 5.2 so its ECS answers like ECS.

Installed once per process (moto's state is process-wide). What changes:

- every moto request runs under ``runtime.LOCK`` (the simulator edits the same objects);
  optional ECS throttling per the published token buckets;
- CreateService refuses a name that is ACTIVE or DRAINING, keeps
  ``deploymentConfiguration`` and ``healthCheckGracePeriodSeconds``, and answers with the
  first deployment; UpdateService refuses non-ACTIVE services, stores the task definition as
  an ARN and answers with the new PRIMARY deployment when the change starts one;
  DeleteService leaves the service DRAINING until its tasks are gone;
- ListServices lists ACTIVE services only, paginated; DescribeServices takes at most 10;
- ListTasks filters by ``serviceName``, defaults to RUNNING, paginates; DescribeTasks looks in
  the given cluster only and reports unknown tasks as MISSING; StopTask walks the task down;
- RunTask on Fargate works without container-level memory, and its tasks are walked by the
  simulator instead of by moto's per-DescribeTasks state manager;
- CreateService, UpdateService and RunTask refuse a deregistered (INACTIVE) revision after
  a grace window, and a bare family means its latest ACTIVE revision (sandbox/revisions).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult, BaseResponse
from moto.ecs.exceptions import (
    ECSException,
    InvalidParameterException,
    ServiceNotFoundException,
)
from moto.ecs.models import EC2ContainerServiceBackend, Task
from moto.ecs.responses import DESCRIBE_TASKS_TAGS, EC2ContainerServiceResponse
from moto.moto_api._internal.responses import MotoAPIResponse
from moto.utilities.utils import get_partition

from sandbox import elbv2_patches, revisions, services, tasks
from sandbox.behaviour import behaviour_for
from sandbox.runtime import CLOCK, LOCK
from sandbox.throttle import Throttle

THROTTLE = Throttle()
_installed = False


class ServiceNotActiveException(ECSException):
    def __init__(self) -> None:
        super().__init__("ServiceNotActiveException", "Service was not ACTIVE.")


def install() -> None:
    global _installed
    with LOCK:
        if _installed:
            return
        _install_locking()
        _install_backend()
        _install_responses()
        elbv2_patches.install()
        _installed = True


# --- locking and throttling -------------------------------------------------------------


def _install_locking() -> None:
    call_action = BaseResponse.call_action

    @functools.wraps(call_action)
    def locked_call_action(self: BaseResponse) -> Any:
        with LOCK:
            if CLOCK.throttle and self.service_name == "ecs":
                allowed = THROTTLE.allow(self.current_account, self.region, self._get_action())
                if not allowed:
                    # Not an error shape in the ECS model, so moto's serializer would warn.
                    body = json.dumps({"__type": "ThrottlingException",
                                       "message": "Rate exceeded"})
                    headers = {"status": 400, "content-type": "application/x-amz-json-1.1"}
                    return 400, headers, body
            return call_action(self)

    BaseResponse.call_action = locked_call_action  # type: ignore[method-assign]

    reset_response = MotoAPIResponse.reset_response

    @functools.wraps(reset_response)
    def locked_reset(self: MotoAPIResponse, *args: Any, **kwargs: Any) -> Any:
        with LOCK:
            THROTTLE.reset()
            return reset_response(self, *args, **kwargs)

    MotoAPIResponse.reset_response = locked_reset  # type: ignore[method-assign]


# --- backend ----------------------------------------------------------------------------


def _install_backend() -> None:
    backend = EC2ContainerServiceBackend
    requirements = backend._calculate_task_resource_requirements

    def tolerant_requirements(task_definition: Any) -> dict[str, Any]:
        # Fargate needs no container-level memory; moto adds None and answers HTTP 500.
        definitions = [
            cd if any(k in cd for k in ("memory", "memoryReservation", "Memory",
                                        "MemoryReservation")) else {**cd, "memory": 0}
            for cd in task_definition.container_definitions
        ]
        shim = type("TaskDefinitionShim", (), {"container_definitions": definitions})()
        result: dict[str, Any] = requirements(shim)
        return result

    backend._calculate_task_resource_requirements = staticmethod(  # type: ignore[method-assign]
        tolerant_requirements
    )
    backend.list_tasks = _list_tasks  # type: ignore[method-assign]
    backend.list_services = _list_services(backend.list_services)  # type: ignore[method-assign]
    backend.describe_services = _describe_services(  # type: ignore[method-assign]
        backend.describe_services
    )
    backend.stop_task = _stop_task(backend.stop_task)  # type: ignore[method-assign]
    backend.describe_clusters = _describe_clusters(  # type: ignore[method-assign]
        backend.describe_clusters)
    revisions.install(backend)


def _find_task(backend: EC2ContainerServiceBackend, cluster: str, ref: str) -> Task | None:
    cluster_tasks = backend.tasks.get(cluster, {})
    found = cluster_tasks.get(ref)
    if found is not None:
        return found
    task_id = ref.split("/")[-1]
    prefix = f"arn:{get_partition(backend.region_name)}:ecs:{backend.region_name}:"
    for arn in (
        f"{prefix}{backend.account_id}:task/{cluster}/{task_id}",
        f"{prefix}{backend.account_id}:task/{task_id}",
    ):
        found = cluster_tasks.get(arn)
        if found is not None:
            return found
    return None


def _list_tasks(
    self: EC2ContainerServiceBackend,
    cluster_str: str | None = None,
    container_instance: str | None = None,
    family: str | None = None,
    started_by: str | None = None,
    service_name: str | None = None,
    desiredStatus: str | None = None,  # moto's keyword name
) -> list[Task]:
    cluster = self._get_cluster(cluster_str or "default")
    group = None
    if service_name:
        name = service_name.split("/")[-1]
        if f"{cluster.name}:{name}" not in self.services:
            raise ServiceNotFoundException()
        group = f"service:{name}"
    wanted = desiredStatus or "RUNNING"
    result = []
    for task in self.tasks.get(cluster.name, {}).values():
        if task.desired_status != wanted:
            continue
        if group is not None and task.group != group:
            continue
        if started_by and task.started_by != started_by:
            continue
        if family and task.task_definition_arn.split("/")[-1].rsplit(":", 1)[0] != family:
            continue
        if container_instance and container_instance not in (task.container_instance_arn or ""):
            continue
        result.append(task)
    return result


def _list_services(original: Callable[..., list[str]]) -> Callable[..., list[str]]:
    @functools.wraps(original)
    def list_services(self: EC2ContainerServiceBackend, cluster_str: str, *args: Any,
                      **kwargs: Any) -> list[str]:
        cluster = self._get_cluster(cluster_str)
        inactive = {
            s.arn for s in self.services.values()
            if s.cluster_name == cluster.name and s.status != "ACTIVE"
        }
        return [arn for arn in original(self, cluster_str, *args, **kwargs)
                if arn not in inactive]

    return list_services


def _describe_services(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def describe_services(self: EC2ContainerServiceBackend, cluster_str: str,
                          names: list[str]) -> Any:
        if not names:
            raise InvalidParameterException("Services cannot be empty.")
        if len(names) > 10:
            raise InvalidParameterException("service names can have at most 10 items.")
        return original(self, cluster_str, names)

    return describe_services


def _describe_clusters(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto leaves a cluster's counts at 0; ECS counts its ACTIVE services and its
    RUNNING and PENDING tasks (the look-ups show them)."""
    @functools.wraps(original)
    def describe_clusters(self: EC2ContainerServiceBackend, cluster_names: list[str]) -> Any:
        found, failures = original(self, cluster_names)
        for cluster in found:
            cluster.active_services_count = sum(
                1 for s in self.services.values()
                if s.cluster_name == cluster.name and s.status == "ACTIVE")
            alive = [t for t in self.tasks.get(cluster.name, {}).values()
                     if t.desired_status == "RUNNING"]
            cluster.running_tasks_count = sum(1 for t in alive if t.last_status == "RUNNING")
            cluster.pending_tasks_count = len(alive) - cluster.running_tasks_count
        return found, failures

    return describe_clusters


def _stop_task(original: Callable[..., Task]) -> Callable[..., Task]:
    @functools.wraps(original)
    def stop_task(self: EC2ContainerServiceBackend, cluster_str: str, task_str: str,
                  reason: str | None) -> Task:
        cluster = self._get_cluster(cluster_str)
        task = _find_task(self, cluster.name, task_str)
        if task is None:
            raise InvalidParameterException("The referenced task was not found.")
        if getattr(task, "_sandbox", None) is None:
            return original(self, cluster_str, task_str, reason)
        tasks.request_stop(task, CLOCK.tick, "UserInitiated", reason or "Task stopped by user")
        return task

    return stop_task


# --- responses --------------------------------------------------------------------------


def _install_responses() -> None:
    response = EC2ContainerServiceResponse
    response.create_service = _create_service(response.create_service)  # type: ignore[method-assign]
    response.update_service = _update_service(response.update_service)  # type: ignore[method-assign]
    response.delete_service = _delete_service(response.delete_service)  # type: ignore[method-assign]
    response.run_task = _run_task(response.run_task)  # type: ignore[method-assign]
    response.describe_tasks = _describe_tasks  # type: ignore[method-assign]
    response.list_tasks = _paginated_list_tasks  # type: ignore[method-assign]
    response.list_services = _paginated_list_services  # type: ignore[method-assign]


Method = Callable[[EC2ContainerServiceResponse], ActionResult]


def _create_service(original: Method) -> Method:
    @functools.wraps(original)
    def create_service(self: EC2ContainerServiceResponse) -> ActionResult:
        backend = self.ecs_backend
        cluster = backend._get_cluster(self._get_param("cluster", "default"))
        existing = backend.services.get(f"{cluster.name}:{self._get_param('serviceName')}")
        if existing is not None and existing.status == "ACTIVE":
            raise InvalidParameterException("Creation of service was not idempotent.")
        if existing is not None and existing.status == "DRAINING":
            raise InvalidParameterException("Unable to Start a service that is still Draining.")
        revisions.refuse_inactive(backend, self._get_param("taskDefinition"))
        result = original(self)
        services.adopt_new_service(result.result["service"], self._get_params())  # type: ignore[index]
        return result

    return create_service


def _update_service(original: Method) -> Method:
    @functools.wraps(original)
    def update_service(self: EC2ContainerServiceResponse) -> ActionResult:
        backend = self.ecs_backend
        params = self._get_params()
        service = backend._get_service(
            params.get("cluster", "default"), str(params.get("service", "")).split("/")[-1]
        )
        if service.status != "ACTIVE":
            raise ServiceNotActiveException()
        td = None
        if params.get("taskDefinition"):
            # before moto touches the service, so a bad reference changes nothing
            td = backend.describe_task_definition(params["taskDefinition"])
            revisions.refuse_inactive(backend, td.arn)
        before = services.comparable(service)
        config = dict(services.deployment_configuration(service))
        result = original(self)
        if td is not None:
            service.task_definition = td.arn
        services.apply_update(service, params, before, config)
        return result

    return update_service


def _delete_service(original: Method) -> Method:
    @functools.wraps(original)
    def delete_service(self: EC2ContainerServiceResponse) -> ActionResult:
        backend = self.ecs_backend
        service = backend._get_service(
            self._get_param("cluster", "default"), str(self._get_param("service", ""))
        )
        if service.status != "ACTIVE":
            raise ServiceNotActiveException()
        result = original(self)
        services.start_draining(service)
        return result

    return delete_service


def _run_task(original: Method) -> Method:
    @functools.wraps(original)
    def run_task(self: EC2ContainerServiceResponse) -> ActionResult:
        count = self._get_int_param("count", 1)
        if count is not None and not 1 <= count <= 10:
            raise InvalidParameterException("count must be between 1 and 10.")
        backend = self.ecs_backend
        revisions.refuse_inactive(backend, self._get_param("taskDefinition"))
        result = original(self)
        runs: dict[str, Task] = backend.__dict__.setdefault("_sandbox_runs", {})
        for task in result.result["tasks"]:  # type: ignore[index]
            td = backend.describe_task_definition(task.task_definition_arn)
            behaviour = behaviour_for(td.container_definitions, task.overrides, one_off=True)
            tasks.adopt_run_task(backend, task, behaviour, CLOCK.tick, CLOCK.tick_seconds)
            runs[task.task_arn] = task
        return result

    return run_task


def _describe_tasks(self: EC2ContainerServiceResponse) -> ActionResult:
    backend = self.ecs_backend
    cluster = backend._get_cluster(self._get_param("cluster", "default"))
    refs: list[str] = self._get_param("tasks", [])
    if not refs:
        raise InvalidParameterException("Tasks cannot be empty.")
    if len(refs) > 100:
        raise InvalidParameterException("tasks can have at most 100 items.")
    found = []
    failures = []
    for ref in refs:
        task = _find_task(backend, cluster.name, ref)
        if task is None:
            arn = ref if ref.startswith("arn:") else (
                f"arn:{get_partition(backend.region_name)}:ecs:{backend.region_name}:"
                f"{backend.account_id}:task/{cluster.name}/{ref}"
            )
            failures.append({"arn": arn, "reason": "MISSING"})
        elif task not in found:
            found.append(task)
    if "TAGS" in self._get_param("include", []):
        self._include_in_response(DESCRIBE_TASKS_TAGS)
    else:
        self._exclude_from_response(DESCRIBE_TASKS_TAGS)
    return ActionResult({"tasks": found, "failures": failures})


def _page(self: EC2ContainerServiceResponse, items: list[str], default: int) -> dict[str, Any]:
    max_results = self._get_int_param("maxResults") or default
    if not 1 <= max_results <= 100:
        raise InvalidParameterException("maxResults must be between 1 and 100.")
    token = self._get_param("nextToken")
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode())
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise InvalidParameterException("Invalid nextToken.") from None
    page: dict[str, Any] = {"items": items[start:start + max_results]}
    if start + max_results < len(items):
        page["nextToken"] = base64.urlsafe_b64encode(str(start + max_results).encode()).decode()
    return page


def _paginated_list_tasks(self: EC2ContainerServiceResponse) -> ActionResult:
    found = self.ecs_backend.list_tasks(
        self._get_param("cluster", "default"),
        self._get_param("containerInstance"),
        self._get_param("family"),
        self._get_param("startedBy"),
        self._get_param("serviceName"),
        self._get_param("desiredStatus"),
    )
    page = _page(self, [t.task_arn for t in found], 100)
    return ActionResult({"taskArns": page["items"], "nextToken": page.get("nextToken")})


def _paginated_list_services(self: EC2ContainerServiceResponse) -> ActionResult:
    arns = self.ecs_backend.list_services(
        self._get_param("cluster", "default"),
        self._get_param("schedulingStrategy"),
        launch_type=self._get_param("launchType"),
    )
    page = _page(self, arns, 10)
    return ActionResult({"serviceArns": page["items"], "nextToken": page.get("nextToken")})
