"""The manager's Terraform state store on a real SQLite file: state sealed at rest, a
lock held by a live task refused with its holder, a lock whose task has ended broken by
the next run, and records found newest-first."""

from __future__ import annotations

from pathlib import Path

import pytest

from manager.db import Database
from manager.keys import SecretBox
from manager.taskstore import NewTask, TaskStore
from manager.tf_state import KEEP_RECORDS, TfStates
from wire.protocol import TaskStatus

KEY = ("acme", "infra", "default")


@pytest.fixture
def parts(tmp_path: Path) -> tuple[TfStates, TaskStore, Database]:
    db = Database(tmp_path / "m.db")
    box = SecretBox("test-secret-key-for-tf-state")
    return TfStates(db, box), TaskStore(db, box, 1 << 20), db


def _task(store: TaskStore) -> str:
    return store.create(NewTask(type="terraform.apply", selectors=[], params={}, secrets={},
                                context={}, timeout=60, account_id="acme"))


def test_state_is_sealed_at_rest(parts: tuple[TfStates, TaskStore, Database]) -> None:
    states, _, db = parts
    states.put(KEY, b'{"outputs": {"password": "pw-in-state-1234"}}', None)
    assert states.get(KEY) == b'{"outputs": {"password": "pw-in-state-1234"}}'
    db.close()
    assert b"pw-in-state-1234" not in Path(db.path).read_bytes()


def test_a_live_holder_keeps_its_lock_and_a_dead_ones_is_broken(
        parts: tuple[TfStates, TaskStore, Database]) -> None:
    states, store, _ = parts
    first, second = _task(store), _task(store)
    taken, _ = states.lock(KEY, {"ID": "lock-1", "Operation": "OperationTypeApply"},
                           first, "d1")
    assert taken
    taken, holder = states.lock(KEY, {"ID": "lock-2"}, second, "d2")
    assert not taken and f"held by task {first} on delegate d1" in holder
    with pytest.raises(Exception, match="lock-1"):
        states.put(KEY, b"{}", "lock-2")  # a write under another lock is refused

    assert store.finish(first, TaskStatus.FAILED, error="its delegate died")
    taken, info = states.lock(KEY, {"ID": "lock-2"}, second, "d2")
    assert taken and f"broke a stale lock (its task {first} ended FAILED)" in info
    states.put(KEY, b"{}", "lock-2")
    assert states.unlock(KEY, "lock-1")[0] is False  # the old holder cannot unlock it
    assert states.unlock(KEY, "lock-2")[0] is True


def test_records_newest_first_and_before(parts: tuple[TfStates, TaskStore, Database]) -> None:
    states, _, _ = parts
    one = states.add_record(KEY, "apply", "t1", {"run": {"n": 1}})
    two = states.add_record(KEY, "apply", "t2", {"run": {"n": 2}})
    states.add_record(KEY, "attempt", "t3", {"run": {"n": 3}})
    latest = states.record(KEY, "apply")
    assert latest is not None and latest["id"] == two and latest["body"] == {"run": {"n": 2}}
    earlier = states.record(KEY, "apply", before=two)
    assert earlier is not None and earlier["id"] == one
    assert states.record(KEY, "apply", before=one) is None
    assert states.record(("other", "infra", "default"), "apply") is None


def test_only_the_newest_records_of_a_kind_are_kept(
        parts: tuple[TfStates, TaskStore, Database]) -> None:
    states, _, db = parts
    plan = states.add_record(KEY, "plan", "t0", {"plan": "p"})
    ids = [states.add_record(KEY, "apply", f"t{i}", {"run": {"n": i}})
           for i in range(KEEP_RECORDS + 5)]
    kept = [r["record_id"] for r in db.all(
        "SELECT record_id FROM tf_records WHERE kind = 'apply' ORDER BY record_id")]
    assert kept == ids[5:]
    assert states.record(KEY, "plan", record_id=plan) is not None  # other kinds untouched
