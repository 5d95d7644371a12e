"""docs/tasks.md lists the offline manifest checks from the code's own rule table."""

from __future__ import annotations

from pathlib import Path

from cli import tasks_doc
from tasks.manifests.ecs_rules import RULES

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_rules_section_is_up_to_date_and_last() -> None:
    text = (DOCS / "tasks.md").read_text()
    section = tasks_doc.rules_section()
    assert section in text, "run: delegate docs --write docs"
    assert text.rstrip().endswith(tasks_doc.RULES_END)
    assert all(f"| `{rule.name}` |" in section for rule in RULES)
    assert "| 16384 (16 vCPU) | 32768 to 122880 in steps of 8192 |" in section


def test_write_keeps_both_generated_sections(tmp_path: Path) -> None:
    from agent.context import load_registry

    path = tmp_path / "tasks.md"
    path.write_text("# Tasks\n\nprose\n")
    assert tasks_doc.write(path, load_registry()) is True
    assert tasks_doc.write(path, load_registry()) is False  # stable once written
    text = path.read_text()
    assert text.startswith("# Tasks") and text.count(tasks_doc.RULES_BEGIN) == 1
    assert text.index(tasks_doc.END) < text.index(tasks_doc.RULES_BEGIN)
