"""Every error the delegate raises on purpose, under one root.

::

    DelegateError                 anything agent/ raises on purpose; str() is one line
    ├── ConfigError               a setting is missing or malformed (``delegate run`` exit 2)
    │   └── HealthPortError       HEALTH_PORT cannot be opened (in use, not allowed)
    ├── ManagerRefused            the manager refused this delegate for good (exit 3):
    │                             wrong or revoked token, wrong account
    ├── ManagerNotTrusted         the manager's TLS certificate failed verification
    │                             (exit 5): set MANAGER_CA_BUNDLE; retrying cannot help
    ├── InitScriptError           INIT_SCRIPT failed or ran too long (exit 4)
    ├── FileStoreError            the manager's file store could not give a file
    ├── UnreadableFrame           a frame from the manager we cannot parse (logged, skipped)
    └── ConnectionStateError      the connection's state machine was asked for a
                                  transition it does not allow (a bug, never user input)

Errors from the outside (websockets, ssl, OSError) are translated at the boundary that
meets them, with ``raise ... from``; which of them end the process and which are retried
is the table in :mod:`agent.reconnect`.
"""

from __future__ import annotations


class DelegateError(Exception):
    """Root of the delegate's own errors. ``str()`` is the one line shown to the user."""


class ConfigError(DelegateError):
    """A setting is missing or malformed."""


class HealthPortError(ConfigError):
    """The health endpoint could not listen where HEALTH_HOST/HEALTH_PORT say."""


class ManagerRefused(DelegateError):
    """The manager refused this delegate for good; retrying cannot help."""


class ManagerNotTrusted(DelegateError):
    """The manager's TLS certificate did not verify against the trusted CAs."""


class InitScriptError(DelegateError):
    """INIT_SCRIPT exited non-zero or did not finish in time."""


class FileStoreError(DelegateError):
    """A file could not be fetched from the manager's file store."""


class UnreadableFrame(DelegateError):
    """A frame from the manager is not a message this delegate can read."""


class ConnectionStateError(DelegateError):
    """An illegal transition of :class:`agent.connection.DelegateConnection`."""
