"""The classical multi-phase loop, a baseline: find one, subtract it, search what is left.

The classic search–match loop (and XRD-AutoAnalyzer's) takes the best match,
fits its reference to the scan (best small 2θ shift, least-squares scale),
subtracts it and searches the residual again, until little intensity is left
unexplained. The evaluation runs every ranking method inside it, beside the
served phase analysis (:mod:`xrdid.ranking.phases`: joint refinement, evidence
to stop). Works on model-grid inputs (intensity, coverage mask).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import maximum_filter1d

from xrdid.ranking.config import MAX_SHIFT_STEPS

# At most this many phases, and stop when less than this share of the scan's
# intensity is left unexplained.
MAX_PHASES = 3
MIN_UNEXPLAINED = 0.15
# Subtract each reference point's neighbourhood too (±0.04°): strain and
# broadening leave peak flanks behind otherwise, which read as a new phase.
WIDENING_STEPS = 2


@dataclass(frozen=True)
class PhaseFit:
    """One phase found in a scan."""

    candidate: int  # library index
    scale: float  # its strongest peak, relative to the scan's (max 1)
    shift_steps: int  # grid steps its reference was moved to fit
    explained: float  # share of the scan's intensity removed with it


def fit_phase(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    reference: NDArray[np.floating],
) -> tuple[float, int, NDArray[np.float64]]:
    """Fit ``reference`` to ``intensity`` over ``mask``: (scale, shift, residual ≥ 0)."""
    q = np.where(mask, intensity, 0.0).astype(np.float64)
    r = np.where(mask, reference, 0.0).astype(np.float64)
    shifts = np.arange(-MAX_SHIFT_STEPS, MAX_SHIFT_STEPS + 1)
    shifted = np.stack([np.roll(r, int(s)) for s in shifts])
    shift = int(shifts[np.argmax(shifted @ q)])
    best = np.roll(r, shift)
    power = float(best @ best)
    scale = float(np.clip((best @ q) / power, 0.0, 1.0)) if power > 0 else 0.0
    wide = maximum_filter1d(best, size=2 * WIDENING_STEPS + 1)
    residual = np.clip(q - scale * wide, 0.0, None)
    return scale, shift, residual


def search_phases(
    query: NDArray[np.floating],
    rank: Callable[[NDArray[np.float32]], Sequence[int]],
    reference: Callable[[int], NDArray[np.floating]],
    identity: Callable[[int], Hashable] = lambda i: i,
    ranking: Sequence[int] | None = None,
) -> list[PhaseFit]:
    """Phases of ``query`` (2, L: intensity, mask), strongest first.

    ``rank(x)`` orders library indices for a model-grid input x; ``reference(i)``
    is candidate i's intensity on the grid; ``identity(i)`` says which
    candidates are the same material (so one is not found twice); ``ranking``
    is the query's own ranking when the caller already has it. Stops after
    ``MAX_PHASES`` or when less than ``MIN_UNEXPLAINED`` of the intensity is left.
    """
    mask = query[1] > 0.5
    intensity = np.where(mask, query[0], 0.0).astype(np.float64)
    total = float(intensity.sum())
    fits: list[PhaseFit] = []
    found: set[Hashable] = set()
    current = np.asarray(query, dtype=np.float32)
    while len(fits) < MAX_PHASES and total > 0:
        order = rank(current) if ranking is None or fits else ranking
        candidate = next((i for i in order if identity(i) not in found), None)
        if candidate is None:
            break
        before = float(intensity.sum())
        scale, shift, intensity = fit_phase(intensity, mask, reference(candidate))
        fits.append(PhaseFit(candidate, scale, shift, (before - float(intensity.sum())) / total))
        found.add(identity(candidate))
        peak = float(intensity.max())
        if intensity.sum() < MIN_UNEXPLAINED * total or peak <= 0:
            break
        current = np.stack([intensity / peak, mask]).astype(np.float32)
    return fits


def phase_ranking(
    fits: Sequence[PhaseFit],
    ranking: Sequence[int],
    k: int,
    identity: Callable[[int], Hashable] = lambda i: i,
) -> list[int]:
    """The phases found, then the plain ranking's other materials, k in all."""
    out = [f.candidate for f in fits]
    seen = {identity(i) for i in out}
    for i in ranking:
        if len(out) >= k:
            break
        if identity(i) not in seen:
            out.append(i)
            seen.add(identity(i))
    return out[:k]
