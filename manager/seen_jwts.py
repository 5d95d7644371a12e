"""Replay protection that survives a restart: every delegate JWT id the manager accepted,
kept in the database until that JWT could no longer be accepted anyway."""

from __future__ import annotations

from manager.db import Database, now
from wire import auth

# Its table is in the baseline migration (manager/migrations/versions/0001).


class SeenJwtIds:
    def __init__(self, db: Database) -> None:
        self.db = db

    def check(self, jti: str, exp: float) -> None:
        """Record ``jti``; raise :class:`auth.AuthError` if it was seen before."""
        t = now()
        # The last moment verify() could accept this JWT: past it, the id can go.
        forget_after = max(exp + auth.CLOCK_SKEW, t + auth.MAX_JWT_WINDOW)
        with self.db.tx():
            self.db.run("DELETE FROM seen_jwts WHERE forget_after < ?", t)
            try:
                self.db.run("INSERT INTO seen_jwts (jti, forget_after) VALUES (?, ?)",
                            jti, forget_after)
            except self.db.IntegrityError:
                raise auth.AuthError("credential already used (replay refused)") from None
