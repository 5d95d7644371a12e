"""``<+...>`` expressions the manager resolves when it dispatches an execution step.

The manager resolves what only it knows — ``<+execution.steps.ID.output.KEY>``,
``<+provisioner.NAME>``, ``<+infra.region>``, ``<+infra.cluster>`` — and leaves the rest
of the context (``<+primary.artifact.image>``, ``<+serviceVariables.X>``, ``<+env.name>``,
``<+env.variables.X>``, ``<+secrets.getValue("X")>``, ``<+targetGroupArn>``) for the
delegate, which renders the manifests it fetches with the context that travels in
``TaskSpec.context``. Nothing reads a process environment. An expression nobody knows is
an error naming it."""

from __future__ import annotations

import json
import re
from typing import Any

from manager.provisioning import lookup

EXPRESSION = re.compile(r"<\+([^<>]+?)>")
_STEP_OUTPUT = re.compile(r"execution\.steps\.([^.]+)\.output\.(.+)")
_DELEGATE_SIDE = (
    re.compile(r"primary\.artifact\.[A-Za-z0-9_.]+"),
    re.compile(r"artifact\.[A-Za-z0-9_.]+"),
    re.compile(r"serviceVariables\.[A-Za-z0-9_.-]+"),
    re.compile(r"env\.name"),
    re.compile(r"env\.variables\.[A-Za-z0-9_.-]+"),
    re.compile(r"secrets\.getValue\(\s*[\"'][^\"']+[\"']\s*\)"),
    # Resolved by the blue/green create step itself, once it knows the stage target group.
    re.compile(r"targetGroupArn"),
)
_INFRA_KEYS = ("region", "cluster")


class ExpressionError(ValueError):
    pass


class MissingOutput(ExpressionError):
    """A step that ran recorded no output under ``key``: for a rollback step whose step
    failed early, that means there is nothing to roll back (see manager.exec_runs)."""

    def __init__(self, message: str, step_id: str, key: str) -> None:
        super().__init__(message)
        self.step_id = step_id
        self.key = key


class Resolver:
    def __init__(self, *, outputs: dict[str, dict[str, Any]], infra: dict[str, Any],
                 provisioned: dict[str, Any] | None = None) -> None:
        # outputs: step id -> output of a step that has run (absent: not run yet).
        self.outputs = outputs
        self.infra = infra
        # The provisioner steps' outputs; None until all of them succeeded.
        self.provisioned = provisioned

    def resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, dict):
            return {k: self.resolve(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if not isinstance(value, str) or "<+" not in value:
            return value
        whole = EXPRESSION.fullmatch(value.strip())
        if whole:
            found, resolved = self._lookup(whole.group(1).strip(), where)
            return resolved if found else value

        def substitute(m: re.Match[str]) -> str:
            found, resolved = self._lookup(m.group(1).strip(), where)
            if not found:
                return m.group(0)
            return resolved if isinstance(resolved, str) else json.dumps(resolved)

        return EXPRESSION.sub(substitute, value)

    def _lookup(self, expr: str, where: str) -> tuple[bool, Any]:
        """(True, value) when resolved here; (False, None) when left for the delegate."""
        m = _STEP_OUTPUT.fullmatch(expr)
        if m:
            step_id, key = m.group(1), m.group(2)
            if step_id not in self.outputs:
                raise ExpressionError(f"{where}: <+{expr}> refers to step {step_id!r}, which "
                                      "has not run before this step")
            value: Any = self.outputs[step_id]
            for part in key.split("."):
                if not isinstance(value, dict) or part not in value:
                    have = ", ".join(sorted(self.outputs[step_id])) or "nothing"
                    raise MissingOutput(f"{where}: <+{expr}>: step {step_id!r} has no output "
                                        f"{key!r} (its outputs: {have})", step_id, key)
                value = value[part]
            return True, value
        if expr.startswith("provisioner."):
            return True, lookup(expr.removeprefix("provisioner."), self.provisioned, where)
        if expr.startswith("infra."):
            key = expr.removeprefix("infra.")
            if key not in _INFRA_KEYS:
                raise ExpressionError(f"{where}: unknown expression <+{expr}>; the "
                                      "infrastructure offers <+infra.region> and "
                                      "<+infra.cluster>")
            if self.infra.get(key) is None:
                raise ExpressionError(f"{where}: <+{expr}>: the execution's infrastructure "
                                      f"sets no {key}")
            return True, self.infra[key]
        if any(p.fullmatch(expr) for p in _DELEGATE_SIDE):
            return False, None
        raise ExpressionError(
            f"{where}: unknown expression <+{expr}>; known: <+execution.steps.ID.output.KEY>, "
            "<+provisioner.NAME>, "
            "<+infra.region>, <+infra.cluster>, <+primary.artifact.image>, "
            "<+serviceVariables.NAME>, <+env.name>, <+env.variables.NAME>, "
            "<+secrets.getValue(\"NAME\")>, <+targetGroupArn>")
