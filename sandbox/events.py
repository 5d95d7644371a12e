"""ECS service event messages, worded exactly as ECS words them."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from typing import Any

from moto.core.utils import utcnow

MAX_EVENTS = 100
# ECS repeats an identical message only once its cause changed or six hours passed.
DUPLICATE_WINDOW = datetime.timedelta(hours=6)


def _tasks(ids: Sequence[str]) -> str:
    return " ".join(f"(task {task_id})" for task_id in ids)


def started(service: str, ids: Sequence[str]) -> str:
    return f"(service {service}) has started {len(ids)} tasks: {_tasks(ids)}."


def stopped(service: str, ids: Sequence[str]) -> str:
    return f"(service {service}) has stopped {len(ids)} running tasks: {_tasks(ids)}."


def registered(service: str, count: int, target_group_arn: str) -> str:
    return f"(service {service}) registered {count} targets in (target-group {target_group_arn})"


def deregistered(service: str, count: int, target_group_arn: str) -> str:
    return (
        f"(service {service}) deregistered {count} targets in (target-group {target_group_arn})"
    )


def deployment_completed(service: str, deployment_id: str) -> str:
    return f"(service {service}) (deployment {deployment_id}) deployment completed."


def steady_state(service: str) -> str:
    return f"(service {service}) has reached a steady state."


def deployment_failed(service: str, deployment_id: str) -> str:
    return (
        f"(service {service}) (deployment {deployment_id}) deployment failed: "
        "tasks failed to start."
    )


def rolling_back(service: str, deployment_id: str) -> str:
    return f"(service {service}) rolling back to deployment {deployment_id}."


def launch_failed(service: str, error: str) -> str:
    return f"(service {service}) failed to launch a task with (error {error})."


def add(events: list[dict[str, Any]], message: str) -> None:
    """Prepend ``message`` (newest first, at most 100), with a createdAt strictly after the
    newest one so that events written in one tick still sort in the order they happened."""
    now = utcnow()
    if events:
        newest = events[0]
        if newest["message"] == message and now - newest["createdAt"] < DUPLICATE_WINDOW:
            return
        floor = newest["createdAt"] + datetime.timedelta(milliseconds=1)
        now = max(now, floor)
    events.insert(0, {"id": str(uuid.uuid4()), "createdAt": now, "message": message})
    del events[MAX_EVENTS:]
