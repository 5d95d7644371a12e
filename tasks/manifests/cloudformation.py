"""Recognising a manifest written with CloudFormation's property names.

A CloudFormation template's ``AWS::ECS::TaskDefinition`` says ``ContainerDefinitions``,
``Family``, ``Cpu``; the ECS API that a step calls says ``containerDefinitions``,
``family``, ``cpu``. Pasted as is, such a file would be reported as a dozen unknown fields
and a missing ``family``; it is reported once, as what it is, with the names to write.
"""

from __future__ import annotations

from typing import Any

from tasks.manifests.errors import ManifestError
from tasks.manifests.model import Operation, members

_RESOURCE = {"RegisterTaskDefinition": "AWS::ECS::TaskDefinition",
             "CreateService": "AWS::ECS::Service", "RunTask": "AWS::ECS::TaskSet"}


def _renames(doc: dict[str, Any], op: Operation) -> dict[str, str]:
    by_lower = {m.lower(): m for m in members(op)}
    return {key: by_lower[key.lower()] for key in doc
            if isinstance(key, str) and key[:1].isupper() and key.lower() in by_lower
            and key not in by_lower.values()}


def check_not_cloudformation(doc: Any, op: Operation, *, file: str) -> None:
    """Raise when ``doc`` is a CloudFormation template, resource or property block."""
    if not isinstance(doc, dict):
        return
    resource = _RESOURCE.get(op.name, "AWS::ECS")
    if "Resources" in doc or "AWSTemplateFormatVersion" in doc:
        raise ManifestError(
            f"this is a CloudFormation template, not a {op.name} request; take the "
            f"Properties of its {resource} resource and write them with the API's "
            "camelCase names (ContainerDefinitions -> containerDefinitions)", file=file)
    if isinstance(doc.get("Type"), str) and str(doc["Type"]).startswith("AWS::") \
            and "Properties" in doc:
        doc = doc["Properties"] if isinstance(doc["Properties"], dict) else {}
        wrapped = True
    else:
        wrapped = False
    renames = _renames(doc, op)
    if not renames or (not wrapped and len(renames) * 2 < len(doc)):
        return
    shown = ", ".join(f"{old} -> {new}" for old, new in list(renames.items())[:6])
    raise ManifestError(
        f"written with CloudFormation's property names ({resource}), but the step sends "
        f"the ECS {op.name} API request, whose names start lower-case: write {shown}"
        + (", and the same inside" if len(renames) <= 6 else ", ...")
        + (" (and drop the Type/Properties wrapper)" if wrapped else ""), file=file)
