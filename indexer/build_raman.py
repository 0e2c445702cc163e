"""Build the default Raman library from the RRUFF archive.

    python -m indexer build-raman [--library model_store/raman_library.sqlite]
        [--model model_store/raman_regnet1d.pt] [--split model_store/raman_split.json]
        [--minerals Calcite,Quartz] [--split-only] [--skip-without-archive]

Every spectrum of a named mineral becomes a measured Raman reference: named
after its class (the mineral, or the names RRUFF gives one sample,
``"Albite / Anorthoclase"``, from ``model_store/raman_split.json``), its
formula and elements from RRUFF's ideal chemistry, its laser, and source
``rruff`` with the archive file's name as source id. The spectrum is kept
despiked and binned to 1 cm⁻¹ over its measured range (16-bit,
:func:`xrdid.raman.preprocess.compact_spectrum`): what the model sees of it
is what it sees of the original, in a quarter of the bytes; the originals
are at rruff.info under the id in ``notes``.

The shipped library holds them all: a lab's sample is best compared with
every sample of its mineral, and the minerals the split keeps from the model
are identified once in the library (docs/raman.md). ``--split-only`` builds
the evaluation's library instead, of the spectra the split puts in the
library, so its held-out samples and unseen minerals stay out.

The library is written next to the target and moved into place when done
(it is always built whole); a JSON report (counts, size, time, model
version) goes next to it. ``--minerals`` builds a small library of a few
minerals (for trials and tests). ``make install`` runs this job (about a
minute on 2 cores; the library is not kept in git), with
``--skip-without-archive``: without the RRUFF archive the service starts with
an empty Raman library.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path

from indexer.build import replace_library
from indexer.raman_data import SPLIT_PATH, load_split
from xrdid.data_paths import PROJECT_ROOT
from xrdid.library import Library, ReferenceInfo
from xrdid.raman.archive import RruffRecord, archive_path, load_records
from xrdid.raman.checkpoint import RamanEmbedder
from xrdid.raman.chemistry import readable_formula
from xrdid.raman.split import RamanSplit, Role
from xrdid.references import PreparedReference, embed_references, raman_reference

log = logging.getLogger("indexer.build_raman")

MODEL_STORE = PROJECT_ROOT / "model_store"
SOURCE = "rruff"
BATCH = 256  # references embedded and committed together


def reference_of(record: RruffRecord, split: RamanSplit) -> PreparedReference:
    """One archive spectrum as a library reference."""
    laser = f", {record.laser_nm:g} nm laser" if record.laser_nm else ""
    info = ReferenceInfo(
        name=split.classes[record.mineral],
        source=SOURCE,
        source_id=record.file_name.removesuffix(".txt"),
        formula=readable_formula(record.ideal_chemistry) or None,
        elements=record.elements,
        notes=f"RRUFF {record.rruff_id} ({record.mineral}){laser}; rruff.info/{record.rruff_id}",
    )
    return raman_reference(record.spectrum, info, compact=True)


def build(
    library_path: Path,
    model: Path,
    split_path: Path,
    minerals: Collection[str] | None = None,
    *,
    split_only: bool = False,
) -> dict[str, object]:
    """Build the library of every spectrum of a named mineral (``split_only``:
    of the split's library spectra; of ``minerals`` only, RRUFF names, when
    given) at ``library_path``; returns the report."""
    started = time.perf_counter()
    embedder = RamanEmbedder.load(model)
    records = load_records()
    split = load_split(split_path, records)
    kept = {Role.LIBRARY} if split_only else set(Role) - {Role.EXCLUDED}
    chosen = [
        r
        for r in records
        if split.role(r.mineral, r.rruff_id) in kept and (minerals is None or r.mineral in minerals)
    ]
    if not chosen:
        raise SystemExit(f"no library spectra of the minerals {sorted(minerals or ())}")
    building = library_path.with_name(library_path.name + ".building")
    for leftover in (building, Path(f"{building}-wal"), Path(f"{building}-shm")):
        leftover.unlink(missing_ok=True)
    with Library.open(building, embedder) as library:
        for start in range(0, len(chosen), BATCH):
            prepared = [reference_of(r, split) for r in chosen[start : start + BATCH]]
            library.add_many(embed_references(prepared, embedder), skip_existing=True)
            log.info("%d/%d references", min(start + BATCH, len(chosen)), len(chosen))
        status = library.status()
    replace_library(building, library_path)
    return {
        "library": str(library_path),
        "model_version": embedder.version,
        "split": str(split_path),
        "spectra": "the split's library spectra" if split_only else "all",
        "references": status.size,
        "minerals": len({split.classes[r.mineral] for r in chosen}),
        "bytes": library_path.stat().st_size,
        "seconds": round(time.perf_counter() - started, 1),
        "built_at": datetime.now(UTC).isoformat(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m indexer build-raman", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--library", type=Path, default=MODEL_STORE / "raman_library.sqlite")
    parser.add_argument("--model", type=Path, default=MODEL_STORE / "raman_regnet1d.pt")
    parser.add_argument("--split", type=Path, default=SPLIT_PATH)
    parser.add_argument(
        "--minerals", help="comma-separated RRUFF mineral names: a small library of those only"
    )
    parser.add_argument(
        "--split-only",
        action="store_true",
        help="only the spectra the split puts in the library (the evaluation's library)",
    )
    parser.add_argument(
        "--skip-without-archive",
        action="store_true",
        help="exit quietly (0) when the RRUFF archive is not in the shared data",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.skip_without_archive and not archive_path().is_file():
        log.warning(
            "no RRUFF archive at %s: no Raman library built (the service starts with an "
            "empty one; set XRDID_DATA_DIR)",
            archive_path(),
        )
        return 0
    minerals = [m.strip() for m in args.minerals.split(",")] if args.minerals else None
    report = build(args.library, args.model, args.split, minerals, split_only=args.split_only)
    report_path = args.library.with_name(args.library.stem + ".build-report.json")
    report_path.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
