"""Shift-tolerant profile correlation of Raman spectra: the re-rank's score.

Two samples of a mineral measured on different spectrometers differ by a
calibration offset of a few cm⁻¹; the correlation is the best Pearson r of
square-rooted intensities over shifts of up to ±``max_shift_steps`` grid
steps, on the part of the grid the query covers. Rows are prepared by the XRD
re-rank's helpers (:func:`xrdid.ranking.rows.square_roots`,
:func:`~xrdid.ranking.rows.standardised`) so both techniques correlate the
same way; only the shift range is Raman's own (the XRD one is
``MAX_SHIFT_STEPS`` of a 0.02° grid).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from xrdid.ranking.rows import square_roots, standardised

# ±6 cm⁻¹ on the 1 cm⁻¹ grid: RRUFF spectra of one mineral from different
# lasers and instruments are offset by up to a few cm⁻¹.
RAMAN_MAX_SHIFT_STEPS = 6


def shifted_correlation(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    references: NDArray[np.floating],
    max_shift_steps: int = RAMAN_MAX_SHIFT_STEPS,
) -> NDArray[np.float64]:
    """(k,) best r of each reference (k, L) with the query (L,) over shifts of
    ±``max_shift_steps``; zeros when the query covers too little to shift."""
    covered = np.flatnonzero(mask)
    k = np.shape(references)[0]
    if covered.size < 4 * max_shift_steps + 2 or k == 0:
        return np.zeros(k)
    lo, hi = covered[0] + max_shift_steps, covered[-1] + 1 - max_shift_steps
    query = square_roots(intensity)
    window = standardised(square_roots(np.asarray(references)[:, lo:hi]))
    trials = np.lib.stride_tricks.sliding_window_view(
        query[lo - max_shift_steps : hi + max_shift_steps], hi - lo
    )
    scores = standardised(np.ascontiguousarray(trials)) @ window.T  # (2S+1, k)
    return np.asarray(scores.max(axis=0), dtype=np.float64)
