"""A measured reference's residue of an internal standard, found and removed.

Some of RockJock's measured reference patterns show corundum's strongest
peaks (25.6, 35.2, 43.4, 52.6, 57.6°) at up to a fifth of their own
strongest (brucite 8%, opal, silver and biotite 4–5%, a tephra 20%): the
standard those references were measured beside. Such a reference explains
part of a sample's corundum, the very phase a lab adds as its internal
standard, and the sample's corundum then reads low and the reference's
phase high.

The residue is measured with the standard's own pattern from the same table
(same instrument): at each of the standard's strongest lines, a
least-squares fit of the reference's neighbourhood to a straight background
plus the standard's peak (broadened as the residue's peaks are) gives the
standard's scale there. Where nearly all lines show it clearly, each line's
residue is taken away (at most twice the least line's: more is the
reference's own peak there), and the least from the rest of the standard's
pattern.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter1d, grey_opening
from scipy.signal import find_peaks

from xrdid.pattern import Pattern

__all__ = ["NONE", "Residue", "standard_residue", "table_without_standard", "without_standard"]

# The standard's lines that are fitted: its strongest, down to this share of its tallest.
_LINES = 6
_MIN_LINE_HEIGHT = 0.2
# Half the window fitted around each line (°): its peak and some background
# either side, little of a neighbouring reflection.
_HALF_WINDOW_DEG = 0.4
# Wider than any of the standard's peaks: what an opening this wide keeps is background.
_BACKGROUND_WIDTH_DEG = 2.0
# The broadenings (Gaussian σ, °) tried for the residue's peaks.
_BROADENINGS_DEG = (0.0, 0.02, 0.04, 0.06, 0.08, 0.12, 0.16, 0.2, 0.25)
# A line shows the standard when its scale is this many standard deviations above 0 …
_SIGNIFICANCE = 3.0
# … and the residue is there when all lines but one do (one may sit under
# the reference's own peak, whose slope the straight background cannot follow).
_LINES_MISSED = 1
# A line's own scale is taken up to this many times the least line's: the
# residue's relative heights differ from the standard's pattern by up to about
# that (brucite 1.7×, silver 1.7×, a tephra 1.8×, opal 2.3×, over lines clear
# of their own peaks); more is the pattern's own peak on that line
# (muscovite 11× at 57.6°, amphibole 27× at 35.2°).
_LINE_SPREAD = 2.0


def _baseline_free(intensity: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = intensity - np.percentile(intensity, 5)
    return out


def _peaks_only(x: NDArray[np.float64], standard: NDArray[np.float64]) -> NDArray[np.float64]:
    """The standard's peaks without its background (a grey opening wider
    than any of its peaks): only its peaks are a residue's."""
    width = max(int(round(_BACKGROUND_WIDTH_DEG / float(np.median(np.diff(x))))), 1) | 1
    out: NDArray[np.float64] = standard - grey_opening(standard, size=width)
    return out


@dataclass(frozen=True)
class Residue:
    """The standard's residue in a pattern: the Gaussian σ (°) its peaks are
    broader by, its scale at each of its lines that shows it (each line's
    window, °), and the least of those, taken for the rest of the
    standard's pattern (weaker lines, a line the pattern's own peak covers)."""

    scale: float
    broadening_deg: float = 0.0
    lines: tuple[tuple[float, float, float], ...] = ()  # (from, to, scale)

    def profile(self, two_theta: NDArray[np.floating]) -> NDArray[np.float64]:
        """The scale at each angle."""
        out = np.full(np.shape(two_theta), self.scale, dtype=np.float64)
        for low, high, scale in self.lines:
            out[(two_theta >= low) & (two_theta <= high)] = scale
        return out


NONE = Residue(0.0)


def _broadened(
    x: NDArray[np.float64], standard: NDArray[np.float64], sigma_deg: float
) -> NDArray[np.float64]:
    if sigma_deg <= 0:
        return standard
    step = float(np.median(np.diff(x)))
    out: NDArray[np.float64] = gaussian_filter1d(standard, sigma_deg / step)
    return out


def _line_fit(
    x: NDArray[np.float64], y: NDArray[np.float64], s: NDArray[np.float64], center: float
) -> tuple[float, float, float] | None:
    """(scale, its standard deviation, residual sum of squares) of ``y`` near
    ``center`` fitted by a straight background plus ``s``."""
    window = np.abs(x - center) <= _HALF_WINDOW_DEG
    design = np.stack([np.ones(window.sum()), x[window] - center, s[window]], axis=1)
    if design.shape[0] <= design.shape[1]:
        return None
    coef, *_ = np.linalg.lstsq(design, y[window], rcond=None)
    residual = y[window] - design @ coef
    rss = float(residual @ residual)
    covariance = np.linalg.pinv(design.T @ design) * rss / (design.shape[0] - design.shape[1])
    return float(coef[2]), float(np.sqrt(max(covariance[2, 2], 0.0))), rss


def standard_residue(
    two_theta: NDArray[np.floating],
    intensity: NDArray[np.floating],
    standard: NDArray[np.floating],
) -> Residue:
    """The residue of ``standard`` (intensities on the same ``two_theta``) in
    ``intensity``: :data:`NONE` when its lines are not clearly there. Its
    broadening is the one that fits the lines best (a residue's peaks are
    broader than the standard's own pattern: brucite's by σ ≈ 0.12°), and each
    line gets its own scale (within :data:`_LINE_SPREAD` of the least): one
    scale for all would leave much of the residue where it is strongest."""
    x = np.asarray(two_theta, dtype=np.float64)
    return _residue(x, intensity, _peaks_only(x, np.asarray(standard, dtype=np.float64)))


def _residue(
    x: NDArray[np.float64], intensity: NDArray[np.floating], s: NDArray[np.float64]
) -> Residue:
    """:func:`standard_residue`, given the standard's peaks ``s`` on ``x``."""
    y = np.asarray(intensity, dtype=np.float64)
    if s.max() <= 0:
        return NONE
    peaks, _ = find_peaks(s, prominence=_MIN_LINE_HEIGHT * s.max())
    centers = x[peaks[np.argsort(-s[peaks])][:_LINES]]
    if centers.size == 0:
        return NONE
    # The broadening that fits the median line best: a line on the pattern's
    # own peak fits none, and must not choose.
    best: tuple[float, float, list[tuple[float, float, float] | None]] | None = None
    for sigma in _BROADENINGS_DEG:
        broad = _broadened(x, s, sigma)
        fits = [_line_fit(x, y, broad, c) for c in centers]
        misfit = float(np.median([f[2] if f is not None else np.inf for f in fits]))
        if best is None or misfit < best[0]:
            best = (misfit, sigma, fits)
    assert best is not None
    _, sigma, fits = best
    shown = [
        (c - _HALF_WINDOW_DEG, c + _HALF_WINDOW_DEG, f[0])
        for c, f in zip(centers, fits, strict=True)
        if f is not None and f[0] > _SIGNIFICANCE * f[1]
    ]
    if len(shown) < centers.size - _LINES_MISSED:
        return NONE
    least = min(k for _, _, k in shown)
    cap = _LINE_SPREAD * least  # more at a line is the pattern's own peak there
    return Residue(least, sigma, tuple((low, high, min(k, cap)) for low, high, k in shown))


def without_standard(pattern: Pattern, standard: Pattern) -> tuple[Pattern, Residue]:
    """``pattern`` less the residue of ``standard`` in it (read on the
    pattern's angles), and that residue (:data:`NONE`: unchanged)."""
    x = np.asarray(pattern.two_theta_deg, dtype=np.float64)
    s = np.interp(x, standard.two_theta_deg, standard.intensity, left=0.0, right=0.0)
    peaks = _peaks_only(x, s)
    residue = _residue(x, pattern.intensity, peaks)
    if residue is NONE:
        return pattern, residue
    template = _broadened(x, peaks, residue.broadening_deg)
    cleaned = np.asarray(pattern.intensity, dtype=np.float64) - residue.profile(x) * template
    return replace(pattern, intensity=cleaned), residue


def table_without_standard(
    table: dict[str, Pattern], standard: str
) -> tuple[dict[str, Pattern], dict[str, float]]:
    """A table's patterns (column → pattern) with the residue of its column
    ``standard`` removed from the others, and for each cleaned column the
    most it lost at one angle, as a share of its strongest point. A table
    without that column is returned as it is."""
    if standard not in table:
        return table, {}
    out, removed = dict(table), {}
    for column, pattern in table.items():
        if column == standard:
            continue
        cleaned, residue = without_standard(pattern, table[standard])
        if residue is not NONE:
            out[column] = cleaned
            intensity = np.asarray(pattern.intensity, dtype=np.float64)
            lost = float(np.max(intensity - cleaned.intensity))
            removed[column] = lost / max(float(np.max(_baseline_free(intensity))), 1e-300)
    return out, removed
