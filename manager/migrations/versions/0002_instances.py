"""Instance sync (issue 12): the services a deployment tracks, their running tasks, and
the changes seen between syncs.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIME = sa.Float(precision=53)
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KEY = ("account_id", "region", "cluster", "service")


def _key() -> list[sa.Column[str]]:
    return [sa.Column(name, sa.Text, primary_key=True) for name in KEY]


def upgrade() -> None:
    op.create_table(
        "tracked_services", *_key(),
        sa.Column("reach", sa.Text, nullable=False),
        sa.Column("secrets_sealed", sa.LargeBinary),
        sa.Column("deployed_td", sa.Text, nullable=False),
        sa.Column("deployed_image", sa.Text),
        sa.Column("deployed_status", sa.Text, nullable=False),
        sa.Column("deployed_at", TIME, nullable=False),
        sa.Column("task_id", sa.Text),
        sa.Column("execution_id", sa.Text),
        sa.Column("state", sa.Text, nullable=False, server_default="pending"),
        sa.Column("reason", sa.Text),
        sa.Column("service_td", sa.Text),
        sa.Column("desired", sa.Integer),
        sa.Column("running", sa.Integer),
        sa.Column("synced_at", TIME))
    op.create_table(
        "instances", *_key(),
        sa.Column("task_arn", sa.Text, primary_key=True),
        sa.Column("revision", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False))
    op.create_table(
        "instance_changes",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("at", TIME, nullable=False),
        *[sa.Column(name, sa.Text, nullable=False) for name in KEY],
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sqlite_autoincrement=True)
    op.create_index("instance_changes_service", "instance_changes", [*KEY, "id"])
