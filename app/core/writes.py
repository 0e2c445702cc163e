"""Write work (preparing an upload for the library) in worker processes.

Reading a structure and simulating its pattern can cost seconds and hundreds
of megabytes, and a thread cannot be stopped; so uploads are prepared in a
pebble process pool apart from the threads that serve /identify. Each
worker runs at lower priority with its address space capped, each upload
gets a wall-clock budget after which its worker is killed, and an upload
whose client went away (or whose request is cancelled at shutdown) is
abandoned the same way. pebble (maintained, LGPL) is the process pool
whose tasks have timeouts and whose cancelled tasks kill their worker,
which concurrent.futures does not do.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Awaitable, Callable
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessPool
from starlette.requests import Request

from app.core import write_worker
from app.core.config import Settings
from app.core.errors import ClientDisconnectedError, WriteBudgetError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class WritePool:
    """The write workers of one service instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool = ProcessPool(
            max_workers=settings.write_workers,
            initializer=write_worker.init_worker,
            initargs=(settings.write_memory_limit_bytes,),
            # A fresh interpreter: the server's threads and torch are not forked.
            context=multiprocessing.get_context("spawn"),
        )

    def start(self) -> None:
        """Start the workers now (their imports take seconds) rather than on the first upload."""
        self._pool.schedule(write_worker.ready)

    def stop(self) -> None:
        """Kill the workers, whatever they are doing (shutdown never waits on an upload)."""
        self._pool.stop()
        self._pool.join(timeout=5)

    async def prepare(
        self, request: Request, data: bytes, filename: str | None, options: dict[str, Any]
    ) -> Any:
        """Run :func:`app.core.write_worker.prepare` within the budgets.

        Raises WriteBudgetError past the time or memory budget,
        ClientDisconnectedError when the client left (the worker is killed
        either way), and the worker's own XrdidError for a bad file.
        """
        settings = self.settings
        future = self._pool.schedule(
            write_worker.prepare,
            args=(data, filename, options),
            timeout=settings.write_timeout_s,
        )
        try:
            return await until_disconnected(request, lambda: asyncio.wrap_future(future))
        except FutureTimeoutError as exc:
            raise WriteBudgetError(
                f"preparing this file took longer than the budget of {settings.write_timeout_s:g} s "
                "(XRDID_WRITE_TIMEOUT_S) and was stopped; nothing was stored. Large structures "
                "are added with the indexer (python -m indexer build)",
                limit=settings.write_timeout_s,
                unit="s",
            ) from exc
        except write_worker.WorkerMemoryError as exc:
            raise WriteBudgetError(
                "preparing this file needed more memory than the budget of "
                f"{exc.limit_bytes // 2**20} MiB (XRDID_WRITE_MEMORY_LIMIT_BYTES) and was "
                "stopped; nothing was stored",
                limit=exc.limit_bytes,
                unit="bytes",
            ) from exc
        except ProcessExpired as exc:
            logger.warning("a write worker died (exit code %s)", exc.exitcode)
            raise WriteBudgetError(
                f"the worker preparing this file stopped (exit code {exc.exitcode}), most likely "
                f"over the memory budget of {settings.write_memory_limit_bytes // 2**20} MiB "
                "(XRDID_WRITE_MEMORY_LIMIT_BYTES); nothing was stored",
                limit=settings.write_memory_limit_bytes,
                unit="bytes",
            ) from exc
        finally:
            future.cancel()  # no-op when done; kills the worker when abandoned


async def until_disconnected(request: Request, work: Callable[[], Awaitable[T]]) -> T:
    """``await work()``, cancelled as soon as the client disconnects.

    Call it once the body has been read: the next ``receive`` then waits
    for the disconnect. Raises ClientDisconnectedError when the client left;
    cancelling the caller (shutdown) cancels ``work`` too.
    """
    watcher = asyncio.ensure_future(_disconnect(request))
    job = asyncio.ensure_future(work())
    try:
        await asyncio.wait({watcher, job}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        job.cancel()  # no-op when done
    if watcher.done() and not watcher.cancelled():
        raise ClientDisconnectedError("the client closed the connection; the upload was abandoned")
    return job.result()


async def _disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
