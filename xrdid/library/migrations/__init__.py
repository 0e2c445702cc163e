"""Alembic migrations of the PostgreSQL library schema (:mod:`xrdid.library.postgres`)."""
