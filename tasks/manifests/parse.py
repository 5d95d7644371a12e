"""Bounded, safe parsing of untrusted JSON or YAML manifests.

A manifest comes from a user's repository or bucket, so it is parsed as hostile input:
its size is checked before decoding, its nesting depth before building objects (a deep
document would otherwise exhaust the interpreter's stack), and YAML aliases are refused
(expanding ``*ref`` trees is how a "billion laughs" file turns kilobytes into gigabytes).
Timestamps stay strings: AWS requests carry none, and a pasted describe output would
otherwise grow ``datetime`` objects that no JSON encoder accepts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node

from tasks.manifests.errors import ManifestError

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64

# Strings are skipped whole so brackets inside them do not count.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _excerpt(text: str, line: int, column: int) -> str:
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return ""
    source = lines[line - 1]
    if len(source) > 120:
        return ""
    return f"\n    {source}\n    {' ' * (column - 1)}^"


def decode(data: bytes | str, name: str, *, max_bytes: int = MAX_BYTES) -> str:
    size = len(data.encode() if isinstance(data, str) else data)
    if size > max_bytes:
        raise ManifestError(
            f"file is {size} bytes, over the {max_bytes}-byte limit for a manifest; "
            "a manifest holds one request: split it or remove what AWS does not need",
            file=name,
        )
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, _ = _line_col(data[: exc.start].decode("utf-8", "replace"), exc.start)
        raise ManifestError(
            "file is not UTF-8 text; save it as UTF-8", file=name, line=line,
        ) from None


def looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _check_json_depth(text: str, name: str, max_depth: int) -> None:
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                line, column = _line_col(text, match.start())
                raise ManifestError(
                    f"nesting deeper than {max_depth} levels; no AWS request is this deep, "
                    "check the brackets",
                    file=name, line=line, column=column,
                )
        elif token in "]}":
            depth -= 1


def _json_key_lines(text: str, key: str) -> list[int]:
    pattern = re.compile(rf'"{re.escape(json.dumps(key)[1:-1])}"\s*:')
    return [_line_col(text, m.start())[0] for m in pattern.finditer(text)]


def _unique_keys(text: str, name: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """``object_pairs_hook`` refusing a key given twice (json keeps the last silently)."""
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                lines = _json_key_lines(text, key)
                where = f", on lines {lines[0]} and {lines[1]}" if len(lines) > 1 else ""
                raise ManifestError(
                    f"the key {key!r} is given twice{where}; keep one (JSON would silently "
                    "use the last)", file=name, line=lines[1] if len(lines) > 1 else None)
            out[key] = value
        return out
    return hook


def parse_json(text: str, name: str, *, max_depth: int = MAX_DEPTH) -> Any:
    _check_json_depth(text, name, max_depth)
    try:
        return json.loads(text, object_pairs_hook=_unique_keys(text, name))
    except json.JSONDecodeError as exc:
        hint = ""
        if exc.msg.startswith("Expecting value"):
            hint = " (strings must be in double quotes, and a list or object may not end " \
                   "with a comma)"
        elif exc.msg.startswith("Expecting property name"):
            hint = " (keys must be in double quotes, and an object may not end with a comma)"
        raise ManifestError(
            f"not valid JSON: {exc.msg.lower()} at line {exc.lineno} column {exc.colno}"
            f"{hint}; fix the file and run again{_excerpt(text, exc.lineno, exc.colno)}",
            file=name, line=exc.lineno, column=exc.colno,
        ) from None
    except RecursionError:
        raise ManifestError(f"nesting deeper than {max_depth} levels", file=name) from None


class _BoundedComposer(Composer):
    max_depth = MAX_DEPTH
    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[attr-defined]  # Parser mixin method
        if isinstance(event, AliasEvent):
            raise yaml.MarkedYAMLError(
                None, None,
                f"YAML aliases (*{event.anchor}) are not accepted in manifests; "
                "write the value out in full",
                event.start_mark,  # type: ignore[arg-type]  # stubs: C and Python marks
            )
        nested = isinstance(event, MappingStartEvent | SequenceStartEvent)
        if nested:
            self._depth += 1
            if self._depth > self.max_depth:
                raise yaml.MarkedYAMLError(
                    None, None,
                    f"nesting deeper than {self.max_depth} levels; no AWS request is this "
                    "deep, check the indentation",
                    event.start_mark,
                )
        try:
            return super().compose_node(parent, index)
        finally:
            if nested:
                self._depth -= 1


def _resolvers_without_timestamps() -> dict[Any, list[tuple[str, Any]]]:
    table: dict[Any, list[tuple[str, Any]]] = {}
    for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items():
        table[first] = [(tag, rx) for tag, rx in entries
                        if tag != "tag:yaml.org,2002:timestamp"]
    return table


class ManifestLoader(yaml.SafeLoader, _BoundedComposer):
    """``SafeLoader`` with aliases refused, depth bounded and timestamps kept as text."""

    yaml_implicit_resolvers = _resolvers_without_timestamps()

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        return _BoundedComposer.compose_node(self, parent, index)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        # PyYAML keeps the last of two equal keys silently; in a manifest that hides
        # the value the author meant (two `environment:` blocks, say), so it is an error.
        seen: dict[Any, int] = {}
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader reports it itself
                continue
            seen.setdefault(key, line)
            if first is not None:
                raise yaml.MarkedYAMLError(
                    None, None,
                    f"the key {key!r} is given twice, on lines {first} and {line}; "
                    "keep one (YAML would silently use the last)",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, name: str, *, max_depth: int = MAX_DEPTH) -> Any:
    loader = ManifestLoader(text)
    loader.max_depth = max_depth
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        where = f" at line {line} column {column}" if line else ""
        excerpt = _excerpt(text, line, column or 1) if line else ""
        raise ManifestError(
            f"not valid YAML: {problem}{where}; fix the file and run again{excerpt}",
            file=name, line=line, column=column,
        ) from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"not valid YAML: {exc}", file=name) from None
    except RecursionError:
        raise ManifestError(f"nesting deeper than {max_depth} levels", file=name) from None
    finally:
        loader.dispose()


def parse_manifest(data: bytes | str, name: str, *, max_bytes: int = MAX_BYTES,
                   max_depth: int = MAX_DEPTH) -> Any:
    """JSON when the text starts with ``{`` or ``[``, YAML otherwise. The result is a
    mapping (or a list, for describe outputs); an empty file is an error."""
    text = decode(data, name, max_bytes=max_bytes)
    if not text.strip():
        raise ManifestError("file is empty; it must hold one JSON or YAML request",
                            file=name)
    if looks_like_json(text):
        doc = parse_json(text, name, max_depth=max_depth)
    else:
        doc = parse_yaml(text, name, max_depth=max_depth)
    if not isinstance(doc, dict | list):
        raise ManifestError(
            f"file holds a {type(doc).__name__}, not a mapping of request fields; "
            "write the request as `key: value` lines (YAML) or a JSON object",
            file=name,
        )
    return doc


def check_depth(value: Any, name: str, *, max_depth: int = MAX_DEPTH) -> None:
    """Depth check for content that arrived already parsed (inline params)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= max_depth:
                raise ManifestError(f"nesting deeper than {max_depth} levels", file=name)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
