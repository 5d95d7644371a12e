"""The one check of a manager URL, for every command that takes one (``delegate run``
and the client commands), so a URL without a scheme or with a bad port is refused the
same way everywhere."""

from __future__ import annotations

from urllib.parse import urlsplit

SCHEMES = ("http", "https", "ws", "wss")


def check_manager_url(value: str) -> str:
    """``value`` without surrounding space and trailing slash, or ValueError saying what a
    manager URL looks like."""
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ValueError(f"{value!r} is not a URL like https://manager.example.com:443 "
                         "(the scheme, http:// or https://, is required)")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port's range only when asked
    except ValueError:
        raise ValueError(f"{value!r}: the port must be a number from 1 to 65535") from None
    return url.rstrip("/")
