"""Identify the material of a measured pattern: file → ranked references.

The pipeline the service runs per upload, stage by stage (each timed):
read the file (:func:`xrdid.readers.read_pattern`), preprocess it onto the
model grid (:func:`xrdid.preprocess.preprocess`), embed it, search the
library for the nearest references by cosine similarity (and by coarse
profile correlation, :mod:`xrdid.profile_search`) and re-rank those by
profile correlation (:mod:`xrdid.rerank`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from xrdid.errors import InputError, PatternReadError, XrdidError
from xrdid.library import ElementFilter, Library, LibraryStatus, Match, PatternEmbedder
from xrdid.pattern import Pattern
from xrdid.preprocess import BaselineMethod, PreprocessedPattern, preprocess
from xrdid.readers import DEFAULT_MAX_BYTES, read_pattern
from xrdid.wavelengths import CU_KALPHA, Wavelength

__all__ = [
    "MAX_TOP_K",
    "Identification",
    "IdentifyOptions",
    "QueryInfo",
    "StageTimings",
    "identify",
    "identify_pattern",
    "preprocess_guard",
]

logger = logging.getLogger(__name__)

# More candidates than this is a listing, not an identification.
MAX_TOP_K = 100


@dataclass(frozen=True)
class IdentifyOptions:
    """How to read and compare the query.

    ``wavelength`` None: the file's, else Cu Kα.
    """

    top_k: int = 5
    wavelength: Wavelength | None = None
    baseline: BaselineMethod = BaselineMethod.BEADS
    elements: ElementFilter = field(default_factory=ElementFilter)

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise InputError(f"top_k {self.top_k} is outside 1–{MAX_TOP_K}")


@dataclass(frozen=True)
class QueryInfo:
    """What was compared: the file as read and the part of the grid it covers."""

    filename: str | None
    n_points: int
    two_theta_range_deg: tuple[float, float]  # as measured, at its own wavelength
    covered_two_theta_deg: tuple[float, float]  # on the model grid (Cu Kα1)
    wavelength: Wavelength
    wavelength_origin: str  # "request", "file" or "default"
    baseline: BaselineMethod
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class StageTimings:
    """Wall time per stage, milliseconds."""

    read_ms: float
    preprocess_ms: float
    embed_ms: float
    search_ms: float

    @property
    def total_ms(self) -> float:
        return self.read_ms + self.preprocess_ms + self.embed_ms + self.search_ms


@dataclass(frozen=True)
class Identification:
    """Ranked candidates for one query, with what was used to get them."""

    matches: tuple[Match, ...]
    query: QueryInfo
    library: LibraryStatus
    model_version: str
    timings: StageTimings


@contextmanager
def preprocess_guard(pattern: Pattern) -> Iterator[None]:
    """Check a pattern's intensities fit floating point, and turn a numerical
    failure of preprocessing (a bug met on odd input) into an InputError:
    a file must never crash the caller."""
    span = float(np.max(pattern.intensity)) - float(np.min(pattern.intensity))
    if not np.isfinite(span):
        raise PatternReadError(
            "the intensities span more than floating point can hold (values near ±1e308); "
            "give counts or relative intensities",
            field="intensity",
        )
    try:
        yield
    except XrdidError:
        raise
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        logger.exception("preprocessing failed on a pattern of %d points", pattern.n_points)
        raise InputError(
            f"the pattern could not be preprocessed ({exc}); check that the columns are 2θ "
            "in degrees and intensity in counts"
        ) from exc


def _preprocess(pattern: Pattern, options: IdentifyOptions) -> PreprocessedPattern:
    with preprocess_guard(pattern):
        return preprocess(pattern, wavelength=options.wavelength, method=options.baseline)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def identify_pattern(
    pattern: Pattern,
    embedder: PatternEmbedder,
    library: Library,
    options: IdentifyOptions = IdentifyOptions(),
    *,
    filename: str | None = None,
    read_ms: float = 0.0,
) -> Identification:
    """Preprocess, embed and search an already-read pattern."""
    start = time.perf_counter()
    if options.wavelength is not None:
        radiation, origin = options.wavelength, "request"
    elif pattern.wavelength is not None:
        radiation, origin = pattern.wavelength, "file"
    else:
        radiation, origin = CU_KALPHA, "default"
    view = _preprocess(pattern, options)
    preprocess_ms = _ms(start)
    start = time.perf_counter()
    embedding = embedder.embed([view])
    embed_ms = _ms(start)
    start = time.perf_counter()
    (matches,) = library.search(embedding, options.top_k, options.elements, views=[view])
    status = library.status()
    search_ms = _ms(start)
    return Identification(
        matches=matches,
        query=QueryInfo(
            filename=filename,
            n_points=pattern.n_points,
            two_theta_range_deg=pattern.two_theta_range_deg,
            covered_two_theta_deg=view.covered_two_theta_deg,
            wavelength=radiation,
            wavelength_origin=origin,
            baseline=options.baseline,
            warnings=view.warnings,
        ),
        library=status,
        model_version=embedder.version,
        timings=StageTimings(
            read_ms=read_ms, preprocess_ms=preprocess_ms, embed_ms=embed_ms, search_ms=search_ms
        ),
    )


def identify(
    data: bytes,
    filename: str | None,
    embedder: PatternEmbedder,
    library: Library,
    options: IdentifyOptions = IdentifyOptions(),
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Identification:
    """Read a pattern file in any supported format and identify it.

    Raises PatternReadError / UnsupportedFormatError (the file), InputError
    (options, or a scan that misses the grid at the given wavelength).
    """
    start = time.perf_counter()
    pattern = read_pattern(data, filename, max_bytes=max_bytes)
    return identify_pattern(
        pattern, embedder, library, options, filename=filename, read_ms=_ms(start)
    )
