"""``delegate validate --definitions DIR``: an execution file by reference (``service``,
``environment``, ``infrastructure`` naming definitions) checked offline, the definitions
read from local files instead of the manager. The effective manifests and variables are
computed exactly as the manager computes them on submit (manager/effective.py), printed
with where each came from, and the steps are then checked as an inline file's are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.context import TaskRegistry
from cli.definition_files import read_documents
from manager.definition_docs import DocumentError, parse_document
from manager.definitions import Stored
from manager.effective import BadReference, compute, expanded_fields
from tasks.manifests import ManifestError

LOCAL_REVISION = 0  # not stored yet: "revision 0" in the explanations


class LocalCatalogue:
    def __init__(self, folder: Path) -> None:
        self.docs: dict[tuple[str, str], Stored] = {}
        for where, raw in read_documents(folder):
            doc = parse_document(raw, where)
            self.docs[(doc.kind, doc.name)] = Stored(kind=doc.kind, name=doc.name,
                                                     revision=LOCAL_REVISION, spec=doc.spec,
                                                     created_at=0.0)

    def current(self, kind: str, name: str) -> Stored | None:
        return self.docs.get((kind, name))

    def all(self, kind: str) -> list[Stored]:
        return [d for (k, _), d in sorted(self.docs.items()) if k == kind]


def by_reference(doc: dict[str, Any]) -> bool:
    return "environment" in doc or isinstance(doc.get("infrastructure"), str)


def expand_local(doc: dict[str, Any], folder: Path | None, *, file: str,
                 registry: TaskRegistry) -> tuple[dict[str, Any], dict[str, Any]]:
    """The inline execution file ``doc`` stands for, and the effective inputs shown."""
    if folder is None:
        raise ManifestError("this execution names stored definitions (environment / "
                            "infrastructure); pass --definitions DIR with their files to "
                            "check it offline, or `delegate execution render` it", file=file)
    try:
        eff = compute(LocalCatalogue(folder), service=str(doc.get("service")),
                      environment=doc.get("environment"),
                      infrastructure=doc["infrastructure"]
                      if isinstance(doc.get("infrastructure"), str) else None)
    except (BadReference, DocumentError) as exc:
        raise ManifestError(str(exc), file=file) from None
    fields = expanded_fields(eff, doc)
    expanded = {**{k: v for k, v in doc.items() if k != "environment"}, **fields}
    manifests = fields["manifests"]
    for group in ("steps", "rollbackSteps"):
        for step in expanded.get(group) or []:
            takes = registry.get(str(step.get("type"))) if isinstance(step, dict) else None
            model = takes.params_model if takes is not None else None
            params = step.get("params") or {}
            if model is not None and "manifests" in model.model_fields \
                    and "manifests" not in params and manifests:
                step["params"] = {**params, "manifests": manifests}
    return expanded, eff.view()


def with_runtime_artifact(doc: dict[str, Any]) -> dict[str, Any]:
    """An artifact with a source is resolved by the execution's first step: offline, its
    image, tag and digest print as what will be looked up."""
    artifact = doc.get("artifact")
    if not isinstance(artifact, dict) or not isinstance(artifact.get("source"), dict):
        return doc
    src = artifact["source"]
    name = src.get("image") or src.get("repository") or "?"
    tag = artifact.get("tag") or f"(newest tag matching {artifact.get('tagRegex')!r})"
    return {**doc, "artifact": {
        "image": f"({src.get('type')} {name}:{tag}, pinned to its digest at run time)",
        "tag": tag, "digest": "(its digest, resolved at run time)"}}


def prepared(doc: dict[str, Any], folder: Path | None, out: dict[str, Any], *, file: str,
             registry: TaskRegistry) -> dict[str, Any]:
    """An execution file as the offline checks take it: references expanded (the
    effective inputs into ``out``), an artifact source shown as what it will resolve."""
    if "steps" not in doc:
        return doc
    if by_reference(doc):
        doc, out["effective"] = expand_local(doc, folder, file=file, registry=registry)
    return with_runtime_artifact(doc)
