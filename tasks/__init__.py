"""Task handlers. ``register_all`` is the ``ecs_delegate.tasks`` entry point: the delegate
finds task types through it and never imports a handler by name."""

from __future__ import annotations

from agent.context import TaskRegistry


def register_all(registry: TaskRegistry) -> None:
    from tasks import aws_validate

    aws_validate.register(registry)
    try:
        from tasks.ecs import register as register_ecs
    except ImportError:  # pragma: no cover - the ECS handlers are optional while built
        return
    register_ecs(registry)
