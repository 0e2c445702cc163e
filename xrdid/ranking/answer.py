"""A ranking and its phase analysis as the answer a lab reads.

- **entries**: the ranked references grouped, one per material or family of
  look-alikes (:mod:`xrdid.ranking.grouping`), each with the calibrated
  probability that it is in the sample;
- **phases**: the phases found, with weight percents
  (:mod:`xrdid.ranking.quantify`) and the probability that each is in the
  sample if the scan's materials are in the library (the phases' model is
  fitted on scans of the library's own references); the entry of a phase's
  material carries that times the probability that the scan's material is
  in the library at all (the match model's, which the verdict reads), not
  the entries' own model's, which would contradict it;
- **fit**: how much of the scan the phases leave unexplained, and where;
- **verdict**: ``match`` (one phase), ``mixture`` (several) or ``no_match``
  (nothing in the library is credible).

The service (:mod:`xrdid.identify`) and the evaluation both build their
answers here, over any :class:`~xrdid.ranking.pipeline.ReferenceSource`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy.signal import find_peaks

from xrdid.grid import MODEL_GRID
from xrdid.ranking.confidence import CANDIDATE_FEATURES, PHASE_FEATURES, Calibration
from xrdid.ranking.config import SERVED, RankingConfig
from xrdid.ranking.grouping import grouped
from xrdid.ranking.phases import FoundPhase, PhaseAnalysis, keep_phases
from xrdid.ranking.pipeline import Query, RankedReference, Ranking, ReferenceFacts, ReferenceSource
from xrdid.ranking.quantify import weight_percents

__all__ = ["Answer", "AnswerEntry", "AnswerPhase", "UnexplainedPeak", "Verdict", "answer"]

Verdict = str  # "match" | "mixture" | "no_match"

# A residual peak counts as unexplained above this many noise σ and this share of the scan's maximum.
_UNEXPLAINED_SIGMA = 5.0
_UNEXPLAINED_MIN = 0.02
# At most this many unexplained peaks are reported, the highest first.
_UNEXPLAINED_PEAKS = 10
# A phase this probable counts towards a mixture.
_PHASE_PRESENT = 0.5


@dataclass(frozen=True)
class AnswerEntry:
    """One answer of the list: a material, or a family of look-alikes whose
    first member fits best. ``members[m]`` are the ranked references of
    member material m, best first."""

    members: tuple[tuple[RankedReference, ...], ...]
    confidence: float | None
    features: tuple[float, ...]  # what its confidence is computed from (CANDIDATE_FEATURES)

    @property
    def lead(self) -> RankedReference:
        return self.members[0][0]


@dataclass(frozen=True)
class AnswerPhase:
    """A phase found, with its amount and how sure it is."""

    found: FoundPhase
    name: str
    weight_percent: float | None
    weight_percent_sd: float | None
    weight_percent_note: str | None
    confidence: float | None


@dataclass(frozen=True)
class UnexplainedPeak:
    two_theta_deg: float  # on the model grid (Cu Kα1)
    height: float  # of the residual, the scan's maximum being 1
    # The phase (its place in the answer's phases) whose fitted profile there
    # is at least as high as the residual: a misfit of that phase's peak
    # (shape, position, height) more likely than a phase missing; None: none.
    on_phase: int | None = None


@dataclass(frozen=True)
class Answer:
    entries: tuple[AnswerEntry, ...]
    phases: tuple[AnswerPhase, ...]
    verdict: Verdict
    rwp: float | None  # √(misfit / Σ scan²) of the phases' joint fit
    unexplained: float | None  # share of the scan's intensity the phases leave
    unexplained_peaks: tuple[UnexplainedPeak, ...]
    amorphous_percent: float | None
    notes: tuple[str, ...]
    analysis: PhaseAnalysis | None  # of the phases reported (the overlay's arrays)

    def confidence_of(self, reference_id: int) -> float | None:
        """The confidence of the entry a reference belongs to."""
        for entry in self.entries:
            if any(r.reference_id == reference_id for refs in entry.members for r in refs):
                return entry.confidence
        return None


def answer(
    query: Query,
    ranking: Ranking,
    analysis: PhaseAnalysis | None,
    source: ReferenceSource,
    k: int,
    calibration: Calibration | None = None,
    standard: tuple[str, float] | None = None,
    config: RankingConfig = SERVED,
) -> Answer:
    """The answer for ``query``: its first ``k`` entries, from ``ranking``
    (whose ``best`` should hold several times ``k`` references, so that
    grouping leaves ``k`` entries) and ``analysis`` (None: no phase analysis).
    ``standard`` is an internal standard (its name and weight percent)."""
    notes: list[str] = []
    phases: tuple[AnswerPhase, ...] = ()
    amorphous = None
    if analysis is not None and calibration is not None:
        analysis = _credible(analysis, source, calibration, config, notes)
    # The phases' facts, read once for their amounts, the fit and the entries.
    phase_facts: list[ReferenceFacts] = []
    if analysis is not None and analysis.phases:
        ids = np.array([p.reference_id for p in analysis.phases], dtype=np.int64)
        phase_facts = source.facts(ids)
    if analysis is not None:
        phases, amorphous = _phases(analysis, phase_facts, calibration, standard, notes)
        notes += _two_rir_scales(phases, phase_facts)
        notes += _strained(phases, config)
        notes += _strained_out(analysis, source)
        if analysis.hump_share > 0:
            notes.append(
                f"a broad hump holding {analysis.hump_share:.0%} of the scan's intensity "
                "(amorphous content, or background the background removal left) was set "
                "aside before the phase analysis: the phases' shares, the fit and the overlay "
                "are of the scan without it"
            )
    fit_rwp = fit_unexplained = None
    unexplained_peaks: tuple[UnexplainedPeak, ...] = ()
    if analysis is not None and analysis.fit is not None:
        assessed = _assessed(analysis, phase_facts, source, notes)
        y = analysis.intensity[assessed]
        residual = analysis.fit.residual[assessed]
        fit_rwp = float(np.sqrt(float(residual @ residual) / max(float(y @ y), 1e-300)))
        left = np.where(assessed, np.clip(analysis.fit.residual, 0.0, None), 0.0)
        fit_unexplained = float(left.sum() / max(float(y.sum()), 1e-300))
        unexplained_peaks = _unexplained_peaks(left, analysis.noise, analysis.fit.components)
    fit = (
        fit_rwp if fit_rwp is not None else 1.0,
        fit_unexplained if fit_unexplained is not None else 1.0,
    )
    entries, top_features, entry_phases = _entries(
        query, ranking, source, calibration, phases, phase_facts, k, fit, config
    )
    in_library = _in_library(phases, analysis, calibration, top_features)
    verdict = _verdict(entries, phases, analysis, calibration, in_library)
    if in_library is not None:
        # A phase's confidence assumes the scan's materials are in the
        # library; its material's answer does not.
        phase_confidence = [p.confidence for p in phases]
        entries = tuple(
            replace(e, confidence=confidence * in_library)
            if phase is not None and (confidence := phase_confidence[phase]) is not None
            else e
            for e, phase in zip(entries, entry_phases, strict=True)
        )
    return Answer(
        entries=entries,
        phases=phases,
        verdict=verdict,
        rwp=fit_rwp,
        unexplained=fit_unexplained,
        unexplained_peaks=unexplained_peaks,
        amorphous_percent=amorphous,
        notes=tuple(notes),
        analysis=analysis,
    )


def _credible(
    analysis: PhaseAnalysis,
    source: ReferenceSource,
    calibration: Calibration,
    config: RankingConfig,
    notes: list[str],
) -> PhaseAnalysis:
    """The analysis without the phases below ``config.min_phase_confidence``
    (the others refitted): a lab acts on the phases reported, and what the
    dropped ones stood in for shows as unexplained peaks instead. The
    strongest phase stays: whether the scan's material is in the library at
    all is the verdict's question, answered by the match model."""
    if len(analysis.phases) < 2:
        return analysis
    rows = np.array([phase_features(p) for p in analysis.phases])
    probable = calibration.phase.probability(rows) >= config.min_phase_confidence
    probable[0] = True
    if probable.all():
        return analysis
    dropped = [p.reference_id for p, ok in zip(analysis.phases, probable, strict=True) if not ok]
    names = ", ".join(f.name for f in source.facts(np.array(dropped, dtype=np.int64)))
    notes.append(
        f"not reported, less than {config.min_phase_confidence:.0%} likely present: {names} "
        "(the peaks they would explain are listed as unexplained)"
    )
    return keep_phases(analysis, list(probable), source)


def _phases(
    analysis: PhaseAnalysis,
    facts: list[ReferenceFacts],
    calibration: Calibration | None,
    standard: tuple[str, float] | None,
    notes: list[str],
) -> tuple[tuple[AnswerPhase, ...], float | None]:
    """The phases found with their weight percents and confidences, and with
    an internal standard what it leaves amorphous or unidentified (``facts``:
    the phases', in order)."""
    found = analysis.phases
    if not found:
        return (), None
    standard_index = None
    if standard is not None:
        standard_index = _standard_index(standard[0], facts)
        if standard_index is None:
            notes.append(
                f"the internal standard {standard[0]!r} is not among the phases found; "
                "weight percents are relative to the phases found"
            )
    amounts = weight_percents(
        [f.name for f in facts],
        [p.scale for p in found],
        [p.scale_sd for p in found],
        [f.rir for f in facts],
        (standard_index, standard[1])
        if standard is not None and standard_index is not None
        else None,
    )
    confidence: list[float | None] = [None] * len(found)
    if calibration is not None:
        rows = np.array([phase_features(p) for p in found])
        confidence = [float(c) for c in calibration.phase.probability(rows)]
    phases = tuple(
        AnswerPhase(
            found=p,
            name=f.name,
            weight_percent=amounts.percent[i],
            weight_percent_sd=amounts.sd[i],
            weight_percent_note=amounts.notes[i],
            confidence=confidence[i],
        )
        for i, (p, f) in enumerate(zip(found, facts, strict=True))
    )
    return phases, amounts.amorphous_percent


def _two_rir_scales(phases: tuple[AnswerPhase, ...], facts: Sequence[ReferenceFacts]) -> list[str]:
    """A note when the weight percents rest on RIRs of both sources: for one
    mineral a calculated RIR is a median 2.1 times RockJock's measured one
    (docs/how-it-works.md, Weight percents), so the split between phases
    of measured and of calculated references is uncertain."""
    kinds: dict[bool, list[str]] = {True: [], False: []}
    for phase, fact in zip(phases, facts, strict=True):
        if phase.weight_percent is not None:
            kinds[fact.material.measured].append(phase.name)
    if not kinds[True] or not kinds[False]:
        return []
    return [
        "the weight percents rest on reference intensity ratios of two scales, measured "
        f"({', '.join(kinds[True])}) and calculated from structures "
        f"({', '.join(kinds[False])}), which differ for one mineral by a median factor of 2: "
        "the split between the two groups is uncertain"
    ]


def _strained(phases: tuple[AnswerPhase, ...], config: RankingConfig) -> list[str]:
    """A note for each phase that fits only with its cell strained by
    ``config.phase_strain_max`` or more: lab scans of a catalogued phase
    rarely strain it by more than a few tenths of a percent."""
    return [
        f"{p.name} fits only with its cell strained by {100 * p.found.shape.strain:+.1f}%: "
        "an isostructural material the library lacks, or a solid solution of it, may be "
        "what the sample holds"
        for p in phases
        if abs(p.found.shape.strain) >= config.phase_strain_max
    ]


def _strained_out(analysis: PhaseAnalysis, source: ReferenceSource) -> list[str]:
    """A note for each calculated phase not reported because it fitted only
    with its cell strained by percents beside the others."""
    if not analysis.strained_out:
        return []
    ids = np.array([rid for rid, _ in analysis.strained_out], dtype=np.int64)
    return [
        f"not reported: {fact.name} fits only with its cell strained by {100 * strain:+.1f}%: "
        "an isostructural material the library lacks may be what the sample holds (the peaks "
        "it would explain are listed as unexplained)"
        for fact, (_, strain) in zip(source.facts(ids), analysis.strained_out, strict=True)
    ]


def _standard_index(name: str, facts: list[ReferenceFacts]) -> int | None:
    """The phase whose name (or material) is the standard's, case aside."""
    wanted = name.strip().lower()
    for i, fact in enumerate(facts):
        formula = (fact.material.formula_space_group or "").split("|")[0].lower()
        if fact.name.strip().lower() == wanted or (formula and formula == wanted):
            return i
    return None


def phase_features(phase: FoundPhase) -> list[float]:
    """The features of a phase's confidence (:data:`PHASE_FEATURES`)."""
    e = phase.evidence
    values = {
        "gain": e.gain,
        "log_significance": float(np.log10(max(e.significance, 1e-3))),
        "peak_presence": e.peak_presence,
        "explained": phase.explained,
        "correlation": e.correlation,
        "similarity": e.similarity,
    }
    return [values[name] for name in PHASE_FEATURES]


def match_features(first_entry: Sequence[float], phases: Sequence[AnswerPhase]) -> list[float]:
    """The features of whether the scan's material is in the library
    (:data:`MATCH_FEATURES`): the first entry's and the strongest phase's
    (zeros when none was found)."""
    strongest = phase_features(phases[0].found) if phases else [0.0] * len(PHASE_FEATURES)
    return [*first_entry, *strongest, 1.0 if phases else 0.0]


def candidate_features(
    lead: RankedReference,
    next_score: float | None,
    rank: int,
    phase: FoundPhase | None,
    fit: tuple[float, float],
) -> list[float]:
    """The features of an entry's confidence (:data:`CANDIDATE_FEATURES`);
    ``fit`` is the phases' (rwp, unexplained share), (1, 1) without any."""
    values = {
        "score": lead.score,
        "correlation": lead.profile_correlation,
        "similarity": lead.similarity,
        "margin": lead.score - next_score if next_score is not None else 0.0,
        "log_rank": float(np.log(rank)),
        "is_phase": 1.0 if phase is not None else 0.0,
        "explained": phase.explained if phase is not None else 0.0,
        "fit_rwp": fit[0],
        "fit_unexplained": fit[1],
    }
    return [values[name] for name in CANDIDATE_FEATURES]


def _entries(
    query: Query,
    ranking: Ranking,
    source: ReferenceSource,
    calibration: Calibration | None,
    phases: tuple[AnswerPhase, ...],
    phase_facts: list[ReferenceFacts],
    k: int,
    fit: tuple[float, float],
    config: RankingConfig,
) -> tuple[tuple[AnswerEntry, ...], list[float] | None, list[int | None]]:
    """The grouped entries with their confidences, the first one's features,
    and which of the phases each entry is, if any (``phase_facts``: the
    phases', in order)."""
    best = ranking.best
    if not best:
        return (), None, []
    ids = np.array([r.reference_id for r in best], dtype=np.int64)
    facts = source.facts(ids)
    groups = grouped(
        [f.material for f in facts],
        [f.space_group_number for f in facts],
        source.profiles(ids),
        np.asarray(query.mask, dtype=bool),
        config,
    )[:k]
    # A member is a phase found when one of its references is, or one of its material's.
    phase_of: dict[int, int] = {}
    for index, f in enumerate(phase_facts):
        for position, fact in enumerate(facts):
            if fact.material.same_as(f.material):
                phase_of.setdefault(position, index)
    entries = []
    for rank_, group in enumerate(groups, start=1):
        members = tuple(tuple(best[i] for i in refs) for refs in group.members)
        entries.append((group, members, rank_))
    rows = []
    entry_phases: list[int | None] = []
    for index, (group, members, rank_) in enumerate(entries):
        following = entries[index + 1][1][0][0].score if index + 1 < len(entries) else None
        phase = next((phase_of[i] for refs in group.members for i in refs if i in phase_of), None)
        entry_phases.append(phase)
        found = phases[phase].found if phase is not None else None
        rows.append(candidate_features(members[0][0], following, rank_, found, fit))
    confidence: list[float | None] = [None] * len(entries)
    if calibration is not None and rows:
        confidence = [float(c) for c in calibration.candidate.probability(np.array(rows))]
    answers = tuple(
        AnswerEntry(members, confidence[i], tuple(rows[i]))
        for i, (_, members, _) in enumerate(entries)
    )
    return answers, (rows[0] if rows else None), entry_phases


def _assessed(
    analysis: PhaseAnalysis,
    facts: list[ReferenceFacts],
    source: ReferenceSource,
    notes: list[str],
) -> NDArray[np.bool_]:
    """Where the fit is assessed (Rwp, what is unexplained, and where): the
    fitted points every phase's reference has data for. A measured
    reference says nothing outside its own range (RockJock's end at 65°), so
    a scan's peaks there are not unexplained; a note says where the fit was
    assessed and why."""
    measured = [
        (p.reference_id, f.name)
        for p, f in zip(analysis.phases, facts, strict=True)
        if f.material.measured
    ]
    assessed = analysis.mask.copy()
    if not measured:
        return assessed
    narrowing = []
    ids = np.array([rid for rid, _ in measured], dtype=np.int64)
    for (_, name), profile in zip(measured, source.profiles(ids), strict=True):
        covered = np.flatnonzero(profile > 0)
        if covered.size == 0:
            continue
        inside = np.zeros_like(assessed)
        inside[covered[0] : covered[-1] + 1] = True
        if (assessed & ~inside).any() and (assessed & inside).any():
            assessed &= inside
            narrowing.append(name)
    if narrowing:
        points = np.flatnonzero(assessed)
        low, high = MODEL_GRID.two_theta_deg[[points[0], points[-1]]]
        notes.append(
            f"the fit is assessed over {low:.1f}–{high:.1f}° 2θ, where the measured "
            f"reference{'s' if len(narrowing) > 1 else ''} {', '.join(narrowing)} "
            f"{'have' if len(narrowing) > 1 else 'has'} data: peaks outside it are not "
            "listed as unexplained"
        )
    return assessed


def _unexplained_peaks(
    left: NDArray[np.float64], noise: float, components: NDArray[np.float64]
) -> tuple[UnexplainedPeak, ...]:
    """The residual's highest peaks above noise (``left``: the residual,
    negative parts clipped), each with the phase whose fitted component
    (``components``, one row per phase) there is at least its height."""
    floor = max(_UNEXPLAINED_SIGMA * noise, _UNEXPLAINED_MIN)
    peaks, props = find_peaks(left, height=floor, prominence=floor)
    order = np.argsort(-props["peak_heights"])[:_UNEXPLAINED_PEAKS]
    out = []
    for i in order:
        at, height = int(peaks[i]), float(props["peak_heights"][i])
        on_phase = None
        if len(components):
            strongest = int(np.argmax(components[:, at]))
            if components[strongest, at] >= height:
                on_phase = strongest
        out.append(UnexplainedPeak(float(MODEL_GRID.two_theta_deg[at]), height, on_phase))
    return tuple(out)


def _in_library(
    phases: tuple[AnswerPhase, ...],
    analysis: PhaseAnalysis | None,
    calibration: Calibration | None,
    top_features: list[float] | None,
) -> float | None:
    """The calibrated probability that the scan's material is in the library
    at all: from the first entry's features and the strongest phase's, or
    without the analysis from the first entry's alone (None: no calibration)."""
    if calibration is None or top_features is None:
        return None
    if analysis is None:
        model, features = calibration.match_without_phases, top_features
    else:
        model, features = calibration.match, match_features(top_features, phases)
    return float(model.probability(np.array([features]))[0])


def _verdict(
    entries: tuple[AnswerEntry, ...],
    phases: tuple[AnswerPhase, ...],
    analysis: PhaseAnalysis | None,
    calibration: Calibration | None,
    in_library: float | None,
) -> Verdict:
    """``no_match`` when nothing is credible: no phase kept (when the phase
    analysis ran), or the probability that the scan's material is in the
    library (:func:`_in_library`) below its threshold; ``mixture`` when
    several phases are probably present (the phases' model's probabilities)."""
    if not entries or (analysis is not None and not phases):
        return "no_match"
    if calibration is not None and in_library is not None:
        below = (
            calibration.no_match_below_without_phases
            if analysis is None
            else calibration.no_match_below
        )
        if in_library < below:
            return "no_match"
    present = [p for p in phases if p.confidence is None or p.confidence >= _PHASE_PRESENT]
    return "mixture" if len(present) >= 2 else "match"
