"""Expressions in manifest values: ``<+primary.artifact.image>`` and friends.

Rendering works on parsed string values, never on the raw text, so a value holding a
quote or a newline cannot change the shape of the request. A string that is exactly one
expression takes the value's own type (an int stays an int); an expression inside a
longer string is replaced by its text. Line numbers for errors come from searching the
raw text for the expression.

What an expression can name (the task's expression context, see ``agent.context``)::

    primary.artifact.NAME            context["artifact"][NAME]
    artifact.NAME                    the same (image, tag, digest once resolved)
    serviceVariables.NAME            context["serviceVariables"][NAME]
    env.name / env.variables.NAME    context["env"]
    infra.region / infra.cluster     the step's region and cluster
    execution.steps.ID.output.KEY    context["execution"]["steps"][ID]["output"][KEY]
    provisioner.NAME                 an output of the execution's provisioner steps
    secrets.getValue("NAME")         the task's secrets; the value is registered for masking
    NAME                             an extra variable from the caller (targetGroupArn)

Nothing is read from the process environment.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tasks.manifests.errors import ManifestError, raise_all

EXPRESSION = re.compile(r"<\+([^<>]*)>")
_SECRET = re.compile(r"""secrets\.getValue\(\s*(["'])(?P<name>[^"']+)\1\s*\)""")


@dataclass(frozen=True)
class Variables:
    """Everything an expression can resolve to."""

    context: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    region: str | None = None
    cluster: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    on_secret: Callable[[str], None] = lambda _s: None
    # Roots left as written when they do not resolve (offline validation shows
    # ``<+execution.steps.X.output.Y>`` instead of failing on an output not yet known).
    placeholder_roots: frozenset[str] = frozenset()

    def tree(self) -> dict[str, Any]:
        ctx = dict(self.context)
        infra = dict(ctx.get("infra") or {})
        if self.region is not None:
            infra["region"] = self.region
        if self.cluster is not None:
            infra["cluster"] = self.cluster
        root: dict[str, Any] = {
            "primary": {"artifact": ctx.get("artifact") or {}},
            "artifact": ctx.get("artifact") or {},  # <+artifact.tag>, <+artifact.digest>
            "serviceVariables": ctx.get("serviceVariables") or {},
            "env": ctx.get("env") or {},
            "infra": infra,
            "execution": ctx.get("execution") or {},
            "provisioner": ctx.get("provisioner") or {},
        }
        root.update(self.extra)
        return root


class _Unresolved(Exception):
    pass


def _lookup(tree: Mapping[str, Any], expr: str) -> Any:
    node: Any = tree
    for part in expr.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            raise _Unresolved(part)
    if node is None or isinstance(node, Mapping | list):
        raise _Unresolved(expr)
    return node


def _root_of(expr: str) -> str:
    return "secrets" if _SECRET.fullmatch(expr) else expr.split(".", 1)[0]


def line_of(raw: str | None, needle: str) -> int | None:
    if not raw:
        return None
    at = raw.find(needle)
    return None if at < 0 else raw.count("\n", 0, at) + 1


class Renderer:
    def __init__(self, variables: Variables, *, file: str, raw: str | None) -> None:
        self._vars = variables
        self._tree = variables.tree()
        self._file = file
        self._raw = raw
        self.errors: list[ManifestError] = []

    def _resolve(self, expr: str, path: str) -> Any:
        expr = expr.strip()
        secret = _SECRET.fullmatch(expr)
        try:
            if secret:
                name = secret.group("name")
                if name not in self._vars.secrets:
                    raise _Unresolved(name)
                value = self._vars.secrets[name]
                self._vars.on_secret(value)
                return value
            return _lookup(self._tree, expr)
        except _Unresolved:
            if _root_of(expr) in self._vars.placeholder_roots:
                return f"<+{expr}>"
            self.errors.append(self._error(expr, path))
            return f"<+{expr}>"

    def _error(self, expr: str, path: str) -> ManifestError:
        root = _root_of(expr)
        if root == "secrets":
            what = (f"secret {_SECRET.fullmatch(expr).group('name')!r} "  # type: ignore[union-attr]
                    "is not among the task's secrets; add it to the task's secrets")
        elif root in self._tree:
            what = ("does not resolve: the expression context has no such value; "
                    "check the spelling or add it to the execution's context")
        else:
            known = ", ".join(sorted([*self._tree, "secrets.getValue"]))
            what = f"is not a known expression; expressions start with one of: {known}"
        return ManifestError(f"expression <+{expr}> {what}", file=self._file,
                             line=line_of(self._raw, f"<+{expr}"), path=path or None)

    def _string(self, value: str, path: str) -> Any:
        whole = EXPRESSION.fullmatch(value.strip())
        if whole:
            return self._resolve(whole.group(1), path)
        return EXPRESSION.sub(lambda m: str(self._resolve(m.group(1), path)), value)

    def render(self, value: Any, path: str = "") -> Any:
        if isinstance(value, str):
            return self._string(value, path) if "<+" in value else value
        if isinstance(value, dict):
            return {k: self.render(v, f"{path}.{k}" if path else str(k))
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value


def render(value: Any, variables: Variables, *, file: str, raw: str | None = None) -> Any:
    """Return ``value`` with every expression replaced; raise one error listing every
    expression that did not resolve."""
    renderer = Renderer(variables, file=file, raw=raw)
    result = renderer.render(value)
    raise_all(renderer.errors)
    return result
