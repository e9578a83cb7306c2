"""Usage metering (#15): a ledger of what runs, job attempts, deployments, stored files and
downloads used, with who and what for; the user on jobs and schedules; GPU figures per rank.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_records",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("notebook", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("cpu_seconds", sa.Float(), nullable=False),
        sa.Column("gpu_seconds", sa.Float(), nullable=False),
        sa.Column("gpu_util_seconds", sa.Float(), nullable=False),
        sa.Column("gpu_model", sa.String(200), nullable=True),
        sa.Column("wall_seconds", sa.Float(), nullable=False),
        sa.Column("peak_memory", sa.BigInteger(), nullable=False),
        sa.Column("gpu_peak_memory", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.Float(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_usage_records_started_at", "usage_records", ["started_at"])
    op.create_index("ix_usage_records_kind_subject", "usage_records", ["kind", "subject"])
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("user", sa.String(200), nullable=True))
    with op.batch_alter_table("schedules") as batch_op:
        batch_op.add_column(sa.Column("user", sa.String(200), nullable=True))
    with op.batch_alter_table("run_usage") as batch_op:
        batch_op.add_column(sa.Column("gpu_model", sa.String(200), nullable=True))
        batch_op.add_column(
            sa.Column("gpu_util_seconds", sa.Float(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("gpu_peak_memory", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("run_usage") as batch_op:
        batch_op.drop_column("gpu_peak_memory")
        batch_op.drop_column("gpu_util_seconds")
        batch_op.drop_column("gpu_model")
    with op.batch_alter_table("schedules") as batch_op:
        batch_op.drop_column("user")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("user")
    op.drop_index("ix_usage_records_kind_subject", table_name="usage_records")
    op.drop_index("ix_usage_records_started_at", table_name="usage_records")
    op.drop_table("usage_records")
