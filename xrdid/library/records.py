"""What the library stores and returns: references, their patterns and
metadata, search results, pages, status; and its errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypeAlias

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import InputError, XrdidError
from xrdid.library.filters import is_element_symbol
from xrdid.preprocess import BaselineMethod
from xrdid.raman.preprocess import RamanBaseline
from xrdid.rir import MAX_RIR, MIN_RIR
from xrdid.sticks import StickPattern
from xrdid.technique import Technique
from xrdid.wavelengths import Wavelength

__all__ = [
    "DuplicateReferenceError",
    "LibraryStatus",
    "LibraryUnavailableError",
    "Match",
    "MeasuredProfile",
    "NewReference",
    "PatternEmbedder",
    "RamanProfile",
    "ReferenceEntry",
    "ReferenceInfo",
    "ReferenceKind",
    "ReferenceNotFoundError",
    "ReferencePage",
    "ReferencePattern",
    "Technique",
    "technique_of",
]


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


class DatabaseEncodingError(XrdidError):
    """The library's database does not store text as UTF-8 (a cluster made
    by ``initdb`` without a UTF-8 locale stores SQL_ASCII): names and
    formulas would not read back as written. An operator's error, fixed by
    creating the database again."""


class LibraryUnavailableError(XrdidError):
    """The library's database cannot be reached now (a server restarting, a
    network cut); the same request can succeed later."""

    # Seconds a client should wait before retrying (HTTP Retry-After).
    retry_after_s = 2

    def __init__(self) -> None:
        # Clients see no host, port or driver message; the log has them.
        super().__init__("the reference library's database is unavailable; retry in a few seconds")


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


@dataclass(frozen=True)
class RamanProfile:
    """A Raman reference spectrum: intensity over Raman shift (cm⁻¹, increasing).

    Kept as measured (the library stores the intensity to 16 bits of its
    range, :mod:`~xrdid.library.codecs`) so a new model or preprocessing can
    recompute its embedding; ``despiked`` when cosmic rays were already
    removed (the default library's spectra are despiked and binned to
    1 cm⁻¹ to keep it small, :func:`xrdid.raman.preprocess.compact_spectrum`).
    """

    shift_cm1: NDArray[np.float64]
    intensity: NDArray[np.float64]
    laser_wavelength_nm: float | None = None
    baseline: RamanBaseline = RamanBaseline.BEADS
    despiked: bool = False


ReferencePattern: TypeAlias = StickPattern | MeasuredProfile | RamanProfile


def technique_of(pattern: ReferencePattern) -> Technique:
    """The technique a reference pattern belongs to."""
    return Technique.RAMAN if isinstance(pattern, RamanProfile) else Technique.XRD


@dataclass(frozen=True)
class ReferenceInfo:
    """What a reference is: the descriptive metadata shown with a match.

    ``elements`` are sorted symbols, empty when the composition is unknown;
    ``(source, source_id)`` identifies the reference across rebuilds (COD id,
    file path, content hash); ``rir`` is its reference intensity ratio
    (:mod:`xrdid.rir`), None when unknown (its weight percent cannot be given).
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
    rir: float | None = None

    def __post_init__(self) -> None:
        for name in ("name", "source", "source_id"):
            if not str(getattr(self, name)).strip():
                raise InputError(f"a reference needs a non-empty {name}")
        unknown = [e for e in self.elements if not is_element_symbol(e)]
        if unknown:
            raise InputError(
                f"unknown element symbol(s) {', '.join(unknown)} in reference {self.name!r}"
            )
        if self.space_group_number is not None and not 1 <= self.space_group_number <= 230:
            raise InputError(f"space group number {self.space_group_number} is outside 1–230")
        if self.rir is not None and not (MIN_RIR <= self.rir <= MAX_RIR):
            raise InputError(
                f"reference intensity ratio {self.rir} is outside {MIN_RIR:g}–{MAX_RIR:g}; give "
                "I/I_corundum of the phase's strongest line (e.g. 3.4 for quartz), or none"
            )


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

    @property
    def technique(self) -> Technique:
        return technique_of(self.pattern)


@dataclass(frozen=True)
class ReferenceEntry:
    """A stored reference (without its pattern arrays)."""

    id: int
    info: ReferenceInfo
    kind: ReferenceKind
    model_version: str
    created_at: datetime
    content_hash: str | None
    technique: Technique = Technique.XRD


@dataclass(frozen=True, eq=False)
class ReferenceVersion:
    """What identification sees of a stored reference: its metadata and
    its model-grid profile (None if it has none). Two builds of one
    reference from one file differ by floating-point noise: a last digit of
    a reference intensity ratio, a profile point a level apart."""

    metadata: tuple[Any, ...]
    profile: NDArray[np.float32] | None

    def same_as(self, other: ReferenceVersion) -> bool:
        if _rounded(self.metadata) != _rounded(other.metadata):
            return False
        if self.profile is None or other.profile is None:
            return self.profile is None and other.profile is None
        # Profiles are stored as 255 levels of √intensity: two levels is noise.
        return bool(
            np.max(np.abs(np.sqrt(self.profile) - np.sqrt(other.profile)))
            <= _PROFILE_NOISE_LEVELS / 255
        )


_PROFILE_NOISE_LEVELS = 2.5


def _rounded(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(float(f"{v:.6g}") if isinstance(v, float) else v for v in values)


@dataclass(frozen=True)
class Match:
    """One result for a query: rank 1 is the best."""

    rank: int
    entry: ReferenceEntry
    similarity: float  # cosine of the embeddings, −1…1
    # What results are ranked by: the ranking's fused score (the cosine for an
    # embedding-only search).
    score: float
    # Pearson r of the profiles with a 2θ shift and a lattice strain fitted
    # (:mod:`xrdid.ranking.correlation`), −1…1; None for an embedding-only search.
    profile_correlation: float | None = None
    # Probability that its material is in the sample (calibrated), when known.
    confidence: float | None = None


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
    technique: Technique = Technique.XRD

    @property
    def version(self) -> str:
        """Changes whenever the library's content changes."""
        return f"g{self.generation}-n{self.size}"


class PatternEmbedder(Protocol):
    """What the library needs of a model (:class:`xrdid.embedder.Embedder`,
    :class:`xrdid.raman.checkpoint.RamanEmbedder`): it embeds the views
    (:func:`~xrdid.library.views.model_view`) of its technique's patterns."""

    @property
    def version(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def technique(self) -> Technique: ...

    # A PreprocessedPattern (XRD) or PreprocessedSpectrum (Raman) per pattern.
    def embed(self, patterns: Sequence[Any]) -> NDArray[np.float32]: ...
