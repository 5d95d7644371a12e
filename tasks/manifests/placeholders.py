"""Unreplaced example placeholders: ``<Subnet Id>``, ``<Load Balancer>``.

The examples (docs, ``delegate demo``'s files) carry such slots for values only the
user's account knows. One left in reaches AWS as a literal string and fails there with an
error that names neither the file nor the slot, so it is caught here, before any call.
Expressions (``<+secrets.getValue("x")>``) are not placeholders: they start with ``+``.
Only values are looked at (a ``# replace <Subnet Id>`` comment is fine), and a slot is
one or more capitalised words, so ``<html>`` inside a command is left alone.
"""

from __future__ import annotations

import re
from typing import Any

from tasks.manifests.errors import ManifestError

PLACEHOLDER = re.compile(r"<(?!\+)([A-Z][A-Za-z0-9_]*(?: [A-Z0-9][A-Za-z0-9_]*)*)>")
WHERE_FROM = ("put the real value in: `delegate sandbox` prints it for the sandbox, "
              "otherwise take it from your AWS account")


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    """(path, string) for every string in ``value``, keys included, in document order
    (so repeated slots match their lines in turn), without recursing."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            out.append((where, item))
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                child_path = f"{where}.{key}" if where else str(key)
                stack.append((child, child_path))
                if isinstance(key, str):
                    stack.append((key, child_path))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in reversed(list(enumerate(item))))
    return out


def _line_of(raw: str | None, slot: str, after: int) -> int | None:
    """The first line past ``after`` holding ``slot`` outside a comment."""
    if not raw:
        return None
    for number, line in enumerate(raw.splitlines(), start=1):
        if number <= after:
            continue
        at = line.find(slot)
        comment = line.find("#")
        if at >= 0 and (comment < 0 or at < comment):
            return number
    return None


def find_placeholders(doc: Any, *, file: str, raw: str | None = None,
                      path: str = "") -> list[ManifestError]:
    """One error per unreplaced placeholder in the parsed ``doc`` (``raw``: its text,
    for the line)."""
    errors: list[ManifestError] = []
    last_line: dict[str, int] = {}
    for where, text in _strings(doc, path):
        for match in PLACEHOLDER.finditer(text):
            slot = match.group()
            line = _line_of(raw, slot, last_line.get(slot, 0))
            if line is not None:
                last_line[slot] = line
            errors.append(ManifestError(
                f"{slot} is a placeholder from the example, not a value; {WHERE_FROM}",
                file=file, line=line, path=where or None))
    return sorted(errors, key=lambda e: (e.line or 0, e.path or ""))
