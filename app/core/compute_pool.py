"""Identifications computed in processes of their own: batch-job scans
(XRDID_JOB_PROCESSES) and, when asked, POST /identify (XRDID_IDENTIFY_PROCESSES).

The phase analysis is Python code that holds the GIL, so identifications on
threads of one process leave the other cores mostly idle; one process per
core uses them all (docs/lims.md and docs/scale-out.md have the measurements).
Each process holds its own model and library index
(:mod:`app.core.compute_process`). pebble (already the write workers' pool)
restarts a process that dies; the caller decides what its work gets.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pebble import ProcessPool

from app.core import compute_process, write_worker
from app.core.config import Settings

__all__ = ["ComputePool"]

T = TypeVar("T")


class ComputePool:
    """``workers`` processes at ``niceness`` computing identifications."""

    def __init__(self, settings: Settings, workers: int, niceness: int) -> None:
        # A fresh interpreter: the server's threads and torch are not forked.
        context = multiprocessing.get_context("spawn")
        self.workers = workers
        # Processes that have loaded (restarted ones count again).
        self._loaded = context.Value("i", 0)
        self._pool = ProcessPool(
            max_workers=workers,
            initializer=compute_process.init_process,
            initargs=(settings, niceness, self._loaded),
            context=context,
        )

    def start(self) -> None:
        """Start the processes now (they load the model and library) rather
        than with the first task. pebble starts them all with its first task."""
        self._pool.schedule(write_worker.ready)  # a no-op task

    def wait_loaded(self, stop: threading.Event, timeout_s: float) -> bool:
        """Block until every process has loaded (True), or ``stop`` is set or
        ``timeout_s`` has passed (False)."""
        deadline = time.monotonic() + timeout_s
        while self._loaded.value < self.workers:
            if stop.wait(0.1) or time.monotonic() > deadline:
                return False
        return True

    async def run(self, func: Callable[..., T], *args: Any, stop_when_abandoned: bool = True) -> T:
        """``func(*args)`` in a process; raises pebble's ProcessExpired when
        its process died. Abandoned (the caller cancelled): the process is
        stopped, or with ``stop_when_abandoned`` false left to finish (its
        cost is bounded, and restarting a process costs seconds)."""
        future = self._pool.schedule(func, args=args)
        try:
            return await asyncio.wrap_future(future)
        finally:
            if stop_when_abandoned:
                future.cancel()  # no-op when done

    def stop(self) -> None:
        """Stop the processes (after their callers finished)."""
        self._pool.stop()
        self._pool.join(timeout=10)
