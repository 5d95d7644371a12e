"""The generated parts of the docs match the code."""

from __future__ import annotations

from pathlib import Path

from agent.context import load_registry
from cli import protocol_doc, tasks_doc

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_protocol_doc_is_up_to_date() -> None:
    text = (DOCS / "protocol.md").read_text()
    assert protocol_doc.render(text) == text, "run: delegate docs --write docs"


def test_tasks_doc_is_up_to_date() -> None:
    text = (DOCS / "tasks.md").read_text()
    section = tasks_doc.generated_section(load_registry())
    assert section in text, "run: delegate docs --write docs"
