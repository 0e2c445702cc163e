"""What the service holds while it runs — the model and the library, and the
Raman model and library — and the lifespan that loads them once and closes
them at shutdown.

Loading runs in a worker thread started by the lifespan, so ``/health``
answers at once and ``/ready`` says what is still loading (re-embedding a
library for a new model can take minutes); requests that need the model or
the library get 503 until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import FastAPI
from pebble import ProcessExpired

from app.core import compute_process
from app.core.admission import Gate
from app.core.compute_pool import ComputePool
from app.core.config import Settings
from app.core.errors import ServiceError, ServiceNotReadyError, TechniqueUnavailableError
from app.core.identify_file import identify_file
from app.core.metrics import Metrics
from app.core.writes import WritePool
from xrdid.embedder import Embedder
from xrdid.errors import InputError
from xrdid.identify_files import FileResult, XrdModel
from xrdid.library import (
    DatabaseEncodingError,
    Library,
    LibraryUnavailableError,
    SearchSettings,
    index_path_for,
)
from xrdid.library.defaults import compare, open_default
from xrdid.library.follow import LibraryFollower
from xrdid.raman.search import RamanSearch
from xrdid.ranking.confidence import Calibration
from xrdid.technique import Technique

if TYPE_CHECKING:
    from app.core.background import Background

logger = logging.getLogger(__name__)

T = TypeVar("T")


def ensure_library_file(settings: Settings) -> None:
    """On first start, copy the shipped default library to the configured path
    (the service writes to its own copy, never to the shipped file)."""
    copy_default_library(
        settings.library_path, settings.default_library_path, "python -m indexer build"
    )


def copy_default_library(target: Path, source: Path, build_command: str) -> None:
    """Copy ``source`` to ``target`` unless ``target`` exists (atomically:
    a crash leaves no half library); without a source, the library starts empty."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in target.parent.glob(target.name + ".copy-*"):
        leftover.unlink(missing_ok=True)  # a copy interrupted by a crash
    if not source.is_file():
        logger.warning(
            "no library at %s and no default library at %s: starting with an empty library "
            "(build one with `%s`)",
            target,
            source,
            build_command,
        )
        return
    tmp = target.with_name(target.name + f".copy-{os.getpid()}")
    shutil.copyfile(source, tmp)
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    index_path_for(target).unlink(missing_ok=True)  # a stale index of an older library
    logger.info("copied the default library %s to %s", source, target)


def warn_if_behind_default(library: Library, default_path: Path) -> None:
    """Log a warning when ``library`` lacks references of the default library
    this version ships (copied from an earlier version's, it is never replaced)."""
    if not default_path.is_file():
        return
    try:
        default = open_default(default_path)
        try:
            comparison = compare(library, default)
        finally:
            default.close()
    except (InputError, sqlite3.Error) as exc:
        logger.warning("could not compare the library with %s: %s", default_path, exc)
        return
    if comparison.up_to_date:
        return
    option = "" if library.technique is Technique.XRD else " --technique raman"
    logger.warning(
        "%s: %s %s. The service serves it as it is; to take this version's references, stop "
        "the service and run `python -m indexer update-library%s --library %s` (README, "
        '"Upgrading")',
        library.location,
        comparison.describe(),
        f"({default_path})",
        option,
        library.location,
    )


def load_calibration(path: Path, model_version: str) -> Calibration | None:
    """The confidence calibration for this model, or None (confidences are
    then omitted, and the verdict rests on the phase analysis alone)."""
    if not path.is_file():
        logger.warning("no calibration at %s: confidences will be omitted", path)
        return None
    calibration = Calibration.load(path)
    stale = calibration.stale_models()
    if stale:
        logger.warning(
            "%s was fitted on other features than this version computes (%s): confidences "
            "will be omitted (run `python -m indexer calibrate`)",
            path,
            ", ".join(stale),
        )
        return None
    if calibration.model_version != model_version:
        logger.warning(
            "%s calibrates model %s, not %s: confidences will be omitted (run "
            "`python -m indexer calibrate`)",
            path,
            calibration.model_version,
            model_version,
        )
        return None
    return calibration


class ServiceState:
    """The loaded model and library, and how far loading got."""

    def __init__(
        self, settings: Settings, metrics: Metrics, *, writes_index_files: bool = True
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        # False in a compute process (app.core.compute_process): the service saves them.
        self.writes_index_files = writes_index_files
        self.embedder: Embedder | None = None
        self.library: Library | None = None
        self.calibration: Calibration | None = None
        # Followers of the other replicas' writes (XRD, Raman), on PostgreSQL.
        self.followers: list[LibraryFollower] = []
        # The Raman model and library; None while loading, when no Raman model
        # is configured (raman_phase says which) or when loading failed.
        self.raman: RamanSearch | None = None
        self.raman_phase = "waiting"
        self.phase = "starting"
        self.error: str | None = None
        # Jobs, webhooks and the service store (app.core.background), while serving.
        self.background: Background | None = None
        # POST /identify's processes (XRDID_IDENTIFY_PROCESSES), once the XRD model loaded.
        self.identify_pool: ComputePool | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        # Requests doing CPU-bound work at once; more would only queue inside torch.
        self.compute_limiter = anyio.CapacityLimiter(settings.compute_threads)
        # Embedding an upload (one fixed-size input, milliseconds) in this
        # process, apart from the identify threads.
        self.write_embed_limiter = anyio.CapacityLimiter(1)
        # Expensive requests in the service at once: computing plus queued.
        self.identify_gate = Gate(
            "identifications", settings.compute_threads + settings.identify_queue
        )
        self.write_gate = Gate(
            "uploads to the library", settings.write_workers + settings.write_queue
        )
        # Job submissions hold their scans in memory while they are stored.
        self.job_gate = Gate("job submissions", settings.job_submissions)
        self.writes = WritePool(settings)
        metrics.track_library(self._library_size, lambda: 1.0 if self.ready else 0.0)

    @property
    def ready(self) -> bool:
        return self.embedder is not None and self.library is not None

    def _library_size(self) -> float:
        library = self.library
        return float(library.status().size) if library is not None else 0.0

    def _progress(self, done: int, total: int) -> None:
        self.phase = f"recomputing stored references (new model or upgrade): {done}/{total}"

    def load(self) -> None:
        """Load the XRD model and library, then the Raman ones (blocking; runs
        in a thread); start /identify's processes when asked for."""
        self.load_xrd()
        pool = None
        if self.ready and self.settings.identify_processes and self.settings.role == "api":
            # After the service's load: it is the one that re-embeds and saves the library.
            pool = ComputePool(self.settings, self.settings.compute_threads, niceness=0)
            pool.start()
        self.load_raman()
        if pool is not None:
            self._serve_from(pool)

    def _serve_from(self, pool: ComputePool) -> None:
        """Send /identify to ``pool`` once all its processes have loaded (until
        then the threads serve it: no request waits for a process to load)."""
        published = False
        while not pool.wait_loaded(self._closing, _PROCESS_LOAD_WARNING_S):
            if self._closing.is_set():
                break
            logger.warning(
                "the /identify processes have not all loaded after %g s more; the "
                "service's threads serve /identify meanwhile",
                _PROCESS_LOAD_WARNING_S,
            )
        else:
            with self._lock:
                if not self._closing.is_set():  # else close() has run or is running
                    self.identify_pool, published = pool, True
        if not published:
            pool.stop()
            return
        self.metrics.identify_processes.set(pool.workers)
        logger.info("identifying in %d processes", pool.workers)

    def load_xrd(self) -> None:
        """Load the model, then open the library; a failure is kept in ``error``."""
        settings = self.settings
        # Phases and errors are public (/ready): no file paths; the log has them.
        try:
            self.phase = "loading the model"
            logger.info("loading the model %s", settings.model_path)
            if not settings.model_path.is_file():
                logger.error("no model checkpoint at %s", settings.model_path)
                raise _StartupError("no model checkpoint at XRDID_MODEL_PATH")
            embedder = Embedder.load(settings.model_path, device=settings.device)
            logger.info("model %s loaded on %s", embedder.version, embedder.device)
            self.calibration = load_calibration(settings.calibration_path, embedder.version)
            library = self._open_library(embedder)
            status = library.status()
            logger.info(
                "library %s: %d references (version %s)",
                library.location,
                status.size,
                status.version,
            )
            warn_if_behind_default(library, settings.default_library_path)
            if settings.database_url is not None:
                # Other replicas write to the same database: follow them.
                self._follow(library)
            with self._lock:
                self.embedder, self.library = embedder, library
            self.phase = "ready"
        except _StartupError as exc:
            self.error = f"{exc}; the server log says more"
            self.phase = "failed"
        except Exception:
            logger.exception("the service could not load")
            self.error = "loading the model or the library failed; the server log says why"
            self.phase = "failed"

    def load_raman(self) -> None:
        """Load the Raman model and open the Raman library (after XRD: an XRD
        service never waits on Raman, and a Raman failure leaves XRD serving)."""
        settings = self.settings
        if not settings.raman_model_path.is_file():
            logger.warning(
                "no Raman model at %s: Raman spectra will be refused", settings.raman_model_path
            )
            self.raman_phase = "disabled"
            return
        try:
            self.raman_phase = "loading"
            if settings.database_url is None:
                copy_default_library(
                    settings.raman_library_file,
                    settings.default_raman_library_path,
                    "make install (python -m indexer build-raman)",
                )
            ranking = settings.raman_ranking_path
            search = RamanSearch.open(
                settings.raman_model_path,
                settings.raman_library_location,
                ranking if ranking.is_file() else None,
                workers=settings.reembed_workers,
                index_path=settings.raman_index_cache_path,
                writes_index_file=self.writes_index_files,
            )
            if not search.settings_match_model:
                logger.warning(
                    "%s was chosen for another Raman model: no no-match verdicts or "
                    "confidences (run `python -m indexer evaluate-raman`)",
                    ranking,
                )
            search.warm()
            status = search.library.status()
            logger.info(
                "Raman library %s: %d references (version %s)",
                search.library.location,
                status.size,
                status.version,
            )
            warn_if_behind_default(search.library, settings.default_raman_library_path)
            if settings.database_url is not None:
                self._follow(search.library)
            with self._lock:
                self.raman = search
            self.raman_phase = "ready"
        except Exception:
            logger.exception("the Raman model or library could not load")
            self.raman_phase = "failed"

    def _follow(self, library: Library) -> None:
        """Apply the other replicas' writes to ``library``'s index until close()."""
        with self._lock:
            if not self._closing.is_set():
                follower = LibraryFollower(library, self.settings.sync_interval_s)
                self.followers.append(follower.start())

    def _open_library(self, embedder: Embedder) -> Library:
        """Open the library; a database still starting is waited for."""
        settings = self.settings
        search = SearchSettings(
            mode=settings.search_mode,
            approximate_from=settings.approximate_from,
            probe=settings.search_probe,
            profile_shortlist=settings.profile_shortlist,
            sketch_dims=settings.sketch_dims,
        )
        self.phase = "opening the library"
        if settings.database_url is None:
            logger.info("opening the library %s", settings.library_path)
            ensure_library_file(settings)
        delay = 0.5
        while True:
            try:
                library = Library.open(
                    settings.library_location,
                    embedder,
                    workers=settings.reembed_workers,
                    progress=self._progress,
                    index_path=settings.index_cache_path,
                    search=search,
                    writes_index_file=self.writes_index_files,
                )
                return library
            except DatabaseEncodingError as exc:
                logger.error("%s", exc)
                raise _StartupError("the library's database does not store text as UTF-8") from exc
            except LibraryUnavailableError as exc:
                # No host or user in the public phase; the log has them.
                self.phase = "waiting for the library's database"
                logger.warning("%s; retrying in %.1f s", exc, delay)
                if self._closing.wait(delay):
                    raise
                delay = min(2 * delay, 10.0)

    def not_ready(self) -> ServiceNotReadyError:
        """Why the XRD model or library cannot be used yet (503)."""
        if self.error:
            return ServiceNotReadyError(f"the service failed to start: {self.error}")
        return ServiceNotReadyError(
            f"the service is starting ({self.phase}); retry shortly", headers={"Retry-After": "5"}
        )

    def xrd_model(self) -> XrdModel:
        """The XRD model, library and calibration, or why they are not loaded (503)."""
        embedder, library = self.embedder, self.library
        if embedder is None or library is None:
            raise self.not_ready()
        return XrdModel(embedder, library, self.calibration)

    def raman_search(self) -> RamanSearch:
        """The Raman model and library, or why there are none (asked for once a
        file turns out to be Raman: an XRD request never waits on them)."""
        if self.raman is not None:
            return self.raman
        if self.raman_phase == "disabled":
            raise TechniqueUnavailableError(
                "this server identifies XRD patterns only: it has no Raman model "
                "(the operator sets XRDID_RAMAN_MODEL_PATH); the file is a Raman spectrum"
            )
        if self.raman_phase == "failed":
            raise ServiceNotReadyError(
                "the Raman model or library failed to load; the server log says why"
            )
        if self.error:
            raise self.not_ready()
        raise ServiceNotReadyError(
            "the service is starting (loading the Raman model and library); retry shortly",
            headers={"Retry-After": "5"},
        )

    def save_index(self) -> None:
        for library in self.libraries():
            library.save_index()

    def libraries(self) -> list[Library]:
        """The libraries loaded: XRD, then Raman."""
        raman = self.raman
        found = [self.library, raman.library if raman is not None else None]
        return [library for library in found if library is not None]

    def begin_closing(self) -> None:
        """Stop waiting (for a database, for processes): the service is shutting down."""
        self._closing.set()

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            followers, self.followers = self.followers, []
        for follower in followers:
            follower.stop()
        with self._lock:
            library, self.library, self.embedder = self.library, None, None
            raman, self.raman = self.raman, None
            pool, self.identify_pool = self.identify_pool, None
        if pool is not None:
            pool.stop()
        if library is not None:
            library.close()
        if raman is not None:
            raman.library.close()

    async def run_cpu(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run CPU-bound work in the thread pool, at most ``compute_threads`` at once."""
        return await anyio.to_thread.run_sync(
            partial(func, *args, **kwargs), limiter=self.compute_limiter
        )

    async def identify(
        self, data: bytes, filename: str | None, options: dict[str, Any], picture: bool
    ) -> tuple[FileResult, bytes | None]:
        """POST /identify's work (:func:`~app.core.identify_file.identify_file`)
        in a compute process, or on a compute thread (without processes, and
        while they load; the thread path answers 503 until the model is loaded)."""
        pool = self.identify_pool
        if pool is None:
            return await self.run_cpu(
                identify_file,
                self.settings,
                self.xrd_model,
                self.raman_search,
                data,
                filename,
                options,
                picture,
            )
        try:
            # A client that leaves does not stop the process: restarting one costs seconds.
            return await pool.run(
                compute_process.identify,
                data,
                filename,
                options,
                picture,
                stop_when_abandoned=False,
            )
        except ProcessExpired as exc:
            self.metrics.process_deaths.labels("identify").inc()
            logger.error(
                "the process identifying %r stopped (exit code %s)", filename, exc.exitcode
            )
            raise ServiceError(
                f"the process identifying this file stopped (exit code {exc.exitcode}); it "
                "has been logged — please report it with the file"
            ) from None

    async def run_write_embedding(self, func: Callable[..., T], *args: Any) -> T:
        """Embed an upload in a thread of its own limiter (never an identify thread)."""
        return await anyio.to_thread.run_sync(
            partial(func, *args), limiter=self.write_embed_limiter
        )


# How long /identify's processes may load before the log says so (they load
# in seconds; a million references' index file, in about a minute).
_PROCESS_LOAD_WARNING_S = 120.0


class _StartupError(Exception):
    """A startup failure whose message is safe to show to any client."""


def configure_threads(settings: Settings) -> None:
    """Threads per torch call and per numpy or scipy BLAS call (process-wide;
    set at startup, after this module has loaded the libraries). FAISS's
    threads, its BLAS's included, are OpenMP's, set per thread: the library
    sets them in each searching thread."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(settings.torch_threads)
    threadpool_limits(limits=settings.blas_threads, user_api="blas")


async def _save_periodically(state: ServiceState) -> None:
    interval = state.settings.index_save_interval_s
    while True:
        await asyncio.sleep(interval)
        try:
            await anyio.to_thread.run_sync(state.save_index)
        except Exception:
            logger.exception("saving the search index failed; retrying later")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    from app.core.background import Background

    state: ServiceState = app.state.service
    configure_threads(state.settings)
    state.writes.start()
    state.background = background = Background(state)
    loader = asyncio.ensure_future(anyio.to_thread.run_sync(state.load))
    saver = asyncio.ensure_future(_save_periodically(state))
    background.start()
    try:
        yield
    finally:
        await anyio.to_thread.run_sync(state.writes.stop)
        await background.stop()  # job workers finish their batch before the library closes
        state.background = None
        saver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await saver
        state.begin_closing()
        await loader  # a load in progress cannot be interrupted; let it finish
        await anyio.to_thread.run_sync(state.close)
