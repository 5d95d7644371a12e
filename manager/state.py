"""Everything one running manager replica holds, built once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from manager.bus import Bus
from manager.db import Database, open_database
from manager.errors import ManagerError
from manager.executions import Executions
from manager.files import FileStore
from manager.hub import Hub
from manager.idempotency import Idempotency
from manager.keys import SecretBox, load_admin_token
from manager.naming import new_id
from manager.settings import Settings
from manager.signals import Signals
from manager.taskstore import TaskStore


def _require_shared_keys(settings: Settings) -> None:
    """With PostgreSQL there is no file beside the database to keep keys in, and every
    replica must seal and open secrets with the same key."""
    missing = [name for name, value in (("MANAGER_SECRET_KEY", settings.secret_key),
                                        ("MANAGER_ADMIN_TOKEN", settings.admin_token))
               if not (value or os.environ.get(name))]
    if missing:
        raise ManagerError(
            f"with a PostgreSQL database, set {' and '.join(missing)} (the same on every "
            "replica): e.g. MANAGER_SECRET_KEY=$(python3 -c 'from cryptography.fernet "
            "import Fernet; print(Fernet.generate_key().decode())')")


@dataclass
class State:
    settings: Settings
    db: Database
    box: SecretBox
    admin_token: str
    admin_token_file: Path | None
    bus: Bus
    signals: Signals
    store: TaskStore
    hub: Hub
    executions: Executions
    files: FileStore
    idempotency: Idempotency

    @classmethod
    def open(cls, settings: Settings) -> State:
        if settings.db_url:
            _require_shared_keys(settings)
        db = open_database(settings.db_url or settings.db_path)
        bus = Bus(db, new_id("rep"))
        box = SecretBox.load(settings.db_path, settings.secret_key)
        admin_token, token_file = load_admin_token(settings.db_path, settings.admin_token)
        signals = Signals(bus)
        store = TaskStore(db, box, settings.max_log_bytes)
        store.on_entries.append(lambda task_id: signals.notify(f"task:{task_id}"))
        hub = Hub(settings, db, box, store, bus)
        executions = Executions(db, box, hub, store, signals)
        return cls(settings=settings, db=db, box=box, admin_token=admin_token,
                   admin_token_file=token_file, bus=bus, signals=signals, store=store,
                   hub=hub,
                   executions=executions, files=FileStore(db, settings.max_file_bytes),
                   idempotency=Idempotency(db, box))
