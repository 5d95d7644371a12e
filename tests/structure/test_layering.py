"""The layering of DESIGN.md, enforced: a wrong import fails here, not in review.

- ``wire/`` (what both sides speak) imports nothing of ours;
- ``agent/`` (the delegate) imports only ``wire/``, never the manager, the task handlers,
  the command line or the sandbox;
- ``tasks/`` (the handlers) reach the delegate only through ``agent.context``, the seam;
  nothing of the websocket layer;
- ``manager/`` imports only ``wire/``;
- ``sandbox/`` (the embedded AWS) imports nothing of ours;
- ``cli/`` is the composition root and may import every shipped package, but not the
  test kit; ``bench/`` and ``testkit/`` never import ``tests``.

Imports are read with ``ast`` from every file, including imports inside functions (the
CLI imports lazily, and a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"agent", "tasks", "manager", "wire", "sandbox", "cli", "testkit", "tests", "bench"}

# package -> (allowed top-level packages of ours, allowed modules from otherwise-forbidden
# packages)
RULES: dict[str, tuple[set[str], set[str]]] = {
    "wire": ({"wire"}, set()),
    "agent": ({"agent", "wire"}, set()),
    "tasks": ({"tasks", "wire"}, {"agent.context"}),
    "manager": ({"manager", "wire"}, set()),
    "sandbox": ({"sandbox"}, set()),
    "cli": ({"cli", "agent", "tasks", "manager", "wire", "sandbox"}, set()),
    "testkit": ({"testkit", "agent", "tasks", "manager", "wire", "sandbox", "cli"}, set()),
    "bench": ({"bench", "testkit", "agent", "tasks", "manager", "wire", "sandbox", "cli"},
              set()),
}


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # ``from agent import context`` names the module agent.context.
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def violations(package: str) -> list[str]:
    allowed, allowed_modules = RULES[package]
    bad: list[str] = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imports_of(path):
            top = module.split(".")[0]
            if top not in OURS or top in allowed:
                continue
            if any(module == m or module.startswith(m + ".") for m in allowed_modules):
                continue
            # ``from agent import context`` also yields "agent"; judge the full name only.
            if module == top and any(m.startswith(top + ".") for m in allowed_modules):
                continue
            bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return bad


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_follow_the_layering(package: str) -> None:
    assert violations(package) == []


def test_the_rules_catch_a_wrong_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The checker itself can fail: a manager module importing the delegate's session is
    # reported with its file and line.
    (tmp_path / "manager").mkdir()
    (tmp_path / "manager" / "bad.py").write_text(
        "import json\n\ndef f():\n    from agent.session import Session\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert violations("manager") == ["manager/bad.py:4 imports agent.session",
                                     "manager/bad.py:4 imports agent.session.Session"]
