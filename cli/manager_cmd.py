"""``delegate manager serve`` and ``delegate manager token create|list|revoke``."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import click
import httpx
import structlog

from cli.client import Client, ClientGroup, client_options_with, emit
from cli.exitcodes import InputError
from cli.groups import VerbGroup
from manager.keys import admin_token_file
from wire.durations import parse_duration


class _DurationType(click.ParamType):  # type: ignore[type-arg]  # click 8.5 generic
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = _DurationType()


@click.group(cls=VerbGroup)
def manager() -> None:
    """Run the reference manager and manage its delegate tokens."""


def _positive(value: float, name: str) -> float:
    if value <= 0:
        raise click.BadParameter(f"{value:g}s: give a positive duration such as 10m",
                                 param_hint=name)
    return value


@manager.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int,
              help="0 picks a free port (printed on the 'listening' line).")
@click.option("--db", "db_target", default="./manager.db", show_default=True,
              envvar="MANAGER_DB",
              help="A SQLite file (a path, or sqlite:PATH), or a postgresql:// URL "
                   "(several replicas may share it). Also MANAGER_DB.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--heartbeat-interval", type=DURATION, default="10s", show_default=True)
@click.option("--lease-ttl", type=DURATION, default="30s", show_default=True,
              help="A delegate silent this long loses its running tasks (LOST).")
@click.option("--reconnect-grace", type=DURATION, default="60s", show_default=True,
              help="After a start, extra time delegates get to reconnect before a lease "
                   "expires; at least their RECONNECT_MAX_DELAY.")
@click.option("--max-log-bytes", type=int, default=5 * 1024 * 1024, show_default=True)
@click.option("--max-file-bytes", type=int, default=10 * 1024 * 1024, show_default=True)
@click.option("--retention", type=DURATION, default="7d", show_default=True,
              help="Finished tasks and executions older than this are pruned.")
@click.option("--replica-ttl", type=DURATION, default="10s", show_default=True,
              help="With several replicas on one database: one silent this long is dead, "
                   "and what it held is requeued by the others.")
@click.option("--instance-sync-interval", type=DURATION, default="10m", show_default=True,
              callback=lambda _c, _p, v: _positive(v, "--instance-sync-interval"),
              help="How often delegates report what runs in the clusters deployed to.")
def serve(host: str, port: int, db_target: str, tls_cert: Path | None, tls_key: Path | None,
          heartbeat_interval: float, lease_ttl: float, max_log_bytes: int,
          max_file_bytes: int, retention: float, reconnect_grace: float,
          replica_ttl: float, instance_sync_interval: float) -> None:
    """Serve the HTTP API, the delegate websocket, the file store and the log service.

    The admin token comes from MANAGER_ADMIN_TOKEN; without it the manager creates one
    in a file next to the database (mode 0600) and says where. Secrets are encrypted
    with MANAGER_SECRET_KEY, or a key file created the same way."""
    from manager.app import serve as run_server
    from manager.errors import ManagerError
    from manager.keys import load_admin_token
    from manager.settings import Settings

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    db_url = db_target if db_target.startswith(("postgresql://", "postgres://")) else None
    db_path = Path(db_target.removeprefix("sqlite:")) if db_url is None else Path("manager.db")
    settings = Settings(db_path=db_path, db_url=db_url, heartbeat_interval=heartbeat_interval,
                        lease_ttl=lease_ttl, max_log_bytes=max_log_bytes,
                        max_file_bytes=max_file_bytes, retention=retention,
                        reconnect_grace=reconnect_grace, replica_ttl=replica_ttl,
                        instance_sync_interval=instance_sync_interval)
    token_file = None if db_url else load_admin_token(db_path, None)[1]
    if token_file is not None:
        click.echo(f"admin token: in {token_file} (set MANAGER_ADMIN_TOKEN to use your own)",
                   err=True)

    def announce(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    try:
        asyncio.run(run_server(settings, host=host, port=port, tls_cert=tls_cert,
                               tls_key=tls_key, announce=announce))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    except ManagerError as exc:  # the database or its schema, said in one line
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass


# Where `delegate manager serve` listens and keeps its database by default: on the
# manager's own host the token commands find it there without any setting.
LOCAL_MANAGER = "http://127.0.0.1:8080"
LOCAL_DB = Path("manager.db")


def local_client(manager_url: str | None, **kw: Any) -> Client:
    """A client for the manager named by --manager / MANAGER_HOST_AND_PORT, or else the
    local one if it answers; its admin token from MANAGER_ADMIN_TOKEN, or else from the
    file the local manager wrote next to ./manager.db."""
    if not manager_url and not os.environ.get("MANAGER_HOST_AND_PORT"):
        if not _answers(LOCAL_MANAGER):
            raise InputError(f"no manager: pass --manager URL or set MANAGER_HOST_AND_PORT "
                             f"(nothing answers at {LOCAL_MANAGER}, where 'delegate manager "
                             "serve' listens by default)")
        click.echo(f"using the local manager at {LOCAL_MANAGER}", err=True)
        manager_url = LOCAL_MANAGER
    token = None
    token_file = admin_token_file(LOCAL_DB)
    if not os.environ.get("MANAGER_ADMIN_TOKEN") and token_file.is_file():
        token = token_file.read_text().strip()
    return Client(manager_url, admin_token=token, **kw)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def token_options(f: Any) -> Any:
    return client_options_with(f, make=local_client)


@manager.group(cls=ClientGroup)
def token() -> None:
    """Create, list and revoke delegate tokens (one account each).

    On the manager's own host these find the manager at http://127.0.0.1:8080 and its
    admin token in ./manager.db.admin-token when nothing else is set."""


@token.command("create")
@click.option("--name", default="", help="A label for people.")
@token_options
def token_create(name: str, client: Client, output: str) -> None:
    """Mint a token for --account. It is printed once, as the last line: keep it."""
    body = client.request("POST", "/api/tokens",
                          json={"account_id": client.require_account(), "name": name})
    if output == "json":
        emit(body, output)
        return
    click.echo(f"token {body['token_id']} for account {body['account_id']} "
               "(shown once; the manager keeps only a derived key):")
    click.echo(body["token"])


@token.command("list")
@token_options
def token_list(client: Client, output: str) -> None:
    """List tokens (ids and accounts; never the tokens)."""
    body = client.request("GET", "/api/tokens")
    emit(body, output, table=(body["tokens"], ["token_id", "account_id", "name", "created_at",
                                               "revoked_at"]))


@token.command("revoke")
@click.argument("token_id")
@token_options
def token_revoke(token_id: str, client: Client, output: str) -> None:
    """Revoke a token; delegates connected with it are disconnected."""
    body = client.request("DELETE", f"/api/tokens/{token_id}")
    if output == "json":
        emit(body, output)
    else:
        click.echo(f"token {token_id} revoked")
