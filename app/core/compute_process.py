"""What runs inside a compute process (see :mod:`app.core.compute_pool`).

Each process loads the XRD model and library as the service does (the same
:class:`~app.core.state.ServiceState`), the Raman ones when a spectrum is
first met, and before each task applies the library writes made since
(``Library.sync``: a reference added before the task was sent is searched).
It reads the index files but never writes them: the service does.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import TYPE_CHECKING, Any

# Only the standard library above: the thread settings come before numpy loads.
from app.core.write_worker import SINGLE_THREAD_ENV

if TYPE_CHECKING:
    from multiprocessing.sharedctypes import Synchronized

    from app.core.config import Settings
    from app.core.state import ServiceState
    from app.store.base import ClaimedBatch, FileOutcome
    from xrdid.identify_files import FileResult
    from xrdid.raman.search import RamanSearch

logger = logging.getLogger(__name__)

_state: ServiceState | None = None


def init_process(settings: Settings, niceness: int, loaded: Synchronized[int]) -> None:
    """Pool initializer: the priority asked for, one thread per numerical
    library (one process per core), then the model and library; ``loaded``
    counts the processes that got this far."""
    global _state
    # pebble's SIGTERM handler waits for a long C call to return; stop at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.nice(niceness)
    os.environ.update(SINGLE_THREAD_ENV)
    from app.core.metrics import Metrics
    from app.core.state import ServiceState, configure_threads
    from app.core.tracing import configure_logging

    configure_logging(settings)  # the service's log lines, text or JSON
    settings = settings.model_copy(update={"torch_threads": 1, "blas_threads": 1})
    configure_threads(settings)
    state = ServiceState(settings, Metrics(), writes_index_files=False)
    state.load_xrd()  # a failure is each file's error (ServiceState.xrd_model)
    _state = state
    with loaded.get_lock():
        loaded.value += 1


def _synced_state() -> ServiceState:
    """This process's state, its libraries brought up to date."""
    from xrdid.library import LibraryUnavailableError

    state = _state
    assert state is not None, "init_process runs first"
    for library in state.libraries():
        try:
            library.sync()
        except LibraryUnavailableError as exc:  # its reads fail each file, as on a thread
            logger.warning("cannot bring the library up to date: %s", exc)
    return state


def _raman_search() -> RamanSearch:
    """The Raman model and library, loaded when the first spectrum comes (an
    XRD-only workload never pays for them)."""
    state = _state
    assert state is not None, "init_process runs first"
    if state.raman_phase == "waiting":
        state.load_raman()
    return state.raman_search()


def compute_batch(batch: ClaimedBatch) -> list[FileOutcome]:
    """A batch job's claimed scans: :func:`app.jobs.runner.compute_batch`."""
    from app.jobs.runner import compute_batch

    state = _synced_state()
    settings = state.settings
    return compute_batch(
        batch, state.xrd_model, _raman_search, settings.default_top_k, settings.max_upload_bytes
    )


def identify(
    data: bytes, filename: str | None, options: dict[str, Any], picture: bool
) -> tuple[FileResult, bytes | None]:
    """POST /identify's file: :func:`app.core.identify_file.identify_file`."""
    from app.core.identify_file import identify_file

    state = _synced_state()
    try:
        return identify_file(
            state.settings, state.xrd_model, _raman_search, data, filename, options, picture
        )
    except Exception as exc:
        # Logged here, with its traceback; it may not survive pickling intact.
        logger.exception("identifying %r failed", filename)
        return RuntimeError(f"identifying the file failed: {type(exc).__name__}"), None
