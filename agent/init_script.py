"""INIT_SCRIPT: a shell script run once before the delegate registers (to install a tool,
write a CA certificate, ...). Its output goes to the process log line by line; a non-zero
exit stops start-up."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import structlog

from agent.errors import InitScriptError

log = structlog.get_logger("agent.init_script")

INIT_SCRIPT_TIMEOUT = 600.0


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


async def run_init_script(script: str, limit: float = INIT_SCRIPT_TIMEOUT) -> None:
    log.info("running INIT_SCRIPT")
    # Its own process group, so stopping it also stops what it started: a child left
    # holding the output pipe would keep proc.wait() from returning.
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", script,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None

    async def pump() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            log.info("init script output", line=raw.decode(errors="replace").rstrip("\n"))

    try:
        await asyncio.wait_for(asyncio.gather(pump(), proc.wait()), timeout=limit)
    except TimeoutError:
        await _kill(proc)
        raise InitScriptError(f"INIT_SCRIPT did not finish within {limit:g}s") from None
    except asyncio.CancelledError:  # the delegate was stopped while the script ran
        await _kill(proc)
        raise
    if proc.returncode != 0:
        raise InitScriptError(
            f"INIT_SCRIPT exited with code {proc.returncode}; fix the script or unset "
            "INIT_SCRIPT (its output is in the lines above)"
        )
    log.info("INIT_SCRIPT finished")
