"""The manager's exception root. Everything the manager raises on purpose derives from
:class:`ManagerError`; the HTTP and websocket layers translate it at the boundary."""

from __future__ import annotations


class ManagerError(Exception):
    """Root of the manager's own errors."""
