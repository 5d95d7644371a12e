"""How a Terraform Cloud log line reads once printed: archive framing removed, and a
structured (JSON) line shown as its message."""

from __future__ import annotations

import json

from tasks.terraform_cloud.logs import readable


def test_archive_framing_is_removed() -> None:
    assert readable("\x02Terraform v1.11.4") == "Terraform v1.11.4"
    assert readable("Apply complete!\x03") == "Apply complete!"


def test_a_structured_line_shows_its_message() -> None:
    line = json.dumps({"@level": "info", "@message": "terraform_data.x: Creating...",
                       "type": "apply_start"})
    assert readable(line) == "terraform_data.x: Creating..."


def test_a_line_that_only_looks_structured_is_kept() -> None:
    assert readable('{"@message": broken') == '{"@message": broken'
    assert readable('{"other": 1}') == '{"other": 1}'
