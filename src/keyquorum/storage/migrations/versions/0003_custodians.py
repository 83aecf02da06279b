"""custodians: who holds each share, drills, and proof challenges

Revision ID: 0003
Revises: 0002

Rows for a store initialized before this migration are created by the service
on first use (from the stored Shamir seal), with no issue or verification time:
their custodians show as never verified until they prove their shares.
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
        "custodians",
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.Float(), nullable=True),
        sa.Column("last_verified_at", sa.Float(), nullable=True),
        sa.Column("verified_by", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("generation", "index"),
    )
    op.create_table(
        "custodian_challenges",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("custodian_index", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("challenge", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("custodian_challenges", schema=None) as batch_op:
        batch_op.create_index("ix_custodian_challenges_custodian", ["custodian_index"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("custodian_challenges", schema=None) as batch_op:
        batch_op.drop_index("ix_custodian_challenges_custodian")
    op.drop_table("custodian_challenges")
    op.drop_table("custodians")
