"""Alembic environment: runs on the connection keyquorum hands it."""

from __future__ import annotations

from alembic import context

from keyquorum.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when run from the alembic CLI
    raise RuntimeError("keyquorum migrations run through keyquorum.storage.engine.migrate")

context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
