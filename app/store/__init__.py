"""Durable service state (jobs, idempotency keys, audit log, webhook
deliveries) behind one contract, :class:`~app.store.base.ServiceStore`."""

from __future__ import annotations

from pathlib import Path

from app.store.base import ServiceStore
from app.store.sqlite import SqliteServiceStore

__all__ = ["ServiceStore", "open_store"]


def open_store(path: Path) -> ServiceStore:
    """The store at ``path`` (SQLite; created and migrated on open)."""
    return SqliteServiceStore(path)
