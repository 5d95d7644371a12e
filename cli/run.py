"""``delegate run``, ``delegate version`` and ``delegate protocol``."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import structlog

from agent import __version__, proclog
from agent.config import ConfigError, Settings, environment_summary, load_settings

EXIT_CONFIG = 2
EXIT_REFUSED = 3
EXIT_INIT_SCRIPT = 4
EXIT_UNTRUSTED = 5  # the manager's TLS certificate did not verify


F = TypeVar("F", bound=Callable[..., Any])


def _opt(flag: str, field: str, help_text: str, **kw: Any) -> Callable[[F], F]:
    env = Settings.model_fields[field].alias
    option: Callable[[F], F] = click.option(flag, field, default=None,
                                            help=f"{help_text} [env {env}]", **kw)
    return option


@click.command()
@_opt("--account-id", "account_id", "Account id at the manager.")
@_opt("--name", "delegate_name", "Delegate name (default: host name).")
@_opt("--tags", "delegate_tags", "Comma-separated tags that tasks select on.")
@_opt("--manager", "manager_url", "Manager URL, https://host:port.")
@_opt("--token-file", "delegate_token_file", "File holding the delegate token.",
      type=click.Path(dir_okay=False))
@_opt("--ca-bundle", "manager_ca_bundle", "CA bundle to verify the manager's TLS certificate.",
      type=click.Path(dir_okay=False))
@_opt("--allow-insecure/--no-allow-insecure", "manager_allow_insecure",
      "Allow plain http/ws to a non-loopback manager.")
@_opt("--max-concurrent-tasks", "max_concurrent_tasks", "Tasks run at once.", type=int)
@_opt("--log-service", "log_streaming_service_url", "Send task logs to this log service URL.")
@_opt("--init-script", "init_script", "Shell script run once before registering.")
@_opt("--health-port", "health_port", "Port of the health and metrics endpoint.", type=int)
@_opt("--health-host", "health_host", "Address of the health and metrics endpoint.")
@_opt("--shutdown-grace", "shutdown_grace", "How long running tasks may finish on SIGTERM.")
@_opt("--state-dir", "state_dir", "Writable directory for spilled messages.",
      type=click.Path(file_okay=False))
@_opt("--log-format", "log_format", "Process log format: auto, json or console.")
def run(**flags: Any) -> None:
    """Run the delegate: connect to a manager and run the tasks it assigns.

    The token comes only from DELEGATE_TOKEN or DELEGATE_TOKEN_FILE: a token on the
    command line would show in `ps`."""
    try:
        settings = load_settings(**flags)
    except ConfigError as exc:
        click.echo(f"delegate: configuration error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    proclog.configure(settings.log_format)
    proclog.add_process_secret(settings.token())
    sys.exit(asyncio.run(run_delegate(settings)))


async def run_delegate(settings: Settings) -> int:
    from agent.app import Delegate
    from agent.errors import HealthPortError, ManagerNotTrusted, ManagerRefused

    log = structlog.get_logger("agent")
    log.info("delegate starting", version=__version__, name=settings.delegate_name,
             account=settings.account_id, tags=settings.delegate_tags,
             manager=settings.http_base, capacity=settings.max_concurrent_tasks,
             **environment_summary())
    if settings.init_script and (code := await _init_script(settings.init_script)) is not None:
        return code
    delegate = Delegate(settings)
    _on_signals(delegate)
    try:
        await delegate.run()
    except HealthPortError as exc:
        click.echo(f"delegate: configuration error: {exc}", err=True)
        return EXIT_CONFIG
    except ManagerRefused as exc:
        log.error(str(exc))
        return EXIT_REFUSED
    except ManagerNotTrusted as exc:
        log.error(str(exc))
        return EXIT_UNTRUSTED
    log.info("delegate stopped")
    return 0


async def _init_script(script: str) -> int | None:
    """Run INIT_SCRIPT; an exit code when start-up must end here, None to go on."""
    from agent.errors import InitScriptError
    from agent.init_script import run_init_script

    log = structlog.get_logger("agent")
    loop = asyncio.get_running_loop()
    # A stop request while the script runs ends start-up at once (ECS would otherwise
    # kill the container stopTimeout later).
    starting = asyncio.current_task()
    assert starting is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, starting.cancel)
    try:
        await run_init_script(script)
    except InitScriptError as exc:
        log.error("init script failed; not starting", error=str(exc))
        return EXIT_INIT_SCRIPT
    except asyncio.CancelledError:
        log.info("stopped during INIT_SCRIPT; not starting")
        return 0
    return None


def _on_signals(delegate: Any) -> None:
    """First SIGTERM/SIGINT: drain and stop. A second one: abort running tasks now."""
    log = structlog.get_logger("agent")
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal(signame: str) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.info("signal received; draining", signal=signame)
            delegate.request_shutdown()
        else:
            log.warning("second signal; aborting running tasks now", signal=signame)
            delegate.hurry()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)


@click.command()
@click.option("--output", type=click.Choice(["text", "json"]), default="text")
def version(output: str) -> None:
    """Print the version."""
    from wire.protocol import SUPPORTED_PROTOCOL_VERSIONS

    if output == "json":
        click.echo(json.dumps({"version": __version__,
                               "protocol_versions": list(SUPPORTED_PROTOCOL_VERSIONS)}))
    else:
        click.echo(f"ecs-delegate {__version__} (protocol "
                   f"{', '.join(map(str, SUPPORTED_PROTOCOL_VERSIONS))})")


@click.command()
@click.option("--write", "write_path", type=click.Path(dir_okay=False),
              help="Rewrite the generated schema section of this Markdown file.")
def protocol(write_path: str | None) -> None:
    """Print the JSON Schema of every protocol message, both directions."""
    from pathlib import Path

    from cli.protocol_doc import write
    from wire.protocol import json_schemas

    if write_path:
        changed = write(Path(write_path))
        click.echo(f"{write_path}: {'updated' if changed else 'already up to date'}")
        return
    click.echo(json.dumps(json_schemas(), indent=2, sort_keys=True))


@click.command()
@click.option("--write", "directory", type=click.Path(file_okay=False), default="docs",
              show_default=True, help="The docs directory to update.")
def docs(directory: str) -> None:
    """Regenerate the generated parts of docs/protocol.md and docs/tasks.md."""
    from pathlib import Path

    from agent.context import load_registry
    from cli import protocol_doc, tasks_doc

    root = Path(directory)
    for name, changed in (
        ("protocol.md", protocol_doc.write(root / "protocol.md")),
        ("tasks.md", tasks_doc.write(root / "tasks.md", load_registry())),
    ):
        click.echo(f"{root / name}: {'updated' if changed else 'already up to date'}")
