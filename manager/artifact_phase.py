"""The artifact phase of an execution: when its artifact names a source (``artifact:
{source: {...}, tag: 1.27.3}`` or ``tagRegex``), a first step, ``artifact``
(``artifact.resolve``), runs on a delegate chosen by the execution's selectors before
anything else — before the provisioner and any AWS write — and its output (image pinned
to its digest, tag, digest) is the execution's artifact: ``<+artifact.image>``,
``<+primary.artifact.image>``, ``<+artifact.tag>``, ``<+artifact.digest>``.

The output is recorded with the step's task, so every later step, and a re-run of the
execution (``POST /api/executions/{id}/rerun``), deploys exactly that digest even after
a newer tag was pushed. An artifact without a source (``{image: nginx:1.27}``) is used
as written, as before. Pure: specs and outputs in, values out."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from manager.definition_docs import Artifact

STEP_ID = "artifact"
TASK_TYPE = "artifact.resolve"
MARK = "artifactStepId"  # in the stored spec: the id of the step that resolves it
TIMEOUT = 300.0
RESOLVED = ("image", "tag", "digest", "imagePath")


def has_source(artifact: Any) -> bool:
    return isinstance(artifact, dict) and "source" in artifact


def problem(artifact: dict[str, Any], step_ids: list[str]) -> str | None:
    """Why an execution's artifact cannot be resolved as written, or None."""
    if not has_source(artifact):
        return None
    try:
        Artifact.model_validate(artifact)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in ("artifact", *err["loc"]))
        return f"{where}: {err['msg']}"
    if STEP_ID in step_ids:
        return (f"a step has the id {STEP_ID!r}, which the artifact's look-up step takes; "
                "rename that step")
    return None


def add_step(body: dict[str, Any]) -> dict[str, Any]:
    """The stored spec with the look-up step first, when the artifact has a source."""
    artifact = body.get("artifact") or {}
    if not has_source(artifact):
        return body
    params = {k: artifact[k] for k in ("source", "tag", "tagRegex") if k in artifact}
    step = {"id": STEP_ID, "type": TASK_TYPE, "params": params, "selectors": None,
            "timeout": TIMEOUT}
    return {**body, "steps": [step, *body["steps"]], MARK: STEP_ID}


def context_artifact(spec: dict[str, Any], outputs: dict[str, dict[str, Any]]
                     ) -> dict[str, Any]:
    """What ``<+artifact.X>`` resolves from: the look-up step's output once it ran."""
    step_id = spec.get(MARK)
    if not step_id:
        return dict(spec.get("artifact") or {})
    found = outputs.get(step_id) or {}
    return {k: found[k] for k in RESOLVED if k in found}


def pinned(spec: dict[str, Any], outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A re-run's spec: the artifact as this run resolved it, with no look-up step."""
    step_id = spec.get(MARK)
    if not step_id:
        return spec
    resolved = context_artifact(spec, outputs)
    if "image" not in resolved:
        return spec  # never resolved: the re-run looks it up again
    body = {k: v for k, v in spec.items() if k != MARK}
    body["steps"] = [s for s in spec["steps"] if s["id"] != step_id]
    body["artifact"] = resolved
    return body
