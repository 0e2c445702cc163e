"""Durable service state (jobs, idempotency keys, audit log, webhook
deliveries) behind one contract, :class:`~app.store.base.ServiceStore`."""

from __future__ import annotations

from pathlib import Path

from app.store.base import ServiceStore
from app.store.sqlite import SqliteServiceStore

__all__ = ["ServiceStore", "open_store"]


def open_store(location: Path | str) -> ServiceStore:
    """The store at ``location``: a postgresql:// URL (shared by replicas) or
    a SQLite file; created and migrated on open."""
    if isinstance(location, str) and location.startswith(("postgresql://", "postgres://")):
        from app.store.postgres import PostgresServiceStore

        return PostgresServiceStore(location)
    return SqliteServiceStore(Path(location))
