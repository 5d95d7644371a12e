"""Instance sync: track what each finished deployment step deployed, and on an interval
(and on demand) send one ``instances.sync`` task per reach — account, Region, cluster,
selectors and credentials — to a delegate, storing what it answers.

A reach no connected delegate can take is marked unreachable at once (the reason names
the selectors), as is one whose sync task fails, times out or is lost: its services keep
their last snapshot, marked so, rather than vanishing."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from manager import timers
from manager.db import loads
from manager.instances import (
    BadAnswer,
    Deployed,
    InstanceStore,
    deployed_from,
    expand,
    unpack,
)
from manager.lookups import unanswerable
from manager.state import State
from manager.taskstore import FINISHED, NewTask
from wire.lookups import INSTANCE_SYNC_TYPE
from wire.protocol import PARAM_DEFAULTS, TaskStatus

log = structlog.get_logger("manager.instances")
SYNC_TIMEOUT = 120.0
_REACH = "instanceSync"  # the sync task's context key holding its reach


def reach_of(row: Any) -> dict[str, Any]:
    """The selectors and credentials of a deployment task row (its credentials from its
    params, else the execution's infrastructure)."""
    params = loads(row["params"]) or {}
    defaults = (loads(row["context"]) or {}).get(PARAM_DEFAULTS) or {}
    credentials = params.get("credentials") or defaults.get("credentials") or {
        "type": "inherit"}
    return {"selectors": sorted(loads(row["selectors"]) or []), "credentials": credentials}


class InstanceSync:
    def __init__(self, st: State, interval: float) -> None:
        self.st = st
        self.store = InstanceStore(st.db)
        self.interval = interval
        st.store.on_finished.append(self._finished)

    # ------------------------------------------------------------------ tracking

    def _finished(self, task_id: str, status: TaskStatus) -> None:
        row = self.st.store.get(task_id)
        if row is None:
            return
        if row["type"] == INSTANCE_SYNC_TYPE:
            self._synced(row)
            return
        reach = reach_of(row)
        secrets = self._credential_secrets(row, reach["credentials"])
        deployed = deployed_from(row, reach, self.st.box.seal(secrets) if secrets else None)
        if deployed is not None:
            self.store.track(deployed)
            log.info("tracking service", service=deployed.service, cluster=deployed.cluster,
                     revision=deployed.task_definition.rsplit("/", 1)[-1])

    def _credential_secrets(self, row: Any, credentials: dict[str, Any]) -> dict[str, str]:
        names = [credentials.get(k) for k in ("secretKeyRef", "sessionTokenRef")]
        held = self.st.store.secrets_of(row)
        return {n: held[n] for n in names if n and n in held}

    # ------------------------------------------------------------------ syncing

    def sync(self) -> dict[str, Any]:
        """Send a sync task for every reach that has none running; answer what was sent
        and what no delegate can reach."""
        submitted, unreachable = [], []
        for reach_key, rows in self.store.reaches().items():
            task_id = self._unfinished(reach_key)
            if task_id is not None:
                submitted.append(task_id)
                continue
            spec = self._task(reach_key, rows)
            reason = unanswerable(self.st.hub.replicas.connected(), spec.account_id,
                                  spec.type, set(spec.selectors))
            if reason is not None:
                self.store.unreachable(_keys(reach_key, rows), reason)
                unreachable.append({**loads(reach_key), "reason": reason})
                continue
            submitted.append(self.st.hub.submit(spec))
        return {"submitted": submitted, "unreachable": unreachable}

    def _unfinished(self, reach_key: str) -> str | None:
        """The reach's sync task still under way, whichever replica sent it."""
        row = self.st.db.one(
            "SELECT task_id FROM tasks WHERE type = ? AND status IN ('QUEUED', 'ASSIGNED', "
            f"'RUNNING') AND {self.st.db.json_text('context', _REACH)} = ? LIMIT 1",
            INSTANCE_SYNC_TYPE, reach_key)
        return None if row is None else str(row["task_id"])

    def _task(self, reach_key: str, rows: list[Any]) -> NewTask:
        reach = loads(reach_key)
        newest = max(rows, key=lambda r: r["deployed_at"])
        secrets = self.st.box.open(newest["secrets_sealed"]) or {}
        return NewTask(
            type=INSTANCE_SYNC_TYPE, selectors=reach["selectors"], params={
                "region": reach["region"], "cluster": reach["cluster"],
                "credentials": reach["credentials"],
                "services": [r["service"] for r in rows]},
            secrets=secrets, context={_REACH: reach_key}, timeout=SYNC_TIMEOUT,
            account_id=reach["account_id"] or None)

    def _synced(self, row: Any) -> None:
        reach_key = (loads(row["context"]) or {}).get(_REACH)
        if not reach_key:
            return
        reach = loads(reach_key)
        names = (loads(row["params"]) or {}).get("services", [])
        keys = [(reach["account_id"], reach["region"], reach["cluster"], n) for n in names]
        if row["status"] != TaskStatus.SUCCESS:
            self.store.unreachable(keys, f"the sync task {row['task_id']} ended "
                                         f"{row['status']}: {row['error'] or 'no error'}")
            return
        answer = loads(row["output"]) or {}
        try:
            services = unpack(answer)
        except BadAnswer as exc:
            self.store.unreachable(keys, f"the sync task {row['task_id']} answered what "
                                         f"the manager cannot read: {exc}")
            return
        for key in keys:
            self.store.apply(key, expand(services.get(key[3], {"status": "MISSING"}),
                                         answer))
        log.info("instances synced", cluster=reach["cluster"], services=len(keys))

    async def wait(self, task_ids: list[str], timeout: float) -> None:
        """Until these sync tasks finished (and were stored), or ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for task_id in task_ids:
            while (row := self.st.store.get(task_id)) is not None and \
                    row["status"] not in FINISHED and loop.time() < deadline:
                await self.st.signals.wait(f"task:{task_id}", deadline - loop.time())

    async def run(self) -> None:
        """The interval timer (the manager's lifespan runs it). Every replica ticks; the
        one that claims the round runs it (manager.timers), so a round is sent once."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                if timers.due(self.st.db, "instance-sync", self.st.bus.replica_id,
                              self.interval * 0.9):
                    self.sync()
            except Exception:
                log.exception("instance sync round failed")


def _keys(reach_key: str, rows: list[Any]) -> list[tuple[str, ...]]:
    reach = loads(reach_key)
    return [(reach["account_id"], reach["region"], reach["cluster"], r["service"])
            for r in rows]


__all__ = ["Deployed", "InstanceSync"]
