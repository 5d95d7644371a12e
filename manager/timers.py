"""Timers that must fire once across replicas (lease expiry, dead-replica sweeps,
retention, instance sync): every replica ticks, and the one whose claim of the timer's
row succeeds runs it. The claim is one conditional upsert, so two replicas ticking at the
same moment cannot both win."""

from __future__ import annotations

from manager.db import Database, now


def due(db: Database, name: str, owner: str, every: float) -> bool:
    """True on exactly one replica once per ``every`` seconds: the timer ``name`` is due
    and this ``owner`` claimed its next period."""
    t = now()
    with db.tx():
        claimed = db.run(
            "INSERT INTO timers (name, owner, until) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
            "until = excluded.until WHERE timers.until <= ?", name, owner, t + every, t)
    return claimed == 1
