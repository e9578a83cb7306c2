"""Secrets of jobs and schedules: their names in clear and their values as one Fernet token
(``lepton_lab.store.secrets``). Existing jobs and schedules have none.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = ("jobs", "schedules")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            # the server default fills the rows that exist; the models give new rows theirs
            batch_op.add_column(
                sa.Column("secret_names", sa.JSON(), nullable=False, server_default="[]")
            )
            batch_op.add_column(sa.Column("secrets", sa.Text(), nullable=True))
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column("secret_names", server_default=None)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("secrets")
            batch_op.drop_column("secret_names")
