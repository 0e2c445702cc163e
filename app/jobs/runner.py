"""The batch-job runner: background workers in the service process that
claim queued scans, identify them in batches and write each result once.

Each worker loops: claim up to XRDID_JOB_BATCH_SIZE scans of the oldest
job (a lease, :meth:`~app.store.base.ServiceStore.claim_files`) → identify
them together (:func:`xrdid.identify_files.identify_files`: each file read
as POST /identify reads it, XRD patterns and Raman spectra each through
their own model in one forward pass), in a process of the worker's own
(:mod:`app.core.compute_pool`) or on a compute thread shared with /identify
(XRDID_JOB_PROCESSES) → write every outcome in one transaction, accepted
only while the lease holds.
A heartbeat renews the leases of work in progress. After a kill -9 the
leases lapse and the scans are claimed again (once: a scan that stops the
service twice is failed, not retried forever); after a clean shutdown the
workers finish their batch first. A scan that could not be computed because
the library was unreachable is given back to the queue, not failed, and the
worker waits (doubling up to 30 s) before claiming again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from pebble import ProcessExpired

from app.core import compute_process
from app.core.compute_pool import ComputePool
from app.core.errors import ServiceError, problem_response, xrdid_problem
from app.core.write_worker import WORKER_NICENESS
from app.models import IdentifyForm, IdentifyResponse
from app.store.base import ClaimedBatch, FileOutcome, ServiceStore
from xrdid.errors import XrdidError
from xrdid.identify import Identification
from xrdid.identify_files import XrdModel, identify_files
from xrdid.library import LibraryUnavailableError
from xrdid.raman.answer import RamanResult
from xrdid.raman.search import RamanSearch

if TYPE_CHECKING:
    from app.core.state import ServiceState

__all__ = ["JobRunner", "compute_batch"]

logger = logging.getLogger(__name__)

# A claim lapsed this many times is given up (the first retry covers a crash).
MAX_ATTEMPTS = 2
_IDLE_POLL_S = 1.0
# Longest wait between two tries of a store write, or of a batch after a library outage.
_MAX_RETRY_S = 30.0
# Throughput is a moving average over about this many batches (for Retry-After).
_RATE_SMOOTHING = 0.3


def _problem_json(exc: XrdidError | ServiceError) -> dict[str, Any]:
    response = (
        xrdid_problem(exc)
        if isinstance(exc, XrdidError)
        else problem_response(exc.status, exc.slug, exc.title, exc.detail, **exc.extra)
    )
    body: dict[str, Any] = json.loads(bytes(response.body))
    return body


def _internal_problem(what: str = "the service failed on this file") -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        bytes(
            problem_response(
                500,
                "internal-error",
                "Internal error",
                f"{what}; it has been logged — please report it with the file",
            ).body
        )
    )
    return body


def compute_batch(
    batch: ClaimedBatch,
    xrd_model: Callable[[], XrdModel],
    raman_search: Callable[[], RamanSearch],
    default_top_k: int,
    max_bytes: int,
) -> list[FileOutcome]:
    """Identify a claimed batch (blocking): each file's /identify response or
    its problem. Each file is read as POST /identify reads it (an XRD pattern
    or a Raman spectrum); each technique's files go through its own model
    together. A bug met on one file costs that file, not the batch."""
    form = IdentifyForm.model_validate(batch.options)
    reading = form.reading(max_bytes)
    pipelines = form.pipelines(xrd_model, raman_search, default_top_k)
    files = [(f.data, f.filename) for f in batch.files]
    try:
        results = identify_files(files, reading, pipelines)
    except Exception:
        logger.exception("a batch of job %s failed; identifying its files one by one", batch.job_id)
        results = []
        for data, filename in files:
            try:
                results.extend(identify_files([(data, filename)], reading, pipelines))
            except Exception as exc:  # logged below
                results.append(exc)
    outcomes = []
    for claimed, result in zip(batch.files, results, strict=True):
        if isinstance(result, Identification):
            response = IdentifyResponse.from_identification(result, batch.sample_id)
            outcomes.append(FileOutcome(claimed.index, result=response.model_dump(mode="json")))
        elif isinstance(result, RamanResult):
            response = IdentifyResponse.from_raman(result, batch.sample_id)
            outcomes.append(FileOutcome(claimed.index, result=response.model_dump(mode="json")))
        elif isinstance(result, LibraryUnavailableError):
            # Computed again once the library is back: the scan is not failed for an outage.
            outcomes.append(FileOutcome(claimed.index, retry=True))
        elif isinstance(result, XrdidError | ServiceError):
            outcomes.append(FileOutcome(claimed.index, error=_problem_json(result)))
        else:  # a bug met on this file
            logger.error("job %s: file %r failed", batch.job_id, claimed.filename, exc_info=result)
            outcomes.append(FileOutcome(claimed.index, error=_internal_problem()))
    return outcomes


class JobRunner:
    """XRDID_JOB_WORKERS workers and a lease heartbeat, as asyncio tasks."""

    def __init__(self, state: ServiceState, store: ServiceStore) -> None:
        self.state = state
        self.store = store
        self.settings = state.settings
        # Host and pid say which process holds a claim (operators, the replica tests).
        self.owner = f"jobs-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.wakeup = asyncio.Event()
        self.scans_per_s: float | None = None
        # At lower priority than /identify: a batch job hardly slows a request.
        self.pool = (
            ComputePool(self.settings, self.settings.job_worker_count, WORKER_NICENESS)
            if self.settings.job_processes
            else None
        )
        self._stopping = False
        self._stopped = asyncio.Event()  # ends a worker's wait after an outage
        # Seconds a worker waits after giving scans back for a library outage (doubling).
        self._outage_s = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._heartbeat: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._tasks = [
            asyncio.ensure_future(self._worker(i)) for i in range(self.settings.job_worker_count)
        ]
        self._heartbeat = asyncio.ensure_future(self._renew_leases())

    def wake(self) -> None:
        self.wakeup.set()

    async def stop(self) -> None:
        """Let each worker finish its batch (its results are written), then stop."""
        self._stopping = True
        self._stopped.set()
        self.wakeup.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        try:
            await anyio.to_thread.run_sync(self.store.release_claims, self.owner)
        except XrdidError as exc:  # the database down or refused: the claims lapse with their lease
            logger.warning("could not release this process's job claims: %s", exc)
        if self.pool is not None:
            await anyio.to_thread.run_sync(self.pool.stop)

    def retry_after_s(self, queued: int, wanted: int, limit: int) -> int:
        """Seconds until the queue has room for ``wanted`` more scans, at the
        measured throughput (30 s before anything was measured)."""
        if not self.scans_per_s:
            return 30
        excess = max(queued + wanted - limit, 1)
        return int(min(max(math.ceil(excess / self.scans_per_s), 1), 3600))

    async def _ready(self) -> bool:
        """Wait until the XRD model is loaded and the Raman one has settled
        (loaded, absent or failed), so no scan fails for a model still loading."""
        while not self._stopping:
            if self.state.ready and self.state.raman_phase not in ("waiting", "loading"):
                return True
            if self.state.error:
                return False
            await asyncio.sleep(0.1)
        return False

    async def _worker(self, number: int) -> None:
        if not await self._ready():
            return
        while not self._stopping:
            try:
                batch = await anyio.to_thread.run_sync(self._claim)
                if batch is None:
                    await self._idle()
                    continue
                await self._run(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("job worker %d failed; retrying in %g s", number, _IDLE_POLL_S)
                await asyncio.sleep(_IDLE_POLL_S)

    async def _idle(self) -> None:
        self.wakeup.clear()
        try:
            await asyncio.wait_for(self.wakeup.wait(), timeout=_IDLE_POLL_S)
        except TimeoutError:
            pass

    def _claim(self) -> ClaimedBatch | None:
        settings = self.settings
        return self.store.claim_files(
            self.owner,
            time.time(),
            lease_s=settings.job_lease_s,
            limit=settings.job_batch_size,
            max_attempts=MAX_ATTEMPTS,
            retention_s=settings.job_retention_s,
        )

    async def _run(self, batch: ClaimedBatch) -> None:
        state, settings = self.state, self.settings
        if state.embedder is None or state.library is None:
            return  # closing down: stop() gives the claim back
        start = time.perf_counter()
        try:
            outcomes = await self._compute(batch)
        except Exception:  # a bug: the files fail rather than stay claimed (and renewed) forever
            logger.exception("job %s: computing a batch failed", batch.job_id)
            outcomes = [FileOutcome(f.index, error=_internal_problem()) for f in batch.files]
        done = [o for o in outcomes if not o.retry]
        again = [o.index for o in outcomes if o.retry]
        written = await self._with_store(
            f"job {batch.job_id}: writing results",
            lambda: self.store.complete_files(
                self.owner, batch.job_id, done, time.time(), retention_s=settings.job_retention_s
            ),
        )
        if again:
            await self._with_store(
                f"job {batch.job_id}: giving back scans",
                lambda: self.store.release_files(self.owner, batch.job_id, again),
            )
            self._outage_s = min(2 * self._outage_s, _MAX_RETRY_S) if self._outage_s else 1.0
            logger.warning(
                "job %s: %d scans given back to the queue (the library cannot be read); "
                "this worker waits %g s",
                batch.job_id,
                len(again),
                self._outage_s,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self._outage_s)
            return
        self._outage_s = 0.0
        elapsed = time.perf_counter() - start
        rate = len(outcomes) / max(elapsed, 1e-6) * settings.job_worker_count
        previous = self.scans_per_s
        self.scans_per_s = (
            rate if previous is None else (1 - _RATE_SMOOTHING) * previous + _RATE_SMOOTHING * rate
        )
        if written < len(outcomes):
            logger.info(
                "job %s: %d of %d results dropped (cancelled, or the lease was lost)",
                batch.job_id,
                len(outcomes) - written,
                len(outcomes),
            )
        logger.debug("job %s: %d scans in %.2f s", batch.job_id, len(outcomes), elapsed)

    async def _with_store(self, what: str, call: Callable[[], int]) -> int:
        """``call()`` on a worker thread, retried with backoff while the store
        is unreachable (a database restart): the claim is renewed meanwhile,
        so giving up would leave the files claimed until the service restarts."""
        delay = _IDLE_POLL_S
        while True:
            try:
                return await anyio.to_thread.run_sync(call)
            except Exception:
                if self._stopping:
                    raise  # stop() gives the claim back
                logger.exception("%s failed; retrying in %g s", what, delay)
                await asyncio.sleep(delay)
                delay = min(2 * delay, _MAX_RETRY_S)

    async def _compute(self, batch: ClaimedBatch) -> list[FileOutcome]:
        state, settings = self.state, self.settings
        if self.pool is None:
            # On a compute thread, as /identify: jobs and requests share XRDID_COMPUTE_THREADS.
            return await state.run_cpu(
                compute_batch,
                batch,
                state.xrd_model,
                state.raman_search,
                settings.default_top_k,
                settings.max_upload_bytes,
            )
        try:
            return await self.pool.run(compute_process.compute_batch, batch)
        except ProcessExpired as exc:
            state.metrics.process_deaths.labels("jobs").inc()
            if len(batch.files) > 1:
                logger.warning(
                    "job %s: the process computing a batch stopped (exit code %s); "
                    "computing its %d files one by one",
                    batch.job_id,
                    exc.exitcode,
                    len(batch.files),
                )
                outcomes = []
                for file in batch.files:
                    outcomes.extend(await self._compute(dataclasses.replace(batch, files=[file])))
                return outcomes
            file = batch.files[0]
            logger.error(
                "job %s: the process computing %r stopped (exit code %s)",
                batch.job_id,
                file.filename,
                exc.exitcode,
            )
            what = f"the process computing this file stopped (exit code {exc.exitcode})"
            return [FileOutcome(file.index, error=_internal_problem(what))]

    async def _renew_leases(self) -> None:
        interval = self.settings.job_lease_s / 3.0
        while True:
            await asyncio.sleep(interval)
            try:
                await anyio.to_thread.run_sync(
                    self.store.renew_leases, self.owner, time.time(), self.settings.job_lease_s
                )
            except Exception:
                logger.exception("renewing job leases failed; retrying")
