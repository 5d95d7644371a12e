"""Size limits from the structure issue, enforced: no function over 60 lines and no class
over 300 in shipped code (``bench/`` included: it is read as often as it is run).

Long functions here were, every time, several decisions and their I/O in one place; the
limit makes the split happen when the code is written, not in a later clean-up. Tests are
exempt: a scenario reads best top to bottom.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("agent", "tasks", "manager", "wire", "sandbox", "cli", "testkit", "bench")
MAX_FUNCTION_LINES = 60
MAX_CLASS_LINES = 300


def oversized(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            limit, kind = MAX_FUNCTION_LINES, "function"
        elif isinstance(node, ast.ClassDef):
            limit, kind = MAX_CLASS_LINES, "class"
        else:
            continue
        lines = (node.end_lineno or node.lineno) - node.lineno + 1
        if lines > limit:
            where = path.relative_to(root)
            found.append(f"{where}:{node.lineno}: {kind} {node.name} has {lines} lines "
                         f"(limit {limit}); split it by concern")
    return found


def test_no_function_or_class_over_the_limits() -> None:
    found = [problem for package in PACKAGES
             for path in sorted((ROOT / package).rglob("*.py"))
             for problem in oversized(path)]
    assert not found, "\n".join(found)


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    # The check itself must be able to fail.
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    sample = tmp_path / "probe.py"
    sample.write_text(f"def long():\n{body}\n")
    problems = oversized(sample, root=tmp_path)
    assert len(problems) == 1 and "function long has 61 lines" in problems[0]
