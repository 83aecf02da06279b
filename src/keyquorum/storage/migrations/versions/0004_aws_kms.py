"""aws kms: access keys (SigV4 credentials) and KMS aliases

Revision ID: 0004_aws_kms
Revises: 0003

Both tables start empty: existing keys are reachable from KMS by their id and by
``alias/<name>`` without any row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_aws_kms"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_keys",
        sa.Column("accessor", sa.String(length=64), nullable=False),
        sa.Column("access_key_id", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=True),
        sa.Column("policies", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("accessor"),
        sa.UniqueConstraint("access_key_id"),
    )
    op.create_table(
        "kms_aliases",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["keys.id"]),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("kms_aliases", schema=None) as batch_op:
        batch_op.create_index("ix_kms_aliases_key_id", ["key_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("kms_aliases", schema=None) as batch_op:
        batch_op.drop_index("ix_kms_aliases_key_id")
    op.drop_table("kms_aliases")
    op.drop_table("access_keys")
