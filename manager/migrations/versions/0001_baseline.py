"""The schema as it was when migrations began (the manager's first release on SQLite).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Timestamps are seconds since the epoch: a double on both backends (PostgreSQL's REAL is
# a 4-byte float, which cannot hold today's time to the second).
TIME = sa.Float(precision=53)
# An id that grows for ever: 64-bit on PostgreSQL; on SQLite it must stay INTEGER to be
# the rowid (and so autoincrement).
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tokens_and_delegates() -> None:
    op.create_table(
        "tokens",
        sa.Column("token_id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME),
        sa.Column("key_sealed", sa.LargeBinary, nullable=False))
    op.create_table(
        "delegates",
        sa.Column("delegate_id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("instance_id", sa.Text, nullable=False),
        sa.Column("token_id", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("hostname", sa.Text, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("task_types", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("connected_at", TIME),
        sa.Column("last_heartbeat", TIME),
        sa.UniqueConstraint("account_id", "name", "instance_id"))


def _tasks() -> None:
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("selectors", sa.Text, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("secrets_sealed", sa.LargeBinary),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("timeout", TIME, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("assigned_at", TIME),
        sa.Column("started_at", TIME),
        sa.Column("ended_at", TIME),
        sa.Column("delegate_id", sa.Text),
        sa.Column("instance_id", sa.Text),
        sa.Column("session_id", sa.Text),
        sa.Column("last_seq", sa.Integer, nullable=False, server_default="0"),
        sa.Column("output", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("waiting_reason", sa.Text),
        sa.Column("log_bytes", sa.Integer, nullable=False, server_default="0"),
        sa.Column("truncated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("abort_reason", sa.Text),
        sa.Column("execution_id", sa.Text),
        sa.Column("step_id", sa.Text),
        sa.Column("late_result", sa.Integer, nullable=False, server_default="0"))
    op.create_index("tasks_status", "tasks", ["status", "created_at"])
    op.create_table(
        "entries",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.Text, nullable=False),
        sa.Column("seq", sa.Integer),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("unit", sa.Text),
        sa.Column("data", sa.Text, nullable=False),
        # Ids are never reused (a stream's cursor is an id): SQLite's AUTOINCREMENT.
        sqlite_autoincrement=True)
    op.create_index("entries_task", "entries", ["task_id", "id"])
    op.create_table(
        "units",
        sa.Column("task_id", sa.Text, primary_key=True),
        sa.Column("unit", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("started_at", sa.Text),
        sa.Column("ended_at", sa.Text),
        sa.Column("first_entry", SERIAL, nullable=False))


def _executions() -> None:
    op.create_table(
        "executions",
        sa.Column("execution_id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("service_key", sa.Text, nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("secrets_sealed", sa.LargeBinary),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("phase", sa.Text, nullable=False),
        sa.Column("runs", sa.Text, nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("waiting_reason", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("abort_requested", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rollback_requested", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("started_at", TIME),
        sa.Column("ended_at", TIME))


def _the_rest() -> None:
    op.create_table(
        "meta",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False))
    op.create_table(
        "idempotency",
        sa.Column("account_key", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("idem_key", sa.Text, primary_key=True),
        sa.Column("body_digest", sa.Text, nullable=False),
        sa.Column("resource_id", sa.Text, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("created_at", TIME, nullable=False))
    op.create_table(
        "files",
        sa.Column("account_id", sa.Text, primary_key=True),
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("updated_at", TIME, nullable=False))
    op.create_table(
        "seen_jwts",
        sa.Column("jti", sa.Text, primary_key=True),
        sa.Column("forget_after", TIME, nullable=False))
    op.create_index("seen_jwts_forget", "seen_jwts", ["forget_after"])


def upgrade() -> None:
    _tokens_and_delegates()
    _tasks()
    _executions()
    _the_rest()
