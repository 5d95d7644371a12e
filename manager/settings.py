"""The manager's configuration: one frozen object built at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from wire.durations import Duration


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    db_path: Path = Path("manager.db")
    # A postgresql:// URL: the database is there, and db_path only names nothing (the
    # secret key and the admin token must then come from the environment: every replica
    # needs the same ones).
    db_url: str | None = None
    # None: read MANAGER_ADMIN_TOKEN, else create (or reuse) a token file next to the DB.
    admin_token: str | None = None
    # None: read MANAGER_SECRET_KEY, else create (or reuse) a key file next to the DB.
    secret_key: str | None = None
    heartbeat_interval: Duration = 10.0
    lease_ttl: Duration = 30.0
    # After a manager start, how long delegates get to reconnect on top of the lease
    # before their running tasks are LOST: at least the delegates' RECONNECT_MAX_DELAY.
    reconnect_grace: Duration = 60.0
    max_log_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_file_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    retention: Duration = 7 * 86400.0
    # How often the watchdog looks at leases, timeouts and retention.
    watchdog_interval: Duration = 1.0
    # A replica whose heartbeat (one per watchdog pass) is older than this is dead: its
    # sessions are forgotten and their unaccepted assignments requeued (manager/replicas).
    replica_ttl: Duration = 10.0
    register_timeout: Duration = 10.0
    # A new HTTP connection must send its request headers within this, and one client
    # address may hold at most this many HTTP connections (see manager/http_guard.py).
    header_timeout: Duration = 10.0
    max_connections_per_client: int = Field(default=128, ge=1)
    keep_alive_timeout: Duration = 5.0
    # How often the manager asks delegates what runs in the clusters it deployed to.
    instance_sync_interval: Duration = Field(default=600.0, gt=0)
