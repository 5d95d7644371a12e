"""The manager's Terraform state store on a real SQLite file: state sealed at rest, a
lock held by a live task refused with its holder, a lock whose task has ended broken by
the next run, records found newest-first; and the endpoints on a real manager, which take
only a fresh tfstate JWT of the delegate running the task."""

from __future__ import annotations

from pathlib import Path

import pytest

from manager.db import Database, SqliteDatabase
from manager.keys import SecretBox
from manager.taskstore import NewTask, TaskStore
from manager.tf_state import KEEP_RECORDS, TfStates
from tests.manager.conftest import FakeDelegate, Manager
from wire import auth
from wire.protocol import Accept, Pull, TaskStatus

KEY = ("acme", "infra", "default")


@pytest.fixture
def parts(tmp_path: Path) -> tuple[TfStates, TaskStore, Database]:
    db = SqliteDatabase(tmp_path / "m.db")
    box = SecretBox("test-secret-key-for-tf-state")
    return TfStates(db, box), TaskStore(db, box, 1 << 20), db


def _task(store: TaskStore) -> str:
    return store.create(NewTask(type="terraform.apply", selectors=[], params={}, secrets={},
                                context={}, timeout=60, account_id="acme"))


def test_state_is_sealed_at_rest(parts: tuple[TfStates, TaskStore, Database],
                                 tmp_path: Path) -> None:
    states, _, db = parts
    states.put(KEY, b'{"outputs": {"password": "pw-in-state-1234"}}', None)
    assert states.get(KEY) == b'{"outputs": {"password": "pw-in-state-1234"}}'
    db.close()
    assert b"pw-in-state-1234" not in (tmp_path / "m.db").read_bytes()


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
    kept = [r["id"] for r in db.all(
        "SELECT id FROM tf_records WHERE kind = 'apply' ORDER BY id")]
    assert kept == ids[5:]
    assert states.record(KEY, "plan", record_id=plan) is not None  # other kinds untouched


def _jwt(token: str, account: str, name: str, audience: str = "tfstate") -> dict[str, str]:
    return {"Authorization": "Bearer " + auth.sign(token, account_id=account,
                                                    delegate_name=name, audience=audience)}


async def test_state_endpoints_take_only_a_fresh_tfstate_jwt_for_the_callers_own_task(
        manager: Manager) -> None:
    token = await manager.token("acct-a")
    a = FakeDelegate(manager, token, account="acct-a", name="a")
    await a.connect()
    task_id = await manager.submit(selectors=["a"])
    await a.send(Pull(free_slots=1))
    await a.next("assign")
    await a.send(Accept(task_id=task_id))
    query = {"provisioner": "infra", "workspace": "default", "task": task_id}
    http = manager.http
    path = "/api/delegate/tfstate/state"

    r = await http.get(path, params=query, headers={"Authorization": ""})
    assert r.status_code == 401 and "delegate credential is required" in r.text
    r = await http.get(path, params=query, headers=_jwt(token, "acct-a", "a", "files"))
    assert r.status_code == 401  # a file-store credential is not a state one
    # Another delegate of the account, naming a task that is not its own.
    r = await http.get(path, params=query, headers=_jwt(token, "acct-a", "b"))
    assert r.status_code == 403 and "not assigned to this delegate" in r.text

    r = await http.post(path, params=query, content=b'{"version": 4}',
                        headers=_jwt(token, "acct-a", "a"))
    assert r.status_code == 200, r.text
    again = _jwt(token, "acct-a", "a")
    r = await http.get(path, params=query, headers=again)
    assert r.status_code == 200 and r.content == b'{"version": 4}'
    r = await http.get(path, params=query, headers=again)  # the same JWT twice
    assert r.status_code == 401 and "replay" in r.text
