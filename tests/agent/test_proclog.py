"""The process log: our events and standard-library records of libraries share the same
processors (JSON, level, timestamp) and the same masking."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from agent import proclog

SECRET = "edt.proclog.s3cr3t-value-0123456789"


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    proclog.configure("json", stream=stream)
    proclog.add_process_secret(SECRET)
    try:
        yield stream
    finally:
        root = logging.getLogger()
        for handler in [h for h in root.handlers if h.name == proclog.HANDLER_NAME]:
            root.removeHandler(handler)
        structlog.reset_defaults()


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_library_record_is_json_and_masked_like_our_own(out: io.StringIO) -> None:
    structlog.get_logger("agent.test").warning("our event", token=SECRET)
    logging.getLogger("websockets.client").warning("library saw %s", SECRET)
    ours, theirs = records(out)
    assert ours["event"] == "our event" and ours["token"] == "**************"
    assert theirs == {"event": "library saw **************", "level": "warning",
                      "logger": "websockets.client", "timestamp": theirs["timestamp"]}
    assert SECRET not in out.getvalue()


def test_a_library_traceback_is_one_masked_field(out: io.StringIO) -> None:
    try:
        raise RuntimeError(f"bad credential {SECRET}")
    except RuntimeError:
        logging.getLogger("httpx").exception("request failed")
    [record] = records(out)
    assert "RuntimeError: bad credential **************" in str(record["exception"])
    assert SECRET not in out.getvalue()


def test_libraries_stay_quiet_below_warning_and_configure_twice_logs_once(
        out: io.StringIO) -> None:
    logging.getLogger("botocore").info("chatter")
    proclog.configure("json", stream=out)
    logging.getLogger("asyncio").error("news")
    assert [r["event"] for r in records(out)] == ["news"]
