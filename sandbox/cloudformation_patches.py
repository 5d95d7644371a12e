"""CloudFormation in the sandbox fails the way AWS does when a resource cannot be created.

Stock moto warns about a resource type it cannot model and reports the stack
CREATE_COMPLETE anyway, so a provisioning step could never be seen failing. Here such a
resource gets a CREATE_FAILED event with its reason, and the stack rolls back
(ROLLBACK_IN_PROGRESS, ROLLBACK_COMPLETE) — the events and statuses a real failed
creation leaves. Deleting a stack deletes the ECS clusters it created (moto leaves them)."""

from __future__ import annotations

from typing import Any

from moto.cloudformation import models, parsing
from moto.ecs.models import Cluster, ecs_backends

_installed = False


def _unsupported(resource_type: str) -> bool:
    if resource_type in parsing.NULL_MODELS or resource_type.startswith("Custom::"):
        return False
    return resource_type not in parsing.get_model_map()


def _failed_resources(template: dict[str, Any]) -> list[tuple[str, str]]:
    resources = template.get("Resources") or {}
    return [(logical_id, str(r.get("Type", ""))) for logical_id, r in resources.items()
            if isinstance(r, dict) and _unsupported(str(r.get("Type", "")))]


def _fail_creation(stack: Any, failed: list[tuple[str, str]]) -> None:
    stack.status = "CREATE_IN_PROGRESS"
    for logical_id, resource_type in failed:
        stack.events.append(models.Event(
            stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=logical_id,
            physical_resource_id="", resource_type=resource_type,
            resource_status="CREATE_FAILED",
            resource_status_reason=(f"Resource handler returned message: resource type "
                                    f"{resource_type} cannot be created in the sandbox"),
            resource_properties=None))
    names = ", ".join(logical_id for logical_id, _ in failed)
    stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=(
        f"The following resource(s) failed to create: [{names}]. Rollback requested by user."))
    stack._add_stack_event("ROLLBACK_COMPLETE")
    stack.status = "ROLLBACK_COMPLETE"


def _delete_clusters(stack: Any) -> None:
    backend = ecs_backends[stack.account_id][stack.region_name]
    for resource in list(stack.stack_resources):
        if isinstance(resource, Cluster) and resource.name in backend.clusters:
            backend.clusters.pop(resource.name, None)


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    output_map = models.Stack._create_output_map
    create = models.Stack.create_resources
    delete = models.Stack.delete

    def create_resources(self: Any) -> None:
        failed = _failed_resources(self.template_dict)
        if failed:
            self.description = self.template_dict.get("Description")
            _fail_creation(self, failed)
            return
        create(self)

    def create_output_map(self: Any) -> Any:
        # A stack that cannot be created has no outputs (resolving them would parse the
        # resources moto cannot model).
        if _failed_resources(self.template_dict):
            return models.OutputMap(self.resource_map, {**self.template_dict, "Outputs": {}},
                                    self.stack_id)
        return output_map(self)

    def delete_stack(self: Any) -> None:
        if self.status != "ROLLBACK_COMPLETE":  # a rolled-back stack holds nothing
            _delete_clusters(self)
        delete(self)

    models.Stack.create_resources = create_resources  # type: ignore[method-assign]
    models.Stack.delete = delete_stack  # type: ignore[method-assign]
    models.Stack._create_output_map = create_output_map  # type: ignore[method-assign]
