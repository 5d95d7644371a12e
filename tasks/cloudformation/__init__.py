"""CloudFormation provisioner steps."""

from __future__ import annotations

from agent.context import TaskRegistry, TaskType


def register(registry: TaskRegistry) -> None:
    from tasks.cloudformation.params import (
        CreateStackParams,
        DeleteStackParams,
        RollbackStackParams,
    )
    from tasks.cloudformation.stack import create_stack, delete_stack, rollback_stack

    registry.register(TaskType(
        name="cloudformation.create_stack", handler=create_stack,
        summary="Create a CloudFormation stack, or update it when it exists, and wait for "
                "it; its outputs become the step's outputs.",
        params_model=CreateStackParams,
        outputs={"NAME": "each of the stack's outputs", "stackId": "the stack's ARN",
                 "stackStatus": "its final status",
                 "rollbackData": "what cloudformation.rollback_stack needs"},
        units=("Create Stack",)))
    registry.register(TaskType(
        name="cloudformation.delete_stack", handler=delete_stack,
        summary="Delete a CloudFormation stack and wait until it is gone.",
        params_model=DeleteStackParams, units=("Delete Stack",)))
    registry.register(TaskType(
        name="cloudformation.rollback_stack", handler=rollback_stack,
        summary="Undo a create step: restore the stack's saved template and parameters, "
                "or delete a stack that step created.",
        params_model=RollbackStackParams, units=("Rollback Stack",)))
