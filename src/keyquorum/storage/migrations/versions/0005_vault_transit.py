"""vault transit: per-key settings out of the key's labels

Revision ID: 0005_vault_transit
Revises: 0004_aws_kms

``deletion_allowed`` and ``min_encryption_version`` were kept as the labels
``vault-transit/deletion-allowed`` and ``vault-transit/min-encryption-version``,
where anyone with the native ``update`` could edit them and they showed as user
metadata. This moves them, once, into ``vault_transit_keys`` and strips them from
the labels (keys with neither label get no row: they answer Vault's defaults).
"""

from __future__ import annotations

import json
import time

import sqlalchemy as sa
from alembic import op

revision = "0005_vault_transit"
down_revision = "0004_aws_kms"
branch_labels = None
depends_on = None

_DELETION_ALLOWED = "vault-transit/deletion-allowed"
_MIN_ENCRYPTION_VERSION = "vault-transit/min-encryption-version"


def upgrade() -> None:
    table = op.create_table(
        "vault_transit_keys",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("deletion_allowed", sa.Boolean(), nullable=False),
        sa.Column("min_encryption_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["keys.id"]),
        sa.PrimaryKeyConstraint("key_id"),
    )
    _move_labels(table)


def _move_labels(table: sa.Table) -> None:
    """Existing transit settings: labels → rows, and the labels removed."""
    conn = op.get_bind()
    keys = sa.table("keys", sa.column("id", sa.String), sa.column("labels", sa.Text))
    now = time.time()
    for key_id, text in conn.execute(sa.select(keys.c.id, keys.c.labels)).all():
        try:
            labels = json.loads(text or "{}")
        except ValueError:
            continue
        if not isinstance(labels, dict) or not (
                _DELETION_ALLOWED in labels or _MIN_ENCRYPTION_VERSION in labels):
            continue
        allowed = labels.pop(_DELETION_ALLOWED, None) == "true"
        minimum = str(labels.pop(_MIN_ENCRYPTION_VERSION, "0"))
        conn.execute(sa.insert(table), {
            "key_id": key_id, "deletion_allowed": allowed,
            "min_encryption_version": int(minimum) if minimum.isdigit() else 0,
            "updated_at": now})
        conn.execute(sa.update(keys).where(keys.c.id == key_id)
                     .values(labels=json.dumps(labels, sort_keys=True)))


def downgrade() -> None:
    """Rows back into the labels 0004 read them from, then the table goes."""
    conn = op.get_bind()
    keys = sa.table("keys", sa.column("id", sa.String), sa.column("labels", sa.Text))
    rows = sa.table("vault_transit_keys", sa.column("key_id", sa.String),
                    sa.column("deletion_allowed", sa.Boolean),
                    sa.column("min_encryption_version", sa.Integer))
    for key_id, allowed, minimum in conn.execute(sa.select(
            rows.c.key_id, rows.c.deletion_allowed, rows.c.min_encryption_version)).all():
        text = conn.execute(sa.select(keys.c.labels).where(keys.c.id == key_id)).scalar()
        labels = json.loads(text or "{}")
        labels[_DELETION_ALLOWED] = "true" if allowed else "false"
        labels[_MIN_ENCRYPTION_VERSION] = str(minimum)
        conn.execute(sa.update(keys).where(keys.c.id == key_id)
                     .values(labels=json.dumps(labels, sort_keys=True)))
    op.drop_table("vault_transit_keys")
