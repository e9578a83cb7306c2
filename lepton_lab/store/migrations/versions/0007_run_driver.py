"""Runs name the process that drives them (``host:pid``), so that a run whose driver was killed
(a kernel, a job, a script) is failed instead of showing as running for ever. Runs from before
have none and are left as they are.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch_op:
        batch_op.add_column(sa.Column("driver", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch_op:
        batch_op.drop_column("driver")
