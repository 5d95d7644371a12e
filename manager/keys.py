"""The manager's own secrets: the admin token and the key that encrypts task secrets
(and the token-derived keys) at rest. Each comes from the environment or from a file
next to the database that the manager creates readable only by its user."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


class SecretKeyError(Exception):
    """A key could not be loaded; the message says which and what to do."""


def _read_or_create(path: Path, make: str) -> tuple[str, bool]:
    """Return (value, created). The file is created 0600 atomically (O_EXCL)."""
    try:
        return path.read_text().strip(), False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip(), False
    with os.fdopen(fd, "w") as fh:
        fh.write(make + "\n")
    return make, True


def admin_token_file(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".admin-token")


def secret_key_file(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".secret-key")


def load_admin_token(db_path: Path, configured: str | None) -> tuple[str, Path | None]:
    """Return (token, file it was read from or written to; None when from the env)."""
    value = configured or os.environ.get("MANAGER_ADMIN_TOKEN")
    if value:
        return value.strip(), None
    path = admin_token_file(db_path)
    token, _ = _read_or_create(path, "adm_" + secrets.token_urlsafe(32))
    return token, path


def tokens_equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class SecretBox:
    """Fernet (AES-128-CBC + HMAC-SHA256) around JSON values."""

    def __init__(self, key_material: str) -> None:
        try:
            self._fernet = Fernet(key_material.encode())
        except ValueError:
            # Any passphrase works: stretch it to a Fernet key.
            digest = hashlib.sha256(key_material.encode()).digest()
            self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    @classmethod
    def load(cls, db_path: Path, configured: str | None) -> SecretBox:
        value = configured or os.environ.get("MANAGER_SECRET_KEY")
        if not value:
            value, _ = _read_or_create(secret_key_file(db_path), Fernet.generate_key().decode())
        return cls(value)

    def seal(self, value: Any) -> bytes:
        return self._fernet.encrypt(json.dumps(value).encode())

    def open(self, blob: bytes | None) -> Any:
        if blob is None:
            return None
        try:
            return json.loads(self._fernet.decrypt(blob))
        except InvalidToken as exc:
            raise SecretKeyError(
                "stored secrets cannot be decrypted: MANAGER_SECRET_KEY (or the key file "
                "next to the database) is not the key they were written with"
            ) from exc
