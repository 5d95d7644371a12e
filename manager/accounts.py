"""Which account a submitted task or execution belongs to.

A task's account decides whose delegates may run it, with its secrets. A manager that
serves several accounts cannot guess it, so it must be given; a manager that serves one
(tokens exist for one account) defaults to it. With no token yet there is no account to
name, and the task keeps none until it is given one."""

from __future__ import annotations

from manager.db import Database
from manager.errors import ManagerError


class AccountRequired(ManagerError):
    """Submission without ``account_id`` on a manager serving several accounts (422)."""


def served_accounts(db: Database) -> list[str]:
    rows = db.all("SELECT DISTINCT account_id FROM tokens WHERE revoked_at IS NULL "
                  "ORDER BY account_id")
    return [str(r["account_id"]) for r in rows]


def account_for(db: Database, given: str | None, what: str) -> str | None:
    """``given``, or the one account this manager serves; :class:`AccountRequired` when
    it serves several."""
    if given:
        return given
    accounts = served_accounts(db)
    if len(accounts) > 1:
        shown = ", ".join(accounts[:10]) + (", ..." if len(accounts) > 10 else "")
        raise AccountRequired(
            f"account_id: this manager serves {len(accounts)} accounts ({shown}), so the "
            f"{what} must say which one runs it: set account_id in the file, or pass "
            "--account (default: $ACCOUNT_ID) to the delegate command")
    return accounts[0] if accounts else None
