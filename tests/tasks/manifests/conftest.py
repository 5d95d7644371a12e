from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent.context import TaskContext, TaskLog
from wire.protocol import LogPayload

DATA = Path(__file__).parent / "data"


class MemoryFileStore:
    """The manager's file store as the delegate sees it, kept in memory."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = dict(files or {})
        self.requested: list[str] = []

    async def get(self, path: str) -> bytes:
        self.requested.append(path)
        if path not in self.files:
            raise FileNotFoundError(f"no file {path!r}")
        return self.files[path]


@dataclass
class Recorder:
    payloads: list[Any] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [ln.text for p in self.payloads if isinstance(p, LogPayload) for ln in p.lines]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_ctx(recorder: Recorder) -> Callable[..., TaskContext]:
    def make(*, files: dict[str, bytes] | None = None, secrets: dict[str, str] | None = None,
             context: dict[str, Any] | None = None) -> TaskContext:
        return TaskContext(
            task_id="t1", type="ecs.rolling_deploy", params={}, secrets=secrets or {},
            context=context or {}, log=TaskLog(recorder.payloads.append),
            files=MemoryFileStore(files), add_secret=recorder.secrets.append,
        )

    return make


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()
