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
        port = parts.port  # urlsplit checks the port's range only when asked
    except ValueError:  # "Port out of range 0-65535", or not a number
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"{value!r} has port {parts.netloc.rsplit(':', 1)[-1]!r}; "
                         "a port is a number from 1 to 65535")
    return url.rstrip("/")
