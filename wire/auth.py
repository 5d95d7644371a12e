"""Proving the delegate holds its token without ever sending the token.

A delegate token looks like ``edt.<token id>.<secret>``. Both sides derive the same
signing key from it (HMAC-SHA256 over a fixed label); the manager stores only the token
id and that derived key, never the token. For every connection (and every file-store
request) the delegate signs a JWT (HS256) that names the account and the delegate, lives
for :data:`JWT_LIFETIME` seconds and carries a fresh ``jti``; the manager checks the
signature in constant time (PyJWT uses ``hmac.compare_digest``) and refuses a ``jti``
it has already seen, so a captured JWT cannot be replayed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

TOKEN_PREFIX = "edt"
JWT_LIFETIME = 60.0
CLOCK_SKEW = 30.0
"""How far the delegate's clock may be ahead of or behind the manager's."""
MAX_JWT_WINDOW = 90.0
"""The longest a JWT is accepted, from first to last moment: ``iat`` may be up to
:data:`CLOCK_SKEW` ahead, and it is refused :data:`MAX_JWT_WINDOW` after that. Skew allowed
on both ``iat`` and ``exp`` let one JWT live about 120 s."""
_KEY_LABEL = b"ecs-delegate/v1/signing-key"


class TokenFormatError(ValueError):
    pass


@dataclass(frozen=True)
class ParsedToken:
    token_id: str
    secret: str

    def __repr__(self) -> str:  # never show the secret, even in a traceback
        return f"ParsedToken(token_id={self.token_id!r}, secret=<hidden>)"


def new_token() -> tuple[str, str]:
    """Return (token, token_id) for a freshly minted token."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"{TOKEN_PREFIX}.{token_id}.{secret}", token_id


def parse_token(token: str) -> ParsedToken:
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or len(parts[2]) < 16:
        raise TokenFormatError(
            "is not a delegate token (expected 'edt.<id>.<secret>', as printed by "
            "'delegate manager token create')"
        )
    return ParsedToken(parts[1], parts[2])


def derive_key(token: str) -> bytes:
    parsed = parse_token(token)
    return hmac.new(parsed.secret.encode(), _KEY_LABEL, hashlib.sha256).digest()


def key_fingerprint(key: bytes) -> str:
    """A short, non-secret label for a derived key (for logs and listings)."""
    return base64.urlsafe_b64encode(hashlib.sha256(key).digest()[:6]).decode()


def sign(token: str, *, account_id: str, delegate_name: str, audience: str = "delegate",
         now: float | None = None) -> str:
    parsed = parse_token(token)
    issued = time.time() if now is None else now
    claims = {
        "iss": account_id,
        "sub": delegate_name,
        "aud": audience,
        "iat": int(issued),
        "exp": int(issued + JWT_LIFETIME),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, derive_key(token), algorithm="HS256",
                      headers={"kid": parsed.token_id})


class AuthError(Exception):
    """A credential was refused. The message is safe to show to the sender."""


def unverified_kid(credential: str) -> str:
    try:
        header = jwt.get_unverified_header(credential)
    except jwt.PyJWTError as exc:
        raise AuthError("credential is not a signed delegate credential") from exc
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise AuthError("credential names no token id")
    return kid


def verify(credential: str, key: bytes, *, audience: str = "delegate",
           leeway: float = CLOCK_SKEW) -> dict[str, Any]:
    """Check signature, expiry and audience. Replay is the caller's job (jti)."""
    try:
        claims: dict[str, Any] = jwt.decode(
            credential, key, algorithms=["HS256"], audience=audience, leeway=leeway,
            options={"require": ["iss", "sub", "exp", "iat", "jti", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("credential expired; check the delegate host's clock") from exc
    except jwt.InvalidSignatureError as exc:
        raise AuthError("token does not match (wrong or rotated token)") from exc
    except jwt.PyJWTError as exc:
        raise AuthError(f"credential refused: {exc}") from exc
    if claims["exp"] - claims["iat"] > JWT_LIFETIME + 1:
        raise AuthError("credential lives too long")
    if time.time() - float(claims["iat"]) > MAX_JWT_WINDOW - leeway:
        raise AuthError("credential expired (issued too long ago); check the delegate "
                        "host's clock")
    return claims
