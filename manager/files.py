"""The manager's file store: files by account and path (``account:/ECS Tutorial/x.yaml``).

Paths are names in a table, never on disk, but they are still checked: a path that
tries to escape (``..``), is absolute without the ``account:`` scope, or holds a NUL is
refused, so a path means the same thing to every client."""

from __future__ import annotations

import hashlib
from typing import Any

from manager.db import Database, now

SCOPE = "account:"


class BadPath(ValueError):
    pass


def normalise(path: str) -> str:
    """``account:/a/b.yaml``, ``/a/b.yaml`` after the scope, or ``a/b.yaml`` -> ``a/b.yaml``."""
    raw = path
    if "\x00" in raw:
        raise BadPath("path contains a NUL character")
    if raw.startswith(SCOPE):
        raw = raw[len(SCOPE):]
        if not raw.startswith("/"):
            raise BadPath(f"{path!r}: write {SCOPE}/folder/file")
        raw = raw[1:]
    elif raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":"):
        raise BadPath(f"{path!r} is absolute; write {SCOPE}/folder/file or folder/file")
    parts = raw.replace("\\", "/").split("/")
    if any(p == ".." for p in parts):
        raise BadPath(f"{path!r} contains '..'; paths cannot leave the file store")
    parts = [p for p in parts if p not in ("", ".")]
    if not parts:
        raise BadPath(f"{path!r} names no file")
    return "/".join(parts)


def display(path: str) -> str:
    return f"{SCOPE}/{path}"


class FileStore:
    def __init__(self, db: Database, max_bytes: int) -> None:
        self.db = db
        self.max_bytes = max_bytes

    def put(self, account_id: str, path: str, content: bytes) -> dict[str, Any]:
        key = normalise(path)
        if len(content) > self.max_bytes:
            raise ValueError(f"file is {len(content)} bytes; the limit is {self.max_bytes}")
        digest = hashlib.sha256(content).hexdigest()
        t = now()
        with self.db.tx():
            self.db.run("INSERT INTO files (account_id, path, content, size, sha256, "
                        "updated_at) VALUES (?,?,?,?,?,?) ON CONFLICT (account_id, path) DO "
                        "UPDATE SET content = excluded.content, size = excluded.size, "
                        "sha256 = excluded.sha256, updated_at = excluded.updated_at",
                        account_id, key, content, len(content), digest, t)
        return {"account_id": account_id, "path": display(key), "size": len(content),
                "sha256": digest, "updated_at": t}

    def get(self, account_id: str, path: str) -> bytes | None:
        row = self.db.one("SELECT content FROM files WHERE account_id = ? AND path = ?",
                          account_id, normalise(path))
        return None if row is None else bytes(row["content"])

    def list(self, account_id: str | None, prefix: str = "") -> list[dict[str, Any]]:
        key = normalise(prefix) if prefix.strip("/").removeprefix(SCOPE).strip("/") else ""
        rows = self.db.all("SELECT account_id, path, size, sha256, updated_at FROM files "
                           "WHERE (? IS NULL OR account_id = ?) ORDER BY account_id, path",
                           account_id, account_id)
        return [{"account_id": r["account_id"], "path": display(r["path"]), "size": r["size"],
                 "sha256": r["sha256"], "updated_at": r["updated_at"]}
                for r in rows if not key or r["path"] == key or r["path"].startswith(key + "/")]

    def delete(self, account_id: str, path: str) -> bool:
        return self.db.run("DELETE FROM files WHERE account_id = ? AND path = ?",
                           account_id, normalise(path)) > 0
