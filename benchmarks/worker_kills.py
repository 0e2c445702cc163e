"""Crash safety of the shared job queue: worker processes killed with
SIGKILL while they hold a claimed batch, trial after trial, on one real
PostgreSQL; every scan must get exactly one outcome, none written twice.

    python -m benchmarks.worker_kills [--database-url postgresql://…] [--trials 20]
        [--scans 20] [--workers 2] [--lease-s 2] [--phases] [--json OUT]

Without ``--database-url`` a PostgreSQL server is started for the run in a
temporary folder (as the tests do). The shipped library is copied into the
database; ``--workers`` ``XRDID_ROLE=worker`` processes (one compute thread
each, ``XRDID_JOB_LEASE_S=--lease-s``, the default batch of 4 scans) run
throughout. Each trial puts one job of ``--scans`` real scans on the queue
(a new slice of the shared data's files per trial; phases off unless
``--phases``), waits until a random number of its scans are done (up to
all but a batch) and a worker holds a claimed batch of the job (read from the
claims in the database, as ``tests/e2e/test_job_queue.py`` does), kills it with
SIGKILL, starts a replacement worker, and waits for the job to complete.
A trial is run again with a new job when the job finished before a worker
was caught holding a batch, or when the kill came just after the worker's
batch was written (it held none when it died; that job is checked too).

What the service's tables keep (a scan's final status, its ``attempts``)
cannot show a result written twice, so the benchmark adds triggers to its
own database that log every claim of a scan (a change to ``running`` or to
another lease owner) and every write of a final status, at the moment of
the write (``check_write_log`` shows first that it counts a second write).
From that log, per trial: the scans claimed more than once (re-claimed),
the scans without a final status or whose outcome was never written (lost),
the scans whose outcome was written more than once (duplicated), and how
many times the job was finished. The command fails (exit 1) unless no scan
was lost or duplicated, every job finished once and every scan the killed
worker held was claimed again.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

from app.store.base import FileOutcome, JobStatus, NewJob
from app.store.postgres import PostgresServiceStore, migrate
from benchmarks.job_workers import load_library, start_worker, wait_ready
from benchmarks.jobs import DEFAULT_LIBRARY, DEFAULT_MODEL, real_scans
from benchmarks.postgres import database

# Logged by the database itself, whichever process writes: each claim and
# each write of a final status of a scan, and each finish of a job.
WRITE_LOG = """
CREATE TABLE bench_write (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    job_id TEXT NOT NULL,
    idx INTEGER,
    owner TEXT,
    status TEXT,
    problem TEXT
);
CREATE FUNCTION bench_log_scan() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'running'
            AND (OLD.status <> 'running' OR OLD.lease_owner IS DISTINCT FROM NEW.lease_owner) THEN
        INSERT INTO bench_write (kind, job_id, idx, owner, status)
        VALUES ('claim', NEW.job_id, NEW.idx, NEW.lease_owner, NEW.status);
    ELSIF NEW.status IN ('succeeded', 'failed', 'cancelled') THEN
        INSERT INTO bench_write (kind, job_id, idx, owner, status, problem)
        VALUES ('outcome', NEW.job_id, NEW.idx, OLD.lease_owner, NEW.status, NEW.error->>'type');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER bench_log_scan AFTER UPDATE ON job_file
    FOR EACH ROW EXECUTE FUNCTION bench_log_scan();
CREATE FUNCTION bench_log_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('completed', 'cancelled') THEN
        INSERT INTO bench_write (kind, job_id, status) VALUES ('finish', NEW.id, NEW.status);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER bench_log_job AFTER UPDATE ON job
    FOR EACH ROW EXECUTE FUNCTION bench_log_job();
"""
ABANDONED = "urn:xrdid:problem:processing-abandoned"
BATCH_SIZE = 4  # the service's default XRDID_JOB_BATCH_SIZE
# A job finished before a worker was caught holding a batch is run again, this often at most.
RUNS_PER_TRIAL = 5


@dataclass
class Trial:
    trial: int
    scans: int
    killed_pid: int
    held_at_kill: list[int]  # the scans the killed worker held a claim on
    reclaimed: int  # scans claimed more than once
    lost: int  # scans without a final status, or whose outcome was never written
    duplicated: int  # scans whose outcome was written more than once
    job_finished: int  # times the job was set completed (1)
    abandoned: int  # scans given up after MAX_ATTEMPTS lapsed claims
    failed: int  # scans no reader accepts (the same files fail in every run)
    seconds: float  # submission to completion
    load_average: float
    held_not_reclaimed: list[int] = field(default_factory=list)
    claims: dict[int, int] = field(default_factory=dict)  # the scans claimed more than once


class Missed(Exception):
    """The job was finished before a worker was caught holding a batch of it."""


class Workers:
    """The worker processes, replaced one by one as they are killed."""

    def __init__(self, database_url: str, model: Path, logs: Path, env: dict[str, str]) -> None:
        self.database_url, self.model, self.logs, self.env = database_url, model, logs, env
        self.started = 0
        self.running: dict[int, tuple[subprocess.Popen[bytes], str, Path]] = {}

    def start(self) -> int:
        log = self.logs / f"worker-{self.started}.log"
        self.started += 1
        process, url = start_worker(self.database_url, self.model, log, self.env)
        self.running[process.pid] = (process, url, log)
        return process.pid

    def wait_ready(self) -> None:
        for process, url, log in self.running.values():
            wait_ready(process, url, log)

    def kill(self, pid: int) -> None:
        process, _, _ = self.running.pop(pid)
        process.send_signal(signal.SIGKILL)  # no shutdown code runs
        process.wait()

    def stop(self) -> None:
        for process, _, _ in self.running.values():
            process.terminate()
        for process, _, _ in self.running.values():
            process.wait(timeout=120)
        self.running.clear()


def holders(db: psycopg.Connection[tuple[object, ...]], job_id: str) -> dict[int, list[int]]:
    """The worker processes (pid) holding a claim on scans of the job now, and those scans."""
    held: dict[int, list[int]] = {}
    for owner, idx in db.execute(
        "SELECT lease_owner, idx FROM job_file WHERE job_id = %s AND status = 'running' "
        "ORDER BY idx",
        (job_id,),
    ):
        held.setdefault(int(str(owner).split("-")[-2]), []).append(int(str(idx)))
    return held


def done(db: psycopg.Connection[tuple[object, ...]], job_id: str) -> int:
    """Scans of the job with their outcome written."""
    row = db.execute(
        "SELECT COUNT(*) FROM job_file WHERE job_id = %s AND status IN ('succeeded', 'failed')",
        (job_id,),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def check_write_log(
    store: PostgresServiceStore, db: psycopg.Connection[tuple[object, ...]]
) -> None:
    """The log counts what it should: a scan claimed again after its lease
    lapsed shows two claims; its outcome, refused to the first owner and
    written by the second, then written again by hand (as no worker may),
    shows two outcomes."""
    job_id = "write-log-check"
    store.create_job(NewJob(job_id, time.time(), {}, [("a.xy", b"1 2")]), max_queued_files=10**6)
    first, second = "jobs-check-1-a", "jobs-check-2-b"
    for owner in (first, second):  # the first lease lapses at once
        store.claim_files(owner, time.time(), lease_s=0.0, limit=1, max_attempts=2, retention_s=60)
    outcome = [FileOutcome(0, error={"type": "check"})]
    written = [
        store.complete_files(owner, job_id, outcome, time.time(), retention_s=60)
        for owner in (first, second)
    ]
    db.execute("UPDATE job_file SET status = 'succeeded' WHERE job_id = %s", (job_id,))
    kinds = Counter(
        str(kind)
        for (kind,) in db.execute("SELECT kind FROM bench_write WHERE job_id = %s", (job_id,))
    )
    if written != [0, 1] or kinds != Counter({"claim": 2, "outcome": 2, "finish": 1}):
        raise AssertionError(f"the write log counted {dict(kinds)}, the store wrote {written}")
    db.execute("DELETE FROM job WHERE id = %s", (job_id,))
    db.execute("DELETE FROM bench_write WHERE job_id = %s", (job_id,))


def describe(db: psycopg.Connection[tuple[object, ...]], job_id: str, workers: Workers) -> str:
    """The job's scans and write log, and the workers, for a trial that went wrong."""
    now = time.time()
    lines = [
        f"scan {idx}: {status}, attempts {attempts}, owner {owner}, lease ends in "
        + ("-" if expires is None else f"{float(str(expires)) - now:.1f} s")
        for idx, status, attempts, owner, expires in db.execute(
            "SELECT idx, status, attempts, lease_owner, lease_expires FROM job_file "
            "WHERE job_id = %s ORDER BY idx",
            (job_id,),
        )
    ]
    lines += [
        f"log: {row}"
        for row in db.execute(
            "SELECT kind, idx, owner, status FROM bench_write WHERE job_id = %s ORDER BY id",
            (job_id,),
        )
    ]
    for pid, (process, _, log) in workers.running.items():
        state = "running" if process.poll() is None else f"exited {process.returncode}"
        lines.append(f"worker {pid} {state}, log {log}")
    return "\n".join(lines)


def run_trial(
    number: int,
    store: PostgresServiceStore,
    db: psycopg.Connection[tuple[object, ...]],
    workers: Workers,
    scans: list[tuple[str, bytes]],
    options: dict[str, object],
    rng: random.Random,
) -> Trial:
    workers.wait_ready()
    job_id = uuid.uuid4().hex
    start = time.monotonic()
    store.create_job(NewJob(job_id, time.time(), options, scans), max_queued_files=len(scans) + 1)
    deadline = time.monotonic() + 120
    # Kill in an early batch or a later one: once this many scans are done.
    done_before_kill = rng.randrange(len(scans) - BATCH_SIZE)
    while True:
        held = {p: s for p, s in holders(db, job_id).items() if p in workers.running}
        if held and done(db, job_id) >= done_before_kill:
            break
        job = store.get_job(job_id, time.time())
        if job is not None and job.status is JobStatus.COMPLETED:
            raise Missed()  # the job finished before a kill
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"trial {number}: no worker held a batch of the job in 120 s; its scans:\n"
                + describe(db, job_id, workers)
            )
        time.sleep(0.005)
    pid = rng.choice(sorted(held))
    workers.kill(pid)
    held_at_kill = holders(db, job_id).get(pid, [])  # its claims, as it left them
    workers.start()
    while (job := store.get_job(job_id, time.time())) is None or job.status not in (
        JobStatus.COMPLETED,
        JobStatus.CANCELLED,
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"trial {number}: the job did not complete in 120 s; its scans:\n"
                + describe(db, job_id, workers)
            )
        time.sleep(0.05)
    seconds = time.monotonic() - start

    final = {
        int(str(idx)): str(status)
        for idx, status in db.execute(
            "SELECT idx, status FROM job_file WHERE job_id = %s", (job_id,)
        )
    }
    log = db.execute(
        "SELECT kind, idx, status, problem FROM bench_write WHERE job_id = %s", (job_id,)
    ).fetchall()
    claims = Counter(int(str(idx)) for kind, idx, _, _ in log if kind == "claim")
    outcomes = Counter(int(str(idx)) for kind, idx, _, _ in log if kind == "outcome")
    reclaimed = {idx for idx, n in claims.items() if n > 1}
    return Trial(
        trial=number,
        scans=len(scans),
        killed_pid=pid,
        held_at_kill=held_at_kill,
        reclaimed=len(reclaimed),
        lost=sum(
            1
            for idx in range(len(scans))
            if final.get(idx) not in ("succeeded", "failed") or outcomes[idx] == 0
        ),
        duplicated=sum(1 for n in outcomes.values() if n > 1),
        job_finished=sum(1 for kind, _, _, _ in log if kind == "finish"),
        abandoned=sum(1 for kind, _, _, p in log if kind == "outcome" and p == ABANDONED),
        failed=sum(1 for status in final.values() if status == "failed"),
        seconds=round(seconds, 2),
        load_average=round(os.getloadavg()[0], 1),
        held_not_reclaimed=sorted(set(held_at_kill) - reclaimed),
        claims={idx: claims[idx] for idx in sorted(reclaimed)},
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default=None, help="an empty database (default: a temporary server)"
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--scans", type=int, default=20, help="scans per trial's job")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (≥ 2)")
    parser.add_argument("--lease-s", type=float, default=2.0, help="XRDID_JOB_LEASE_S")
    parser.add_argument("--phases", action="store_true", help="with the phase analysis")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--library", type=Path, default=DEFAULT_LIBRARY)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.workers < 2:
        parser.error("--workers: at least 2 (one is killed while the others go on)")

    every, distinct = real_scans(args.trials * args.scans)
    options: dict[str, object] = {"phases": args.phases}
    rng = random.Random(args.seed)
    load_before = round(os.getloadavg()[0], 1)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="xrdid-worker-kills-"))
    trials: list[Trial] = []
    missed = 0  # jobs finished before a worker was caught holding a batch, run again
    # Kills that came just after the worker's batch was written (it held none):
    # their jobs are checked like the others, and the trial is run again.
    late: list[Trial] = []
    ok = False
    try:
        with database(args.database_url) as url:
            load_library(args.library, url, tmp)
            migrate(url)  # the service store's tables, for the triggers
            with psycopg.connect(url, autocommit=True) as db:
                db.execute(WRITE_LOG)  # type: ignore[arg-type]  # a static script
                store = PostgresServiceStore(url)
                check_write_log(store, db)
                worker_env = {
                    "XRDID_JOB_LEASE_S": str(args.lease_s),
                    "XRDID_JOB_BATCH_SIZE": str(BATCH_SIZE),
                }
                workers = Workers(url, args.model, tmp, worker_env)
                try:
                    for _ in range(args.workers):
                        workers.start()
                    for n in range(args.trials):
                        scans = every[n * args.scans : (n + 1) * args.scans]
                        for _ in range(RUNS_PER_TRIAL):
                            try:
                                trial = run_trial(n + 1, store, db, workers, scans, options, rng)
                            except Missed:
                                missed += 1
                                continue
                            print(json.dumps(asdict(trial)), flush=True)
                            if trial.held_at_kill:
                                trials.append(trial)
                                break
                            late.append(trial)  # checked as well, then run again
                        else:
                            raise RuntimeError(f"trial {n + 1}: no kill in {RUNS_PER_TRIAL} jobs")
                    ok = True
                finally:
                    workers.stop()
                    store.close()
    finally:
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"the workers' logs are kept in {tmp}", file=sys.stderr)

    totals = {
        key: sum(getattr(t, key) for t in trials)
        for key in ("scans", "reclaimed", "lost", "duplicated", "abandoned", "failed")
    }
    totals["held_at_kill"] = sum(len(t.held_at_kill) for t in trials)
    totals["held_not_reclaimed"] = sum(len(t.held_not_reclaimed) for t in trials)
    totals["jobs_not_finished_once"] = sum(1 for t in trials if t.job_finished != 1)
    totals["jobs_finished_before_a_kill"] = missed
    totals["kills_after_the_batch_was_written"] = len(late)
    totals["lost_or_duplicated_in_those"] = sum(t.lost + t.duplicated for t in late)
    print(
        f"\n{args.trials} trials, {args.workers} workers, {args.scans} scans each "
        f"(phases {'on' if args.phases else 'off'}), lease {args.lease_s:g} s, "
        f"{os.cpu_count()} cores, {time.monotonic() - started:.0f} s"
    )
    print("trial  scans  killed pid  held  re-claimed  lost  duplicated  seconds  load")
    for t in trials:
        print(
            f"{t.trial:5d}  {t.scans:5d}  {t.killed_pid:10d}  {len(t.held_at_kill):4d}"
            f"  {t.reclaimed:10d}  {t.lost:4d}  {t.duplicated:10d}  {t.seconds:7.1f}"
            f"  {t.load_average:4.1f}"
        )
    print("total", json.dumps(totals))
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "cores": os.cpu_count(),
                    "workers": args.workers,
                    "scans_per_trial": args.scans,
                    "distinct_files": distinct,
                    "phases": args.phases,
                    "lease_s": args.lease_s,
                    "batch_size": BATCH_SIZE,
                    "seed": args.seed,
                    "load_average_before": load_before,
                    "seconds": round(time.monotonic() - started, 1),
                    "totals": totals,
                    "trials": [asdict(t) for t in trials],
                    "kills_after_the_batch_was_written": [asdict(t) for t in late],
                },
                indent=2,
            )
            + "\n"
        )
    met = (
        totals["lost"] == totals["duplicated"] == totals["jobs_not_finished_once"] == 0
        and totals["held_not_reclaimed"] == totals["lost_or_duplicated_in_those"] == 0
        and all(t.job_finished == 1 for t in late)
    )
    print("target (0 lost, 0 duplicated):", "met" if met else "MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
