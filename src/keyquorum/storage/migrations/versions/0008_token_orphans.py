"""tokens.orphan: a token that does not die with the token that made it

Revision ID: 0008_token_orphans
Revises: 0007_audit_nodes

Revoking a token revokes every token it minted, found by ``created_by`` (review
F13). A root holder may now mint an *orphan* instead (``POST /v1/auth/tokens``
with ``orphan: true``): the revocation walk skips it, so the root token can be
revoked after setup without taking the operators' tokens with it. ``created_by``
keeps naming the minter (accountability); the new flag alone cuts the lineage.

Every existing token stays a child (``false``), exactly as it was revoked before.
One added column: SQLite (batch) and PostgreSQL alike.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_token_orphans"
down_revision = "0007_audit_nodes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("orphan", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    """Orphans become children of their minter again: revoking it would revoke them."""
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_column("orphan")
