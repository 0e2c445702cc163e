"""What runs inside a job process (see :mod:`app.jobs.compute_pool`).

Each process loads the XRD model and library as the service does (the same
:class:`~app.core.state.ServiceState`), the Raman ones when a spectrum is
first met, and before each batch applies the library writes made since
(``Library.sync``: a reference added before the batch was claimed is
searched). It reads the index files but never writes them: the service does.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import TYPE_CHECKING

# Only the standard library above: the thread settings come before numpy loads.
from app.core.write_worker import SINGLE_THREAD_ENV, WORKER_NICENESS

if TYPE_CHECKING:
    from app.core.config import Settings
    from app.core.state import ServiceState
    from app.store.base import ClaimedBatch, FileOutcome
    from xrdid.raman.search import RamanSearch

logger = logging.getLogger(__name__)

_state: ServiceState | None = None


def init_process(settings: Settings) -> None:
    """Pool initializer: lower priority than /identify, one thread per
    numerical library (one process per core), then the model and library."""
    global _state
    # pebble's SIGTERM handler waits for a long C call to return; stop at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.nice(WORKER_NICENESS)
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


def compute(batch: ClaimedBatch) -> list[FileOutcome]:
    """:func:`app.jobs.runner.compute_batch` on this process's model and library."""
    from app.jobs.runner import compute_batch
    from xrdid.library import LibraryUnavailableError

    state = _state
    assert state is not None, "init_process runs first"
    for library in state.libraries():
        try:
            library.sync()
        except LibraryUnavailableError as exc:  # its reads fail each file, as on a thread
            logger.warning("cannot bring the library up to date: %s", exc)

    def raman_search() -> RamanSearch:
        if state.raman_phase == "waiting":
            state.load_raman()
        return state.raman_search()

    settings = state.settings
    return compute_batch(
        batch,
        state.xrd_model,
        raman_search,
        settings.default_top_k,
        settings.max_upload_bytes,
    )
