"""Batch jobs against single calls: N real scans as one POST /jobs, beside
the same N scans as N sequential POST /identify calls, in the same run, on
the same server, with the same options (the defaults: phase analysis on).

    python -m benchmarks.jobs [--scans 200] [--library LIB] [--model CKPT] [--json OUT]

Scans are the real measured files of ``../shared/data/patterns`` (.xy,
.xrdml, Bruker .raw), repeated in order up to ``--scans``. The service is a
real uvicorn process on a copy of the shipped library, with its default
settings (compute threads = cores, job workers = compute threads, 4 scans
per batch). The job's time runs from the submission to the poll that sees
it completed (polls every 0.2 s); the sequential time from the first call
to the last answer. Both count every scan, failed reads included (the
same files fail in both).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from benchmarks.service import Service
from xrdid.data_paths import PROJECT_ROOT, shared_data_dir

DEFAULT_LIBRARY = PROJECT_ROOT / "model_store" / "library.sqlite"
DEFAULT_MODEL = PROJECT_ROOT / "model_store" / "regnet1d.pt"
SCAN_SUFFIXES = (".xy", ".xrdml", ".raw")
TARGET_SPEEDUP = 2.0


@dataclass
class Result:
    scans: int
    distinct_files: int
    cores: int
    sequential_s: float
    sequential_scans_per_s: float
    sequential_failed: int
    job_s: float
    job_scans_per_s: float
    job_failed: int
    speedup: float


def real_scans(n: int) -> tuple[list[tuple[str, bytes]], int]:
    root = shared_data_dir() / "patterns"
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in SCAN_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no scans under {root}")
    loaded = [(p.name, p.read_bytes()) for p in files]
    return [loaded[i % len(loaded)] for i in range(n)], len(loaded)


def run_sequential(client: httpx.Client, scans: Sequence[tuple[str, bytes]]) -> tuple[float, int]:
    failed = 0
    start = time.perf_counter()
    for name, data in scans:
        response = client.post("/identify", files={"file": (name, data)})
        if response.status_code != 200:
            failed += 1
    return time.perf_counter() - start, failed


def run_job(client: httpx.Client, scans: Sequence[tuple[str, bytes]]) -> tuple[float, int]:
    start = time.perf_counter()
    response = client.post("/jobs", files=[("files", scan) for scan in scans])
    response.raise_for_status()
    url = response.headers["location"]
    while True:
        job = client.get(url, params={"results": "false"}).json()
        if job["status"] in ("completed", "cancelled"):
            break
        time.sleep(0.2)
    elapsed = time.perf_counter() - start
    return elapsed, int(job["progress"]["failed"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--library", type=Path, default=DEFAULT_LIBRARY)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    scans, distinct = real_scans(args.scans)
    with tempfile.TemporaryDirectory(prefix="xrdid-bench-jobs-") as tmp:
        library = Path(tmp) / "library.sqlite"
        shutil.copyfile(args.library, library)
        service = Service(library, args.model, Path(tmp) / "service.log")
        try:
            with httpx.Client(base_url=service.url, timeout=600) as client:
                client.post("/identify", files={"file": scans[0]}).raise_for_status()  # warm up
                sequential_s, sequential_failed = run_sequential(client, scans)
                job_s, job_failed = run_job(client, scans)
        finally:
            service.stop()
    result = Result(
        scans=len(scans),
        distinct_files=distinct,
        cores=os.cpu_count() or 1,
        sequential_s=round(sequential_s, 2),
        sequential_scans_per_s=round(len(scans) / sequential_s, 2),
        sequential_failed=sequential_failed,
        job_s=round(job_s, 2),
        job_scans_per_s=round(len(scans) / job_s, 2),
        job_failed=job_failed,
        speedup=round(sequential_s / job_s, 2),
    )
    print(
        f"{result.scans} real scans ({distinct} distinct files), {result.cores} cores\n"
        f"| way | seconds | scans/s | failed |\n|---|---:|---:|---:|\n"
        f"| {result.scans} sequential POST /identify | {result.sequential_s} | "
        f"{result.sequential_scans_per_s} | {result.sequential_failed} |\n"
        f"| one POST /jobs of {result.scans} | {result.job_s} | {result.job_scans_per_s} | "
        f"{result.job_failed} |\n"
        f"batch job / sequential: {result.speedup}× (target ≥ {TARGET_SPEEDUP}×)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
