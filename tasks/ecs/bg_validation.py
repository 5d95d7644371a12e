"""Which existing service is blue and which is green? A pure decision.

Blue/green services live in two slots, ``<name>__1`` and ``<name>__2``. Before a
deployment changes anything, the services in those slots are identified by the target
groups they are attached to, as the product document's validation scenarios say:

- Scenario 1, prod and stage target groups differ: the service attached to the prod
  target group is blue, the one attached to the stage target group is green.
- Scenario 2, one target group for both: the attached service with running tasks is
  blue, an attached service with none is green.

Tags are then made to agree with that. A state that fits neither scenario is refused
with a message that says what is wrong and how to fix it; nothing has been changed then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

BG_VERSION = "BG_VERSION"
BLUE = "BLUE"
GREEN = "GREEN"
SLOT_SEPARATOR = "__"


class BlueGreenStateError(Exception):
    """The existing services fit neither validation scenario; ``str()`` says how to fix it."""


@dataclass(frozen=True)
class ServiceView:
    """What the decision needs to know about one service in a slot."""

    name: str
    status: str
    tags: Mapping[str, str] = field(default_factory=dict)
    target_groups: frozenset[str] = frozenset()
    running: int = 0
    desired: int = 0

    @property
    def version(self) -> str | None:
        return self.tags.get(BG_VERSION)

    @classmethod
    def of(cls, service: Mapping[str, Any]) -> ServiceView:
        """From one DescribeServices entry (described with ``include=["TAGS"]``)."""
        tags = {str(t.get("key")): str(t.get("value", "")) for t in service.get("tags") or []}
        groups = frozenset(str(lb["targetGroupArn"]) for lb in service.get("loadBalancers") or []
                           if lb.get("targetGroupArn"))
        return cls(name=str(service["serviceName"]), status=str(service.get("status", "ACTIVE")),
                   tags=tags, target_groups=groups,
                   running=int(service.get("runningCount") or 0),
                   desired=int(service.get("desiredCount") or 0))


@dataclass(frozen=True)
class Decision:
    scenario: int
    new_service: str  # the slot the new version goes to
    blue: ServiceView | None  # serves production now; becomes the old service
    green: ServiceView | None  # occupies the new slot now (ACTIVE); replaced or updated
    draining: ServiceView | None  # occupies the new slot but is still DRAINING
    retag: tuple[tuple[str, str], ...] = ()  # (service, BLUE|GREEN) to agree with the roles


def slot_names(base: str) -> tuple[str, str]:
    return f"{base}{SLOT_SEPARATOR}1", f"{base}{SLOT_SEPARATOR}2"


def _names(services: Iterable[ServiceView]) -> str:
    return " and ".join(s.name for s in services)


def _reset_hint(what: str) -> str:
    return (f"{what} in the AWS console (or with aws ecs delete-service / update-service), "
            "then run the deployment again")


def decide(base: str, services: Iterable[ServiceView], *, prod_target_group: str,
           stage_target_group: str) -> Decision:
    """Identify blue and green among the slot services (others are ignored)."""
    slots = slot_names(base)
    found = {s.name: s for s in services if s.name in slots}
    active = [found[n] for n in slots if n in found and found[n].status == "ACTIVE"]
    if prod_target_group == stage_target_group:
        blue, green_candidates = _scenario_2(active, prod_target_group)
        scenario = 2
    else:
        blue, green_candidates = _scenario_1(active, prod_target_group, stage_target_group)
        scenario = 1
    if blue is not None:
        new_name = slots[1] if blue.name == slots[0] else slots[0]
    elif green_candidates:
        new_name = green_candidates[0].name
    else:
        new_name = slots[0]
    green = found.get(new_name) if new_name in found else None
    draining = green if green is not None and green.status == "DRAINING" else None
    if green is not None and green.status != "ACTIVE":
        green = None
    retag: list[tuple[str, str]] = []
    if blue is not None and blue.version != BLUE:
        retag.append((blue.name, BLUE))
    for candidate in green_candidates:
        if candidate.version != GREEN:
            retag.append((candidate.name, GREEN))
    return Decision(scenario, new_name, blue, green, draining, tuple(retag))


def _scenario_1(active: list[ServiceView], prod: str,
                stage: str) -> tuple[ServiceView | None, list[ServiceView]]:
    both = [s for s in active if prod in s.target_groups and stage in s.target_groups]
    if both:
        raise BlueGreenStateError(
            f"Service {_names(both)} is attached to both the prod target group {prod} and "
            f"the stage target group {stage}, so it cannot be told blue or green. "
            + _reset_hint(f"Delete service {_names(both)}"))
    on_prod = [s for s in active if prod in s.target_groups]
    on_stage = [s for s in active if stage in s.target_groups]
    if len(on_prod) > 1:
        raise BlueGreenStateError(
            f"Services {_names(on_prod)} are both attached to the prod target group {prod}; "
            "only one service can be blue. "
            + _reset_hint("Delete the one that should not serve production"))
    if len(on_stage) > 1:
        raise BlueGreenStateError(
            f"Services {_names(on_stage)} are both attached to the stage target group "
            f"{stage}; only one service can be green. " + _reset_hint("Delete one of them"))
    stray = [s for s in active if s not in on_prod and s not in on_stage]
    if stray:
        raise BlueGreenStateError(
            f"Service {_names(stray)} is attached to neither the prod target group {prod} nor "
            f"the stage target group {stage} (its target groups: "
            f"{', '.join(sorted(stray[0].target_groups)) or 'none'}); the listeners were "
            "probably changed outside blue/green deployments. "
            + _reset_hint(f"Delete service {_names(stray)} or point the listeners back"))
    return (on_prod[0] if on_prod else None), on_stage


def _scenario_2(active: list[ServiceView],
                shared: str) -> tuple[ServiceView | None, list[ServiceView]]:
    stray = [s for s in active if shared not in s.target_groups]
    if stray:
        raise BlueGreenStateError(
            f"Service {_names(stray)} is not attached to target group {shared}, which the "
            "prod and stage listeners share (its target groups: "
            f"{', '.join(sorted(stray[0].target_groups)) or 'none'}). "
            + _reset_hint(f"Delete service {_names(stray)}"))
    running = [s for s in active if s.running > 0]
    if len(running) > 1:
        raise BlueGreenStateError(
            f"Services {_names(running)} are both attached to target group {shared}, which "
            "the prod and stage listeners share, and both have running tasks, so neither "
            "can be told green. "
            + _reset_hint("Scale the one that should not serve production to 0"))
    idle = [s for s in active if s.running == 0]
    return (running[0] if running else None), idle
