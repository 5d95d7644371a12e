"""Executions by reference, in the manager: the stored definitions an execution file
names become the inline execution they stand for (manager/effective.py says how), and
the execution records the revisions it used and the effective inputs it ran with."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException

from manager import artifact_phase
from manager.db import Database
from manager.definitions import Definitions, Stored, definitions_of
from manager.effective import BadReference, Effective, compute, expanded_fields
from manager.models import ExecutionFile
from manager.state import State


class DbCatalogue:
    """One account's stored definitions, as :func:`manager.effective.compute` reads them."""

    def __init__(self, defs: Definitions, account: str) -> None:
        self.defs = defs
        self.account = account

    def current(self, kind: str, name: str) -> Stored | None:
        return self.defs.current(self.account, kind, name)

    def all(self, kind: str) -> list[Stored]:
        return self.defs.latest(self.account, kind)


def account_key(account: str | None) -> str:
    # A manager with no token yet has no account: its definitions are kept under "".
    return account or ""


def effective_of(db: Database, body: ExecutionFile) -> Effective:
    cat = DbCatalogue(definitions_of(db), account_key(body.account_id))
    return compute(cat, service=body.service, environment=body.environment,
                   infrastructure=body.infrastructure_ref)


def expand(body: ExecutionFile, eff: Effective) -> ExecutionFile:
    """The inline execution file ``body`` stands for."""
    inline = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
    merged = {**inline, **expanded_fields(eff, inline)}
    merged.pop("environment", None)
    merged.pop("infrastructureRef", None)
    if inline.get("manifests"):  # manifests the file gives itself win, kind by kind
        merged["manifests"] = {**merged["manifests"], **inline["manifests"]}
    return ExecutionFile.model_validate(merged)


def record(db: Database, execution_id: str, account: str | None, eff: Effective) -> None:
    """Inside the submitting transaction (the schema exists: :func:`effective_of` ran)."""
    definitions_of(db).record_use(execution_id, account_key(account), eff.used)
    with db.tx():
        db.run("INSERT INTO execution_inputs (execution_id, effective) VALUES (?, ?) "
               "ON CONFLICT (execution_id) DO UPDATE SET effective = excluded.effective",
               execution_id, json.dumps(eff.view()))


def inputs_of(db: Database, execution_id: str) -> dict[str, Any] | None:
    definitions_of(db)  # its schema
    row = db.one("SELECT effective FROM execution_inputs WHERE execution_id = ?",
                 execution_id)
    return None if row is None else dict(json.loads(row["effective"]))


def submit_by_reference(st: State, body: ExecutionFile) -> str:
    """``Executions.submit`` for any execution file: one by reference is expanded first
    and records what it used. Call inside the submitting transaction after
    :func:`prepare`."""
    if not body.by_reference:
        return st.executions.submit(body)
    eff = effective_of(st.db, body)
    execution_id = st.executions.submit(expand(body, eff))
    record(st.db, execution_id, body.account_id, eff)
    return execution_id


def prepare(st: State, body: ExecutionFile) -> None:
    """Before the submitting transaction: the schema exists, the references resolve and
    the artifact can be looked up (a 400 naming what is wrong, not a failed
    transaction)."""
    definitions_of(st.db)
    expanded = body
    if body.by_reference:
        try:
            expanded = expand(body, effective_of(st.db, body))
        except BadReference as exc:
            raise HTTPException(400, str(exc)) from None
    wrong = artifact_phase.problem(expanded.artifact, [s.id for s in expanded.steps])
    if wrong is not None:
        raise HTTPException(400, wrong)
