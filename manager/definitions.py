"""Stored definitions (services, environments, infrastructure definitions, overrides) per
account, every change kept as a revision.

A revision is never rewritten: applying a changed document adds one, applying the same
document again adds none (``unchanged``), deleting adds a tombstone revision, so the
revision an execution ran with can always be shown. Executions record the revisions
they use (``execution_definitions``), and a definition a running or queued execution
uses cannot be deleted."""

from __future__ import annotations

import hashlib
import json
import weakref
from dataclasses import dataclass
from typing import Any

from manager.db import Database, now
from manager.definition_docs import Document
from manager.errors import ManagerError
from manager.exec_states import FINISHED

# The tables are in manager/migrations/versions/0004_definitions.py.
_FINISHED_SQL = "(" + ",".join(f"'{s.value}'" for s in FINISHED) + ")"


class InUse(ManagerError):
    """A definition a queued or running execution uses (HTTP 409)."""


@dataclass(frozen=True)
class Stored:
    kind: str
    name: str
    revision: int
    spec: dict[str, Any]
    created_at: float

    def view(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "revision": self.revision,
                "spec": self.spec, "created_at": self.created_at}

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name} revision {self.revision}"


def digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _stored(row: Any) -> Stored:
    return Stored(kind=row["kind"], name=row["name"], revision=int(row["revision"]),
                  spec=json.loads(row["spec"]), created_at=float(row["created_at"]))


class Definitions:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _latest(self, account: str, kind: str, name: str) -> Any:
        return self.db.one("SELECT * FROM definitions WHERE account_id = ? AND kind = ? AND "
                           "name = ? ORDER BY revision DESC LIMIT 1", account, kind, name)

    def apply(self, account: str, docs: list[Document], *,
              dry_run: bool = False) -> list[dict[str, Any]]:
        """Store each document whose spec changed; all or nothing. ``dry_run``: store
        nothing, and answer what would change with both specs (for ``diff``)."""
        results = []
        with self.db.tx():
            for doc in docs:
                latest = self._latest(account, doc.kind, doc.name)
                live = latest is not None and not latest["deleted"]
                result: dict[str, Any] = {"kind": doc.kind, "name": doc.name}
                if dry_run:
                    result.update(spec=doc.spec, stored=json.loads(latest["spec"])
                                  if live else None)
                if live and latest["sha256"] == digest(doc.spec):
                    results.append({**result, "action": "unchanged",
                                    "revision": int(latest["revision"])})
                    continue
                revision = 1 if latest is None else int(latest["revision"]) + 1
                results.append({**result, "revision": revision,
                                "action": "updated" if live else "created"})
                if not dry_run:
                    self.db.run("INSERT INTO definitions (account_id, kind, name, revision, "
                                "spec, sha256, created_at) VALUES (?,?,?,?,?,?,?)", account,
                                doc.kind, doc.name, revision,
                                json.dumps(doc.spec, sort_keys=True), digest(doc.spec), now())
        return results

    def current(self, account: str, kind: str, name: str) -> Stored | None:
        row = self._latest(account, kind, name)
        return None if row is None or row["deleted"] else _stored(row)

    def revision(self, account: str, kind: str, name: str, revision: int) -> Stored | None:
        row = self.db.one("SELECT * FROM definitions WHERE account_id = ? AND kind = ? AND "
                          "name = ? AND revision = ? AND deleted = 0", account, kind, name,
                          revision)
        return None if row is None else _stored(row)

    def revisions(self, account: str, kind: str, name: str) -> list[dict[str, Any]]:
        rows = self.db.all("SELECT revision, deleted, created_at, sha256 FROM definitions "
                           "WHERE account_id = ? AND kind = ? AND name = ? ORDER BY revision",
                           account, kind, name)
        return [{"revision": int(r["revision"]), "deleted": bool(r["deleted"]),
                 "created_at": r["created_at"], "sha256": r["sha256"]} for r in rows]

    def latest(self, account: str, kind: str | None = None) -> list[Stored]:
        rows = self.db.all(
            "SELECT d.* FROM definitions d WHERE d.account_id = ? AND (? IS NULL OR d.kind = ?) "
            "AND d.revision = (SELECT MAX(revision) FROM definitions x WHERE x.account_id = "
            "d.account_id AND x.kind = d.kind AND x.name = d.name) AND d.deleted = 0 "
            "ORDER BY d.kind, d.name", account, kind, kind)
        return [_stored(r) for r in rows]

    def users(self, account: str, kind: str, name: str) -> list[str]:
        """The queued or running executions that use this definition."""
        rows = self.db.all("SELECT u.execution_id FROM execution_definitions u JOIN "
                           "executions e ON e.execution_id = u.execution_id WHERE "
                           "u.account_id = ? AND u.kind = ? AND u.name = ? AND e.status NOT "
                           f"IN {_FINISHED_SQL} ORDER BY e.created_at, e.execution_id",
                           account, kind, name)
        return [str(r["execution_id"]) for r in rows]

    def delete(self, account: str, kind: str, name: str) -> int | None:
        """Add a tombstone revision; None when there is nothing to delete."""
        latest = self._latest(account, kind, name)
        if latest is None or latest["deleted"]:
            return None
        users = self.users(account, kind, name)
        if users:
            raise InUse(f"{kind} {name} is used by execution(s) {', '.join(users)} that have "
                        "not finished; delete it once they have (or abort them)")
        revision = int(latest["revision"]) + 1
        with self.db.tx():
            self.db.run("INSERT INTO definitions (account_id, kind, name, revision, spec, "
                        "sha256, deleted, created_at) VALUES (?,?,?,?,?,?,1,?)", account,
                        kind, name, revision, "{}", "", now())
        return revision

    def record_use(self, execution_id: str, account: str, used: list[Stored]) -> None:
        with self.db.tx():
            for d in used:
                self.db.run("INSERT INTO execution_definitions (execution_id, "
                            "account_id, kind, name, revision) VALUES (?,?,?,?,?) "
                            "ON CONFLICT (execution_id, kind, name) DO UPDATE SET "
                            "account_id = excluded.account_id, "
                            "revision = excluded.revision",
                            execution_id, account, d.kind, d.name, d.revision)

    def used_by(self, execution_id: str) -> list[dict[str, Any]]:
        rows = self.db.all("SELECT kind, name, revision FROM execution_definitions WHERE "
                           "execution_id = ? ORDER BY kind, name", execution_id)
        return [dict(r) for r in rows]


_OPEN: weakref.WeakKeyDictionary[Database, Definitions] = weakref.WeakKeyDictionary()


def definitions_of(db: Database) -> Definitions:
    """The one store per database (its schema is created once)."""
    found = _OPEN.get(db)
    if found is None:
        found = _OPEN[db] = Definitions(db)
    return found
