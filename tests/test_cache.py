"""The LRU cache for decoded library data."""

from __future__ import annotations

from xrdid.cache import LruCache


def test_reads_only_what_is_missing_and_drops_the_least_recently_used() -> None:
    loads: list[list[int]] = []

    def load(keys: list[int]) -> dict[int, str]:
        loads.append(keys)
        return {k: f"v{k}" for k in keys if k != 99}  # 99 is not stored

    cache: LruCache[int, str] = LruCache(3)
    assert cache.get_many([1, 2, 3], load) == {1: "v1", 2: "v2", 3: "v3"}
    assert cache.get_many([1, 99], load) == {1: "v1"}  # 1 now most recent
    assert loads == [[1, 2, 3], [99]]
    assert len(cache) == 3  # nothing cached for 99
    cache.get_many([4], load)  # evicts 2, the least recently used
    loads.clear()
    assert cache.get_many([1, 2, 3, 4], load) == {k: f"v{k}" for k in (1, 2, 3, 4)}
    assert loads == [[2]]
    assert len(cache) == 3
