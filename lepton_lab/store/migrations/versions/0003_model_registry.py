"""The model registry: versions with lineage, their artifacts, aliases and evaluations.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 15:21:09.361413
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("framework", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("notebook", sa.Text(), nullable=True),
        sa.Column("notebook_sha256", sa.String(length=64), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("lineage", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("failed_formats", sa.JSON(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("mlflow_version", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
    )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_versions_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_model_versions_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_model_versions_run_id"), ["run_id"], unique=False)

    op.create_table(
        "model_aliases",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("name", "alias"),
    )
    with op.batch_alter_table("model_aliases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_aliases_version_id"), ["version_id"], unique=False
        )

    op.create_table(
        "model_artifacts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("file", sa.String(length=200), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("max_abs_diff", sa.Float(), nullable=True),
        sa.Column("tolerance", sa.Float(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version_id", "format", name="uq_model_artifacts_version_format"),
    )
    with op.batch_alter_table("model_artifacts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_artifacts_version_id"), ["version_id"], unique=False
        )

    op.create_table(
        "model_evaluations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("dataset", sa.Text(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("model_evaluations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_evaluations_job_id"), ["job_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_model_evaluations_version_id"), ["version_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("model_evaluations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_evaluations_version_id"))
        batch_op.drop_index(batch_op.f("ix_model_evaluations_job_id"))

    op.drop_table("model_evaluations")
    with op.batch_alter_table("model_artifacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_artifacts_version_id"))

    op.drop_table("model_artifacts")
    with op.batch_alter_table("model_aliases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_aliases_version_id"))

    op.drop_table("model_aliases")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_versions_run_id"))
        batch_op.drop_index(batch_op.f("ix_model_versions_name"))
        batch_op.drop_index(batch_op.f("ix_model_versions_job_id"))

    op.drop_table("model_versions")
