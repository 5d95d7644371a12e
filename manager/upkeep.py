"""What a replica does for the whole cluster of managers at start-up, on each watchdog
pass and at a clean stop: join and sweep (what dead replicas held goes back to the
queue), close its own silent sessions, end expired leases (where the timer was claimed),
and release its sessions when it stops. The hub holds the sessions; this is the upkeep
around them."""

from __future__ import annotations

import structlog

from manager.hub import Hub
from wire.protocol import Abort, Disconnect

log = structlog.get_logger("manager.upkeep")
CLOSE_SILENT = 4408  # the session sent nothing for longer than the lease


def recover(hub: Hub) -> None:
    """At start-up this replica holds no session. Alone on the database (SQLite),
    no session exists anywhere: every unaccepted assignment goes back to the queue.
    With other replicas, only what dead ones held is swept (see :meth:`sweep`).
    Running tasks keep a lease long enough for their delegates to reconnect."""
    hub.replicas.join()
    sweep(hub, every_other=hub.db.dialect == "sqlite")
    hub.refresh_waiting_reasons()


def sweep(hub: Hub, *, every_other: bool = False) -> None:
    """Forget dead replicas' sessions; requeue assignments no live session holds."""
    requeued = 0
    with hub.db.tx():
        for replica_id in hub.replicas.dead(every_other=every_other):
            requeued += sum(hub.requeue(t) for t in hub.replicas.forget(replica_id))
            log.warning("swept a dead manager replica", replica=replica_id)
        hub.replicas.unplaced()
        requeued += sum(hub.requeue(t) for t in hub.replicas.orphaned())
    if requeued:
        log.info("assignments nobody holds went back to the queue", tasks=requeued)
        hub.refresh_waiting_reasons()
        hub.queued()


def check_sessions(hub: Hub) -> None:
    """Close this replica's sessions that went silent past the lease."""
    for session in hub.leases.silent(list(hub.sessions.values())):
        log.warning("closing a silent delegate session", delegate=session.name,
                    lease=hub.settings.lease_ttl)
        session.send(Disconnect(reason=f"nothing received for longer than the lease "
                                       f"({hub.settings.lease_ttl:g}s)"))
        session.close(CLOSE_SILENT, "silent past the lease")
        hub.detach(session)


def check_leases(hub: Hub) -> None:
    """End running tasks past their lease or timeout (one replica at a time runs
    this: see manager.timers)."""
    for ex in hub.leases.expire():
        hub.send_to(ex.delegate_id, Abort(task_id=ex.task_id, reason=ex.abort_reason))


def leave(hub: Hub) -> None:
    """A clean stop: release what this replica holds now, not a TTL later."""
    try:
        with hub.db.tx():
            requeued = [t for t in hub.replicas.forget(hub.bus.replica_id)
                        if hub.requeue(t)]
            if requeued:
                hub.bus.publish("dispatch", here=False)
    except Exception:
        log.exception("could not release this replica's sessions at shutdown")


def close_all(hub: Hub, reason: str, code: int) -> None:
    for session in list(hub.sessions.values()):
        session.send(Disconnect(reason=reason, fatal=False))
        session.close(code, reason)
        hub.detach(session)
