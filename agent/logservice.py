"""Task messages over the HTTP log service (``LOG_STREAMING_SERVICE_URL``) instead of the
websocket. Same sequencing, same cumulative acks, same resend: each POST carries a fair
round of unsent messages, and the answer says, per task, the highest seq the manager
holds; anything after it is sent again.
"""

from __future__ import annotations

import ssl

import httpx
import structlog
from pydantic import BaseModel, Field
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_random_exponential,
)

from agent.config import Settings
from agent.outbox import Outbox
from wire import auth

log = structlog.get_logger("agent.logservice")


class LogServiceAnswer(BaseModel):
    """The log service's answer to one POST: per task, the highest seq it holds, and the
    tasks whose messages it refused for good."""

    acks: dict[str, int] = Field(default_factory=dict)
    errors: dict[str, str] = Field(default_factory=dict)

MAX_BATCH_MESSAGES = 500
# Well under the manager's 16 MiB limit per POST; one message is at most ~1 MiB.
MAX_POST_BYTES = 4 << 20


class LogServiceSender:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        assert settings.log_streaming_service_url
        self._settings = settings
        self._outbox = outbox
        self._token = settings.token()
        verify: ssl.SSLContext | bool = True
        if settings.manager_ca_bundle:
            verify = ssl.create_default_context(cafile=str(settings.manager_ca_bundle))
        base = settings.log_streaming_service_url.rstrip("/")
        self._url = base if base.endswith("/api/delegate/logs") else base + "/api/delegate/logs"
        self._client = httpx.AsyncClient(timeout=30, verify=verify, trust_env=True)
        self.failures = 0
        self.posts = 0

    async def run(self) -> None:
        while True:
            await self._outbox.wait_unsent()
            async for attempt in AsyncRetrying(
                wait=wait_random_exponential(multiplier=0.2, max=30),
                retry=retry_if_exception_type((httpx.HTTPError, ValueError)),
                before_sleep=self._failed,
            ):
                with attempt:
                    await self._send_round()

    def _failed(self, state: RetryCallState) -> None:
        self.failures += 1
        self._outbox.rewind({})  # everything unacked goes again
        exc = state.outcome.exception() if state.outcome else None
        log.warning("log service unreachable; will resend", error=str(exc),
                    in_seconds=round(state.next_action.sleep if state.next_action else 0, 2))

    async def _send_round(self) -> None:
        batch: list[str] = []
        while len(batch) < MAX_BATCH_MESSAGES and (more := self._outbox.take_unsent()):
            batch.extend(more)
        chunk: list[str] = []
        size = 0
        for text in batch:
            if chunk and size + len(text) > MAX_POST_BYTES:
                await self._post(chunk)
                chunk, size = [], 0
            chunk.append(text)
            size += len(text)
        if chunk:
            await self._post(chunk)
            # Whatever was sent but not acked (a gap) goes again.
            self._outbox.rewind({})

    async def _post(self, batch: list[str]) -> None:
        credential = auth.sign(self._token, account_id=self._settings.account_id,
                               delegate_name=self._settings.delegate_name, audience="logs")
        body = '{"messages":[' + ",".join(batch) + "]}"
        resp = await self._client.post(
            self._url, content=body,
            headers={"Authorization": f"Bearer {credential}",
                     "Content-Type": "application/json"},
        )
        self.posts += 1
        if resp.status_code >= 400:
            raise httpx.HTTPStatusError(f"log service answered HTTP {resp.status_code}: "
                                        f"{resp.text[:200]}", request=resp.request,
                                        response=resp)
        # pydantic's parser bounds nesting: a hostile or broken answer is a ValueError
        # (retried like any bad answer), never a RecursionError that ends the process.
        answer = LogServiceAnswer.model_validate_json(resp.content)
        for task_id, seq in answer.acks.items():
            self._outbox.ack(task_id, seq)
        for task_id, reason in answer.errors.items():
            log.warning("log service refused a task's messages; dropping them",
                        task_id=task_id, reason=reason)
            self._outbox.drop(task_id)

    async def aclose(self) -> None:
        await self._client.aclose()

