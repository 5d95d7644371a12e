"""Every form a secret can take in a log is masked (issue: delegate core, point 4)."""

from __future__ import annotations

import base64
import json

from agent.context import TaskLog
from agent.masking import MASK, Masker
from agent.outbox import Outbox
from agent.stream import TaskStream
from wire.protocol import LogPayload, TaskMessage

SECRET = "s3cr3t-Value+/=with?odd&chars"
MULTILINE = "-----BEGIN KEY-----\nAbCdEfGhIjKlMnOp\nQrStUvWxYz012345\n-----END KEY-----"


def forms(secret: str) -> list[str]:
    raw = secret.encode()
    std = base64.b64encode(raw).decode()
    url = base64.urlsafe_b64encode(raw).decode()
    return [secret, json.dumps(secret)[1:-1], std, std.rstrip("="), url, url.rstrip("=")]


def test_each_form_is_masked() -> None:
    mask = Masker([SECRET])
    for form in forms(SECRET):
        out = mask(f"before {form} after")
        assert form not in out, form
        assert out == f"before {MASK} after"


def test_each_line_of_a_multiline_secret_is_masked() -> None:
    mask = Masker([MULTILINE])
    for line in MULTILINE.splitlines():
        assert mask(f"x {line} y") == f"x {MASK} y"
    escaped = json.dumps(MULTILINE)[1:-1]
    assert mask(f'{{"key": "{escaped}"}}') == f'{{"key": "{MASK}"}}'


def test_short_values_are_not_treated_as_secrets() -> None:
    assert Masker(["ab"])("ab abc") == "ab abc"


async def _collect(write: list[str], secrets: list[str]) -> str:
    outbox = Outbox()
    stream = TaskStream("t1", outbox, Masker(secrets), delay=0.001)
    log = TaskLog(stream.emit)
    async with log.unit("Deploy") as unit:
        for chunk in write:
            unit.write(chunk)
    stream.flush()
    texts: list[str] = []
    for raw in outbox.take_unsent():
        msg = TaskMessage.model_validate_json(raw)
        if isinstance(msg.payload, LogPayload):
            texts.extend(line.text for line in msg.payload.lines)
    return "\n".join(texts)


async def test_secret_split_across_two_log_calls_is_masked() -> None:
    text = await _collect(["password is s3cr3t-Va", "lue+/=with?odd&chars ok\n"], [SECRET])
    assert SECRET not in text
    assert "s3cr3t-Va" not in text
    assert f"password is {MASK} ok" in text


async def test_every_form_masked_through_the_task_stream() -> None:
    lines = [f"line {form}\n" for form in forms(SECRET)]
    text = await _collect(lines, [SECRET])
    for form in forms(SECRET):
        assert form not in text
    assert text.count(MASK) == len(forms(SECRET))


async def test_a_giant_line_is_cut_with_a_note_not_sent_whole() -> None:
    from agent.stream import MAX_LINE_CHARS

    text = await _collect(["x" * (3 * 1024 * 1024) + "\n", "next line\n"], [])
    first, second = text.split("\n")
    assert len(first) < MAX_LINE_CHARS + 100
    assert first.endswith("more characters not sent]")
    assert second == "next line"


def test_an_oversized_output_keeps_its_small_keys() -> None:
    from agent.stream import MAX_OUTPUT_CHARS, fit_output

    out = fit_output({"taskDefinitionArn": "arn:aws:ecs:...:1", "dump": "y" * MAX_OUTPUT_CHARS})
    assert out["taskDefinitionArn"] == "arn:aws:ecs:...:1"
    assert out["dump"].startswith("<not sent:")
