"""Offline checks of an execution's provisioner section for `delegate validate`.

A ``<+provisioner.NAME>`` resolves at run time, from the provisioner steps' outputs. When
every provisioner step declares its outputs offline — a CloudFormation step whose
template is inline lists them under ``Outputs`` — a NAME none of them declares is an
error (with the nearest declared name); otherwise the report notes that the names are
checked when the provisioner has run."""

from __future__ import annotations

import difflib
import json
from typing import Any

import yaml

from manager.provisioning import PROVISIONER_EXPR
from tasks.manifests.errors import ManifestError


class _TemplateLoader(yaml.SafeLoader):
    """CloudFormation's short forms (!Ref, !Sub, !GetAtt ...) read as plain values: only
    the Outputs' keys matter here."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_TemplateLoader.add_multi_constructor("!", _any_tag)


def _template_outputs(template: str) -> set[str] | None:
    try:
        doc = json.loads(template) if template.lstrip().startswith("{") else \
            yaml.load(template, Loader=_TemplateLoader)
    except (ValueError, yaml.YAMLError):
        return None  # the step's own check reports the template
    outputs = doc.get("Outputs") if isinstance(doc, dict) else None
    return set(outputs) if isinstance(outputs, dict) else set()


def declared_outputs(provisioner: dict[str, Any]) -> set[str] | None:
    """What the provisioner steps will output, or None when a step's outputs are only
    known once it runs (a template in a store, a shell provisioner)."""
    declared: set[str] = set()
    for step in provisioner.get("steps") or []:
        params = step.get("params") if isinstance(step, dict) else None
        template = params.get("template") if isinstance(params, dict) else None
        if step.get("type") != "cloudformation.create_stack" or not isinstance(template, str):
            return None
        found = _template_outputs(template)
        if found is None:
            return None
        declared |= found
    return declared


def _references(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in _references(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [r for i, v in enumerate(value) for r in _references(v, f"{path}[{i}]")]
    if isinstance(value, str):
        return [(m.group(1), path) for m in PROVISIONER_EXPR.finditer(value)]
    return []


def check(doc: dict[str, Any], *, file: str) -> tuple[list[ManifestError], list[str]]:
    """(errors, notes) for the file's ``<+provisioner.NAME>`` references."""
    refs = _references(doc.get("infrastructure") or {}, "infrastructure")
    for group in ("steps", "rollbackSteps"):
        for i, step in enumerate(doc.get(group) or []):
            if isinstance(step, dict):
                refs += _references(step.get("params") or {}, f"{group}[{i}].params")
    provisioner = doc.get("provisioner")
    if not refs:
        return [], []
    if not isinstance(provisioner, dict):
        return [ManifestError(f"<+provisioner.{refs[0][0]}> is used but the execution has no "
                              "provisioner section to produce it", file=file,
                              path=refs[0][1])], []
    declared = declared_outputs(provisioner)
    if declared is None:
        names = ", ".join(sorted({n for n, _ in refs}))
        return [], [f"<+provisioner.{{{names}}}> resolve at run time, from the provisioner "
                    "steps' outputs"]
    errors = []
    for name, path in refs:
        if name not in declared:
            close = difflib.get_close_matches(name, sorted(declared), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else \
                f"; they declare: {', '.join(sorted(declared)) or 'none'}"
            errors.append(ManifestError(
                f"<+provisioner.{name}>: no provisioner step declares output {name!r}{hint}",
                file=file, path=path))
    return errors, []
