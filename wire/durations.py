"""Durations as users write them: ``90s``, ``10m``, ``1h``, ``1h30m`` or plain seconds."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_TIMEOUT = 7 * 86400.0
"""No task or step runs longer than a week: a larger timeout is a typo or an attempt to
park work forever (and 1e20 overflows the deadline arithmetic)."""


def _bounded(value: Any, seconds: float) -> float:
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a finite duration; write 90s, 10m, 1h or seconds")
    if seconds < 0:
        raise ValueError(f"{value!r} is negative; a duration must be 0 or more")
    return seconds


def parse_duration(value: Any) -> float:
    """Return seconds. Raises ValueError with a message fit for a user."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write 90s, 10m, 1h or seconds")
    if isinstance(value, int | float):
        return _bounded(value, float(value))
    text = str(value).strip().lower()
    if not text:
        raise ValueError("empty duration; write 90s, 10m, 1h or seconds")
    try:
        seconds = float(text)
    except ValueError:
        pos, total = 0, 0.0
        for m in _PART.finditer(text):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(text) or pos == 0:
            raise ValueError(
                f"{value!r} is not a duration; write 90s, 10m, 1h, 1h30m or seconds"
            ) from None
        return _bounded(value, total)
    return _bounded(value, seconds)


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def parse_timeout(value: Any) -> float:
    """A duration of at most :data:`MAX_TIMEOUT`."""
    seconds = parse_duration(value)
    if seconds > MAX_TIMEOUT:
        raise ValueError(f"{value!r} is longer than the 7 day limit; write at most 7d")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A pydantic field type: accepts ``90s``/``10m``/``1h``/seconds, holds seconds."""

Timeout = Annotated[float, BeforeValidator(parse_timeout)]
"""A :data:`Duration` of at most seven days, for task and step timeouts."""
