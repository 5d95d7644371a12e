"""Terraform Cloud / Enterprise runs, driven through the workspace's HTTP API."""

from __future__ import annotations

from agent.context import TaskRegistry, TaskType


def register(registry: TaskRegistry) -> None:
    from tasks.terraform_cloud.params import TerraformCloudRunParams
    from tasks.terraform_cloud.run import terraform_cloud_run

    registry.register(TaskType(
        name="terraform_cloud.run", handler=terraform_cloud_run,
        summary="Queue a run in a Terraform Cloud / Enterprise workspace, stream its plan, "
                "wait for its policy checks, apply or discard it, and hand back the "
                "workspace's outputs.",
        params_model=TerraformCloudRunParams,
        outputs={"NAME": "each output of the workspace's current state",
                 "sensitiveOutputs": "the names of the sensitive ones (masked in logs)",
                 "runId": "the run's id", "runUrl": "where to see it",
                 "runStatus": "its last status", "hasChanges": "whether the plan changes "
                 "anything", "workspaceId": "the workspace's id"},
        units=("Plan", "Policy Checks", "Apply")))
