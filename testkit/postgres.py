"""A real PostgreSQL server for tests: a fresh cluster in a temporary directory, on a
loopback port chosen now, owned by the ``postgres`` user (the server refuses to run as
root), stopped and removed afterwards.

The server programs are Debian's (``/usr/lib/postgresql/<version>/bin``) or whatever
``initdb`` is on PATH. Running as root, the programs are started as ``postgres`` through
``setpriv``; as any other user, as that user."""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server programs here; says how to install them."""


def server_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise PostgresUnavailable(
        "no PostgreSQL server programs (initdb, pg_ctl): install them, e.g. Debian's "
        "`apt-get install postgresql` (.ci/run does)")


def _as_owner(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable("running as root with no 'postgres' user to run the "
                                  "server as (Debian's postgresql package creates it)") from None
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    root: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database(self, name: str) -> str:
        """Create database ``name``; returns its URL."""
        self._run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                   "-U", "postgres", name])
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run(_as_owner(argv), capture_output=True, text=True, timeout=60,
                              cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} failed ({done.returncode}): "
                               f"{done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> None:
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-w", "-t", "60",
                   "-l", str(self.root / "server.log"), "-o",
                   f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                   "start"])

    def stop(self, mode: str = "fast") -> None:
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", mode,
                   "-w", "stop"])

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text() if path.exists() else ""


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a throwaway cluster (trust authentication on loopback: it lives only as
    long as the test that made it)."""
    bin_dir = server_bin()
    root = Path(tempfile.mkdtemp(prefix="pg-test-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = PostgresServer(root, _free_port(), bin_dir)
    try:
        server._run([str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", "postgres",
                     "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C"])
        server.start()
        try:
            yield server
        finally:
            server.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


class SharedServer:
    """One server for a whole test run, started on first use and stopped at exit; each
    caller gets a database of its own."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self.server = self._stack.enter_context(postgres_server())
        self._count = itertools.count(1)
        self._made: dict[str, str] = {}
        atexit.register(self._stack.close)

    def database_for(self, key: str) -> str:
        """The database for ``key`` (a test's folder): made on first ask, the same one
        after, as a SQLite file in that folder would be."""
        if key not in self._made:
            self._made[key] = self.server.database(f"t{os.getpid()}_{next(self._count)}")
        return self._made[key]


_shared: SharedServer | None = None


def shared_server() -> SharedServer:
    global _shared
    if _shared is None:
        _shared = SharedServer()
    return _shared
