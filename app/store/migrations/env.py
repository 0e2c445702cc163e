"""Alembic environment of the service store: runs on the connection
:func:`app.store.postgres.migrate` passes, with its own version table (the
library's migrations keep theirs: the two schemas are versioned apart)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    transaction_per_migration=True,
    version_table="xrdid_service_alembic_version",
)
with context.begin_transaction():
    context.run_migrations()
