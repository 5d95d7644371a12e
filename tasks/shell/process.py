"""One script as a child process group: its output streamed line by line, and nothing of
it left behind.

The script is started in a new session (its own process group), so abort, timeout and
the end of the script can signal everything it started: SIGTERM to the group, SIGKILL
after the grace period. Background children that outlive the script are stopped the same
way once it exits, because they would otherwise hold its pipes open and keep running as
the delegate's user with nobody watching them."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import signal
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# A line longer than this is cut into pieces: a script that prints megabytes without a
# newline must not grow the delegate's memory without bound.
MAX_LINE = 64 * 1024
_CHUNK = 64 * 1024
# How long the pipes may stay open after the group was killed (a grandchild in its own
# session still holding them): then the delegate stops reading.
_DRAIN_AFTER_KILL = 2.0

LineSink = Callable[[str, bool], None]  # (line, from stderr)


@dataclass
class Finished:
    exit_code: int
    last_lines: deque[str] = field(default_factory=lambda: deque(maxlen=10))


def _signal_group(pgid: int, sig: int) -> bool:
    """True when the group still had a process to signal."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member changed user (setuid): not ours to stop
        return False
    return True


async def _group_gone(pgid: int, within: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if not _signal_group(pgid, 0):
            return True
        await asyncio.sleep(0.05)  # polling the kernel: there is no event for "group empty"
    return not _signal_group(pgid, 0)


async def stop_group(pgid: int, grace: float) -> None:
    """SIGTERM, then SIGKILL for whatever is left after ``grace`` seconds."""
    if not _signal_group(pgid, signal.SIGTERM):
        return
    if await _group_gone(pgid, grace):
        return
    _signal_group(pgid, signal.SIGKILL)
    await _group_gone(pgid, 5.0)


async def _pump(stream: asyncio.StreamReader, is_err: bool, sink: LineSink,
                last: deque[str]) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    while chunk := await stream.read(_CHUNK):
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        while len(pending) > MAX_LINE:
            lines.append(pending[:MAX_LINE])
            pending = pending[MAX_LINE:]
        for line in lines:
            line = line.removesuffix("\r")
            last.append(line)
            sink(line, is_err)
    pending += decoder.decode(b"", final=True)
    if pending:
        last.append(pending)
        sink(pending, is_err)


async def _exit_code(proc: asyncio.subprocess.Process) -> int:
    """The script's exit code as soon as it exits. ``proc.wait()`` would also wait for
    its pipes to close, which a background child holding them delays forever; a pidfd
    becomes readable at the exit itself."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(proc.pid)
    except (ProcessLookupError, OSError, AttributeError):
        fd = -1  # already reaped, or no pidfd on this kernel: the returncode tells
    if fd >= 0:
        exited: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not exited.done():
                exited.set_result(None)
        loop.add_reader(fd, readable)
        try:
            await exited
        finally:
            loop.remove_reader(fd)
            os.close(fd)
    # asyncio's child watcher reaps the process and sets the code just after the exit;
    # it offers no event short of wait(), which waits for the pipes too.
    while proc.returncode is None:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    return proc.returncode


async def run_process(argv: list[str], *, cwd: str, env: Mapping[str, str],
                      sink: LineSink, grace: float) -> Finished:
    """Run ``argv`` to its end and return its exit code (negative: killed by that signal).
    Cancelled (abort, timeout, shutdown), it stops the whole group before re-raising."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=dict(env), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True)
    assert proc.stdout is not None and proc.stderr is not None
    finished = Finished(exit_code=-1)
    pumps = asyncio.gather(_pump(proc.stdout, False, sink, finished.last_lines),
                           _pump(proc.stderr, True, sink, finished.last_lines))
    # Whatever happens below, the pumps' outcome is collected (no "never retrieved").
    pumps.add_done_callback(lambda f: f.cancelled() or f.exception())
    try:
        finished.exit_code = await _exit_code(proc)
    except BaseException:
        await asyncio.shield(stop_group(proc.pid, grace))
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(pumps), _DRAIN_AFTER_KILL)
        pumps.cancel()
        raise
    # The script is done; children it left in its group are not.
    await stop_group(proc.pid, grace)
    try:
        await asyncio.wait_for(pumps, _DRAIN_AFTER_KILL)
    except TimeoutError:
        sink("(output still open after the script's processes were stopped: a process "
             "outside its group holds it; no longer read)", True)
    return finished
