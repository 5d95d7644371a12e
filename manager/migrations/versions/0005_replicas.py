"""Several manager replicas on one database (issue 14): which replicas are alive, which
replica holds each delegate's websocket, the timers one replica at a time runs, and the
console's sign-in links, signed-out sessions and page messages (any replica may serve the
next request).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TIME = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "replicas",
        sa.Column("replica_id", sa.Text, primary_key=True),
        sa.Column("hostname", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("heartbeat_at", TIME, nullable=False))
    op.create_table(
        "timers",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("until", TIME, nullable=False))
    op.create_table(
        "console_state",
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("expires_at", TIME, nullable=False))
    with op.batch_alter_table("delegates") as batch:
        batch.add_column(sa.Column("session_id", sa.Text))
        batch.add_column(sa.Column("replica_id", sa.Text))
    op.create_index("delegates_by_replica", "delegates", ["replica_id"])

