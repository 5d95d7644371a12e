"""The transaction discipline of the manager's one SQLite connection (issue 16): nested
transactions of one caller join, a transaction entered from elsewhere while one is open
is refused, and follow-ups run only after a commit."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from manager.db import SqliteDatabase as Database
from manager.db import TransactionError


def test_nested_transactions_of_one_caller_join_and_commit_once(tmp_path: Path) -> None:
    db = Database(tmp_path / "m.db")
    done: list[str] = []
    with db.tx():
        db.run("INSERT INTO meta (name, value) VALUES ('a', x'00')")
        with db.tx():
            db.run("INSERT INTO meta (name, value) VALUES ('b', x'00')")
            db.after_commit(lambda: done.append("sent"))
        assert done == []  # the outer transaction has not committed yet
    assert done == ["sent"]
    assert [r["name"] for r in db.all("SELECT name FROM meta ORDER BY name")] == ["a", "b"]


def test_a_rollback_drops_what_was_to_follow(tmp_path: Path) -> None:
    db = Database(tmp_path / "m.db")
    done: list[str] = []
    with pytest.raises(RuntimeError), db.tx():
        db.run("INSERT INTO meta (name, value) VALUES ('a', x'00')")
        db.after_commit(lambda: done.append("sent"))
        raise RuntimeError("fault")
    assert done == [] and db.all("SELECT * FROM meta") == []
    db.after_commit(lambda: done.append("now"))  # no transaction open: at once
    assert done == ["now"]


def test_a_transaction_from_another_thread_is_refused(tmp_path: Path) -> None:
    db = Database(tmp_path / "m.db")
    errors: list[BaseException] = []

    def other() -> None:
        try:
            with db.tx():
                pass
        except TransactionError as exc:
            errors.append(exc)

    with db.tx():
        thread = threading.Thread(target=other)
        thread.start()
        thread.join(10)
    assert len(errors) == 1 and "another one is open" in str(errors[0])
