"""Owners as the worker last reported them, for checking approvals; stale moves left out.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "known_accounts",
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("rep_id", sa.String(200), nullable=True),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("owner_at", sa.String(40), nullable=True),
    )
    op.create_table(
        "known_reps",
        sa.Column("rep_id", sa.String(200), primary_key=True),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "stream_marks",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(64), nullable=False),
    )
    with op.batch_alter_table("proposals") as batch:
        batch.add_column(sa.Column("effective_at", sa.String(40), nullable=True))
    with op.batch_alter_table("moves") as batch:
        batch.add_column(sa.Column("excluded", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("moves") as batch:
        batch.drop_column("excluded")
    with op.batch_alter_table("proposals") as batch:
        batch.drop_column("effective_at")
    op.drop_table("stream_marks")
    op.drop_table("known_reps")
    op.drop_table("known_accounts")
