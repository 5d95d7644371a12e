"""The web console's address with a one-time sign-in link, as ``delegate demo --keep``
prints it beside its ``export`` lines."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


def console_link(client: Any, url: str) -> str:
    """Ask the manager (admin API) for a one-time link; the admin token stays out of it."""
    created = client.request("POST", "/api/ui/sign-in-links")
    return f"{url.rstrip('/')}{created['path']}"


async def print_console_link(client: Any, url: str, say: Callable[[str], Any]) -> None:
    # The demo's manager serves from this event loop: the blocking request goes to a thread.
    link = await asyncio.to_thread(console_link, client, url)
    say(f"  open the web console: {link}")
    say(f"  (a one-time link for 10 minutes; after that sign in at {url.rstrip('/')}/ui/ "
        "with $MANAGER_ADMIN_TOKEN)")
