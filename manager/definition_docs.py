"""The documents ``delegate apply`` stores: services, environments, infrastructure
definitions and overrides, each ``{kind, name, spec}``.

::

    kind: Service          spec: {manifests, variables, artifact}
    kind: Environment      spec: {type: Production|PreProduction, variables}
    kind: Infrastructure   spec: {environment, region, cluster, credentials}
    kind: Override         spec: {service, environment | infrastructure, manifests, variables}

An override names either an environment (the environment's service-specific override) or
an infrastructure definition (the infrastructure level); see manager/effective.py for
which wins. Manifest sources are kept as written: the delegate checks them when it
fetches them, as it does for inline ones."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

KINDS = ("Service", "Environment", "Infrastructure", "Override")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
# The manifest kinds, in the order a deploy applies them; lists are replaced whole.
MANIFEST_KINDS = ("taskDefinition", "serviceDefinition", "scalableTargets", "scalingPolicies")


class DocumentError(ValueError):
    """A document that cannot be stored: the message says which, where and why."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Manifests(_Spec):
    task_definition: dict[str, Any] | None = Field(default=None, alias="taskDefinition")
    service_definition: dict[str, Any] | None = Field(default=None, alias="serviceDefinition")
    scalable_targets: list[dict[str, Any]] | None = Field(default=None, alias="scalableTargets")
    scaling_policies: list[dict[str, Any]] | None = Field(default=None, alias="scalingPolicies")


class ArtifactSource(_Spec):
    type: Literal["dockerRegistry", "ecr"]
    registry: str | None = Field(default=None, description="dockerRegistry: https://host[:port]")
    image: str | None = Field(default=None, description="dockerRegistry: repository path")
    repository: str | None = Field(default=None, description="ecr: repository name")
    region: str | None = None
    username: str | None = None
    password_secret: str | None = Field(default=None, alias="passwordSecret")


class Artifact(_Spec):
    source: ArtifactSource
    tag: str | None = None
    tag_regex: str | None = Field(default=None, alias="tagRegex")

    @model_validator(mode="after")
    def _one_tag(self) -> Artifact:
        if (self.tag is None) == (self.tag_regex is None):
            raise ValueError("give exactly one of tag (a fixed tag) or tagRegex (the newest "
                             "matching tag)")
        return self


class ServiceSpec(_Spec):
    manifests: Manifests = Field(default_factory=Manifests)
    variables: dict[str, Any] = Field(default_factory=dict)
    artifact: Artifact | None = None


class EnvironmentSpec(_Spec):
    type: Literal["Production", "PreProduction"] = "PreProduction"
    variables: dict[str, Any] = Field(default_factory=dict)


class InfrastructureSpec(_Spec):
    environment: str = Field(pattern=NAME_PATTERN)
    region: str | None = None
    cluster: str | None = None
    credentials: dict[str, Any] | None = None


class OverrideSpec(_Spec):
    service: str = Field(pattern=NAME_PATTERN)
    environment: str | None = Field(default=None, pattern=NAME_PATTERN)
    infrastructure: str | None = Field(default=None, pattern=NAME_PATTERN)
    manifests: Manifests = Field(default_factory=Manifests)
    variables: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_level(self) -> OverrideSpec:
        if (self.environment is None) == (self.infrastructure is None):
            raise ValueError("name exactly one of environment (the environment's override "
                             "for this service) or infrastructure (the infrastructure "
                             "definition's override)")
        return self


SPECS: dict[str, type[_Spec]] = {"Service": ServiceSpec, "Environment": EnvironmentSpec,
                                 "Infrastructure": InfrastructureSpec,
                                 "Override": OverrideSpec}


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["Service", "Environment", "Infrastructure", "Override"]
    name: str = Field(pattern=NAME_PATTERN)
    spec: dict[str, Any] = Field(default_factory=dict)


def _first_error(exc: ValidationError, prefix: str) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
    return f"{where}: {err['msg']}"


def parse_document(raw: Any, where: str) -> Document:
    """One document checked, with its spec in canonical form (aliases, defaults left out
    so that re-applying the same file stores nothing new)."""
    if not isinstance(raw, dict):
        raise DocumentError(f"{where}: a document is a mapping with kind, name and spec; "
                            f"got {type(raw).__name__}")
    try:
        doc = Document.model_validate(raw)
    except ValidationError as exc:
        raise DocumentError(f"{where}: {_first_error(exc, '')} (kinds: "
                            f"{', '.join(KINDS)})") from None
    try:
        spec = SPECS[doc.kind].model_validate(doc.spec)
    except ValidationError as exc:
        raise DocumentError(f"{where} ({doc.kind} {doc.name}): "
                            f"{_first_error(exc, 'spec')}") from None
    return doc.model_copy(update={"spec": spec.model_dump(mode="json", by_alias=True,
                                                          exclude_none=True)})
