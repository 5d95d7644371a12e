"""Task definition revisions as ECS treats them once deregistered.

DeregisterTaskDefinition makes a revision INACTIVE. ECS then refuses CreateService,
UpdateService and RunTask that name it (``ClientException: TaskDefinition is inactive``),
but only after a window of up to about ten minutes during which it still works; services
already running it keep running and scaling. A family named without a revision means its
latest ACTIVE revision. Revision numbers are never reused, even after DeleteTaskDefinitions
(moto would number the next registration 1 again once a family's revisions are deleted).

The sandbox's window is ``CLOCK.inactive_grace_seconds`` simulated seconds (counted in
simulator ticks; default 0: refused at once, so tests need not wait), set with
``Sandbox(inactive_grace=...)`` or ``Sandbox.set_inactive_grace``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from moto.core.utils import utcnow
from moto.ecs.exceptions import EcsClientException, ECSException
from moto.ecs.models import EC2ContainerServiceBackend, TaskDefinition

from sandbox.runtime import CLOCK

INACTIVE_MESSAGE = "TaskDefinition is inactive"
# The simulator tick at which a revision was deregistered (not an ECS field, so moto's
# serialiser never shows it).
_DEREGISTERED_TICK = "_sandbox_deregistered_tick"


def install(backend: type[EC2ContainerServiceBackend]) -> None:
    backend.deregister_task_definition = _deregister(  # type: ignore[method-assign]
        backend.deregister_task_definition)
    backend.describe_task_definition = _describe(  # type: ignore[method-assign]
        backend.describe_task_definition)
    backend.delete_task_definitions = _delete(  # type: ignore[method-assign]
        backend.delete_task_definitions)
    backend._get_last_task_definition_revision_id = _last_revision(  # type: ignore[method-assign]
        backend._get_last_task_definition_revision_id)


def _highest_deleted(backend: EC2ContainerServiceBackend) -> dict[str, int]:
    found: dict[str, int] = backend.__dict__.setdefault("_sandbox_deleted_revisions", {})
    return found


def _delete(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def delete_task_definitions(self: EC2ContainerServiceBackend,
                                task_definitions: list[str]) -> Any:
        highest = _highest_deleted(self)
        for family, revisions in self.task_definitions.items():
            if revisions:
                highest[family] = max(highest.get(family, 0), *revisions)
        return original(self, task_definitions)

    return delete_task_definitions


def _last_revision(original: Callable[..., int | None]) -> Callable[..., int | None]:
    @functools.wraps(original)
    def last_revision(self: EC2ContainerServiceBackend, family: str) -> int | None:
        deleted = _highest_deleted(self).get(family)
        last = original(self, family)
        if deleted is None:
            return last
        return max(deleted, last or 0)

    return last_revision


def _deregister(original: Callable[..., TaskDefinition]) -> Callable[..., TaskDefinition]:
    @functools.wraps(original)
    def deregister_task_definition(self: EC2ContainerServiceBackend,
                                   task_definition_str: str) -> TaskDefinition:
        td = original(self, task_definition_str)
        if getattr(td, _DEREGISTERED_TICK, None) is None:  # a second deregister changes nothing
            setattr(td, _DEREGISTERED_TICK, CLOCK.tick)
            td.deregistered_at = utcnow()  # moto serialises it as deregisteredAt
        return td

    return deregister_task_definition


def _describe(original: Callable[..., TaskDefinition]) -> Callable[..., TaskDefinition]:
    @functools.wraps(original)
    def describe_task_definition(self: EC2ContainerServiceBackend,
                                 task_definition_str: str) -> TaskDefinition:
        name = task_definition_str.split("/")[-1]
        if ":" not in name:
            active = [rev for rev, td in self.task_definitions.get(name, {}).items()
                      if td.status == "ACTIVE"]
            if active:
                return self.task_definitions[name][max(active)]
        return original(self, task_definition_str)

    return describe_task_definition


def is_refused(td: TaskDefinition) -> bool:
    """INACTIVE and past the grace window."""
    tick = getattr(td, _DEREGISTERED_TICK, None)
    if td.status != "INACTIVE":
        return False
    if tick is None:  # made INACTIVE some other way (moto's CloudFormation update)
        return True
    return (CLOCK.tick - tick) * CLOCK.tick_seconds >= CLOCK.inactive_grace_seconds


def refuse_inactive(backend: EC2ContainerServiceBackend, reference: Any) -> None:
    """Raise ECS's ClientException when ``reference`` names a refused revision; leave an
    unknown reference to moto, which words that error itself."""
    if not reference:
        return
    try:
        td = backend.describe_task_definition(str(reference))
    except (ECSException, ValueError):  # unknown or malformed: moto's handler answers it
        return
    if is_refused(td):
        raise EcsClientException(INACTIVE_MESSAGE)
