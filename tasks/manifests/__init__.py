"""ECS manifests: fetch, parse, render, normalise and validate.

The ECS handlers use it in two calls (or one, :func:`load_manifests`)::

    async with ctx.log.unit("Fetch Manifests") as log:
        fetched = await fetch_manifests(params.manifests, ctx, aws, log)
    manifests = build_manifests(fetched, variables_for(ctx, region=..., cluster=...),
                                cluster=params.cluster)

``build_manifests`` raises :class:`ManifestError` (``str()`` is fit for a user: file,
line, field path, what to do) before any AWS call is made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from agent.context import TaskContext, UnitLog
from tasks.manifests import ecs_rules
from tasks.manifests.cloudformation import check_not_cloudformation
from tasks.manifests.errors import ManifestError, ManifestErrors, raise_all
from tasks.manifests.model import (
    CREATE_SERVICE,
    PUT_SCALING_POLICY,
    REGISTER_SCALABLE_TARGET,
    REGISTER_TASK_DEFINITION,
    RUN_TASK,
    UPDATE_SERVICE,
    Operation,
)
from tasks.manifests.normalize import (
    drop_nulls,
    normalize_run_task_request,
    normalize_scalable_targets,
    normalize_scaling_policies,
    normalize_service_definition,
    normalize_task_definition,
    resource_id,
    retarget,
)
from tasks.manifests.parse import check_depth, parse_manifest
from tasks.manifests.placeholders import find_placeholders
from tasks.manifests.render import Variables, render
from tasks.manifests.sources import (
    AnySource,
    AwsClients,
    FetchedFile,
    FilesSource,
    GitSource,
    InlineSource,
    ManifestSource,
    ManifestSpecs,
    S3Source,
    TaskDefinitionArn,
    fetch,
)
from tasks.manifests.validate import line_of_key, update_service_request, validate_request

__all__ = [
    "CREATE_SERVICE", "PUT_SCALING_POLICY", "REGISTER_SCALABLE_TARGET",
    "REGISTER_TASK_DEFINITION", "RUN_TASK", "UPDATE_SERVICE",
    "AnySource", "AwsClients", "FetchedFile", "FetchedManifests", "FilesSource", "GitSource",
    "InlineSource", "ManifestError", "ManifestErrors", "ManifestSource", "ManifestSpecs",
    "Manifests", "S3Source", "TaskDefinitionArn", "Variables", "build_manifests",
    "drop_nulls", "fetch", "fetch_manifests", "load_manifests", "resource_id", "retarget",
    "update_service_request", "validate_request", "variables_for",
]

KINDS = {
    "task_definition": "EcsTaskDefinition",
    "service_definition": "EcsServiceDefinition",
    "scalable_targets": "EcsScalableTargetDefinition",
    "scaling_policies": "EcsScalingPolicyDefinition",
    "run_task_request": "EcsRunTaskRequestDefinition",
}
# Stands in for the step's own task definition while a RunTask request is checked.
_TASK_DEFINITION_SLOT = "step-task-definition"
_SERVICE_NAME_SLOT = "<serviceName>"


@dataclass
class FetchedManifests:
    task_definition: list[FetchedFile] = field(default_factory=list)
    task_definition_arn: str | None = None
    service_definition: list[FetchedFile] = field(default_factory=list)
    scalable_targets: list[FetchedFile] = field(default_factory=list)
    scaling_policies: list[FetchedFile] = field(default_factory=list)
    run_task_request: list[FetchedFile] = field(default_factory=list)


@dataclass
class Manifests:
    """Final, validated AWS requests. ``service_definition`` and ``run_task_request`` lack
    ``cluster`` and ``taskDefinition``, which the step sets."""

    task_definition: dict[str, Any] | None = None
    task_definition_arn: str | None = None
    service_definition: dict[str, Any] | None = None
    scalable_targets: list[dict[str, Any]] = field(default_factory=list)
    scaling_policies: list[dict[str, Any]] = field(default_factory=list)
    run_task_request: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def service_name(self) -> str | None:
        name = (self.service_definition or {}).get("serviceName")
        return name if isinstance(name, str) else None


def variables_for(ctx: TaskContext, *, region: str | None, cluster: str | None,
                  extra: Mapping[str, Any] | None = None) -> Variables:
    """Expression variables from a task: its context and secrets; secret values an
    expression uses are registered with the task's log masking."""
    return Variables(context=ctx.context, secrets=ctx.secrets, region=region,
                     cluster=cluster, extra=dict(extra or {}), on_secret=ctx.add_secret)


async def fetch_manifests(specs: ManifestSpecs, ctx: TaskContext, aws: AwsClients | None,
                          log: UnitLog, *, base_dir: str | None = None) -> FetchedManifests:
    out = FetchedManifests()
    td = specs.task_definition
    if isinstance(td, TaskDefinitionArn):
        out.task_definition_arn = td.task_definition_arn
        log.info(f"Using the registered task definition {td.task_definition_arn}")
        log.info("")
    elif td is not None:
        out.task_definition = await fetch(td, ctx, aws, log, kind=KINDS["task_definition"],
                                          base_dir=base_dir)
    singles: list[tuple[str, AnySource | None]] = [
        ("service_definition", specs.service_definition),
        ("run_task_request", specs.run_task_request),
    ]
    for attr, single in singles:
        if single is not None:
            setattr(out, attr, await fetch(single, ctx, aws, log, kind=KINDS[attr],
                                           base_dir=base_dir))
    for attr, many in (("scalable_targets", specs.scalable_targets),
                       ("scaling_policies", specs.scaling_policies)):
        files: list[FetchedFile] = []
        for spec in many:
            files.extend(await fetch(spec, ctx, aws, log, kind=KINDS[attr], base_dir=base_dir))
        setattr(out, attr, files)
    log.info("Fetched all manifests")
    return out


def _load(file: FetchedFile, variables: Variables) -> tuple[Any, str | None]:
    if file.text is None:
        check_depth(file.content, file.name)
        raw = None
        doc = file.content
    else:
        doc = parse_manifest(file.text, file.name)
        raw = file.text if isinstance(file.text, str) else file.text.decode("utf-8", "replace")
    # Before rendering: a placeholder is the author's slip, wherever it sits.
    raise_all(find_placeholders(doc, file=file.name, raw=raw))
    return render(drop_nulls(doc), variables, file=file.name, raw=raw), raw


def _single(files: list[FetchedFile], what: str) -> FetchedFile | None:
    if len(files) > 1:
        raise ManifestError(f"the {what} source names {len(files)} files; give exactly one",
                            file=", ".join(f.name for f in files))
    return files[0] if files else None


Normalizer = Callable[[Any, str], tuple[Any, list[str]]]


@dataclass
class _Build:
    """One pass over everything fetched, collecting every problem of every file."""

    variables: Variables
    cluster: str | None
    allow_placeholders: bool
    result: Manifests
    errors: list[ManifestError] = field(default_factory=list)
    raw: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    def collect(self, exc: ManifestError) -> None:
        self.errors.extend(exc.errors if isinstance(exc, ManifestErrors) else [exc])

    def one(self, files: list[FetchedFile], kind: str, normalize: Normalizer,
            op: Operation, slot: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The validated request of a single-file manifest; None when absent or bad."""
        try:
            if (file := _single(files, kind.replace("_", " "))) is None:
                return None
            doc, raw = _load(file, self.variables)
            check_not_cloudformation(doc, op, file=file.name)
            request, warnings = normalize(doc, file.name)
            self.result.warnings += warnings
            checked = validate_request({**request, **(slot or {})}, op, file=file.name,
                                       raw=raw, allow_placeholders=self.allow_placeholders)
            self.raw[kind] = (file.name, raw)
            for key in slot or {}:
                checked.pop(key)
            return checked
        except ManifestError as exc:
            self.collect(exc)
            return None

    def many(self, files: list[FetchedFile], normalize: Callable[..., Any], op: Operation,
             service_name: str | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for file in files:
            try:
                doc, raw = _load(file, self.variables)
                requests, warnings = normalize(doc, file.name, cluster=self.cluster,
                                               service_name=service_name)
                self.result.warnings += warnings
                out += [validate_request(r, op, file=file.name, raw=raw,
                                         allow_placeholders=self.allow_placeholders)
                        for r in requests]
            except ManifestError as exc:
                self.collect(exc)
        return out

    def ecs_rules(self) -> None:
        """ECS's service-side rules, once both definitions passed the model check."""
        files = {ecs_rules.TASK: self.raw.get("task_definition"),
                 ecs_rules.SERVICE: self.raw.get("service_definition"),
                 ecs_rules.RUN_TASK: self.raw.get("run_task_request")}
        for finding in ecs_rules.check(self.result.task_definition,
                                       self.result.service_definition,
                                       self.result.run_task_request):
            name, raw = files[finding.manifest] or (finding.manifest, None)
            self.errors.append(ManifestError(
                finding.message, file=name, path=finding.path,
                line=line_of_key(raw, finding.path.rsplit(".", 1)[-1])))


def build_manifests(fetched: FetchedManifests, variables: Variables, *, cluster: str | None,
                    service_name: str | None = None,
                    allow_placeholders: bool = False) -> Manifests:
    """Parse, render, normalise and validate everything fetched, and check ECS's own
    rules across the definitions. Every problem in every file is collected before
    raising. ``service_name`` overrides the service definition's name for the
    autoscaling ``ResourceId`` (a canary or stage service)."""
    build = _Build(variables, cluster, allow_placeholders,
                   Manifests(task_definition_arn=fetched.task_definition_arn))
    result = build.result
    result.task_definition = build.one(
        fetched.task_definition, "task_definition", normalize_task_definition,
        REGISTER_TASK_DEFINITION)
    result.service_definition = build.one(
        fetched.service_definition, "service_definition",
        partial(normalize_service_definition, cluster=cluster), CREATE_SERVICE)
    service_failed = bool(fetched.service_definition) and result.service_definition is None
    result.run_task_request = build.one(
        fetched.run_task_request, "run_task_request",
        partial(normalize_run_task_request, cluster=cluster), RUN_TASK,
        slot={"taskDefinition": _TASK_DEFINITION_SLOT})
    target_service = service_name or result.service_name
    if target_service is None and service_failed:
        # Stands in for the name so autoscaling files are still checked, without a
        # second error about a ResourceId that only the broken file could give.
        target_service = _SERVICE_NAME_SLOT
    result.scalable_targets = build.many(fetched.scalable_targets, normalize_scalable_targets,
                                         REGISTER_SCALABLE_TARGET, target_service)
    result.scaling_policies = build.many(fetched.scaling_policies, normalize_scaling_policies,
                                         PUT_SCALING_POLICY, target_service)
    build.ecs_rules()
    raise_all(build.errors)
    return result


async def load_manifests(specs: ManifestSpecs, ctx: TaskContext, aws: AwsClients | None,
                         log: UnitLog, *, region: str, cluster: str,
                         extra_variables: Mapping[str, Any] | None = None,
                         service_name: str | None = None) -> Manifests:
    """Fetch and build in one call; warnings are also written to ``log``."""
    fetched = await fetch_manifests(specs, ctx, aws, log)
    manifests = build_manifests(
        fetched, variables_for(ctx, region=region, cluster=cluster, extra=extra_variables),
        cluster=cluster, service_name=service_name)
    for warning in manifests.warnings:
        log.warn(warning)
    return manifests
