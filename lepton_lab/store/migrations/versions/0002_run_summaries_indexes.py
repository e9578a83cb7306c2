"""Indexes for run summaries: a run's highest step and the newest value of each metric.

``Store.run_summaries`` (the sidebar's Runs section) reads them from a few index entries per
run and metric name instead of every value a run reported.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run_metrics") as batch_op:
        batch_op.create_index("ix_run_metrics_run_id_step", ["run_id", "step"])
        batch_op.create_index("ix_run_metrics_run_id_name_id", ["run_id", "name", "id"])


def downgrade() -> None:
    with op.batch_alter_table("run_metrics") as batch_op:
        batch_op.drop_index("ix_run_metrics_run_id_name_id")
        batch_op.drop_index("ix_run_metrics_run_id_step")
