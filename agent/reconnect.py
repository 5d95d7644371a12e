"""When to connect again, and whether to: a pure backoff and a pure error table.

The delays are capped exponential with full jitter (the AWS architecture blog's
"full jitter": uniform between 0 and ``min(cap, base * 2**n)``), so a fleet of
delegates that lost the same manager does not come back in lock-step. A connection
that stayed up for :data:`HEALTHY_PERIOD` seconds starts the backoff over, and its
first reconnect is immediate: one dropped connection after hours of work should not
cost a minute.

What ends a connection attempt, and what the delegate does about it (first match wins):

==============================  =======  ==================================================
error                           action   why
==============================  =======  ==================================================
ssl.SSLCertVerificationError    fatal    the manager's certificate is not signed by a CA we
                                         trust (or names another host): it will not heal by
                                         itself; set MANAGER_CA_BUNDLE (exit 5)
OSError (refused, reset,        retry    the manager is down, restarting or unreachable;
unreachable, DNS, other TLS)             the network or the manager comes back
TimeoutError                    retry    a handshake that hung (security group, NACL, a
                                         frozen manager)
websockets InvalidStatus        retry    a proxy or load balancer answered instead of the
                                         manager (502 while it restarts, 503)
other WebSocketException        retry    the connection closed or broke mid-frame
(closed, protocol error, 1009)
anything else                   raise    a bug in this program: it surfaces with its
                                         traceback instead of being retried forever
==============================  =======  ==================================================

A manager that *answers* and refuses (``refused``/``disconnect`` with ``fatal``) is
decided by :class:`agent.connection.DelegateConnection`, not here.
"""

from __future__ import annotations

import random
import ssl
from collections.abc import Callable, Iterator

from websockets.exceptions import WebSocketException

from agent.errors import ManagerNotTrusted

HEALTHY_PERIOD = 30.0


def backoff(base: float, cap: float, *,
            rand: Callable[[], float] = random.random) -> Iterator[float]:
    """Delays before attempt 1, 2, ...: full jitter over ``min(cap, base * 2**n)``."""
    ceiling = base
    while True:
        yield rand() * min(cap, ceiling)
        if ceiling < cap:  # stop growing once capped (and never overflow)
            ceiling *= 2


class Backoff:
    """The delay before the next attempt, given how long the last connection lasted."""

    def __init__(self, base: float, cap: float, *, healthy_period: float = HEALTHY_PERIOD,
                 rand: Callable[[], float] = random.random) -> None:
        self._base = base
        self._cap = cap
        self._healthy = healthy_period
        self._rand = rand
        self._delays = backoff(base, cap, rand=rand)

    def after(self, lasted: float) -> float:
        """Seconds to wait after a connection (or attempt) that lasted ``lasted`` s."""
        if lasted >= self._healthy:
            self._delays = backoff(self._base, self._cap, rand=self._rand)
            return 0.0
        return next(self._delays)


def is_retryable(exc: BaseException) -> bool:
    """True when connecting again may help (the table above)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return False
    return isinstance(exc, OSError | TimeoutError | WebSocketException)


def fatal_error(exc: BaseException) -> BaseException:
    """What to raise for a non-retryable error: ours, in one line, or the bug itself."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or exc.reason or str(exc)
        return ManagerNotTrusted(
            f"the manager's TLS certificate is not trusted ({detail}); set "
            "MANAGER_CA_BUNDLE to the CA bundle that signed it, or check that "
            "MANAGER_HOST_AND_PORT names the host on the certificate")
    return exc


def describe(exc: BaseException) -> str:
    """One line for the log: the underlying cause when the error wraps one."""
    cause = exc.__cause__ or exc
    return str(cause) or type(cause).__name__
