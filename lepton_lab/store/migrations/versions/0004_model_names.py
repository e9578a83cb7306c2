"""Model names with the last version number each gave, so a deleted number is never given
again (a "v3" in a log names one model). Existing names start from their highest version.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_names",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute(
        "INSERT INTO model_names (name, last_version, created_at) "
        "SELECT name, MAX(version), MIN(created_at) FROM model_versions GROUP BY name"
    )


def downgrade() -> None:
    op.drop_table("model_names")
