"""Which phases a scan holds: iterative search–match with joint refinement.

A ranked list answers "which reference is this scan most like"; for a
mixture that tends to be the strongest phase and its look-alikes. Phase
analysis instead, round by round:

1. takes the best few candidates of the current ranking (the scan's at
   first, then the unexplained residual's) that are not a material already
   found;
2. refines each together with the phases found so far against the scan
   (:func:`xrdid.ranking.refine.refine`: non-negative scales, per phase a
   2θ shift, a strain and a broadening);
3. keeps the one that passes the evidence best: it must remove a clear share
   of the remaining misfit, far more than noise over its peaks explains, and
   the scan must show its own strongest peaks; then refines the phases found
   with a strain tensor each (a calculated reference's cell rarely strains
   evenly), so that what is left is the next phase's peaks;
4. ranks what is still unexplained and goes on, until no candidate passes or
   ``max_phases`` are found;
5. tries each phase's look-alikes in its place (:func:`_swapped`): an early
   round sees a phase beside others not yet fitted, where a member of an
   isostructural series fits about as well as the right one (an hcp Zr
   suboxide for zincite, silicon for fluorite). Against the finished fit the
   right one shows.

A broad feature (an amorphous hump, background the baseline left) dominates
the embedding and the profile search of whatever holds it, and its ranking is
then broad references whose peaks the scan does not show. Where one holds a
clear share of the intensity, the peaks alone (the scan or residual less its
broad part) are ranked too, first. A wide hump holding a fifth or more of the
scan is set aside before the rounds: left in, it dominates the misfit every
phase's evidence is measured against, and a phase broadens to cover it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import islice, zip_longest

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import grey_opening
from scipy.optimize import nnls
from scipy.signal import find_peaks

from xrdid.grid import MODEL_GRID
from xrdid.noise import noise_sigma
from xrdid.ranking.config import SERVED, RankingConfig
from xrdid.ranking.correlation import IsotropicFit, StoredReferences, isotropic_fit
from xrdid.ranking.doublet import DoubletSource, wavelength_ratio
from xrdid.ranking.grouping import lookalike_fit
from xrdid.ranking.materials import Material
from xrdid.ranking.pipeline import Query, RankedReference, Ranking, ReferenceSource, rank
from xrdid.ranking.refine import (
    JointFit,
    PhaseShape,
    ShapeLimits,
    instrument_shift,
    refine,
    transformed,
)
from xrdid.ranking.strain_tensor import ISOTROPIC, StrainBasis, largest_strain

__all__ = [
    "FoundPhase",
    "LookAlike",
    "PhaseAnalysis",
    "PhaseEvidence",
    "analyse_phases",
    "keep_phases",
    "noise_level",
]

# Embeds a model-grid profile (intensity, mask) the way the query was embedded.
Embed = Callable[[NDArray[np.float64], NDArray[np.bool_]], NDArray[np.float32]]

# A component point counts as part of a phase's peaks above this share of its maximum.
_FOOTPRINT = 0.05
# Half-width (grid steps) searched around a predicted peak for the scan's own.
_PEAK_SEARCH_STEPS = 3
# A refined shape within this share of a bound counts as at the bound.
_AT_BOUND = 0.98
# Features wider than this are broad (humps, background); peaks are far narrower.
_BROAD_DEG = 2.0
# The peaks alone are ranked too when the broad part holds this share of the intensity.
_BROAD_SHARE = 0.1


@dataclass(frozen=True)
class PhaseEvidence:
    """Why a phase was kept (the features its confidence is calibrated on)."""

    gain: float  # share of the misfit before it that adding it removed
    own_gain: float  # of that, the share removed where its own peaks stand out
    significance: float  # misfit removed / (noise² × points under its peaks)
    peak_presence: float  # share of its strongest own peaks the scan shows at half height
    similarity: float  # its ranked cosine when it was found
    correlation: float  # its ranked profile correlation when it was found


@dataclass(frozen=True)
class LookAlike:
    """Another material that fits the scan about as well in a phase's place:
    a look-alike of it (an isostructural relative, usually), whose fit beside
    the other phases (held as fitted, their scales refitted) also passes the
    evidence a phase needs and leaves a misfit within the band a swap needs
    to replace one by the other."""

    reference_id: int
    # That fit's misfit / the phase's: below 1 it fits better, by less than a
    # swap needs.
    misfit_ratio: float


@dataclass(frozen=True)
class FoundPhase:
    """A phase of the scan, as refined with all the others."""

    reference_id: int
    scale: float  # of the reference's profile (its strongest point = 1)
    scale_sd: float
    shape: PhaseShape
    explained: float  # share of the scan's intensity it accounts for
    evidence: PhaseEvidence
    round: int  # 0 = found first
    # Materials the scan cannot tell from it (best fitting first): the choice
    # among them needs the sample's chemistry.
    lookalikes: tuple[LookAlike, ...] = ()


@dataclass(frozen=True)
class PhaseAnalysis:
    """The phases found (strongest first), their joint fit and the scan's noise."""

    phases: tuple[FoundPhase, ...]
    fit: JointFit | None  # components in the order of ``phases``
    noise: float  # the scan's noise level (σ, same units as its intensity)
    intensity: NDArray[np.float64]  # the scan as fitted (less any hump set aside)
    mask: NDArray[np.bool_]
    # Share of the scan's intensity in a broad hump set aside before the search (0: none).
    hump_share: float = 0.0
    # Calculated phases not reported because they fitted only with their cell
    # strained by ``phase_strain_max`` or more: (reference id, strain).
    strained_out: tuple[tuple[int, float], ...] = ()
    # The scan's wavelength over the model grid's: the phases' shifts are of
    # the 2θ of that radiation.
    wavelength_ratio: float = 1.0


def noise_level(intensity: NDArray[np.floating], mask: NDArray[np.bool_]) -> float:
    """Robust σ of a scan's point-to-point noise over ``mask``."""
    return noise_sigma(np.asarray(intensity, dtype=np.float64)[np.asarray(mask, dtype=bool)])


def analyse_phases(
    query: Query,
    first: Ranking,
    source: ReferenceSource,
    embed: Embed,
    config: RankingConfig = SERVED,
) -> PhaseAnalysis:
    """The phases of ``query``, given its ranking ``first``: fitted over the
    scan's whole range, or, where no phase passes there, over the range less
    its ends. Background removal pins a scan's ends to zero, so a peak cut by
    the range's edge is missing there and can pull every candidate's shift and
    strain to their bounds; leaving the ends out always would lose the
    evidence of peaks near them."""
    covered = np.asarray(query.mask, dtype=bool)
    analysis = _search(query, covered, first, source, embed, config)
    inner = fitted_region(covered, config.phase_edge_margin_deg)
    if not analysis.phases and inner.sum() < covered.sum():
        # The analysis (and the overlay drawn from it) then covers the range fitted.
        retried = _search(query, inner, first, source, embed, config)
        analysis = retried if retried.phases else analysis
    return replace(analysis, wavelength_ratio=wavelength_ratio(source))


def _search(
    query: Query,
    mask: NDArray[np.bool_],
    first: Ranking,
    source: ReferenceSource,
    embed: Embed,
    config: RankingConfig,
) -> PhaseAnalysis:
    """The search–refine rounds, fitting the scan over ``mask`` (less its
    broad hump where that holds ``config.hump_share`` to
    ``config.hump_share_max`` of it)."""
    covered = np.asarray(query.mask, dtype=bool)
    y = np.where(mask, query.intensity, 0.0).astype(np.float64)
    hump = broad_part(y, config.hump_width_deg)
    hump_share = float(hump[mask].sum()) / max(float(y[mask].sum()), 1e-300)
    if config.hump_share <= hump_share < config.hump_share_max:
        y = np.where(mask, y - hump, 0.0)
    else:
        hump_share = 0.0
    noise = noise_level(y, mask)
    total = float(y[mask].sum())
    found: list[tuple[int, PhaseEvidence, int]] = []  # (id, evidence, round)
    fit: JointFit | None = None
    # What is left is ranked as the scan was: over its whole coverage.
    rank_residual = _residual_ranker(covered, source, embed, config)
    lookalikes = _LookAlikes(source, mask, config)
    # The peaks' ranking (where a broad part hides them), the residual's, then
    # what the scan's own ranked high: a minor phase the residual's embedding
    # misses often ranked there.
    rankings = [*_peaks_ranking(y, covered, rank_residual), first]
    ranked: dict[int, RankedReference] = {}  # every candidate seen, in ranked order
    undecided: list[tuple[LookAlike, ...]] = []  # each phase's look-alikes
    round_ = 0
    # Search, then swap; once more where a swap replaced a phase: what only
    # the phase replaced explained is left to another round.
    for last_pass in (False, True):
        while round_ < config.max_phases:
            for ranking in rankings:
                for r in ranking.best:
                    ranked.setdefault(r.reference_id, r)
            chosen = _next_phase(y, mask, noise, source, fit, found, rankings, lookalikes, config)
            if chosen is None:
                break
            fit, reference_id, evidence = chosen
            found.append((reference_id, evidence, round_))
            round_ += 1
            # The cells of the phases found refined, so that what they leave
            # unexplained is the next phase's, not their uneven strain.
            fit = _refined(y, mask, source, [f[0] for f in found], fit.shapes, tensors=True)
            fit, found = _pruned(y, mask, source, fit, found, config)
            if round_ == config.max_phases:
                break
            rankings = _residual_rankings(fit, y, mask, noise, covered, first, rank_residual)
            if not rankings:
                break
        if fit is None:
            break
        before = [f[0] for f in found]
        fit, found, undecided = _swapped(
            y, mask, noise, source, fit, found, list(ranked.values()), config
        )
        if last_pass or [f[0] for f in found] == before or round_ == config.max_phases:
            break
        rankings = _residual_rankings(fit, y, mask, noise, covered, first, rank_residual)
        if not rankings:
            break
    analysis = _analysis(found, fit, noise, y, mask, total, hump_share, undecided)
    return _within_bounds(analysis, source, config)


def _next_phase(
    y: NDArray[np.float64],
    mask: NDArray[np.bool_],
    noise: float,
    source: ReferenceSource,
    fit: JointFit | None,
    found: list[tuple[int, PhaseEvidence, int]],
    rankings: list[Ranking],
    lookalikes: _LookAlikes,
    config: RankingConfig,
) -> tuple[JointFit, int, PhaseEvidence] | None:
    """The phase a round adds beside those ``found`` (as ``fit`` has them):
    of the candidates ``rankings`` offer that pass their screen, refined in
    turn, the one :func:`_chosen` takes of those with the evidence; None
    when none has it."""
    ids = [f[0] for f in found]
    strains = [s.strain for s in fit.shapes] if fit is not None else []
    trials = _trials(rankings, source, ids, strains, lookalikes, config)
    passing: list[tuple[JointFit, int, PhaseEvidence]] = []
    screened = _screened(y, mask, noise, source, fit, ids, trials, config)
    for index, (trial_, _) in enumerate(screened):
        trial, evidence = _trial_fit(y, mask, noise, source, fit, ids, trial_, config)
        shape = trial.shapes[-1]
        # A look-alike strained onto a phase found only reshapes that phase.
        if _passes(evidence, shape, config) and not lookalikes.sits_on(
            ids, strains, trial_.reference.reference_id, shape.strain
        ):
            passing.append((trial, trial_.reference.reference_id, evidence))
            # The rest are refined only if their screen showed a gain the
            # best passing one's would not match within the tie.
            best = max(p[2].gain for p in passing)
            if all(gain * config.phase_gain_tie <= best for _, gain in screened[index + 1 :]):
                break
    return _chosen(passing, config) if passing else None


def _residual_rankings(
    fit: JointFit,
    y: NDArray[np.float64],
    mask: NDArray[np.bool_],
    noise: float,
    covered: NDArray[np.bool_],
    first: Ranking,
    rank_residual: Callable[[NDArray[np.float64]], Ranking],
) -> list[Ranking]:
    """What the next round searches: the rankings of what ``fit`` leaves
    (its peaks', where a broad part hides them, its own) and the scan's;
    none when it leaves nothing above three times the noise."""
    left = np.clip(fit.residual, 0.0, None)
    if left.max() <= 3.0 * noise:
        return []
    residual = np.where(mask, left, 0.0)
    return [*_peaks_ranking(residual, covered, rank_residual), rank_residual(residual), first]


def _trial_fit(
    y: NDArray[np.float64],
    mask: NDArray[np.bool_],
    noise: float,
    source: ReferenceSource,
    fit: JointFit | None,
    found: list[int],
    trial: _Trial,
    config: RankingConfig,
) -> tuple[JointFit, PhaseEvidence]:
    """A candidate refined beside the phases ``found`` (as ``fit`` has them),
    and its evidence. The phases found stay as refined (scales refitted): a
    candidate costs one phase's refinement, and its gain is its own, not the
    others reshaped; the one taken is refined with them all after.

    Its strain is isotropic first. A candidate that removes a clear share of
    the misfit but fails the rest of the evidence, broadened, is refined
    again with sharp peaks (:func:`_sharp`). A calculated one that still
    fails is refined again with its strain as a tensor: a cell strained unevenly
    leaves its peaks off by more than the peak search's window, so its own
    peaks look absent, while a look-alike's (another cell, strained evenly)
    line up (zincite with a shorter a axis read as magnesium). That fit is
    kept only with each of its peaks strained less than
    ``config.phase_strain_max``: a lab scan's phase strains by tenths of
    a percent, while a tensor lets a material the library lacks be stood in
    for by another strained by percents along some axis."""
    reference_id = trial.reference.reference_id
    ids = found + [reference_id]
    start = (list(fit.shapes) if fit is not None else []) + [trial.start]
    refined = _refined(y, mask, source, ids, start, held=len(found))
    evidence = _evidence(y, mask, noise, fit, refined, trial.reference, config)
    if _passes(evidence, refined.shapes[-1], config) or evidence.gain < config.min_phase_gain:
        return refined, evidence
    sharp = _sharp(y, mask, source, ids, start, refined, config)
    if sharp is not None:
        sharp_evidence = _evidence(y, mask, noise, fit, sharp, trial.reference, config)
        if _passes(sharp_evidence, sharp.shapes[-1], config):
            return sharp, sharp_evidence
    (basis,) = source.strain_bases(np.array([reference_id], dtype=np.int64))
    if basis is None:
        return refined, evidence
    uneven = _refined(y, mask, source, ids, start, tensors=True, held=len(found))
    tensor = uneven.shapes[-1].tensor
    if tensor is None or largest_strain(basis, tensor) >= config.phase_strain_max:
        return refined, evidence
    return uneven, _evidence(y, mask, noise, fit, uneven, trial.reference, config)


def _sharp(
    y: NDArray[np.float64],
    mask: NDArray[np.bool_],
    source: ReferenceSource,
    ids: list[int],
    start: list[PhaseShape],
    fit: JointFit,
    config: RankingConfig,
) -> JointFit | None:
    """Where the last phase of ``fit`` (``ids`` refined from ``start``, all
    but the last held) came out broader than ``config.sharp_broadening_deg``:
    that phase refined with its peaks no broader, when that fits better and
    lines it up with the phases held (their median shift, within
    ``config.phase_shift_agreement_deg``); else None. Free to widen, a
    candidate can settle smeared over two phases' peaks, shifted and
    strained to cover both: a worse fit than its own peaks lined up, with
    its own peaks looking absent. Zero offset and displacement shift every
    phase of a scan alike, so a sharp fit elsewhere is a stand-in bending
    its peaks onto another's misfit. (Let free again from the sharp fit, the
    smoothed first level of the refinement smears it back.)"""
    if fit.shapes[-1].broadening_deg <= config.sharp_broadening_deg:
        return None
    sharp = _refined(
        y, mask, source, ids, start, held=len(ids) - 1,
        limits=ShapeLimits(broadening_deg=config.sharp_broadening_deg),
    )  # fmt: skip
    held = [s.shift_deg for s in sharp.shapes[:-1]]
    offset = abs(sharp.shapes[-1].shift_deg - float(np.median(held))) if held else 0.0
    if sharp.misfit >= fit.misfit or offset > config.phase_shift_agreement_deg:
        return None
    return sharp


def fitted_region(covered: NDArray[np.bool_], margin_deg: float) -> NDArray[np.bool_]:
    """The covered points farther than ``margin_deg`` from either end of the
    coverage (all of it when the margins would leave less than half of it)."""
    points = np.flatnonzero(covered)
    steps = int(round(margin_deg / MODEL_GRID.step_deg))
    if points.size == 0 or points.size < 4 * steps:
        return covered
    inner = covered.copy()
    inner[: points[0] + steps] = False
    inner[points[-1] + 1 - steps :] = False
    return inner


def keep_phases(
    analysis: PhaseAnalysis, keep: Sequence[bool], source: ReferenceSource
) -> PhaseAnalysis:
    """The analysis with only the phases ``keep`` marks, refined together again
    (from their fitted shapes), each with its look-alikes: what the others
    explained goes back to them or to the residual."""
    if all(keep):
        return analysis
    kept = [p for p, k in zip(analysis.phases, keep, strict=True) if k]
    y, mask = analysis.intensity, analysis.mask
    if not kept:
        return PhaseAnalysis(
            (),
            None,
            analysis.noise,
            y,
            mask,
            analysis.hump_share,
            analysis.strained_out,
            analysis.wavelength_ratio,
        )
    fit = _refined(y, mask, source, [p.reference_id for p in kept], [p.shape for p in kept])
    found = [(p.reference_id, p.evidence, p.round) for p in kept]
    total = float(y[mask].sum())
    refitted = _analysis(
        found,
        fit,
        analysis.noise,
        y,
        mask,
        total,
        analysis.hump_share,
        [p.lookalikes for p in kept],
    )
    return replace(
        refitted, strained_out=analysis.strained_out, wavelength_ratio=analysis.wavelength_ratio
    )


def _residual_ranker(
    mask: NDArray[np.bool_], source: ReferenceSource, embed: Embed, config: RankingConfig
) -> Callable[[NDArray[np.float64]], Ranking]:
    """Ranks what is left of the scan (the phase search's shorter ranking),
    on the references as stored: its correlations, in 0.06° bins, do not see
    a Kα doublet, and converting every candidate would cost more than the
    whole analysis (:mod:`xrdid.ranking.doublet`)."""
    residual_config = replace(
        config, rerank_candidates=config.phase_rerank_candidates, strain_fit_candidates=0
    )
    stored = source.stored if isinstance(source, DoubletSource) else source

    def ranked(residual: NDArray[np.float64]) -> Ranking:
        scaled = np.where(mask, residual / max(float(residual.max()), 1e-300), 0.0)
        (ranking,) = rank(
            [Query(scaled, mask, embed(scaled, mask))],
            stored,
            config.phase_candidates,
            residual_config,
        )
        return ranking

    return ranked


def broad_part(
    intensity: NDArray[np.float64], width_deg: float = _BROAD_DEG
) -> NDArray[np.float64]:
    """What of a profile is wider than ``width_deg``: a grey opening removes
    every peak narrower than its window and keeps humps and slow background."""
    width = int(round(width_deg / MODEL_GRID.step_deg)) | 1
    return grey_opening(np.clip(intensity, 0.0, None), size=width)


def _peaks_ranking(
    target: NDArray[np.float64],
    mask: NDArray[np.bool_],
    rank_residual: Callable[[NDArray[np.float64]], Ranking],
) -> list[Ranking]:
    """The ranking of ``target``'s peaks alone, when a broad part holds
    ``_BROAD_SHARE`` of its intensity (else none: the target's own ranking is
    the peaks')."""
    positive = np.clip(target, 0.0, None)
    broad = broad_part(positive)
    total = float(positive[mask].sum())
    if total <= 0 or float(broad[mask].sum()) < _BROAD_SHARE * total:
        return []
    peaks = np.where(mask, positive - broad, 0.0)
    return [rank_residual(peaks)] if peaks.max() > 0 else []


@dataclass(frozen=True)
class _Trial:
    """A candidate phase and where its ranking's isotropic fit puts it."""

    reference: RankedReference
    start: PhaseShape


def _trials(
    rankings: list[Ranking],
    source: ReferenceSource,
    found: list[int],
    strains: list[float],
    lookalikes: _LookAlikes,
    config: RankingConfig,
) -> list[_Trial]:
    """Up to ``config.phase_trials`` candidates taken in turn from ``rankings``,
    one per material, that are neither a material found already nor its
    look-alike at the found phase's fitted ``strains`` (a pattern whose own
    cell, strained as a phase may be, lies on the phase's peaks: the scan
    cannot tell them apart, and fitting both only bends one's peaks)."""
    out: list[_Trial] = []
    seen = [f.material for f in source.facts(np.array(found, dtype=np.int64))] if found else []
    ranked = [r for r in rankings if r.best]
    alike = lookalikes.of(
        found, strains, np.array([c.reference_id for r in ranked for c in r.best], dtype=np.int64)
    )
    ratio = wavelength_ratio(source)
    queues = []
    for ranking in ranked:
        ids = np.array([r.reference_id for r in ranking.best], dtype=np.int64)
        same_pattern, alike = alike[: ids.size], alike[ids.size :]
        queues.append(
            [
                (candidate, fact, ranking)
                for candidate, fact, near in zip(
                    ranking.best, source.facts(ids), same_pattern, strict=True
                )
                if not near
            ]
        )
    # Taken in turn from each ranking.
    for candidate, fact, ranking in (c for row in zip_longest(*queues) for c in row if c):
        if any(fact.material.same_as(m) for m in seen):
            continue
        seen.append(fact.material)
        out.append(_Trial(candidate, _start(ranking, candidate.reference_id, ratio)))
        if len(out) == config.phase_trials:
            break
    return out


class _LookAlikes:
    """Whether candidates are look-alikes of phases found, where the scan has
    them: profile correlation (strain and shift fitted, no prior) ≥
    ``config.lookalike_correlation``, at a strain that puts the candidate's
    peaks on the phase's as fitted. An isostructural material whose own cell
    sits further off (a second spinel, garnet or rock salt of another cell)
    shows peaks of its own beside the phase's: a phase the scan can hold.
    One analysis meets the same pairs round after round (its scan's ranking
    is searched every round), so each pair is fitted once."""

    def __init__(
        self, source: ReferenceSource, mask: NDArray[np.bool_], config: RankingConfig
    ) -> None:
        self._source, self._mask, self._config = source, mask, config
        # phase → candidate → (whether alike, the strain that lines it up on the phase)
        self._known: dict[int, dict[int, tuple[bool, float]]] = {}

    def of(
        self,
        found: list[int],
        strains: list[float],
        candidates: NDArray[np.int64],
        candidate_strain: float = 0.0,
        within: float | None = None,
    ) -> NDArray[np.bool_]:
        """For each candidate at ``candidate_strain`` (its own cell by
        default), whether it is a look-alike of a phase in ``found`` (fitted
        to the scan with ``strains``) that a strain below ``within`` (by
        default ``config.phase_strain_max``, what a phase may take) would
        put on that phase's peaks."""
        within = self._config.phase_strain_max if within is None else within
        out = np.zeros(candidates.size, dtype=bool)
        for phase, strain in zip(found, strains, strict=True):
            known = self._pairs(phase, candidates)
            near = np.array([known[c][0] for c in candidates.tolist()], dtype=bool)
            between = np.array([known[c][1] for c in candidates.tolist()], dtype=np.float64)
            # The phase's d = the candidate's × (1 + between); in the scan, × (1 + strain).
            onto = (1.0 + between) * (1.0 + strain) / (1.0 + candidate_strain) - 1.0
            out |= near & (np.abs(onto) < within)
        return out

    def sits_on(
        self, found: list[int], strains: list[float], candidate: int, strain: float
    ) -> bool:
        """Whether ``candidate``, fitted with ``strain``, is a look-alike sitting
        on a found phase's peaks (cells within ``config.lookalike_cell_tolerance``)."""
        at = np.array([candidate], dtype=np.int64)
        return bool(self.of(found, strains, at, strain, self._config.lookalike_cell_tolerance)[0])

    def _pairs(self, phase: int, candidates: NDArray[np.int64]) -> dict[int, tuple[bool, float]]:
        """The phase's memory, with every one of ``candidates`` fitted to it."""
        known = self._known.setdefault(phase, {})
        new = np.array(
            [c for c in dict.fromkeys(candidates.tolist()) if c not in known], dtype=np.int64
        )
        if new.size:
            (profile,) = self._source.profiles(np.array([phase], dtype=np.int64))
            near, strain = lookalike_fit(
                profile, StoredReferences(self._source, new), self._mask, self._config
            )
            known.update(
                zip(new.tolist(), zip(near.tolist(), strain.tolist(), strict=True), strict=True)
            )
        return known


def _screened(
    y: NDArray[np.float64],
    mask: NDArray[np.bool_],
    noise: float,
    source: ReferenceSource,
    fit: JointFit | None,
    found: list[int],
    trials: list[_Trial],
    config: RankingConfig,
) -> list[tuple[_Trial, float]]:
    """The first ``config.phase_refines`` trials (in ranked order) worth
    refining, with the gain each showed: each is added to the phases found,
    all held at their shapes with only the scales fitted (cheap), and kept
    when that alone gives half the evidence a phase needs (refining moves the
    gains a little, rarely the peaks it shows). A trial is tried where its
    ranking put it and, once a phase is found, at the found phases' shift
    too: zero offset and displacement move every phase of a scan alike, and a
    weak phase's residual ranking can line it up on another's misfit."""
    shapes = list(fit.shapes) if fit is not None else []
    held = list(_columns(source, found, shapes))
    target = y[mask]
    if not trials or float(target @ target) <= 0:
        return []
    relaxed = replace(
        config,
        min_phase_gain=0.5 * config.min_phase_gain,
        min_own_gain=0.5 * config.min_own_gain,
        min_peak_presence=config.min_peak_presence - 0.2,
    )
    shift = float(np.median([s.shift_deg for s in shapes])) if shapes else None
    kept = []
    for trial in trials:
        starts = [trial.start]
        if shift is not None and abs(shift - trial.start.shift_deg) > 1e-9:
            starts.append(replace(trial.start, shift_deg=shift))
        best: tuple[_Trial, PhaseEvidence] | None = None
        for start, candidate in zip(
            starts,
            _columns(source, [trial.reference.reference_id] * len(starts), starts),
            strict=True,
        ):
            columns = np.stack([*held, candidate])
            scales = nnls(columns[:, mask].T, target)[0]
            linear = _held_fit(y, mask, columns, scales, [*shapes, start])
            evidence = _evidence(y, mask, noise, fit, linear, trial.reference, config)
            if _passes(evidence, start, relaxed) and (best is None or evidence.gain > best[1].gain):
                best = (replace(trial, start=start), evidence)
        if best is not None:
            kept.append((best[0], best[1].gain))
        if len(kept) == config.phase_refines:
            break
    return kept


def _held_fit(
    y: NDArray[np.float64],
    mask: NDArray[np.bool_],
    columns: NDArray[np.float64],
    scales: NDArray[np.float64],
    shapes: list[PhaseShape],
) -> JointFit:
    """The fit of phases held at ``shapes`` with only their ``scales`` fitted."""
    components = np.where(mask, scales[:, None] * columns, 0.0)
    residual = np.where(mask, y - components.sum(axis=0), 0.0)
    return JointFit(
        scales=scales,
        scale_sd=np.zeros_like(scales),
        shapes=tuple(shapes),
        components=components,
        residual=residual,
        misfit=float(residual @ residual),
    )


def _chosen(
    passing: list[tuple[JointFit, int, PhaseEvidence]], config: RankingConfig
) -> tuple[JointFit, int, PhaseEvidence]:
    """Of the candidates that passed (in ranked order), the first whose gain,
    less a prior for small strains (as the ranking's), is within
    ``config.phase_gain_tie`` of the best: look-alikes fit about as well once
    strained, and then the ranking (embedding, profile, prior) knows better
    which it is."""

    def merit(trial: tuple[JointFit, int, PhaseEvidence]) -> float:
        return trial[2].gain - _prior(trial[0].shapes[-1], config)

    best = max(merit(p) for p in passing)
    return next(p for p in passing if merit(p) >= best - (1.0 - config.phase_gain_tie) * abs(best))


def _prior(shape: PhaseShape, config: RankingConfig) -> float:
    """The ranking's prior for small strains, as a share of the misfit: its
    isotropic strain, and a tensor's departure from it."""
    prior = config.strain_penalty * abs(shape.strain)
    if shape.tensor is not None:
        departure = np.abs(np.asarray(shape.tensor) - shape.strain * ISOTROPIC).sum()
        prior += config.anisotropic_penalty * float(departure)
    return prior


def _lined_up(
    source: ReferenceSource,
    mask: NDArray[np.bool_],
    reference_id: int,
    shape: PhaseShape,
    candidates: StoredReferences,
    config: RankingConfig = SERVED,
) -> IsotropicFit:
    """The ``candidates`` lined up with a phase where the scan has it (its
    shift and isotropic strain, at the width references are stored at): how
    alike each is (as :func:`~xrdid.ranking.grouping.lookalike_fit` judges,
    without the prior for small strains), and the strain and shift that put
    it there. Not the phase as fitted: a strain tensor spreads its peaks from
    any isotropic reading, so that even its own reference would look unlike it."""
    isotropic = PhaseShape(shape.shift_deg, shape.strain)
    (phase,) = _columns(source, [reference_id], [isotropic])
    return isotropic_fit(phase, mask, candidates, replace(config, strain_penalty=0.0))


def _swapped(
    y: NDArray[np.float64],
    mask: NDArray[np.bool_],
    noise: float,
    source: ReferenceSource,
    fit: JointFit,
    found: list[tuple[int, PhaseEvidence, int]],
    ranked: list[RankedReference],
    config: RankingConfig,
) -> tuple[JointFit, list[tuple[int, PhaseEvidence, int]], list[tuple[LookAlike, ...]]]:
    """The phases with each replaced by a look-alike that fits the scan
    clearly better in its place, and each phase's look-alikes the scan cannot
    tell from it. Tried: of the candidates ranked (``ranked``) whose pattern
    is a look-alike of the phase where the scan has it (:func:`_lined_up`;
    another reference of its own material too), the
    ``config.phase_swap_trials`` materials that fit the phase's part of the
    scan best (what the others leave, fitted at
    ``config.swap_fit_resolution``), each as its reference that fits it
    best: the right material may be ranked behind more look-alikes than are
    tried, or first as another source's broader reference. Taken: of those
    whose joint fit, all refined together, leaves at least
    ``config.min_swap_gain`` less misfit than the phase's, with no lower
    merit, the evidence a new phase needs and, for a structure, a strain
    below ``config.phase_strain_max``, the one of highest
    merit (as :func:`_chosen` weighs it: the gain over the others alone, less
    the strain prior; look-alikes that beat the phase fit about alike, and the
    prior tells the material from one strained into its place). Kept as look-alikes:
    the other materials tried whose fit has that evidence and a misfit within
    the same band of the phase's (neither would replace the other)."""
    lookalikes: list[tuple[LookAlike, ...]] = [() for _ in found]
    if config.phase_swap_trials < 1 or not ranked:
        return fit, found, lookalikes
    ranked_ids = np.array([r.reference_id for r in ranked], dtype=np.int64)
    materials = [f.material for f in source.facts(ranked_ids)]
    candidates = StoredReferences(source, ranked_ids)
    ratio = wavelength_ratio(source)
    for index in range(len(found)):
        ids = [f[0] for f in found]
        others = [k for k in range(len(found)) if k != index]
        taken = [f.material for f in source.facts(np.array(ids, dtype=np.int64))]
        own = taken[index]
        lined_up = _lined_up(source, mask, ids[index], fit.shapes[index], candidates, config)
        alike = [
            k
            for k, (reference, material) in enumerate(zip(ranked, materials, strict=True))
            if reference.reference_id != ids[index]
            and lined_up.correlation[k] >= config.lookalike_correlation
            and not any(material.same_as(t) for t in taken if not t.same_as(own))
        ]
        if not alike:
            continue
        held = _held(y, mask, source, fit, ids, others)
        # The look-alikes fitted to the phase's part of the scan (what the
        # others leave), within the strain a structure may take to replace
        # it: the best fitting materials tried, each as its reference that
        # fits it best.
        part = y - held.model if held is not None else y
        resolution = config.swap_fit_resolution
        on_scan = isotropic_fit(
            np.where(mask, np.clip(part, 0.0, None), 0.0),
            mask,
            StoredReferences(source, ranked_ids[alike]),
            replace(
                config,
                bin_steps=resolution.bin_steps,
                strain_step=resolution.strain_step,
                strain_max=config.phase_strain_max,
                sqrt_intensity=False,
            ),
        )
        pool: list[tuple[RankedReference, PhaseShape, Material]] = []
        for j in np.argsort(-on_scan.correlation, kind="stable").tolist():
            reference, material = ranked[alike[j]], materials[alike[j]]
            if any(material.same_as(m) for _, _, m in pool):
                continue
            start = PhaseShape(
                instrument_shift(float(on_scan.shift_deg[j]), ratio),
                float(on_scan.strain[j]),
                fit.shapes[index].broadening_deg,
            )
            pool.append((reference, start, material))
            if len(pool) == config.phase_swap_trials:
                break
        # Each other material's fit that has the evidence a phase needs: (misfit, reference).
        credible: list[tuple[float, int]] = []
        before = held.misfit if held is not None else float(np.sum(y[mask] ** 2))

        def merit(misfit: float, shape: PhaseShape, before: float = before) -> float:
            return (before - misfit) / max(before, 1e-300) - _prior(shape, config)

        best: tuple[JointFit, RankedReference] | None = None
        best_merit = merit(fit.misfit, fit.shapes[index])
        for candidate, start, material in pool:
            # The others stay as fitted (their scales refitted): the candidate
            # in the phase's place at the cost of one phase. One taken is
            # refined with them all below.
            trial = _refined(
                y, mask, source, [ids[o] for o in others] + [candidate.reference_id],
                [fit.shapes[o] for o in others] + [start], tensors=True, held=len(others),
            )  # fmt: skip
            if trial.misfit * (1.0 - config.min_swap_gain) > fit.misfit:
                continue  # clearly worse than the phase: not a look-alike the scan allows
            evidence = _evidence(y, mask, noise, held, trial, candidate, config)
            if not _passes(evidence, trial.shapes[-1], config):
                continue
            if not material.same_as(own):
                credible.append((trial.misfit, candidate.reference_id))
            trial_merit = merit(trial.misfit, trial.shapes[-1])
            # A structure strained this far is a stand-in :func:`_within_bounds`
            # would drop: it may be listed, not take the phase's place.
            stand_in = (
                not material.measured and abs(trial.shapes[-1].strain) >= config.phase_strain_max
            )
            if (
                trial.misfit <= (1.0 - config.min_swap_gain) * fit.misfit
                and trial_merit >= best_merit
                and not stand_in
            ):
                best, best_merit = (trial, candidate), trial_merit
        # The phase's look-alikes: those whose misfit is within the band of
        # the one kept (the phase, or what replaced it).
        kept_misfit = max(best[0].misfit if best is not None else fit.misfit, 1e-300)
        lookalikes[index] = tuple(
            LookAlike(reference_id, misfit / kept_misfit)
            for misfit, reference_id in sorted(credible)
            if (1.0 - config.min_swap_gain) * misfit <= kept_misfit
            and (best is None or reference_id != best[1].reference_id)
        )
        if best is None:
            continue
        trial, candidate = best
        reference_id = candidate.reference_id
        trial = _refined(
            y, mask, source, [ids[o] for o in others] + [reference_id], trial.shapes, tensors=True
        )
        evidence = _evidence(y, mask, noise, held, trial, candidate, config)
        # The trial's components in the found order again.
        fit = trial.reordered(np.argsort(others + [index]))
        found = [*found[:index], (reference_id, evidence, found[index][2]), *found[index + 1 :]]
    return fit, found, lookalikes


def _held(
    y: NDArray[np.float64],
    mask: NDArray[np.bool_],
    source: ReferenceSource,
    fit: JointFit,
    ids: list[int],
    keep: list[int],
) -> JointFit | None:
    """The phases ``keep`` of ``fit`` at their shapes, scales refitted (None for none)."""
    if not keep:
        return None
    shapes = [fit.shapes[k] for k in keep]
    columns = _columns(source, [ids[k] for k in keep], shapes)
    return _held_fit(y, mask, columns, nnls(columns[:, mask].T, y[mask])[0], shapes)


def _pruned(
    y: NDArray[np.float64],
    mask: NDArray[np.bool_],
    source: ReferenceSource,
    fit: JointFit,
    found: list[tuple[int, PhaseEvidence, int]],
    config: RankingConfig,
) -> tuple[JointFit, list[tuple[int, PhaseEvidence, int]]]:
    """The phases without those a later one made unnecessary: a phase found
    early (a look-alike of a phase found later, or one that only stood in for
    two) goes when leaving it out, the others' shapes held and their scales
    refitted, raises the misfit by less than ``config.min_phase_gain``, or
    when beside them it has too few strongest peaks of its own in the scan
    (``config.min_peak_presence``): one found first whose peaks, strained,
    all sit on a later phase's only made up for the heights that phase's
    reference gets wrong."""
    if len(found) < 2:
        return fit, found
    ids = [f[0] for f in found]
    columns = _columns(source, ids, list(fit.shapes))[:, mask]
    target = y[mask]
    keep = list(range(len(found)))
    for index in range(len(found) - 1):  # the newest phase just passed its evidence
        rest = [k for k in keep if k != index]
        misfit = nnls(columns[rest].T, target)[1] ** 2
        if (misfit - fit.misfit) / max(misfit, 1e-300) < config.min_phase_gain:
            keep = rest
            continue
        own, others = fit.components[index], fit.components[rest].sum(axis=0)
        presence = _peak_presence(
            y - others, own, others, config.strongest_peaks, config.own_peak_overlap
        )
        if presence < config.min_peak_presence:
            keep = rest
    if len(keep) == len(found):
        return fit, found
    kept = [found[k] for k in keep]
    refitted = _refined(y, mask, source, [ids[k] for k in keep], [fit.shapes[k] for k in keep])
    return refitted, kept


def _refined(
    y: NDArray[np.float64],
    mask: NDArray[np.bool_],
    source: ReferenceSource,
    ids: Sequence[int],
    start: Sequence[PhaseShape],
    tensors: bool = False,
    held: int = 0,
    limits: ShapeLimits | None = None,
) -> JointFit:
    """These references refined together against the scan within ``limits``
    (None: the full ones); with ``tensors`` (or a start that has one), a
    calculated one's strain as a tensor through its strain basis; the first
    ``held`` at their start shapes (scales refined)."""
    array = np.array(ids, dtype=np.int64)
    bases = _bases(source, array, start, tensors)
    return refine(
        y,
        mask,
        source.profiles(array),
        start,
        limits or ShapeLimits(),
        bases=bases,
        held=held,
        wavelength_ratio=wavelength_ratio(source),
    )


def _columns(
    source: ReferenceSource, ids: Sequence[int], shapes: Sequence[PhaseShape]
) -> NDArray[np.float64]:
    """These references' profiles at these shapes, (n, L)."""
    if not ids:
        return np.zeros((0, MODEL_GRID.n_points))
    array = np.array(ids, dtype=np.int64)
    ratio = wavelength_ratio(source)
    return np.stack(
        [
            transformed(profile, shape, basis, ratio)
            for profile, shape, basis in zip(
                source.profiles(array), shapes, _bases(source, array, shapes, False), strict=True
            )
        ]
    )


def _bases(
    source: ReferenceSource,
    ids: NDArray[np.int64],
    shapes: Sequence[PhaseShape],
    tensors: bool,
) -> list[StrainBasis | None]:
    """The strain bases of the references that strain by a tensor: all that
    have one with ``tensors``, else those whose shape has a tensor."""
    if not tensors and all(shape.tensor is None for shape in shapes):
        return [None] * len(shapes)
    return [
        basis if tensors or shape.tensor is not None else None
        for basis, shape in zip(source.strain_bases(ids), shapes, strict=True)
    ]


def _start(ranking: Ranking, reference_id: int, ratio: float) -> PhaseShape:
    """A candidate's isotropic fit in the ranking (its shift on the model
    grid, as one of the 2θ of a scan at ``ratio`` × its wavelength), as the
    refinement's start."""
    assert ranking.fits is not None
    (index,) = np.flatnonzero(ranking.ids == reference_id)[:1]
    fit = ranking.fits.isotropic
    shift = instrument_shift(float(fit.shift_deg[index]), ratio)
    return PhaseShape(shift, float(fit.strain[index]), 0.0)


def _evidence(
    y: NDArray[np.float64],
    mask: NDArray[np.bool_],
    noise: float,
    before: JointFit | None,
    after: JointFit,
    candidate: RankedReference,
    config: RankingConfig,
) -> PhaseEvidence:
    """How clearly the last phase of ``after`` is in the scan: what it
    removed of the misfit, and where. A phase whose peaks stand where others'
    do can lower the misfit by only reshaping them (texture, a width, a
    strain they fit imperfectly); its own peaks are what shows it is there."""
    residual_before = before.residual if before is not None else np.where(mask, y, 0.0)
    misfit_before = before.misfit if before is not None else float(np.sum(y[mask] ** 2))
    removed = misfit_before - after.misfit
    new = after.components[-1]
    others = after.model - new
    height = float(new.max())
    footprint = new > _FOOTPRINT * height if height > 0 else np.zeros(new.shape, dtype=bool)
    own = footprint & (new * config.own_peak_overlap > others)
    own_removed = float(np.sum(residual_before[own] ** 2) - np.sum(after.residual[own] ** 2))
    significance = removed / max(noise**2 * max(int(footprint.sum()), 1), 1e-12)
    return PhaseEvidence(
        gain=removed / misfit_before if misfit_before > 0 else 0.0,
        own_gain=own_removed / misfit_before if misfit_before > 0 else 0.0,
        significance=float(significance),
        peak_presence=_peak_presence(
            y - others, new, others, config.strongest_peaks, config.own_peak_overlap
        ),
        similarity=candidate.similarity,
        correlation=candidate.profile_correlation,
    )


def _peak_presence(
    partial: NDArray[np.float64],
    component: NDArray[np.float64],
    others: NDArray[np.float64],
    count: int,
    overlap: float,
) -> float:
    """The share of the component's ``count`` strongest own peaks (where the
    other phases' model ``others`` stays below ``overlap`` × its height) that the scan
    less the other phases (``partial``) shows at half their height or more;
    0 when it has no peak of its own: a phase whose every peak sits on
    another's only reshapes that one. Texture and missing reflections leave
    some of a real phase's strongest peaks weak, so a share, not all."""
    height = float(component.max())
    if height <= 0:
        return 0.0
    peaks, props = find_peaks(component, height=0.02 * height)
    ranked = peaks[np.argsort(-props["peak_heights"])]
    own = list(islice((p for p in ranked if _window(others, p) < overlap * component[p]), count))
    if not own:
        return 0.0
    return float(np.mean([_window(partial, p) >= 0.5 * component[p] for p in own]))


def _window(values: NDArray[np.float64], peak: int) -> float:
    """The largest value within the peak search window around ``peak``."""
    return float(values[max(peak - _PEAK_SEARCH_STEPS, 0) : peak + _PEAK_SEARCH_STEPS + 1].max())


def _passes(evidence: PhaseEvidence, shape: PhaseShape, config: RankingConfig) -> bool:
    """Evidence enough, and a shift and strain inside their bounds (a phase
    refined to the edge of those is bending to fit what is not its own)."""
    return (
        not (_at_bound(shape) and config.reject_at_bound)
        and evidence.gain >= config.min_phase_gain
        and evidence.own_gain >= config.min_own_gain
        and evidence.peak_presence >= config.min_peak_presence
    )


def _at_bound(shape: PhaseShape) -> bool:
    limits = ShapeLimits()
    return (
        abs(shape.shift_deg) >= _AT_BOUND * limits.shift_deg
        or abs(shape.strain) >= _AT_BOUND * limits.strain
    )


def _within_bounds(
    analysis: PhaseAnalysis, source: ReferenceSource, config: RankingConfig
) -> PhaseAnalysis:
    """The analysis without the phases after the strongest that the last
    refinements took to the bound of their shift or strain, and without the
    calculated ones strained by ``config.phase_strain_max`` or more while
    another phase stays. A phase passed its evidence inside the bounds, and
    one that then bends that far is fitting what is not its own (a broad
    reference taking a hump BEADS left); a structure's cell strained by
    percents is a look-alike standing in for a material the library lacks
    (tetrahedrite for In₂O₃), and what it stood in for is better listed as
    unexplained. The last phase left stays whatever its shape: whether the
    scan's material is in the library at all is the verdict's question. A
    measured reference's strain is no cell's: with the shift it takes up the
    two instruments' differences, and a broad pattern barely fixes it."""
    ids = np.array([p.reference_id for p in analysis.phases], dtype=np.int64)
    calculated = [basis is not None for basis in source.strain_bases(ids)] if ids.size else []
    strained = [
        is_calculated and abs(p.shape.strain) >= config.phase_strain_max
        for p, is_calculated in zip(analysis.phases, calculated, strict=True)
    ]
    keep = [
        not strained[k] and (k == 0 or not (config.reject_at_bound and _at_bound(p.shape)))
        for k, p in enumerate(analysis.phases)
    ]
    if keep and not any(keep):
        keep[0] = True
    if all(keep):
        return analysis
    out = tuple(
        (p.reference_id, p.shape.strain)
        for p, s, k in zip(analysis.phases, strained, keep, strict=True)
        if s and not k
    )
    kept = keep_phases(analysis, keep, source)
    return replace(kept, strained_out=analysis.strained_out + out)


def _analysis(
    found: list[tuple[int, PhaseEvidence, int]],
    fit: JointFit | None,
    noise: float,
    y: NDArray[np.float64],
    mask: NDArray[np.bool_],
    total: float,
    hump_share: float,
    lookalikes: Sequence[tuple[LookAlike, ...]] = (),
) -> PhaseAnalysis:
    """Phases strongest first (by the intensity they explain), the fit's
    components in the same order."""
    if fit is None or not found:
        return PhaseAnalysis((), None, noise, y, mask, hump_share)
    explained = fit.components[:, mask].sum(axis=1) / total if total > 0 else np.zeros(len(found))
    order = np.argsort(-explained, kind="stable")
    phases = tuple(
        FoundPhase(
            reference_id=found[i][0],
            scale=float(fit.scales[i]),
            scale_sd=float(fit.scale_sd[i]),
            shape=fit.shapes[i],
            explained=float(explained[i]),
            evidence=found[i][1],
            round=found[i][2],
            lookalikes=lookalikes[i] if lookalikes else (),
        )
        for i in order
    )
    return PhaseAnalysis(phases, fit.reordered(order), noise, y, mask, hump_share)
