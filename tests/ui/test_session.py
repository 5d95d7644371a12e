"""The console's session cookie and one-time links, without a browser."""

from __future__ import annotations

import base64
import json

from manager.ui.session import LINK_SECONDS, SESSION_SECONDS, Sessions

TOKEN = "admin-token-for-session-tests-0123"


def test_a_cookie_holds_a_session_id_and_expiry_never_the_token() -> None:
    cookie = Sessions(TOKEN).issue(now=1000.0)
    payload = cookie.split(".")[0]
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert set(data) == {"sid", "exp"} and data["exp"] == 1000.0 + SESSION_SECONDS
    assert TOKEN not in cookie


def test_a_tampered_expired_signed_out_or_other_token_cookie_is_refused() -> None:
    s = Sessions(TOKEN)
    cookie = s.issue(now=1000.0)
    sid = s.session_id(cookie, now=1001.0)
    assert sid is not None
    _payload, sig = cookie.split(".")
    forged = base64.urlsafe_b64encode(json.dumps(
        {"sid": sid, "exp": 9e12}).encode()).decode().rstrip("=")
    assert s.session_id(f"{forged}.{sig}", now=1001.0) is None
    assert s.session_id(cookie, now=1000.0 + SESSION_SECONDS + 1) is None
    assert Sessions("another-admin-token").session_id(cookie, now=1001.0) is None
    assert s.session_id("garbage", now=1001.0) is None
    s.end(sid)
    assert s.session_id(cookie, now=1001.0) is None


def test_csrf_tokens_belong_to_their_session() -> None:
    s = Sessions(TOKEN)
    assert s.csrf_ok("a", s.csrf("a"))
    assert not s.csrf_ok("b", s.csrf("a"))
    assert not s.csrf_ok("a", None)


def test_a_link_works_once_and_not_after_it_expires() -> None:
    s = Sessions(TOKEN)
    link = s.new_link(now=1000.0)
    assert s.use_link(link, now=1001.0)
    assert not s.use_link(link, now=1002.0)
    late = s.new_link(now=1000.0)
    assert not s.use_link(late, now=1000.0 + LINK_SECONDS + 1)
    assert not s.use_link("never-issued", now=1000.0)
