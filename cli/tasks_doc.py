"""docs/tasks.md's generated part: every task type's params, defaults and outputs, read
from the registered task types' pydantic models (so the doc cannot drift from the code)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.context import TaskRegistry, TaskType

BEGIN = "<!-- BEGIN GENERATED TASK TYPES (delegate docs --write) -->"
END = "<!-- END GENERATED TASK TYPES -->"


def _type_of(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[1]
    if "anyOf" in prop:
        return " or ".join(_type_of(p, defs) for p in prop["anyOf"])
    if "oneOf" in prop:
        return " or ".join(_type_of(p, defs) for p in prop["oneOf"])
    if "enum" in prop:
        return " | ".join(json.dumps(v) for v in prop["enum"])
    if "const" in prop:
        return json.dumps(prop["const"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type_of(prop.get('items', {}), defs)}"
    return str(kind)


def _table(schema: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    rows = ["| param | type | required | default | meaning |", "|---|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        default = json.dumps(prop["default"]) if "default" in prop else ""
        desc = str(prop.get("description", "")).replace("\n", " ").replace("|", "\\|")
        rows.append(f"| `{name}` | {_type_of(prop, defs)} | "
                    f"{'yes' if name in required else ''} | {default} | {desc} |")
    return rows


def _section(t: TaskType) -> list[str]:
    out = [f"### `{t.name}`", "", t.summary, ""]
    if t.units:
        out += ["Command units: " + ", ".join(f"`{u}`" for u in t.units) + ".", ""]
    if t.params_model is not None:
        schema = t.params_model.model_json_schema(by_alias=True)
        defs = schema.get("$defs", {})
        out += ["Params:", "", *_table(schema, defs), ""]
        for def_name, sub in sorted(defs.items()):
            if sub.get("properties"):
                out += [f"`{def_name}`:", "", *_table(sub, defs), ""]
    if t.outputs:
        out += ["Outputs:", "", "| key | holds |", "|---|---|"]
        out += [f"| `{k}` | {v} |" for k, v in t.outputs.items()]
        out.append("")
    return out


def generated_section(registry: TaskRegistry) -> str:
    lines = [BEGIN, ""]
    for t in registry:
        lines += _section(t)
    lines.append(END)
    return "\n".join(lines)


def write(path: Path, registry: TaskRegistry) -> bool:
    old = path.read_text() if path.exists() else ""
    section = generated_section(registry)
    if BEGIN in old and END in old:
        new = old.split(BEGIN, 1)[0] + section + old.split(END, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    if new != old:
        path.write_text(new)
    return new != old
