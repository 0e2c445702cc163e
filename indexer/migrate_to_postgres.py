"""Copy an embedded SQLite library into PostgreSQL, ids kept.

    XRDID_DATABASE_URL=postgresql://xrdid:PASSWORD@db:5432/xrdid \\
        python -m indexer migrate-to-postgres --library ~/.local/share/xrdid/library.sqlite

(or ``--database-url``; the setting keeps the password off the command line).

Everything stored is copied in batches (one transaction each, so memory stays
bounded and an interrupted copy resumes where it stopped when run again):
metadata, patterns, embeddings, profiles and element rows, with the same ids
(so ``/references/{id}`` links stay valid). The database gets its tables from
the migrations first. Stop the service on the SQLite library first (a write
during the copy would be missed); start the replicas on the database after.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from xrdid.library.postgres import PostgresStore, is_database_url
from xrdid.library.store import SqliteStore

log = logging.getLogger("indexer.migrate_to_postgres")


def migrate_library(
    library: Path,
    database_url: str,
    batch: int = 500,
    progress: bool = True,
    if_empty: bool = False,
) -> tuple[int, int]:
    """Copy the library (with ``if_empty``, only into a database without
    references); (references copied now, references in the database)."""
    if not library.is_file():
        raise SystemExit(f"no library at {library}")
    source = SqliteStore(library)
    target = PostgresStore(database_url)
    try:
        source.init_schema("", 0)  # upgrades an older library; model and dim are kept
        meta = source.meta()
        target.init_schema(meta["model_version"], int(meta["dim"]))
        present = target.count()
        if if_empty and present:
            return 0, present
        total = source.count()
        copied, after = 0, 0
        with tqdm(total=total, desc="references", unit="ref", disable=not progress) as bar:
            while True:
                rows = source.export_rows(after, batch)
                if not rows:
                    break
                copied += target.import_rows(rows)
                after = int(rows[-1][0])
                bar.update(len(rows))
        return copied, target.count()
    finally:
        source.close()
        target.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m indexer migrate-to-postgres", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--library", type=Path, required=True, help="the SQLite library file")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("XRDID_DATABASE_URL") or None,
        help="postgresql://user:password@host:port/database (default: XRDID_DATABASE_URL)",
    )
    parser.add_argument("--batch", type=int, default=500, help="references per transaction")
    parser.add_argument(
        "--if-empty",
        action="store_true",
        help="copy only into a database without references (seeding a new deployment)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.database_url is None:
        parser.error("name the database: set XRDID_DATABASE_URL or pass --database-url")
    if not is_database_url(args.database_url):
        parser.error("--database-url must start with postgresql://")
    copied, present = migrate_library(
        args.library, args.database_url, args.batch, if_empty=args.if_empty
    )
    print(f"copied {copied} references; the database holds {present}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
