"""Batch-job scans computed in processes of their own (XRDID_JOB_PROCESSES).

The phase analysis is Python code that holds the GIL, so job workers on
threads of one process leave the other cores mostly idle; one process per
worker uses them all (docs/lims.md has the measurement). Each process holds
its own model and library index (:mod:`app.jobs.compute_process`) and runs
at lower priority than /identify, so an interactive request is not slowed
much by a batch job. The pool starts with the first batch: a service that
runs no jobs spends no memory on it. pebble (already the write workers'
pool) restarts a process that dies; the runner decides what its batch gets.
"""

from __future__ import annotations

import asyncio
import multiprocessing

from pebble import ProcessPool

from app.core.config import Settings
from app.jobs import compute_process
from app.store.base import ClaimedBatch, FileOutcome

__all__ = ["ComputePool"]


class ComputePool:
    """XRDID_JOB_WORKERS processes computing claimed batches."""

    def __init__(self, settings: Settings) -> None:
        self._pool = ProcessPool(
            max_workers=settings.job_worker_count,
            initializer=compute_process.init_process,
            initargs=(settings,),
            # A fresh interpreter: the server's threads and torch are not forked.
            context=multiprocessing.get_context("spawn"),
        )

    async def compute(self, batch: ClaimedBatch) -> list[FileOutcome]:
        """The batch's outcomes; raises pebble's ProcessExpired when its process died."""
        future = self._pool.schedule(compute_process.compute, args=(batch,))
        try:
            return await asyncio.wrap_future(future)
        finally:
            future.cancel()  # no-op when done; stops the process when abandoned

    def stop(self) -> None:
        """Stop the processes (after the workers finished their batches)."""
        self._pool.stop()
        self._pool.join(timeout=10)
