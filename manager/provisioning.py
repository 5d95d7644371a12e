"""The provisioner section of an execution: steps that create the infrastructure before
the deployment runs on it.

``provisioner: {steps: [...], rollbackSteps: [...]}`` runs before the execution's steps.
Their outputs are ``<+provisioner.NAME>``, and any infrastructure field (``region``,
``cluster``, ...) may be such an expression: it is resolved once every provisioner step
has succeeded, and the resolved infrastructure is recorded on the execution. A failure
runs the deployment's rollback steps first, then the provisioner's, newest first — which
is what ordering the provisioner steps first gives :func:`manager.rollback_plan.
rollback_order`. Pure: specs and outputs in, values out."""

from __future__ import annotations

import re
from typing import Any

PROVISIONER_EXPR = re.compile(r"<\+\s*provisioner\.([A-Za-z0-9_.-]+?)\s*>")
# The ids of the provisioner steps, kept in the stored spec once they are flattened.
IDS_KEY = "provisionerStepIds"
# The infrastructure as resolved from their outputs, recorded when the deployment starts.
RESOLVED_KEY = "resolvedInfrastructure"


class ProvisionerError(ValueError):
    pass


def flatten(body: dict[str, Any]) -> dict[str, Any]:
    """The stored spec: provisioner steps first, then the deployment's, in one list (and
    the same for rollback steps), with the provisioner steps' ids remembered."""
    prov = body.pop("provisioner", None)
    if not prov:
        return body
    body["steps"] = [*prov["steps"], *body["steps"]]
    body["rollbackSteps"] = [*prov.get("rollbackSteps", []), *body["rollbackSteps"]]
    body[IDS_KEY] = [s["id"] for s in prov["steps"]]
    return body


def uses_provisioner(value: Any) -> bool:
    if isinstance(value, str):
        return PROVISIONER_EXPR.search(value) is not None
    if isinstance(value, dict):
        return any(uses_provisioner(v) for v in value.values())
    if isinstance(value, list):
        return any(uses_provisioner(v) for v in value)
    return False


def outputs_of(spec: dict[str, Any], outputs: dict[str, dict[str, Any]],
               succeeded: set[str]) -> dict[str, Any] | None:
    """Every provisioner step's outputs merged (a later step wins), or None while any of
    them has not succeeded yet."""
    ids = spec.get(IDS_KEY) or []
    if not ids or not all(i in succeeded for i in ids):
        return None
    merged: dict[str, Any] = {}
    for step_id in ids:
        merged.update(outputs.get(step_id) or {})
    return merged


def lookup(name: str, provisioned: dict[str, Any] | None, where: str) -> Any:
    if provisioned is None:
        raise ProvisionerError(f"{where}: <+provisioner.{name}> is not known yet: it "
                               "resolves once every provisioner step has succeeded")
    if name not in provisioned:
        have = ", ".join(sorted(k for k in provisioned if k != "rollbackData")) or "none"
        raise ProvisionerError(f"{where}: <+provisioner.{name}>: no provisioner step "
                               f"produced output {name!r} (their outputs: {have})")
    return provisioned[name]


def resolve_infrastructure(infra: dict[str, Any],
                           provisioned: dict[str, Any] | None) -> dict[str, Any]:
    """The infrastructure with ``<+provisioner.NAME>`` replaced. Before the provisioner
    steps are done, fields that use one are left out (a provisioner step gets no region
    or cluster it cannot know yet)."""
    resolved: dict[str, Any] = {}
    for key, value in infra.items():
        if not uses_provisioner(value):
            resolved[key] = value
        elif provisioned is not None:
            resolved[key] = _substitute(value, provisioned, f"infrastructure.{key}")
    return resolved


def _substitute(value: Any, provisioned: dict[str, Any], where: str) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, provisioned, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, provisioned, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    whole = PROVISIONER_EXPR.fullmatch(value.strip())
    if whole:
        return lookup(whole.group(1), provisioned, where)
    return PROVISIONER_EXPR.sub(lambda m: str(lookup(m.group(1), provisioned, where)), value)
