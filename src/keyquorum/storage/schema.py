"""The storage schema, in SQLAlchemy Core, dialect-neutral.

What is stored: ids, names, metadata and ciphertext. Key material and the
barrier keyring are only ever stored encrypted (by the barrier or the seal set);
tokens only as hashes. Types are kept to those SQLite and PostgreSQL share
(String, Text, Integer, BigInteger, Boolean, LargeBinary, Float) so moving to
PostgreSQL is configuration, not a rewrite. Times are stored as UTC epoch
seconds (Float) to keep comparisons dialect-neutral.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

# Seal configuration, the wrapped root key and the encrypted barrier keyring:
# small named entries, each a blob.
system_entries = Table(
    "system_entries",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("value", LargeBinary, nullable=False),
    Column("updated_at", Float, nullable=False),
)

keys = Table(
    "keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("spec", String(32), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("state", String(24), nullable=False),
    Column("primary_version", Integer, nullable=False),
    Column("min_decrypt_version", Integer, nullable=False, default=1),
    Column("owner", String(256), nullable=True),
    Column("description", Text, nullable=True),
    Column("labels", Text, nullable=False, default="{}"),
    Column("origin", String(16), nullable=False),
    Column("exportable", Boolean, nullable=False, default=False),
    Column("rotation_period", BigInteger, nullable=True),
    Column("next_rotation", Float, nullable=True),
    Column("usage_limit", BigInteger, nullable=True),
    Column("deletion_window_days", Integer, nullable=False),
    Column("destroy_at", Float, nullable=True),
    Column("state_before_deletion", String(24), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(64), nullable=True),
    Column("updated_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=True),
    # Seconds a version may stay primary (NIST SP 800-57 crypto-period); NULL: spec default.
    Column("crypto_period", BigInteger, nullable=True),
    # Optimistic concurrency: every change bumps it and is conditional on it, so two
    # writers can never both move the primary version.
    Column("revision", BigInteger, nullable=False, default=1),
)
Index("ix_keys_state", keys.c.state)

key_versions = Table(
    "key_versions",
    metadata,
    Column("key_id", String(36), ForeignKey("keys.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("state", String(24), nullable=False),
    Column("state_reason", String(64), nullable=True),
    # Barrier ciphertext of the key material; NULL once destroyed.
    Column("material", LargeBinary, nullable=True),
    Column("public_key", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("activated_at", Float, nullable=True),
    Column("deactivated_at", Float, nullable=True),
    Column("destroyed_at", Float, nullable=True),
    # Protect operations reserved in blocks: a crash can only over-count.
    Column("protect_reserved", BigInteger, nullable=False, default=0),
    Column("last_used_at", Float, nullable=True),
)

tokens = Table(
    "tokens",
    metadata,
    Column("accessor", String(64), primary_key=True),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("name", String(128), nullable=True),
    Column("policies", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(64), nullable=True),
    Column("expires_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    # Made with ``orphan``: revoking ``created_by`` does not revoke it (migration 0008).
    Column("orphan", Boolean, nullable=False, server_default=false()),
)

policies = Table(
    "policies",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("rules", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

audit_records = Table(
    "audit_records",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("time", Float, nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("identity", String(64), nullable=True),
    Column("operation", String(32), nullable=False),
    Column("key", String(128), nullable=True),
    Column("key_version", Integer, nullable=True),
    Column("outcome", String(8), nullable=False),
    Column("error_code", String(32), nullable=True),
    Column("client", String(64), nullable=True),
    Column("detail", Text, nullable=True),
    # HMAC'd encryption context ({hmac(name): hmac(value)}, JSON): searchable, not readable.
    Column("context", Text, nullable=True),
    # SHA-256 chain link (hex): hash of the previous link and this record's canonical form.
    Column("chain_hash", String(64), nullable=True),
    # The node whose chain holds the record, and its place there (1, 2, 3, ...). ``id``
    # is the global key listings page by; ``seq`` is what the chain links.
    Column("node", Integer, nullable=False, server_default="1"),
    Column("seq", BigInteger, nullable=False),
)
Index("ix_audit_time", audit_records.c.time)
Index("ix_audit_key", audit_records.c.key)
Index("ix_audit_node_seq", audit_records.c.node, audit_records.c.seq, unique=True)

# The nodes that append to the audit trail, each to a chain of its own; the row is
# made before the node's first record. ``first_braid``: the first braided checkpoint
# that must name the node (one more than the newest braid when it registered).
audit_nodes = Table(
    "audit_nodes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(255), nullable=False),
    Column("registered_at", Float, nullable=False),
    Column("first_braid", BigInteger, nullable=False),
    UniqueConstraint("name", name="uq_audit_nodes_name"),
)

# The newest link of each node's audit chain, one row per node (``id`` is the node).
# Appending updates it first, which serializes one node's appenders (row lock /
# SQLite write lock) and lets a cut tail be noticed: the head names a record that is
# no longer there.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("chain_hash", String(64), nullable=False),
)

# Signed statements "the chain's record ``seq`` has hash ``chain_hash``", made at an
# interval and on seal with the audit signing key (Ed25519, in the barrier).
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("seq", BigInteger, nullable=False),
    Column("chain_hash", String(64), nullable=False),
    Column("time", Float, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
    # A braid (``braid`` set): one signed statement naming every node's head, stored as
    # one row per node, all with the same signature; ``previous`` is the hash of the
    # braid before it. Rows with ``braid`` NULL are single-chain checkpoints of node 1.
    Column("node", Integer, nullable=False, server_default="1"),
    Column("braid", BigInteger, nullable=True),
    Column("previous", String(64), nullable=True),
)
Index("ix_audit_checkpoints_braid", audit_checkpoints.c.braid)

# Dual control: a guarded request waiting for (or holding) M approvals. The request
# itself is kept only as a hash of its exact parameters plus a non-secret summary.
approvals = Table(
    "approvals",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("operation", String(32), nullable=False),
    Column("key", String(128), nullable=True),
    Column("requester", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("summary", Text, nullable=False),
    Column("required", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("decisions", Text, nullable=False, default="[]"),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("decided_at", Float, nullable=True),
    Column("consumed_at", Float, nullable=True),
)
Index("ix_approvals_state", approvals.c.state)

# Who holds each unseal share of a seal generation (a rekey starts a new generation),
# and when possession was shown: by a proof of possession or by submitting the share
# at unseal (handing a share out is not proof that anyone received it). The first
# such proof is the custodian's acknowledgement. A share sealed to its custodian's
# key (``delivery`` encrypted) keeps its envelope here for the custodian to fetch:
# a ciphertext only that custodian's private key opens. Shares are never stored.
custodians = Table(
    "custodians",
    metadata,
    Column("generation", Integer, primary_key=True),
    Column("index", Integer, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("issued_at", Float, nullable=True),  # NULL: issued before custodians were recorded
    Column("last_verified_at", Float, nullable=True),
    Column("verified_by", String(16), nullable=True),  # proof | unseal
    Column("acknowledged_at", Float, nullable=True),  # the first proof of possession
    Column("delivery", String(16), nullable=True),  # plaintext | encrypted
    Column("recipient", String(80), nullable=True),  # fingerprint the share was sealed to
    Column("envelope", Text, nullable=True),  # the sealed share (kqse1:...)
)

# Each custodian's own public key (``seal.custodian_key``), by name across seal
# generations: what new shares are sealed to. Public; the private key never leaves
# the custodian's machine.
custodian_keys = Table(
    "custodian_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("algorithm", String(32), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("fingerprint", String(80), nullable=False),
    Column("registered_at", Float, nullable=False),
    Column("registered_by", String(16), nullable=False),  # init | rekey | proof
)

# Fresh challenges for custodian proofs of possession: each answers one proof, once
# (``used_at`` is set by a conditional update, so two workers cannot both accept it).
custodian_challenges = Table(
    "custodian_challenges",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("custodian_index", Integer, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("challenge", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
)
Index("ix_custodian_challenges_custodian", custodian_challenges.c.custodian_index)

# AWS KMS access keys (``keyquorum.kms``): an identity like a token (accessor, policies,
# expiry, revocation). SigV4 needs the secret itself to recompute signatures, so it is
# stored encrypted by the barrier (the row's accessor is the associated data), never hashed
# and never in plaintext.
access_keys = Table(
    "access_keys",
    metadata,
    Column("accessor", String(64), primary_key=True),
    Column("access_key_id", String(32), nullable=False, unique=True),
    Column("secret", LargeBinary, nullable=False),
    Column("name", String(128), nullable=True),
    Column("policies", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(64), nullable=True),
    Column("expires_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
)

# AWS KMS aliases (``alias/...``) made by CreateAlias; ``alias/<native name>`` needs no
# row (it resolves to the key of that name).
kms_aliases = Table(
    "kms_aliases",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("key_id", String(36), ForeignKey("keys.id"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("ix_kms_aliases_key_id", kms_aliases.c.key_id)

# Vault transit's own settings of a key (``deletion_allowed``, ``min_encryption_version``),
# which keyquorum's key model does not have. Kept out of the key's labels so the native
# API neither shows nor edits them; a key without a row has Vault's defaults.
vault_transit_keys = Table(
    "vault_transit_keys",
    metadata,
    Column("key_id", String(36), ForeignKey("keys.id"), primary_key=True),
    Column("deletion_allowed", Boolean, nullable=False, default=False),
    Column("min_encryption_version", Integer, nullable=False, default=0),
    Column("updated_at", Float, nullable=False),
)
