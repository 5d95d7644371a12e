"""The console's session cookie and one-time links, without a browser (the links, ended
sessions and page messages on a real database file, as every replica sees them)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from manager.db import SqliteDatabase
from manager.ui.session import LINK_SECONDS, SESSION_SECONDS, Sessions

TOKEN = "admin-token-for-session-tests-0123"


@pytest.fixture
def db(tmp_path: Path) -> SqliteDatabase:
    return SqliteDatabase(tmp_path / "console.db")


def test_a_cookie_holds_a_session_id_and_expiry_never_the_token(db: SqliteDatabase) -> None:
    cookie = Sessions(TOKEN, db).issue(now=1000.0)
    payload = cookie.split(".")[0]
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert set(data) == {"sid", "exp"} and data["exp"] == 1000.0 + SESSION_SECONDS
    assert TOKEN not in cookie


def test_a_tampered_expired_signed_out_or_other_token_cookie_is_refused(
        db: SqliteDatabase) -> None:
    s = Sessions(TOKEN, db)
    cookie = s.issue(now=1000.0)
    sid = s.session_id(cookie, now=1001.0)
    assert sid is not None
    _payload, sig = cookie.split(".")
    forged = base64.urlsafe_b64encode(json.dumps(
        {"sid": sid, "exp": 9e12}).encode()).decode().rstrip("=")
    assert s.session_id(f"{forged}.{sig}", now=1001.0) is None
    assert s.session_id(cookie, now=1000.0 + SESSION_SECONDS + 1) is None
    assert Sessions("another-admin-token", db).session_id(cookie, now=1001.0) is None
    assert s.session_id("garbage", now=1001.0) is None
    s.end(sid)
    assert s.session_id(cookie, now=1001.0) is None


def test_csrf_tokens_belong_to_their_session(db: SqliteDatabase) -> None:
    s = Sessions(TOKEN, db)
    assert s.csrf_ok("a", s.csrf("a"))
    assert not s.csrf_ok("b", s.csrf("a"))
    assert not s.csrf_ok("a", None)


def test_a_link_works_once_and_not_after_it_expires(db: SqliteDatabase) -> None:
    s = Sessions(TOKEN, db)
    link = s.new_link(now=1000.0)
    assert s.use_link(link, now=1001.0)
    assert not s.use_link(link, now=1002.0)
    late = s.new_link(now=1000.0)
    assert not s.use_link(late, now=1000.0 + LINK_SECONDS + 1)
    assert not s.use_link("never-issued", now=1000.0)


def test_what_one_replica_records_another_honours(tmp_path: Path) -> None:
    """Two replicas' console sessions on one database: a link made on one is spent once
    on the other, a sign-out on one holds on the other, a message set on one shows once
    on the other."""
    one = Sessions(TOKEN, SqliteDatabase(tmp_path / "shared.db"))
    two = Sessions(TOKEN, SqliteDatabase(tmp_path / "shared.db"))
    link = one.new_link()
    assert two.use_link(link)
    assert not one.use_link(link)
    cookie = one.issue()
    sid = two.session_id(cookie)
    assert sid is not None
    one.set_flash(sid, "Rollback requested.")
    assert two.pop_flash(sid) == "Rollback requested."
    assert one.pop_flash(sid) is None
    two.end(sid)
    assert one.session_id(cookie) is None
