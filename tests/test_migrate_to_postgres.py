"""``python -m indexer migrate-to-postgres``: a SQLite library copied into a
real PostgreSQL database, ids and everything stored kept; a second run resumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.migrate_to_postgres import main, migrate_library
from tests.test_library import FakeEmbedder, new_ref, unit
from xrdid.library import Library, MeasuredProfile
from xrdid.wavelengths import CU_KALPHA


def test_a_sqlite_library_is_copied_with_its_ids(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "library.sqlite"
    rng = np.random.default_rng(0)
    with Library.open(path, FakeEmbedder()) as lib:
        ids = [lib.add(new_ref(i, unit(rng), elements=("Fe", "O"))).id for i in range(5)]
        lib.delete(ids[1])  # a gap in the ids
        measured = new_ref(9, unit(rng), elements=())
        x = np.linspace(10, 80, 500)
        profile = MeasuredProfile(x, np.exp(-((x - 30) ** 2)) + 0.1, CU_KALPHA)
        from dataclasses import replace

        ids.append(lib.add(replace(measured, pattern=profile)).id)
        query = unit(rng)
        expected = [(m.entry, m.similarity) for m in lib.search(query, 5)[0]]
    assert main(["--library", str(path), "--database-url", database_url, "--batch", "2"]) == 0
    with Library.open(database_url, FakeEmbedder()) as copy:
        assert copy.status().size == 5
        got = [(m.entry, m.similarity) for m in copy.search(query, 5)[0]]
        assert [e.id for e, _ in got] == [e.id for e, _ in expected]
        assert [e.info for e, _ in got] == [e.info for e, _ in expected]
        assert np.allclose([s for _, s in got], [s for _, s in expected], atol=1e-6)
        pattern = copy.get_pattern(ids[-1])
        assert isinstance(pattern, MeasuredProfile) and np.allclose(pattern.two_theta_deg, x)
        # New references get ids after the copied ones.
        assert copy.add(new_ref(20, unit(rng))).id > max(ids)
    assert migrate_library(path, database_url, progress=False) == (0, 6)


def test_the_database_can_be_named_by_the_setting(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "library.sqlite"
    with Library.open(path, FakeEmbedder()) as lib:
        lib.add(new_ref(0, unit(np.random.default_rng(2))))
    monkeypatch.delenv("XRDID_DATABASE_URL", raising=False)
    with pytest.raises(SystemExit):
        main(["--library", str(path)])
    monkeypatch.setenv("XRDID_DATABASE_URL", database_url)
    assert main(["--library", str(path)]) == 0
    with Library.open(database_url, FakeEmbedder()) as copy:
        assert copy.status().size == 1


def test_seeding_leaves_a_database_with_references_alone(tmp_path: Path, database_url: str) -> None:
    rng = np.random.default_rng(1)
    first, second = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    for path, start in ((first, 0), (second, 100)):
        with Library.open(path, FakeEmbedder()) as lib:
            lib.add_many([new_ref(start + i, unit(rng)) for i in range(3)])
    assert migrate_library(first, database_url, progress=False, if_empty=True) == (3, 3)
    assert migrate_library(second, database_url, progress=False, if_empty=True) == (0, 3)
