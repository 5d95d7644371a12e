"""The effective inputs of an execution that names its service, environment and
infrastructure definition instead of inlining them.

Which wins, lowest first (a later level replaces an earlier one):

* manifests, kind by kind (``taskDefinition``, ``serviceDefinition``, ``scalableTargets``,
  ``scalingPolicies``; a list kind is replaced whole): the service's, then the
  environment's override for that service, then the infrastructure definition's
  override for it;
* variables, name by name: the service's, the environment's, the environment's override
  for the service, the infrastructure definition's override, then any the execution file
  itself gives (``serviceVariables`` / ``env.variables``). The result is both
  ``<+serviceVariables.X>`` and ``<+env.variables.X>``.

Every value carries where it came from (``from``), so ``delegate execution render``
can say why a manifest or a variable is what it is. Pure: a catalogue of stored
definitions in, values out; the manager reads its database, ``delegate validate`` a
folder of local files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from manager.definition_docs import MANIFEST_KINDS
from manager.definitions import Stored


class BadReference(ValueError):
    """A named definition that does not exist or does not fit: says which and what to do."""


class Catalogue(Protocol):
    def current(self, kind: str, name: str) -> Stored | None: ...

    def all(self, kind: str) -> list[Stored]: ...


@dataclass
class Effective:
    service: Stored
    environment: Stored
    infrastructure: Stored
    overrides: list[Stored]
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def used(self) -> list[Stored]:
        return [self.service, self.environment, self.infrastructure, *self.overrides]

    def view(self) -> dict[str, Any]:
        infra = self.infrastructure.spec
        return {
            "service": self.service.name, "environment": self.environment.name,
            "infrastructure": {"name": self.infrastructure.name,
                               **{k: infra.get(k) for k in ("region", "cluster")},
                               "from": label(self.infrastructure)},
            "manifests": self.manifests, "variables": self.variables,
            "artifact": self.service.spec.get("artifact"),
            "definitions": [{"kind": d.kind, "name": d.name, "revision": d.revision}
                            for d in self.used],
        }


def label(d: Stored) -> str:
    where = ""
    if d.kind == "Override":
        level = "infrastructure" if d.spec.get("infrastructure") else "environment"
        where = f" ({level} {d.spec.get(level)})"
    return f"{d.kind.lower()} {d.name}{where} revision {d.revision}"


def _need(cat: Catalogue, kind: str, name: str, field_name: str) -> Stored:
    found = cat.current(kind, name)
    if found is None:
        have = ", ".join(d.name for d in cat.all(kind)) or "none"
        raise BadReference(f"{field_name}: no {kind} named {name!r} is stored (stored: "
                              f"{have}); apply it with `delegate apply -f FILE` first")
    return found


def _infrastructure(cat: Catalogue, env: Stored, named: str | None) -> Stored:
    if named is not None:
        infra = _need(cat, "Infrastructure", named, "infrastructure")
        if infra.spec.get("environment") != env.name:
            raise BadReference(f"infrastructure: {named!r} belongs to environment "
                                  f"{infra.spec.get('environment')!r}, not {env.name!r}")
        return infra
    inside = [d for d in cat.all("Infrastructure") if d.spec.get("environment") == env.name]
    if len(inside) != 1:
        names = ", ".join(d.name for d in inside) or "none"
        raise BadReference(f"infrastructure: environment {env.name!r} has "
                              f"{len(inside)} infrastructure definitions ({names}); name "
                              "one with `infrastructure: NAME`")
    return inside[0]


def _override(cat: Catalogue, service: str, level: str, name: str) -> Stored | None:
    found = [d for d in cat.all("Override")
             if d.spec.get("service") == service and d.spec.get(level) == name]
    if len(found) > 1:
        raise BadReference(f"overrides {', '.join(d.name for d in found)} all override "
                              f"service {service!r} for {level} {name!r}; keep one")
    return found[0] if found else None


def compute(cat: Catalogue, *, service: str, environment: str | None,
            infrastructure: str | None) -> Effective:
    svc = _need(cat, "Service", service, "service")
    if environment is None:
        if infrastructure is None:
            raise BadReference("environment: name the environment to deploy to")
        environment = _need(cat, "Infrastructure", infrastructure,
                            "infrastructure").spec["environment"]
    env = _need(cat, "Environment", str(environment), "environment")
    infra = _infrastructure(cat, env, infrastructure)
    overrides = [o for o in (_override(cat, svc.name, "environment", env.name),
                             _override(cat, svc.name, "infrastructure", infra.name)) if o]
    eff = Effective(service=svc, environment=env, infrastructure=infra, overrides=overrides)
    for source in (svc, *overrides):
        for kind in MANIFEST_KINDS:
            value = (source.spec.get("manifests") or {}).get(kind)
            if value is not None:
                eff.manifests[kind] = {"value": value, "from": label(source)}
    variable_sources = [svc, env, *overrides]
    for source in variable_sources:
        for name, value in (source.spec.get("variables") or {}).items():
            eff.variables[name] = {"value": value, "from": label(source)}
    return eff


def apply_inline(eff: Effective, inline: dict[str, Any]) -> None:
    """The execution file's own variables win over every stored level."""
    given = {**((inline.get("env") or {}).get("variables") or {}),
             **(inline.get("serviceVariables") or {})}
    for name, value in given.items():
        eff.variables[name] = {"value": value, "from": "execution file"}


def expanded_fields(eff: Effective, inline: dict[str, Any]) -> dict[str, Any]:
    """What replaces the references in the execution file: an inline execution file
    that deploys the same thing."""
    apply_inline(eff, inline)
    infra = {k: v for k, v in eff.infrastructure.spec.items() if k != "environment"}
    variables = {k: v["value"] for k, v in eff.variables.items()}
    fields: dict[str, Any] = {
        "infrastructure": infra,
        "serviceVariables": variables,
        "env": {"name": eff.environment.name, "type": eff.environment.spec.get("type"),
                "variables": variables},
        "manifests": {k: v["value"] for k, v in eff.manifests.items()},
    }
    artifact = eff.service.spec.get("artifact")
    if artifact and not inline.get("artifact"):
        fields["artifact"] = artifact
    return fields
