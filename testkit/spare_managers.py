"""Managers started one test ahead: a manager process takes about a second to start (most
of it importing), and some 200 tests each start a fresh one. While a test runs, the next
test's manager starts beside it, so that second overlaps the test instead of adding to it.

Each test still gets a manager process of its own, never used before, with its own
database, started with the test's arguments in the test's environment: a spare started
with other arguments or another environment (a test that set a variable first) is
stopped unused and a fresh one started, as before."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from testkit.stack import ManagerProcess

# How long the spare's process may take to be spawned (not to start listening).
SPAWN_DEADLINE = 10.0
# While it imports, the spare is niced below the running test's processes, so it takes
# only the CPU they leave (timing checks like test_lookups' loopback budget stay fair);
# taken, it is put back to the usual priority. Raising a priority back needs root (CI's
# case); elsewhere spares are not niced.
SPARE_NICE = 10 if os.geteuid() == 0 else 0  # added to this process's own
# pytest names the running test in the environment; the manager never reads it.
IGNORED = {"PYTEST_CURRENT_TEST"}


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in IGNORED}


@dataclass
class Spare:
    args: tuple[str, ...]
    environ: dict[str, str]
    manager: ManagerProcess
    started: Future[None]


class SpareManagers:
    """Hands out started managers, starting the next one in the background."""

    def __init__(self, new_dir: Callable[[], Path], stop: Callable[[ManagerProcess], None]
                 ) -> None:
        self.new_dir = new_dir
        self.stop = stop
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spare-manager")
        self.spare: Spare | None = None

    def take(self, args: tuple[str, ...]) -> ManagerProcess:
        """A started manager for these arguments and the current environment (blocking:
        call it off the event loop)."""
        spare, self.spare = self.spare, None
        manager = None
        if spare is not None and spare.args == args and spare.environ == environment():
            spare.started.result()  # raises what start() raised, with the manager's log
            manager = spare.manager
            _renice(manager, 0)  # back to this process's priority, as a fresh one has
        elif spare is not None:
            self._discard(spare)
        if manager is None:
            manager = ManagerProcess(self.new_dir(), extra_args=args)
            manager.start()
        self.spare = self._start(args)
        return manager

    def _start(self, args: tuple[str, ...]) -> Spare:
        environ = environment()
        manager = ManagerProcess(self.new_dir(), extra_args=args)
        started = self.pool.submit(manager.start)
        # start() reads the environment when it spawns the process: wait for that, so a
        # variable the test sets afterwards cannot reach the spare.
        deadline = time.monotonic() + SPAWN_DEADLINE
        while manager.proc is None and not started.done():
            if time.monotonic() > deadline:
                raise AssertionError(f"the spare manager was not spawned in {SPAWN_DEADLINE}s")
            time.sleep(0.001)
        _renice(manager, SPARE_NICE)
        return Spare(args, environ, manager, started)

    def _discard(self, spare: Spare) -> None:
        """Stop it once it has started (at once if it has), without waiting here."""
        spare.started.add_done_callback(
            lambda started: None if started.exception() else self.stop(spare.manager))

    def close(self) -> None:
        """Stop the spare nobody took (call before the stopper itself shuts down)."""
        if self.spare is not None:
            self._discard(self.spare)
            self.spare = None
        self.pool.shutdown(wait=True)


def _renice(manager: ManagerProcess, extra: int) -> None:
    if SPARE_NICE and manager.proc is not None:
        own = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, manager.proc.pid, min(19, own + extra))
