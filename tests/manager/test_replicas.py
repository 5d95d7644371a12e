"""Several manager replicas on one PostgreSQL database (issue 14): a task submitted to one
replica starts on a delegate connected to another without waiting for a poll, each task
is assigned once however many replicas dispatch, what one replica asks of a delegate
another holds reaches it, a delegate that moves to another replica resumes there, and
what a dead replica held is swept by the others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from manager.db import now, open_database
from manager.timers import due
from testkit.postgres import PostgresServer, postgres_server
from testkit.stack import wait_for
from tests.manager.conftest import FakeDelegate, Manager
from tests.manager.test_executions import Runner, _exec_status, _execution
from wire.protocol import LogLine, LogPayload, Pull, ResultPayload, TaskStatus

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


_count = iter(range(1, 10_000))


@pytest.fixture
async def replicas(pg: PostgresServer, tmp_path: Path) -> AsyncIterator[list[Manager]]:
    url = pg.database(f"replicas{next(_count)}")
    made = []
    for name in ("a", "b"):
        m = Manager(tmp_path / f"{name}.db", replica_ttl=1.0)
        m.db_url = url
        await m.start()
        made.append(m)
    yield made
    for m in made:
        await m.stop()


async def _delegate(m: Manager, token: str, name: str, slots: int = 4) -> FakeDelegate:
    d = FakeDelegate(m, token, name=name, capacity=slots)
    assert (await d.connect()).type == "registered"
    await d.send(Pull(free_slots=slots))
    return d


def _line(text: str) -> LogPayload:
    return LogPayload(unit="Deploy", lines=[LogLine(ts=datetime.now(UTC), text=text)])


def _assigned(d: FakeDelegate) -> list[str]:
    return [m.task.task_id for m in d.received if m.type == "assign"]


async def test_a_task_submitted_to_one_replica_runs_on_a_delegate_of_another(
        replicas: list[Manager]) -> None:
    a, b = replicas
    d = await _delegate(b, await a.token(), "on-b")
    task_id = await a.submit(selectors=["a"])
    assign = await d.next("assign", timeout=5)
    assert assign.task.task_id == task_id
    await d.msg(task_id, 1, _line("hello from b"))
    await d.next("ack")
    # Read through the other replica: the same task, the same log.
    await a.wait_status(task_id, "RUNNING")
    assert sum("hello from b" in str(e) for e in await a.logs(task_id)) == 1
    # An abort asked of replica a reaches the delegate replica b holds.
    r = await a.http.post(f"/api/tasks/{task_id}/abort", json={"reason": "stop it"})
    assert r.status_code in (200, 202), r.text
    abort = await d.next("abort", timeout=5)
    assert abort.task_id == task_id and "stop it" in abort.reason
    await d.close()


async def test_a_log_follower_on_one_replica_wakes_for_lines_stored_by_another(
        replicas: list[Manager]) -> None:
    a, b = replicas
    d = await _delegate(b, await a.token(), "on-b")
    task_id = await a.submit(selectors=["a"])
    await d.next("assign")
    follow = asyncio.create_task(a.http.get(f"/api/tasks/{task_id}/logs",
                                            params={"follow": "true"}, timeout=20))
    await d.msg(task_id, 1, _line("line one"))
    await d.msg(task_id, 2, ResultPayload(status=TaskStatus.SUCCESS, output={}))
    body = (await asyncio.wait_for(follow, 10)).text
    assert "line one" in body and "SUCCESS" in body
    await d.close()


async def test_each_task_is_assigned_once_however_many_replicas_dispatch(
        replicas: list[Manager]) -> None:
    a, b = replicas
    token = await a.token()
    da, db_ = await _delegate(a, token, "on-a", 40), await _delegate(b, token, "on-b", 40)
    ids = await asyncio.gather(*(m.submit(selectors=["a"]) for m in [a, b] * 30))

    def everything_assigned() -> bool:
        return len(_assigned(da)) + len(_assigned(db_)) >= len(ids)

    await wait_for(everything_assigned, timeout=20, what="every task assigned")
    got = _assigned(da) + _assigned(db_)
    assert sorted(got) == sorted(ids)  # each once: none doubled, none missing
    assert _assigned(da) and _assigned(db_)  # both replicas dispatched
    await da.close()
    await db_.close()


async def test_a_delegate_that_moves_to_another_replica_resumes_its_task(
        replicas: list[Manager]) -> None:
    a, b = replicas
    token = await a.token()
    d = await _delegate(a, token, "mover")
    task_id = await b.submit(selectors=["a"])
    await d.next("assign")
    await d.msg(task_id, 1, _line("before"))
    await d.next("ack")
    await d.close()
    # The same delegate instance comes back through the other replica.
    moved = FakeDelegate(b, token, name="mover", instance_id=d.instance_id)
    registered = await moved.connect(running=[task_id])
    assert registered.acked == {task_id: 1}
    await moved.msg(task_id, 1, _line("before"))
    await moved.msg(task_id, 2, ResultPayload(status=TaskStatus.SUCCESS, output={"x": "1"}))
    done = await a.wait_status(task_id, "SUCCESS")
    assert done["output"] == {"x": "1"}
    lines = [e for e in await a.logs(task_id) if "before" in str(e)]
    assert len(lines) == 1  # the resent message was a duplicate, dropped
    await moved.close()


async def test_what_a_dead_replica_held_is_swept_and_its_assignments_requeued(
        replicas: list[Manager]) -> None:
    a, b = replicas
    token = await a.token()
    task_id = await a.submit(selectors=["a"])
    url = a.db_url
    assert url is not None
    db = open_database(url)
    # A replica that died (its heartbeat stopped long ago) holding a delegate's session,
    # over which the task was assigned but never accepted.
    with db.tx():
        db.run("INSERT INTO replicas (replica_id, hostname, pid, started_at, heartbeat_at) "
               "VALUES ('rep-dead', 'gone', 1, ?, ?)", now() - 100, now() - 100)
        db.run("INSERT INTO delegates (delegate_id, account_id, name, instance_id, "
               "token_id, tags, version, hostname, capacity, task_types, state, "
               "session_id, replica_id) VALUES ('dlg-ghost', 'acct1', 'ghost', 'i', 'k', "
               "'[\"a\"]', 'v', 'h', 1, '[\"test.echo\"]', 'connected', 'ses-dead', "
               "'rep-dead')")
        db.run("UPDATE tasks SET status = 'ASSIGNED', session_id = 'ses-dead', "
               "delegate_id = 'dlg-ghost' WHERE task_id = ?", task_id)

    def swept() -> Any:
        return db.one("SELECT 1 FROM replicas WHERE replica_id = 'rep-dead'") is None

    await wait_for(swept, timeout=10, what="the dead replica swept")
    row = db.one("SELECT state, session_id FROM delegates WHERE name = 'ghost'")
    assert row["state"] == "disconnected" and row["session_id"] is None
    db.close()
    # Requeued: a live delegate on the other replica gets it.
    d = await _delegate(b, token, "survivor")
    assert (await d.next("assign", timeout=5)).task.task_id == task_id
    await d.close()


async def test_an_execution_submitted_to_one_replica_advances_on_another(
        replicas: list[Manager]) -> None:
    """Its steps' results reach replica b (where the delegate is), which advances it;
    replica a, which took the submission, reads the same record. Each step ran once, the
    rollback newest first, and a second execution of the service waited for the first."""
    a, b = replicas
    d = FakeDelegate(b, await a.token(), capacity=1)
    await d.connect()
    first = (await a.http.post("/api/executions", json=_execution())).json()["execution_id"]
    second = (await b.http.post("/api/executions", json=_execution())).json()["execution_id"]
    run = Runner(d)
    await run.step(output={"arn": "arn:td:1", "rollback": {"desired": 2}})
    await run.step(TaskStatus.FAILED, error="boom")
    r2, r1 = await run.step(), await run.step()
    assert (r2.step_id, r1.step_id) == ("R2", "R1")
    view = await _exec_status(a, first, "FAILED")
    assert [(x["step_id"], x["status"]) for x in view["runs"]] == [
        ("P1", "SUCCESS"), ("P2", "FAILED"), ("R2", "SUCCESS"), ("R1", "SUCCESS")]
    # The waiting one starts once the first released the service, wherever it was sent.
    p1 = await run.step()
    assert p1.execution_id == second and p1.step_id == "P1"
    await d.close()


async def test_a_replica_whose_listening_connection_drops_listens_again(
        replicas: list[Manager]) -> None:
    """The server ends every LISTEN connection (a failover, an admin's
    pg_terminate_backend): the replicas listen again and catch up, and a task submitted to
    one still reaches a delegate on the other."""
    a, b = replicas
    d = await _delegate(b, await a.token(), "on-b")
    assert a.db_url is not None
    db = open_database(a.db_url)
    ended = db.all("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                   "datname = current_database() AND query LIKE 'LISTEN%'")
    assert len(ended) == 2  # one per replica

    def listening_again() -> bool:
        return len(db.all("SELECT pid FROM pg_stat_activity WHERE datname = "
                          "current_database() AND query LIKE 'LISTEN%'")) == 2

    await wait_for(listening_again, timeout=10, what="both replicas listening again")
    db.close()
    task_id = await a.submit(selectors=["a"])
    assert (await d.next("assign", timeout=5)).task.task_id == task_id
    await d.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_timer_fires_once_per_period_across_replicas(
        backend: str, pg: PostgresServer, tmp_path: Path) -> None:
    target = (pg.database(f"timers{next(_count)}") if backend == "postgresql"
              else str(tmp_path / "t.db"))
    one, two = open_database(target), open_database(target)
    assert due(one, "t", "one", 60.0) is True
    assert due(two, "t", "two", 60.0) is False  # claimed by one for this period
    assert due(one, "t", "one", 60.0) is False
    with one.tx():
        one.run("UPDATE timers SET until = ? WHERE name = 't'", now() - 1)
    assert [due(two, "t", "two", 60.0), due(one, "t", "one", 60.0)] == [True, False]
    one.close()
    two.close()


def test_wake_ups_go_with_their_transaction_once_each_and_not_after_a_rollback(
        pg: PostgresServer) -> None:
    import psycopg

    from manager.bus import CHANNEL, Bus

    url = pg.database(f"bus{next(_count)}")
    db = open_database(url)
    bus = Bus(db, "rep-x")
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        with pytest.raises(RuntimeError), db.tx():
            bus.publish("t", "rolled-back")
            raise RuntimeError("the change is undone")
        with db.tx():
            for arg in ("2", "2", "3"):
                bus.publish("t", arg)
        bus.publish("t", "outside")  # no transaction: at once
        got = [n.payload for n in listener.notifies(timeout=5, stop_after=3)]
    db.close()
    assert got == ["rep-x t 2", "rep-x t 3", "rep-x t outside"]


async def test_a_delegate_row_no_replica_holds_is_shown_disconnected(
        make_manager: Any) -> None:
    """A row that says connected but names no replica (written before replicas were
    recorded) is nobody's websocket: the sweep marks it disconnected, on either backend."""
    m = make_manager()
    await m.start()
    db = open_database(m.db_url or m.db)
    with db.tx():
        db.run("INSERT INTO delegates (delegate_id, account_id, name, instance_id, "
               "token_id, tags, version, hostname, capacity, task_types, state) VALUES "
               "('dlg-old', 'acct1', 'old', 'i', 'k', '[]', 'v', 'h', 1, '[]', 'connected')")

    def disconnected() -> bool:
        row = db.one("SELECT state FROM delegates WHERE delegate_id = 'dlg-old'")
        return bool(row["state"] == "disconnected")

    await wait_for(disconnected, timeout=10, what="the unplaced row marked disconnected")
    db.close()
    await m.stop()
