"""Batch-job scans computed in job processes (:mod:`app.core.compute_pool`):
a process answers as the service's own thread does, and a reference added to
the library after the process loaded it is searched by its next batch."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.core import compute_process
from app.core.compute_pool import ComputePool
from app.core.config import Settings
from app.core.state import load_calibration
from app.core.write_worker import WORKER_NICENESS
from app.jobs.runner import compute_batch
from app.models import IdentifyForm
from app.store.base import ClaimedBatch, ClaimedFile, FileOutcome
from tests.e2e.support import NEW_STRUCTURE, rendered_query
from tests.test_app import make_settings, small_library  # noqa: F401 - a fixture
from tests.test_jobs_api import same_answer
from xrdid.data_paths import shared_data_dir
from xrdid.embedder import Embedder
from xrdid.identify_files import XrdModel
from xrdid.library import Library
from xrdid.raman.search import RamanSearch
from xrdid.references import embed_references, prepare_structure


def no_raman() -> RamanSearch:
    raise AssertionError("no Raman spectrum in these batches")


def in_this_thread(batch: ClaimedBatch, settings: Settings, library: Library) -> list[FileOutcome]:
    embedder = Embedder.load(settings.model_path, device="cpu")
    model = XrdModel(
        embedder, library, load_calibration(settings.calibration_path, embedder.version)
    )
    return compute_batch(
        batch, lambda: model, no_raman, settings.default_top_k, settings.max_upload_bytes
    )


def test_a_job_process_answers_as_the_service_and_searches_what_was_added_since(
    tmp_path: Path,
    small_library: tuple[Path, Path],  # noqa: F811
) -> None:
    model, library_path = small_library
    settings = make_settings(tmp_path, model, library_path)
    cif = shared_data_dir() / "structures" / NEW_STRUCTURE
    copper = prepare_structure(cif.read_bytes(), cif.name, source="test", source_id="copper")
    options = IdentifyForm.model_validate({"top_k": 2}).model_dump(mode="json")
    batch = ClaimedBatch(
        job_id="job",
        options=options,
        sample_id=None,
        files=[
            ClaimedFile(0, "cu.xy", rendered_query(copper.pattern)),  # type: ignore[arg-type]
            ClaimedFile(1, "bad.xy", b"1 2 3 x\n"),
        ],
    )
    pool = ComputePool(settings, 1, WORKER_NICENESS)
    try:
        before = asyncio.run(pool.run(compute_process.compute_batch, batch))
        assert [o.index for o in before] == [0, 1]
        assert before[1].error is not None
        assert before[1].error["type"] == "urn:xrdid:problem:unreadable-pattern"
        assert before[0].result is not None
        assert "copper" not in {c["source_id"] for c in before[0].result["candidates"]}
        embedder = Embedder.load(model, device="cpu")
        with Library.open(settings.library_path, embedder) as library:
            for got, expected in zip(before, in_this_thread(batch, settings, library), strict=True):
                same_answer(got.result, expected.result)
                assert got.error == expected.error
            library.add_many(embed_references([copper], embedder))
        after = asyncio.run(pool.run(compute_process.compute_batch, batch))
    finally:
        pool.stop()
    assert after[0].result is not None
    best = after[0].result["candidates"][0]
    assert best["source_id"] == "copper" and best["similarity"] > 0.99
