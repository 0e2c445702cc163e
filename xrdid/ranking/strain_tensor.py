"""Fit a lattice strain per crystal direction to a calculated reference.

A strained sample does not strain its cell evenly: the augmentation (and
real samples, under stress or with a slightly different composition) move
each reflection by its own relative amount ε_hkl = ĝᵀ E ĝ, where E is the
symmetric strain tensor and ĝ the reflection's unit reciprocal vector. An
isotropic strain (the grid search of :mod:`xrdid.ranking.correlation`) leaves
those differences, up to tenths of a degree at high angles, and a correlation
over peaks that no longer overlap falls. Search–match programs refine the
lattice parameters of their best few candidates for the same reason.

:func:`fit_strain_tensors` starts from each candidate's isotropic
strain and zero shift and refines the six components of E and the shift by
Gauss–Newton on the candidate's own reflections (the reference's stick
pattern tells where each hkl lies and which way it moves), first on smoothed
profiles so peaks a few widths apart still pull each other, then on sharper
ones. The query is warped onto the reference's angles reflection by
reflection: each angle takes the strain of the reflections around it,
weighted by their intensity, so the stored reference profile is compared
unchanged. The fitted correlation pays a prior, as the isotropic one does,
for the strain it needed.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import spglib
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter1d

from xrdid.grid import MODEL_GRID
from xrdid.ranking.config import MAX_SHIFT_STEPS
from xrdid.ranking.rows import binned, standardised
from xrdid.sticks import StickPattern

__all__ = [
    "ISOTROPIC",
    "StrainBasis",
    "StrainFit",
    "basis_bins",
    "fit_strain_tensors",
    "largest_strain",
    "reflection_strains",
    "strain_basis",
    "symmetric_tensor",
]

# A calculated reference's :func:`strain_basis`.
StrainBasis = NDArray[np.float32]

# The fit runs on bins of 3 grid steps (0.06°, as the re-rank correlates),
# with the profiles smoothed by these Gaussian σ in turn (coarse to fine), a
# few Gauss–Newton steps each.
_BIN_STEPS = 3
_SMOOTHING_DEG = (0.3, 0.12)
_STEPS_PER_LEVEL = 3
# Reflections within a few of these σ of an angle set its strain.
_REFLECTION_WIDTH_DEG = 0.12
# Largest change per Gauss–Newton step (strain component, zero shift in °):
# keeps a step from jumping past the peaks it was pulled by.
_MAX_STRAIN_STEP = 0.005
_MAX_SHIFT_STEP_DEG = 0.1

_GRID = MODEL_GRID.two_theta_deg
_BINS = _GRID.size // _BIN_STEPS
_BIN_CENTRES = _GRID[: _BINS * _BIN_STEPS].reshape(_BINS, _BIN_STEPS).mean(axis=1)
_BIN_WIDTH_DEG = MODEL_GRID.step_deg * _BIN_STEPS
# Each grid point's bin below and its weight for the next, for the same
# linear interpolation as np.interp (held constant beyond the end centres),
# done for all candidates at once.
_GRID_BIN = np.clip(np.searchsorted(_BIN_CENTRES, _GRID, side="right") - 1, 0, _BINS - 2)
_GRID_BIN_WEIGHT = np.clip((_GRID - _BIN_CENTRES[_GRID_BIN]) / _BIN_WIDTH_DEG, 0.0, 1.0)
# Tensor components (xx, yy, zz, xy, xz, yz); an isotropic strain ε is ε × this.
ISOTROPIC = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])


@dataclass(frozen=True)
class StrainFit:
    """Per reference: Pearson r once the strain tensor and shift are fitted,
    the fitted mean (isotropic) strain, and the summed departure of the six
    tensor components from it."""

    r: NDArray[np.float64]
    isotropic_strain: NDArray[np.float64]
    anisotropic_departure: NDArray[np.float64]

    def correlation(self, strain_penalty: float, anisotropic_penalty: float) -> NDArray[np.float64]:
        """r lowered by the priors for small strains (as the isotropic search's)."""
        return (
            self.r
            - strain_penalty * np.abs(self.isotropic_strain)
            - anisotropic_penalty * self.anisotropic_departure
        )


def fit_strain_tensors(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    references: NDArray[np.floating],
    bases: Sequence[NDArray[np.floating]],
    strain: NDArray[np.floating],
    shift_deg: NDArray[np.floating],
    anisotropic_strain_max: float,
) -> StrainFit:
    """Fit a strain tensor and a zero shift to each reference.

    ``intensity``, ``mask``: the query on the model grid (L,), compared as
    given (the caller takes square roots); ``references`` (k, L) the same
    way; ``bases[i]``: the :func:`strain_basis` of the stick pattern
    reference i was calculated from; ``strain`` and ``shift_deg`` (k,): the
    isotropic fit to start from; each tensor component stays within
    ``anisotropic_strain_max`` of their mean. The correlation is taken in bins of 3 grid
    steps over the covered range less 0.3° at each end, as the isotropic
    search does; r = 0 when the query covers too little.
    """
    covered = np.flatnonzero(mask)
    n_refs = len(bases)
    # Bins wholly inside the isotropic search's window.
    lo = -(-(covered[0] + MAX_SHIFT_STEPS) // _BIN_STEPS) if covered.size else 0
    hi = (covered[-1] + 1 - MAX_SHIFT_STEPS) // _BIN_STEPS if covered.size else 0
    if hi - lo < 2 or n_refs == 0:
        return StrainFit(np.zeros(n_refs), np.zeros(n_refs), np.zeros(n_refs))
    window = slice(lo, hi)
    query = binned(np.asarray(intensity, dtype=np.float64)[None], _BIN_STEPS)[0]
    refs = binned(np.asarray(references, dtype=np.float64), _BIN_STEPS)
    basis = np.stack(bases).astype(np.float64, copy=False)  # (k, bins, 6)
    tensor = np.asarray(strain, dtype=np.float64)[:, None] * ISOTROPIC
    shift = np.asarray(shift_deg, dtype=np.float64).copy()
    sin_theta = np.sin(np.radians(_BIN_CENTRES[window] / 2.0))
    basis_t = np.ascontiguousarray(basis[:, window].transpose(0, 2, 1))
    for sigma_deg in _SMOOTHING_DEG:
        sigma_bins = sigma_deg / _BIN_WIDTH_DEG
        smooth_query = gaussian_filter1d(query, sigma_bins)
        slope = np.gradient(smooth_query, _BIN_WIDTH_DEG)
        target = gaussian_filter1d(refs, sigma_bins, axis=1)[:, window]
        target -= target.mean(axis=1, keepdims=True)
        for _ in range(_STEPS_PER_LEVEL):
            tensor, shift = _gauss_newton_step(
                sin_theta, smooth_query, slope, target, basis_t, tensor, shift
            )
            tensor = _bounded(tensor, anisotropic_strain_max)
    full = slice(lo * _BIN_STEPS, hi * _BIN_STEPS)
    # The query on the full grid, read where each strained reference has each
    # angle (the bins' strains interpolated linearly between bin centres).
    bin_strain = (tensor[:, None, :] @ basis.transpose(0, 2, 1))[:, 0, :]
    lower = bin_strain[:, _GRID_BIN]
    grid_strain = lower + _GRID_BIN_WEIGHT * (bin_strain[:, _GRID_BIN + 1] - lower)
    angles = _query_angles(_GRID, grid_strain, shift[:, None])
    warped = np.interp(angles, _GRID, intensity, left=0.0, right=0.0)
    r = _rowwise_dot(
        standardised(binned(warped[:, full], _BIN_STEPS)), standardised(refs[:, window])
    )
    isotropic = tensor[:, :3].mean(axis=1)
    departure = np.abs(tensor - isotropic[:, None] * ISOTROPIC).sum(axis=1)
    return StrainFit(r, isotropic, departure)


def strain_basis(sticks: StickPattern) -> NDArray[np.float32]:
    """How a strain tensor moves a reference, bin by bin: (bins, 6) such that
    the strain at each 0.06° bin is ``basis @ tensor`` (components xx, yy,
    zz, xy, xz, yz), the intensity-weighted mean of ε_hkl = ĝᵀ E ĝ over the
    reflections around it (isotropic where there are none, so empty
    stretches follow the mean). Depends on the sticks only: callers cache it."""
    reach = 4.0 * _REFLECTION_WIDTH_DEG
    two_theta, weight, unit = _reflections(
        sticks, _BIN_CENTRES[0] - reach, _BIN_CENTRES[-1] + reach
    )
    weight = weight / max(weight.max(initial=0), 1e-300)
    directions = _directions(unit)
    half = int(np.ceil(reach / _BIN_WIDTH_DEG))
    nearest = np.rint((two_theta - _BIN_CENTRES[0]) / _BIN_WIDTH_DEG).astype(np.int64)
    bins = nearest[:, None] + np.arange(-half, half + 1)
    inside = (bins >= 0) & (bins < _BINS)
    bins = np.where(inside, bins, 0)
    distance = (_BIN_CENTRES[bins] - two_theta[:, None]) / _REFLECTION_WIDTH_DEG
    w = np.where(inside, weight[:, None] * np.exp(-0.5 * distance**2), 0.0)
    total = np.bincount(bins.ravel(), w.ravel(), _BINS)
    per_component = np.stack(
        [np.bincount(bins.ravel(), (w * c[:, None]).ravel(), _BINS) for c in directions.T], axis=1
    )
    floor = 1e-3 * max(total.max(initial=0.0), 1e-300)
    basis = (per_component + floor * ISOTROPIC / 3.0) / (total + floor)[:, None]
    return basis.astype(np.float32)


def largest_strain(basis: StrainBasis, tensor: Sequence[float]) -> float:
    """The largest |strain| a tensor moves any of the reference's peaks by
    (its strain basis's bins; the isotropic part between peaks)."""
    return float(np.abs(np.asarray(basis, dtype=np.float64) @ np.asarray(tensor)).max())


def _reflections(
    sticks: StickPattern, lowest_deg: float, highest_deg: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """The reflections between two angles on the model grid's wavelength that
    have an intensity and a direction to strain along: their 2θ, intensity
    and unit reciprocal vector (n, 3)."""
    lam = MODEL_GRID.wavelength_angstrom
    two_theta = sticks.two_theta_deg(lam)
    weight = sticks.intensities(lam)
    g = sticks.hkl @ sticks.reciprocal_lattice
    length = np.linalg.norm(g, axis=1)
    keep = (
        np.isfinite(two_theta)
        & (weight > 0)
        & (length > 0)
        & (two_theta > lowest_deg)
        & (two_theta < highest_deg)
    )
    return two_theta[keep], weight[keep], g[keep] / length[keep, None]


def _directions(g: NDArray[np.float64]) -> NDArray[np.float64]:
    """ĝᵀ E ĝ per unit reciprocal vector (rows of ``g``) for each tensor
    component (xx, yy, zz, xy, xz, yz), the off-diagonals twice: (n, 6)."""
    return np.stack(
        [g[:, 0] ** 2, g[:, 1] ** 2, g[:, 2] ** 2, 2 * g[:, 0] * g[:, 1],
         2 * g[:, 0] * g[:, 2], 2 * g[:, 1] * g[:, 2]],
        axis=1,
    )  # fmt: skip


def reflection_strains(sticks: StickPattern, tensor: Sequence[float]) -> NDArray[np.float64]:
    """Each reflection's relative d-spacing change ε_hkl = ĝᵀ E ĝ under the
    strain tensor (xx, yy, zz, xy, xz, yz)."""
    g = sticks.hkl @ sticks.reciprocal_lattice
    length = np.linalg.norm(g, axis=1, keepdims=True)
    unit = g / np.where(length > 0, length, 1.0)
    strains: NDArray[np.float64] = _directions(unit) @ np.asarray(tensor, dtype=np.float64)
    return strains


def symmetric_tensor(sticks: StickPattern, tensor: Sequence[float]) -> NDArray[np.float64]:
    """The strain tensor that the reference's lattice symmetry allows which
    moves its reflections most nearly as ``tensor`` does (least squares over
    the reflections on the model grid, weighted by intensity).

    The fits strain each reflection family through one representative hkl,
    so the tensor they find is not bound by the symmetry: a tetragonal cell
    strained by it would come out with a ≠ b. Its symmetric part is the cell
    a lab can read. The symmetry is the lattice's point group (spglib), which
    constrains a strain tensor as the crystal's own does unless the cell is
    metrically more symmetric than the structure."""
    t = np.asarray(tensor, dtype=np.float64)
    invariant = _symmetric_basis(np.asarray(sticks.reciprocal_lattice, dtype=np.float64).tobytes())
    _, weight, unit = _reflections(sticks, _GRID[0], _GRID[-1])
    if weight.size == 0:
        return invariant @ (invariant.T @ t)
    directions = _directions(unit) * np.sqrt(weight)[:, None]
    components, *_ = np.linalg.lstsq(directions @ invariant, directions @ t, rcond=None)
    symmetric: NDArray[np.float64] = invariant @ components
    return symmetric


# Distance tolerance (Å) for the lattice's symmetry: cells read from
# structure files are symmetric to rounding, far below anything a fit resolves.
_SYMMETRY_TOLERANCE_ANGSTROM = 1e-3


# One entry a reference (72 bytes of key, at most 6 × 6 floats): a library's
# references recur request after request, and spglib costs more than the fit.
@functools.lru_cache(maxsize=4096)
def _symmetric_basis(reciprocal_lattice: bytes) -> NDArray[np.float64]:
    """The invariant tensors (:func:`_invariant_tensors`) of a reciprocal
    lattice given by its bytes (3 × 3 float64)."""
    basis = _invariant_tensors(_lattice_rotations(np.frombuffer(reciprocal_lattice).reshape(3, 3)))
    basis.setflags(write=False)  # shared by every call
    return basis


def _lattice_rotations(reciprocal_lattice: NDArray[np.float64]) -> NDArray[np.float64]:
    """The lattice's point-group rotations as Cartesian matrices (m, 3, 3)."""
    direct = np.linalg.inv(reciprocal_lattice).T  # rows a, b, c
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # spglib's error-handling notice
        found = spglib.get_symmetry(
            (direct.tolist(), [[0.0, 0.0, 0.0]], [1]), symprec=_SYMMETRY_TOLERANCE_ANGSTROM
        )
    if found is None:  # spglib found nothing: treat as triclinic
        return np.eye(3)[None]
    # Fractional x → W x is Cartesian r → Aᵀ W A⁻ᵀ r (A's rows a, b, c).
    to_cartesian = direct.T
    fractional = np.asarray(found["rotations"], dtype=np.float64)
    rotations: NDArray[np.float64] = np.einsum(
        "ij,rjk,kl->ril", to_cartesian, fractional, np.linalg.inv(to_cartesian)
    )
    return rotations


def _invariant_tensors(rotations: NDArray[np.float64]) -> NDArray[np.float64]:
    """An orthonormal basis (6, r) of the tensors (xx, yy, zz, xy, xz, yz)
    that every rotation R leaves as they are (R E Rᵀ = E): the range of the
    average of the rotations' actions, a projector."""
    units = np.zeros((6, 3, 3))
    for index, (i, j) in enumerate(_COMPONENTS):
        units[index, i, j] = units[index, j, i] = 1.0
    rotated = np.einsum("rij,cjk,rlk->cil", rotations, units, rotations) / len(rotations)
    average = np.stack([rotated[:, i, j] for i, j in _COMPONENTS])  # (component, unit)
    left, singular, _ = np.linalg.svd(average)
    basis: NDArray[np.float64] = left[:, singular > 0.5]
    return basis


# (row, column) of each tensor component in the symmetric matrix.
_COMPONENTS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))


def basis_bins(two_theta_deg: NDArray[np.float64]) -> NDArray[np.intp]:
    """The basis bin (:func:`strain_basis`) nearest each angle."""
    index = ((two_theta_deg - (_BIN_CENTRES[0] - _BIN_WIDTH_DEG / 2)) / _BIN_WIDTH_DEG).astype(
        np.intp
    )
    return np.minimum(np.maximum(index, 0), _BINS - 1)


def _query_angles(
    centres: NDArray[np.float64], strain: NDArray[np.float64], shift: NDArray[np.float64] | float
) -> NDArray[np.float64]:
    """Where the query shows what the reference has at ``centres``: a d-spacing
    strained by ε lies where sin θ' = sin θ / (1 + ε), then the zero shift."""
    sin_theta = np.sin(np.radians(centres / 2.0)) / (1.0 + strain)
    return 2.0 * np.degrees(np.arcsin(np.clip(sin_theta, -1.0, 1.0))) + shift


def _gauss_newton_step(
    sin_theta: NDArray[np.float64],
    query: NDArray[np.float64],
    slope: NDArray[np.float64],
    target: NDArray[np.float64],
    basis_t: NDArray[np.float64],
    tensor: NDArray[np.float64],
    shift: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """One damped step for every candidate at once: the warped query, scaled
    by least squares, moved towards the (centred) reference ``target``.
    ``sin_theta``: sin θ of the reference's bin centres; ``basis_t`` (k, 6,
    bins): the bases transposed, so every product runs along contiguous bins."""
    # As _query_angles, keeping sin θ' for the derivative.
    strain = (tensor[:, None, :] @ basis_t)[:, 0, :]
    sin_strained = np.clip(sin_theta / (1.0 + strain), -1.0, 1.0)
    angles = 2.0 * np.degrees(np.arcsin(sin_strained)) + shift[:, None]
    warped = np.interp(angles, _BIN_CENTRES, query, left=0.0, right=0.0)
    gradient = np.interp(angles, _BIN_CENTRES, slope, left=0.0, right=0.0)
    # d(angle)/dε = −2 tan θ' (degrees per unit strain), then through the basis.
    tan_strained = sin_strained / np.sqrt(np.maximum(1.0 - sin_strained**2, 1e-12))
    d_angle = -2.0 * np.degrees(tan_strained)
    jacobian = np.empty((basis_t.shape[0], 7, basis_t.shape[2]))  # (k, parameter, bin)
    jacobian[:, :6] = (gradient * d_angle)[:, None, :] * basis_t
    jacobian[:, 6] = gradient
    jacobian -= jacobian.mean(axis=2, keepdims=True)
    warped -= warped.mean(axis=1, keepdims=True)
    scale = _rowwise_dot(warped, target) / (_rowwise_dot(warped, warped) + 1e-12)
    scale = np.where(
        scale > 0, scale, np.linalg.norm(target, axis=1) / (np.linalg.norm(warped, axis=1) + 1e-12)
    )
    residual = target - scale[:, None] * warped
    m = scale[:, None, None] * jacobian
    normal = m @ m.transpose(0, 2, 1)
    # Levenberg–Marquardt damping: a small share of the mean curvature.
    damping = 1e-3 * np.trace(normal, axis1=1, axis2=2) / 7.0 + 1e-12
    normal += damping[:, None, None] * np.eye(7)
    step = np.linalg.solve(normal, m @ residual[..., None])[..., 0]
    tensor = tensor + np.clip(step[:, :6], -_MAX_STRAIN_STEP, _MAX_STRAIN_STEP)
    shift = shift + np.clip(step[:, 6], -_MAX_SHIFT_STEP_DEG, _MAX_SHIFT_STEP_DEG)
    return tensor, shift


def _bounded(tensor: NDArray[np.float64], departure_max: float) -> NDArray[np.float64]:
    """The tensor with each component's departure from the isotropic strain
    kept within ``departure_max``."""
    isotropic = tensor[:, :3].mean(axis=1)[:, None] * ISOTROPIC
    return isotropic + np.clip(tensor - isotropic, -departure_max, departure_max)


def _rowwise_dot(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    return (a[:, None, :] @ b[:, :, None])[:, 0, 0]
