"""One aioboto3 session per task's credentials; clients with sane retries and metrics.

Retries: botocore's ``adaptive`` mode retries throttling and transient errors with
backoff and a client-side rate limiter; the steady-state watcher adds its own tenacity
backoff on top for polling. ``AWS_ENDPOINT_URL`` (read by botocore itself) points every
client at another endpoint, such as a moto server.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aioboto3
from botocore.config import Config

from agent.context import AwsCallObserver, TaskContext, TaskFailed
from tasks.aws.credentials import AccessKeyCredentials, Credentials, InheritCredentials

THROTTLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "TooManyRequestsException", "RequestLimitExceeded", "Rate exceeded",
})


def client_config(max_attempts: int | None = None) -> Config:
    attempts = max_attempts or int(os.environ.get("AWS_MAX_ATTEMPTS", "8"))
    return Config(
        retries={"mode": "adaptive", "max_attempts": attempts},
        connect_timeout=10,
        read_timeout=60,
        user_agent_appid="ecs-delegate",
    )


def _observe(observer: AwsCallObserver | None) -> Any:
    def after_call(*, model: Any, parsed: Any = None, **_: Any) -> None:
        if observer is None:
            return
        code = ""
        if isinstance(parsed, dict):
            code = str(parsed.get("Error", {}).get("Code", ""))
        observer(model.service_model.service_name, model.name, code in THROTTLE_CODES)

    return after_call


class AwsSessionFactory:
    """Builds clients for one task. Reuses a client per (service, region)."""

    def __init__(self, ctx: TaskContext, credentials: Credentials, region: str) -> None:
        self._ctx = ctx
        self._credentials = credentials
        self.region = region
        self._stack = AsyncExitStack()
        self._clients: dict[tuple[str, str], Any] = {}
        self._session: aioboto3.Session | None = None

    async def _base_session(self) -> aioboto3.Session:
        creds = self._credentials
        if isinstance(creds, InheritCredentials):
            session = aioboto3.Session(region_name=self.region)
        else:
            assert isinstance(creds, AccessKeyCredentials)
            secret = self._ctx.secrets.get(creds.secret_key_ref)
            if secret is None:
                raise TaskFailed(
                    f"credentials.secretKeyRef names secret {creds.secret_key_ref!r}, "
                    "which the task does not have; add it to the task's secrets"
                )
            token = None
            if creds.session_token_ref:
                token = self._ctx.secrets.get(creds.session_token_ref)
                if token is None:
                    raise TaskFailed(
                        f"credentials.sessionTokenRef names secret "
                        f"{creds.session_token_ref!r}, which the task does not have"
                    )
            session = aioboto3.Session(
                aws_access_key_id=creds.access_key_id, aws_secret_access_key=secret,
                aws_session_token=token, region_name=self.region,
            )
        if creds.role_arn:
            session = await self._assume(session, creds)
        return session

    async def _assume(self, session: aioboto3.Session, creds: Credentials) -> aioboto3.Session:
        kwargs: dict[str, Any] = {"RoleArn": creds.role_arn,
                                  "RoleSessionName": creds.session_name}
        if creds.external_id:
            kwargs["ExternalId"] = creds.external_id
        async with session.client("sts", config=client_config()) as sts:
            answer = await sts.assume_role(**kwargs)
        c = answer["Credentials"]
        self._ctx.add_secret(c["SecretAccessKey"])
        self._ctx.add_secret(c["SessionToken"])
        return aioboto3.Session(
            aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
            aws_session_token=c["SessionToken"], region_name=self.region,
        )

    async def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.region)
        if key not in self._clients:
            if self._session is None:
                self._session = await self._base_session()
            client = await self._stack.enter_async_context(
                self._session.client(service, region_name=key[1], config=client_config())
            )
            client.meta.events.register("after-call.*.*", _observe(self._ctx.aws_call_observer))
            self._clients[key] = client
        return self._clients[key]

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._clients.clear()


@asynccontextmanager
async def aws_session(ctx: TaskContext, credentials: Credentials,
                      region: str) -> AsyncIterator[AwsSessionFactory]:
    factory = AwsSessionFactory(ctx, credentials, region)
    try:
        yield factory
    finally:
        await factory.aclose()
