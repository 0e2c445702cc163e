"""The batch-job queue shared on PostgreSQL: two uvicorn processes on one
real database. A job is submitted to an API replica; the process holding one
of its batches is killed with SIGKILL (a worker-only replica,
XRDID_ROLE=worker, or the API replica the job was submitted to); the job
still completes on the other process, every scan answered once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from indexer.migrate_to_postgres import migrate_library
from tests.e2e.support import Server, copy_library
from tests.e2e.test_lims import assert_columns_found, columns_job, wait_for_second_batch
from tests.postgres import PostgresServer, held_scans

pytestmark = pytest.mark.slow

LEASE_S = 2.0


@pytest.fixture(params=["worker", "api"])
def two_processes(
    request: pytest.FixtureRequest,
    server_env: dict[str, str],
    database_url: str,
    e2e_library: Path,
    tmp_path: Path,
) -> Iterator[tuple[Server, Server]]:
    """An API replica and a second process: a worker-only replica or another API replica."""
    library = copy_library(e2e_library, tmp_path / "copy" / "library.sqlite")
    copied, present = migrate_library(library, database_url, progress=False)
    assert copied == present > 0
    env = server_env | {
        "XRDID_DATABASE_URL": database_url,
        "XRDID_JOB_BATCH_SIZE": "2",
        "XRDID_JOB_WORKERS": "1",
        "XRDID_JOB_LEASE_S": str(LEASE_S),
    }
    api = Server(env, tmp_path / "api.log").start()
    other = Server(env | {"XRDID_ROLE": request.param}, tmp_path / f"{request.param}.log")
    try:
        other.start()
        yield api, other
    finally:
        api.stop()
        other.stop()


def _held_by(database_url: str, job_id: str, pid: int) -> list[int]:
    """The scans of the job that process ``pid`` holds a claim on now."""
    return held_scans(database_url, job_id, f"jobs-%-{pid}-%")


def test_the_process_killed_holding_a_batch_loses_nothing(
    two_processes: tuple[Server, Server], database_url: str
) -> None:
    api, other = two_processes
    worker_only = other.env.get("XRDID_ROLE") == "worker"
    if worker_only:
        with other.client() as client:  # a worker serves no identification
            assert client.get("/ready").status_code == 200
            assert client.post("/identify", files={"file": ("a.xy", b"1 2\n")}).status_code == 404
            assert client.get("/jobs/x").status_code == 404
    # Killed: the worker; or the API replica the job goes to, watched from the other.
    victim, observer = (other, api) if worker_only else (api, other)
    assert victim.process is not None
    pid = victim.process.pid
    files = columns_job(4)
    with api.client() as client:
        submitted = client.post("/jobs", files=[("files", f) for f in files], data={"top_k": "2"})
        assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    deadline = time.monotonic() + 60
    while not _held_by(database_url, job_id, pid):
        assert time.monotonic() < deadline, "the process never held a batch of the job"
        time.sleep(0.005)
    victim.kill()  # SIGKILL while it holds the batch: no shutdown code runs
    killed_at = time.monotonic()
    # What it held when it died (its leases lapse only LEASE_S later).
    held = _held_by(database_url, job_id, pid)
    assert held, "the process held no batch when it was killed"
    with observer.client() as client:
        job = client.get(f"/jobs/{job_id}").json()
        done_before = {f["index"]: f["result"] for f in job["files"] if f["status"] == "succeeded"}
        assert job["status"] != "completed", "the job finished before the kill"
        while (job := client.get(f"/jobs/{job_id}").json())["status"] != "completed":
            assert time.monotonic() - killed_at < 120, job["progress"]
            time.sleep(0.1)
        assert client.get("/ready").json()["status"] == "ready"
    assert job["progress"]["succeeded"] == len(files), job["progress"]
    assert [f["index"] for f in job["files"]] == list(range(len(files)))
    for index, result in done_before.items():  # written once, never recomputed
        assert job["files"][index]["result"] == result
    assert_columns_found(job, files)
    with psycopg.connect(database_url) as db:
        attempts = dict(
            db.execute("SELECT idx, attempts FROM job_file WHERE job_id = %s", (job_id,)).fetchall()
        )
    # The killed process's batch was claimed again, once; the others once in all.
    assert {i: attempts[i] for i in held} == {i: 2 for i in held}
    assert {i for i, n in attempts.items() if n != 1} == set(held)


def test_a_database_restart_during_a_job_leaves_no_scan_claimed(
    server_env: dict[str, str],
    database_url: str,
    postgres_server: PostgresServer,
    e2e_library: Path,
    tmp_path: Path,
) -> None:
    """The database stops while a batch computes and stays down longer than
    the batch takes: writing its results fails and is retried until the
    database is back, and the job completes with every scan answered, none
    left claimed (a scan whose library reads met the outage goes back to
    the queue: test_job_outage)."""
    library = copy_library(e2e_library, tmp_path / "copy" / "library.sqlite")
    migrate_library(library, database_url, progress=False)
    env = server_env | {
        "XRDID_DATABASE_URL": database_url,
        "XRDID_JOB_BATCH_SIZE": "2",
        "XRDID_JOB_WORKERS": "1",
    }
    files = columns_job(3)
    server = Server(env, tmp_path / "api.log").start()
    try:
        with server.client() as client:
            response = client.post("/jobs", files=[("files", f) for f in files])
            assert response.status_code == 202, response.text
            wait_for_second_batch(client, job_id := response.json()["id"])
            postgres_server.stop("fast")  # while the next batch computes
            time.sleep(15.0)
            postgres_server.start()
            deadline = time.monotonic() + 120
            while (job := client.get(f"/jobs/{job_id}").json())["status"] != "completed":
                assert time.monotonic() < deadline, job["progress"]
                time.sleep(0.2)
        assert [f["index"] for f in job["files"]] == list(range(len(files)))
        assert job["progress"]["succeeded"] == len(files), job["progress"]
        assert_columns_found(job, files)
        assert "writing results failed; retrying" in server.log_path.read_text()
    finally:
        server.stop()
