"""Columns wide enough for every id the contract allows; the outbox keyed by a hash.

Contract ids may be 200 characters (core/contract.py): a signal's subject is
``type:id``, a proposal touches any number of reps, and an alert key joins them all (nine
e-mail-address rep ids overflowed the old String(300)). Unbounded texts become Text; the
outbox's unique key is the SHA-256 of the alert key, which has no length limit.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()  # alerts.schema.alert_key_hash


def upgrade() -> None:
    with op.batch_alter_table("signals") as batch:
        batch.alter_column("subject", type_=sa.String(256), existing_nullable=False)
    with op.batch_alter_table("proposals") as batch:
        batch.alter_column("reps", type_=sa.Text(), existing_nullable=False, existing_server_default="")
    with op.batch_alter_table("moves") as batch:
        batch.alter_column("reason", type_=sa.Text(), existing_nullable=False)
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("key_hash", sa.String(64), nullable=True))
    deliveries = sa.table(
        "deliveries",
        sa.column("id", sa.Integer()),
        sa.column("alert_key", sa.Text()),
        sa.column("key_hash", sa.String(64)),
    )
    connection = op.get_bind()
    for row_id, key in connection.execute(sa.select(deliveries.c.id, deliveries.c.alert_key)).all():
        connection.execute(sa.update(deliveries).where(deliveries.c.id == row_id).values(key_hash=_key_hash(key)))
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("key_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("alert_key", type_=sa.Text(), existing_nullable=False)
        batch.drop_constraint("uq_deliveries_key_sink", type_="unique")
        batch.create_unique_constraint("uq_deliveries_key_hash_sink", ["key_hash", "sink"])


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("uq_deliveries_key_hash_sink", type_="unique")
        batch.alter_column("alert_key", type_=sa.String(300), existing_nullable=False)
        batch.create_unique_constraint("uq_deliveries_key_sink", ["alert_key", "sink"])
        batch.drop_column("key_hash")
    with op.batch_alter_table("moves") as batch:
        batch.alter_column("reason", type_=sa.String(500), existing_nullable=False)
    with op.batch_alter_table("proposals") as batch:
        batch.alter_column("reps", type_=sa.String(2000), existing_nullable=False, existing_server_default="")
    with op.batch_alter_table("signals") as batch:
        batch.alter_column("subject", type_=sa.String(200), existing_nullable=False)
