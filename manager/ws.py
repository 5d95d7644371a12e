"""The delegate websocket: ``/api/delegate/ws``. This layer only moves frames; the
decisions are in :class:`manager.hub.Hub`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import MutableMapping
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from manager.hub import Hub, Refusal
from manager.sessions import Session
from wire import jsonlimits
from wire.protocol import CLOSE_AUTH_FAILED, CLOSE_PROTOCOL, Refused, Register, dump

log = structlog.get_logger("manager.ws")
router = APIRouter()


async def _refuse(ws: WebSocket, reason: str, code: int) -> None:
    with contextlib.suppress(Exception):
        await ws.send_text(dump(Refused(reason=reason, fatal=True)))
        await ws.close(code=code, reason=reason[:120])


def _text(message: MutableMapping[str, Any]) -> str | None:
    text = message.get("text")
    if isinstance(text, str):
        return text
    data = message.get("bytes")
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return None


@router.websocket("/api/delegate/ws")
async def delegate_ws(ws: WebSocket) -> None:
    hub: Hub = ws.app.state.hub
    await ws.accept()
    try:
        first = await asyncio.wait_for(ws.receive(), hub.settings.register_timeout)
    except (TimeoutError, Exception):
        await _refuse(ws, "no register message received in time", CLOSE_PROTOCOL)
        return
    if first.get("type") == "websocket.disconnect":
        return
    text = _text(first) or ""
    try:
        reg = Register.model_validate(jsonlimits.loads(text))
    except (ValueError, ValidationError) as exc:
        reason = "the first message must be a valid register message"
        if isinstance(exc, jsonlimits.TooDeep):
            reason += f" ({exc})"
        elif isinstance(exc, ValidationError):
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:5])
            reason += f" (problem with: {fields})"
        await _refuse(ws, reason, CLOSE_PROTOCOL)
        return
    try:
        session = hub.register(reg, ws)
    except Refusal as exc:
        log.info("delegate refused", delegate=reg.name, account=reg.account_id,
                 reason=str(exc))
        await _refuse(ws, str(exc), CLOSE_AUTH_FAILED)
        return
    await _serve(hub, session, ws)


async def _serve(hub: Hub, session: Session, ws: WebSocket) -> None:
    writer = asyncio.create_task(session.run_writer(), name=f"writer-{session.session_id}")
    try:
        while not session.closed:
            try:
                message = await ws.receive()
            except Exception:
                break
            if message.get("type") == "websocket.disconnect":
                break
            text = _text(message)
            if text is not None:
                hub.handle_frame(session, text)
    finally:
        # Closed by us (revoked, replaced): let the writer finish its close. Closed by
        # the peer or the server shutting down: nothing more can be sent.
        closed_by_us = session.closed
        hub.detach(session)
        if closed_by_us:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(writer), 2.0)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
