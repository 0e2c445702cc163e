"""A PostgreSQL database for a benchmark: the one given, or an empty one on
a server started for the run in a temporary folder, as the tests start theirs
(``tests/postgres.py``: Debian's ``postgresql`` package, ``initdb``, a free port)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import psycopg


@contextmanager
def database(url: str | None, settings: Mapping[str, str] | None = None) -> Iterator[str]:
    """``url``; or, when None, an empty database on a server started for the
    benchmark with ``settings`` (``ALTER SYSTEM``, then a restart) and
    stopped after it."""
    if url is not None:
        yield url
        return
    from tests.postgres import PostgresServer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        raise SystemExit(f"no PostgreSQL server to start: {reason}; or give --database-url")
    server = PostgresServer()
    try:
        server.start()
        if settings:
            with psycopg.connect(server.url(), autocommit=True) as db:
                for name, value in settings.items():
                    db.execute(f"ALTER SYSTEM SET {name} = '{value}'")  # type: ignore[arg-type]
            server.stop()
            server.start()
        yield server.create_database()
    finally:
        server.close()
