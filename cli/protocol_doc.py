"""docs/protocol.md's generated part: the JSON Schema of every message, from the models.

``delegate protocol --write docs/protocol.md`` rewrites the part between the markers; a
test fails when the file is out of date with ``wire/protocol.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from wire.protocol import json_schemas

BEGIN = "<!-- BEGIN GENERATED SCHEMA (delegate protocol --write docs/protocol.md) -->"
END = "<!-- END GENERATED SCHEMA -->"


def generated_section() -> str:
    schemas = json_schemas()
    parts = [BEGIN, ""]
    for direction, title in (("delegate_to_manager", "Delegate to manager"),
                             ("manager_to_delegate", "Manager to delegate")):
        parts += [f"### {title}", "", "```json",
                  json.dumps(schemas[direction], indent=2, sort_keys=True), "```", ""]
    parts.append(END)
    return "\n".join(parts)


def render(existing: str) -> str:
    section = generated_section()
    if BEGIN in existing and END in existing:
        head = existing.split(BEGIN, 1)[0]
        tail = existing.split(END, 1)[1]
        return head + section + tail
    return existing.rstrip("\n") + "\n\n" + section + "\n"


def write(path: Path) -> bool:
    """Rewrite the generated part; True when the file changed."""
    old = path.read_text() if path.exists() else ""
    new = render(old)
    if new != old:
        path.write_text(new)
    return new != old
