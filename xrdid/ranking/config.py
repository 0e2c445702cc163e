"""Every tuned constant of the ranking, in one frozen config.

The service, the evaluation and the tuning sweeps all rank with a
:class:`RankingConfig`: :data:`SERVED` is what ``/identify`` uses; a sweep
varies one field with :func:`dataclasses.replace`. Each field says in one
line why it has its value; how it was measured is in ``model_store/RERANK.md``
(``python -m indexer rerank-weights``) and ``docs/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_SHIFT_STEPS", "SERVED", "RankingConfig", "SearchResolution"]

# ±0.3° in 0.02° grid steps: the zero offset and sample displacement of lab
# scans. Every correlation and fit of the ranking shifts within it.
MAX_SHIFT_STEPS = 15


@dataclass(frozen=True)
class SearchResolution:
    """How coarsely the whole-library profile search compares: bins of
    ``bin_steps`` grid steps, shifts of whole bins within ±MAX_SHIFT_STEPS,
    and isotropic strains in steps of ``strain_step``."""

    bin_steps: int
    strain_step: float


@dataclass(frozen=True)
class RankingConfig:
    """The ranking's settings (see the module docstring)."""

    # --- candidates
    # The embedding's nearest references re-scored: the truth is among the
    # 300 nearest for 98% of synthetic queries (80% in its top 5).
    rerank_candidates: int = 300
    # References the coarse profile search of the whole library adds: 10 scored
    # as 20 did; it finds truths the embedding ranks far down.
    profile_search_candidates: int = 10
    # 0.3° bins and 1% strain steps served within 0.1 point of finer ones.
    profile_search_resolution: SearchResolution = field(
        default_factory=lambda: SearchResolution(bin_steps=15, strain_step=0.01)
    )
    # A library searched approximately scores each row's sketch first
    # (xrdid.ranking.profile_search): 0.6° bins, so no shift is tried; 2%
    # strain steps missed the best row three times as often (docs/scale-out.md).
    profile_sketch_resolution: SearchResolution = field(
        default_factory=lambda: SearchResolution(bin_steps=30, strain_step=0.01)
    )

    # --- fused score = cosine of the embeddings + profile_weight × profile correlation
    # Best mean of top-1 and top-5 over single phases and two-phase mixtures.
    profile_weight: float = 2.0

    # --- the isotropic profile correlation of every candidate
    # Square roots keep texture and a few strong peaks from outweighing the weak ones.
    sqrt_intensity: bool = True
    # ±3.5% covers the augmentation's ±3% isotropic strain plus part of its anisotropic one.
    strain_max: float = 0.035
    # 0.3% steps in 0.06° bins (3 grid steps) scored as finer grids do, at ~10 ms a query.
    strain_step: float = 0.003
    bin_steps: int = 3
    # r lost per unit of fitted strain (0.06 at 3%): without it every
    # isostructural compound within the range fits as well as the right one.
    strain_penalty: float = 2.0

    # --- the strain tensor fitted to the best calculated candidates
    # 10 scored as 20 did, at half the cost (about 1 ms a candidate).
    strain_fit_candidates: int = 10
    # How far each tensor component may depart from the mean strain: the
    # augmentation's ±1% per component, with room.
    anisotropic_strain_max: float = 0.015
    # r lost per unit of that departure, summed over the six components.
    anisotropic_penalty: float = 2.0

    # --- phase analysis (xrdid.ranking.phases): search, refine together, keep on evidence
    # Rocks and soils hold 5–8 phases; more is rarely resolvable in one scan.
    max_phases: int = 6
    # Candidates looked at each round (the best ranked materials not found
    # yet), how many of them that pass a cheap screen (scales alone fitted)
    # get the full joint refinement, and how many of the residual's ranking
    # they come from.
    phase_trials: int = 5
    phase_refines: int = 4
    phase_candidates: int = 30
    # A passing candidate this close to the best gain is as good: the ranked
    # order decides between them.
    phase_gain_tie: float = 0.9
    # Once all are found, each phase's few look-alike materials that fit its
    # part of the scan best are tried in its place; one is taken when it
    # leaves this share less misfit (and passes as a new phase would).
    # 0.25, not 0.1: on the calibration's scans (seed 8) 0.1 swapped one
    # single phase of 60 to a textured look-alike, and the mixtures' phases
    # were the same at both. Five, not three: a zincite found as hcp
    # zirconium was never tried against zincite, ranked behind three other
    # hcp look-alikes (the CPD zincite set 2.52 → 1.93 wt%), at 11% more
    # phase-analysis time.
    phase_swap_trials: int = 5
    min_swap_gain: float = 0.25
    # The look-alikes a swap tries are those that fit the phase's part of the
    # scan best, compared on the grid's own steps, 0.1% strain steps (within
    # phase_strain_max) and intensities as measured: members of one series
    # differ by a few tenths of a percent in cell and by their intensities,
    # which the re-rank's 0.06° bins and square roots are made to forgive (a
    # doped LLZO garnet's own reference, not among the five those put first,
    # comes first here). Over ±2%, not the ranking's ±3.5%: the same answers
    # on the CPD, isostructural and clean mixtures of the evaluation, at 10%
    # more phase-analysis time instead of 25%.
    swap_fit_resolution: SearchResolution = field(
        default_factory=lambda: SearchResolution(bin_steps=1, strain_step=0.001)
    )
    # Refuse a phase refined to the bound of its shift or strain (bending to
    # fit what is not its own).
    reject_at_bound: bool = True
    # A residual is ranked over fewer of the embedding's nearest and without
    # strain tensors: its candidates are screened by fitting anyway.
    phase_rerank_candidates: int = 100
    # Patterns this close (profile correlation, strain and shift fitted, no
    # prior) are look-alikes the scan cannot tell apart: a candidate this close
    # to a phase found is not another phase, and materials of one space group
    # this close are reported as one family.
    lookalike_correlation: float = 0.8
    # A look-alike of a phase found, fitted with a cell this close to the
    # strain that maps it onto that phase, sits on its peaks (0.2° apart at
    # 40° 2θ, about a peak's width): it reshapes the phase, it is not another.
    lookalike_cell_tolerance: float = 0.005
    # Evidence a new phase must give: the share of the remaining misfit it
    # removes, and of that where its own peaks stand out; the share of its
    # strongest own peaks the scan shows.
    min_phase_gain: float = 0.05
    min_own_gain: float = 0.05
    min_peak_presence: float = 0.5
    strongest_peaks: int = 5
    # A phase's own peaks: where the other phases' model stays below this
    # share of its height (a peak on another's is no evidence: texture and
    # widths the others fit imperfectly leave misfit there).
    own_peak_overlap: float = 0.2
    # A phase after the strongest whose calibrated confidence is below this is
    # more likely absent than present: it is not reported, and its peaks stay
    # unexplained.
    min_phase_confidence: float = 0.5
    # A calculated phase fitted with its cell strained this much or more is
    # not reported while another phase is (alone, it gets a note), and a
    # candidate refined again with a strain tensor must strain its peaks by
    # less: the true phases of the 43 real mixtures were fitted within 0.9%,
    # the look-alikes standing in for a phase the library lacks with 2.3–3.9%.
    phase_strain_max: float = 0.02
    # A candidate refined broader than this (σ, °) that fails its evidence is
    # refined again with peaks no broader (xrdid.ranking.phases._sharp): a
    # granite soil's K-feldspar, free to widen, settled 0.35° broad, 1%
    # strained and 0.5° off the quartz's shift (its own peaks then look
    # absent), a worse fit than the one with its peaks lined up, and a
    # plagioclase smeared the same way stood in for both feldspars.
    # Crystalline phases in lab scans broaden by a few hundredths of a
    # degree; clays are stored as broad as they are measured.
    sharp_broadening_deg: float = 0.1
    # ... and taken only lined up with the phases found: zero offset and
    # displacement shift every phase of a scan alike (the granite's three
    # phases within 0.03° of each other; a halloysite refined sharp beside a
    # kaolinite scan's kaolinite, 0.22° away and strained 0.8%, stood in for
    # the heights the kaolinite reference misses).
    phase_shift_agreement_deg: float = 0.1
    # Where no phase passes over the scan's whole range, the search is run
    # again without this much (°) at each end, where background removal
    # pinned the scan to zero (a peak cut by the edge is missing there).
    phase_edge_margin_deg: float = 1.0
    # A broad hump (amorphous content, or background the removal left) that
    # holds at least hump_share of a scan's intensity is set aside before the
    # search: features wider than hump_width_deg (humps of 5–15°, not the 1–2°
    # basal peaks of clays). Left in, it dominates the misfit, so a minor
    # phase's gain looks small, and a phase broadened to its bound soaks it up.
    # A scan that is nearly all hump (hump_share_max) is analysed as it is:
    # its hump is its signal (organic matter, glass).
    hump_width_deg: float = 4.0
    hump_share: float = 0.2
    hump_share_max: float = 0.9

    def fused_score(
        self, similarity: NDArray[np.floating] | float, correlation: NDArray[np.floating] | float
    ) -> NDArray[np.float64]:
        """What candidates are ranked by: cosine + weight × profile correlation."""
        return np.asarray(similarity, dtype=np.float64) + self.profile_weight * np.asarray(
            correlation, dtype=np.float64
        )


SERVED = RankingConfig()
