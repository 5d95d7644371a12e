"""JSON with bounded nesting. ``json.loads`` recurses once per level: a frame nested a few
thousand deep raises RecursionError (or worse) before anyone has authenticated. Nothing we
speak nests past a handful of levels, so refuse anything deeper than :data:`MAX_DEPTH` with
a scan that does not recurse, before parsing."""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64
# Strings (with their escapes) are skipped whole; what remains are the brackets that nest.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class TooDeep(ValueError):
    """The document nests deeper than allowed."""


def depth_of(text: str | bytes) -> int:
    """The deepest nesting of arrays and objects in ``text`` (0 for a scalar)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if "[" not in text and "{" not in text:
        return 0
    depth = deepest = 0
    for m in _TOKENS.finditer(text):
        ch = m.group()
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def check_depth(text: str | bytes, limit: int = MAX_DEPTH) -> None:
    deepest = depth_of(text)
    if deepest > limit:
        raise TooDeep(f"JSON nested {deepest} levels deep is past the recursion limit "
                      f"of {limit} levels; flatten the document")


def loads(text: str | bytes, limit: int = MAX_DEPTH) -> Any:
    """``json.loads`` refusing documents nested deeper than ``limit`` (:class:`TooDeep`)."""
    check_depth(text, limit)
    return json.loads(text)
