"""A bounded, thread-safe least-recently-used cache for decoded library data."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """At most ``size`` values; the least recently used go first.

    :meth:`get_many` reads what is missing with one call of ``load`` (outside
    the lock, so concurrent readers do not wait on each other's I/O); keys
    ``load`` does not return are not cached and are left out of the result.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def get_many(self, keys: Iterable[K], load: Callable[[list[K]], Mapping[K, V]]) -> dict[K, V]:
        found: dict[K, V] = {}
        missing = []
        with self._lock:
            for key in keys:
                if key in self._values:
                    self._values.move_to_end(key)
                    found[key] = self._values[key]
                else:
                    missing.append(key)
        if not missing:
            return found
        loaded = dict(load(missing))
        with self._lock:
            self._values.update(loaded)
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        return found | loaded
