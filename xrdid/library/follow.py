"""A replica following the writes of the others: a thread that applies the
database's change log to the library's index whenever another replica writes.

On PostgreSQL it waits on LISTEN (a write is searchable on every replica a
few milliseconds after its commit) and polls every ``interval_s`` as well,
in case a notification is lost (a dropped connection); elsewhere it polls.
While the database is down it keeps trying, and catches up when it is back.
"""

from __future__ import annotations

import logging
import threading

from xrdid.library import Library, LibraryUnavailableError
from xrdid.library.postgres import PostgresStore

__all__ = ["LibraryFollower"]

logger = logging.getLogger(__name__)


class LibraryFollower:
    """Keeps ``library``'s index in step with its database until :meth:`stop`."""

    def __init__(self, library: Library, interval_s: float = 1.0) -> None:
        self.library = library
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="library-follower", daemon=True)

    def start(self) -> LibraryFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _wait(self) -> None:
        store = self.library.store
        if isinstance(store, PostgresStore):
            store.wait_for_change(self.interval_s)
        else:
            self._stop.wait(self.interval_s)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._wait()
                if self._stop.is_set():
                    return
                self.library.sync()
                failures = 0
            except LibraryUnavailableError as exc:
                failures += 1
                if failures == 1:
                    logger.warning("cannot follow the library's writes: %s", exc)
                self._stop.wait(min(self.interval_s * failures, 5.0))
            except Exception:
                logger.exception("following the library's writes failed; retrying")
                self._stop.wait(self.interval_s)
