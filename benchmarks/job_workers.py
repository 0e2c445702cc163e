"""Batch-job throughput against the number of worker processes on the
shared PostgreSQL queue: 1, 2 and 4 worker-only replicas side by side, in
one run, on one database holding the shipped library.

    python -m benchmarks.job_workers --database-url postgresql://… [--workers 1 2 4]
        [--scans 200] [--json OUT]

``--database-url`` names an empty database (the shipped library is copied
into it with ``migrate-to-postgres``). For each worker count, that many
``XRDID_ROLE=worker`` processes (uvicorn, one compute thread and one job
worker each: one core's worth) are started and waited for until ready;
then one job of ``--scans`` real scans (``benchmarks.jobs.real_scans``,
default options) is put on the queue and timed from its creation until the
poll (every 0.1 s) that sees it completed. Per-core efficiency is the rate
divided by (workers × the one-worker rate), where the workers are fewer
than the machine's cores; beyond them it shows the cores' limit, not the queue's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from app.store.base import JobStatus, NewJob
from app.store.postgres import PostgresServiceStore
from benchmarks.jobs import DEFAULT_LIBRARY, DEFAULT_MODEL, real_scans
from benchmarks.service import _free_port
from indexer.migrate_to_postgres import migrate_library
from xrdid.data_paths import PROJECT_ROOT


@dataclass
class Result:
    workers: int
    scans: int
    seconds: float
    scans_per_s: float
    efficiency: float  # rate / (workers × one worker's rate)
    failed: int
    load_average: float


def start_worker(database_url: str, model: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "XRDID_ROLE": "worker",
        "XRDID_DATABASE_URL": database_url,
        "XRDID_MODEL_PATH": str(model),
        "XRDID_LIBRARY_PATH": str(log.with_suffix(".unused.sqlite")),
        "XRDID_DEFAULT_LIBRARY_PATH": str(log.with_suffix(".none.sqlite")),
        "XRDID_COMPUTE_THREADS": "1",
        "XRDID_JOB_WORKERS": "1",
        "XRDID_HOST": "127.0.0.1",
        "XRDID_PORT": str(port),
        "XRDID_LOG_LEVEL": "warning",
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out
        )
    return process, f"http://127.0.0.1:{port}"


def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"a worker exited; see {log}")
        try:
            if httpx.get(url + "/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"a worker did not get ready; see {log}")


def run_one(
    store: PostgresServiceStore,
    database_url: str,
    workers: int,
    scans: list[tuple[str, bytes]],
    model: Path,
    logs: Path,
) -> tuple[float, int]:
    processes = [
        start_worker(database_url, model, logs / f"w{workers}-{i}.log") for i in range(workers)
    ]
    try:
        for i, (process, url) in enumerate(processes):
            wait_ready(process, url, logs / f"w{workers}-{i}.log")
        job_id = uuid.uuid4().hex
        start = time.monotonic()
        store.create_job(NewJob(job_id, time.time(), {}, scans), max_queued_files=len(scans) + 1)
        while True:
            job = store.get_job(job_id, time.time())
            assert job is not None
            if job.status is JobStatus.COMPLETED:
                break
            time.sleep(0.1)
        elapsed = time.monotonic() - start
        failed = sum(1 for f in store.job_files(job_id) if f.status != "succeeded")
        return elapsed, failed
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            process.wait(timeout=120)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="an empty PostgreSQL database")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--library", type=Path, default=DEFAULT_LIBRARY)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    scans, distinct = real_scans(args.scans)
    tmp = Path(tempfile.mkdtemp(prefix="xrdid-job-workers-"))
    try:
        library = tmp / "library.sqlite"
        shutil.copy(args.library, library)
        migrate_library(library, args.database_url, progress=False)
        store = PostgresServiceStore(args.database_url)
        rows: list[Result] = []
        try:
            for workers in args.workers:
                seconds, failed = run_one(store, args.database_url, workers, scans, args.model, tmp)
                rate = len(scans) / seconds
                one = next((r.scans_per_s for r in rows if r.workers == 1), rate)
                rows.append(
                    Result(
                        workers=workers,
                        scans=len(scans),
                        seconds=round(seconds, 2),
                        scans_per_s=round(rate, 2),
                        efficiency=round(rate / (workers * one), 2),
                        failed=failed,
                        load_average=round(os.getloadavg()[0], 1),
                    )
                )
                print(json.dumps(asdict(rows[-1])), flush=True)
        finally:
            store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{len(scans)} scans ({distinct} distinct files), {os.cpu_count()} cores")
    print("workers  seconds  scans/s  efficiency  failed  load")
    for r in rows:
        print(
            f"{r.workers:7d}  {r.seconds:7.1f}  {r.scans_per_s:7.2f}  {r.efficiency:10.2f}"
            f"  {r.failed:6d}  {r.load_average:4.1f}"
        )
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "cores": os.cpu_count(),
                    "distinct_files": distinct,
                    "rows": [asdict(r) for r in rows],
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
