"""The reference library: every pattern the service compares uploads against.

SQLite is the source of truth; a FAISS index is derived from it.

On disk
-------
``library.sqlite``
    ``meta`` (schema version, library uuid, generation counter, model version,
    embedding dimension), ``reference`` (one row per reference: descriptive
    metadata, the pattern it was made from — stick pattern or measured profile,
    compressed float32 — its embedding, the model version of that embedding,
    created time, notes, content hash), ``reference_profile`` (its model-grid
    profile, for the re-rank of :mod:`xrdid.rerank`) and ``reference_element``
    (element → reference, for SQL filters).
``library.sqlite.faiss``
    ``IndexIDMap2(IndexFlatIP(dim))`` of the unit embeddings keyed by
    reference id (inner product of unit vectors = cosine similarity), behind a
    JSON header naming the database state it reflects (library uuid,
    generation, count, model version, dimension).

Consistency
-----------
- A write commits to SQLite (WAL, ``synchronous=FULL``) before it returns, so
  an acknowledged add survives a crash; the in-memory index is updated right
  after the commit. Every write transaction bumps the generation counter.
- The index file is a cache: :meth:`Library.save_index` writes it atomically
  (temporary file, fsync, ``os.replace``) with its header; the service does so
  periodically and at shutdown, the indexer after every batch.
- On open, embeddings made by another model (and profiles missing from a
  library of schema 1) are recomputed from the stored patterns (that is why
  patterns are stored); then the index file is loaded
  when its header matches, its ids are compared with the database's and
  patched (missing ones added from the stored embeddings, extra ones removed),
  or it is rebuilt. So after a crash at any point the two agree again.
- Ids are ``AUTOINCREMENT``: never reused, so a stale index cannot point an
  old id at a different reference.

Searches are exact (flat index). Given the query's model view, a search
re-scores the embedding's ``RERANK_CANDIDATES`` nearest references, and the
few whose profiles correlate best with the query's
(:mod:`xrdid.profile_search`, over coarse profiles of every reference kept in
memory beside the index), with their stored profiles and ranks by the fused
score (:mod:`xrdid.rerank`). Element filters select the eligible ids first
and search only those, so a filtered search returns ``k`` results whenever
``k`` references qualify. References whose composition is unknown (measured
patterns added without a formula) never match an element filter.

Thread safety: one writer at a time; searches run concurrently with each other
and wait only for the in-memory index update of a write.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import struct
import threading
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import faiss
import numpy as np
from numpy.typing import NDArray
from pymatgen.core.periodic_table import Element

from xrdid.augment import reference_input
from xrdid.cache import LruCache
from xrdid.errors import InputError
from xrdid.grid import MODEL_GRID
from xrdid.pattern import make_pattern
from xrdid.preprocess import BaselineMethod, PreprocessedPattern, preprocess
from xrdid.profile_search import coarse_rows, profile_search
from xrdid.rerank import RERANK_CANDIDATES, StrainBasis, fused_score, rerank_scores
from xrdid.sticks import StickPattern
from xrdid.strain_fit import strain_basis
from xrdid.wavelengths import Wavelength

__all__ = [
    "ELEMENT_SYMBOLS",
    "DuplicateReferenceError",
    "ElementFilter",
    "Library",
    "LibraryStatus",
    "Match",
    "MeasuredProfile",
    "NewReference",
    "PatternEmbedder",
    "ReferenceEntry",
    "ReferenceInfo",
    "ReferenceKind",
    "ReferenceNotFoundError",
    "ReferencePage",
    "ReferencePattern",
    "decode_pattern",
    "decode_profile",
    "encode_pattern",
    "encode_profile",
    "index_path_for",
    "model_view",
    "parse_elements",
]

logger = logging.getLogger(__name__)

# 2: profiles stored (schema 1 libraries are upgraded in place on open).
SCHEMA_VERSION = 2
INDEX_SUFFIX = ".faiss"
_INDEX_MAGIC = b"XRDIDIX1"
_PATTERN_MAGIC = b"XP1"
_FLOAT32_MAX = float(np.finfo(np.float32).max)

# Rows read, re-embedded and committed per step when embeddings are recomputed
# or the index is rebuilt: bounds memory (a model view is ~100 kB) and keeps an
# interrupted re-embedding's progress.
REBUILD_BATCH = 256

# An embedding whose norm is this far from 1 was not made by the embedder
# (which L2-normalises); refuse it rather than store a wrong cosine.
UNIT_NORM_TOLERANCE = 1e-3

# SQLite host parameters per statement stay well below its 32,766 limit.
_SQL_CHUNK = 500

# Decoded profiles kept in memory for the re-rank (17 kB each): reading and
# decompressing 300 takes about 7 ms, against ~10 ms for the re-rank itself.
# 15,000 hold a 10,000-reference library whole in 255 MB; beyond that the
# least recently used are read again.
PROFILE_CACHE_SIZE = 15_000
# Strain bases (xrdid.strain_fit.strain_basis, 34 kB each) of the calculated
# references a search fitted strain tensors to: computing one from the stored
# sticks takes ~0.3 ms (3 ms for the ten a search fits). 2,000 take 68 MB.
STRAIN_BASIS_CACHE_SIZE = 2_000

# OpenMP threads per FAISS search. One query against ≤ 10⁵ flat vectors is
# fastest on one thread (measured: 0.1 ms vs 24 ms with 2 threads at 10⁴, the
# OpenMP start-up dominating); concurrent requests use the other cores.
DEFAULT_SEARCH_THREADS = 1

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

# Periodic table symbols, Z = 1…118 (index + 1).
ELEMENT_SYMBOLS: tuple[str, ...] = tuple(Element.from_Z(z).symbol for z in range(1, 119))
_ATOMIC_NUMBER = {symbol: z for z, symbol in enumerate(ELEMENT_SYMBOLS, start=1)}
_SYMBOL_BY_KEY = {symbol.lower(): symbol for symbol in ELEMENT_SYMBOLS}


# --------------------------------------------------------------------------- errors


class DuplicateReferenceError(InputError):
    """A reference with this (source, source id) is already in the library."""

    def __init__(self, source: str, source_id: str, existing_id: int) -> None:
        self.source = source
        self.source_id = source_id
        self.existing_id = existing_id
        super().__init__(
            f"reference {existing_id} already has source {source!r} and source id "
            f"{source_id!r}; give another source id, or delete reference {existing_id} first"
        )


class ReferenceNotFoundError(InputError):
    """No reference has this id."""

    def __init__(self, reference_id: int) -> None:
        self.reference_id = reference_id
        super().__init__(f"no reference with id {reference_id} in the library")


# --------------------------------------------------------------------------- id bounds
# SQLite integers are signed 64-bit; a larger Python int raises OverflowError
# in the driver, so ids and cursors are checked before any query.
MAX_SQLITE_INTEGER = 2**63 - 1


def _stored_id(reference_id: int) -> int:
    """``reference_id`` as a storable id; ReferenceNotFoundError when no id can be it."""
    if not 1 <= reference_id <= MAX_SQLITE_INTEGER:
        raise ReferenceNotFoundError(reference_id)
    return int(reference_id)


def _cursor(after: int) -> int:
    """A paging cursor (an id or 0) clamped to SQLite's range; InputError when negative."""
    if after < 0:
        raise InputError(f"after {after} is negative; pass 0 or a previous page's next_after")
    return min(int(after), MAX_SQLITE_INTEGER)


# --------------------------------------------------------------------------- records


class ReferenceKind(StrEnum):
    """Where a reference pattern comes from."""

    CALCULATED = "calculated"  # simulated from a crystal structure
    MEASURED = "measured"  # a measured pattern of a known material


@dataclass(frozen=True)
class MeasuredProfile:
    """A measured reference pattern as it was given: its own 2θ grid and radiation.

    Kept raw (not preprocessed) so that a new model or preprocessing can
    recompute its embedding.
    """

    two_theta_deg: NDArray[np.float64]
    intensity: NDArray[np.float64]
    wavelength: Wavelength
    baseline: BaselineMethod = BaselineMethod.BEADS


ReferencePattern: TypeAlias = StickPattern | MeasuredProfile


@dataclass(frozen=True)
class ReferenceInfo:
    """What a reference is: the descriptive metadata shown with a match.

    ``elements`` are sorted symbols, empty when the composition is unknown;
    ``(source, source_id)`` identifies the reference across rebuilds (COD id,
    file path, content hash).
    """

    name: str
    source: str
    source_id: str
    formula: str | None = None
    elements: tuple[str, ...] = ()
    space_group_symbol: str | None = None
    space_group_number: int | None = None
    crystal_system: str | None = None
    notes: str | None = None

    def __post_init__(self) -> None:
        for name in ("name", "source", "source_id"):
            if not str(getattr(self, name)).strip():
                raise InputError(f"a reference needs a non-empty {name}")
        unknown = [e for e in self.elements if e not in _ATOMIC_NUMBER]
        if unknown:
            raise InputError(
                f"unknown element symbol(s) {', '.join(unknown)} in reference {self.name!r}"
            )
        if self.space_group_number is not None and not 1 <= self.space_group_number <= 230:
            raise InputError(f"space group number {self.space_group_number} is outside 1–230")


@dataclass(frozen=True)
class NewReference:
    """A reference ready to store: metadata, pattern and embedding."""

    info: ReferenceInfo
    pattern: ReferencePattern
    embedding: NDArray[np.float32]  # (dim,) unit vector
    model_version: str
    content_hash: str | None = None  # of the file it was made from
    # The model-grid intensity the embedding was made from (its view's);
    # computed from ``pattern`` when None.
    profile: NDArray[np.floating] | None = None

    @property
    def kind(self) -> ReferenceKind:
        return (
            ReferenceKind.CALCULATED
            if isinstance(self.pattern, StickPattern)
            else ReferenceKind.MEASURED
        )


@dataclass(frozen=True)
class ReferenceEntry:
    """A stored reference (without its pattern arrays)."""

    id: int
    info: ReferenceInfo
    kind: ReferenceKind
    model_version: str
    created_at: datetime
    content_hash: str | None


@dataclass(frozen=True)
class Match:
    """One search result: rank 1 is the most similar reference."""

    rank: int
    entry: ReferenceEntry
    similarity: float  # cosine of the embeddings, −1…1
    # Pearson r of the profiles with a 2θ shift and a lattice strain fitted
    # (:func:`xrdid.rerank.rerank_scores`), −1…1; None when the search was
    # given embeddings only (no re-rank).
    profile_correlation: float | None = None

    @property
    def score(self) -> float:
        """What the results are ranked by (:func:`xrdid.rerank.fused_score`)."""
        if self.profile_correlation is None:
            return self.similarity
        return float(fused_score(self.similarity, self.profile_correlation))


@dataclass(frozen=True)
class ReferencePage:
    """A page of a listing; pass ``next_after`` as ``after`` for the next page."""

    entries: tuple[ReferenceEntry, ...]
    total: int  # references matching the filters, over all pages
    next_after: int | None  # None on the last page


@dataclass(frozen=True)
class LibraryStatus:
    """Sizes and versions for readiness checks and responses."""

    size: int  # references searches see
    generation: int  # bumped by every write transaction
    model_version: str
    dim: int

    @property
    def version(self) -> str:
        """Changes whenever the library's content changes."""
        return f"g{self.generation}-n{self.size}"


class PatternEmbedder(Protocol):
    """What the library needs of a model (:class:`xrdid.embedder.Embedder`)."""

    @property
    def version(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, patterns: Sequence[PreprocessedPattern]) -> NDArray[np.float32]: ...


# --------------------------------------------------------------------------- elements


def parse_elements(text: str | Iterable[str] | None, what: str = "elements") -> frozenset[str]:
    """Element symbols from user input (``"Fe, O"``, ``"fe o"``, a list).

    Case is normalised (``fe`` → ``Fe``); anything that is not a symbol of the
    periodic table raises :class:`InputError` naming it and ``what``.
    """
    if text is None:
        return frozenset()
    tokens = (
        text.replace(",", " ").split() if isinstance(text, str) else [str(t).strip() for t in text]
    )
    symbols = set()
    for token in tokens:
        if not token:
            continue
        symbol = _SYMBOL_BY_KEY.get(token.lower())
        if symbol is None:
            raise InputError(
                f"{what + ': ' if what else ''}{token!r} is not an element symbol; give "
                "symbols of the periodic table separated by commas, e.g. 'Fe,O' or 'Si, Al, O'"
            )
        symbols.add(symbol)
    return frozenset(symbols)


@dataclass(frozen=True)
class ElementFilter:
    """Exact element constraints on references.

    ``all_of``: must contain every one; ``none_of``: must contain none;
    ``only_from``: may contain no other element (None: no such constraint).
    """

    all_of: frozenset[str] = frozenset()
    none_of: frozenset[str] = frozenset()
    only_from: frozenset[str] | None = None

    def __post_init__(self) -> None:
        given = self.all_of | self.none_of | (self.only_from or frozenset())
        unknown = sorted(e for e in given if e not in _ATOMIC_NUMBER)
        if unknown:
            raise InputError(f"unknown element symbol(s): {', '.join(unknown)}")
        both = self.all_of & self.none_of
        if both:
            raise InputError(
                f"{', '.join(sorted(both))} cannot be both required (elements_all) and "
                "excluded (elements_none)"
            )
        if self.only_from is not None:
            outside = self.all_of - self.only_from
            if outside:
                raise InputError(
                    f"required element(s) {', '.join(sorted(outside))} are not in the "
                    "allowed set (elements_only); no reference can match"
                )
            if not self.only_from:
                raise InputError("elements_only is empty; give at least one element")

    @classmethod
    def parse(
        cls, all_of: str | None = None, none_of: str | None = None, only_from: str | None = None
    ) -> ElementFilter:
        """Build a filter from comma-separated user input; empty input → no constraint."""
        only = parse_elements(only_from, "elements_only")
        return cls(
            all_of=parse_elements(all_of, "elements_all"),
            none_of=parse_elements(none_of, "elements_none"),
            only_from=only if only else None,
        )

    @property
    def active(self) -> bool:
        return bool(self.all_of or self.none_of or self.only_from is not None)

    def matches(self, elements: Iterable[str]) -> bool:
        present = frozenset(elements)
        if not present:
            return not self.active
        if not self.all_of <= present or present & self.none_of:
            return False
        return self.only_from is None or present <= self.only_from


def _bits(elements: Iterable[str]) -> NDArray[np.uint64]:
    """(2,) uint64 bitset of atomic numbers (bit Z of 128)."""
    words = [0, 0]
    for symbol in elements:
        z = _ATOMIC_NUMBER[symbol]
        words[z // 64] |= 1 << (z % 64)
    return np.array(words, dtype=np.uint64)


# --------------------------------------------------------------------------- patterns


def _pack(kind: str, arrays: dict[str, NDArray[Any]], attrs: dict[str, Any]) -> bytes:
    spec = [[name, a.dtype.str, list(a.shape)] for name, a in arrays.items()]
    header = json.dumps({"kind": kind, "arrays": spec, "attrs": attrs}).encode()
    body = b"".join(np.ascontiguousarray(a).tobytes() for a in arrays.values())
    return _PATTERN_MAGIC + zlib.compress(struct.pack("<I", len(header)) + header + body, 6)


def _unpack(blob: bytes) -> tuple[str, dict[str, NDArray[Any]], dict[str, Any]]:
    if not blob.startswith(_PATTERN_MAGIC):
        raise InputError("stored pattern has an unknown encoding")
    raw = zlib.decompress(blob[len(_PATTERN_MAGIC) :])
    (length,) = struct.unpack_from("<I", raw)
    header = json.loads(raw[4 : 4 + length])
    offset = 4 + length
    arrays: dict[str, NDArray[Any]] = {}
    for name, dtype, shape in header["arrays"]:
        dt = np.dtype(dtype)
        count = int(np.prod(shape)) if shape else 1
        arrays[name] = np.frombuffer(raw, dtype=dt, count=count, offset=offset).reshape(shape)
        offset += count * dt.itemsize
    return header["kind"], arrays, header["attrs"]


def encode_pattern(pattern: ReferencePattern) -> bytes:
    """Compact bytes of a reference pattern: float32 values, zlib-compressed.

    Stick patterns keep d, |F|²·multiplicity, hkl and the reciprocal lattice
    (enough to re-render, strain or re-embed them); measured profiles keep 2θ
    (float64, so fine steps stay distinct), intensity, radiation and baseline.
    """
    if isinstance(pattern, StickPattern):
        hkl_dtype = "<i2" if np.abs(pattern.hkl).max(initial=0) < 2**15 else "<i4"
        return _pack(
            "sticks",
            {
                "d_angstrom": pattern.d_angstrom.astype("<f4"),
                "structure_factor": pattern.structure_factor.astype("<f4"),
                "hkl": pattern.hkl.astype(hkl_dtype),
                "reciprocal_lattice": pattern.reciprocal_lattice.astype("<f8"),
            },
            {},
        )
    w = pattern.wavelength
    return _pack(
        "profile",
        {
            "two_theta_deg": pattern.two_theta_deg.astype("<f8"),
            # float32 unless the values do not fit (float32 overflows at 3.4e38)
            "intensity": pattern.intensity.astype(
                "<f4" if np.abs(pattern.intensity).max(initial=0.0) < _FLOAT32_MAX else "<f8"
            ),
        },
        {
            "kalpha1_angstrom": w.kalpha1_angstrom,
            "kalpha2_angstrom": w.kalpha2_angstrom,
            "kalpha2_ratio": w.kalpha2_ratio,
            "anode": w.anode,
            "baseline": str(pattern.baseline),
        },
    )


def decode_pattern(blob: bytes) -> ReferencePattern:
    """Inverse of :func:`encode_pattern` (float64 arrays)."""
    kind, arrays, attrs = _unpack(blob)
    if kind == "sticks":
        return StickPattern(
            d_angstrom=arrays["d_angstrom"].astype(np.float64),
            structure_factor=arrays["structure_factor"].astype(np.float64),
            hkl=arrays["hkl"].astype(np.int64),
            reciprocal_lattice=arrays["reciprocal_lattice"].astype(np.float64),
        )
    return MeasuredProfile(
        two_theta_deg=arrays["two_theta_deg"].astype(np.float64),
        intensity=arrays["intensity"].astype(np.float64),
        wavelength=Wavelength(
            attrs["kalpha1_angstrom"],
            attrs["kalpha2_angstrom"],
            attrs["kalpha2_ratio"],
            attrs["anode"],
        ),
        baseline=BaselineMethod(attrs["baseline"]),
    )


# Profiles are stored square-root companded to 8 bits (as μ-law does for
# sound), then zlib: 1.5 kB a reference instead of 17 kB as float32. The
# re-rank compares square roots anyway, and companding keeps the weak peaks
# (the smallest non-zero value is 1.5·10⁻⁵ of the maximum); top-1 and top-5
# of 600 evaluation queries came out the same as with float32 profiles. Decoding
# costs only on a cache miss (see PROFILE_CACHE_SIZE).
_PROFILE_LEVELS = 255
_PROFILE_MAGIC = b"XG3"  # then zlib(uint8 per grid point: round(255·√intensity))


def encode_profile(intensity: NDArray[np.floating]) -> bytes:
    """Compact bytes of a model-grid profile (values 0…1)."""
    values = np.asarray(intensity, dtype=np.float64)
    if values.shape != (MODEL_GRID.n_points,) or not np.all(np.isfinite(values)):
        raise InputError(f"a profile must be {MODEL_GRID.n_points} finite values on the model grid")
    levels = np.round(np.sqrt(np.clip(values, 0.0, 1.0)) * _PROFILE_LEVELS).astype(np.uint8)
    return _PROFILE_MAGIC + zlib.compress(levels.tobytes(), 9)


def decode_profile(blob: bytes) -> NDArray[np.float32]:
    """Inverse of :func:`encode_profile` (intensities again, not their roots)."""
    if not blob.startswith(_PROFILE_MAGIC):
        raise InputError("stored profile has an unknown encoding")
    try:
        payload = zlib.decompress(blob[len(_PROFILE_MAGIC) :])
    except zlib.error as exc:
        raise InputError(f"stored profile is corrupt ({exc})") from exc
    if len(payload) != MODEL_GRID.n_points:
        raise InputError(f"stored profile has {len(payload)} points, not {MODEL_GRID.n_points}")
    roots = np.frombuffer(payload, dtype=np.uint8) / _PROFILE_LEVELS
    return (roots * roots).astype(np.float32)


def model_view(pattern: ReferencePattern) -> PreprocessedPattern:
    """What the model sees of a reference: a clean Cu Kα scan on the model grid
    for sticks, the preprocessed measurement for a profile."""
    if isinstance(pattern, StickPattern):
        return reference_input(pattern)
    measured = make_pattern(pattern.two_theta_deg, pattern.intensity, wavelength=pattern.wavelength)
    return preprocess(measured, wavelength=pattern.wavelength, method=pattern.baseline)


def _view_of_blob(blob: bytes) -> PreprocessedPattern:
    return model_view(decode_pattern(blob))


def _profile_of(new: NewReference) -> bytes:
    if new.profile is not None:
        return encode_profile(new.profile)
    return encode_profile(model_view(new.pattern).intensity)


def index_path_for(library_path: Path) -> Path:
    """Where the FAISS index of a library lives (next to the database)."""
    return library_path.with_name(library_path.name + INDEX_SUFFIX)


# A search result before its metadata is read: (id, cosine, profile correlation).
_Hit: TypeAlias = tuple[int, float, float | None]
_NO_PROFILES = np.empty((0, MODEL_GRID.n_points), dtype=np.float32)


def _reranked(
    hits: Sequence[tuple[int, float]],
    profiles: dict[int, NDArray[np.float32]],
    strain_bases: Callable[[Sequence[int]], dict[int, StrainBasis]],
    view: PreprocessedPattern,
    k: int,
) -> list[_Hit]:
    """The ``k`` best of the embedding's candidates (id, cosine) by the fused
    score; ``strain_bases(ids)`` gives those of calculated references."""
    if not hits:
        return []
    blank = np.zeros(MODEL_GRID.n_points, dtype=np.float32)  # a profile not stored (yet)
    stack = np.stack([profiles.get(rid, blank) for rid, _ in hits])
    similarity = np.array([s for _, s in hits])

    def bases_of(indices: NDArray[np.int64]) -> list[StrainBasis | None]:
        ids = [hits[int(i)][0] for i in indices]
        found = strain_bases(ids)
        return [found.get(rid) for rid in ids]

    correlation = rerank_scores(view.intensity, view.mask, similarity, stack, bases_of)
    order = np.argsort(-fused_score(similarity, correlation), kind="stable")[:k]
    return [(hits[i][0], hits[i][1], float(correlation[i])) for i in order]


# --------------------------------------------------------------------------- locking


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer holds back new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


# --------------------------------------------------------------------------- library

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reference (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    formula TEXT,
    elements TEXT NOT NULL,  -- sorted symbols separated by spaces; '' when unknown
    space_group_symbol TEXT,
    space_group_number INTEGER,
    crystal_system TEXT,
    source TEXT NOT NULL,
    source_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('calculated', 'measured')),
    pattern BLOB NOT NULL,  -- encode_pattern()
    embedding BLOB NOT NULL,  -- float32 unit vector
    model_version TEXT NOT NULL,
    created_at TEXT NOT NULL,  -- ISO 8601, UTC
    notes TEXT,
    content_hash TEXT,
    UNIQUE (source, source_id)
);
-- Apart from the reference rows (whose pattern blobs a search would have to
-- read past): one model-grid profile per reference, for the re-rank.
CREATE TABLE IF NOT EXISTS reference_profile (
    reference_id INTEGER PRIMARY KEY REFERENCES reference (id) ON DELETE CASCADE,
    profile BLOB NOT NULL  -- encode_profile()
);
CREATE INDEX IF NOT EXISTS reference_by_content_hash ON reference (content_hash);
CREATE TABLE IF NOT EXISTS reference_element (
    element TEXT NOT NULL,
    reference_id INTEGER NOT NULL REFERENCES reference (id) ON DELETE CASCADE,
    PRIMARY KEY (element, reference_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reference_element_by_reference ON reference_element (reference_id);
"""

_ENTRY_COLUMNS = (
    "id, name, formula, elements, space_group_symbol, space_group_number, crystal_system, "
    "source, source_id, notes, kind, model_version, created_at, content_hash"
)


def _entry(row: tuple[Any, ...]) -> ReferenceEntry:
    (rid, name, formula, elements, sg_symbol, sg_number, system, source, source_id, notes) = row[
        :10
    ]
    kind, model_version, created_at, content_hash = row[10:]
    return ReferenceEntry(
        id=int(rid),
        info=ReferenceInfo(
            name=name,
            source=source,
            source_id=source_id,
            formula=formula,
            elements=tuple(elements.split()),
            space_group_symbol=sg_symbol,
            space_group_number=sg_number,
            crystal_system=system,
            notes=notes,
        ),
        kind=ReferenceKind(kind),
        model_version=model_version,
        created_at=datetime.fromisoformat(created_at),
        content_hash=content_hash,
    )


def _chunks(values: Sequence[int], size: int = _SQL_CHUNK) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _fsync_directory(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not supported on this platform
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, chunks: Sequence[bytes]) -> None:
    """Write a file so that a crash leaves either the old or the new content."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_directory(path.parent)


class Library:
    """A reference library on disk; open it with :meth:`open`."""

    def __init__(
        self, path: Path, model_version: str, dim: int, search_threads: int = DEFAULT_SEARCH_THREADS
    ) -> None:
        """Use :meth:`open`; this only sets up the connection."""
        self.path = Path(path)
        self.search_threads = search_threads
        self.index_path = index_path_for(self.path)
        self.model_version = model_version
        self.dim = dim
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode = WAL")
        self._writer.execute("PRAGMA foreign_keys = ON")
        self._write_lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._rw = _ReadWriteLock()
        self._local = threading.local()
        self._reader_connections: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        # id → decoded profile / strain basis; ids are never reused, a stored
        # pattern never changes and a profile only in _refresh_derived(),
        # before any search.
        self._profile_cache: LruCache[int, NDArray[np.float32]] = LruCache(PROFILE_CACHE_SIZE)
        self._basis_cache: LruCache[int, StrainBasis] = LruCache(STRAIN_BASIS_CACHE_SIZE)
        self._closed = False
        self._uuid = ""
        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._index_generation = -1
        self._saved_generation = -2
        # Element bitsets (for filters) and coarse profiles (for the profile
        # search) of the indexed references, aligned with _ids.
        self._ids = np.empty(0, dtype=np.int64)
        self._bits = np.empty((0, 2), dtype=np.uint64)
        self._coarse = coarse_rows(_NO_PROFILES)

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        path: Path | str,
        embedder: PatternEmbedder,
        *,
        workers: int = 1,
        progress: Callable[[int, int], None] | None = None,
        search_threads: int = DEFAULT_SEARCH_THREADS,
    ) -> Library:
        """Open (or create) the library at ``path`` for ``embedder``'s model.

        Stored embeddings of another model, and missing profiles, are
        recomputed from the stored patterns (``workers`` processes preprocess
        them; ``progress(done, total)`` is called after each batch); the index
        is loaded, checked against the database and patched, or rebuilt.
        """
        library = cls(Path(path), embedder.version, embedder.dim, search_threads)
        try:
            library._init_schema()
            library._refresh_derived(embedder, workers, progress)
            library._load_index()
        except BaseException:
            library.close(save=False)
            raise
        return library

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA busy_timeout = 30000")
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self._writer
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _init_schema(self) -> None:
        with self._write_lock:
            # CREATE … IF NOT EXISTS is idempotent; executescript commits on its own.
            self._writer.executescript(_SCHEMA)
            with self._transaction() as db:
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
                if not meta:
                    meta = {
                        "schema_version": str(SCHEMA_VERSION),
                        "library_uuid": uuid.uuid4().hex,
                        "generation": "0",
                        "model_version": self.model_version,
                        "dim": str(self.dim),
                        "created_at": datetime.now(UTC).isoformat(),
                    }
                    db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
                elif meta.get("schema_version") == "1":
                    # Profiles are derived data: their table is created above
                    # and filled from the stored patterns by _refresh_derived().
                    logger.warning("%s: upgrading the library schema 1 → 2", self.path)
                    db.execute(
                        "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                        (str(SCHEMA_VERSION),),
                    )
                elif int(meta.get("schema_version", "0")) != SCHEMA_VERSION:
                    raise InputError(
                        f"{self.path} has library schema {meta.get('schema_version')}, this "
                        f"xrdid reads schema {SCHEMA_VERSION}; rebuild it with "
                        "`python -m indexer build`"
                    )
            self._uuid = meta["library_uuid"]

    def _refresh_derived(
        self,
        embedder: PatternEmbedder,
        workers: int,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        """Recompute the embeddings stored by another model and the missing
        profiles (both from the model view), committing per batch."""
        reader = self._reader()
        stale_rows = (
            "(model_version != ? OR id NOT IN (SELECT reference_id FROM reference_profile))"
        )
        (stale,) = reader.execute(
            f"SELECT COUNT(*) FROM reference WHERE {stale_rows}", (self.model_version,)
        ).fetchone()
        if stale:
            logger.warning(
                "%s: %d references were embedded by another model or lack a profile; "
                "recomputing them with %s",
                self.path,
                stale,
                self.model_version,
            )
        done, after = 0, 0
        pool = (
            ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
            if stale and workers > 1
            else None
        )
        try:
            while done < stale:
                rows = reader.execute(
                    f"SELECT id, pattern FROM reference WHERE {stale_rows} AND id > ? "
                    "ORDER BY id LIMIT ?",
                    (self.model_version, after, REBUILD_BATCH),
                ).fetchall()
                if not rows:
                    break
                after = rows[-1][0]
                blobs = [bytes(r[1]) for r in rows]
                views = (
                    list(pool.map(_view_of_blob, blobs, chunksize=8))
                    if pool
                    else [_view_of_blob(b) for b in blobs]
                )
                vectors = embedder.embed(views).astype(np.float32)
                with self._write_lock, self._transaction() as db:
                    db.executemany(
                        "UPDATE reference SET embedding = ?, model_version = ? WHERE id = ?",
                        [
                            (vectors[i].tobytes(), self.model_version, row[0])
                            for i, row in enumerate(rows)
                        ],
                    )
                    db.executemany(
                        "INSERT OR REPLACE INTO reference_profile (reference_id, profile) "
                        "VALUES (?, ?)",
                        [
                            (row[0], encode_profile(views[i].intensity))
                            for i, row in enumerate(rows)
                        ],
                    )
                    self._bump_generation(db)
                done += len(rows)
                logger.info("recomputed %d/%d references", done, stale)
                if progress:
                    progress(done, stale)
        finally:
            if pool:
                pool.shutdown()
        with self._write_lock, self._transaction() as db:
            db.execute(
                "UPDATE meta SET value = ? WHERE key = 'model_version'", (self.model_version,)
            )
            db.execute("UPDATE meta SET value = ? WHERE key = 'dim'", (str(self.dim),))

    def _read_index_file(self) -> tuple[Any, dict[str, Any]] | None:
        """The saved index and its header if it belongs to this library and
        model, else None (missing, foreign, stale model, corrupt)."""
        try:
            data = self.index_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("cannot read %s (%s); rebuilding the index", self.index_path, exc)
            return None
        try:
            if not data.startswith(_INDEX_MAGIC):
                raise ValueError("not an xrdid index file")
            (length,) = struct.unpack_from("<I", data, len(_INDEX_MAGIC))
            start = len(_INDEX_MAGIC) + 4
            header = json.loads(data[start : start + length])
            if (
                header.get("library_uuid") != self._uuid
                or header.get("model_version") != self.model_version
                or header.get("dim") != self.dim
            ):
                logger.info(
                    "%s was built for another library or model; rebuilding", self.index_path
                )
                return None
            index = faiss.deserialize_index(
                np.frombuffer(data, dtype=np.uint8, offset=start + length)
            )
            if not isinstance(index, faiss.IndexIDMap2) or index.d != self.dim:
                raise ValueError("index has the wrong type or dimension")
            return index, header
        except Exception as exc:  # corrupt or truncated file: rebuild from the database
            logger.warning("%s is unreadable (%s); rebuilding the index", self.index_path, exc)
            return None

    def _load_index(self) -> None:
        """Load the saved index, compare its ids with the database's and patch
        it (or rebuild it); save it when it changed or lagged."""
        for leftover in self.index_path.parent.glob(self.index_path.name + ".tmp-*"):
            leftover.unlink(missing_ok=True)  # a save interrupted by a crash
        reader = self._reader()
        generation = self._generation(reader)
        saved = self._read_index_file()
        rows = reader.execute(
            "SELECT id, elements FROM reference WHERE model_version = ? ORDER BY id",
            (self.model_version,),
        ).fetchall()
        db_ids = np.array([r[0] for r in rows], dtype=np.int64)
        index: Any = None
        header: dict[str, Any] = {}
        index_ids = np.empty(0, dtype=np.int64)
        if saved is not None:
            index, header = saved
            index_ids = faiss.vector_to_array(index.id_map).astype(np.int64)
            if np.unique(index_ids).size != index_ids.size:
                logger.warning("%s holds repeated ids; rebuilding", self.index_path)
                index, index_ids = None, np.empty(0, dtype=np.int64)
        changed = index is None
        if index is None:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        extra = np.setdiff1d(index_ids, db_ids)
        missing = np.setdiff1d(db_ids, index_ids)
        if extra.size:
            logger.warning(
                "index holds %d references the database lacks; removing them", extra.size
            )
            index.remove_ids(extra)
            changed = True
        if missing.size:
            if index_ids.size:
                logger.warning(
                    "index lacks %d references of the database; adding them", missing.size
                )
            for chunk in _chunks(missing.tolist(), REBUILD_BATCH):
                ids, vectors = self._stored_embeddings(reader, chunk)
                index.add_with_ids(vectors, ids)
            changed = True
        coarse = self._coarse_profiles(db_ids)
        with self._rw.write():
            self._index = index
            self._index_generation = generation
            self._ids = db_ids
            self._bits = (
                np.stack([_bits(r[1].split()) for r in rows])
                if rows
                else np.empty((0, 2), dtype=np.uint64)
            )
            self._coarse = coarse
        logger.info(
            "%s: %d references indexed (generation %d)", self.path, index.ntotal, generation
        )
        if changed or header.get("generation") != generation:
            self.save_index(force=True)
        else:
            self._saved_generation = generation

    def _coarse_profiles(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        """:func:`~xrdid.profile_search.coarse_rows` of the stored profiles of
        ``ids`` (a flat row where none is stored), read in batches."""
        blank = np.zeros(MODEL_GRID.n_points, dtype=np.float32)
        parts = [coarse_rows(_NO_PROFILES)]  # the right shape for no ids
        for chunk in _chunks(ids.tolist(), REBUILD_BATCH):
            found = self._read_profiles(chunk)
            parts.append(coarse_rows(np.stack([found.get(rid, blank) for rid in chunk])))
        return np.concatenate(parts)

    def _stored_embeddings(
        self, reader: sqlite3.Connection, ids: Sequence[int]
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        marks = ",".join("?" * len(ids))
        rows = reader.execute(
            f"SELECT id, embedding FROM reference WHERE id IN ({marks}) ORDER BY id", list(ids)
        ).fetchall()
        out_ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = (
            np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            if rows
            else (np.empty((0, self.dim), dtype=np.float32))
        )
        if vectors.shape[1] != self.dim:
            raise InputError(
                f"stored embeddings have dimension {vectors.shape[1]}, expected {self.dim}"
            )
        return out_ids, np.ascontiguousarray(vectors, dtype=np.float32)

    # ------------------------------------------------------------------ helpers

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection (WAL readers never block the writer)."""
        if self._closed:
            raise InputError(f"the library {self.path} is closed")
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            connection.execute("PRAGMA query_only = ON")
            self._local.connection = connection
            with self._readers_lock:
                self._reader_connections.append(connection)
        return connection

    @staticmethod
    def _generation(db: sqlite3.Connection) -> int:
        (value,) = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(value)

    def _bump_generation(self, db: sqlite3.Connection) -> int:
        db.execute(
            "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'generation'"
        )
        return self._generation(db)

    def _checked_embedding(self, new: NewReference) -> NDArray[np.float32]:
        if new.model_version != self.model_version:
            raise InputError(
                f"reference {new.info.name!r} was embedded by model {new.model_version}, "
                f"the library holds model {self.model_version} embeddings"
            )
        vector = np.asarray(new.embedding, dtype=np.float32).reshape(-1)
        if vector.size != self.dim or not np.all(np.isfinite(vector)):
            raise InputError(f"embedding of {new.info.name!r} is not a finite {self.dim}-vector")
        norm = float(np.linalg.norm(vector))
        if abs(norm - 1.0) > UNIT_NORM_TOLERANCE:
            raise InputError(f"embedding of {new.info.name!r} has norm {norm:.4f}, not 1")
        return vector / norm

    # ------------------------------------------------------------------ writes

    def add(self, new: NewReference) -> ReferenceEntry:
        """Store one reference (durably) and index it.

        Raises :class:`DuplicateReferenceError` when its (source, source id)
        is taken.
        """
        entry = self.add_many([new])[0]
        assert entry is not None
        return entry

    def add_many(
        self, items: Sequence[NewReference], *, skip_existing: bool = False
    ) -> list[ReferenceEntry | None]:
        """Store references in one transaction (all or nothing) and index them.

        With ``skip_existing`` a reference whose (source, source id) is taken
        is left out (``None`` in its place); otherwise that raises
        :class:`DuplicateReferenceError` and nothing is stored.
        """
        vectors = [self._checked_embedding(new) for new in items]
        profiles = [_profile_of(new) for new in items]
        now = datetime.now(UTC)
        results: list[ReferenceEntry | None] = []
        added: list[tuple[int, NDArray[np.float32], tuple[str, ...], bytes]] = []
        with self._write_lock:
            with self._transaction() as db:
                for new, vector, profile in zip(items, vectors, profiles, strict=True):
                    info = new.info
                    row = db.execute(
                        "SELECT id FROM reference WHERE source = ? AND source_id = ?",
                        (info.source, info.source_id),
                    ).fetchone()
                    if row is not None:
                        if not skip_existing:
                            raise DuplicateReferenceError(info.source, info.source_id, int(row[0]))
                        results.append(None)
                        continue
                    elements = tuple(sorted(set(info.elements)))
                    cursor = db.execute(
                        "INSERT INTO reference (name, formula, elements, space_group_symbol, "
                        "space_group_number, crystal_system, source, source_id, kind, pattern, "
                        "embedding, model_version, created_at, notes, content_hash) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            info.name.strip(),
                            info.formula,
                            " ".join(elements),
                            info.space_group_symbol,
                            info.space_group_number,
                            info.crystal_system,
                            info.source,
                            info.source_id,
                            str(new.kind),
                            encode_pattern(new.pattern),
                            vector.tobytes(),
                            self.model_version,
                            now.isoformat(),
                            info.notes,
                            new.content_hash,
                        ),
                    )
                    rid = int(cursor.lastrowid or 0)
                    db.execute(
                        "INSERT INTO reference_profile (reference_id, profile) VALUES (?, ?)",
                        (rid, profile),
                    )
                    db.executemany(
                        "INSERT INTO reference_element (element, reference_id) VALUES (?, ?)",
                        [(e, rid) for e in elements],
                    )
                    added.append((rid, vector, elements, profile))
                    results.append(
                        ReferenceEntry(
                            id=rid,
                            info=info,
                            kind=new.kind,
                            model_version=self.model_version,
                            created_at=now,
                            content_hash=new.content_hash,
                        )
                    )
                generation = self._bump_generation(db) if added else None
            # Committed (durable) above; now make it searchable.
            if added and generation is not None:
                ids = np.array([a[0] for a in added], dtype=np.int64)
                matrix = np.stack([a[1] for a in added]).astype(np.float32)
                bits = np.stack([_bits(a[2]) for a in added])
                coarse = coarse_rows(np.stack([decode_profile(a[3]) for a in added]))
                with self._rw.write():
                    self._index.add_with_ids(matrix, ids)
                    self._ids = np.concatenate([self._ids, ids])
                    self._bits = np.concatenate([self._bits, bits])
                    self._coarse = np.concatenate([self._coarse, coarse])
                    self._index_generation = generation
        return results

    def delete(self, reference_id: int) -> None:
        """Remove a reference from the database and the index.

        Raises :class:`ReferenceNotFoundError` when there is none.
        """
        reference_id = _stored_id(reference_id)
        with self._write_lock, self._rw.write():
            # Searches wait for both steps, so none sees an id the database lost.
            with self._transaction() as db:
                cursor = db.execute("DELETE FROM reference WHERE id = ?", (reference_id,))
                if cursor.rowcount == 0:
                    raise ReferenceNotFoundError(reference_id)
                generation = self._bump_generation(db)
            self._index.remove_ids(np.array([reference_id], dtype=np.int64))
            keep = self._ids != reference_id
            self._ids, self._bits = self._ids[keep], self._bits[keep]
            self._coarse = self._coarse[keep]
            self._index_generation = generation

    def save_index(self, *, force: bool = False) -> bool:
        """Write the index file if it is behind the in-memory index; True if written."""
        with self._save_lock:
            with self._rw.read():
                generation = self._index_generation
                if not force and generation == self._saved_generation:
                    return False
                blob = faiss.serialize_index(self._index)
                header = json.dumps(
                    {
                        "library_uuid": self._uuid,
                        "generation": generation,
                        "count": int(self._index.ntotal),
                        "model_version": self.model_version,
                        "dim": self.dim,
                        "saved_at": datetime.now(UTC).isoformat(),
                    }
                ).encode()
            _atomic_write(
                self.index_path,
                [_INDEX_MAGIC, struct.pack("<I", len(header)), header, blob.tobytes()],
            )
            self._saved_generation = generation
            return True

    def close(self, *, save: bool = True) -> None:
        """Save the index (if behind) and close every connection."""
        if self._closed:
            return
        if save:
            try:
                self.save_index()
            except Exception:
                logger.exception("could not save %s; it will be rebuilt on open", self.index_path)
        self._closed = True
        with self._readers_lock:
            for connection in self._reader_connections:
                connection.close()
            self._reader_connections.clear()
        try:
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass
        self._writer.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reads

    def status(self) -> LibraryStatus:
        """Size and version of what searches see (no database query)."""
        with self._rw.read():
            return LibraryStatus(
                size=int(self._index.ntotal),
                generation=self._index_generation,
                model_version=self.model_version,
                dim=self.dim,
            )

    def database_size(self) -> int:
        """References in the database (all models)."""
        (size,) = self._reader().execute("SELECT COUNT(*) FROM reference").fetchone()
        return int(size)

    def verify(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(ids in the database but not the index, ids in the index but not the
        database); both empty when they agree."""
        reader = self._reader()
        with self._rw.read():
            index_ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            db_ids = np.array(
                [
                    r[0]
                    for r in reader.execute(
                        "SELECT id FROM reference WHERE model_version = ?", (self.model_version,)
                    )
                ],
                dtype=np.int64,
            )
        return np.setdiff1d(db_ids, index_ids), np.setdiff1d(index_ids, db_ids)

    def get(self, reference_id: int) -> ReferenceEntry:
        reference_id = _stored_id(reference_id)
        row = (
            self._reader()
            .execute(f"SELECT {_ENTRY_COLUMNS} FROM reference WHERE id = ?", (reference_id,))
            .fetchone()
        )
        if row is None:
            raise ReferenceNotFoundError(reference_id)
        return _entry(row)

    def get_pattern(self, reference_id: int) -> ReferencePattern:
        reference_id = _stored_id(reference_id)
        row = (
            self._reader()
            .execute("SELECT pattern FROM reference WHERE id = ?", (reference_id,))
            .fetchone()
        )
        if row is None:
            raise ReferenceNotFoundError(reference_id)
        return decode_pattern(bytes(row[0]))

    def find(self, source: str, source_id: str) -> ReferenceEntry | None:
        """The reference with this (source, source id), if any."""
        row = (
            self._reader()
            .execute(
                f"SELECT {_ENTRY_COLUMNS} FROM reference WHERE source = ? AND source_id = ?",
                (source, source_id),
            )
            .fetchone()
        )
        return None if row is None else _entry(row)

    def find_content(self, content_hash: str) -> ReferenceEntry | None:
        """The first reference made from a file with this content hash, if any."""
        row = (
            self._reader()
            .execute(
                f"SELECT {_ENTRY_COLUMNS} FROM reference WHERE content_hash = ? ORDER BY id LIMIT 1",
                (content_hash,),
            )
            .fetchone()
        )
        return None if row is None else _entry(row)

    def source_keys(self) -> set[tuple[str, str]]:
        """Every (source, source id) in the library (for resuming builds)."""
        return {
            (s, i) for s, i in self._reader().execute("SELECT source, source_id FROM reference")
        }

    def content_hashes(self) -> set[str]:
        return {
            h
            for (h,) in self._reader().execute(
                "SELECT content_hash FROM reference WHERE content_hash IS NOT NULL"
            )
        }

    def page(
        self,
        *,
        after: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        name_contains: str | None = None,
        elements: ElementFilter | None = None,
        kind: ReferenceKind | None = None,
    ) -> ReferencePage:
        """References in id order, ``limit`` of them after id ``after``."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InputError(f"limit {limit} is outside 1–{MAX_PAGE_SIZE}")
        after = _cursor(after)
        where: list[str] = []
        params: list[Any] = []
        if name_contains:
            escaped = name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("name LIKE ? ESCAPE '\\'")
            params.append(f"%{escaped}%")
        if kind is not None:
            where.append("kind = ?")
            params.append(str(kind))
        if elements is not None and elements.active:
            where.append("elements != ''")
            if elements.all_of:
                marks = ",".join("?" * len(elements.all_of))
                where.append(
                    f"id IN (SELECT reference_id FROM reference_element WHERE element IN ({marks}) "
                    "GROUP BY reference_id HAVING COUNT(*) = ?)"
                )
                params.extend(sorted(elements.all_of))
                params.append(len(elements.all_of))
            if elements.none_of:
                marks = ",".join("?" * len(elements.none_of))
                where.append(
                    f"id NOT IN (SELECT reference_id FROM reference_element WHERE element IN ({marks}))"
                )
                params.extend(sorted(elements.none_of))
            if elements.only_from is not None:
                marks = ",".join("?" * len(elements.only_from))
                where.append(
                    "id NOT IN (SELECT reference_id FROM reference_element "
                    f"WHERE element NOT IN ({marks}))"
                )
                params.extend(sorted(elements.only_from))
        condition = " AND ".join(where) or "1"
        reader = self._reader()
        (total,) = reader.execute(
            f"SELECT COUNT(*) FROM reference WHERE {condition}", params
        ).fetchone()
        rows = reader.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM reference WHERE {condition} AND id > ? "
            "ORDER BY id LIMIT ?",
            [*params, after, limit + 1],
        ).fetchall()
        entries = tuple(_entry(r) for r in rows[:limit])
        next_after = entries[-1].id if len(rows) > limit else None
        return ReferencePage(entries=entries, total=int(total), next_after=next_after)

    def _eligible(self, elements: ElementFilter) -> NDArray[np.bool_]:
        """Which indexed references (a mask over ``_ids``) satisfy the filter
        (call under the read lock)."""
        bits = self._bits
        ok = np.any(bits != 0, axis=1)  # composition known
        if elements.all_of:
            required = _bits(elements.all_of)
            ok &= np.all((bits & required) == required, axis=1)
        if elements.none_of:
            ok &= np.all((bits & _bits(elements.none_of)) == 0, axis=1)
        if elements.only_from is not None:
            ok &= np.all((bits & ~_bits(elements.only_from)) == 0, axis=1)
        return ok

    def search(
        self,
        embeddings: NDArray[np.float32],
        k: int,
        elements: ElementFilter | None = None,
        views: Sequence[PreprocessedPattern] | None = None,
    ) -> list[tuple[Match, ...]]:
        """The ``k`` most similar references of each query embedding.

        ``embeddings`` is (dim,) or (n, dim); the result has one tuple of
        matches per query, best first, fewer than ``k`` only when fewer
        references qualify. With ``views`` (each query's model view, the one
        its embedding was made from) the embedding's nearest
        ``RERANK_CANDIDATES`` are re-scored with their profiles and ranked by
        the fused score, together with the few the profile search finds
        (:mod:`xrdid.profile_search`); without, by the cosine.
        """
        queries = np.ascontiguousarray(np.atleast_2d(embeddings), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise InputError(
                f"query embeddings have dimension {queries.shape[1]}, expected {self.dim}"
            )
        if k < 1:
            raise InputError(f"k must be at least 1, not {k}")
        if views is not None and len(views) != queries.shape[0]:
            raise InputError(f"{len(views)} views given for {queries.shape[0]} query embeddings")
        wanted_k = k
        if views is not None:
            k = max(k, RERANK_CANDIDATES)
        # OpenMP settings are per calling thread: set them in every one that searches.
        faiss.omp_set_num_threads(self.search_threads)
        with self._rw.read():
            eligible: NDArray[np.bool_] | None = None
            if elements is not None and elements.active:
                eligible = self._eligible(elements)
                eligible_ids = self._ids[eligible]
                n = min(k, int(eligible_ids.size))
                if n == 0:
                    return [() for _ in range(queries.shape[0])]
                selector = faiss.IDSelectorBatch(eligible_ids)  # must outlive the search
                params = faiss.SearchParameters()
                params.sel = selector
                scores, ids = self._index.search(queries, n, params=params)
            else:
                n = min(k, int(self._index.ntotal))
                if n == 0:
                    return [() for _ in range(queries.shape[0])]
                scores, ids = self._index.search(queries, n)
            # (id, cosine) per query, best first
            hits = [
                [
                    (int(rid), float(np.clip(score, -1.0, 1.0)))
                    for score, rid in zip(row_scores, row_ids, strict=True)
                    if rid >= 0
                ]
                for row_scores, row_ids in zip(scores, ids, strict=True)
            ]
            chosen: list[list[_Hit]]
            if views is None:
                chosen = [[(rid, s, None) for rid, s in row[:wanted_k]] for row in hits]
            else:
                hits = [
                    row + self._profile_hits(view, query, row, eligible)
                    for row, view, query in zip(hits, views, queries, strict=True)
                ]
                profiles = self._profiles(sorted({rid for row in hits for rid, _ in row}))
                chosen = [
                    _reranked(row, profiles, self._strain_bases, view, wanted_k)
                    for row, view in zip(hits, views, strict=True)
                ]
            # Metadata of the results only (not of every re-ranked candidate).
            entries = self._entries(sorted({hit[0] for row in chosen for hit in row}))
        return [
            tuple(
                Match(rank=rank, entry=entries[rid], similarity=s, profile_correlation=c)
                for rank, (rid, s, c) in enumerate((h for h in row if h[0] in entries), start=1)
            )
            for row in chosen
        ]

    def _profile_hits(
        self,
        view: PreprocessedPattern,
        query: NDArray[np.float32],
        hits: Sequence[tuple[int, float]],
        eligible: NDArray[np.bool_] | None,
    ) -> list[tuple[int, float]]:
        """(id, cosine) of the references the profile search finds that are
        not among the embedding's ``hits`` (call under the read lock)."""
        found = self._ids[
            profile_search(view.intensity, view.mask, self._coarse, eligible=eligible)
        ]
        have = {rid for rid, _ in hits}
        new = [int(rid) for rid in found if int(rid) not in have]
        if not new:
            return []
        cosines = self._index.reconstruct_batch(np.array(new, dtype=np.int64)) @ query
        return [(rid, float(np.clip(c, -1.0, 1.0))) for rid, c in zip(new, cosines, strict=True)]

    def _profiles(self, ids: Sequence[int]) -> dict[int, NDArray[np.float32]]:
        """Stored profiles of ``ids`` (those that have one), from the cache or the database."""
        return self._profile_cache.get_many(ids, self._read_profiles)

    def _strain_bases(self, ids: Sequence[int]) -> dict[int, StrainBasis]:
        """Strain bases of those of ``ids`` that are calculated references."""
        return self._basis_cache.get_many(ids, self._read_strain_bases)

    def _read_strain_bases(self, ids: Sequence[int]) -> dict[int, StrainBasis]:
        reader = self._reader()
        out: dict[int, StrainBasis] = {}
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            for rid, blob in reader.execute(
                f"SELECT id, pattern FROM reference WHERE kind = 'calculated' AND id IN ({marks})",
                list(chunk),
            ):
                pattern = decode_pattern(bytes(blob))
                if isinstance(pattern, StickPattern):
                    out[int(rid)] = strain_basis(pattern)
        return out

    def _read_profiles(self, ids: Sequence[int]) -> dict[int, NDArray[np.float32]]:
        reader = self._reader()
        out: dict[int, NDArray[np.float32]] = {}
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            for rid, blob in reader.execute(
                f"SELECT reference_id, profile FROM reference_profile "
                f"WHERE reference_id IN ({marks})",
                list(chunk),
            ):
                out[int(rid)] = decode_profile(bytes(blob))
        return out

    def _entries(self, ids: Sequence[int]) -> dict[int, ReferenceEntry]:
        reader = self._reader()
        out: dict[int, ReferenceEntry] = {}
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            for row in reader.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM reference WHERE id IN ({marks})", list(chunk)
            ):
                entry = _entry(row)
                out[entry.id] = entry
        return out
