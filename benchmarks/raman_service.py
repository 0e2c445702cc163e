"""Raman service benchmark: ``POST /identify`` latency for real RRUFF spectra
over HTTP, next to the classical hit quality index search, in one run.

    python -m benchmarks.raman_service [--requests 100] [--json OUT]
        [--library model_store/raman_library.sqlite]

A real uvicorn process serves a private copy of the built Raman library
(``make install``: 4,540 references) beside an empty XRD library; the split's
held-out test spectra (in that library too: the time does not depend on
it) are sent one at a time after a few warm-up requests.
Reported: client-side p50/p95 (upload included) and the server's stage
medians. The baseline, on the same files in this process: read, preprocess
and the classical hit quality index (cos² of the preprocessed spectra over
the query's range) against every reference of the library, the search a
spectral library program does without a model or an index (one BLAS thread,
as the service runs: on a shared CPU more threads only spin).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from indexer.raman_data import load_split
from tests.e2e.support import running
from xrdid.data_paths import PROJECT_ROOT
from xrdid.library import Library
from xrdid.raman.archive import load_records, unpacked_archive
from xrdid.raman.checkpoint import RamanEmbedder
from xrdid.raman.identify import RamanReferences, hit_quality_index
from xrdid.raman.preprocess import preprocess_spectrum
from xrdid.raman.split import Role
from xrdid.readers import read_measurement

MODEL_STORE = PROJECT_ROOT / "model_store"
WARM_UP = 5
STAGES = ("read_ms", "preprocess_ms", "embed_ms", "search_ms", "total_ms")


def test_files(n: int) -> list[tuple[str, bytes]]:
    """The first ``n`` held-out test spectra of the split, as files."""
    records = load_records()
    split = load_split(records=records)
    folder = unpacked_archive()
    names = [r.file_name for r in records if split.role(r.mineral, r.rruff_id) is Role.TEST]
    return [(name, (folder / name).read_bytes()) for name in names[:n]]


def served(library: Path, files: Sequence[tuple[str, bytes]], tmp: Path) -> dict[str, float]:
    env = {
        "XRDID_LIBRARY_PATH": str(tmp / "library.sqlite"),
        "XRDID_DEFAULT_LIBRARY_PATH": str(tmp / "none.sqlite"),
        "XRDID_RAMAN_LIBRARY_PATH": str(tmp / "raman_library.sqlite"),
        "XRDID_DEFAULT_RAMAN_LIBRARY_PATH": str(library),
        "XRDID_DEVICE": "cpu",
        "XRDID_LOG_LEVEL": "warning",
    }
    with running(env, tmp / "server.log") as server, server.client() as client:
        while client.get("/ready").json()["raman_status"] == "loading":
            time.sleep(0.1)
        for name, data in files[:WARM_UP]:
            client.post("/identify", files={"file": (name, data)}).raise_for_status()
        wall, stages = [], {stage: [] for stage in STAGES}
        for name, data in files:
            start = time.perf_counter()
            response = client.post("/identify", files={"file": (name, data)})
            wall.append(1000 * (time.perf_counter() - start))
            response.raise_for_status()
            body = response.json()
            assert body["technique"] == "raman", body
            for stage in STAGES:
                stages[stage].append(body["timings_ms"][stage])
    out = {"p50_ms": statistics.median(wall), "p95_ms": float(np.percentile(wall, 95))}
    out |= {f"server_{k}": statistics.median(v) for k, v in stages.items()}
    return out


def hit_quality_baseline(library: Path, files: Sequence[tuple[str, bytes]]) -> dict[str, float]:
    """Read, preprocess and the hit quality index against every reference."""
    embedder = RamanEmbedder.load(MODEL_STORE / "raman_regnet1d.pt")
    with Library.open(library, embedder) as opened, opened.reading() as source:
        rows = source.rows()
        profiles = np.ascontiguousarray(rows.rows)
    references = RamanReferences(
        embeddings=np.zeros((len(profiles), 1), np.float32),
        intensity=profiles,
        class_index=np.arange(len(profiles)),
        class_names=[str(i) for i in range(len(profiles))],
        class_elements=np.zeros((len(profiles), 0), np.uint8),
        element_symbols=[],
    )
    times = []
    with threadpool_limits(limits=1, user_api="blas"):  # as the service runs (its best here)
        for name, data in files:
            start = time.perf_counter()
            view = preprocess_spectrum(read_measurement(data, name))  # type: ignore[arg-type]
            hit_quality_index(view.intensity, view.mask, references)
            times.append(1000 * (time.perf_counter() - start))
    return {"p50_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95))}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.raman_service", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--library", type=Path, default=MODEL_STORE / "raman_library.sqlite")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if not args.library.is_file():
        raise SystemExit(f"no Raman library at {args.library}: run `make install`")
    files = test_files(args.requests)
    with tempfile.TemporaryDirectory(prefix="xrdid-raman-bench-") as tmp:
        service = served(args.library, files, Path(tmp))
    baseline = hit_quality_baseline(args.library, files)
    results = {"spectra": len(files), "service": service, "hit_quality_index": baseline}
    print(f"{len(files)} held-out RRUFF spectra, one at a time (ms):")
    print("| | p50 | p95 |\n|---|---|---|")
    print(
        f"| POST /identify (HTTP, model + re-rank) | {service['p50_ms']:.1f} | {service['p95_ms']:.1f} |"
    )
    print(
        f"| hit quality index, in process | {baseline['p50_ms']:.1f} | {baseline['p95_ms']:.1f} |"
    )
    print(
        "server stages (p50): "
        + ", ".join(
            f"{k.removeprefix('server_')} {v:.1f}"
            for k, v in service.items()
            if k.startswith("server_")
        )
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
