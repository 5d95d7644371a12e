"""``delegate sandbox`` (also ``python -m cli sandbox``): run the embedded AWS until interrupted."""

from __future__ import annotations

import shlex
import signal
import threading
from types import FrameType

import click

from sandbox.server import DEFAULT_REGION, Sandbox


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (keep it on loopback unless you mean otherwise).")
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on; 0 picks a free one.")
@click.option("--tick", default=0.2, show_default=True, type=click.FloatRange(min=0.01),
              help="Seconds per ECS simulator step (smaller is faster).")
@click.option("--region", default=DEFAULT_REGION, show_default=True,
              help="The Region printed in the exports.")
@click.option("--throttle/--no-throttle", default=False, show_default=True,
              help="Answer ThrottlingException past ECS's published request rates.")
def sandbox(host: str, port: int, tick: float, region: str, throttle: bool) -> None:
    """Run the embedded AWS sandbox: a moto server with an ECS simulator.

    Services deploy, roll, fail and roll back as on ECS. Images containing
    "fail-to-start", "crash" or "slow-start" make tasks fail to start, exit 1 after
    starting, or start slowly. Stops on Ctrl-C or SIGTERM.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    box = Sandbox(host=host, port=port, region=region, tick=tick, throttle=throttle)
    try:
        box.start()
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}. "
            "Pick another --port, or 0 for a free one."
        ) from exc
    try:
        click.echo(f"Sandbox AWS listening on {box.endpoint_url} (tick {tick}s). "
                   "Paste these lines into another shell:")
        for name, value in box.environment().items():
            click.echo(f"export {name}={shlex.quote(value)}")
        click.echo("Press Ctrl-C to stop.", err=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        box.stop()
        signal.signal(signal.SIGTERM, previous)
        click.echo("Sandbox stopped.", err=True)
