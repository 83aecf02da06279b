"""audit chains per node, braided checkpoints

Revision ID: 0007_audit_nodes
Revises: 0006_custodian_keys

Until now every node appended to one chain through one ``audit_head`` row, which
serialized appends across the cluster. From here each node appends to a chain of
its own (docs/CLUSTER.md, "One audit trail across nodes"):

- ``audit_nodes``: the node registry (id, name, when registered, and the first
  braid that must name it);
- ``audit_records.node`` and ``.seq``: the chain a record belongs to and its place
  in it (``id`` stays the global key that listing pages by);
- ``audit_head``: one row per node, keyed by node id (the table is unchanged);
- ``audit_checkpoints.node``, ``.braid``, ``.previous``: a braid is one signed
  statement naming every node's head, stored as one row per node.

The existing chain becomes the chain of node 1 *as it is*: ``seq`` is filled from
``id`` (the place each record was linked at), no link is recomputed, the head row
1 was already keyed 1, and the old checkpoints are node 1's. So an export or a
backup made before this migration verifies unchanged, and so does the upgraded
store. On PostgreSQL the record id sequence, never used while the appender set ids
itself, is moved past the stored ids, since ids now come from it.

Plain statements plus one PostgreSQL-only ``setval``: SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_audit_nodes"
down_revision = "0006_custodian_keys"
branch_labels = None
depends_on = None

LEGACY_NODE_NAME = "default"
"""The registry name of node 1: SQLite's one node, and the chain a store had before."""


def upgrade() -> None:
    op.create_table(
        "audit_nodes",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("registered_at", sa.Float(), nullable=False),
        sa.Column("first_braid", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_audit_nodes_name"),
    )
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("node", sa.Integer(), nullable=False,
                                      server_default="1"))
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
    records = sa.table("audit_records", sa.column("id", sa.BigInteger),
                       sa.column("seq", sa.BigInteger), sa.column("time", sa.Float))
    conn = op.get_bind()
    conn.execute(sa.update(records).values(seq=records.c.id))
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_index("ix_audit_node_seq", ["node", "seq"], unique=True)
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("node", sa.Integer(), nullable=False,
                                      server_default="1"))
        batch_op.add_column(sa.Column("braid", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("previous", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_audit_checkpoints_braid", ["braid"], unique=False)
    _register_existing_chain(conn, records)
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(
            "SELECT setval(pg_get_serial_sequence('audit_records', 'id'), "
            "COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM audit_records"))


def _register_existing_chain(conn: sa.Connection, records: sa.TableClause) -> None:
    """A store whose chain exists (its head row 1) gets node 1 in the registry."""
    head = sa.table("audit_head", sa.column("id", sa.Integer))
    if conn.execute(sa.select(head.c.id).where(head.c.id == 1)).first() is None:
        return  # a new store: the first node registers itself when it starts
    nodes = sa.table("audit_nodes", sa.column("id", sa.Integer), sa.column("name", sa.String),
                     sa.column("registered_at", sa.Float),
                     sa.column("first_braid", sa.BigInteger))
    first = conn.execute(sa.select(sa.func.min(records.c.time))).scalar()
    conn.execute(sa.insert(nodes).values(id=1, name=LEGACY_NODE_NAME,
                                         registered_at=float(first or 0.0), first_braid=1))


def downgrade() -> None:
    """Back to one chain: refused while any node other than 1 holds records or a braid
    exists (their records cannot be placed in node 1's chain without relinking it)."""
    conn = op.get_bind()
    others = conn.execute(sa.text(
        "SELECT count(*) FROM audit_records WHERE node <> 1")).scalar()
    braids = conn.execute(sa.text(
        "SELECT count(*) FROM audit_checkpoints WHERE braid IS NOT NULL")).scalar()
    if others or braids:
        raise RuntimeError("cannot go back to one audit chain: other nodes' records or "
                           "braided checkpoints exist")
    conn.execute(sa.text("DELETE FROM audit_head WHERE id <> 1"))
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_checkpoints_braid")
        batch_op.drop_column("previous")
        batch_op.drop_column("braid")
        batch_op.drop_column("node")
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_node_seq")
        batch_op.drop_column("seq")
        batch_op.drop_column("node")
    op.drop_table("audit_nodes")
