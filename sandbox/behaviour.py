"""How a sandbox task behaves, decided from its task definition alone.

Tests and demos steer failures from outside the process through the container image and
environment, so they need no side channel into the simulator (see ``sandbox/README.md``).
Everything here is pure: a task definition and overrides in, a ``Behaviour`` out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FAIL_TO_START = "fail-to-start"
CRASH = "crash"
SLOW_START = "slow-start"

RUN_SECONDS_VAR = "SANDBOX_RUN_SECONDS"
EXIT_CODE_VAR = "SANDBOX_EXIT_CODE"
EXIT_REASON_VAR = "SANDBOX_EXIT_REASON"

DEFAULT_RUN_SECONDS = 1.0
# Counted in simulator ticks, so slow-start takes ~3 s at the default 0.2 s tick and
# proportionally less when tests run the simulator faster.
SLOW_START_TICKS = 15


@dataclass(frozen=True)
class ContainerPlan:
    """What one container does once its task runs."""

    name: str
    image: str
    essential: bool
    run_seconds: float | None  # None: runs until stopped
    exit_code: int
    exit_reason: str | None


@dataclass(frozen=True)
class Behaviour:
    fail_image: str | None  # the image that cannot be pulled, if any
    crash_container: str | None  # the container that exits 1 after starting, if any
    slow_start: bool
    containers: tuple[ContainerPlan, ...]

    @property
    def pending_ticks(self) -> int:
        return SLOW_START_TICKS if self.slow_start else 1


def pull_error(image: str) -> str:
    return (
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
        f"failed to resolve ref {image}: {image}: not found"
    )


def _environment(
    definition: Mapping[str, Any], overrides: Mapping[str, Any] | None
) -> dict[str, str]:
    env = {e["name"]: str(e.get("value", "")) for e in definition.get("environment") or []}
    for override in (overrides or {}).get("containerOverrides") or []:
        if override.get("name") == definition.get("name"):
            for item in override.get("environment") or []:
                env[item["name"]] = str(item.get("value", ""))
    return env


def _float(value: str | None, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def behaviour_for(
    container_definitions: Sequence[Mapping[str, Any]],
    overrides: Mapping[str, Any] | None = None,
    *,
    one_off: bool = False,
) -> Behaviour:
    """``one_off`` tasks (RunTask) exit on their own after ``SANDBOX_RUN_SECONDS``;
    service tasks run until the scheduler stops them unless their image says otherwise."""
    fail_image = None
    crash_container = None
    slow = False
    plans = []
    for definition in container_definitions:
        image = str(definition.get("image", ""))
        name = str(definition.get("name", ""))
        if FAIL_TO_START in image and fail_image is None:
            fail_image = image
        if CRASH in image and crash_container is None:
            crash_container = name
        slow = slow or SLOW_START in image
        env = _environment(definition, overrides)
        run_seconds = (
            _float(env.get(RUN_SECONDS_VAR), DEFAULT_RUN_SECONDS)
            if one_off or RUN_SECONDS_VAR in env
            else None
        )
        plans.append(
            ContainerPlan(
                name=name,
                image=image,
                essential=bool(definition.get("essential", True)),
                run_seconds=run_seconds,
                exit_code=_int(env.get(EXIT_CODE_VAR), 0),
                exit_reason=env.get(EXIT_REASON_VAR) or None,
            )
        )
    return Behaviour(fail_image, crash_container, slow, tuple(plans))


def seconds_to_ticks(seconds: float, tick: float) -> int:
    return max(1, math.ceil(seconds / tick))
