"""Stored definitions (issue 11): services, environments, infrastructure definitions and
overrides, a revision per change; which revisions each execution ran with, and its
effective inputs.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TIME = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "definitions",
        sa.Column("account_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("revision", sa.Integer, primary_key=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("deleted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", TIME, nullable=False))
    op.create_table(
        "execution_definitions",
        sa.Column("execution_id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False))
    op.create_index("execution_definitions_by_name", "execution_definitions",
                    ["account_id", "kind", "name"])
    op.create_table(
        "execution_inputs",
        sa.Column("execution_id", sa.Text, primary_key=True),
        sa.Column("effective", sa.Text, nullable=False))
