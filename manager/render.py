"""Printing a task's log entries for people, unit by unit, as the product document
shows them: a header when a unit starts, its lines, a status line with its duration."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from wire.durations import format_duration


def _duration(started: str | None, ended: str | None) -> str:
    if not started or not ended:
        return ""
    seconds = (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()
    return f" ({format_duration(max(seconds, 0.0))})"


class LogRenderer:
    def __init__(self, echo: Callable[[str], Any]) -> None:
        self.echo = echo
        self._unit: str | None = None

    def _switch(self, unit: str | None) -> None:
        if unit and unit != self._unit:
            self._unit = unit
            self.echo(f"\n=== {unit}")

    def entry(self, entry: dict[str, Any]) -> None:
        kind = entry.get("kind")
        if kind == "log":
            self._switch(entry.get("unit"))
            prefix = "" if entry.get("level", "INFO") == "INFO" else f"[{entry['level']}] "
            self.echo(prefix + entry.get("text", ""))
        elif kind == "unit":
            status = entry.get("status")
            if status == "RUNNING":
                self._switch(entry.get("unit"))
            else:
                self._unit = entry.get("unit")
                took = _duration(entry.get("started_at"), entry.get("ended_at"))
                self.echo(f"=== {entry.get('unit')}: {status}{took}")
        elif kind == "waiting":
            self.echo(f"waiting: {entry.get('waiting_reason')}")
        # "event" entries are also printed by the delegate as "# AWS Event:" log lines;
        # "result" is summed up by the caller once the task has finished.
