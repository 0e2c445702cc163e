"""What an identification returns: the ranked references, the materials and
families they group into, the phases with their amounts, the fit, the
verdict, and on request the arrays of an overlay.

Built from the ranking's :class:`~xrdid.ranking.answer.Answer` with each
reference's metadata (:class:`~xrdid.library.Match`) and, for calculated
references, the cell and reflections their stick patterns give.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pymatgen.core import Lattice

from xrdid.grid import MODEL_GRID, convert_two_theta, d_to_two_theta, two_theta_to_d
from xrdid.library import LibraryStatus, Match, ReferenceEntry
from xrdid.preprocess import BaselineMethod
from xrdid.ranking.answer import Verdict
from xrdid.ranking.refine import PhaseShape
from xrdid.ranking.strain_tensor import reflection_strains, symmetric_tensor
from xrdid.sticks import StickPattern
from xrdid.wavelengths import Wavelength

__all__ = [
    "Cell",
    "Evidence",
    "FamilyMember",
    "FitSummary",
    "Identification",
    "LookAlikeMatch",
    "MaterialMatch",
    "PhaseMatch",
    "PhaseProfile",
    "QueryInfo",
    "Reflection",
    "StageTimings",
    "UnexplainedPeakAt",
    "fitted_cell",
    "reflections",
]

# Reflections listed per phase in an overlay: the strongest within the scan's range.
MAX_REFLECTIONS = 200


@dataclass(frozen=True)
class Cell:
    """Lattice parameters (Å, degrees)."""

    a: float
    b: float
    c: float
    alpha: float
    beta: float
    gamma: float


def fitted_cell(sticks: StickPattern, strain: float | Sequence[float]) -> Cell:
    """A calculated reference's cell strained isotropically (every length ×
    (1 + strain)) or by a strain tensor (xx, yy, zz, xy, xz, yz: each lattice
    vector v → (I + E) v, as the refinement's ĝᵀ E ĝ moves each reflection),
    the tensor's part that the lattice's symmetry allows: a tetragonal cell
    stays tetragonal."""
    vectors = np.linalg.inv(sticks.reciprocal_lattice).T  # rows a, b, c
    if isinstance(strain, (int, float)):
        deformation = (1.0 + strain) * np.eye(3)
    else:
        xx, yy, zz, xy, xz, yz = (float(t) for t in symmetric_tensor(sticks, strain))
        deformation = np.eye(3) + np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    lattice = Lattice(vectors @ deformation.T)
    a, b, c = lattice.abc
    alpha, beta, gamma = lattice.angles
    return Cell(float(a), float(b), float(c), float(alpha), float(beta), float(gamma))


@dataclass(frozen=True)
class Reflection:
    two_theta_deg: float  # where the fitted phase puts it on the model grid (Cu Kα1)
    d_angstrom: float  # fitted d-spacing
    hkl: tuple[int, int, int]
    intensity: float  # relative, the phase's strongest = 1


def reflections(
    sticks: StickPattern,
    shape: PhaseShape,
    covered: tuple[float, float],
    wavelength_ratio: float = 1.0,
) -> tuple[Reflection, ...]:
    """The strongest reflections of a fitted calculated phase inside the
    covered range, of a scan at ``wavelength_ratio`` × the model grid's
    wavelength (its shift is of that scan's 2θ)."""
    wavelength = MODEL_GRID.wavelength_angstrom
    strain = reflection_strains(sticks, shape.tensor) if shape.tensor is not None else shape.strain
    d = sticks.d_angstrom * (1.0 + strain)
    # Where the scan's radiation puts them, shifted there, on the model grid
    # (NaN where either wavelength cannot reach them).
    scan = wavelength_ratio * wavelength
    two_theta = convert_two_theta(d_to_two_theta(d, scan) + shape.shift_deg, scan, wavelength)
    intensity = sticks.intensities(wavelength)
    inside = (two_theta >= covered[0]) & (two_theta <= covered[1]) & (intensity > 0)
    if not inside.any():
        return ()
    peak = float(intensity[inside].max())
    order = np.flatnonzero(inside)[np.argsort(-intensity[inside])][:MAX_REFLECTIONS]
    order = order[np.argsort(two_theta[order])]
    return tuple(
        Reflection(
            float(two_theta[i]),
            float(d[i]),
            (int(sticks.hkl[i][0]), int(sticks.hkl[i][1]), int(sticks.hkl[i][2])),
            float(intensity[i] / peak),
        )
        for i in order
    )


@dataclass(frozen=True)
class FamilyMember:
    """Another material of a look-alike family, as it fits the scan."""

    match: Match  # its best reference
    cell: Cell | None  # fitted to the scan (calculated references)


@dataclass(frozen=True)
class MaterialMatch:
    """One answer: a material (its best reference, the others as
    alternatives) and, when it has look-alikes, its family."""

    rank: int
    match: Match
    confidence: float | None
    alternatives: tuple[Match, ...]
    family: tuple[FamilyMember, ...]  # the other members, best fit first; () without one
    cell: Cell | None  # the leading reference's cell fitted to the scan


@dataclass(frozen=True)
class LookAlikeMatch:
    """A material the scan cannot tell from a phase found
    (:class:`~xrdid.ranking.phases.LookAlike`)."""

    entry: ReferenceEntry
    misfit_ratio: float  # its fit's misfit in the phase's place / the phase's


@dataclass(frozen=True)
class PhaseMatch:
    """A phase found in the scan."""

    match: Match
    weight_percent: float | None
    weight_percent_sd: float | None
    weight_percent_note: str | None
    scale: float
    scale_sd: float
    shape: PhaseShape
    cell: Cell | None
    explained: float
    confidence: float | None
    lookalikes: tuple[LookAlikeMatch, ...] = ()  # best fitting first


@dataclass(frozen=True)
class UnexplainedPeakAt:
    two_theta_deg: float
    d_angstrom: float
    height: float
    on_phase: str | None = None  # the phase whose fitted peak it sits on


@dataclass(frozen=True)
class FitSummary:
    rwp: float
    unexplained: float
    unexplained_peaks: tuple[UnexplainedPeakAt, ...]

    @classmethod
    def of(
        cls,
        rwp: float,
        unexplained: float,
        peaks: tuple[tuple[float, float, str | None], ...],
    ) -> FitSummary:
        """``peaks``: (2θ, height, the phase whose peak it sits on) each."""
        return cls(
            rwp,
            unexplained,
            tuple(
                UnexplainedPeakAt(
                    t, float(two_theta_to_d(t, MODEL_GRID.wavelength_angstrom)), h, phase
                )
                for t, h, phase in peaks
            ),
        )


@dataclass(frozen=True)
class PhaseProfile:
    reference_id: int
    name: str
    profile: NDArray[np.float64]  # its fitted contribution over the covered grid
    reflections: tuple[Reflection, ...]


@dataclass(frozen=True)
class Evidence:
    """The arrays of an overlay, over the covered part of the model grid."""

    two_theta_deg: NDArray[np.float64]
    scan: NDArray[np.float64]
    residual: NDArray[np.float64]
    phases: tuple[PhaseProfile, ...]

    @property
    def d_angstrom(self) -> NDArray[np.float64]:
        return np.asarray(two_theta_to_d(self.two_theta_deg, MODEL_GRID.wavelength_angstrom))


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
    phases_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.read_ms + self.preprocess_ms + self.embed_ms + self.search_ms + self.phases_ms


@dataclass(frozen=True)
class Identification:
    """The answer for one scan, with what was used to get it."""

    matches: tuple[Match, ...]  # the flat ranked list (one per reference)
    materials: tuple[MaterialMatch, ...]
    phases: tuple[PhaseMatch, ...]
    verdict: Verdict
    fit: FitSummary | None
    amorphous_percent: float | None
    notes: tuple[str, ...]
    evidence: Evidence | None
    query: QueryInfo
    library: LibraryStatus
    model_version: str
    timings: StageTimings
