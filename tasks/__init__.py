"""Task handlers. ``register_all`` is the ``ecs_delegate.tasks`` entry point: the delegate
finds task types through it and never imports a handler by name."""

from __future__ import annotations

from agent.context import TaskRegistry


def register_all(registry: TaskRegistry) -> None:
    from tasks import aws_validate
    from tasks.artifacts import register as register_artifacts
    from tasks.aws.clients import close_pooled_clients
    from tasks.cloudformation import register as register_cloudformation
    from tasks.ecs import register as register_ecs
    from tasks.ecs.describe import close_describers
    from tasks.instances import register as register_instances
    from tasks.lookups import register as register_lookups
    from tasks.shell import register as register_shell
    from tasks.terraform import register as register_terraform
    from tasks.terraform_cloud import register as register_terraform_cloud

    aws_validate.register(registry)
    register_ecs(registry)
    register_shell(registry)
    register_cloudformation(registry)
    register_terraform(registry)
    register_terraform_cloud(registry)
    register_lookups(registry)
    register_instances(registry)
    register_artifacts(registry)
    # Describers first: their coalescers borrow the pooled clients.
    registry.shutdown_hooks.append(close_describers)
    registry.shutdown_hooks.append(close_pooled_clients)
