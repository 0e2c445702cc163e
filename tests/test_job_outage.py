"""A batch-job scan computed while the library's database is down is given
back to the queue, not failed: the outage is not the scan's fault."""

from __future__ import annotations

from pathlib import Path

from app.core.state import load_calibration
from app.jobs.runner import compute_batch
from app.models import IdentifyForm
from app.store.base import ClaimedBatch, ClaimedFile
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
