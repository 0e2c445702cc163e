"""What a job batch's size buys: throughput of :func:`xrdid.identify.identify_many`
by batch size on one compute thread, and the longest batch, which is how
long an interactive POST /identify can wait for a compute thread a job
worker holds (XRDID_JOB_BATCH_SIZE). Batch size 1 is the baseline.

    python -m benchmarks.job_batch [--scans 32] [--sizes 1 4 16] [--no-phases]

Scans are real measured files of ``../shared/data/patterns`` (.xy, .xrdml,
Bruker .raw), spread over the folder; the shipped model, library and
calibration; the /identify defaults (phase analysis on unless --no-phases).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from app.core.state import load_calibration
from benchmarks.jobs import DEFAULT_LIBRARY, DEFAULT_MODEL, SCAN_SUFFIXES
from xrdid.data_paths import PROJECT_ROOT, shared_data_dir
from xrdid.embedder import Embedder
from xrdid.identify import IdentifyOptions, identify_many
from xrdid.library import Library

DEFAULT_CALIBRATION = PROJECT_ROOT / "model_store" / "calibration.json"


def spread_scans(n: int) -> list[tuple[bytes, str | None]]:
    """``n`` scans taken evenly over the folder (instruments and formats mixed)."""
    root = shared_data_dir() / "patterns"
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in SCAN_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no scans under {root}")
    step = max(1, len(files) // n)
    return [(p.read_bytes(), p.name) for p in files[::step][:n]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=int, default=32)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--no-phases", action="store_true", help="the ranked lists only")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # one compute thread, as the service runs each
    scans = spread_scans(args.scans)
    options = IdentifyOptions(phases=not args.no_phases)
    embedder = Embedder.load(DEFAULT_MODEL, device="cpu")
    calibration = load_calibration(DEFAULT_CALIBRATION, embedder.version)
    print(f"{len(scans)} real scans, phase analysis {'off' if args.no_phases else 'on'}")
    print("| batch size | seconds | scans/s | longest batch, s |\n|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="xrdid-bench-batch-") as tmp:
        library_path = Path(tmp) / "library.sqlite"
        shutil.copyfile(DEFAULT_LIBRARY, library_path)
        with Library.open(library_path, embedder) as library:
            identify_many(scans[:2], embedder, library, options, calibration=calibration)  # warm
            for size in args.sizes:
                start, longest = time.perf_counter(), 0.0
                for first in range(0, len(scans), size):
                    batch_start = time.perf_counter()
                    identify_many(
                        scans[first : first + size],
                        embedder,
                        library,
                        options,
                        calibration=calibration,
                    )
                    longest = max(longest, time.perf_counter() - batch_start)
                elapsed = time.perf_counter() - start
                print(f"| {size} | {elapsed:.1f} | {len(scans) / elapsed:.2f} | {longest:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
