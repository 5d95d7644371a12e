"""docs/tasks.md's generated parts: every task type's params, defaults and outputs, read
from the registered task types' pydantic models, and the ECS rules checked offline, read
from ``tasks.manifests.ecs_rules.RULES`` (so the doc cannot drift from the code)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.context import TaskRegistry, TaskType
from tasks.manifests.ecs_rules import FARGATE_SIZES, RULES

BEGIN = "<!-- BEGIN GENERATED TASK TYPES (delegate docs --write) -->"
END = "<!-- END GENERATED TASK TYPES -->"
RULES_BEGIN = "<!-- BEGIN GENERATED ECS RULES (delegate docs --write) -->"
RULES_END = "<!-- END GENERATED ECS RULES -->"


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
        # A Literal of several values reads "a" | "b": escaped, or it splits the row.
        kind = _type_of(prop, defs).replace("|", "\\|")
        rows.append(f"| `{name}` | {kind} | "
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


def _sizes(memory: list[int]) -> str:
    if len(memory) <= 3:
        return ", ".join(str(m) for m in memory)
    return f"{memory[0]} to {memory[-1]} in steps of {memory[1] - memory[0]}"


def rules_section() -> str:
    lines = [
        RULES_BEGIN, "",
        "## Manifest checks before any AWS call", "",
        "Every ECS step (in its Fetch Manifests unit) and `delegate validate` check the "
        "manifests offline before the first AWS call; a problem fails the step with the "
        "file, the line, the field path and what to do. Besides the botocore model "
        "(missing, unknown and mistyped fields, enum values):", "",
        "- a YAML key given twice in one mapping is an error naming the key and both lines;",
        "- an unreplaced example placeholder (`<Subnet Id>`, `<Load Balancer>`: capitalised "
        "words in angle brackets, not a `<+...>` expression) is an error with its file and "
        "line, from `delegate validate`, `delegate submit` (before sending, exit code 2) and "
        "the step; `delegate sandbox` prints the sandbox's values, a real account has its "
        "own;",
        "- a manifest written with CloudFormation's property names (`Family`, "
        "`ContainerDefinitions`, `Cpu`, or a template or `Type`/`Properties` resource) is "
        "reported as such, with the camelCase names of the ECS API to write instead.", "",
        "ECS's own service-side rules, across the task definition and the service "
        "definition (a value that is still a `<+...>` expression is not judged):", "",
        "| rule | what ECS requires |", "|---|---|",
        *(f"| `{rule.name}` | {rule.summary.replace('|', '/')} |" for rule in RULES),
        "", "Fargate task sizes (`fargate-task-size`):", "",
        "| cpu (CPU units) | memory (MiB) |", "|---|---|",
        *(f"| {cpu} ({cpu / 1024:g} vCPU) | {_sizes(memory)} |"
          for cpu, memory in FARGATE_SIZES.items()),
        "", RULES_END,
    ]
    return "\n".join(lines)


def _put(old: str, begin: str, end: str, section: str) -> str:
    if begin in old and end in old:
        return old.split(begin, 1)[0] + section + old.split(end, 1)[1]
    return old.rstrip("\n") + "\n\n" + section + "\n"


def write(path: Path, registry: TaskRegistry) -> bool:
    old = path.read_text() if path.exists() else ""
    new = _put(old, BEGIN, END, generated_section(registry))
    new = _put(new, RULES_BEGIN, RULES_END, rules_section())
    if new != old:
        path.write_text(new)
    return new != old
