"""Batch jobs against single calls: N real scans as one POST /jobs, beside
the same N scans as N sequential POST /identify calls, in the same run,
with the same options (the defaults: phase analysis on).

    python -m benchmarks.jobs [--scans 200] [--library LIB] [--model CKPT] [--json OUT]

Scans are the real measured files of ``../shared/data/patterns`` (.xy,
.xrdml, Bruker .raw), repeated in order up to ``--scans``. The service is a
real uvicorn process on a copy of the shipped library, with its default
settings (compute threads = cores, job workers = compute threads, 4 scans
per batch), once with the job workers in processes of their own (the
default) and once on the compute threads (XRDID_JOB_PROCESSES=false). The
job's time runs from the submission to the poll that sees it completed
(polls every 0.2 s), the start of the job processes included; the
sequential time from the first call to the last answer. Both count every
scan, failed reads included (the same files fail in both).

Then each job is run again while one client calls POST /identify in a loop:
the interactive latency during a batch job, beside the same calls on the
idle service.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.service import Service
from xrdid.data_paths import PROJECT_ROOT, shared_data_dir

DEFAULT_LIBRARY = PROJECT_ROOT / "model_store" / "library.sqlite"
DEFAULT_MODEL = PROJECT_ROOT / "model_store" / "regnet1d.pt"
SCAN_SUFFIXES = (".xy", ".xrdml", ".raw")
TARGET_SPEEDUP = 2.0
# XRDID_JOB_PROCESSES of each way a job is run.
JOB_WAYS = {"processes": "true", "threads": "false"}


@dataclass
class JobRow:
    way: str
    # The first job after the service started (its job processes start with
    # it), then the same job again.
    first_seconds: float
    first_scans_per_s: float
    first_speedup: float
    seconds: float
    scans_per_s: float
    failed: int
    speedup: float
    service_cpu_s: float
    # POST /identify while the job ran (a second run of it): median, 90th percentile.
    identify_ms_p50: float
    identify_ms_p90: float
    identify_calls: int


@dataclass
class Result:
    scans: int
    distinct_files: int
    cores: int
    load_average_before: float
    sequential_s: float
    sequential_scans_per_s: float
    sequential_failed: int
    idle_identify_ms_p50: float
    idle_identify_ms_p90: float
    jobs: list[JobRow]


def real_scans(n: int) -> tuple[list[tuple[str, bytes]], int]:
    root = shared_data_dir() / "patterns"
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in SCAN_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no scans under {root}")
    loaded = [(p.name, p.read_bytes()) for p in files]
    return [loaded[i % len(loaded)] for i in range(n)], len(loaded)


def run_sequential(
    client: httpx.Client, scans: Sequence[tuple[str, bytes]]
) -> tuple[float, int, list[float]]:
    """Seconds in all, failures, and each call's milliseconds."""
    failed, latencies = 0, []
    start = time.perf_counter()
    for name, data in scans:
        call = time.perf_counter()
        response = client.post("/identify", files={"file": (name, data)})
        latencies.append(1000 * (time.perf_counter() - call))
        if response.status_code != 200:
            failed += 1
    return time.perf_counter() - start, failed, latencies


def submit(client: httpx.Client, scans: Sequence[tuple[str, bytes]]) -> str:
    response = client.post("/jobs", files=[("files", scan) for scan in scans])
    response.raise_for_status()
    return response.headers["location"]


def finished(client: httpx.Client, url: str) -> dict[str, Any] | None:
    """The job's summary once it has finished, else None."""
    job: dict[str, Any] = client.get(url, params={"results": "false"}).json()
    return job if job["status"] in ("completed", "cancelled") else None


def run_job(client: httpx.Client, scans: Sequence[tuple[str, bytes]]) -> tuple[float, int]:
    start = time.perf_counter()
    url = submit(client, scans)
    while (job := finished(client, url)) is None:
        time.sleep(0.2)
    return time.perf_counter() - start, int(job["progress"]["failed"])


def identify_during_job(
    client: httpx.Client, scans: Sequence[tuple[str, bytes]], probe: tuple[str, bytes]
) -> list[float]:
    """POST /identify of ``probe`` in a loop while a job of ``scans`` runs: each call's ms."""
    url = submit(client, scans)
    latencies = []
    while finished(client, url) is None:
        call = time.perf_counter()
        client.post("/identify", files={"file": probe}).raise_for_status()
        latencies.append(1000 * (time.perf_counter() - call))
    return latencies


def quantiles(latencies: Sequence[float]) -> tuple[float, float]:
    deciles = statistics.quantiles(latencies, n=10)
    return round(statistics.median(latencies), 1), round(deciles[-1], 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--library", type=Path, default=DEFAULT_LIBRARY)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    scans, distinct = real_scans(args.scans)
    probe = next(scan for scan in scans if scan[0].endswith(".xrdml"))
    load_before = os.getloadavg()[0]
    sequential: tuple[float, int, list[float]] | None = None
    idle: list[float] = []
    jobs: list[JobRow] = []
    with tempfile.TemporaryDirectory(prefix="xrdid-bench-jobs-") as tmp:
        for way, processes in JOB_WAYS.items():
            library = Path(tmp) / way / "library.sqlite"
            library.parent.mkdir()
            shutil.copyfile(args.library, library)
            service = Service(
                library,
                args.model,
                library.with_name("service.log"),
                {"XRDID_JOB_PROCESSES": processes},
            )
            try:
                with httpx.Client(base_url=service.url, timeout=600) as client:
                    client.post("/identify", files={"file": scans[0]}).raise_for_status()  # warm
                    if sequential is None:
                        sequential = run_sequential(client, scans)
                        idle = [run_sequential(client, [probe])[2][0] for _ in range(20)]
                    first_s, _ = run_job(client, scans)
                    cpu_before = service.cpu_seconds()
                    job_s, job_failed = run_job(client, scans)
                    service_cpu_s = service.cpu_seconds() - cpu_before
                    during = identify_during_job(client, scans, probe)
            finally:
                service.stop()
            p50, p90 = quantiles(during)
            jobs.append(
                JobRow(
                    way=way,
                    first_seconds=round(first_s, 2),
                    first_scans_per_s=round(len(scans) / first_s, 2),
                    first_speedup=round(sequential[0] / first_s, 2),
                    seconds=round(job_s, 2),
                    scans_per_s=round(len(scans) / job_s, 2),
                    failed=job_failed,
                    speedup=round(sequential[0] / job_s, 2),
                    service_cpu_s=round(service_cpu_s, 1),
                    identify_ms_p50=p50,
                    identify_ms_p90=p90,
                    identify_calls=len(during),
                )
            )
    assert sequential is not None
    sequential_s, sequential_failed, _ = sequential
    idle_p50, idle_p90 = quantiles(idle)
    result = Result(
        scans=len(scans),
        distinct_files=distinct,
        cores=os.cpu_count() or 1,
        load_average_before=round(load_before, 2),
        sequential_s=round(sequential_s, 2),
        sequential_scans_per_s=round(len(scans) / sequential_s, 2),
        sequential_failed=sequential_failed,
        idle_identify_ms_p50=idle_p50,
        idle_identify_ms_p90=idle_p90,
        jobs=jobs,
    )
    lines = [
        f"{result.scans} real scans ({distinct} distinct files), {result.cores} cores, "
        f"load average {result.load_average_before} before",
        "| way | seconds | scans/s | failed | × sequential | /identify p50 / p90 meanwhile |",
        "|---|---:|---:|---:|---:|---:|",
        f"| {result.scans} sequential POST /identify | {result.sequential_s} | "
        f"{result.sequential_scans_per_s} | {sequential_failed} | 1.0 | "
        f"{idle_p50} / {idle_p90} ms (idle service) |",
    ]
    for row in jobs:
        lines += [
            f"| one POST /jobs of {result.scans}, job workers in {row.way}, first job | "
            f"{row.first_seconds} | {row.first_scans_per_s} | | {row.first_speedup} | |",
            f"| the same job again | {row.seconds} | {row.scans_per_s} | {row.failed} | "
            f"{row.speedup} | {row.identify_ms_p50} / {row.identify_ms_p90} ms |",
        ]
    lines.append(f"target: a batch job ≥ {TARGET_SPEEDUP}× sequential")
    print("\n".join(lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
