"""``GET /api/instances``, ``POST /api/instances/sync`` and the Prometheus gauge of
instances per service and revision (``GET /metrics``, admin token as a bearer)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from manager.api import require_admin
from manager.instance_sync import SYNC_TIMEOUT, InstanceSync
from manager.state import State

router = APIRouter(dependencies=[Depends(require_admin)], tags=["instances"])


def _sync(request: Request) -> InstanceSync:
    sync: InstanceSync = request.app.state.instance_sync
    return sync


SyncDep = Annotated[InstanceSync, Depends(_sync)]


@router.get("/api/instances")
async def list_instances(sync: SyncDep, service: str | None = None,
                         cluster: str | None = None,
                         account: str | None = None) -> dict[str, Any]:
    """The tracked services with their state (``in_sync``, ``drift``, ``deleted``,
    ``unreachable``, or ``pending`` before the first sync), what was deployed, the
    running tasks of the last sync and the latest changes."""
    return {"services": sync.store.services(service, cluster, account),
            "interval": sync.interval}


@router.post("/api/instances/sync")
async def sync_now(sync: SyncDep, wait: Annotated[float, Query(ge=0, le=SYNC_TIMEOUT)] = 0
                   ) -> dict[str, Any]:
    """Sync every reach now (one task per account, Region and cluster). ``wait=N``:
    answer when those tasks have finished and been stored, or after N s."""
    sent = sync.sync()
    if wait:
        await sync.wait(sent["submitted"], wait)
    return sent


class _InstanceCollector(Collector):
    def __init__(self, sync: InstanceSync) -> None:
        self.sync = sync

    def collect(self) -> list[Metric]:
        gauge = GaugeMetricFamily(
            "ecs_delegate_instances", "Running tasks of a tracked service, per revision, "
            "as of the last instance sync.",
            labels=["account", "region", "cluster", "service", "revision", "state"])
        for key, state, revision, n in self.sync.store.counts():
            gauge.add_metric([*key, revision, state], n)
        return [gauge]


@router.get("/metrics", response_class=Response)
async def metrics(sync: SyncDep) -> Response:
    """Prometheus text: ``ecs_delegate_instances{account, region, cluster, service,
    revision, state}``."""
    registry = CollectorRegistry()
    registry.register(_InstanceCollector(sync))
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")


def install(app: FastAPI, st: State) -> InstanceSync:
    """Track deployments and serve the endpoints; the caller's lifespan runs ``run()``."""
    sync = InstanceSync(st, st.settings.instance_sync_interval)
    app.state.instance_sync = sync
    app.include_router(router)
    return sync
