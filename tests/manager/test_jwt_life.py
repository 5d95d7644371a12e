"""A delegate JWT is used once, even across a manager restart on the same database, and
lives at most ninety seconds whatever its claims say about the clock."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.manager.conftest import FakeDelegate, Manager
from wire import auth


async def test_replay_after_manager_restart_is_refused(
        make_manager: Callable[..., Manager]) -> None:
    first = make_manager()
    await first.start()
    try:
        token = await first.token()
        jwt = auth.sign(token, account_id="acct1", delegate_name="d1")
        d = FakeDelegate(first, token)
        assert (await d.connect(auth_jwt=jwt)).type == "registered"
        await d.close()
    finally:
        await first.stop()
    second = make_manager()
    await second.start()
    try:
        reply = await FakeDelegate(second, token).connect(auth_jwt=jwt)
        assert reply.type == "refused" and "replay" in reply.reason, reply
    finally:
        await second.stop()


@pytest.mark.parametrize(("issued_ago", "accepted"), [(0, True), (-25, True), (55, True),
                                                       (65, False), (85, False)])
async def test_a_jwt_lives_at_most_the_bound(manager: Manager, issued_ago: float,
                                             accepted: bool) -> None:
    token = await manager.token()
    jwt = auth.sign(token, account_id="acct1", delegate_name="d1",
                    now=time.time() - issued_ago)
    reply = await FakeDelegate(manager, token).connect(auth_jwt=jwt)
    assert (reply.type == "registered") is accepted, reply


def test_acceptance_window_is_bounded() -> None:
    assert auth.JWT_LIFETIME + auth.CLOCK_SKEW <= auth.MAX_JWT_WINDOW <= 90
