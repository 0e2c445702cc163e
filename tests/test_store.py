"""The service store's contract (app.store.base.ServiceStore), run against
every backend: add one to ``BACKENDS`` and the whole suite runs on it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.store.base import (
    AuditEvent,
    DeliveryAttempt,
    FileOutcome,
    FileStatus,
    JobStatus,
    NewJob,
    QueueFullError,
    ServiceStore,
    StoredResponse,
)
from app.store.sqlite import SCHEMA_VERSION, SqliteServiceStore, StoreVersionError


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], ServiceStore]:
    return lambda: SqliteServiceStore(tmp_path / "service.sqlite")


def _postgres(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], ServiceStore]:
    """A new database on the session's real PostgreSQL (tests/postgres.py)."""
    from app.store.postgres import PostgresServiceStore

    url = str(request.getfixturevalue("database_url"))
    return lambda: PostgresServiceStore(url)


# Each backend gives a factory of stores on one fresh database: several
# stores on it stand for several processes (replicas) sharing the queue.
BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Callable[[], ServiceStore]]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}

LEASE_S = 10.0
RETENTION_S = 100.0


@pytest.fixture(params=sorted(BACKENDS))
def open_stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], ServiceStore]]:
    factory = BACKENDS[request.param](request, tmp_path)
    opened: list[ServiceStore] = []

    def open_one() -> ServiceStore:
        opened.append(factory())
        return opened[-1]

    yield open_one
    for backend in opened:
        backend.close()


@pytest.fixture()
def store(open_stores: Callable[[], ServiceStore]) -> ServiceStore:
    return open_stores()


def new_job(job_id: str, n: int, at: float = 0.0, **kwargs: object) -> NewJob:
    files = [(f"scan{i}.xy", f"data {job_id} {i}".encode()) for i in range(n)]
    return NewJob(job_id, at, {"top_k": 3}, files, **kwargs)  # type: ignore[arg-type]


def claim(store: ServiceStore, owner: str, now: float, limit: int = 10, max_attempts: int = 2):
    return store.claim_files(
        owner, now, lease_s=LEASE_S, limit=limit, max_attempts=max_attempts,
        retention_s=RETENTION_S,
    )  # fmt: skip


def complete(store: ServiceStore, owner: str, job_id: str, indices: list[int], now: float) -> int:
    outcomes = [FileOutcome(i, result={"index": i}) for i in indices]
    return store.complete_files(owner, job_id, outcomes, now, retention_s=RETENTION_S)


# --------------------------------------------------------------------------- jobs


def test_job_is_stored_with_its_files_in_order(store: ServiceStore) -> None:
    created = store.create_job(new_job("a", 3, sample_id="S1"), max_queued_files=10)
    assert created.status is JobStatus.QUEUED and created.total == 3
    assert created.counts[FileStatus.QUEUED] == 3
    got = store.get_job("a", now=1.0)
    assert got is not None and got.sample_id == "S1" and got.options == {"top_k": 3}
    assert [f.filename for f in store.job_files("a")] == ["scan0.xy", "scan1.xy", "scan2.xy"]
    assert store.get_job("missing", now=1.0) is None


def test_queue_is_bounded(store: ServiceStore) -> None:
    store.create_job(new_job("a", 3), max_queued_files=5)
    with pytest.raises(QueueFullError) as caught:
        store.create_job(new_job("b", 3), max_queued_files=5)
    assert (caught.value.queued, caught.value.wanted) == (3, 3)
    assert store.get_job("b", now=0.0) is None  # nothing of it was stored
    store.create_job(new_job("c", 2), max_queued_files=5)
    assert store.queued_files() == 5


def test_claims_are_exclusive_and_oldest_job_first(store: ServiceStore) -> None:
    store.create_job(new_job("old", 3, at=1.0), max_queued_files=100)
    store.create_job(new_job("new", 2, at=2.0), max_queued_files=100)
    first = claim(store, "w1", 5.0, limit=2)
    second = claim(store, "w2", 5.0, limit=2)
    third = claim(store, "w3", 5.0, limit=5)
    assert first and second and third
    assert (first.job_id, [f.index for f in first.files]) == ("old", [0, 1])
    assert (second.job_id, [f.index for f in second.files]) == ("old", [2])
    assert (third.job_id, [f.index for f in third.files]) == ("new", [0, 1])
    assert first.files[0].data == b"data old 0"
    assert claim(store, "w4", 5.0) is None
    job = store.get_job("old", now=5.0)
    assert job and job.status is JobStatus.RUNNING and job.started_at == 5.0


def test_each_file_is_written_once(store: ServiceStore) -> None:
    store.create_job(new_job("a", 2), max_queued_files=10)
    batch = claim(store, "w1", 1.0)
    assert batch is not None
    assert complete(store, "w1", "a", [0], 2.0) == 1
    assert complete(store, "w1", "a", [0], 2.5) == 0  # already written
    assert complete(store, "w2", "a", [1], 2.5) == 0  # not w2's claim
    assert complete(store, "w1", "a", [1], 3.0) == 1
    job = store.get_job("a", now=3.0)
    assert job and job.status is JobStatus.COMPLETED and job.finished_at == 3.0
    assert job.expires_at == 3.0 + RETENTION_S
    files = store.job_files("a")
    assert [f.result for f in files] == [{"index": 0}, {"index": 1}]
    assert all(f.status is FileStatus.SUCCEEDED for f in files)


def test_lapsed_claim_is_retried_and_the_late_write_refused(store: ServiceStore) -> None:
    store.create_job(new_job("a", 1), max_queued_files=10)
    assert claim(store, "dead", 1.0) is not None
    assert claim(store, "w2", 1.0 + LEASE_S / 2) is None  # the lease still holds
    retry = claim(store, "w2", 1.0 + LEASE_S)
    assert retry is not None and [f.index for f in retry.files] == [0]
    assert complete(store, "dead", "a", [0], 20.0) == 0
    assert complete(store, "w2", "a", [0], 20.0) == 1
    (record,) = store.job_files("a")
    assert record.attempts == 2 and record.status is FileStatus.SUCCEEDED


def test_renewed_lease_is_not_taken(store: ServiceStore) -> None:
    store.create_job(new_job("a", 1), max_queued_files=10)
    claim(store, "w1", 0.0)
    assert store.renew_leases("w1", LEASE_S - 1.0, LEASE_S) == 1
    assert claim(store, "w2", LEASE_S + 1.0) is None


def test_a_file_that_kills_every_attempt_is_failed(store: ServiceStore) -> None:
    store.create_job(new_job("a", 1), max_queued_files=10)
    assert claim(store, "dead1", 0.0, max_attempts=2) is not None
    assert claim(store, "dead2", LEASE_S, max_attempts=2) is not None
    assert claim(store, "w3", 2 * LEASE_S, max_attempts=2) is None
    (record,) = store.job_files("a")
    assert record.status is FileStatus.FAILED and record.error is not None
    assert "2 times" in record.error["detail"]
    job = store.get_job("a", now=2 * LEASE_S)
    assert job and job.status is JobStatus.COMPLETED


def test_released_claims_go_back_without_costing_an_attempt(store: ServiceStore) -> None:
    store.create_job(new_job("a", 2), max_queued_files=10)
    claim(store, "w1", 0.0)
    assert store.release_claims("w1") == 2
    again = claim(store, "w2", 0.0)
    assert again is not None and len(again.files) == 2
    assert all(f.attempts == 1 for f in store.job_files("a"))


def test_files_given_back_are_claimed_again_without_costing_an_attempt(
    store: ServiceStore,
) -> None:
    store.create_job(new_job("a", 3), max_queued_files=10)
    claim(store, "w1", 0.0)
    assert store.release_files("w2", "a", [0]) == 0  # not its claim
    assert store.release_files("w1", "a", [0, 2]) == 2
    files = store.job_files("a")
    assert [f.status for f in files] == [FileStatus.QUEUED, FileStatus.RUNNING, FileStatus.QUEUED]
    assert [f.attempts for f in files] == [0, 1, 0]
    again = claim(store, "w2", 1.0)
    assert again is not None and [f.index for f in again.files] == [0, 2]
    job = store.get_job("a", now=1.0)
    assert job is not None and job.status is JobStatus.RUNNING


def test_failed_outcome_is_kept_as_a_problem(store: ServiceStore) -> None:
    store.create_job(new_job("a", 1), max_queued_files=10)
    claim(store, "w1", 0.0)
    problem = {"type": "urn:xrdid:problem:unreadable-pattern", "status": 422, "detail": "x"}
    written = store.complete_files(
        "w1", "a", [FileOutcome(0, error=problem)], 1.0, retention_s=RETENTION_S
    )
    assert written == 1
    (record,) = store.job_files("a")
    assert record.status is FileStatus.FAILED and record.error == problem


def test_cancel_stops_unfinished_files_and_keeps_results(store: ServiceStore) -> None:
    store.create_job(new_job("a", 3), max_queued_files=10)
    claim(store, "w1", 0.0, limit=2)
    complete(store, "w1", "a", [0], 1.0)
    audit = AuditEvent(1.5, "job.cancel", "/jobs/a", "key_1", "req-1", "127.0.0.1")
    job = store.cancel_job("a", 1.5, retention_s=RETENTION_S, audit=audit)
    assert job is not None and job.status is JobStatus.CANCELLED
    assert [f.status for f in store.job_files("a")] == [
        FileStatus.SUCCEEDED,
        FileStatus.CANCELLED,
        FileStatus.CANCELLED,
    ]
    assert complete(store, "w1", "a", [1], 2.0) == 0  # the running scan's result is dropped
    assert claim(store, "w2", 2.0) is None
    assert store.queued_files() == 0
    again = store.cancel_job("a", 3.0, retention_s=RETENTION_S)
    assert again is not None and again.finished_at == 1.5  # cancelling twice changes nothing
    assert [e.action for e in store.audit_page(after=0, limit=10)] == ["job.cancel"]


def test_finished_jobs_expire(store: ServiceStore) -> None:
    store.create_job(new_job("a", 1), max_queued_files=10)
    claim(store, "w1", 0.0)
    complete(store, "w1", "a", [0], 1.0)
    assert store.get_job("a", now=1.0 + RETENTION_S - 1) is not None
    assert store.get_job("a", now=1.0 + RETENTION_S) is None
    assert store.purge_expired(now=1.0 + RETENTION_S) >= 1
    assert store.job_files("a") == []


def test_job_submit_is_audited_in_the_same_transaction(store: ServiceStore) -> None:
    audit = AuditEvent(0.0, "job.submit", "/jobs/a", "key_1", "req-1", "10.0.0.1", {"files": 2})
    store.create_job(new_job("a", 2), max_queued_files=10, audit=audit)
    with pytest.raises(QueueFullError):
        store.create_job(new_job("b", 20), max_queued_files=10, audit=audit)
    (entry,) = store.audit_page(after=0, limit=10)
    assert entry.details == {"files": 2} and entry.client == "10.0.0.1"


# --------------------------------------------------------------------------- idempotency


def begin(store: ServiceStore, key: str, fingerprint: str, now: float, scope: str = "k1"):
    return store.idempotency_begin(scope, key, fingerprint, now, ttl_s=100.0, lock_s=10.0)


def test_idempotency_replays_the_first_response(store: ServiceStore) -> None:
    assert begin(store, "key", "fp", 0.0).outcome == "started"
    assert begin(store, "key", "fp", 1.0).outcome == "in_progress"
    assert begin(store, "key", "other", 1.0).outcome == "mismatch"
    response = StoredResponse(201, {"location": "/references/7"}, b'{"id": 7}')
    store.idempotency_complete("k1", "key", response, 2.0)
    replay = begin(store, "key", "fp", 3.0)
    assert replay.outcome == "replay" and replay.response == response
    assert begin(store, "key", "other", 3.0).outcome == "mismatch"
    assert begin(store, "key", "fp", 3.0, scope="k2").outcome == "started"  # another client


def test_idempotency_keys_expire_and_abandoned_locks_lapse(store: ServiceStore) -> None:
    begin(store, "key", "fp", 0.0)
    store.idempotency_complete("k1", "key", StoredResponse(202, {}, b"{}"), 1.0)
    assert begin(store, "key", "new", 100.0).outcome == "started"  # expired: a new request
    assert begin(store, "key", "new", 105.0).outcome == "in_progress"
    assert begin(store, "key", "new", 111.0).outcome == "started"  # its request died
    store.idempotency_release("k1", "key")
    assert begin(store, "key", "other", 112.0).outcome == "started"


def test_idempotency_begin_has_one_winner(store: ServiceStore) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def race() -> None:
        barrier.wait()
        outcomes.append(begin(store, "race", "fp", 0.0).outcome)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["in_progress"] * 7 + ["started"]


def test_workers_of_several_processes_claim_each_file_once(
    open_stores: Callable[[], ServiceStore],
) -> None:
    """Four stores on one database (four replicas' workers) drain two jobs
    concurrently: every scan is claimed once, written once, and each job
    finishes once (one webhook event each)."""
    stores = [open_stores() for _ in range(4)]
    stores[0].create_job(
        new_job("a", 30, callback_url="https://lims.example/a"), max_queued_files=99
    )
    stores[0].create_job(
        new_job("b", 30, 1.0, callback_url="https://lims.example/b"), max_queued_files=99
    )
    claimed: list[tuple[str, int]] = []
    written: list[int] = []
    barrier = threading.Barrier(len(stores))

    def work(worker: int, backend: ServiceStore) -> None:
        barrier.wait()
        while (batch := claim(backend, f"w{worker}", 0.0, limit=3)) is not None:
            indices = [f.index for f in batch.files]
            claimed.extend((batch.job_id, i) for i in indices)
            written.append(complete(backend, f"w{worker}", batch.job_id, indices, 1.0))

    threads = [threading.Thread(target=work, args=pair) for pair in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted([("a", i) for i in range(30)] + [("b", i) for i in range(30)])
    assert sum(written) == 60
    for job_id in ("a", "b"):
        job = stores[1].get_job(job_id, now=2.0)
        assert job is not None and job.status is JobStatus.COMPLETED
        assert job.counts[FileStatus.SUCCEEDED] == 30
        assert len(stores[2].deliveries(job_id)) == 1


# --------------------------------------------------------------------------- audit


def test_audit_pages_in_order(store: ServiceStore) -> None:
    ids = [
        store.audit_append(
            AuditEvent(float(i), "reference.create", f"/references/{i}", "key_1", f"r{i}", "::1")
        )
        for i in range(5)
    ]
    assert ids == sorted(ids)
    page = store.audit_page(after=0, limit=3)
    assert [e.target for e in page] == ["/references/0", "/references/1", "/references/2"]
    rest = store.audit_page(after=page[-1].id, limit=3)
    assert [e.request_id for e in rest] == ["r3", "r4"]


# --------------------------------------------------------------------------- webhooks


def finished_job_with_callback(store: ServiceStore) -> str:
    store.create_job(new_job("a", 1, callback_url="https://lims.example/hook"), max_queued_files=5)
    claim(store, "w1", 0.0)
    complete(store, "w1", "a", [0], 1.0)
    return "a"


def test_finishing_a_job_queues_its_event(store: ServiceStore) -> None:
    import json

    finished_job_with_callback(store)
    (delivery,) = store.deliveries("a")
    assert delivery.event_type == "job.completed" and delivery.status == "pending"
    assert delivery.url == "https://lims.example/hook"
    payload = json.loads(delivery.payload)
    assert payload["type"] == "job.completed"
    assert payload["data"]["succeeded"] == 1 and payload["data"]["job_id"] == "a"


def test_deliveries_are_claimed_retried_and_logged(store: ServiceStore) -> None:
    finished_job_with_callback(store)
    (due,) = store.claim_deliveries("d1", 1.0, lease_s=LEASE_S, limit=10)
    assert store.claim_deliveries("d2", 1.0, lease_s=LEASE_S, limit=10) == []  # claimed
    store.record_attempt(
        due.id, DeliveryAttempt(1.0, 500, "HTTP 500", 3.0), delivered=False, next_attempt_at=6.0
    )
    assert store.claim_deliveries("d2", 5.0, lease_s=LEASE_S, limit=10) == []  # not yet due
    (again,) = store.claim_deliveries("d2", 6.0, lease_s=LEASE_S, limit=10)
    assert again.id == due.id and again.payload == due.payload
    store.record_attempt(
        due.id, DeliveryAttempt(6.0, 204, None, 2.0), delivered=True, next_attempt_at=None
    )
    (logged,) = store.deliveries("a")
    assert logged.status == "delivered"
    assert [(a.status_code, a.error) for a in logged.attempts] == [(500, "HTTP 500"), (204, None)]
    assert store.claim_deliveries("d3", 100.0, lease_s=LEASE_S, limit=10) == []


def test_a_delivery_out_of_attempts_fails(store: ServiceStore) -> None:
    finished_job_with_callback(store)
    (due,) = store.claim_deliveries("d1", 1.0, lease_s=LEASE_S, limit=10)
    store.record_attempt(
        due.id, DeliveryAttempt(1.0, None, "refused", 1.0), delivered=False, next_attempt_at=None
    )
    (logged,) = store.deliveries("a")
    assert logged.status == "failed" and logged.next_attempt_at is None


# --------------------------------------------------------------------------- sqlite


def test_sqlite_store_survives_reopening_and_refuses_a_newer_schema(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "service.sqlite"
    store = SqliteServiceStore(path)
    store.create_job(new_job("a", 1), max_queued_files=10)
    store.close()
    reopened = SqliteServiceStore(path)
    assert reopened.get_job("a", now=0.0) is not None
    reopened.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreVersionError, match="newer xrdid"):
        SqliteServiceStore(path)


# --------------------------------------------------------------------------- postgres


def test_library_and_service_store_migrate_at_once_in_one_process(database_url: str) -> None:
    """A replica migrates the libraries (XRD, and Raman in its own schema) and
    the service store from several threads at once; Alembic keeps a run's
    context in module globals, so the runs must not interleave (they did: the
    store's tables were recorded in the library's version table, and every
    later start failed)."""
    import psycopg

    from app.store.postgres import migrate as migrate_store
    from xrdid.library.postgres import SCHEMAS
    from xrdid.library.postgres import migrate as migrate_library
    from xrdid.technique import Technique

    def migrate_raman(url: str) -> None:
        migrate_library(url, SCHEMAS[Technique.RAMAN])

    runs = [migrate_library, migrate_store, migrate_raman] * 2
    barrier = threading.Barrier(len(runs))
    errors: list[BaseException] = []

    def run(migrate: Callable[[str], None]) -> None:
        barrier.wait()
        try:
            migrate(database_url)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(m,)) for m in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    with psycopg.connect(database_url) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0002",)]
        raman = db.execute("SELECT version_num FROM raman.alembic_version").fetchall()
        assert raman == [("0002",)]
        service = db.execute("SELECT version_num FROM xrdid_service_alembic_version").fetchall()
        assert service == [("s0001",)]
        # Each library has its own tables: the Raman schema holds no service table.
        tables = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raman'"
        ).fetchall()
        assert {t for (t,) in tables} == {
            "alembic_version",
            "library_meta",
            "reference",
            "reference_profile",
            "reference_element",
            "reference_change",
        }
