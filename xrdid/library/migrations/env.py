"""Alembic environment: runs on the connection :func:`xrdid.library.postgres.migrate`
passes, with the version table in the library's schema (each technique's
library is versioned apart)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    transaction_per_migration=True,
    version_table_schema=context.config.attributes.get("version_table_schema"),
)
with context.begin_transaction():
    context.run_migrations()
