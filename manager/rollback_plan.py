"""What a rollback of an execution would do, said before it does it.

A requested rollback runs the rollback steps of every step that started, newest first.
For an execution that newer ones of the same service have superseded, that would undo
their work too (delete a service they now run, restore a task definition over theirs),
so it is refused unless forced; :func:`describe` is the text the refusal and a forced
rollback's answer both carry. Pure: rows in, text out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from manager.exec_steps import Earlier, plan_step
from manager.models import RollbackStep


def rollback_order(spec: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    """Ids of the rollback steps to run: those of every step that started, newest
    first ("P1 → P2 fails → R2 → R1")."""
    started = [r["step_id"] for r in runs if r["phase"] == "steps"]
    order: list[str] = []
    for step_id in reversed(started):
        order += [rb["id"] for rb in spec["rollbackSteps"] if rb["rollsBack"] == step_id]
    return order


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _effect(step_type: str, params: dict[str, Any]) -> str:
    """One task type's rollback in words, from the params it would get."""
    data = params.get("rollbackData")
    if step_type == "ecs.rolling_rollback" and isinstance(data, dict):
        name = data.get("serviceName", "?")
        if not data.get("existed"):
            return f"delete service {name}, which the deployment created"
        scaling = " and its autoscaling" if data.get("scalableTargets") else ""
        return (f"restore service {name} to task definition "
                f"{data.get('taskDefinitionArn')}, desired count "
                f"{data.get('desiredCount')}{scaling}")
    bg = params.get("blueGreen")
    if step_type == "ecs.blue_green_rollback" and isinstance(bg, dict):
        old = bg.get("oldServiceName")
        back = f"give production traffic back to service {old}" if old else \
            "restore the prod and stage listeners"
        gone = "" if bg.get("newServiceExisted") else \
            f", and delete or downsize service {bg.get('newServiceName')}, which the " \
            "deployment created"
        return back + gone
    if step_type == "ecs.canary_delete" and params.get("canaryServiceName"):
        return f"delete canary service {params['canaryServiceName']}"
    return f"run {step_type}"


def describe(*, execution_id: str, spec: dict[str, Any], order: list[str],
             earlier: Earlier) -> str:
    """The rollback steps in the order they would run, each with what it would change."""
    if not order:
        return f"Rolling back execution {execution_id} runs no rollback step: none of its " \
               "started steps has one."
    lines = [f"Rolling back execution {execution_id} ({spec['name']}) would run, in order:"]
    by_id = {rb["id"]: rb for rb in spec["rollbackSteps"]}
    for n, step_id in enumerate(order, 1):
        rb = RollbackStep.model_validate(by_id[step_id])
        planned = plan_step(execution_id=execution_id, account_id=None, spec=spec, step=rb,
                            phase="rollback", earlier=earlier, secrets={})
        if rb.rolls_back not in earlier.statuses:
            effect = (f"undo step {rb.rolls_back} once its task has stopped (it is running: "
                      "what it changed is not known yet)")
        elif planned.skipped:
            effect = f"skipped: {planned.skipped}"
        elif planned.error:
            effect = f"fails: {planned.error}"
        else:
            effect = _effect(rb.type, planned.task.params)
        lines.append(f"  {n}. {step_id} ({rb.type}, rolls back {rb.rolls_back}): {effect}")
    return "\n".join(lines)


def superseded_detail(*, execution_id: str, service: str, newer: list[Any],
                      plan: str) -> str:
    """The 409 a requested rollback of a superseded execution gets."""
    after = "\n".join(f"  - {r['execution_id']} ({r['name']}), created "
                      f"{_when(r['created_at'])}, {r['status']}" for r in newer)
    return (f"execution {execution_id} is not the latest deployment of {service}; these "
            f"came after it:\n{after}\n"
            "Rolling it back now would undo what they deployed.\n"
            f"{plan}\n"
            "To roll it back anyway, send {\"force\": true} "
            "(delegate execution rollback --force); or roll back the latest one instead.")
