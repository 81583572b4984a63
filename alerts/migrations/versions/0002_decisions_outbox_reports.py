"""Decisions and their audit log, the alert outbox, weekly reports.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("proposals") as batch:
        batch.add_column(sa.Column("reps", sa.String(2000), nullable=False, server_default=""))
        batch.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("decided_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("decision_comment", sa.Text(), nullable=True))
        batch.add_column(sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("superseded_by", sa.String(64), nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("proposal_id", sa.String(64), nullable=True, index=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alert_key", sa.String(300), nullable=False),
        sa.Column("sink", sa.String(32), nullable=False),
        sa.Column("alert", sa.JSON(), nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False, index=True),
        sa.Column("pending", sa.Boolean(), nullable=False, index=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.Column("sent_alert", sa.JSON(), nullable=True),
        sa.UniqueConstraint("alert_key", "sink", name="uq_deliveries_key_sink"),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("week", sa.String(10), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("proposal_ids", sa.JSON(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("reports")
    op.drop_table("deliveries")
    op.drop_table("audit_log")
    with op.batch_alter_table("proposals") as batch:
        for column in ("superseded_by", "applied_at", "decision_comment", "decided_by", "decided_at", "reps"):
            batch.drop_column(column)
