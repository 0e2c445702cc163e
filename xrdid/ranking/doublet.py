"""Reference profiles as the scan's radiation shows them: its Kα doublet.

A calculated reference is rendered once, as a Cu Kα1 + Kα2 scan (ratio 0.5)
on the model grid. A scan converted to the model grid keeps its own doublet:
none from a monochromator or a synchrotron, a wider one from Mo. The ranking
does not see the difference (it correlates 0.06° bins), but the phase
refinement fits every point at high counts, and a reference with a Kα2
shoulder the scan lacks leaves misfit at each of its peaks, enough to hide a
minor phase. So the profiles the phase analysis fits are converted: the Cu
Kα2 stripped (Rachinger's recursion p₁(x) = p(x) − R · p₁(g(x)), g(x) the Kα1
angle whose Kα2 line falls at x, solved by fixed-point iteration, each step
halving the error) and the scan's own Kα2 added back.

Only calculated references are converted: a measured one carries whatever
doublet its instrument had, which the library does not record.

The source also tells the refinement the scan's wavelength
(:func:`wavelength_ratio`): a phase's 2θ shift is refined in the scan's own 2θ.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from xrdid.grid import MODEL_GRID
from xrdid.ranking.config import SearchResolution
from xrdid.ranking.correlation import CorrelationRows
from xrdid.ranking.pipeline import EmbeddingHits, ProfileRows, ReferenceFacts, ReferenceSource
from xrdid.ranking.strain_tensor import StrainBasis
from xrdid.wavelengths import CU_KALPHA, Wavelength

__all__ = ["DoubletSource", "as_measured", "same_doublet", "wavelength_ratio", "with_doublet"]

_GRID = MODEL_GRID.two_theta_deg
# Fixed-point steps of the stripping: the error halves each (R = 0.5), to
# 2e-4 of the strongest point, below a scan's noise.
_STRIP_STEPS = 12
# Doublets whose line ratios agree this closely are the same on the model grid.
_SAME_RATIO = 1e-4


def same_doublet(radiation: Wavelength) -> bool:
    """Whether a scan of ``radiation`` shows the library's Cu Kα doublet."""
    library = _line_ratio(CU_KALPHA), CU_KALPHA.kalpha2_ratio
    scan = _line_ratio(radiation), radiation.kalpha2_ratio
    if scan[0] is None or library[0] is None:
        return scan[0] is library[0]
    return abs(scan[0] - library[0]) < _SAME_RATIO and abs(scan[1] - library[1]) < _SAME_RATIO


def with_doublet(profiles: NDArray[np.floating], radiation: Wavelength) -> NDArray[np.float64]:
    """Profiles (n, L) rendered with the library's Cu Kα doublet, as a scan of
    ``radiation`` converted to the model grid shows them, each with its
    strongest point kept."""
    values = np.atleast_2d(np.asarray(profiles, dtype=np.float64))
    if same_doublet(radiation):
        return values
    converted = _stripped(values)
    ratio = _line_ratio(radiation)
    if ratio is not None:
        lower, weight = _reading(ratio)
        converted = converted + radiation.kalpha2_ratio * _read(converted, lower, weight)
    # Each keeps its strongest point: phases are scaled (and weighed, by
    # reference intensity ratios) by it, as the scan's radiation shows it.
    peak = converted.max(axis=1, keepdims=True)
    return converted * np.where(peak > 0, values.max(axis=1, keepdims=True) / peak, 1.0)


def as_measured(source: ReferenceSource, radiation: Wavelength) -> ReferenceSource:
    """``source`` as a scan of ``radiation`` shows its references (itself
    when that is the library's doublet)."""
    return source if same_doublet(radiation) else DoubletSource(source, radiation)


def wavelength_ratio(source: ReferenceSource) -> float:
    """The wavelength of the scan ``source`` shows its references for (from
    :func:`as_measured`) over the model grid's: 1 for the library's own."""
    return source.wavelength_ratio if isinstance(source, DoubletSource) else 1.0


def _line_ratio(radiation: Wavelength) -> float | None:
    """λ(Kα2) / λ(Kα1), None without a Kα2 line."""
    if radiation.kalpha2_angstrom is None or radiation.kalpha2_ratio == 0.0:
        return None
    return radiation.kalpha2_angstrom / radiation.kalpha1_angstrom


def _stripped(profiles: NDArray[np.float64]) -> NDArray[np.float64]:
    """The Kα1 part of profiles rendered with the library's Cu doublet."""
    ratio = _line_ratio(CU_KALPHA)
    assert ratio is not None
    lower, weight = _reading(ratio)
    single = profiles.copy()
    for _ in range(_STRIP_STEPS):
        single = profiles - CU_KALPHA.kalpha2_ratio * _read(single, lower, weight)
    return single


@functools.lru_cache(maxsize=8)
def _reading(line_ratio: float) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """For each grid angle x, where the Kα1 line lies whose Kα2 falls at x:
    sin(g/2) = sin(x/2) / ``line_ratio``, as the grid segment below g and the
    weight of the point above (0 below the grid: nothing there)."""
    sin_half = np.sin(np.radians(_GRID / 2.0)) / line_ratio
    g = 2.0 * np.degrees(np.arcsin(np.clip(sin_half, -1.0, 1.0)))
    position = (g - _GRID[0]) / MODEL_GRID.step_deg
    lower = np.clip(np.floor(position).astype(np.intp), 0, _GRID.size - 2)
    weight = np.where(position >= 0, np.clip(position - lower, 0.0, 1.0), np.nan)
    return lower, weight


def _read(
    profiles: NDArray[np.float64], lower: NDArray[np.intp], weight: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Profiles read at the angles of :func:`_reading` (linear interpolation; 0 off the grid)."""
    below = profiles[:, lower]
    read = below + np.nan_to_num(weight) * (profiles[:, lower + 1] - below)
    out: NDArray[np.float64] = np.where(np.isnan(weight), 0.0, read)
    return out


class DoubletSource:
    """A :class:`~xrdid.ranking.pipeline.ReferenceSource` whose calculated
    references' profiles show the Kα doublet of ``radiation``; everything
    else is read from ``source`` as it is."""

    def __init__(self, source: ReferenceSource, radiation: Wavelength) -> None:
        self.stored = source  # the references as the library holds them
        self._source, self._radiation = source, radiation
        self.wavelength_ratio = radiation.kalpha1_angstrom / MODEL_GRID.wavelength_angstrom
        # Converted profiles by id: the analysis reads the same few many times.
        self._converted: dict[int, NDArray[np.float32]] = {}
        self.correlation_rows = CorrelationRows(self.profiles)

    def nearest(self, embeddings: NDArray[np.float32], n: int) -> list[EmbeddingHits]:
        return self._source.nearest(embeddings, n)

    def profile_rows(self, resolution: SearchResolution) -> ProfileRows:
        return self._source.profile_rows(resolution)

    def profiles(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        missing = np.array([i for i in dict.fromkeys(ids.tolist()) if i not in self._converted])
        if missing.size:
            stored = self._source.profiles(missing)
            bases = self._source.strain_bases(missing)
            calculated = [k for k, basis in enumerate(bases) if basis is not None]
            converted = np.array(stored, dtype=np.float32)
            if calculated:
                converted[calculated] = with_doublet(stored[calculated], self._radiation)
            self._converted.update(zip(missing.tolist(), converted, strict=True))
        if ids.size == 0:
            return np.array(self._source.profiles(ids), dtype=np.float32)
        return np.stack([self._converted[i] for i in ids.tolist()])

    def strain_bases(self, ids: NDArray[np.int64]) -> Sequence[StrainBasis | None]:
        return self._source.strain_bases(ids)

    def facts(self, ids: NDArray[np.int64]) -> list[ReferenceFacts]:
        return self._source.facts(ids)
