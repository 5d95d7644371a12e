"""Process logs (not task logs): structlog, JSON when not on a terminal.

Our own events and the standard-library records of the libraries we use (websockets,
httpx, botocore, asyncio) go through the same processors — timestamp, level, masking,
renderer — so both are one JSON object per line, and the delegate token (and any value
registered with :func:`add_process_secret`) never reaches stderr in any of its forms,
whoever logged it. The standard-library side is structlog's ``ProcessorFormatter`` on one
root handler; libraries stay at WARNING unless they have news.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from agent.masking import Masker

_masker = Masker()
# The root handler this module installs, found again by name so configure() can be
# called twice (tests, a demo after a run) without logging every line twice.
HANDLER_NAME = "ecs-delegate"


def add_process_secret(*values: str) -> None:
    _masker.add(*values)


def _mask(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return {k: _masker(v) if isinstance(v, str) else v for k, v in event.items()}


def _renderer(fmt: str, stream: TextIO) -> Any:
    if fmt == "json" or (fmt == "auto" and not stream.isatty()):
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=stream.isatty())


def configure(fmt: str = "auto", level: int = logging.INFO,
              stream: TextIO | None = None) -> None:
    out = stream or sys.stderr
    renderer = _renderer(fmt, out)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # The traceback is rendered to a string before masking, so a secret in an exception
    # message is masked too.
    last: list[Any] = [structlog.processors.format_exc_info, _mask, renderer]
    structlog.configure(
        processors=[*shared, *last],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.name = HANDLER_NAME
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *last],
    ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.name == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
