"""Checking a final request against the botocore service model before any AWS call.

botocore's ``ParamValidator`` finds missing, unknown and mistyped fields; it does not
check enums, so that is done here while scalars are coerced the way a YAML author
expects (``desiredCount: "2"`` -> 2, ``memory: 512`` -> "512"). Its report is turned
into errors that name the field path, the file and (when the raw text shows it) the line,
with a suggestion for a misspelt field.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from botocore.model import Shape
from botocore.validate import ParamValidator

from tasks.manifests.errors import ManifestError, raise_all
from tasks.manifests.model import UPDATE_SERVICE, Operation, input_shape, members
from tasks.manifests.render import EXPRESSION

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_TYPE_NAMES = {"str": "a string", "int": "an integer", "float": "a number",
               "bool": "true or false", "list": "a list", "tuple": "a list",
               "dict": "a mapping", "datetime": "a timestamp", "bytes": "bytes",
               "bytearray": "bytes"}


def _is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and EXPRESSION.fullmatch(value) is not None


def _suggest(word: str, choices: list[str]) -> str | None:
    for choice in choices:
        if choice.lower() == word.lower():
            return choice
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Coercer:
    def __init__(self, allow_placeholders: bool) -> None:
        self.allow_placeholders = allow_placeholders
        self.problems: list[tuple[str, str, str]] = []  # (path, key to find, message)

    def walk(self, value: Any, shape: Shape, path: str) -> Any:
        kind = shape.type_name
        if self.allow_placeholders and _is_placeholder(value):
            return value
        if kind == "structure" and isinstance(value, dict):
            known = shape.members
            return {k: self.walk(v, known[k], _join(path, k)) if k in known else v
                    for k, v in value.items()}
        if kind == "list" and isinstance(value, list):
            return [self.walk(v, shape.member, f"{path}[{i}]")
                    for i, v in enumerate(value)]
        if kind == "map" and isinstance(value, dict):
            return {k: self.walk(v, shape.value, _join(path, str(k)))
                    for k, v in value.items()}
        if isinstance(value, bool):
            if kind == "string":
                return "true" if value else "false"
            return value
        if kind in ("integer", "long") and isinstance(value, str) and _INT.fullmatch(value):
            return int(value)
        if kind in ("float", "double") and isinstance(value, str) and _FLOAT.fullmatch(value):
            return float(value)
        if kind == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind == "string" and isinstance(value, int | float):
            return str(value)
        if kind == "string" and isinstance(value, str) and shape.enum and value not in shape.enum:
            allowed = list(shape.enum)
            guess = _suggest(value, allowed)
            hint = f"did you mean {guess}?" if guess else "must be one of: " + ", ".join(allowed)
            self.problems.append((path, path.rsplit(".", 1)[-1],
                                  f"{value!r} is not an accepted value; {hint}"))
        return value


def _translate(error: tuple[str, str, dict[str, Any]]) -> tuple[str, str, str] | None:
    """(path, key to find in the text, message) for one botocore report entry."""
    reason, name, extra = error
    path = name.lstrip(".")
    if reason == "missing required field":
        field = extra["required_name"]
        return (_join(path, field), path.rsplit(".", 1)[-1] if path else "",
                "required field is missing; add it")
    if reason == "unknown field":
        field = str(extra["unknown_param"])
        valid = sorted(extra["valid_names"])
        guess = _suggest(field, valid)
        hint = (f"did you mean {guess}?" if guess
                else "valid fields here: " + ", ".join(valid))
        return _join(path, field), field, f"unknown field; {hint}"
    if reason in ("invalid type", "invalid type for document"):
        wanted = " or ".join(dict.fromkeys(
            _TYPE_NAMES.get(re.sub(r"<class '(?:\w+\.)*(\w+)'>", r"\1", t), t)
            for t in extra["valid_types"]))
        got = _TYPE_NAMES.get(type(extra["param"]).__name__, type(extra["param"]).__name__)
        return path, path.rsplit(".", 1)[-1], f"must be {wanted}, not {got}"
    if reason == "invalid range":
        return (path, path.rsplit(".", 1)[-1],
                f"{extra['param']} is below the minimum {extra['min_allowed']}")
    if reason == "invalid length":
        return (path, path.rsplit(".", 1)[-1],
                f"too short: the minimum length is {extra['min_allowed']}")
    if reason in ("more than one input", "empty input"):
        return (path, path.rsplit(".", 1)[-1],
                "set exactly one of: " + ", ".join(extra["members"]))
    return None


def line_of_key(raw: str | None, key: str) -> int | None:
    key = re.sub(r"\[\d+\]$", "", key)
    if not raw or not key:
        return None
    pattern = re.compile(rf"""^[\s\-{{,]*["']?{re.escape(key)}["']?\s*:""",
                         re.IGNORECASE | re.MULTILINE)
    match = pattern.search(raw)
    return None if match is None else raw.count("\n", 0, match.start()) + 1


def validate_request(params: dict[str, Any], op: Operation, *, file: str,
                     raw: str | None = None, allow_placeholders: bool = False,
                     ) -> dict[str, Any]:
    """Return the request with scalars coerced to the model's types; raise listing every
    problem. ``allow_placeholders`` lets unresolved ``<+...>`` values through (offline
    validation, where step outputs are not known yet)."""
    shape = input_shape(op)
    coercer = _Coercer(allow_placeholders)
    request: dict[str, Any] = coercer.walk(params, shape, "")
    problems = list(coercer.problems)
    report = ParamValidator().validate(request, shape)
    # ValidationErrors keeps its findings only in the private ``_errors`` list of
    # (reason, name, details); its public report is one formatted string.
    for error in report._errors:
        if allow_placeholders and _is_placeholder(error[2].get("param")):
            continue
        translated = _translate(error)
        if translated is None:
            problems.append((error[1].lstrip("."), "", report._format_error(error)))
        else:
            problems.append(translated)
    errors = [
        ManifestError(f"{message} ({op.name})", file=file, path=path or None,
                      line=line_of_key(raw, key))
        for path, key, message in problems
    ]
    raise_all(errors)
    return request


def update_service_request(create_request: dict[str, Any],
                           ) -> tuple[dict[str, Any], list[str]]:
    """The UpdateService request a CreateService request implies, and the fields that
    UpdateService cannot change (dropped). ``serviceName`` becomes ``service``."""
    accepted = members(UPDATE_SERVICE)
    request: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in create_request.items():
        if key == "serviceName":
            request["service"] = value
        elif key in accepted:
            request[key] = value
        else:
            dropped.append(key)
    return request, sorted(dropped)
