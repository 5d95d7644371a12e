"""``delegate sandbox`` (also ``python -m cli sandbox``): run the embedded AWS until interrupted."""

from __future__ import annotations

import json
import shlex
import signal
import threading
from types import FrameType

import click
from botocore.exceptions import BotoCoreError, ClientError

from sandbox.seed import exports, table
from sandbox.seed import seed as seed_resources
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
@click.option("--inactive-grace", default=0.0, show_default=True,
              type=click.FloatRange(min=0),
              help="Simulated seconds a deregistered task definition revision still works "
                   "in CreateService, UpdateService and RunTask (ECS: up to about 10 "
                   "minutes; after it, 'TaskDefinition is inactive').")
@click.option("--seed", is_flag=True,
              help="Create the docs' tutorial resources (cluster ecs-tutorial, a VPC, an ALB "
                   "with prod and stage listeners) and print the values for the examples' "
                   "placeholders.")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: one object with the exports (and placeholders).")
def sandbox(host: str, port: int, tick: float, region: str, throttle: bool,
            inactive_grace: float, seed: bool, output: str) -> None:
    """Run the embedded AWS sandbox: a moto server with an ECS simulator.

    Services deploy, roll, fail and roll back as on ECS. Images containing
    "fail-to-start", "crash" or "slow-start" make tasks fail to start, exit 1 after
    starting, or start slowly. Stops on Ctrl-C or SIGTERM.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    box = Sandbox(host=host, port=port, region=region, tick=tick, throttle=throttle,
                  inactive_grace=inactive_grace)
    try:
        box.start()
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}. "
            "Pick another --port, or 0 for a free one."
        ) from exc
    try:
        _announce(box, tick, seed, output)
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


def _announce(box: Sandbox, tick: float, seed: bool, output: str) -> None:
    """Print the exports (and with ``seed``, the placeholder values) on stdout."""
    environment = box.environment()
    values: dict[str, str] = {}
    if seed:
        values = _seed(box)
        environment = exports(environment, values)
    if output == "json":
        answer: dict[str, object] = {"exports": environment}
        if seed:
            answer["placeholders"] = values
        click.echo(json.dumps(answer))
        return
    click.echo(f"Sandbox AWS listening on {box.endpoint_url} (tick {tick}s).")
    if seed:
        click.echo("Put these values in the examples' placeholders:")
        click.echo(table(values))
    click.echo("Paste these lines into another shell:")
    for name, value in environment.items():
        click.echo(f"export {name}={shlex.quote(value)}")


def _seed(box: Sandbox) -> dict[str, str]:
    try:
        return seed_resources(box.endpoint_url, box.region)
    except (BotoCoreError, ClientError) as exc:
        raise click.ClickException(
            f"seeding the sandbox at {box.endpoint_url} failed: {exc}. "
            "Run again without --seed to get a bare sandbox.") from None
