"""The store as first released: signals, proposals and their moves.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signals",
        sa.Column("signal_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False, index=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False, index=True),
        sa.Column("detected_at", sa.String(40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "proposals",
        sa.Column("proposal_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("solver_status", sa.String(16), nullable=False),
        sa.Column("move_count", sa.Integer(), nullable=False),
        sa.Column("imbalance_before", sa.Float(), nullable=False),
        sa.Column("imbalance_after", sa.Float(), nullable=False),
        sa.Column("event_time", sa.String(40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "moves",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("proposal_id", sa.String(64), sa.ForeignKey("proposals.proposal_id"), nullable=False, index=True),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("from_rep", sa.String(200), nullable=True),
        sa.Column("to_rep", sa.String(200), nullable=False),
        sa.Column("potential", sa.Float(), nullable=False),
        sa.Column("workload", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("moves")
    op.drop_table("proposals")
    op.drop_table("signals")
