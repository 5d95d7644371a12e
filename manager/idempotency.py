"""``Idempotency-Key`` on submissions: a retried request never creates a second task or
execution.

A key is scoped to the account the submission names (``*`` when it names none) and to
the kind of record (task, execution). The same key with the same body answers what the
first request answered; with a different body it is a :class:`KeyReused` (409). The body
is remembered only as an HMAC digest keyed from the manager's secret key, so submitted
secrets are not kept in any guessable form. Keys are pruned with the finished records'
retention."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from manager.db import Database, dumps, loads, now
from manager.errors import ManagerError
from manager.keys import SecretBox

MAX_KEY_LENGTH = 200


class KeyReused(ManagerError):
    """The key was used before with a different body."""


class BadKey(ManagerError):
    """The header's value is not a usable key."""


class Idempotency:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self._digest_key = _digest_key(db, box)

    @staticmethod
    def check_key(key: str) -> str:
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise BadKey(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable "
                         "characters (a UUID is a good choice)")
        return key

    def digest(self, body: Any) -> str:
        return hmac.new(self._digest_key, dumps(body).encode(), hashlib.sha256).hexdigest()

    def replay(self, account: str | None, kind: str, key: str,
               digest: str) -> dict[str, Any] | None:
        """The first answer given for this key, or None if the key is new. Raises
        :class:`KeyReused` when the key came with another body."""
        row = self.db.one("SELECT body_digest, resource_id, answer FROM idempotency WHERE "
                          "account_key = ? AND kind = ? AND idem_key = ?",
                          account or "*", kind, key)
        if row is None:
            return None
        if not hmac.compare_digest(row["body_digest"], digest):
            raise KeyReused(f"Idempotency-Key {key!r} was already used for a different "
                            f"{kind} submission ({kind} {row['resource_id']}); use a new key "
                            "for a new request")
        answer: dict[str, Any] = loads(row["answer"])
        return answer

    def remember(self, account: str | None, kind: str, key: str, digest: str,
                 resource_id: str, answer: dict[str, Any]) -> None:
        """Record the answer; call inside the transaction that created the record."""
        self.db.run("INSERT INTO idempotency (account_key, idem_key, kind, body_digest, "
                    "resource_id, answer, created_at) VALUES (?,?,?,?,?,?,?)",
                    account or "*", key, kind, digest, resource_id, dumps(answer), now())


def _digest_key(db: Database, box: SecretBox) -> bytes:
    """A random key made once per database, stored sealed like every other secret."""
    with db.tx():
        # Replicas starting together on a new database each offer a key; the first one
        # stored is the one every replica then reads.
        db.run("INSERT INTO meta (name, value) VALUES ('idempotency_digest_key', ?) "
               "ON CONFLICT (name) DO NOTHING", box.seal(secrets.token_hex(32)))
        row = db.one("SELECT value FROM meta WHERE name = 'idempotency_digest_key'")
        key = str(box.open(row["value"]))
    return bytes.fromhex(key)


def prune_keys(db: Database, cutoff: float) -> int:
    return db.run("DELETE FROM idempotency WHERE created_at < ?", cutoff)
