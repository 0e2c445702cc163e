"""Bring a working library up to this version's default library.

    python -m indexer update-library --library ~/.local/share/xrdid/library.sqlite
    python -m indexer update-library --technique raman \\
        --library ~/.local/share/xrdid/raman_library.sqlite
    python -m indexer update-library --library "$XRDID_DATABASE_URL" --check

The service copies the shipped default library once, on its first start,
and serves that copy from then on; a later version's default library does
not replace it. This adds the default references the library lacks and
replaces those it holds in an earlier version (same source and source id,
other metadata or profile), under new ids; references the default does not hold (added
through the API) are kept (:mod:`xrdid.library.defaults`). Stop a service
on a SQLite library first (it would not see the change until restarted);
replicas on PostgreSQL follow the writes as they follow each other's.
``--check`` only reports, and exits 1 when the library is behind.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from xrdid.data_paths import PROJECT_ROOT
from xrdid.errors import InputError
from xrdid.library import Library, PatternEmbedder, is_database_url
from xrdid.library.defaults import compare, open_default, update
from xrdid.library.store import SqliteStore
from xrdid.technique import Technique

MODEL_STORE = PROJECT_ROOT / "model_store"
LISTED = 20  # references named per kind of change (the counts are always given)
DEFAULTS = {
    Technique.XRD: (MODEL_STORE / "library.sqlite", MODEL_STORE / "regnet1d.pt"),
    Technique.RAMAN: (MODEL_STORE / "raman_library.sqlite", MODEL_STORE / "raman_regnet1d.pt"),
}


def _embedder(technique: Technique, model: Path) -> PatternEmbedder:
    if technique is Technique.RAMAN:
        from xrdid.raman.checkpoint import RamanEmbedder

        return RamanEmbedder.load(model)  # type: ignore[return-value]
    from xrdid.embedder import Embedder

    return Embedder.load(model, device="cpu")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m indexer update-library", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--library", required=True, help="the working library: a SQLite file or postgresql:// URL"
    )
    parser.add_argument(
        "--technique", choices=[t.value for t in Technique], default=Technique.XRD.value
    )
    parser.add_argument("--default", type=Path, help="the default library (default: shipped)")
    parser.add_argument("--model", type=Path, help="the model (default: shipped)")
    parser.add_argument("--check", action="store_true", help="only report; exit 1 when behind")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    technique = Technique(args.technique)
    default_path = args.default or DEFAULTS[technique][0]
    model_path = args.model or DEFAULTS[technique][1]
    library_location: str | Path = (
        args.library if is_database_url(args.library) else Path(args.library)
    )
    if isinstance(library_location, Path) and not library_location.is_file():
        parser.error(f"no library at {library_location}")
    try:
        default = open_default(default_path)
        embedder = _embedder(technique, model_path)
        with Library.open(library_location, embedder) as library:
            before = compare(library, default)
            print(f"{library.location}: {before.describe()}")
            _list(default, "missing", before.missing)
            _list(default, "earlier version", [d for _, d in before.outdated])
            if args.check:
                return 0 if before.up_to_date else 1
            if before.up_to_date:
                return 0
            with tqdm(total=len(before.missing) + len(before.outdated), unit="ref") as bar:
                update(library, default, progress=lambda done, _: bar.update(done - bar.n))
            after = compare(library, default)
            print(
                f"added {len(before.missing)}, replaced {len(before.outdated)}; "
                f"now {after.describe()}"
            )
            return 0 if after.up_to_date else 1
    except InputError as exc:
        raise SystemExit(str(exc)) from exc


def _list(default: SqliteStore, what: str, ids: Sequence[int]) -> None:
    """The first references of ``ids`` (of the default library), by name and source."""
    entries = default.entries(ids[:LISTED])
    for i in ids[:LISTED]:
        info = entries[i].info
        print(f"  {what}: {info.name} ({info.source} {info.source_id})")
    if len(ids) > LISTED:
        print(f"  … and {len(ids) - LISTED} more {what}")


if __name__ == "__main__":
    sys.exit(main())
