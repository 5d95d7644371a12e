"""Everything one running manager holds, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from manager.db import Database
from manager.executions import Executions
from manager.files import FileStore
from manager.hub import Hub
from manager.idempotency import Idempotency
from manager.keys import SecretBox, load_admin_token
from manager.settings import Settings
from manager.signals import Signals
from manager.taskstore import TaskStore


@dataclass
class State:
    settings: Settings
    db: Database
    box: SecretBox
    admin_token: str
    admin_token_file: Path | None
    signals: Signals
    store: TaskStore
    hub: Hub
    executions: Executions
    files: FileStore
    idempotency: Idempotency

    @classmethod
    def open(cls, settings: Settings) -> State:
        db = Database(settings.db_path)
        box = SecretBox.load(settings.db_path, settings.secret_key)
        admin_token, token_file = load_admin_token(settings.db_path, settings.admin_token)
        signals = Signals()
        store = TaskStore(db, box, settings.max_log_bytes)
        store.on_entries.append(lambda task_id: signals.notify(f"task:{task_id}"))
        hub = Hub(settings, db, box, store)
        executions = Executions(db, box, hub, store, signals)
        return cls(settings=settings, db=db, box=box, admin_token=admin_token,
                   admin_token_file=token_file, signals=signals, store=store, hub=hub,
                   executions=executions, files=FileStore(db, settings.max_file_bytes),
                   idempotency=Idempotency(db, box))
