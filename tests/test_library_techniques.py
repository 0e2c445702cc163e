"""Libraries of two techniques: a Raman library beside the XRD one (same
code, its own grid and model), ids that name one reference across both, and
the migration that opens every older library unchanged as an XRD library."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.test_library import FakeEmbedder, fill, new_ref, unit
from xrdid.errors import InputError
from xrdid.library import (
    RAMAN_FIRST_ID,
    Library,
    NewReference,
    RamanProfile,
    ReferenceInfo,
    decode_pattern,
    encode_pattern,
    model_view,
)
from xrdid.library.store import SCHEMA_VERSION
from xrdid.raman.grid import RAMAN_GRID
from xrdid.raman.preprocess import PreprocessedSpectrum, RamanBaseline
from xrdid.technique import Technique

DIM = 16


class FakeRamanEmbedder:
    """A stand-in Raman model: a fixed random projection of the preprocessed spectrum."""

    technique = Technique.RAMAN
    version = "fake-raman"
    dim = DIM

    def __init__(self) -> None:
        rng = np.random.default_rng(3)
        self._projection = rng.standard_normal((RAMAN_GRID.n_points, DIM)).astype(np.float32)
        self.calls = 0

    def embed(self, spectra: Sequence[PreprocessedSpectrum]) -> np.ndarray:
        self.calls += len(spectra)
        x = np.stack([s.intensity for s in spectra]).astype(np.float32) @ self._projection
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def raman_profile(seed: int, step: float = 0.5) -> RamanProfile:
    """A spectrum of a few bands on a sloping fluorescence background."""
    rng = np.random.default_rng(seed)
    shift = np.arange(120.0, 1400.0, step)
    intensity = 500.0 + 0.3 * shift
    for center in rng.uniform(150.0, 1350.0, 6):
        intensity += rng.uniform(500, 5000) * np.exp(-0.5 * ((shift - center) / 4.0) ** 2)
    return RamanProfile(shift, intensity, laser_wavelength_nm=532.0)


def raman_ref(
    seed: int, embedder: FakeRamanEmbedder, elements: tuple[str, ...] = ("Ca", "C", "O")
) -> NewReference:
    pattern = raman_profile(seed)
    view = model_view(pattern)
    return NewReference(
        info=ReferenceInfo(
            name=f"mineral {seed}",
            source="rruff",
            source_id=f"R{seed:06d}",
            formula=None,
            elements=elements,
        ),
        pattern=pattern,
        embedding=embedder.embed([view])[0],
        model_version=embedder.version,
        profile=view.intensity,
    )


def test_raman_spectra_roundtrip_in_16_bits() -> None:
    for step in (0.5, 0.4873):  # an even axis (start, step) and one stored point by point
        profile = raman_profile(1, step)
        back = decode_pattern(encode_pattern(profile))
        assert isinstance(back, RamanProfile)
        np.testing.assert_allclose(back.shift_cm1, profile.shift_cm1, atol=1e-3)
        span = np.ptp(profile.intensity)
        assert np.abs(back.intensity - profile.intensity).max() <= span / 65_535
        assert back.laser_wavelength_nm == 532.0 and back.baseline is RamanBaseline.BEADS
    ramp = RamanProfile(np.arange(100.0, 1800.0), np.arange(1700.0) ** 2)
    assert len(encode_pattern(ramp)) < 0.5 * ramp.intensity.astype(np.float32).nbytes


def test_a_raman_library_keeps_its_own_references(tmp_path: Path) -> None:
    embedder = FakeRamanEmbedder()
    path = tmp_path / "raman.sqlite"
    with Library.open(path, embedder) as lib:
        assert lib.technique is Technique.RAMAN and lib.status().technique is Technique.RAMAN
        entries = [lib.add(raman_ref(seed, embedder)) for seed in range(3)]
        assert [e.id for e in entries] == [
            RAMAN_FIRST_ID + 1,
            RAMAN_FIRST_ID + 2,
            RAMAN_FIRST_ID + 3,
        ]
        assert {e.technique for e in entries} == {Technique.RAMAN}
        stored = lib.get_pattern(entries[1].id)
        assert isinstance(stored, RamanProfile)
        with lib.reading() as source:  # the whole profiles, on the Raman grid
            rows = source.rows()
            assert rows.rows.shape == (3, RAMAN_GRID.n_points)
            assert source.names(rows.ids) == ["mineral 0", "mineral 1", "mineral 2"]
        # An XRD reference (its pattern, or its model) is refused by name.
        with pytest.raises(InputError, match="is an XRD pattern; this is the Raman library"):
            lib.add(new_ref(9, unit(np.random.default_rng(0)), version=embedder.version))
        with pytest.raises(InputError, match="embedded by model fake-a"):
            lib.add(replace(raman_ref(7, embedder), model_version="fake-a"))
    with pytest.raises(
        InputError, match="is a Raman library; it cannot be opened with an XRD model"
    ):
        Library.open(path, FakeEmbedder())
    again = FakeRamanEmbedder()
    with Library.open(path, again) as lib:  # nothing recomputed on reopen
        assert again.calls == 0 and lib.status().size == 3
        hits = lib.search(embedder.embed([model_view(raman_profile(2))]), 1)
        assert hits[0][0].entry.id == entries[2].id


def test_an_older_library_opens_unchanged_as_xrd(tmp_path: Path) -> None:
    """A schema 3 library (before techniques) gets the technique column and
    meta key on open, every reference an XRD one; nothing is recomputed."""
    path = tmp_path / "old.sqlite"
    with Library.open(path, FakeEmbedder()) as lib:
        vectors = fill(lib, 5)
    connection = sqlite3.connect(path)
    with connection:  # back to what schema 3 wrote
        connection.execute("ALTER TABLE reference DROP COLUMN technique")
        connection.execute("DELETE FROM meta WHERE key = 'technique'")
        connection.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    connection.close()
    with pytest.raises(InputError, match="is an XRD library"):
        Library.open(path, FakeRamanEmbedder())
    embedder = FakeEmbedder()
    with Library.open(path, embedder) as lib:
        assert embedder.calls == 0
        assert lib.technique is Technique.XRD and lib.status().size == 5
        rid, vector = next(iter(vectors.items()))
        assert lib.get(rid).technique is Technique.XRD
        assert lib.search(vector, 1)[0][0].entry.id == rid
        lib.add(new_ref(99, unit(np.random.default_rng(9))))
    connection = sqlite3.connect(path)
    meta = dict(connection.execute("SELECT key, value FROM meta"))
    techniques = {row[0] for row in connection.execute("SELECT technique FROM reference")}
    connection.close()
    assert meta["schema_version"] == str(SCHEMA_VERSION) and meta["technique"] == "xrd"
    assert techniques == {"xrd"}


def test_a_schema_4_library_gets_the_change_log_at_its_generation(tmp_path: Path) -> None:
    """Schema 4 (techniques, before the change log: the shipped library)
    opens as schema 5: the log starts empty at the library's generation, so
    a replica further behind reloads and later writes are logged."""
    path = tmp_path / "four.sqlite"
    with Library.open(path, FakeEmbedder()) as lib:
        fill(lib, 3)
        generation = lib.store.generation()
    connection = sqlite3.connect(path)
    with connection:  # back to what schema 4 wrote
        connection.execute("DROP TABLE reference_change")
        connection.execute("DELETE FROM meta WHERE key = 'changes_from'")
        connection.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    connection.close()
    with Library.open(path, FakeEmbedder()) as lib:
        store = lib.store
        assert lib.status().size == 3 and lib.technique is Technique.XRD
        assert store.changes_since(generation - 1) is None
        added = lib.add(new_ref(50, unit(np.random.default_rng(5))))
        changes = store.changes_since(generation)
        assert changes is not None and changes.added == (added.id,)
    connection = sqlite3.connect(path)
    meta = dict(connection.execute("SELECT key, value FROM meta"))
    connection.close()
    assert meta["schema_version"] == str(SCHEMA_VERSION) == "5"
    assert meta["changes_from"] == str(generation)


def _alembic(database_url: str, action: str, revision: str) -> None:
    """Run an Alembic command of the library's migrations on the default schema."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    import xrdid.library.postgres

    engine = create_engine("postgresql+psycopg://" + database_url.split("://", 1)[1])
    try:
        with engine.begin() as connection:
            config = Config()
            location = Path(xrdid.library.postgres.__file__).with_name("migrations")
            config.set_main_option("script_location", str(location))
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)
    finally:
        engine.dispose()


def test_a_postgresql_library_before_techniques_opens_unchanged_as_xrd(
    database_url: str,
) -> None:
    """A database at migration 0001 (before techniques) gets the technique
    column and meta key from migration 0002, every reference an XRD one;
    nothing is recomputed, and the Raman library is apart (its own schema)."""
    import psycopg

    with Library.open(database_url, FakeEmbedder()) as lib:
        vectors = fill(lib, 4)
    _alembic(database_url, "downgrade", "0001")
    with psycopg.connect(database_url) as db:
        columns = db.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = 'reference'"
        ).fetchall()
        assert ("technique",) not in columns
    embedder = FakeEmbedder()
    with Library.open(database_url, embedder) as lib:
        assert embedder.calls == 0 and lib.status().size == 4
        rid, vector = next(iter(vectors.items()))
        assert lib.get(rid).technique is Technique.XRD
        assert lib.search(vector, 1)[0][0].entry.id == rid
    with psycopg.connect(database_url) as db:
        meta = dict(db.execute("SELECT key, value FROM library_meta").fetchall())
        assert meta["technique"] == "xrd"
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0002",)]
    with Library.open(database_url, FakeRamanEmbedder()) as raman:
        assert raman.status().size == 0 and raman.technique is Technique.RAMAN


def test_a_raman_library_is_searched_exactly_whatever_the_search_setting(
    tmp_path: Path,
) -> None:
    """Approximate search (IVF lists, 8-bit coarse rows) is for XRD libraries:
    the Raman ranking reads whole profiles, so a Raman library stays exact
    even when approximate search is set, and so does its saved index."""
    from xrdid.library import SearchSettings

    embedder = FakeRamanEmbedder()
    path = tmp_path / "raman.sqlite"
    approximate = SearchSettings(mode="approximate")
    with Library.open(path, embedder, search=approximate) as lib:
        ids = [lib.add(raman_ref(seed, embedder)).id for seed in range(4)]
        assert not lib._index.approximate
    with Library.open(path, FakeRamanEmbedder(), search=approximate) as lib:
        assert not lib._index.approximate and sorted(lib._index.ids.tolist()) == ids
        with lib.reading() as source:
            assert source.rows().rows.shape == (4, RAMAN_GRID.n_points)
        assert lib.search(raman_ref(3, embedder).embedding, 1)[0][0].entry.id == ids[3]
