"""What runs where: the services the manager deployed, their latest instance snapshot and
what changed between snapshots. This module owns its tables (as seen_jwts owns its own).

A service is tracked when a deployment step finishes with its service and task
definition in the output (``TRACKED_BY``): SUCCESS records what we deployed; a FAILED
step that got as far as starting an ECS deployment records it too, since that is what we
asked ECS to run — so a circuit breaker that rolled ECS back shows as drift. A
rollback step that succeeded records the revision it restored.

Each sync answer replaces the service's snapshot and appends the changes: ``started``
and ``stopped`` tasks, ``drift`` (the service's task definition is not the one we
deployed) and ``in_sync`` again, ``deleted`` (ECS says INACTIVE, DRAINING or MISSING),
``unreachable`` (no delegate could answer; the old snapshot stays, marked so)."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from manager.db import Database, dumps, loads, now
from wire.lookups import SERVICES_ENCODING, SYNC_TASK_FIELDS

# The tables are in manager/migrations/versions/0002_instances.py.

# Deployment task type -> the output key naming the service it deployed.
TRACKED_BY = {
    "ecs.rolling_deploy": "serviceName",
    "ecs.rolling_rollback": "serviceName",
    "ecs.canary_deploy": "canaryServiceName",
    "ecs.blue_green_create_service": "newServiceName",
}
MAX_CHANGES = 500  # kept per service, newest first
GONE = frozenset({"INACTIVE", "DRAINING", "MISSING"})
_KEY = ("account_id", "region", "cluster", "service")


@dataclass(frozen=True)
class Deployed:
    """One tracked service as a finished deployment step left it."""

    account_id: str
    region: str
    cluster: str
    service: str
    reach: dict[str, Any]  # where a sync task goes and how it logs in: selectors, credentials
    secrets_sealed: bytes | None  # the credentials' secrets, if they name any
    task_definition: str
    image: str | None
    status: str
    task_id: str
    execution_id: str | None


def revision_of(arn: str | None) -> str:
    return str(arn or "").rsplit("/", 1)[-1]


def deployed_from(row: Any, reach: dict[str, Any],
                  secrets_sealed: bytes | None) -> Deployed | None:
    """The deployment a finished task row records, or None (not a deployment step, or
    it never reached ECS). Pure."""
    key = TRACKED_BY.get(row["type"])
    output = loads(row["output"]) or {}
    if key is None or not output.get(key) or not output.get("taskDefinitionArn"):
        return None
    status = row["status"]
    if status != "SUCCESS" and not (status == "FAILED" and output.get("deploymentId")):
        return None
    if row["type"] == "ecs.rolling_rollback" and status != "SUCCESS":
        return None
    context = loads(row["context"]) or {}
    image = (context.get("artifact") or {}).get("image")
    return Deployed(account_id=row["account_id"] or "", region=str(output.get("region")),
                    cluster=str(output.get("cluster")), service=str(output[key]),
                    reach=reach, secrets_sealed=secrets_sealed,
                    task_definition=str(output["taskDefinitionArn"]),
                    image=image, status=status, task_id=row["task_id"],
                    execution_id=row["execution_id"])


MAX_UNPACKED = 64 * 1024 * 1024  # a packed answer is refused past this, unpacked


class BadAnswer(ValueError):
    """An instances.sync answer the manager cannot read."""


def unpack(answer: dict[str, Any]) -> dict[str, Any]:
    """The ``services`` of an instances.sync answer, unpacked. Raises BadAnswer."""
    services = answer.get("services")
    if answer.get("servicesEncoding") != SERVICES_ENCODING:
        raise BadAnswer(f"services encoding {answer.get('servicesEncoding')!r}, expected "
                        f"{SERVICES_ENCODING!r}")
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(base64.b64decode(str(services)), MAX_UNPACKED)
        if inflater.unconsumed_tail:
            raise BadAnswer(f"the services unpack to more than {MAX_UNPACKED} bytes")
        found = json.loads(raw)
    except (ValueError, zlib.error) as exc:
        raise BadAnswer(f"the services cannot be unpacked: {exc}") from None
    if not isinstance(found, dict):
        raise BadAnswer("the services are not an object")
    return found


def _long(value: Any, prefix: str) -> str | None:
    text = str(value or "")
    if not text:
        return None
    return text if text.startswith("arn:") else prefix + text


def expand(service: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """One service of an instances.sync answer, its ARNs whole again and one dict per
    task (the compact form is for the wire: tasks/instances/sync.py). Pure."""
    task_prefix = str(answer.get("taskArnPrefix") or "")
    td_prefix = str(answer.get("taskDefinitionArnPrefix") or "")
    tasks = []
    for group in service.get("groups", []):
        td = _long(group.get("taskDefinition"), td_prefix)
        for row in group.get("tasks", []):
            task = dict(zip(SYNC_TASK_FIELDS, row, strict=False))
            tasks.append({"taskArn": _long(task.pop("id"), task_prefix),
                          "taskDefinitionArn": td, "revision": revision_of(td), **task,
                          "containers": group.get("containers", [])})
    return {"status": service.get("status"),
            "taskDefinitionArn": _long(service.get("taskDefinition"), td_prefix),
            "desired": service.get("desired"), "running": service.get("running"),
            "primaryDeployment": service.get("primaryDeployment"), "tasks": tasks,
            "tasksLeftOut": service.get("tasksLeftOut", 0)}


def state_of(service: dict[str, Any], deployed_td: str) -> tuple[str, str | None]:
    """(state, reason) of a service as a sync answer shows it. Pure."""
    status = service.get("status")
    if status in GONE:
        return "deleted", f"ECS reports the service {status}"
    running = service.get("taskDefinitionArn")
    if running and revision_of(running) != revision_of(deployed_td):
        return "drift", (f"runs {revision_of(running)}, deployed "
                         f"{revision_of(deployed_td)}")
    return "in_sync", None


class InstanceStore:
    def __init__(self, db: Database, *, max_changes: int = MAX_CHANGES) -> None:
        self.db = db
        self.max_changes = max_changes

    def track(self, d: Deployed) -> None:
        with self.db.tx():
            self.db.run(
                "INSERT INTO tracked_services (account_id, region, cluster, service, reach, "
                "secrets_sealed, deployed_td, deployed_image, deployed_status, deployed_at, "
                "task_id, execution_id, state) VALUES (?,?,?,?,?,?,?,?,?,?,?,?, 'pending') "
                "ON CONFLICT (account_id, region, cluster, service) DO UPDATE SET "
                "reach = excluded.reach, secrets_sealed = excluded.secrets_sealed, "
                "deployed_td = excluded.deployed_td, "
                "deployed_image = excluded.deployed_image, "
                "deployed_status = excluded.deployed_status, "
                "deployed_at = excluded.deployed_at, task_id = excluded.task_id, "
                "execution_id = excluded.execution_id, "
                "state = CASE WHEN tracked_services.state = 'deleted' THEN 'pending' "
                "ELSE tracked_services.state END",
                d.account_id, d.region, d.cluster, d.service, dumps(d.reach),
                d.secrets_sealed, d.task_definition, d.image, d.status, now(), d.task_id,
                d.execution_id)

    def reaches(self) -> dict[str, list[Any]]:
        """Reach (JSON: account, region, cluster, selectors, credentials) -> the tracked
        services not known deleted, for one sync task each."""
        found: dict[str, list[Any]] = {}
        for row in self.db.all("SELECT * FROM tracked_services WHERE state != 'deleted' "
                               "ORDER BY account_id, region, cluster, service"):
            key = dumps({"account_id": row["account_id"], "region": row["region"],
                         "cluster": row["cluster"], **loads(row["reach"])})
            found.setdefault(key, []).append(row)
        return found

    def _row(self, key: tuple[str, ...]) -> Any:
        return self.db.one("SELECT * FROM tracked_services WHERE account_id = ? AND "
                           "region = ? AND cluster = ? AND service = ?", *key)

    def _change(self, key: tuple[str, ...], kind: str, detail: str, at: float) -> None:
        self.db.run("INSERT INTO instance_changes (at, account_id, region, cluster, "
                    "service, kind, detail) VALUES (?,?,?,?,?,?,?)", at, *key, kind, detail)

    def apply(self, key: tuple[str, ...], service: dict[str, Any]) -> None:
        """Store one service's sync answer: its snapshot, state and the changes."""
        at = now()
        with self.db.tx():
            row = self._row(key)
            if row is None:
                return
            state, reason = state_of(service, row["deployed_td"])
            self._diff_tasks(key, service.get("tasks", []), at,
                             partial=bool(service.get("tasksLeftOut")))
            # The first answer after a deployment says nothing new when all is well.
            if state != row["state"] and not (state == "in_sync" and
                                              row["state"] == "pending"):
                self._change(key, state, reason or "as deployed", at)
            # The history is for reading what changed lately, not an archive: bounded.
            self.db.run("DELETE FROM instance_changes WHERE account_id = ? AND region = ? "
                        "AND cluster = ? AND service = ? AND id <= (SELECT id FROM "
                        "instance_changes WHERE account_id = ? AND region = ? AND "
                        "cluster = ? AND service = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                        *key, *key, self.max_changes)
            self.db.run("UPDATE tracked_services SET state = ?, reason = ?, service_td = ?, "
                        "desired = ?, running = ?, synced_at = ? WHERE account_id = ? AND "
                        "region = ? AND cluster = ? AND service = ?", state, reason,
                        service.get("taskDefinitionArn"), service.get("desired"),
                        service.get("running"), at, *key)

    def _diff_tasks(self, key: tuple[str, ...], tasks: list[dict[str, Any]], at: float,
                    *, partial: bool) -> None:
        if partial:  # details left out to fit one message: keep the last snapshot
            return
        where = "account_id = ? AND region = ? AND cluster = ? AND service = ?"
        before = {r["task_arn"]: r["revision"] for r in self.db.all(
            f"SELECT task_arn, revision FROM instances WHERE {where}", *key)}
        after = {str(t["taskArn"]): t for t in tasks}
        for arn in sorted(set(after) - set(before)):
            self._change(key, "started", f"{arn.rsplit('/', 1)[-1]} "
                                         f"({after[arn]['revision']})", at)
        for arn in sorted(set(before) - set(after)):
            self._change(key, "stopped", f"{arn.rsplit('/', 1)[-1]} ({before[arn]})", at)
        self.db.run(f"DELETE FROM instances WHERE {where}", *key)
        self.db.many(
            "INSERT INTO instances (account_id, region, cluster, service, task_arn, "
            "revision, data) VALUES (?,?,?,?,?,?,?)",
            [(*key, arn, t["revision"], dumps(t)) for arn, t in after.items()])

    def unreachable(self, keys: Iterable[tuple[str, ...]], reason: str) -> None:
        """No delegate answered for these services: say so, keep their last snapshot."""
        at = now()
        with self.db.tx():
            for key in keys:
                row = self._row(key)
                if row is None or row["state"] == "deleted":
                    continue
                if row["state"] != "unreachable":
                    self._change(key, "unreachable", reason, at)
                self.db.run("UPDATE tracked_services SET state = 'unreachable', reason = ? "
                            "WHERE account_id = ? AND region = ? AND cluster = ? AND "
                            "service = ?", reason, *key)

    # ------------------------------------------------------------------ reading

    def services(self, service: str | None = None, cluster: str | None = None,
                 account: str | None = None) -> list[dict[str, Any]]:
        rows = self.db.all(
            "SELECT * FROM tracked_services WHERE (? IS NULL OR service = ?) AND "
            "(? IS NULL OR cluster = ?) AND (? IS NULL OR account_id = ?) "
            "ORDER BY account_id, region, cluster, service",
            service, service, cluster, cluster, account, account)
        return [self._view(r) for r in rows]

    def _view(self, row: Any) -> dict[str, Any]:
        key = tuple(row[k] for k in _KEY)
        where = "account_id = ? AND region = ? AND cluster = ? AND service = ?"
        tasks = [loads(r["data"]) for r in self.db.all(
            f"SELECT data FROM instances WHERE {where} ORDER BY task_arn", *key)]
        changes = [{"at": r["at"], "kind": r["kind"], "detail": r["detail"]}
                   for r in self.db.all(f"SELECT at, kind, detail FROM instance_changes "
                                        f"WHERE {where} ORDER BY id DESC LIMIT 20", *key)]
        return {
            **{k: row[k] for k in _KEY}, "state": row["state"], "reason": row["reason"],
            "deployed": {"taskDefinitionArn": row["deployed_td"],
                         "revision": revision_of(row["deployed_td"]),
                         "image": row["deployed_image"], "status": row["deployed_status"],
                         "at": row["deployed_at"], "task_id": row["task_id"],
                         "execution_id": row["execution_id"]},
            "service_revision": revision_of(row["service_td"]) if row["service_td"] else None,
            "desired": row["desired"], "running": row["running"],
            "synced_at": row["synced_at"], "instances": tasks, "changes": changes,
        }

    def counts(self) -> list[tuple[tuple[str, ...], str, str, int]]:
        """(service key, state, revision, running tasks) for the Prometheus gauge."""
        rows = self.db.all(
            "SELECT s.account_id, s.region, s.cluster, s.service, s.state, i.revision, "
            "COUNT(i.task_arn) AS n FROM tracked_services s LEFT JOIN instances i USING "
            "(account_id, region, cluster, service) GROUP BY s.account_id, s.region, "
            "s.cluster, s.service, i.revision")
        return [(tuple(r[k] for k in _KEY), r["state"], r["revision"] or "", int(r["n"]))
                for r in rows]
