"""Identify what a measured pattern holds: file → answer.

The pipeline the service runs per upload (and per batch of uploads), stage
by stage, each timed: read the file (:func:`xrdid.readers.read_pattern`),
preprocess it onto the model grid (:func:`xrdid.preprocess.preprocess`),
embed it (one forward pass for a whole batch), rank the library's
references for it (:func:`xrdid.ranking.rank`), analyse its phases
(:func:`xrdid.ranking.phases.analyse_phases`) and turn both into the
answer (:func:`xrdid.ranking.answer.answer`, :mod:`xrdid.results`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import InputError, PatternReadError, XrdidError
from xrdid.grid import MODEL_GRID
from xrdid.library import ElementFilter, Library, Match, PatternEmbedder
from xrdid.pattern import CONVERTED_AXIS, Pattern
from xrdid.preprocess import BaselineMethod, PreprocessedPattern, preprocess
from xrdid.raman.spectrum import RamanSpectrum
from xrdid.ranking import SERVED, Query, RankedReference, Ranking, rank
from xrdid.ranking.answer import Answer, AnswerEntry, AnswerPhase, answer
from xrdid.ranking.confidence import Calibration
from xrdid.ranking.doublet import as_measured
from xrdid.ranking.phases import Embed, PhaseAnalysis, analyse_phases
from xrdid.readers import DEFAULT_MAX_BYTES, read_pattern
from xrdid.results import (
    Cell,
    Evidence,
    FamilyMember,
    FitSummary,
    Identification,
    LookAlikeMatch,
    MaterialMatch,
    PhaseMatch,
    PhaseProfile,
    QueryInfo,
    StageTimings,
    fitted_cell,
    reflections,
)
from xrdid.sticks import StickPattern
from xrdid.wavelengths import CU_KALPHA, Wavelength

__all__ = [
    "MAX_TOP_K",
    "Identification",
    "IdentifyOptions",
    "InternalStandard",
    "QueryInfo",
    "StageTimings",
    "embed_like",
    "identify",
    "identify_many",
    "identify_patterns",
    "identify_pattern",
    "preprocess_guard",
]

logger = logging.getLogger(__name__)

# More candidates than this is a listing, not an identification.
MAX_TOP_K = 100
# References ranked per answer entry asked for: grouping folds several
# references (one material from several sources, look-alike families) into
# one entry, so the ranking keeps more than top_k.
POOL_PER_ENTRY = 4
MIN_POOL = 30


@dataclass(frozen=True)
class InternalStandard:
    """A phase added to the sample at a known weight percent (e.g. corundum at 20%)."""

    name: str
    weight_percent: float

    @classmethod
    def parse(cls, text: str) -> InternalStandard:
        """``"Corundum:20"`` → InternalStandard("Corundum", 20.0)."""
        match = re.fullmatch(r"\s*([^:]+?)\s*:\s*([0-9.]+)\s*%?\s*", text)
        if match is None:
            raise InputError(
                f"internal standard {text!r} is not NAME:PERCENT, e.g. 'Corundum:20' (the "
                "phase's name or formula and its weight percent in the sample)"
            )
        percent = float(match.group(2))
        if not 0.0 < percent < 100.0:
            raise InputError(f"internal standard weight percent {percent} is outside 0–100")
        return cls(match.group(1), percent)


@dataclass(frozen=True)
class IdentifyOptions:
    """How to read and compare the query.

    ``wavelength`` None: the file's, else Cu Kα. ``phases``: analyse the
    phases (off: the ranked list only); ``include_profiles``: return the
    arrays of an overlay.
    """

    top_k: int = 5
    wavelength: Wavelength | None = None
    baseline: BaselineMethod = BaselineMethod.BEADS
    elements: ElementFilter = field(default_factory=ElementFilter)
    phases: bool = True
    include_profiles: bool = False
    internal_standard: InternalStandard | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise InputError(f"top_k {self.top_k} is outside 1–{MAX_TOP_K}")
        if self.internal_standard is not None and not self.phases:
            raise InputError("an internal standard needs the phase analysis: leave phases on")


@contextmanager
def preprocess_guard(measurement: Pattern | RamanSpectrum) -> Iterator[None]:
    """Check a measurement's intensities fit floating point, and turn a
    numerical failure of preprocessing (a bug met on odd input) into an
    InputError: a file must never crash the caller."""
    span = float(np.max(measurement.intensity)) - float(np.min(measurement.intensity))
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
        logger.exception("preprocessing failed on a measurement of %d points", measurement.n_points)
        columns = (
            "Raman shift in cm⁻¹ and intensity"
            if isinstance(measurement, RamanSpectrum)
            else "2θ in degrees and intensity in counts"
        )
        raise InputError(
            f"the {'spectrum' if isinstance(measurement, RamanSpectrum) else 'pattern'} could "
            f"not be preprocessed ({exc}); check that the columns are {columns}"
        ) from exc


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


@dataclass(frozen=True)
class _Prepared:
    """A scan read and preprocessed, waiting for the model."""

    pattern: Pattern
    view: PreprocessedPattern
    info: QueryInfo
    read_ms: float
    preprocess_ms: float


def _prepare(
    pattern: Pattern, options: IdentifyOptions, filename: str | None, read_ms: float
) -> _Prepared:
    start = time.perf_counter()
    wavelength = options.wavelength
    ignored: tuple[str, ...] = ()
    if wavelength is not None and CONVERTED_AXIS in pattern.metadata:
        # A q or d axis needs no radiation: the reader converted it to 2θ at
        # the wavelength the pattern carries, and another would misread it.
        wavelength, ignored = None, (_ignored_wavelength(pattern),)
    if wavelength is not None:
        radiation, origin = wavelength, "request"
    elif pattern.wavelength is not None:
        radiation, origin = pattern.wavelength, "file"
    else:
        radiation, origin = CU_KALPHA, "default"
    with preprocess_guard(pattern):
        view = preprocess(pattern, wavelength=wavelength, method=options.baseline)
    info = QueryInfo(
        filename=filename,
        n_points=pattern.n_points,
        two_theta_range_deg=pattern.two_theta_range_deg,
        covered_two_theta_deg=view.covered_two_theta_deg,
        wavelength=radiation,
        wavelength_origin=origin,
        baseline=options.baseline,
        warnings=(*ignored, *view.warnings),
    )
    return _Prepared(pattern, view, info, read_ms, _ms(start))


def _ignored_wavelength(pattern: Pattern) -> str:
    return (
        f"the file's first column is {pattern.metadata[CONVERTED_AXIS]}, which needs no "
        "wavelength: the wavelength sent was not used"
    )


def identify_pattern(
    pattern: Pattern,
    embedder: PatternEmbedder,
    library: Library,
    options: IdentifyOptions = IdentifyOptions(),
    *,
    calibration: Calibration | None = None,
    filename: str | None = None,
    read_ms: float = 0.0,
) -> Identification:
    """Preprocess, embed, rank and analyse an already-read pattern."""
    prepared = _prepare(pattern, options, filename, read_ms)
    return _identify([prepared], embedder, library, options, calibration)[0]


def identify(
    data: bytes,
    filename: str | None,
    embedder: PatternEmbedder,
    library: Library,
    options: IdentifyOptions = IdentifyOptions(),
    *,
    calibration: Calibration | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Identification:
    """Read a pattern file in any supported format and identify it.

    Raises PatternReadError / UnsupportedFormatError (the file), InputError
    (options, or a scan that misses the grid at the given wavelength).
    """
    start = time.perf_counter()
    pattern = read_pattern(data, filename, max_bytes=max_bytes)
    return identify_pattern(
        pattern,
        embedder,
        library,
        options,
        calibration=calibration,
        filename=filename,
        read_ms=_ms(start),
    )


def identify_many(
    files: Sequence[tuple[bytes, str | None]],
    embedder: PatternEmbedder,
    library: Library,
    options: IdentifyOptions = IdentifyOptions(),
    *,
    calibration: Calibration | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[Identification | XrdidError]:
    """Identify many files at once: each read and preprocessed, all embedded
    in one forward pass and ranked in one search. A file that cannot be read
    gets its error in its place; the others are not affected."""
    out: list[Identification | XrdidError | None] = [None] * len(files)
    read: list[tuple[int, tuple[Pattern, str | None, float]]] = []
    for i, (data, filename) in enumerate(files):
        start = time.perf_counter()
        try:
            read.append(
                (i, (read_pattern(data, filename, max_bytes=max_bytes), filename, _ms(start)))
            )
        except XrdidError as exc:
            out[i] = exc
    results = identify_patterns(
        [item for _, item in read], embedder, library, options, calibration=calibration
    )
    for (i, _), result in zip(read, results, strict=True):
        out[i] = result
    return [r for r in out if r is not None]


def identify_patterns(
    patterns: Sequence[tuple[Pattern, str | None, float]],
    embedder: PatternEmbedder,
    library: Library,
    options: IdentifyOptions = IdentifyOptions(),
    *,
    calibration: Calibration | None = None,
) -> list[Identification | XrdidError]:
    """Identify already-read patterns, each ``(pattern, filename, read_ms)``,
    at once (one forward pass, one search). A pattern that cannot be
    preprocessed gets its error in its place; the others are not affected."""
    out: list[Identification | XrdidError | None] = [None] * len(patterns)
    prepared: list[tuple[int, _Prepared]] = []
    for i, (pattern, filename, read_ms) in enumerate(patterns):
        try:
            prepared.append((i, _prepare(pattern, options, filename, read_ms)))
        except XrdidError as exc:
            out[i] = exc
    results = _identify([p for _, p in prepared], embedder, library, options, calibration)
    for (i, _), result in zip(prepared, results, strict=True):
        out[i] = result
    return [r for r in out if r is not None]


def _identify(
    items: Sequence[_Prepared],
    embedder: PatternEmbedder,
    library: Library,
    options: IdentifyOptions,
    calibration: Calibration | None,
) -> list[Identification]:
    if not items:
        return []
    start = time.perf_counter()
    embeddings = embedder.embed([p.view for p in items])
    embed_ms = _ms(start) / len(items)
    usable = calibration if calibration and calibration.model_version == embedder.version else None
    queries = [
        Query(p.view.intensity, p.view.mask, e) for p, e in zip(items, embeddings, strict=True)
    ]
    pool = max(MIN_POOL, POOL_PER_ENTRY * options.top_k)
    out = []
    with library.reading(options.elements) as source:
        start = time.perf_counter()
        rankings = rank(queries, source, pool)
        search_ms = _ms(start) / len(items)
        for prepared, query, ranking in zip(items, queries, rankings, strict=True):
            start = time.perf_counter()
            # The phases are fitted to the references as this scan's radiation shows them.
            measured = as_measured(source, prepared.view.wavelength)
            analysis = (
                analyse_phases(query, ranking, measured, embed_like(embedder, prepared.view))
                if options.phases
                else None
            )
            standard = options.internal_standard
            result = answer(
                query,
                ranking,
                analysis,
                measured,
                options.top_k,
                usable,
                (standard.name, standard.weight_percent) if standard else None,
            )
            timings = StageTimings(
                read_ms=prepared.read_ms,
                preprocess_ms=prepared.preprocess_ms,
                embed_ms=embed_ms,
                search_ms=search_ms,
                phases_ms=_ms(start),
            )
            out.append(
                _identification(
                    library, prepared, ranking, result, options, timings, embedder.version
                )
            )
    return out


def embed_like(embedder: PatternEmbedder, view: PreprocessedPattern) -> Embed:
    """Embeds a residual (intensity, mask) as the query was embedded."""

    def embed(intensity: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.float32]:
        return embedder.embed([replace(view, intensity=intensity, mask=mask)])[0]

    return embed


def _identification(
    library: Library,
    prepared: _Prepared,
    ranking: Ranking,
    result: Answer,
    options: IdentifyOptions,
    timings: StageTimings,
    model_version: str,
) -> Identification:
    """The answer with each reference's metadata, cells and reflections."""
    sticks = _sticks(library, result)
    (flat,) = library.matches([ranking.best[: options.top_k]])
    flat = tuple(replace(m, confidence=result.confidence_of(m.entry.id)) for m in flat)
    materials = tuple(
        _material(library, ranking, entry, rank_, sticks)
        for rank_, entry in enumerate(result.entries, start=1)
    )
    phases = tuple(_phase(library, phase, sticks) for phase in result.phases)
    fit = (
        FitSummary.of(
            result.rwp,
            result.unexplained or 0.0,
            tuple(
                (
                    p.two_theta_deg,
                    p.height,
                    None if p.on_phase is None else result.phases[p.on_phase].name,
                )
                for p in result.unexplained_peaks
            ),
        )
        if result.rwp is not None
        else None
    )
    evidence = (
        _evidence(result.analysis, result, sticks, prepared.info.covered_two_theta_deg)
        if options.include_profiles and result.analysis is not None
        else None
    )
    return Identification(
        matches=flat,
        materials=materials,
        phases=phases,
        verdict=result.verdict,
        fit=fit,
        amorphous_percent=result.amorphous_percent,
        notes=result.notes + _assumed_radiation(result.verdict, prepared.info),
        evidence=evidence,
        query=prepared.info,
        library=library.status(),
        model_version=model_version,
        timings=timings,
    )


def _assumed_radiation(verdict: str, info: QueryInfo) -> tuple[str, ...]:
    """A note when nothing matched a scan read at the Cu Kα it was assumed to
    be: a scan from another tube, read as Cu, has every peak at the wrong d."""
    if verdict != "no_match" or info.wavelength_origin != "default":
        return ()
    return (
        "nothing in the library matches this scan read as Cu Kα, which was assumed "
        "because the file states no wavelength: if it was measured with another tube, "
        "send its wavelength (e.g. wavelength=Co, Mo or 1.78897)",
    )


def _sticks(library: Library, result: Answer) -> dict[int, StickPattern]:
    """Stick patterns of the calculated references the answer shows (for cells
    and reflections)."""
    ids = {p.found.reference_id for p in result.phases}
    for entry in result.entries:
        ids |= {refs[0].reference_id for refs in entry.members}
    return library.stick_patterns(sorted(ids))


def _strain_in(ranking: Ranking, reference_id: int) -> float:
    """A reference's isotropic strain as the ranking fitted it to the scan."""
    index = np.flatnonzero(ranking.ids == reference_id)
    if not index.size or ranking.fits is None:
        return 0.0
    return float(ranking.fits.isotropic.strain[index[0]])


def _cell(
    sticks: dict[int, StickPattern], reference_id: int, strain: float | Sequence[float]
) -> Cell | None:
    found = sticks.get(reference_id)
    return fitted_cell(found, strain) if found is not None else None


def _one_match(library: Library, reference: RankedReference, rank_: int) -> Match:
    (matches,) = library.matches([[reference]])
    return replace(matches[0], rank=rank_)


def _material(
    library: Library,
    ranking: Ranking,
    entry: AnswerEntry,
    rank_: int,
    sticks: dict[int, StickPattern],
) -> MaterialMatch:
    lead, *others = entry.members
    (lead_matches,) = library.matches([list(lead)])
    (member_matches,) = library.matches([[refs[0] for refs in others]])
    family = tuple(
        FamilyMember(
            replace(match, confidence=entry.confidence),
            _cell(sticks, match.entry.id, _strain_in(ranking, match.entry.id)),
        )
        for match in sorted(member_matches, key=lambda m: -(m.profile_correlation or 0.0))
    )
    return MaterialMatch(
        rank=rank_,
        match=replace(lead_matches[0], rank=rank_, confidence=entry.confidence),
        confidence=entry.confidence,
        alternatives=tuple(lead_matches[1:]),
        family=family,
        cell=_cell(sticks, entry.lead.reference_id, _strain_in(ranking, entry.lead.reference_id)),
    )


def _phase(library: Library, phase: AnswerPhase, sticks: dict[int, StickPattern]) -> PhaseMatch:
    found = phase.found
    evidence = found.evidence
    reference = RankedReference(
        found.reference_id,
        evidence.similarity,
        evidence.correlation,
        float(SERVED.fused_score(evidence.similarity, evidence.correlation)),
    )
    match = _one_match(library, reference, 1)
    entries = library.entries([a.reference_id for a in found.lookalikes])
    return PhaseMatch(
        match=replace(match, confidence=phase.confidence),
        weight_percent=phase.weight_percent,
        weight_percent_sd=phase.weight_percent_sd,
        weight_percent_note=phase.weight_percent_note,
        scale=found.scale,
        scale_sd=found.scale_sd,
        shape=found.shape,
        cell=_cell(sticks, found.reference_id, found.shape.tensor or found.shape.strain),
        explained=found.explained,
        confidence=phase.confidence,
        lookalikes=tuple(
            LookAlikeMatch(entries[a.reference_id], a.misfit_ratio)
            for a in found.lookalikes
            if a.reference_id in entries  # one deleted meanwhile (another replica) is left out
        ),
    )


def _evidence(
    analysis: PhaseAnalysis,
    result: Answer,
    sticks: dict[int, StickPattern],
    covered: tuple[float, float],
) -> Evidence:
    mask = analysis.mask
    two_theta = MODEL_GRID.two_theta_deg[mask]
    residual = analysis.fit.residual[mask] if analysis.fit is not None else analysis.intensity[mask]
    phases = tuple(
        PhaseProfile(
            reference_id=p.found.reference_id,
            name=p.name,
            profile=analysis.fit.components[i][mask] if analysis.fit is not None else np.zeros(0),
            reflections=(
                reflections(
                    sticks[p.found.reference_id], p.found.shape, covered, analysis.wavelength_ratio
                )
                if p.found.reference_id in sticks
                else ()
            ),
        )
        for i, p in enumerate(result.phases)
    )
    return Evidence(two_theta, analysis.intensity[mask], residual, phases)
