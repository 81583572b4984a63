"""Alignment history: a dated snapshot of account -> rep (district, segment) per approval and
apply, and a baseline.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alignment_snapshots",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("proposal_id", sa.String(64), nullable=True, index=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("reps", sa.Integer(), nullable=False),
    )
    op.create_table(
        "alignment_accounts",
        sa.Column("snapshot_id", sa.Integer(), sa.ForeignKey("alignment_snapshots.id"), primary_key=True),
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("rep_id", sa.String(200), nullable=True),
        sa.Column("district", sa.Text(), nullable=True),
        sa.Column("segment", sa.Text(), nullable=True),
        sa.Column("rep_at", sa.String(40), nullable=True),
    )
    # Erasure finds an account's rows in every snapshot (the primary key leads with the snapshot).
    op.create_index("ix_alignment_accounts_account_id", "alignment_accounts", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_alignment_accounts_account_id", table_name="alignment_accounts")
    op.drop_table("alignment_accounts")
    op.drop_table("alignment_snapshots")
