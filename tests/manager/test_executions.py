"""Executions: steps as tasks, expressions, rollback order, one deployment per service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wire.protocol import Accept, Pull, ResultPayload, TaskStatus

from .conftest import FakeDelegate, Manager, wait_for


def _execution(service: str = "myapp", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"deploy {service}",
        "selectors": ["a"],
        "service": service,
        "infrastructure": {"region": "us-east-1", "cluster": "c1",
                           "credentials": {"type": "inherit"}},
        "artifact": {"image": "nginx:1"},
        "env": {"name": "dev", "variables": {"X": "1"}},
        "secrets": {"DB_PASSWORD": "s3cr3t-value-123"},
        "steps": [
            {"id": "P1", "type": "test.echo", "params": {"n": 1}},
            {"id": "P2", "type": "test.echo", "params": {
                "arn": "<+execution.steps.P1.output.arn>",
                "where": "<+infra.cluster>/<+infra.region>",
                "image": "<+primary.artifact.image>"}},
        ],
        "rollbackSteps": [
            {"id": "R1", "type": "test.echo", "rollsBack": "P1",
             "params": {"data": "<+execution.steps.P1.output.rollback>"}},
            {"id": "R2", "type": "test.echo", "rollsBack": "P2", "params": {}},
        ],
    }
    body.update(extra)
    return body


class Runner:
    """Completes every assigned task with a scripted result."""

    def __init__(self, d: FakeDelegate) -> None:
        self.d = d
        self.seen: list[Any] = []

    async def step(self, status: TaskStatus = TaskStatus.SUCCESS,
                   output: dict[str, Any] | None = None, error: str | None = None) -> Any:
        await self.d.send(Pull(free_slots=1))
        assign = await self.d.next("assign")
        self.seen.append(assign.task)
        await self.d.send(Accept(task_id=assign.task.task_id))
        await self.d.msg(assign.task.task_id, 1,
                         ResultPayload(status=status, output=output or {}, error=error))
        return assign.task


async def _exec(manager: Manager, eid: str) -> dict[str, Any]:
    return dict((await manager.http.get(f"/api/executions/{eid}")).json())


async def _exec_status(manager: Manager, eid: str, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        view = await _exec(manager, eid)
        return view if view["status"] == status else None
    result: dict[str, Any] = await wait_for(check, what=f"{eid} {status}")
    return result


async def test_failed_step_rolls_back_newest_first_with_outputs(manager: Manager) -> None:
    d = FakeDelegate(manager, await manager.token(), capacity=1)
    await d.connect()
    r = await manager.http.post("/api/executions", json=_execution())
    assert r.status_code == 201, r.text
    eid = r.json()["execution_id"]
    run = Runner(d)
    p1 = await run.step(output={"arn": "arn:td:1", "rollback": {"desired": 2}})
    # The infrastructure is offered to the delegate, which fills in declared params only.
    assert "region" not in p1.params and "cluster" not in p1.params
    assert p1.context["paramDefaults"] == {"region": "us-east-1", "cluster": "c1",
                                           "credentials": {"type": "inherit"}}
    assert p1.secrets == {"DB_PASSWORD": "s3cr3t-value-123"}
    p2 = await run.step(TaskStatus.FAILED, output={"rollback": "p2-data"}, error="boom")
    assert p2.params["arn"] == "arn:td:1"
    assert p2.params["where"] == "c1/us-east-1"
    assert p2.params["image"] == "<+primary.artifact.image>"  # the delegate renders it
    assert p2.context["primary"]["artifact"]["image"] == "nginx:1"
    assert p2.context["env"]["name"] == "dev"
    r2 = await run.step()
    r1 = await run.step()
    assert (r2.step_id, r1.step_id) == ("R2", "R1")
    assert r1.params["data"] == {"desired": 2}
    view = await _exec_status(manager, eid, "FAILED")
    assert [(x["step_id"], x["status"]) for x in view["runs"]] == [
        ("P1", "SUCCESS"), ("P2", "FAILED"), ("R2", "SUCCESS"), ("R1", "SUCCESS")]
    assert view["runs"][1]["output"] == {"rollback": "p2-data"}
    assert "step P2 ended FAILED: boom" in view["error"]


async def test_unknown_expression_fails_step_and_rolls_back(manager: Manager) -> None:
    d = FakeDelegate(manager, await manager.token(), capacity=1)
    await d.connect()
    body = _execution()
    body["steps"][1]["params"] = {"x": "<+pipeline.nope>"}
    eid = (await manager.http.post("/api/executions", json=body)).json()["execution_id"]
    run = Runner(d)
    await run.step(output={"arn": "a", "rollback": 1})
    await run.step()  # R1 only: P2 never reached a delegate, R2 rolls back P2 though
    view = await _exec(manager, eid)
    p2 = view["runs"][1]
    assert p2["status"] == "FAILED" and "unknown expression <+pipeline.nope>" in p2["error"]
    assert "steps[P2].params.x" in p2["error"]


async def test_same_service_waits_other_service_runs(manager: Manager) -> None:
    d = FakeDelegate(manager, await manager.token(), capacity=3)
    await d.connect()
    first = (await manager.http.post("/api/executions", json=_execution())).json()
    second = (await manager.http.post("/api/executions", json=_execution())).json()
    other = (await manager.http.post("/api/executions", json=_execution("billing"))).json()
    assert second["status"] == "QUEUED"
    assert second["waiting_reason"].startswith(f"waiting for execution {first['execution_id']}")
    assert "service myapp in us-east-1/c1" in second["waiting_reason"]
    assert other["status"] == "RUNNING"
    # Both running executions have a step queued; nothing from the waiting one.
    await d.send(Pull(free_slots=3))
    a = await d.next("assign")
    b = await d.next("assign")
    assert {a.task.execution_id, b.task.execution_id} == \
        {first["execution_id"], other["execution_id"]}
    run = Runner(d)
    for t in (a.task, b.task):
        await d.send(Accept(task_id=t.task_id))
        await d.msg(t.task_id, 1, ResultPayload(status=TaskStatus.SUCCESS,
                                                 output={"arn": "x"}))
    # P2 of both running executions, then the waiting one starts.
    for _ in range(2):
        await run.step(output={"arn": "y"})
    await _exec_status(manager, first["execution_id"], "SUCCESS")
    await _exec_status(manager, other["execution_id"], "SUCCESS")
    view = await _exec_status(manager, second["execution_id"], "RUNNING")
    assert view["waiting_reason"] is None
    await run.step(output={"arn": "z"})
    await run.step()
    await _exec_status(manager, second["execution_id"], "SUCCESS")


async def test_abort_stops_without_rollback_and_manual_rollback(manager: Manager) -> None:
    d = FakeDelegate(manager, await manager.token(), capacity=1)
    await d.connect()
    eid = (await manager.http.post("/api/executions", json=_execution())).json()["execution_id"]
    await d.send(Pull(free_slots=1))
    p1 = (await d.next("assign")).task
    await d.send(Accept(task_id=p1.task_id))
    await manager.wait_status(p1.task_id, "RUNNING")
    r = await manager.http.post(f"/api/executions/{eid}/abort")
    assert r.status_code == 200
    assert (await d.next("abort")).task_id == p1.task_id
    await d.msg(p1.task_id, 1, ResultPayload(status=TaskStatus.ABORTED,
                                              output={"rollback": "r"}))
    view = await _exec_status(manager, eid, "ABORTED")
    assert [x["step_id"] for x in view["runs"]] == ["P1"]
    r = await manager.http.post(f"/api/executions/{eid}/rollback")
    assert r.status_code == 200, r.text
    r1 = await Runner(d).step()
    assert r1.step_id == "R1" and r1.params["data"] == "r"
    await _exec_status(manager, eid, "ROLLED_BACK")
    again = await manager.http.post(f"/api/executions/{eid}/rollback")
    assert again.status_code == 409


async def test_execution_file_validation(manager: Manager) -> None:
    body = _execution()
    body["rollbackSteps"][0]["rollsBack"] = "P9"
    r = await manager.http.post("/api/executions", json=body)
    assert r.status_code == 422
    assert "rollsBack: 'P9' is not the id of a step" in r.text


# --------------------------------------------------------------------------- requested rollbacks


def _ecs_execution() -> dict[str, Any]:
    """One deploy step whose rollback step undoes it from its rollbackData."""
    return _execution(steps=[{"id": "deploy", "type": "test.echo", "params": {}}],
                      rollbackSteps=[{
                          "id": "undo", "type": "ecs.rolling_rollback", "rollsBack": "deploy",
                          "params": {"rollbackData":
                                     "<+execution.steps.deploy.output.rollbackData>"}}])


async def _deployed(manager: Manager, run: Runner, data: dict[str, Any]) -> str:
    r = await manager.http.post("/api/executions", json=_ecs_execution())
    assert r.status_code == 201, r.text
    eid = str(r.json()["execution_id"])
    await run.step(output={"rollbackData": data})
    await _exec_status(manager, eid, "SUCCESS")
    return eid


async def test_rollback_of_a_superseded_execution_is_refused_unless_forced(
        manager: Manager) -> None:
    d = FakeDelegate(manager, await manager.token(), capacity=1,
                     task_types=("test.echo", "ecs.rolling_rollback"))
    await d.connect()
    run = Runner(d)
    first = await _deployed(manager, run, {"existed": False, "serviceName": "myapp"})
    second = await _deployed(manager, run, {"existed": True, "serviceName": "myapp",
                                            "taskDefinitionArn": "arn:td/myapp:1",
                                            "desiredCount": 2})
    r = await manager.http.post(f"/api/executions/{first}/rollback")
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert f"execution {first} is not the latest deployment of service myapp" in detail
    assert f"- {second} (deploy myapp), created " in detail and ", SUCCESS" in detail
    plan_line = "1. undo (ecs.rolling_rollback, rolls back deploy): delete service myapp, " \
                "which the deployment created"
    assert plan_line in detail
    assert '{"force": true}' in detail
    # Refused means untouched: no rollback task, the execution as it was.
    view = await _exec(manager, first)
    assert (view["status"], view["rollback_requested"], len(view["runs"])) == \
        ("SUCCESS", False, 1)
    tasks = (await manager.http.get("/api/tasks")).json()["tasks"]
    assert [t["step_id"] for t in tasks] == ["deploy", "deploy"]

    # The latest one rolls back without force and says what it does.
    r = await manager.http.post(f"/api/executions/{second}/rollback")
    assert r.status_code == 200, r.text
    assert "restore service myapp to task definition arn:td/myapp:1, desired count 2" \
        in r.json()["plan"]
    undo = await run.step(output={"rolledBack": True})
    assert undo.params["rollbackData"]["taskDefinitionArn"] == "arn:td/myapp:1"
    view = await _exec_status(manager, second, "ROLLED_BACK")
    assert view["rollback_requested"] is True and view["error"] is None

    # Forced, the superseded one proceeds, and its answer carries the same plan first.
    r = await manager.http.post(f"/api/executions/{first}/rollback", json={"force": True})
    assert r.status_code == 200, r.text
    assert plan_line in r.json()["plan"] and r.json()["plan"] in detail
    undo = await run.step(output={"rolledBack": True})
    assert undo.params["rollbackData"] == {"existed": False, "serviceName": "myapp"}
    view = await _exec_status(manager, first, "ROLLED_BACK")
    assert view["rollback_requested"] is True


async def test_rollback_of_a_running_execution_interrupts_it(manager: Manager) -> None:
    d = FakeDelegate(manager, await manager.token(), capacity=1)
    await d.connect()
    eid = (await manager.http.post("/api/executions", json=_execution())).json()["execution_id"]
    run = Runner(d)
    await run.step(output={"arn": "a", "rollback": "r1-data"})
    await d.send(Pull(free_slots=1))
    p2 = (await d.next("assign")).task
    await d.send(Accept(task_id=p2.task_id))
    await manager.wait_status(p2.task_id, "RUNNING")
    r = await manager.http.post(f"/api/executions/{eid}/rollback")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ROLLING_BACK"
    assert "1. R2 (test.echo, rolls back P2): undo step P2 once its task has stopped" \
        in r.json()["plan"]
    assert "2. R1 (test.echo, rolls back P1): run test.echo" in r.json()["plan"]
    assert (await d.next("abort")).task_id == p2.task_id
    await d.msg(p2.task_id, 1, ResultPayload(status=TaskStatus.ABORTED))
    assert [(await run.step()).step_id, (await run.step()).step_id] == ["R2", "R1"]
    view = await _exec_status(manager, eid, "ROLLED_BACK")
    assert view["rollback_requested"] is True and view["error"] is None


async def test_rollback_step_without_rollback_data_is_skipped(manager: Manager) -> None:
    d = FakeDelegate(manager, await manager.token(), capacity=1)
    await d.connect()
    eid = (await manager.http.post("/api/executions", json=_execution())).json()["execution_id"]
    await Runner(d).step(TaskStatus.FAILED, error="boom")  # P1 fails before any output
    view = await _exec_status(manager, eid, "FAILED")
    assert [(x["step_id"], x["status"], x["task_id"]) for x in view["runs"]] == [
        ("P1", "FAILED", view["runs"][0]["task_id"]), ("R1", "SKIPPED", None)]
    assert view["runs"][1]["error"] == (
        "step P1 ended FAILED before it recorded output 'rollback', so there is nothing of "
        "it to roll back")
    assert view["error"] == "step P1 ended FAILED: boom"  # no false rollback alarm
    tasks = (await manager.http.get("/api/tasks")).json()["tasks"]
    assert [t["step_id"] for t in tasks] == ["P1"]


async def test_missing_output_of_a_step_that_succeeded_still_fails(manager: Manager) -> None:
    """Only a step that failed early excuses its rollback step; a succeeded step lacking
    the output means the execution file names the wrong key."""
    d = FakeDelegate(manager, await manager.token(), capacity=1)
    await d.connect()
    eid = (await manager.http.post("/api/executions", json=_execution())).json()["execution_id"]
    run = Runner(d)
    await run.step(output={"arn": "a"})  # P1 succeeds without 'rollback'; P2 runs
    await run.step(TaskStatus.FAILED, error="boom")
    await run.step()  # R2
    view = await _exec_status(manager, eid, "FAILED")
    assert [(x["step_id"], x["status"]) for x in view["runs"]] == [
        ("P1", "SUCCESS"), ("P2", "FAILED"), ("R2", "SUCCESS"), ("R1", "FAILED")]
    assert "step 'P1' has no output 'rollback'" in view["runs"][3]["error"]
    assert "rollback step(s) R1 did not succeed" in view["error"]


# --------------------------------------------------------------------------- accounts


async def test_without_an_account_a_two_account_manager_refuses(manager: Manager) -> None:
    await manager.token("acct1")
    await manager.token("acct2")
    for path, body in (("/api/tasks", {"type": "test.echo"}), ("/api/executions",
                                                               _execution())):
        r = await manager.http.post(path, json=body)
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert detail.startswith("account_id: this manager serves 2 accounts (acct1, acct2)")
        assert "set account_id in the file, or pass --account" in detail
        assert "s3cr3t" not in r.text
    assert (await manager.http.get("/api/tasks")).json()["tasks"] == []
    assert (await manager.http.get("/api/executions")).json()["executions"] == []
    task_id = await manager.submit(account_id="acct2")
    assert (await manager.task(task_id))["account_id"] == "acct2"


async def test_a_one_account_manager_defaults_to_it(manager: Manager) -> None:
    await manager.token("acct1")
    task_id = await manager.submit()
    assert (await manager.task(task_id))["account_id"] == "acct1"
    r = await manager.http.post("/api/executions", json=_execution())
    assert r.status_code == 201, r.text
    view = await _exec(manager, r.json()["execution_id"])
    assert view["account_id"] == "acct1"


async def test_force_never_rolls_back_while_a_newer_one_deploys(manager: Manager) -> None:
    d = FakeDelegate(manager, await manager.token(), capacity=1,
                     task_types=("test.echo", "ecs.rolling_rollback"))
    await d.connect()
    first = await _deployed(manager, Runner(d), {"existed": False, "serviceName": "myapp"})
    second = (await manager.http.post("/api/executions", json=_ecs_execution())).json()
    await d.send(Pull(free_slots=1))
    await d.next("assign")  # the second one's deploy step, still running
    r = await manager.http.post(f"/api/executions/{first}/rollback")
    assert r.status_code == 409
    assert f"- {second['execution_id']} (deploy myapp), created " in r.json()["detail"]
    assert ", RUNNING" in r.json()["detail"]
    r = await manager.http.post(f"/api/executions/{first}/rollback", json={"force": True})
    assert r.status_code == 409
    assert r.json()["detail"] == (f"execution {second['execution_id']} is deploying the same "
                                  "service; roll back when it has finished")
    assert (await _exec(manager, first))["status"] == "SUCCESS"


async def test_an_aborting_execution_holds_the_service_across_a_restart(
        make_manager: Callable[..., Manager]) -> None:
    """ABORTING is a stored status: after a restart the execution still waits for its
    step's task, keeps the next execution of the service queued, then ends ABORTED."""
    m = make_manager()
    await m.start()
    d = FakeDelegate(m, await m.token(), capacity=1)
    await d.connect()
    eid = (await m.http.post("/api/executions", json=_execution())).json()["execution_id"]
    await d.send(Pull(free_slots=1))
    p1 = (await d.next("assign")).task
    await d.send(Accept(task_id=p1.task_id))
    await m.wait_status(p1.task_id, "RUNNING")
    assert (await m.http.post(f"/api/executions/{eid}/abort")).json()["status"] == "ABORTING"
    waiting = (await m.http.post("/api/executions", json=_execution())).json()
    assert waiting["waiting_reason"].startswith(f"waiting for execution {eid}")
    await m.stop()
    await d.close()
    m2 = make_manager()
    await m2.start()
    try:
        d.inbox, d.manager = type(d.inbox)(), m2
        await d.connect(running=[p1.task_id])
        assert (await _exec(m2, eid))["status"] == "ABORTING"
        await d.msg(p1.task_id, 1, ResultPayload(status=TaskStatus.ABORTED))
        view = await _exec_status(m2, eid, "ABORTED")
        assert [x["step_id"] for x in view["runs"]] == ["P1"]
        await _exec_status(m2, waiting["execution_id"], "RUNNING")
    finally:
        await m2.stop()
