"""What every look-up does: open an AWS session, page through a listing (stopping at
``MAX_ITEMS``, said in the answer), and turn AWS errors into one-line failures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

from agent.context import TaskContext
from tasks.aws.clients import AwsSessionFactory, aws_session
from tasks.aws.ports import Paginator
from tasks.ecs.errors import aws_errors
from tasks.lookups.params import LookupParams
from wire.lookups import MAX_ITEMS

P = TypeVar("P", bound=LookupParams)
Items = list[dict[str, Any]]
Finder = Callable[[TaskContext[P], AwsSessionFactory], Awaitable[tuple[Items, bool]]]


@asynccontextmanager
async def session_of(ctx: TaskContext[P]) -> AsyncIterator[AwsSessionFactory]:
    async with aws_session(ctx, ctx.params.credentials, ctx.params.region) as aws:
        yield aws


async def paged(paginator: Paginator, key: str, what: str, **kwargs: Any
                ) -> tuple[list[dict[str, Any]], bool]:
    """Every ``key`` item of every page, up to MAX_ITEMS; (items, truncated)."""
    items: list[dict[str, Any]] = []
    with aws_errors(what):
        async for page in paginator.paginate(**kwargs):
            items.extend(page.get(key, []))
            if len(items) > MAX_ITEMS:
                return items[:MAX_ITEMS], True
    return items, False


def iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def name_tag(tags: list[dict[str, str]] | None) -> str:
    return next((t["Value"] for t in tags or [] if t.get("Key") == "Name"), "")


def chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def handler_of(kind: str, finder: Finder[P]) -> Callable[[TaskContext[P]],
                                                         Awaitable[dict[str, Any]]]:
    """The task handler of a look-up: one log unit, the items as the output."""
    async def lookup(ctx: TaskContext[P]) -> dict[str, Any]:
        async with ctx.log.unit("Look Up") as log, session_of(ctx) as aws:
            items, truncated = await finder(ctx, aws)
            log.info(f"Found {len(items)} {kind} in {ctx.params.region}"
                     + (f" (cut at {MAX_ITEMS})" if truncated else ""))
        ctx.output.update(kind=kind, region=ctx.params.region, items=items,
                          truncated=truncated)
        return ctx.output
    lookup.__name__ = f"lookup_{kind.replace('-', '_')}"
    return lookup
