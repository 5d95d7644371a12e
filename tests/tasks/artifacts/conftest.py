"""A real registry per test: anonymous, or behind the token-auth flow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit import registry as reg


@pytest.fixture
def open_registry(tmp_path: Path) -> Iterator[reg.Registry]:
    reg.require()
    (tmp_path / "open").mkdir()
    started = reg.Registry(tmp_path / "open").start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[reg.Registry]:
    reg.require()
    (tmp_path / "token").mkdir()
    started = reg.Registry(tmp_path / "token", token_auth=True).start()
    try:
        yield started
    finally:
        started.stop()
