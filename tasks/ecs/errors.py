"""AWS errors as the user should read them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from tenacity import AsyncRetrying, retry_if_exception, wait_random_exponential

from agent.context import TaskFailed
from tasks.aws.clients import THROTTLE_CODES

T = TypeVar("T")
# Jittered exponential backoff for throttled calls, on top of botocore's own retries.
BACKOFF = wait_random_exponential(multiplier=0.5, max=20)


def is_throttling(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return error.get("Code") in THROTTLE_CODES or error.get("Message") in THROTTLE_CODES
    return False


async def unthrottled(call: Callable[[], Awaitable[T]]) -> T:
    """Run ``call`` until AWS stops throttling it; the caller's timeout bounds the wait."""
    async for attempt in AsyncRetrying(retry=retry_if_exception(is_throttling), wait=BACKOFF,
                                       reraise=True):
        with attempt:
            return await call()
    raise AssertionError("unreachable: AsyncRetrying reraises")


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Turn an AWS error into a TaskFailed that says which call failed and why."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise TaskFailed(f"{action} failed: {error.get('Code', 'Error')}: "
                         f"{error.get('Message', exc)}") from exc
    except BotoCoreError as exc:
        raise TaskFailed(f"{action} failed: {exc}") from exc
