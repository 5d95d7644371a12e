"""The console's session: a signed cookie (HMAC-SHA256 from the stdlib) that holds a
random session id and an expiry, never the admin token. The signing key is derived from
the admin token, so a new admin token signs every browser out. CSRF tokens are derived
from the session id; one-time sign-in links are short-lived and single-use.

Links, signed-out sessions and the one-line messages for a session's next page are rows
in the database (``console_state``), not this process's memory: behind a load balancer a
link made on one replica is used on another, and a link is spent once across all of
them (the DELETE that spends it succeeds on one)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from manager.db import Database

COOKIE = "console_session"
PRE_COOKIE = "console_signin"
SESSION_SECONDS = 12 * 3600.0
LINK_SECONDS = 600.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Sessions:
    admin_token: str
    db: Database

    @property
    def _key(self) -> bytes:
        return hmac.new(self.admin_token.encode(), b"ecs-delegate console session",
                        hashlib.sha256).digest()

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())

    def issue(self, now: float | None = None) -> str:
        """A new session cookie value."""
        payload = _b64(json.dumps({"sid": secrets.token_urlsafe(18),
                                   "exp": (now or time.time()) + SESSION_SECONDS}).encode())
        return f"{payload}.{self._sign(payload)}"

    def session_id(self, cookie: str | None, now: float | None = None) -> str | None:
        """The session id of a valid, unexpired, not signed-out cookie, else None."""
        if not cookie or cookie.count(".") != 1:
            return None
        payload, sig = cookie.split(".")
        if not hmac.compare_digest(sig, self._sign(payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
            sid, exp = str(data["sid"]), float(data["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        if exp < (now or time.time()) or self._held("ended", sid, now) is not None:
            return None
        return sid

    def end(self, sid: str, now: float | None = None) -> None:
        self._put("ended", sid, "", (now or time.time()) + SESSION_SECONDS, now)

    def set_flash(self, sid: str, message: str) -> None:
        """One message for the session's next page (what an action did or why it was
        refused): kept server-side, not in a query string anyone could forge a link with."""
        self._put("flash", sid, message, time.time() + SESSION_SECONDS)

    def pop_flash(self, sid: str) -> str | None:
        with self.db.tx():
            message = self._held("flash", sid)
            self.db.run("DELETE FROM console_state WHERE kind = 'flash' AND key = ?", sid)
        return message

    def csrf(self, sid: str) -> str:
        """The CSRF token every form and action of this session carries."""
        return self._sign(f"csrf:{sid}")

    def csrf_ok(self, sid: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given), self.csrf(sid))

    def new_link(self, now: float | None = None) -> str:
        """A one-time sign-in token, valid for LINK_SECONDS."""
        at = now or time.time()
        token = secrets.token_urlsafe(24)
        self._put("link", hashlib.sha256(token.encode()).hexdigest(), "", at + LINK_SECONDS,
                  at)
        return token

    def use_link(self, token: str, now: float | None = None) -> bool:
        """True once for a valid link token; it is spent whatever the answer."""
        key = hashlib.sha256(token.encode()).hexdigest()
        with self.db.tx():
            valid = self._held("link", key, now) is not None
            spent = self.db.run("DELETE FROM console_state WHERE kind = 'link' AND key = ?",
                                key)
        return valid and spent == 1

    # -- rows ----------------------------------------------------------------------------
    def _put(self, kind: str, key: str, value: str, expires_at: float,
             now: float | None = None) -> None:
        with self.db.tx():
            self.db.run("DELETE FROM console_state WHERE expires_at < ?", now or time.time())
            self.db.run("INSERT INTO console_state (kind, key, value, expires_at) VALUES "
                        "(?, ?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET "
                        "value = excluded.value, expires_at = excluded.expires_at",
                        kind, key, value, expires_at)

    def _held(self, kind: str, key: str, now: float | None = None) -> str | None:
        row = self.db.one("SELECT value FROM console_state WHERE kind = ? AND key = ? AND "
                          "expires_at > ?", kind, key, now or time.time())
        return None if row is None else str(row["value"])
