"""``delegate validate FILE``: check a task or execution file offline.

Everything a deploy step does before its first AWS call is done here: fetch, parse,
render, normalise and validate the manifests against the botocore model. It prints the
final AWS requests of every step as JSON and exits 0, or prints every problem and exits
1. No AWS and no manager are contacted.

Local files stand in for the stores:

* ``files`` paths resolve next to the validated file: ``account:/ECS Tutorial/Task.yaml``
  (the scope prefix ``account:``, ``org:`` or ``project:`` and the leading ``/`` removed)
  is looked for as ``ECS Tutorial/Task.yaml``, then as ``Task.yaml``, in the file's
  directory. Paths may not leave that directory.
* ``git`` repositories are cloned as usual; a relative ``repo`` is a path from the file's
  directory.
* ``s3`` sources are skipped with a note.

Values only known at run time print as expressions: step outputs
(``<+execution.steps.ID.output.KEY>``), secrets (never printed) and ``<+targetGroupArn>``.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import json
import re
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from agent.context import TaskContext, TaskLog, TaskRegistry, load_registry, params_with_defaults
from cli import provisioner_check, validate_refs
from tasks.manifests import (
    ManifestError,
    ManifestErrors,
    Manifests,
    ManifestSpecs,
    S3Source,
    Variables,
    build_manifests,
    fetch_manifests,
    update_service_request,
)
from tasks.manifests.parse import parse_manifest
from tasks.manifests.placeholders import find_placeholders
from tasks.manifests.render import render

_SCOPE = re.compile(r"^(account|org|project):")
# Known only when a step runs: kept as written instead of failing.
RUNTIME_ROOTS = frozenset({"execution", "secrets", "targetGroupArn", "provisioner"})
REGISTERED_TASK_DEFINITION = "(ARN of the task definition this step registers)"


class LocalFileStore:
    """The manager's file store, read from the directory of the validated file."""

    def __init__(self, base: Path) -> None:
        self.base = base.resolve()

    def candidates(self, path: str) -> list[Path]:
        relative = _SCOPE.sub("", path).lstrip("/")
        parts = Path(relative).parts
        if not parts or ".." in parts or "\x00" in relative:
            raise ManifestError("not a file path that stays inside the validated file's "
                                "directory", file=path)
        return list(dict.fromkeys([self.base / relative, self.base / parts[-1]]))

    async def get(self, path: str) -> bytes:
        tried = self.candidates(path)
        for candidate in tried:
            if candidate.is_file():
                return candidate.read_bytes()
        raise ManifestError(
            "no local copy; looked for " + " and ".join(str(c) for c in tried)
            + " (see `delegate validate --help` for the rule)", file=path)


def _without_s3(specs: ManifestSpecs, notes: list[str]) -> ManifestSpecs:
    update: dict[str, Any] = {}
    for attr in ("task_definition", "service_definition", "run_task_request"):
        spec = getattr(specs, attr)
        if isinstance(spec, S3Source):
            notes.append(f"{attr}: s3://{spec.bucket}/{spec.key} skipped (S3 is not read "
                         "offline)")
            update[attr] = None
    for attr in ("scalable_targets", "scaling_policies"):
        kept = []
        for spec in getattr(specs, attr):
            if isinstance(spec, S3Source):
                notes.append(f"{attr}: s3://{spec.bucket}/{spec.key} skipped (S3 is not "
                             "read offline)")
            else:
                kept.append(spec)
        update[attr] = kept
    return specs.model_copy(update=update)


def _pydantic_errors(exc: ValidationError, prefix: str, file: str) -> list[ManifestError]:
    out = []
    for err in exc.errors():
        path = ".".join([prefix, *(str(p) for p in err["loc"])])
        out.append(ManifestError(err["msg"], file=file, path=path))
    return out


@functools.cache
def _registry() -> TaskRegistry:
    return load_registry()


def _unresolved(value: Any) -> bool:
    return isinstance(value, str) and "<+" in value


def check_params(step: dict[str, Any], params: dict[str, Any], defaults: dict[str, Any],
                 *, file: str, prefix: str) -> list[ManifestError]:
    """The step's type exists and its params fit that type's model, as the delegate
    will check them (with the execution's region, cluster and credentials offered).
    A field still holding an expression the run resolves is not judged offline."""
    registry = _registry()
    step_type = str(step.get("type") or "")
    task_type = registry.get(step_type)
    if task_type is None:
        close = difflib.get_close_matches(step_type, registry.names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else \
            f"; known types: {', '.join(registry.names())}"
        return [ManifestError(f"unknown step type {step_type!r}{hint}", file=file,
                              path=f"{prefix}.type")]
    if task_type.params_model is None:
        return []
    model = task_type.params_model
    try:
        model.model_validate(params_with_defaults(model, params, defaults))
    except ValidationError as exc:
        fields = [info.alias or name for name, info in model.model_fields.items()]
        out = []
        for err in exc.errors():
            if _unresolved(err.get("input")):
                continue
            path = ".".join([f"{prefix}.params", *(str(p) for p in err["loc"])])
            msg = err["msg"]
            if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
                close = difflib.get_close_matches(str(err["loc"][0]), fields, n=1)
                msg += f"; did you mean {close[0]!r}?" if close else \
                    f"; {step_type} takes: {', '.join(fields)}"
            out.append(ManifestError(msg, file=file, path=path))
        return out
    return []


def _problems(exc: ManifestError) -> list[ManifestError]:
    return exc.errors if isinstance(exc, ManifestErrors) else [exc]


def _requests(manifests: Manifests, cluster: str | None, report: dict[str, Any]) -> None:
    """The final AWS requests of a step, into ``report``."""
    requests = report["requests"]
    task_definition = manifests.task_definition_arn or REGISTERED_TASK_DEFINITION
    if manifests.task_definition is not None:
        requests["RegisterTaskDefinition"] = manifests.task_definition
    if manifests.task_definition_arn is not None:
        requests["DescribeTaskDefinition"] = {"taskDefinition": manifests.task_definition_arn}
    if manifests.service_definition is not None:
        create = {"cluster": cluster, **manifests.service_definition,
                  "taskDefinition": task_definition}
        requests["CreateService"] = create
        update, dropped = update_service_request(create)
        requests["UpdateService"] = update
        if dropped:
            report["notes"].append("UpdateService (when the service exists) leaves out "
                                   "what it cannot change: " + ", ".join(dropped))
    if manifests.scalable_targets:
        requests["RegisterScalableTarget"] = manifests.scalable_targets
    if manifests.scaling_policies:
        requests["PutScalingPolicy"] = manifests.scaling_policies
    if manifests.run_task_request is not None:
        requests["RunTask"] = {"cluster": cluster, **manifests.run_task_request,
                               "taskDefinition": task_definition}
    report["warnings"] = manifests.warnings


async def _check_step(step: dict[str, Any], *, file: str, base: Path,
                      context: dict[str, Any], region: str | None, cluster: str | None,
                      prefix: str) -> tuple[dict[str, Any], list[ManifestError]]:
    params = step.get("params") or {}
    if not isinstance(params, dict):
        return {}, [ManifestError("params must be a mapping", file=file,
                                  path=f"{prefix}.params")]
    report: dict[str, Any] = {"type": step.get("type"), "requests": {}, "notes": []}
    try:
        # The manager resolves a step's params before dispatch: infra and step outputs.
        params = render(params, Variables(context=context, region=region, cluster=cluster,
                                          placeholder_roots=RUNTIME_ROOTS),
                        file=file)
    except ManifestError as exc:
        return report, _problems(exc)
    offered = {k: v for k, v in (("region", region), ("cluster", cluster)) if v is not None}
    wrong = check_params(step, params, offered, file=file, prefix=prefix)
    if wrong:
        return report, wrong
    region = params.get("region", region)
    cluster = params.get("cluster", cluster)
    variables = Variables(context=context, region=region, cluster=cluster,
                          placeholder_roots=RUNTIME_ROOTS)
    if params.get("manifests") is None:
        report["notes"].append("no manifests in this step's params")
        return report, []
    try:
        specs = ManifestSpecs.model_validate(params["manifests"])
    except ValidationError as exc:
        return report, _pydantic_errors(exc, f"{prefix}.params.manifests", file)
    specs = _without_s3(specs, report["notes"])
    ctx = TaskContext(task_id="validate", type=str(step.get("type")), params=params,
                      secrets={}, context=context, log=TaskLog(lambda _p: None),
                      files=LocalFileStore(base))
    try:
        async with ctx.log.unit("Fetch Manifests") as log:
            fetched = await fetch_manifests(specs, ctx, None, log, base_dir=str(base))
        manifests = build_manifests(fetched, variables, cluster=cluster,
                                    allow_placeholders=True)
    except ManifestError as exc:
        return report, _problems(exc)
    _requests(manifests, cluster, report)
    return report, []


async def validate_file(path: Path, data: bytes, definitions: Path | None = None,
                        ) -> tuple[dict[str, Any], list[ManifestError]]:
    """The report printed for the file ``path`` holding ``data``, and the problems
    (``definitions``: a folder of the stored definitions an execution may name)."""
    name = str(path)
    try:
        doc = parse_manifest(data, name)
    except ManifestError as exc:
        return {}, [exc]
    base = path.parent
    if not isinstance(doc, dict) or not ("steps" in doc or "type" in doc):
        return {}, [ManifestError("neither a task file (with `type` and `params`) nor an "
                                  "execution file (with `steps`)", file=name)]
    out: dict[str, Any] = {"file": name, "steps": {}}
    try:
        doc = validate_refs.prepared(doc, definitions, out, file=name, registry=_registry())
    except ManifestError as exc:
        return out, [exc]
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    # The file's own example slots (`loadBalancer: <Load Balancer>`), with their lines;
    # those in inline manifests are reported once, by the step's manifest check.
    errors: list[ManifestError] = [
        e for e in find_placeholders(doc, file=name, raw=text)
        if ".params.manifests." not in f".{e.path}"]
    if "steps" in doc:
        infra = doc.get("infrastructure") or {}
        context: dict[str, Any] = {key: doc[key] for key in ("artifact", "serviceVariables", "env")
                   if key in doc}
        context["infra"] = {k: infra[k] for k in ("region", "cluster") if k in infra}
        prov: dict[str, Any] = doc["provisioner"] if isinstance(doc.get("provisioner"),
                                                                dict) else {}
        all_steps = [("provisioner.steps", s) for s in prov.get("steps") or []]
        all_steps += [("provisioner.rollbackSteps", s) for s in prov.get("rollbackSteps") or []]
        all_steps += [("steps", s) for s in doc.get("steps") or []]
        all_steps += [("rollbackSteps", s) for s in doc.get("rollbackSteps") or []]
        wrong, notes = provisioner_check.check(doc, file=name)
        errors += wrong
        if notes:
            out["notes"] = notes
        for index, (group, step) in enumerate(all_steps):
            if not isinstance(step, dict):
                errors.append(ManifestError("a step must be a mapping", file=name,
                                            path=f"{group}[{index}]"))
                continue
            step_id = str(step.get("id") or f"{group}[{index}]")
            report, problems = await _check_step(
                step, file=name, base=base, context=context, region=infra.get("region"),
                cluster=infra.get("cluster"), prefix=step_id)
            out["steps"][step_id] = report
            errors += problems
    else:
        context = doc.get("context") or {}
        report, problems = await _check_step(doc, file=name, base=base, context=context,
                                             region=None, cluster=None, prefix="task")
        out["steps"]["task"] = report
        errors += problems
    return out, errors


@click.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--definitions", "-d", type=click.Path(exists=True, path_type=Path),
              default=None, help="Folder (or file) of services, environments, "
              "infrastructure and overrides an execution by reference names.")
def validate(file: Path, definitions: Path | None) -> None:
    """Check a task or execution FILE offline and print the final AWS requests.

    Manifest files in the manager's file store are read from FILE's directory:
    `account:/ECS Tutorial/Task.yaml` is looked for as `ECS Tutorial/Task.yaml`, then
    `Task.yaml`, next to FILE. Git sources are cloned; S3 sources are skipped.
    Exits 0 when every step is valid, 1 otherwise.
    """
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{file}: cannot read it: {exc.strerror}") from None
    report, errors = asyncio.run(validate_file(file, data, definitions))
    if report:
        click.echo(json.dumps(report, indent=2))
    for step in report.get("steps", {}).values():
        for warning in step.get("warnings", []):
            click.echo(f"warning: {warning}", err=True)
    if errors:
        click.echo(f"{len(errors)} problem(s) found:", err=True)
        for error in errors:
            click.echo(f"error: {error}", err=True)
        sys.exit(1)
    click.echo(f"OK: {file} is valid ({len(report['steps'])} step(s) checked)", err=True)
