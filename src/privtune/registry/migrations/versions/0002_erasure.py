"""Erasure support: runs.status_reason (why a run must be retrained), datasets.superseded_by.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("status_reason", sa.String(512), nullable=True))
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("superseded_by", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("superseded_by")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("status_reason")
