"""A batch-job scan computed while the library's database is down is given
back to the queue, not failed: the outage is not the scan's fault."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from app.core.metrics import Metrics
from app.core.state import ServiceState, load_calibration
from app.jobs.runner import JobRunner, compute_batch
from app.models import IdentifyForm
from app.store.base import ClaimedBatch, ClaimedFile, FileStatus, NewJob
from app.store.sqlite import SqliteServiceStore
from indexer.migrate_to_postgres import migrate_library
from tests.e2e.support import rockjock_column_xy
from tests.postgres import PostgresServer
from tests.test_app import make_settings, small_library  # noqa: F401 - a fixture
from tests.test_job_processes import no_raman
from xrdid.embedder import Embedder
from xrdid.identify_files import XrdModel
from xrdid.library import Library


def test_scans_computed_while_the_database_is_down_are_given_back(
    tmp_path: Path,
    small_library: tuple[Path, Path],  # noqa: F811
    postgres_server: PostgresServer,
    database_url: str,
) -> None:
    model_file, library_path = small_library
    migrate_library(library_path, database_url, progress=False)
    settings = make_settings(tmp_path, model_file, library_path)
    embedder = Embedder.load(model_file, device="cpu")
    batch = ClaimedBatch(
        job_id="job",
        options=IdentifyForm.model_validate({"top_k": 2}).model_dump(mode="json"),
        sample_id=None,
        files=[
            ClaimedFile(0, "quartz.xy", rockjock_column_xy("QUARTZ")),  # type: ignore[arg-type]
            ClaimedFile(1, "bad.xy", b"1 2 3 x\n"),
        ],
    )
    with Library.open(database_url, embedder) as library:
        model = XrdModel(
            embedder, library, load_calibration(settings.calibration_path, embedder.version)
        )

        def compute() -> list[object]:
            return compute_batch(
                batch, lambda: model, no_raman, settings.default_top_k, settings.max_upload_bytes
            )

        postgres_server.stop("fast")  # the library's stored profiles cannot be read
        try:
            down = compute()
        finally:
            postgres_server.start()
        up = compute()
    quartz, bad = down
    assert quartz.retry and quartz.result is None and quartz.error is None  # type: ignore[attr-defined]
    # A file that cannot be read fails whether the database is up or not.
    assert bad.error["type"] == "urn:xrdid:problem:unreadable-pattern"  # type: ignore[attr-defined]
    assert up[0].result is not None and not up[0].retry  # type: ignore[attr-defined]
    assert up[1] == bad


def test_a_job_worker_gives_scans_back_during_an_outage_and_answers_them_after(
    tmp_path: Path,
    small_library: tuple[Path, Path],  # noqa: F811
    postgres_server: PostgresServer,
    database_url: str,
) -> None:
    """The runner's whole path: the batch computed while the library's database
    is down goes back to the queue (no attempt counted), and once the database
    is back the same scan is claimed again and answered."""
    model_file, library_path = small_library
    migrate_library(library_path, database_url, progress=False)
    settings = make_settings(
        tmp_path, model_file, library_path, database_url=database_url, job_processes=False
    )
    state = ServiceState(settings, Metrics())
    state.load_xrd()
    assert state.ready, state.error
    store = SqliteServiceStore(tmp_path / "service.sqlite")  # the queue stays reachable
    options = IdentifyForm.model_validate({"top_k": 2}).model_dump(mode="json")
    scan = ("quartz.xy", rockjock_column_xy("QUARTZ"))
    store.create_job(NewJob("job", time.time(), options, [scan]), max_queued_files=10)
    runner = JobRunner(state, store)

    def claim() -> ClaimedBatch:
        batch = store.claim_files(
            runner.owner, time.time(), lease_s=30.0, limit=4, max_attempts=2, retention_s=3600.0
        )
        assert batch is not None
        return batch

    async def outage_then_back() -> None:
        postgres_server.stop("fast")
        try:
            await runner._run(claim())
        finally:
            postgres_server.start()
        (given_back,) = store.job_files("job")
        assert given_back.status is FileStatus.QUEUED and given_back.attempts == 0
        await runner._run(claim())

    try:
        asyncio.run(outage_then_back())
        (answered,) = store.job_files("job")
        assert answered.status is FileStatus.SUCCEEDED and answered.attempts == 1
        assert answered.result is not None and answered.result["candidates"]
    finally:
        store.close()
        state.close()
