"""The demo's Terraform act on a machine without terraform: it says so and adds no
outcome, so the demo still exits 0 (the act itself runs in tests/demo/test_demo.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.demo import Outcome
from cli.demo_terraform import terraform_act


def test_without_terraform_the_act_is_skipped_not_failed(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    outcome = Outcome()
    terraform_act(client=None, outcome=outcome, show_logs=False)
    assert outcome.checks == []
    assert "terraform is not on this machine's PATH: this act is skipped" in \
        capsys.readouterr().out
