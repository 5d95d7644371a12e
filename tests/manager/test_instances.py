"""The manager's instance store on a real SQLite file, and the look-ups' refusal rules:
what a finished deployment step tracks, how a sync answer becomes state and changes,
and which sessions can answer a look-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from manager.db import SqliteDatabase as Database
from manager.db import dumps
from manager.instances import InstanceStore, deployed_from, expand, state_of
from manager.lookups import lookup_params, unanswerable
from manager.sessions import Session
from wire.lookups import KINDS

TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:{}"
KEY = ("acme", "us-east-1", "prod", "web")


def task_row(type_: str = "ecs.rolling_deploy", status: str = "SUCCESS",
             **output: Any) -> dict[str, Any]:
    out = {"serviceName": "web", "cluster": "prod", "region": "us-east-1",
           "taskDefinitionArn": TD.format(2), **output}
    return {"type": type_, "status": status, "output": dumps(out), "task_id": "task-1",
            "execution_id": "exe-1", "account_id": "acme",
            "context": dumps({"artifact": {"image": "nginx:1.28"}})}


REACH = {"selectors": ["ecs"], "credentials": {"type": "inherit"}}


def test_a_successful_deploy_is_tracked_with_its_revision_and_image() -> None:
    d = deployed_from(task_row(), REACH, None)
    assert d is not None
    assert (d.service, d.cluster, d.task_definition, d.image, d.status) == (
        "web", "prod", TD.format(2), "nginx:1.28", "SUCCESS")


def test_a_failed_deploy_counts_only_once_it_started_an_ecs_deployment() -> None:
    assert deployed_from(task_row(status="FAILED"), REACH, None) is None
    started = deployed_from(task_row(status="FAILED", deploymentId="ecs-svc/1"), REACH, None)
    assert started is not None and started.status == "FAILED"
    assert deployed_from(task_row("ecs.rolling_rollback", "FAILED", deploymentId="x"),
                         REACH, None) is None
    assert deployed_from(task_row("shell.script"), REACH, None) is None


def test_canary_and_blue_green_track_the_service_they_created() -> None:
    canary = deployed_from(task_row("ecs.canary_deploy", canaryServiceName="webCanary"),
                           REACH, None)
    green = deployed_from(task_row("ecs.blue_green_create_service",
                                   newServiceName="web__2"), REACH, None)
    assert canary is not None and canary.service == "webCanary"
    assert green is not None and green.service == "web__2"


@pytest.mark.parametrize(("service", "state"), [
    ({"status": "ACTIVE", "taskDefinitionArn": TD.format(2)}, "in_sync"),
    ({"status": "ACTIVE", "taskDefinitionArn": TD.format(1)}, "drift"),
    ({"status": "DRAINING"}, "deleted"), ({"status": "INACTIVE"}, "deleted"),
    ({"status": "MISSING"}, "deleted"),
])
def test_state_of_a_sync_answer(service: dict[str, Any], state: str) -> None:
    assert state_of(service, TD.format(2))[0] == state


ANSWER = {"taskArnPrefix": "arn:aws:ecs:us-east-1:1:task/prod/",
          "taskDefinitionArnPrefix": "arn:aws:ecs:us-east-1:123456789012:task-definition/"}


def _answer(rev: int, *tasks: tuple[int, int], status: str = "ACTIVE") -> dict[str, Any]:
    """One service of an instances.sync answer (as the delegate sends it, compact) that
    runs revision ``rev`` with tasks (number, revision), expanded as the manager does."""
    groups = [{"taskDefinition": f"web:{r}", "containers": [
                  {"name": "web", "image": f"nginx:{r}", "imageDigest": None}],
               "tasks": [[f"{n:032x}", "ecs-svc/1", "RUNNING", "HEALTHY", "FARGATE",
                          "us-east-1a", "2026-12-03T10:00:00+00:00"]
                         for n, tr in tasks if tr == r]}
              for r in sorted({tr for _, tr in tasks})]
    return expand({"status": status, "taskDefinition": f"web:{rev}", "desired": len(tasks),
                   "running": len(tasks), "groups": groups}, ANSWER)


def test_snapshots_become_changes_and_the_gauge_counts_revisions(tmp_path: Path) -> None:
    db = Database(tmp_path / "m.db")
    store = InstanceStore(db)
    d = deployed_from(task_row(), REACH, None)
    assert d is not None
    store.track(d)
    assert list(store.reaches()) and store.services()[0]["state"] == "pending"

    store.apply(KEY, _answer(2, (1, 2), (2, 2)))
    [web] = store.services()
    assert web["state"] == "in_sync" and len(web["instances"]) == 2
    assert web["instances"][0] == {
        "taskArn": f"arn:aws:ecs:us-east-1:1:task/prod/{1:032x}",
        "taskDefinitionArn": TD.format(2), "revision": "web:2", "deploymentId": "ecs-svc/1",
        "lastStatus": "RUNNING", "health": "HEALTHY", "launchType": "FARGATE",
        "availabilityZone": "us-east-1a", "startedAt": "2026-12-03T10:00:00+00:00",
        "containers": [{"name": "web", "image": "nginx:2", "imageDigest": None}]}
    assert [c["kind"] for c in web["changes"]] == ["started", "started"]

    store.apply(KEY, _answer(1, (2, 2), (3, 1)))
    [web] = store.services()
    assert web["state"] == "drift" and web["reason"] == "runs web:1, deployed web:2"
    assert [c["kind"] for c in web["changes"][:3]] == ["drift", "stopped", "started"]
    assert sorted(store.counts()) == [(KEY, "drift", "web:1", 1), (KEY, "drift", "web:2", 1)]

    store.unreachable([KEY], "no delegate connected")
    store.unreachable([KEY], "no delegate connected")  # said once, not every round
    [web] = store.services()
    assert web["state"] == "unreachable" and len(web["instances"]) == 2
    assert [c["kind"] for c in web["changes"]].count("unreachable") == 1

    store.apply(KEY, _answer(2, status="INACTIVE"))
    [web] = store.services()
    assert web["state"] == "deleted" and web["instances"] == []
    assert store.reaches() == {}  # a deleted service is not synced again...
    store.track(d)  # ...until it is deployed again
    assert store.services()[0]["state"] == "pending"
    db.close()


def _session(tags: set[str], types: set[str], *, account: str = "acme",
             draining: bool = False) -> Session:
    return Session(session_id="s", delegate_id="d", account_id=account, name="d1",
                   instance_id="i", token_id="t", tags=frozenset(tags),
                   task_types=frozenset(types), capacity=1, ws=None, draining=draining)


def test_unanswerable_names_the_selectors_no_delegate_has() -> None:
    ecs = _session({"ecs"}, {"lookup.clusters"})
    assert unanswerable([ecs], "acme", "lookup.clusters", {"ecs"}) is None
    reason = unanswerable([ecs], "acme", "lookup.clusters", {"ecs", "gpu"})
    assert reason is not None and "no connected delegate has tags [gpu]" in reason
    assert "no delegate connected for account other" in str(
        unanswerable([ecs], "other", "lookup.clusters", set()))
    assert "supports task type" in str(unanswerable([ecs], "acme", "lookup.images", set()))
    assert "draining" in str(unanswerable([_session({"ecs"}, {"lookup.clusters"},
                                                    draining=True)],
                                          "acme", "lookup.clusters", set()))


def test_lookup_params_take_what_the_kind_names_and_refuse_what_is_missing() -> None:
    from fastapi import HTTPException

    spec = KINDS["services"]
    assert lookup_params(spec, "eu-west-1", {"cluster": "prod", "vpc": "x"}, None) == {
        "region": "eu-west-1", "cluster": "prod"}
    with pytest.raises(HTTPException) as caught:
        lookup_params(spec, "eu-west-1", {}, None)
    assert caught.value.status_code == 400 and "needs cluster" in caught.value.detail
    assert lookup_params(KINDS["clusters"], "r", {}, "arn:aws:iam::1:role/x")[
        "credentials"] == {"type": "inherit", "roleArn": "arn:aws:iam::1:role/x"}


def test_the_change_history_is_bounded_per_service(tmp_path: Path) -> None:
    db = Database(tmp_path / "m.db")
    store = InstanceStore(db, max_changes=3)
    d = deployed_from(task_row(), REACH, None)
    assert d is not None
    store.track(d)
    for n in range(4):  # each round replaces one task: a start and a stop
        store.apply(KEY, _answer(2, (n, 2)))
    rows = db.all("SELECT kind, detail FROM instance_changes ORDER BY id")
    assert len(rows) == 3
    assert rows[-1]["kind"] == "stopped" and rows[-1]["detail"].startswith(f"{2:032x}")
    db.close()
