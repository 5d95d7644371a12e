"""AWS clients for task handlers: sane retries, metrics, and shared where it is safe.

Retries and pacing: botocore's ``standard`` mode retries throttling and transient
errors with backoff. Its ``adaptive`` mode is not used: its one rate limiter per client
learns from every ECS call alike, so RegisterTaskDefinition throttles slowed
DescribeServices too. Instead every ECS attempt first takes a token from
``tasks.aws.pacing`` (a bucket per ECS throttle category, per credentials and Region,
shared by all tasks), and a ThrottlingException slows only that category. The
steady-state watcher adds its own tenacity backoff on top for polling.
``AWS_ENDPOINT_URL`` (read by botocore itself) points every client at another endpoint,
such as a moto server.

Sharing, because a delegate runs hundreds of deployments at once:

* every session uses one process-wide botocore data loader, so the service models are
  parsed once (a loader per task cost ~10 MB each: 2.3 GB for 200 deploys);
* with the delegate's own credentials (``inherit`` without a role), clients are pooled
  per event loop and service/region/endpoint: creating one costs 50-100 ms of CPU;
* the metrics hook (on every attempt, retries included) finds the calling task's
  observer through a context variable, so a pooled client reports each call to the task
  that made it.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from typing import Any, cast

import aioboto3
import aiobotocore.session
from botocore.config import Config
from botocore.loaders import Loader

from agent.context import AwsCallObserver, TaskContext, TaskFailed
from tasks.aws.credentials import AccessKeyCredentials, Credentials, InheritCredentials
from tasks.aws.pacing import PACER
from tasks.aws.ports import (
    AutoScalingClient,
    BotocoreClient,
    CloudFormationClient,
    Ec2Client,
    EcrClient,
    EcsClient,
    Elbv2Client,
    S3Client,
    StsClient,
)

THROTTLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "TooManyRequestsException", "RequestLimitExceeded", "Rate exceeded",
})


def client_config(max_attempts: int | None = None) -> Config:
    # Ten attempts ride out a throttle: the pacer slows the category, the retries wait.
    attempts = max_attempts or int(os.environ.get("AWS_MAX_ATTEMPTS", "10"))
    return Config(
        retries={"mode": "standard", "max_attempts": attempts},
        connect_timeout=10,
        read_timeout=60,
        user_agent_appid="ecs-delegate",
    )


_observer: ContextVar[AwsCallObserver | None] = ContextVar("aws_call_observer", default=None)


def _throttled(response: Any) -> bool:
    code = ""
    if isinstance(response, tuple) and len(response) == 2 and isinstance(response[1], dict):
        code = str(response[1].get("Error", {}).get("Code", ""))
    return code in THROTTLE_CODES


def _on_attempt(*, operation: Any, response: Any = None, **_: Any) -> None:
    """Every attempt, retries included ("needs-retry" fires after each one), so a
    throttled call that botocore retried is still counted as throttled. Returns None:
    a value here would be taken as the retry decision."""
    observer = _observer.get()
    if observer is None:
        return
    observer(operation.service_model.service_name, operation.name, _throttled(response))


def _hook(client: BotocoreClient, service: str, who: str) -> BotocoreClient:
    """Metrics on every client; for ECS, pacing too. ``who`` names the credentials (never
    a secret): ECS's buckets are per account, and the endpoint keeps a sandbox's
    buckets apart from AWS's."""
    client.meta.events.register("needs-retry.*.*", _on_attempt)
    if service != "ecs":
        return client
    identity = f"{who}@{client.meta.endpoint_url}"
    region = client.meta.region_name

    async def pace(*, event_name: str, **_: Any) -> None:
        # "before-send" fires before every attempt, retries included, and aiobotocore
        # awaits a coroutine handler. Returns None: a value would be taken as the response.
        await PACER.acquire(identity, region, event_name.rsplit(".", 1)[-1])

    def feedback(*, operation: Any, response: Any = None, **_: Any) -> None:
        if _throttled(response):
            PACER.throttled(identity, region, operation.name)

    client.meta.events.register("before-send.ecs", pace)
    client.meta.events.register("needs-retry.ecs", feedback)
    return client


def _who(credentials: Credentials) -> str:
    if credentials.role_arn:
        return credentials.role_arn
    if isinstance(credentials, AccessKeyCredentials):
        return credentials.access_key_id
    return "inherit"


_shared_loader: Loader | None = None


def _botocore_session() -> aiobotocore.session.AioSession:
    """A new botocore session that shares the process-wide data loader (and its cache)."""
    global _shared_loader
    session = aiobotocore.session.get_session()
    if _shared_loader is None:
        _shared_loader = session.get_component("data_loader")
    else:
        session.register_component("data_loader", _shared_loader)
    return session


class _Pool:
    """Clients made with the delegate's own credentials, kept for the life of a loop."""

    def __init__(self) -> None:
        self.stack = AsyncExitStack()
        self.session = aioboto3.Session(botocore_session=_botocore_session())
        self.clients: dict[tuple[str, str, str], Any] = {}
        self.lock = asyncio.Lock()


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = (
    weakref.WeakKeyDictionary())


async def close_pooled_clients() -> None:
    """Close the pooled clients of the running loop (the delegate calls this on stop)."""
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.stack.aclose()


async def _pooled_client(service: str, region: str) -> Any:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = _Pool()
    key = (service, region, os.environ.get("AWS_ENDPOINT_URL", ""))
    async with pool.lock:
        client: Any = pool.clients.get(key)
        if client is None:
            client = await pool.stack.enter_async_context(
                pool.session.client(service, region_name=region, config=client_config()))
            pool.clients[key] = _hook(client, service, "inherit")
    return client


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
            session = aioboto3.Session(region_name=self.region,
                                       botocore_session=_botocore_session())
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
                botocore_session=_botocore_session(),
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
            botocore_session=_botocore_session(),
        )

    # Typed clients: aiobotocore makes its methods at run time, so the cast to the port
    # (the calls we make, tasks/aws/ports.py) happens once, here.
    async def ecs(self) -> EcsClient:
        return cast(EcsClient, await self.client("ecs"))

    async def elbv2(self) -> Elbv2Client:
        return cast(Elbv2Client, await self.client("elbv2"))

    async def autoscaling(self) -> AutoScalingClient:
        return cast(AutoScalingClient, await self.client("application-autoscaling"))

    async def s3(self, region: str | None = None) -> S3Client:
        return cast(S3Client, await self.client("s3", region))

    async def sts(self) -> StsClient:
        return cast(StsClient, await self.client("sts"))

    async def cloudformation(self) -> CloudFormationClient:
        return cast(CloudFormationClient, await self.client("cloudformation"))

    async def ecr(self) -> EcrClient:
        return cast(EcrClient, await self.client("ecr"))

    async def ec2(self) -> Ec2Client:
        return cast(Ec2Client, await self.client("ec2"))

    async def client(self, service: str, region: str | None = None) -> Any:
        """The raw aiobotocore client (untyped); handlers use the typed methods above."""
        key = (service, region or self.region)
        creds = self._credentials
        if isinstance(creds, InheritCredentials) and not creds.role_arn:
            return await _pooled_client(*key)
        if key not in self._clients:
            if self._session is None:
                self._session = await self._base_session()
            client = await self._stack.enter_async_context(
                self._session.client(service, region_name=key[1], config=client_config())
            )
            self._clients[key] = _hook(client, service, _who(creds))
        return self._clients[key]

    async def frozen_credentials(self) -> Any:
        """The resolved credentials (``access_key``, ``secret_key``, ``token``) for a child
        process that calls AWS itself (a shell step's AWS CLI), or None when the chain
        finds none."""
        if self._session is None:
            self._session = await self._base_session()
        creds = await self._session.get_credentials()
        return None if creds is None else await creds.get_frozen_credentials()

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._clients.clear()


@asynccontextmanager
async def aws_session(ctx: TaskContext, credentials: Credentials,
                      region: str) -> AsyncIterator[AwsSessionFactory]:
    factory = AwsSessionFactory(ctx, credentials, region)
    token = _observer.set(ctx.aws_call_observer)
    try:
        yield factory
    finally:
        _observer.reset(token)
        await factory.aclose()
