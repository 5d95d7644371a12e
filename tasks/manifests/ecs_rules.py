"""ECS's service-side rules, checked offline across the task and service definitions.

The botocore model says what a request may contain; ECS refuses more than that when it
registers a task definition or creates a service (an invalid Fargate size, a load balancer
naming a container the task definition lacks...). Each rule here is one small function
over both requests that yields :class:`Finding` s with the field path and what to do, so a
step fails in Fetch Manifests, and ``delegate validate`` reports it, before any AWS call.
``RULES`` is also the table docs/tasks.md is generated from.

Sources: the ECS API reference (RegisterTaskDefinition, CreateService,
DeploymentConfiguration) and developer guide (task definition parameters, Fargate task
sizes, load balancing, capacity providers). A value that is still an expression
(``<+...>``, known only at run time) is never judged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

TASK = "taskDefinition"
SERVICE = "serviceDefinition"
RUN_TASK = "runTaskRequest"


@dataclass(frozen=True)
class Finding:
    manifest: str  # TASK, SERVICE or RUN_TASK: which file the path is in
    path: str
    message: str


@dataclass(frozen=True)
class Requests:
    task: dict[str, Any] | None
    service: dict[str, Any] | None
    run_task: dict[str, Any] | None = None

    def launchers(self) -> list[tuple[str, dict[str, Any]]]:
        """The requests that start tasks of the task definition: (manifest, request)."""
        return [(name, request) for name, request in
                ((SERVICE, self.service), (RUN_TASK, self.run_task)) if request is not None]

    @property
    def containers(self) -> list[dict[str, Any]]:
        found = (self.task or {}).get("containerDefinitions")
        return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []

    @property
    def fargate(self) -> bool:
        if "FARGATE" in ((self.task or {}).get("requiresCompatibilities") or []):
            return True
        for _name, request in self.launchers():
            if request.get("launchType") == "FARGATE":
                return True
            strategy = request.get("capacityProviderStrategy") or []
            if any(isinstance(s, dict) and s.get("capacityProvider") in
                   ("FARGATE", "FARGATE_SPOT") for s in strategy):
                return True
        return False

    @property
    def awsvpc(self) -> bool:
        return (self.task or {}).get("networkMode") == "awsvpc"


RuleCheck = Callable[[Requests], Iterator[Finding]]


@dataclass(frozen=True)
class Rule:
    name: str
    summary: str  # one line for docs/tasks.md
    check: RuleCheck


def _runtime(value: Any) -> bool:
    return isinstance(value, str) and "<+" in value


_UNITS = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(vcpu|gb)?\s*", re.IGNORECASE)


def _amount(value: Any, unit: str) -> int | None:
    """CPU units or MiB from ``1024``, ``"1024"``, ``"1 vCPU"`` or ``"2 GB"``."""
    if isinstance(value, bool) or value is None:
        return None
    match = _UNITS.fullmatch(str(value))
    if match is None:
        return None
    number = float(match.group(1))
    scale = 1024 if match.group(2) and match.group(2).lower() == unit else 1
    return int(number * scale)


def _mib_range(low_gb: int, high_gb: int, step_gb: int) -> list[int]:
    return [gb * 1024 for gb in range(low_gb, high_gb + 1, step_gb)]


# Task CPU units -> the task memory values (MiB) Fargate accepts with it.
FARGATE_SIZES: dict[int, list[int]] = {
    256: [512, 1024, 2048],
    512: _mib_range(1, 4, 1),
    1024: _mib_range(2, 8, 1),
    2048: _mib_range(4, 16, 1),
    4096: _mib_range(8, 30, 1),
    8192: _mib_range(16, 60, 4),
    16384: _mib_range(32, 120, 8),
}


def _fmt_mib(values: list[int]) -> str:
    gbs = [v / 1024 for v in values]
    text = [f"{g:g} GB" for g in gbs]
    return ", ".join(text) if len(text) <= 4 else f"{text[0]} to {text[-1]} " \
        f"in {gbs[1] - gbs[0]:g} GB steps"


def fargate_task_size(r: Requests) -> Iterator[Finding]:
    if not r.fargate or r.task is None:
        return
    cpu_raw, memory_raw = r.task.get("cpu"), r.task.get("memory")
    if _runtime(cpu_raw) or _runtime(memory_raw):
        return
    for field, raw in (("cpu", cpu_raw), ("memory", memory_raw)):
        if raw is None:
            yield Finding(TASK, field, f"Fargate needs the task-level {field}; set {field} "
                          "(for example cpu: 256 with memory: 512)")
    if cpu_raw is None or memory_raw is None:
        return
    cpu, memory = _amount(cpu_raw, "vcpu"), _amount(memory_raw, "gb")
    if cpu not in FARGATE_SIZES:
        yield Finding(TASK, "cpu", f"{cpu_raw!r} is not a Fargate task CPU size; use one "
                      "of " + ", ".join(str(c) for c in FARGATE_SIZES) + " (CPU units)")
    elif memory not in FARGATE_SIZES[cpu]:
        yield Finding(TASK, "memory", f"memory {memory_raw!r} does not go with cpu {cpu} on "
                      f"Fargate; with cpu {cpu} use {_fmt_mib(FARGATE_SIZES[cpu])}")


def fargate_network_mode(r: Requests) -> Iterator[Finding]:
    if r.fargate and r.task is not None and not r.awsvpc \
            and not _runtime(r.task.get("networkMode")):
        yield Finding(TASK, "networkMode", "Fargate tasks only run with networkMode: "
                      f"awsvpc, not {r.task.get('networkMode')!r}; set networkMode: awsvpc")


def essential_container(r: Requests) -> Iterator[Finding]:
    # ECS treats a container without `essential` as essential.
    if r.containers and not any(c.get("essential", True) is not False for c in r.containers):
        yield Finding(TASK, "containerDefinitions", "no container is essential; mark at "
                      "least one container essential: true")


def unique_container_names(r: Requests) -> Iterator[Finding]:
    seen: set[str] = set()
    for index, container in enumerate(r.containers):
        name = container.get("name")
        if isinstance(name, str) and name in seen:
            yield Finding(TASK, f"containerDefinitions[{index}].name", f"the container "
                          f"name {name!r} is used twice; give each container its own name")
        elif isinstance(name, str):
            seen.add(name)


def container_image(r: Requests) -> Iterator[Finding]:
    for index, container in enumerate(r.containers):
        if not container.get("image"):
            yield Finding(TASK, f"containerDefinitions[{index}].image", "every container "
                          "needs an image; set image (for example nginx:latest or an ECR "
                          "image URI)")


def awsvpc_host_port(r: Requests) -> Iterator[Finding]:
    if not r.awsvpc:
        return
    for index, container in enumerate(r.containers):
        for j, mapping in enumerate(container.get("portMappings") or []):
            if not isinstance(mapping, dict) or "hostPort" not in mapping:
                continue
            host, port = mapping.get("hostPort"), mapping.get("containerPort")
            if not _runtime(host) and not _runtime(port) and str(host) != str(port):
                yield Finding(TASK, f"containerDefinitions[{index}].portMappings[{j}]."
                              "hostPort", f"under networkMode awsvpc hostPort must equal "
                              f"containerPort ({port}); set it to {port} or leave it out")


def container_memory_fits(r: Requests) -> Iterator[Finding]:
    task_memory = _amount((r.task or {}).get("memory"), "gb")
    if task_memory is None:
        return
    total = 0
    for container in r.containers:
        own = container.get("memory")
        own = own if own is not None else container.get("memoryReservation")
        if _runtime(own):
            return
        total += _amount(own, "") or 0
    if total > task_memory:
        yield Finding(TASK, "containerDefinitions", f"the containers' memory adds up to "
                      f"{total} MiB, over the task's memory {task_memory} MiB; lower a "
                      "container's memory or raise the task's")


def _port_numbers(container: dict[str, Any]) -> set[str]:
    return {str(m.get("containerPort")) for m in container.get("portMappings") or []
            if isinstance(m, dict)}


def load_balancer_container(r: Requests) -> Iterator[Finding]:
    if r.task is None or r.service is None:
        return
    by_name = {c.get("name"): c for c in r.containers}
    for index, lb in enumerate(r.service.get("loadBalancers") or []):
        if not isinstance(lb, dict):
            continue
        name, port = lb.get("containerName"), lb.get("containerPort")
        where = f"loadBalancers[{index}]"
        if _runtime(name) or _runtime(port) or name is None:
            continue
        if name not in by_name:
            yield Finding(SERVICE, f"{where}.containerName", f"the task definition has "
                          f"no container {name!r}; use one of "
                          + ", ".join(repr(n) for n in by_name))
        elif port is not None and str(port) not in _port_numbers(by_name[name]):
            yield Finding(SERVICE, f"{where}.containerPort", f"container {name!r} maps no "
                          f"containerPort {port}; add it to its portMappings or use one of "
                          + (", ".join(sorted(_port_numbers(by_name[name]))) or "(none)"))


def awsvpc_subnets(r: Requests) -> Iterator[Finding]:
    if not r.awsvpc:
        return
    for name, request in r.launchers():
        config = (request.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
        if not config.get("subnets"):
            what = "a service" if name == SERVICE else "RunTask"
            yield Finding(name, "networkConfiguration.awsvpcConfiguration.subnets",
                          f"{what} of an awsvpc task definition needs subnets; add "
                          "networkConfiguration.awsvpcConfiguration.subnets")


def launch_type_or_capacity_providers(r: Requests) -> Iterator[Finding]:
    for name, request in r.launchers():
        if request.get("launchType") and request.get("capacityProviderStrategy"):
            yield Finding(name, "launchType", "launchType and capacityProviderStrategy "
                          "cannot both be set; keep one of them")


def deployment_percents(r: Requests) -> Iterator[Finding]:
    config = (r.service or {}).get("deploymentConfiguration") or {}
    low, high = config.get("minimumHealthyPercent"), config.get("maximumPercent")
    where = "deploymentConfiguration"
    if isinstance(low, int) and not 0 <= low <= 100:
        yield Finding(SERVICE, f"{where}.minimumHealthyPercent", f"{low} is outside 0 to "
                      "100; set a percent between 0 and 100")
    if isinstance(high, int) and high < 100:
        yield Finding(SERVICE, f"{where}.maximumPercent", f"{high} is below 100; set 100 "
                      "or more (200 is the default)")
    if isinstance(low, int) and isinstance(high, int) and high <= low and high >= 100:
        yield Finding(SERVICE, f"{where}.maximumPercent", f"maximumPercent {high} must be "
                      f"above minimumHealthyPercent {low}, or a deployment can never "
                      "replace a task; raise maximumPercent or lower minimumHealthyPercent")


def grace_period_needs_load_balancer(r: Requests) -> Iterator[Finding]:
    service = r.service or {}
    if service.get("healthCheckGracePeriodSeconds") is not None \
            and not service.get("loadBalancers"):
        yield Finding(SERVICE, "healthCheckGracePeriodSeconds", "only valid for a "
                      "service with loadBalancers; remove it or add the load balancer")


def execution_role(r: Requests) -> Iterator[Finding]:
    if r.task is None or r.task.get("executionRoleArn"):
        return
    for index, container in enumerate(r.containers):
        log_driver = (container.get("logConfiguration") or {}).get("logDriver")
        if container.get("secrets"):
            need = "secrets"
        elif r.fargate and log_driver == "awslogs":
            need = "the awslogs log driver on Fargate"
        else:
            continue
        yield Finding(TASK, "executionRoleArn", f"container {container.get('name')!r} "
                      f"(containerDefinitions[{index}]) uses {need}, which ECS fetches with "
                      "the execution role; set executionRoleArn")
        return


RULES: list[Rule] = [
    Rule("fargate-task-size", "Fargate needs task `cpu` and `memory` as one of Fargate's "
         "sizes (256 CPU units: 0.5-2 GB ... 8192: 16-60 GB in 4 GB steps, 16384: 32-120 GB "
         "in 8 GB steps).", fargate_task_size),
    Rule("fargate-network-mode", "Fargate needs `networkMode: awsvpc`.",
         fargate_network_mode),
    Rule("essential-container", "At least one container is essential (`essential` "
         "defaults to true).", essential_container),
    Rule("unique-container-names", "Container names are unique in a task definition.",
         unique_container_names),
    Rule("container-image", "Every container has an `image`.", container_image),
    Rule("awsvpc-host-port", "Under `awsvpc`, a port mapping's `hostPort` equals its "
         "`containerPort` (or is left out).", awsvpc_host_port),
    Rule("container-memory", "The containers' `memory` (or `memoryReservation`) adds up to "
         "no more than the task's `memory`.", container_memory_fits),
    Rule("load-balancer-container", "A service's `loadBalancers[].containerName` is a "
         "container of the task definition and `containerPort` one of its port mappings.",
         load_balancer_container),
    Rule("awsvpc-subnets", "A service or RunTask request of an `awsvpc` task definition "
         "has `networkConfiguration.awsvpcConfiguration.subnets`.", awsvpc_subnets),
    Rule("launch-type-or-capacity-providers", "A service or RunTask request does not set "
         "both `launchType` and `capacityProviderStrategy`.",
         launch_type_or_capacity_providers),
    Rule("deployment-percents", "`minimumHealthyPercent` is 0-100, `maximumPercent` at "
         "least 100 and above `minimumHealthyPercent`.", deployment_percents),
    Rule("grace-period-needs-load-balancer", "`healthCheckGracePeriodSeconds` only with "
         "`loadBalancers`.", grace_period_needs_load_balancer),
    Rule("execution-role", "Container `secrets`, or the `awslogs` log driver on Fargate, "
         "need the task's `executionRoleArn`.", execution_role),
]


def check(task: dict[str, Any] | None, service: dict[str, Any] | None,
          run_task: dict[str, Any] | None = None) -> list[Finding]:
    """Every rule's findings for the requests (any may be absent)."""
    requests = Requests(task, service, run_task)
    return [finding for rule in RULES for finding in rule.check(requests)]
