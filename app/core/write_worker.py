"""What runs inside a write worker process (see :mod:`app.core.writes`).

Only the standard library is imported at the top: the worker must cap its
threads and its address space before numpy and pymatgen load.
"""

from __future__ import annotations

import os
import resource
import signal
from typing import Any

# Lower priority than the process serving /identify: on a shared core the
# kernel gives a nice-10 process about a tenth of a nice-0 one's time.
WORKER_NICENESS = 10

# One thread per numerical library: a worker prepares one upload at a time,
# and every extra BLAS/OpenMP thread reserves address space under the cap.
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


class WorkerMemoryError(Exception):
    """The upload needed more memory than the worker's address-space cap."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        super().__init__(limit_bytes)


def init_worker(memory_limit_bytes: int) -> None:
    """Pool initializer: lower priority, one thread per library, the memory
    cap, then the imports (so the first upload does not pay for them)."""
    # pebble's SIGTERM handler is Python code, which waits for a long C call
    # (spglib, numpy) to return; the default action stops the worker at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.nice(WORKER_NICENESS)
    os.environ.update(SINGLE_THREAD_ENV)
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit_bytes, memory_limit_bytes))
    import pymatgen.analysis.diffraction.xrd  # noqa: F401 - simulation's (xrdid.sticks imports it late)

    import xrdid.references  # noqa: F401


def prepare(data: bytes, filename: str | None, options: dict[str, Any]) -> Any:
    """:func:`xrdid.references.prepare_reference` in the worker; running out of
    the capped memory becomes WorkerMemoryError wherever pymatgen hit it."""
    from xrdid.references import prepare_reference

    try:
        return prepare_reference(data, filename, **options)
    except Exception as exc:
        if _caused_by_memory(exc):  # a reader may have wrapped it in its own error
            raise WorkerMemoryError(resource.getrlimit(resource.RLIMIT_AS)[0]) from None
        raise


def _caused_by_memory(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, MemoryError):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def ready() -> bool:
    """A no-op task: scheduling it starts the pool's workers at startup."""
    return True
