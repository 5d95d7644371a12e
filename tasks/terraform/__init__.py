"""Terraform and Terragrunt provisioner steps: the same runner, two binaries.

A configuration runs commands on the delegate as surely as a shell step does (a
``local-exec`` provisioner, the ``external`` data source), so a delegate started with
``DELEGATE_SHELL_STEPS=false`` offers neither (see ``tasks.shell.allowed``)."""

from __future__ import annotations

from typing import Any

from agent.context import TaskContext, TaskRegistry, TaskType

_OUTPUTS = {"NAME": "each of the configuration's outputs (terraform output -json)",
            "sensitiveOutputs": "the names of the sensitive ones (their values are masked)",
            "rollbackData": "what the rollback step needs"}


def _terragrunt_types() -> list[TaskType[Any]]:
    from tasks.terraform import steps
    from tasks.terraform.params import (
        TerragruntApplyParams,
        TerragruntDestroyParams,
        TerragruntPlanParams,
        TerragruntRollbackParams,
    )

    async def plan(ctx: TaskContext[TerragruntPlanParams]) -> dict[str, Any]:
        return await steps.plan(ctx, "terragrunt")

    async def apply(ctx: TaskContext[TerragruntApplyParams]) -> dict[str, Any]:
        return await steps.apply(ctx, "terragrunt")

    async def destroy(ctx: TaskContext[TerragruntDestroyParams]) -> dict[str, Any]:
        return await steps.destroy(ctx, "terragrunt")

    async def rollback(ctx: TaskContext[TerragruntRollbackParams]) -> dict[str, Any]:
        return await steps.rollback(ctx, "terragrunt")

    how = " with terragrunt (runAll: run-all over the modules)"
    return [
        TaskType(name="terragrunt.plan", handler=plan, params_model=TerragruntPlanParams,
                 summary="Plan" + how + "; the plan is saved at the manager for "
                         "terragrunt.apply.", outputs={"planId": "the saved plan's id",
                                                       "hasChanges": "whether it changes "
                                                                     "anything"},
                 units=("Plan",)),
        TaskType(name="terragrunt.apply", handler=apply, params_model=TerragruntApplyParams,
                 summary="Apply" + how + "; outputs become the step's outputs.",
                 outputs=_OUTPUTS, units=("Apply",)),
        TaskType(name="terragrunt.destroy", handler=destroy,
                 params_model=TerragruntDestroyParams, summary="Destroy" + how + ".",
                 units=("Destroy",)),
        TaskType(name="terragrunt.rollback", handler=rollback,
                 params_model=TerragruntRollbackParams,
                 summary="Undo a terragrunt.apply" + how + " (as terraform.rollback).",
                 outputs=_OUTPUTS, units=("Rollback",)),
    ]


def register(registry: TaskRegistry) -> None:
    from tasks.shell import allowed

    if not allowed():
        return
    from tasks.terraform import steps
    from tasks.terraform.params import ApplyParams, DestroyParams, PlanParams, RollbackParams

    registry.register(TaskType(
        name="terraform.plan", handler=steps.plan, params_model=PlanParams,
        summary="terraform plan; the plan is saved at the manager, for a terraform.apply "
                "with planStep on any delegate.",
        outputs={"planId": "the saved plan's id", "hasChanges": "whether it changes anything"},
        units=("Plan",)))
    registry.register(TaskType(
        name="terraform.apply", handler=steps.apply, params_model=ApplyParams,
        summary="terraform apply of a configuration, or of a plan step's plan; its "
                "outputs become the step's outputs (<+provisioner.NAME>).",
        outputs=_OUTPUTS, units=("Apply",)))
    registry.register(TaskType(
        name="terraform.destroy", handler=steps.destroy, params_model=DestroyParams,
        summary="terraform destroy of a configuration.", units=("Destroy",)))
    registry.register(TaskType(
        name="terraform.rollback", handler=steps.rollback, params_model=RollbackParams,
        summary="Undo a terraform.apply: apply again the configuration and variables of "
                "the last successful apply before it, or destroy when there was none.",
        outputs={k: v for k, v in _OUTPUTS.items() if k != "rollbackData"},
        units=("Rollback",)))
    for task_type in _terragrunt_types():
        registry.register(task_type)
