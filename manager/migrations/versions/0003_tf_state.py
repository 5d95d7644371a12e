"""Terraform state kept by the manager (manager/tf_state.py): one row of state and lock
per (account, provisioner identifier, workspace), and the sealed records of applies,
attempts and saved plans that terraform.rollback and a plan step's apply read back.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TIME = sa.Float(precision=53)
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tf_states",
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("provisioner", sa.Text, nullable=False),
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("state_sealed", sa.LargeBinary),
        sa.Column("updated_at", TIME),
        sa.Column("lock_id", sa.Text),
        sa.Column("lock_info", sa.Text),
        sa.Column("lock_task_id", sa.Text),
        sa.Column("locked_at", TIME),
        sa.PrimaryKeyConstraint("account_id", "provisioner", "workspace"))
    op.create_table(
        "tf_records",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("provisioner", sa.Text, nullable=False),
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("task_id", sa.Text, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("body_sealed", sa.LargeBinary, nullable=False),
        # A rollback names a record by id: ids are never reused.
        sqlite_autoincrement=True)
    op.create_index("tf_records_by_key", "tf_records",
                    ["account_id", "provisioner", "workspace", "kind", "id"])

