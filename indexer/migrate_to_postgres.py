"""Copy embedded SQLite libraries (XRD, Raman) into PostgreSQL, ids kept.

    XRDID_DATABASE_URL=postgresql://xrdid:PASSWORD@db:5432/xrdid \\
        python -m indexer migrate-to-postgres \\
        --library ~/.local/share/xrdid/library.sqlite ~/.local/share/xrdid/raman_library.sqlite

(or ``--database-url``; the setting keeps the password off the command line).

Each file goes into the database's library of its technique (recorded in the
file: the XRD library in the database's default schema, the Raman library in
its own schema, :mod:`xrdid.library.postgres`). Everything stored is copied
in batches (one transaction each, so memory stays bounded and an interrupted
copy resumes where it stopped when run again): metadata, patterns,
embeddings, profiles and element rows, with the same ids (so
``/references/{id}`` links stay valid). The database gets its tables from
the migrations first. Stop the service on the SQLite libraries first (a
write during the copy would be missed); start the replicas on the database
after.
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from xrdid.library.layouts import LAYOUTS
from xrdid.library.postgres import PostgresStore, is_database_url
from xrdid.library.records import DatabaseEncodingError
from xrdid.library.store import SqliteStore
from xrdid.technique import Technique

log = logging.getLogger("indexer.migrate_to_postgres")


def technique_of(library: Path) -> Technique:
    """The technique of a SQLite library file (libraries before techniques are XRD)."""
    if not library.is_file():
        raise SystemExit(f"no library at {library}")
    store = SqliteStore(library)
    try:
        meta = store.meta()
    except sqlite3.Error as exc:
        raise SystemExit(f"{library} is not an xrdid library ({exc})") from exc
    finally:
        store.close()
    if "library_uuid" not in meta:
        raise SystemExit(f"{library} is not an xrdid library (no library metadata)")
    return Technique(meta.get("technique", Technique.XRD))


def migrate_library(
    library: Path,
    database_url: str,
    batch: int = 500,
    progress: bool = True,
    if_empty: bool = False,
) -> tuple[int, int]:
    """Copy the library into the database's library of its technique (with
    ``if_empty``, only when that holds no references); (references copied
    now, references in the database's library)."""
    layout = LAYOUTS[technique_of(library)]
    source = SqliteStore(library)
    target = PostgresStore(database_url, layout.technique)
    try:
        source.init_schema("", 0, layout)  # upgrades an older library; model and dim are kept
        meta = source.meta()
        target.init_schema(meta["model_version"], int(meta["dim"]), layout)
        present = target.count()
        if if_empty and present:
            return 0, present
        total = source.count()
        copied, after = 0, 0
        with tqdm(
            total=total,
            desc=f"{layout.technique.label} references",
            unit="ref",
            disable=not progress,
        ) as bar:
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
    parser.add_argument(
        "--library",
        type=Path,
        nargs="+",
        required=True,
        help="the SQLite library files (the XRD one, the Raman one)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("XRDID_DATABASE_URL") or None,
        help="postgresql://user:password@host:port/database (default: XRDID_DATABASE_URL)",
    )
    parser.add_argument("--batch", type=int, default=500, help="references per transaction")
    parser.add_argument(
        "--if-empty",
        action="store_true",
        help="copy a library only into a database library without references (seeding)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.database_url is None:
        parser.error("name the database: set XRDID_DATABASE_URL or pass --database-url")
    if not is_database_url(args.database_url):
        parser.error("--database-url must start with postgresql://")
    techniques = [technique_of(path) for path in args.library]
    if len(set(techniques)) < len(techniques):
        parser.error(
            "--library names two libraries of one technique ("
            + ", ".join(f"{p}: {t.label}" for p, t in zip(args.library, techniques, strict=True))
            + "); the database holds one library per technique"
        )
    for path, technique in zip(args.library, techniques, strict=True):
        try:
            copied, present = migrate_library(
                path, args.database_url, args.batch, if_empty=args.if_empty
            )
        except DatabaseEncodingError as exc:
            raise SystemExit(str(exc)) from exc
        print(f"{technique.label}: copied {copied} references; the database holds {present}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
