"""Identify a Raman spectrum: spectrum → answer, the service's Raman pipeline.

Stage by stage, each timed: preprocess the spectrum onto the Raman grid
(despike, baseline, normalise: :func:`xrdid.raman.preprocess.preprocess_spectrum`),
embed it with the Raman model, rank the Raman library's minerals
(:class:`xrdid.raman.search.RamanSearch`: nearest by embedding and by
profile, shift-tolerant re-rank, confidences), predict the elements, and
give the verdict. The answer has the shape of an XRD identification's
(:mod:`xrdid.results`): ranked references with scores and confidences, a
verdict (``match`` or ``no_match``), notes and, on request, the arrays of an
overlay; and the elements the sample probably contains.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from xrdid.errors import InputError, XrdidError
from xrdid.identify import MAX_TOP_K, preprocess_guard
from xrdid.library import ElementFilter, LibraryStatus, Match
from xrdid.raman.grid import RAMAN_GRID
from xrdid.raman.preprocess import PreprocessedSpectrum, RamanBaseline, preprocess_spectrum
from xrdid.raman.search import RamanAnswer, RamanSearch
from xrdid.raman.spectrum import RamanSpectrum
from xrdid.ranking.answer import Verdict
from xrdid.results import StageTimings

__all__ = [
    "RamanEvidence",
    "RamanOptions",
    "RamanQueryInfo",
    "RamanResult",
    "identify_spectra",
    "identify_spectrum",
]


@dataclass(frozen=True)
class RamanOptions:
    """How to compare a spectrum; ``include_profiles`` returns overlay arrays."""

    top_k: int = 5
    baseline: RamanBaseline = RamanBaseline.BEADS
    elements: ElementFilter = field(default_factory=ElementFilter)
    include_profiles: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise InputError(f"top_k {self.top_k} is outside 1–{MAX_TOP_K}")


@dataclass(frozen=True)
class RamanQueryInfo:
    """What was compared: the spectrum as read and the part of the grid it covers."""

    filename: str | None
    n_points: int
    shift_range_cm1: tuple[float, float]  # as measured
    covered_cm1: tuple[float, float]  # on the Raman grid (100–1,800 cm⁻¹)
    laser_wavelength_nm: float | None
    baseline: RamanBaseline
    spikes_removed: int  # cosmic-ray spikes taken out
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class RamanEvidence:
    """The arrays of an overlay over the covered part of the Raman grid: the
    preprocessed spectrum and every candidate's reference profile."""

    shift_cm1: NDArray[np.float64]
    spectrum: NDArray[np.float64]
    references: tuple[tuple[int, str, NDArray[np.float64]], ...]  # (id, name, profile)


@dataclass(frozen=True)
class RamanResult:
    """The answer for one spectrum, with what was used to get it."""

    matches: tuple[Match, ...]  # one per mineral, best first
    verdict: Verdict  # "match" or "no_match"
    # Probability that the sample contains each element, highest first.
    elements: tuple[tuple[str, float], ...]
    notes: tuple[str, ...]
    evidence: RamanEvidence | None
    query: RamanQueryInfo
    library: LibraryStatus
    model_version: str
    timings: StageTimings


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def identify_spectrum(
    spectrum: RamanSpectrum,
    search: RamanSearch,
    options: RamanOptions = RamanOptions(),
    *,
    filename: str | None = None,
    read_ms: float = 0.0,
) -> RamanResult:
    """Preprocess, embed and rank an already-read Raman spectrum.

    Raises InputError for a spectrum that covers too little of the grid or
    cannot be preprocessed.
    """
    (result,) = identify_spectra([(spectrum, filename, read_ms)], search, options)
    if isinstance(result, XrdidError):
        raise result
    return result


def identify_spectra(
    spectra: Sequence[tuple[RamanSpectrum, str | None, float]],
    search: RamanSearch,
    options: RamanOptions = RamanOptions(),
) -> list[RamanResult | XrdidError]:
    """Identify already-read spectra, each ``(spectrum, filename, read_ms)``,
    at once: each preprocessed, all embedded in one forward pass, each
    ranked. A spectrum that cannot be preprocessed gets its error in its
    place; the others are not affected."""
    out: list[RamanResult | XrdidError | None] = [None] * len(spectra)
    # One BLAS thread: the ranking's matrix products are small, and on a
    # shared CPU a multithreaded one spins (measured: 76 ms → 10 ms a query
    # on 2 loaded cores); concurrent requests use the other cores.
    with threadpool_limits(limits=1, user_api="blas"):
        prepared: list[tuple[int, PreprocessedSpectrum, float]] = []
        for i, (spectrum, _, _) in enumerate(spectra):
            start = time.perf_counter()
            try:
                with preprocess_guard(spectrum):
                    view = preprocess_spectrum(spectrum, method=options.baseline)
            except XrdidError as exc:
                out[i] = exc
                continue
            prepared.append((i, view, _ms(start)))
        start = time.perf_counter()
        embeddings = search.embedder.embed([view for _, view, _ in prepared])
        embed_ms = _ms(start) / max(len(prepared), 1)
        for (i, view, preprocess_ms), embedding in zip(prepared, embeddings, strict=True):
            spectrum, filename, read_ms = spectra[i]
            start = time.perf_counter()
            found = search.rank(view, embedding, options.top_k, options.elements)
            timings = StageTimings(
                read_ms=read_ms,
                preprocess_ms=preprocess_ms,
                embed_ms=embed_ms,
                search_ms=_ms(start),
            )
            out[i] = _result(spectrum, view, found, search, options, filename, timings)
    return [r for r in out if r is not None]


def _result(
    spectrum: RamanSpectrum,
    view: PreprocessedSpectrum,
    found: RamanAnswer,
    search: RamanSearch,
    options: RamanOptions,
    filename: str | None,
    timings: StageTimings,
) -> RamanResult:
    notes = []
    if not found.matches:
        notes.append(
            "no reference of the Raman library passes the element filters"
            if options.elements.active
            else "the Raman library is empty: add references with POST /references"
        )
    elif found.no_match and found.top_score is not None:
        ranking = search.effective_ranking
        score = (
            "the match model's probability that the mineral is in the library"
            if ranking.no_match_on == "match model"
            else f"the best {ranking.no_match_on} score"
        )
        notes.append(
            f"{score}, {found.top_score:.3f}, is below the no-match threshold "
            f"{ranking.no_match_below:.3f}: the mineral is most likely not in "
            "the library, or the spectrum is of several minerals (the Raman ranking looks "
            "for one); the candidates are the nearest minerals, and `elements` the "
            "sample's probable chemistry"
        )
    if not search.settings_match_model:
        notes.append(
            "the Raman ranking settings were chosen for another model: no no-match verdict "
            "and no confidences (run `python -m indexer evaluate-raman`)"
        )
    evidence = None
    if options.include_profiles:
        covered = np.flatnonzero(view.mask)  # never empty: preprocessing refuses that
        keep = slice(int(covered[0]), int(covered[-1]) + 1)
        evidence = RamanEvidence(
            shift_cm1=RAMAN_GRID.shift_cm1[keep],
            spectrum=view.intensity[keep],
            references=tuple(
                (m.entry.id, m.entry.info.name, found.profiles[i][keep].astype(np.float64))
                for i, m in enumerate(found.matches)
            ),
        )
    info = RamanQueryInfo(
        filename=filename,
        n_points=spectrum.n_points,
        shift_range_cm1=spectrum.shift_range_cm1,
        covered_cm1=view.covered_cm1,
        laser_wavelength_nm=spectrum.laser_wavelength_nm,
        baseline=options.baseline,
        spikes_removed=view.spikes_removed,
        warnings=view.warnings,
    )
    return RamanResult(
        matches=found.matches,
        verdict="no_match" if found.no_match else "match",
        elements=found.elements,
        notes=tuple(notes),
        evidence=evidence,
        query=info,
        library=search.library.status(),
        model_version=search.embedder.version,
        timings=timings,
    )
