"""custodian keys, encrypted share delivery and acknowledgement

Revision ID: 0006_custodian_keys
Revises: 0005_vault_transit

Adds ``custodian_keys`` (each custodian's public key, by name) and, on
``custodians``, the acknowledgement time and how the share was delivered
(``delivery``, ``recipient``, ``envelope``).

Handing a share out no longer counts as proof that its custodian has it: a row
whose only verification was its issue (``verified_by = 'issued'``) becomes
unverified and unacknowledged, so its share stops counting toward the quorum
margin until the custodian proves it. Rows verified by a proof or at unseal are
acknowledged as of that verification (the first one is not known). Plain
statements only (no dialect-specific SQL): SQLite and PostgreSQL run the same.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_custodian_keys"
down_revision = "0005_vault_transit"
branch_labels = None
depends_on = None

_NEW_COLUMNS = ("acknowledged_at", "delivery", "recipient", "envelope")


def upgrade() -> None:
    op.create_table(
        "custodian_keys",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=80), nullable=False),
        sa.Column("registered_at", sa.Float(), nullable=False),
        sa.Column("registered_by", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("custodians", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acknowledged_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("delivery", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("recipient", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("envelope", sa.Text(), nullable=True))
    _acknowledgements()


def _acknowledgements() -> None:
    """Issue is no longer proof of possession; a proof or an unseal is an acknowledgement."""
    rows = sa.table("custodians", sa.column("issued_at", sa.Float),
                    sa.column("last_verified_at", sa.Float),
                    sa.column("verified_by", sa.String), sa.column("acknowledged_at", sa.Float),
                    sa.column("delivery", sa.String))
    conn = op.get_bind()
    conn.execute(sa.update(rows).where(rows.c.verified_by == "issued")
                 .values(last_verified_at=None, verified_by=None))
    conn.execute(sa.update(rows).where(rows.c.verified_by.in_(("proof", "unseal")))
                 .values(acknowledged_at=rows.c.last_verified_at))
    conn.execute(sa.update(rows).where(rows.c.issued_at.is_not(None))
                 .values(delivery="plaintext"))


def downgrade() -> None:
    """Back to 0005: an unverified issued row counts as verified at its issue again."""
    rows = sa.table("custodians", sa.column("issued_at", sa.Float),
                    sa.column("last_verified_at", sa.Float),
                    sa.column("verified_by", sa.String))
    conn = op.get_bind()
    conn.execute(sa.update(rows).where(sa.and_(rows.c.verified_by.is_(None),
                                               rows.c.issued_at.is_not(None)))
                 .values(last_verified_at=rows.c.issued_at, verified_by="issued"))
    with op.batch_alter_table("custodians", schema=None) as batch_op:
        for column in reversed(_NEW_COLUMNS):
            batch_op.drop_column(column)
    op.drop_table("custodian_keys")
