"""The console's session: a signed cookie (HMAC-SHA256 from the stdlib) that holds a
random session id and an expiry, never the admin token. The signing key is derived from
the admin token, so a new admin token signs every browser out. CSRF tokens are derived
from the session id; one-time sign-in links are short-lived, single-use, in memory."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field

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
    _links: dict[str, float] = field(default_factory=dict)
    _ended: set[str] = field(default_factory=set)
    # One message for the next page of a session (what an action did or why it was
    # refused); kept here, not in a query string anyone could forge a link with.
    flash: dict[str, str] = field(default_factory=dict)

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
        if exp < (now or time.time()) or sid in self._ended:
            return None
        return sid

    def end(self, sid: str) -> None:
        self._ended.add(sid)

    def csrf(self, sid: str) -> str:
        """The CSRF token every form and action of this session carries."""
        return self._sign(f"csrf:{sid}")

    def csrf_ok(self, sid: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given), self.csrf(sid))

    def new_link(self, now: float | None = None) -> str:
        """A one-time sign-in token, valid for LINK_SECONDS."""
        at = now or time.time()
        self._links = {k: v for k, v in self._links.items() if v > at}
        token = secrets.token_urlsafe(24)
        self._links[hashlib.sha256(token.encode()).hexdigest()] = at + LINK_SECONDS
        return token

    def use_link(self, token: str, now: float | None = None) -> bool:
        """True once for a valid link token; it is spent whatever the answer."""
        expires = self._links.pop(hashlib.sha256(token.encode()).hexdigest(), None)
        return expires is not None and expires > (now or time.time())
