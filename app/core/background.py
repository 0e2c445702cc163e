"""The service's background work beside the HTTP requests: the batch-job
runner, webhook deliveries and the retention sweep, over the service store.

Started by the lifespan (the store opens before the first request; the
job workers wait for the model and the library) and stopped by it: job
workers finish their batch, deliveries in flight finish, the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

import anyio.to_thread

from app.jobs.runner import JobRunner
from app.store import ServiceStore, open_store
from app.webhooks.dispatcher import WebhookDispatcher

if TYPE_CHECKING:
    from app.core.state import ServiceState

logger = logging.getLogger(__name__)

# Expired jobs and idempotency keys are deleted this often; a job past its
# retention is already invisible, so this only reclaims disk.
SWEEP_INTERVAL_S = 300.0


class Background:
    def __init__(self, state: ServiceState) -> None:
        self.store: ServiceStore = open_store(state.settings.service_store_location)
        self.jobs = JobRunner(state, self.store)
        self.webhooks = WebhookDispatcher(self.store, state.settings)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.jobs.start()
        self._tasks = [
            asyncio.ensure_future(self.webhooks.run()),
            asyncio.ensure_future(self._sweep()),
        ]

    async def stop(self) -> None:
        await self.jobs.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.webhooks.close()
        await anyio.to_thread.run_sync(self.store.close)

    async def _sweep(self) -> None:
        while True:
            try:
                purged = await anyio.to_thread.run_sync(self.store.purge_expired, time.time())
                if purged:
                    logger.info("deleted %d expired jobs and idempotency keys", purged)
            except Exception:
                logger.exception("the retention sweep failed; retrying later")
            await asyncio.sleep(SWEEP_INTERVAL_S)
