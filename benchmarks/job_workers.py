"""Batch-job throughput against the number of worker processes on the
shared PostgreSQL queue: 1, 2 and 4 worker-only replicas side by side, in
one run, on one database holding the shipped library; then the queue alone.

    python -m benchmarks.job_workers [--database-url postgresql://…] [--workers 1 2 4]
        [--blas-threads 1] [--scans 200] [--queue-clients 1 4 8] [--json OUT]

Without ``--database-url`` a PostgreSQL server is started for the run in a
temporary folder (as the tests do); the shipped library is copied into the
database with ``migrate-to-postgres``. For each ``--blas-threads`` value
(``XRDID_BLAS_THREADS``) and worker count, that many ``XRDID_ROLE=worker``
processes (uvicorn, one compute thread and one job worker each: one core's
worth) are started, waited for until ready and warmed up with a batch each
(a process's first batch loads lazily); then one job of ``--scans`` real
scans (``benchmarks.jobs.real_scans``, default options: phases on) is put on
the queue and timed from its creation until the poll (every 0.1 s) that
sees it completed. Per-core efficiency is the rate divided by (workers × the
one-worker rate); where the workers outnumber the cores it shows the cores'
limit, not the queue's. The CPU time of the worker processes during the job
(``/proc``) says whether they computed more per scan, or waited.

The queue alone (``--queue-clients``): that many clients, each with its own
connection pool, claim batches of 4 of one job of ``--queue-scans`` real
scans and write real results (the last run's) at once, without computing:
the scans per second one PostgreSQL serves this queue, the ceiling of
adding workers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psycopg

from app.store.base import FileOutcome, JobStatus, NewJob
from app.store.postgres import PostgresServiceStore
from benchmarks.jobs import DEFAULT_LIBRARY, DEFAULT_MODEL, real_scans
from benchmarks.postgres import database
from benchmarks.service import _free_port, family_cpu_s
from indexer.migrate_to_postgres import migrate_library
from xrdid.data_paths import PROJECT_ROOT

BATCH_SIZE = 4  # the service's default XRDID_JOB_BATCH_SIZE


@dataclass
class Result:
    blas_threads: int  # XRDID_BLAS_THREADS of the workers
    workers: int
    scans: int
    seconds: float
    scans_per_s: float
    efficiency: float  # rate / (workers × one worker's rate)
    failed: int
    cpu_s: float  # CPU time of the worker processes during the job
    cpu_ms_per_scan: float
    cores_busy: float  # cpu_s / seconds: how many cores the workers kept busy
    machine_cores_busy: float  # the same for every process of the machine (/proc/stat)
    threads: int  # threads of one worker process (the most of them)
    involuntary_switches: int  # the workers' threads taken off a core during the job
    load_average: float
    job_id: str


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all processes, /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def postmaster(url: str) -> int:
    """The pid of the database's server (where it runs on this machine)."""
    with psycopg.connect(url) as db:
        row = db.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        return int(Path(f"/proc/{row[0]}/stat").read_text().rsplit(")", 1)[1].split()[1])


@dataclass
class Usage:
    """What /proc says a process has used so far."""

    cpu_s: float
    threads: int
    involuntary_switches: int

    @staticmethod
    def of(pid: int) -> Usage:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(stat[11]) + int(stat[12])  # utime, stime (fields 14, 15)
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
        return Usage(
            cpu_s=ticks / os.sysconf("SC_CLK_TCK"),
            threads=int(status["Threads"]),
            involuntary_switches=sum(
                int(Path(task, "status").read_text().split("nonvoluntary_ctxt_switches:")[1])
                for task in Path(f"/proc/{pid}/task").iterdir()
            ),
        )


def load_library(library: Path, database_url: str, tmp: Path) -> None:
    """Copy the library (SQLite) into the database, as ``migrate-to-postgres`` does."""
    copy = tmp / "library.sqlite"
    shutil.copy(library, copy)
    migrate_library(copy, database_url, progress=False)


def start_worker(
    database_url: str, model: Path, log: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """An ``XRDID_ROLE=worker`` process with one core's worth of compute
    (``env`` adds or overrides settings); (the process, its URL)."""
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
        # One core each, computing in the process measured (a job process would be a child).
        "XRDID_JOB_PROCESSES": "false",
        "XRDID_HOST": "127.0.0.1",
        "XRDID_PORT": str(port),
        "XRDID_LOG_LEVEL": "warning",
        **(env or {}),
    }
    with open(log, "ab") as out:
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


def run_job(store: PostgresServiceStore, scans: list[tuple[str, bytes]]) -> tuple[float, str]:
    """One job of ``scans`` put on the queue and waited for (polls every 0.1 s):
    (seconds from its creation to the poll that sees it completed, its id)."""
    job_id = uuid.uuid4().hex
    start = time.monotonic()
    store.create_job(NewJob(job_id, time.time(), {}, scans), max_queued_files=len(scans) + 1)
    while True:
        job = store.get_job(job_id, time.time())
        assert job is not None
        if job.status is JobStatus.COMPLETED:
            return time.monotonic() - start, job_id
        time.sleep(0.1)


def run_one(
    store: PostgresServiceStore,
    database_url: str,
    workers: int,
    scans: list[tuple[str, bytes]],
    model: Path,
    logs: Path,
    env: dict[str, str] | None = None,
) -> Result:
    """``workers`` processes started, warmed up (a batch each: the first in a
    process loads lazily), then timed on one job of ``scans``."""
    processes = [
        start_worker(database_url, model, logs / f"w{workers}-{i}.log", env) for i in range(workers)
    ]
    try:
        for i, (process, url) in enumerate(processes):
            wait_ready(process, url, logs / f"w{workers}-{i}.log")
        run_job(store, scans[: BATCH_SIZE * workers])
        before = [Usage.of(process.pid) for process, _ in processes]
        machine_before = machine_busy_s()
        seconds, job_id = run_job(store, scans)
        machine = machine_busy_s() - machine_before
        after = [Usage.of(process.pid) for process, _ in processes]
        failed = sum(1 for f in store.job_files(job_id) if f.status != "succeeded")
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            process.wait(timeout=120)
    cpu_s = sum(a.cpu_s - b.cpu_s for a, b in zip(after, before, strict=True))
    return Result(
        blas_threads=0,  # set by the caller
        workers=workers,
        scans=len(scans),
        seconds=round(seconds, 2),
        scans_per_s=round(len(scans) / seconds, 2),
        efficiency=1.0,  # set against the one-worker rate by the caller
        failed=failed,
        cpu_s=round(cpu_s, 1),
        cpu_ms_per_scan=round(1000 * cpu_s / len(scans), 1),
        cores_busy=round(cpu_s / seconds, 2),
        machine_cores_busy=round(machine / seconds, 2),
        threads=max(a.threads for a in after),
        involuntary_switches=sum(
            a.involuntary_switches - b.involuntary_switches
            for a, b in zip(after, before, strict=True)
        ),
        load_average=round(os.getloadavg()[0], 1),
        job_id=job_id,
    )


@dataclass
class QueueResult:
    clients: int
    scans: int
    seconds: float
    scans_per_s: float
    claims_per_s: float
    claim_and_write_ms_p50: float  # one batch's claim plus its results' write
    server_cpu_ms_per_claim: float  # the PostgreSQL server's CPU per claim and write
    load_average: float


def queue_only(
    url: str,
    scans: list[tuple[str, bytes]],
    results: list[dict[str, object]],
    clients: int,
) -> QueueResult:
    """The queue alone: ``clients`` threads, each with its own connection
    pool as a worker process has, claim batches of one job of ``scans`` and
    write real results at once (no computation), until the job is drained."""
    job_id = uuid.uuid4().hex
    setup = PostgresServiceStore(url)
    setup.create_job(NewJob(job_id, time.time(), {}, scans), max_queued_files=len(scans) + 1)
    setup.close()
    stores = [PostgresServiceStore(url, max_connections=2) for _ in range(clients)]
    times: list[float] = []
    server_pid = postmaster(url)

    def drain(number: int) -> None:
        store, owner = stores[number], f"queue-bench-{number}"
        while True:
            began = time.perf_counter()
            batch = store.claim_files(
                owner, time.time(), lease_s=60, limit=BATCH_SIZE, max_attempts=2, retention_s=3600
            )
            if batch is None:
                return
            outcomes = [
                FileOutcome(f.index, result=results[f.index % len(results)]) for f in batch.files
            ]
            store.complete_files(owner, batch.job_id, outcomes, time.time(), retention_s=3600)
            times.append(time.perf_counter() - began)

    try:
        for store in stores:  # each pool's connection open before the clock starts
            store.queued_files()
        threads = [threading.Thread(target=drain, args=(i,)) for i in range(clients)]
        server_before = family_cpu_s(server_pid)
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - began
        server = family_cpu_s(server_pid) - server_before
    finally:
        for store in stores:
            store.close()
    return QueueResult(
        clients=clients,
        scans=len(scans),
        seconds=round(seconds, 2),
        scans_per_s=round(len(scans) / seconds, 1),
        claims_per_s=round(len(times) / seconds, 1),
        claim_and_write_ms_p50=round(1000 * statistics.median(times), 2),
        server_cpu_ms_per_claim=round(1000 * server / len(times), 2),
        load_average=round(os.getloadavg()[0], 1),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default=None, help="an empty database (default: a temporary server)"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--blas-threads",
        type=int,
        nargs="+",
        default=[1],
        help="XRDID_BLAS_THREADS of the workers, each value a run of every worker count",
    )
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument(
        "--queue-clients",
        type=int,
        nargs="*",
        default=[1, 4, 8],
        help="the queue alone (no computation): claims and writes by this many clients",
    )
    parser.add_argument("--queue-scans", type=int, default=2000)
    parser.add_argument("--library", type=Path, default=DEFAULT_LIBRARY)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    scans, distinct = real_scans(args.scans)
    load_before = round(os.getloadavg()[0], 1)
    tmp = Path(tempfile.mkdtemp(prefix="xrdid-job-workers-"))
    rows: list[Result] = []
    queue: list[QueueResult] = []
    try:
        with database(args.database_url) as url:
            load_library(args.library, url, tmp)
            store = PostgresServiceStore(url)
            try:
                for blas in args.blas_threads:
                    env = {"XRDID_BLAS_THREADS": str(blas)}
                    per_worker: float | None = None  # the first count's rate per worker
                    for workers in args.workers:
                        row = run_one(store, url, workers, scans, args.model, tmp, env)
                        row.blas_threads = blas
                        per_worker = per_worker or row.scans_per_s / workers
                        row.efficiency = round(row.scans_per_s / (workers * per_worker), 2)
                        rows.append(row)
                        print(json.dumps(asdict(row)), flush=True)
                results = [f.result for f in store.job_files(row.job_id) if f.result is not None]
            finally:
                store.close()
            queue_scans, _ = real_scans(args.queue_scans)
            for clients in args.queue_clients:
                queue.append(queue_only(url, queue_scans, results, clients))
                print(json.dumps(asdict(queue[-1])), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{len(scans)} scans ({distinct} distinct files), {os.cpu_count()} cores")
    print(
        "BLAS threads  workers  seconds  scans/s  efficiency  CPU ms/scan  cores busy"
        "  machine busy  threads  failed  load"
    )
    for r in rows:
        print(
            f"{r.blas_threads:12d}  {r.workers:7d}  {r.seconds:7.1f}  {r.scans_per_s:7.2f}"
            f"  {r.efficiency:10.2f}  {r.cpu_ms_per_scan:11.0f}  {r.cores_busy:10.2f}"
            f"  {r.machine_cores_busy:12.2f}  {r.threads:7d}  {r.failed:6d}  {r.load_average:4.1f}"
        )
    if queue:
        print("\nthe queue alone (claim a batch of 4, write its results, no computation):")
        print("clients  scans/s  claims/s  claim+write ms p50  server CPU ms/claim  load")
        for q in queue:
            print(
                f"{q.clients:7d}  {q.scans_per_s:7.1f}  {q.claims_per_s:8.1f}"
                f"  {q.claim_and_write_ms_p50:18.2f}  {q.server_cpu_ms_per_claim:19.2f}"
                f"  {q.load_average:4.1f}"
            )
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "cores": os.cpu_count(),
                    "distinct_files": distinct,
                    "batch_size": BATCH_SIZE,
                    "load_average_before": load_before,
                    "rows": [asdict(r) for r in rows],
                    "queue_only": [asdict(q) for q in queue],
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
