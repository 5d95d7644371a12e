"""The README's operations sections quote the delegate's and the manager's messages
verbatim; these checks keep the quotes and the code from drifting apart."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SOURCES = "\n".join(p.read_text() for top in ("agent", "manager", "cli", "wire")
                    for p in sorted((ROOT / top).rglob("*.py")))

# Fixed parts of messages the README quotes (the variable parts left out).
QUOTED = [
    "manager connection lost; reconnecting",
    "manager refused this delegate: ",
    "token does not match (wrong or rotated token)",
    "token revoked (id ",
    "account mismatch: token is for account ",
    "is not encrypted; use https, or set ",
    "DELEGATE_TOKEN is not set (nor DELEGATE_TOKEN_FILE)",
    "delegate: configuration error: ",
    "no connected delegate has tags [",
    "; start one with 'delegate run'",
    "no connected delegate with these tags supports task type ",
    "every matching delegate is draining: ",
    "no common protocol version: the delegate speaks ",
    "upgrade one of them",
    "init script failed; not starting",
    "; fix the script or unset ",
    "health endpoint listening",
    "not connected to the manager",
    "manager has not answered a heartbeat in two intervals",
    "delegate stopping",
]


@pytest.mark.parametrize("message", QUOTED)
def test_every_quoted_message_is_what_the_code_says(message: str) -> None:
    flat_readme = " ".join(README.split())
    assert message in flat_readme, f"README no longer quotes {message!r}"
    assert message in SOURCES, f"no code says {message!r} any more; update the README"


def test_the_readme_sections_exist_in_order() -> None:
    titles = [line[3:] for line in README.splitlines() if line.startswith("## ")]
    wanted = ["Install on ECS Fargate", "Run on a laptop with Docker", "Upgrading",
              "Troubleshooting", "Development"]
    assert [t for t in titles if t in wanted] == wanted
