"""Fit several references to a scan at once: scales, 2θ shifts, strains, widths.

Each phase's model is its reference profile on the model grid (the stored
one: a calculated reference's default rendering, or a measured reference as
preprocessed), broadened by a Gaussian of σ (area kept: broadening cannot
narrow a peak, so a reference is stored at an instrument's narrow widths;
a product in Fourier space, as cheap at any width, with an exact derivative
by σ²), strained (every d-spacing × (1 + ε), which moves Kα1 and Kα2 peaks
exactly as a real cell change does; given a calculated reference's strain
basis, :mod:`xrdid.ranking.strain_tensor`, ε per reflection from a strain
tensor: a sample's cell rarely strains evenly, and a look-alike of another
c/a fits an unevenly strained phase better than the right reference strained
evenly) and shifted by δ in the instrument's own 2θ (zero offset,
displacement: a few hundredths of a degree at any wavelength, which the
model grid shows ×2.2–3.8 for Mo or Ag and ×0.2–0.7 for Cr, uneven with
angle). The scan is
modelled as Σ s_j · phase_j with s_j ≥ 0, all parameters refined together
by bounded least squares (damped Gauss–Newton steps projected onto the
bounds, a parameter held at a bound it would cross); the Jacobian is
analytic, so an iteration costs a few profile transforms per phase.

Scales are in units of each reference's own strongest point (at its stored
width): with the phases' reference intensity ratios they give weight
fractions (:mod:`xrdid.ranking.quantify`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.fft
from numpy.typing import NDArray
from scipy.optimize import nnls

from xrdid.grid import MODEL_GRID
from xrdid.ranking.config import SERVED
from xrdid.ranking.rows import grid_segments
from xrdid.ranking.strain_tensor import ISOTROPIC, StrainBasis, basis_bins

__all__ = ["JointFit", "PhaseShape", "ShapeLimits", "instrument_shift", "refine", "transformed"]

_GRID = MODEL_GRID.two_theta_deg
_STEP = MODEL_GRID.step_deg
# Stop when an iteration lowers the misfit by less than this share: scales
# and shapes then move by less than anything a lab reads.
_TOLERANCE = 1e-3
# Gaussian σ (°) both scan and references are smoothed by in turn, coarse to fine.
_SMOOTHING_DEG = (0.1, 0.0)
# The least damping (a share of the normal equations' diagonal) after a
# step that did not lower the misfit.
_DAMPING_AFTER_FAILURE = 0.3


@dataclass(frozen=True)
class PhaseShape:
    """How a reference is moved and broadened to fit the scan."""

    # δ: the scan shows the reference this much higher in the instrument's 2θ
    # (its own radiation's, not the model grid's).
    shift_deg: float = 0.0
    # ε: the scan's d-spacings are the reference's × (1 + ε); with a tensor,
    # its isotropic part (the mean of xx, yy, zz).
    strain: float = 0.0
    broadening_deg: float = 0.0  # σ of the Gaussian added to the reference's peaks
    # The strain tensor (xx, yy, zz, xy, xz, yz) of a calculated reference,
    # refined through its strain basis: each reflection's d × (1 + ĝᵀ E ĝ).
    # None: the isotropic ``strain`` alone.
    tensor: tuple[float, float, float, float, float, float] | None = None


@dataclass(frozen=True)
class ShapeLimits:
    """Bounds of the shape parameters (the ranking's ranges, with room)."""

    # Zero offset and displacement reach ±0.3° at low angle (the ranking's
    # range); strains ±4%; crystallites of ~10 nm broaden peaks by σ ≈ 0.6°.
    shift_deg: float = 0.45
    strain: float = 0.04
    broadening_deg: float = 0.6
    # A tensor's off-diagonal components: the ranking's anisotropic range.
    anisotropic: float = SERVED.anisotropic_strain_max


# Broadening is circular in Fourier space: padding of 4σ of the widest
# broadening on each side keeps the tails from wrapping round (3e-4 of a peak).
_PAD = scipy.fft.next_fast_len(_GRID.size + 2 * math.ceil(4 * ShapeLimits().broadening_deg / _STEP))
# ln of a Gaussian's transfer function per unit variance: −2π²f² (f in cycles/deg).
_LOG_TRANSFER_PER_DEG2 = -2.0 * np.pi**2 * scipy.fft.rfftfreq(_PAD, d=_STEP) ** 2


def transformed(
    profile: NDArray[np.floating],
    shape: PhaseShape,
    basis: StrainBasis | None = None,
    wavelength_ratio: float = 1.0,
) -> NDArray[np.float64]:
    """``profile`` (L,) on the model grid once broadened, strained (through
    ``basis``, the reference's strain basis, when the shape has a tensor) and
    shifted, as a scan at ``wavelength_ratio`` × the model grid's wavelength
    shows it."""
    parameters = _parameters(shape, basis is not None)
    sin_half, cos_half = _half_angles(wavelength_ratio)
    angles = _reading_angles(parameters, basis, sin_half, cos_half, _GRID, wavelength_ratio).angles
    return np.interp(angles, _GRID, _broadened(profile, shape.broadening_deg), left=0.0, right=0.0)


def _broadened(profile: NDArray[np.floating], sigma_deg: float) -> NDArray[np.float64]:
    values = np.asarray(profile, dtype=np.float64)
    if sigma_deg <= 1e-6:
        return values
    return _from_spectrum(_spectra(values), sigma_deg**2)


def _spectra(profiles: NDArray[np.float64]) -> NDArray[np.complex128]:
    """Profiles (…, L) in Fourier space, zero-padded (see :data:`_PAD`)."""
    spectra: NDArray[np.complex128] = scipy.fft.rfft(profiles, n=_PAD, axis=-1)
    return spectra


def _from_spectrum(
    spectrum: NDArray[np.complex128], variance_deg2: float, by_variance: bool = False
) -> NDArray[np.float64]:
    """The profile of ``spectrum`` broadened by a Gaussian of variance
    ``variance_deg2``, or (``by_variance``) that profile's derivative by the variance."""
    transfer = np.exp(_LOG_TRANSFER_PER_DEG2 * variance_deg2)
    if by_variance:
        transfer *= _LOG_TRANSFER_PER_DEG2
    out: NDArray[np.float64] = scipy.fft.irfft(spectrum * transfer, n=_PAD)[..., : _GRID.size]
    return out


# Each phase's parameters: δ, the six tensor components, σ² (a broadening's
# variance, not σ, so that its derivative at no broadening is not zero). A
# reference without a strain basis strains isotropically by the first
# component; its other five are held at zero.
_PER_PHASE = 8
_TENSOR = slice(1, 7)
# 2θ in degrees from half an angle in radians.
_DEG_PER_HALF_RAD = 360.0 / np.pi


def _parameters(shape: PhaseShape, with_basis: bool) -> NDArray[np.float64]:
    if not with_basis:
        tensor = np.array([shape.strain, 0.0, 0.0, 0.0, 0.0, 0.0])
    elif shape.tensor is not None:
        tensor = np.asarray(shape.tensor, dtype=np.float64)
    else:
        tensor = shape.strain * ISOTROPIC
    return np.concatenate([[shape.shift_deg], tensor, [shape.broadening_deg**2]])


def _shape(parameters: NDArray[np.float64], with_basis: bool) -> PhaseShape:
    tensor = parameters[_TENSOR]
    sigma = float(np.sqrt(max(parameters[7], 0.0)))
    if not with_basis:
        return PhaseShape(float(parameters[0]), float(tensor[0]), sigma)
    components = tuple(float(t) for t in tensor)
    return PhaseShape(
        float(parameters[0]),
        float(np.mean(tensor[:3])),
        sigma,
        (components[0], components[1], components[2], components[3], components[4], components[5]),
    )


# sin and cos of each grid angle's half: every reading angle follows from
# them by angle addition (the shift is the only angle that changes).
_SIN_HALF = np.sin(np.radians(_GRID) / 2.0)
_COS_HALF = np.cos(np.radians(_GRID) / 2.0)


@functools.lru_cache(maxsize=8)
def _half_angles(wavelength_ratio: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """sin and cos of half of each grid angle as a scan at ``wavelength_ratio``
    × the grid's wavelength measured it: sin(X/2) = ratio · sin(x/2) (Bragg's
    law at one d). Angles beyond that radiation's reach read as 180°."""
    if wavelength_ratio == 1.0:
        return _SIN_HALF, _COS_HALF
    sin_half = np.minimum(wavelength_ratio * _SIN_HALF, 1.0)
    return sin_half, np.sqrt(1.0 - sin_half * sin_half)


def instrument_shift(model_grid_shift_deg: float, wavelength_ratio: float) -> float:
    """A 2θ shift on the model grid as a shift of the instrument's 2θ, to first
    order at low angle (where dX/dx = the ratio): a start for the refinement."""
    return model_grid_shift_deg * wavelength_ratio


@dataclass(frozen=True)
class _Angles:
    """Where a reference is read for each scan angle (:func:`_reading_angles`),
    with what their derivatives need: most readings are never differentiated
    (a step tried and not taken), so the derivatives wait to be asked for."""

    angles: NDArray[np.float64]
    bins: NDArray[np.intp] | None  # each angle's strain basis bin (None: isotropic)
    sin0: NDArray[np.float64]  # sin and cos of (X − δ) / 2, over the wavelength ratio
    cos0: NDArray[np.float64]
    k: NDArray[np.float64] | float  # 1 + ε
    sin_strained: NDArray[np.float64]

    def derivatives(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The angles' derivatives by δ and by the strain there."""
        cos_strained = np.sqrt(np.maximum(1.0 - self.sin_strained * self.sin_strained, 1e-12))
        return -self.k * self.cos0 / cos_strained, _DEG_PER_HALF_RAD * self.sin0 / cos_strained


def _reading_angles(
    parameters: NDArray[np.float64],
    basis: NDArray[np.floating] | None,
    sin_half: NDArray[np.float64],
    cos_half: NDArray[np.float64],
    two_theta_deg: NDArray[np.float64],
    wavelength_ratio: float = 1.0,
) -> _Angles:
    """Where the reference is read for each scan angle x (``two_theta_deg``;
    the sines and cosines of the halves of the angles X the instrument
    measured them at, :func:`_half_angles`): its d = the scan's d / (1 + ε),
    after the zero shift δ of X. ε is the isotropic strain, or with a basis
    the tensor's strain where the isotropic strain reads the reference (to
    first order: the basis's bins are 0.06° wide and vary slowly)."""
    shift = float(parameters[0])
    tensor = parameters[_TENSOR]
    s, c = np.sin(np.radians(shift) / 2.0), np.cos(np.radians(shift) / 2.0)
    # sin and cos of (X − δ) / 2, over the ratio: the first is the sine of
    # half the model-grid angle the unstrained reference is read at.
    sin0 = sin_half * c - cos_half * s
    cos0 = cos_half * c + sin_half * s
    if wavelength_ratio != 1.0:
        sin0, cos0 = sin0 / wavelength_ratio, cos0 / wavelength_ratio
    bins: NDArray[np.intp] | None = None
    strain: NDArray[np.float64] | float = float(tensor[0])
    if basis is not None:
        isotropic = float(np.mean(tensor[:3]))
        if wavelength_ratio == 1.0:
            unstrained, cos_unstrained = two_theta_deg - shift, cos0
        else:
            unstrained = _DEG_PER_HALF_RAD * np.arcsin(np.clip(sin0, -1.0, 1.0))
            cos_unstrained = np.sqrt(np.maximum(1.0 - sin0 * sin0, 1e-12))
        bins = basis_bins(unstrained + isotropic * _DEG_PER_HALF_RAD * sin0 / cos_unstrained)
        strain = (np.asarray(basis, dtype=np.float64) @ tensor)[bins]
    k = 1.0 + strain
    sin_strained = np.minimum(sin0 * k, 1.0)
    angles = _DEG_PER_HALF_RAD * np.arcsin(sin_strained)
    return _Angles(angles, bins, sin0, cos0, k, sin_strained)


@dataclass(frozen=True)
class JointFit:
    """Phases fitted together to a scan (arrays over the model grid, zero
    outside the scan's coverage)."""

    scales: NDArray[np.float64]  # (n,) s_j ≥ 0
    scale_sd: NDArray[np.float64]  # (n,) their standard deviations (least-squares covariance)
    shapes: tuple[PhaseShape, ...]
    components: NDArray[np.float64]  # (n, L) s_j × phase_j
    residual: NDArray[np.float64]  # (L,) scan − Σ components
    misfit: float  # Σ residual² over the covered points

    @property
    def model(self) -> NDArray[np.float64]:
        return self.components.sum(axis=0)

    def reordered(self, order: Sequence[int] | NDArray[np.intp]) -> JointFit:
        """The same fit with its phases in ``order``."""
        index = np.asarray(order, dtype=np.intp)
        return replace(
            self,
            scales=self.scales[index],
            scale_sd=self.scale_sd[index],
            shapes=tuple(self.shapes[i] for i in index),
            components=self.components[index],
        )


def refine(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    profiles: NDArray[np.floating],
    start: Sequence[PhaseShape],
    limits: ShapeLimits = ShapeLimits(),
    max_iterations: int = 10,
    bases: Sequence[StrainBasis | None] | None = None,
    held: int = 0,
    wavelength_ratio: float = 1.0,
) -> JointFit:
    """Fit ``profiles`` (n, L) to the scan (``intensity`` over ``mask``),
    starting from the shapes ``start``, within ``limits``: first with scan
    and references smoothed alike, so that peaks a few widths apart still
    pull each other, then as they are. A phase with a strain basis (``bases``, None for a
    measured reference) refines a strain tensor, the others an isotropic
    strain. The first ``held`` phases keep their start shapes, only their
    scales refined: one phase fitted among others already refined, at the
    cost of one. Shifts are of the 2θ of the scan's radiation, at
    ``wavelength_ratio`` × the model grid's wavelength."""
    n = len(start)
    bases = list(bases) if bases is not None else [None] * n
    with_basis = [b is not None for b in bases]
    covered = np.asarray(mask, dtype=bool)
    scan = np.where(covered, np.asarray(intensity, dtype=np.float64), 0.0)
    refs = np.asarray(profiles, dtype=np.float64).reshape(n, covered.size)
    lower, upper = _bounds(limits, with_basis)
    starts = np.zeros(0)
    if n:
        starts = np.concatenate([_parameters(s, b) for s, b in zip(start, with_basis, strict=True)])
    # Held phases keep their shapes, within the limits or not (a phase tried
    # under narrower limits beside others refined under the full ones).
    kept = slice(0, held * _PER_PHASE)
    lower[kept] = np.minimum(lower[kept], starts[kept])
    upper[kept] = np.maximum(upper[kept], starts[kept])
    shapes = np.clip(starts, lower, upper)
    fixed = np.zeros(n * (1 + _PER_PHASE), dtype=bool)
    fixed[n : n + held * _PER_PHASE] = True
    # A parameter whose bounds meet (a measured reference's tensor beyond its
    # isotropic strain) is not one: it stays out of the normal equations.
    fixed |= np.concatenate([np.zeros(n, dtype=bool), lower == upper])
    x: NDArray[np.float64] | None = None
    for smoothing in _SMOOTHING_DEG:
        y = _broadened(scan, smoothing)[covered]
        smoothed = np.stack([_broadened(r, smoothing) for r in refs]) if n else refs
        problem = _Problem(y, smoothed, covered, bases, held, wavelength_ratio)
        if x is None:
            scales = nnls(problem.models(shapes).T, y)[0] if n else np.zeros(0)
            x = np.concatenate([scales, shapes])
        x, jac = _levenberg_marquardt(
            problem.residual,
            problem.jacobian,
            x,
            np.concatenate([np.zeros(n), lower]),
            np.concatenate([np.full(n, np.inf), upper]),
            max_iterations,
            fixed,
        )
    assert x is not None
    # The last level is the scan and references as they are.
    if jac is None:
        jac = problem.jacobian(x)
    y = problem.y
    models = problem.models(x[n:])
    scales = x[:n]
    fitted = scales @ models if n else np.zeros(y.size)
    misfit = float(np.sum((y - fitted) ** 2))
    components = np.zeros((n, covered.size))
    components[:, covered] = scales[:, None] * models
    full_residual = np.zeros(covered.size)
    full_residual[covered] = y - fitted
    return JointFit(
        scales=scales,
        scale_sd=_scale_sd(jac, misfit, y.size, n),
        shapes=tuple(
            _shape(p, b) for p, b in zip(x[n:].reshape(n, _PER_PHASE), with_basis, strict=True)
        ),
        components=components,
        residual=full_residual,
        misfit=misfit,
    )


def _bounds(
    limits: ShapeLimits, with_basis: Sequence[bool]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Lower and upper bounds of every phase's parameters (a tensor's
    diagonal within the isotropic bound, so its mean is too)."""
    lower, upper = [], []
    for basis in with_basis:
        if basis:
            tensor = [limits.strain] * 3 + [limits.anisotropic] * 3
        else:
            tensor = [limits.strain, 0.0, 0.0, 0.0, 0.0, 0.0]
        upper += [limits.shift_deg, *tensor, limits.broadening_deg**2]
        lower += [-limits.shift_deg, *(-t for t in tensor), 0.0]
    return np.array(lower, dtype=np.float64), np.array(upper, dtype=np.float64)


@dataclass(frozen=True)
class _Reading:
    """One phase at one shape, on the scan's covered angles."""

    read: _Angles  # where the reference is read
    broad: NDArray[np.float64]  # the reference broadened
    model: NDArray[np.float64]  # read at the angles


class _Problem:
    """The least-squares problem of one smoothing level: the scan's covered
    points ``y`` against the references, parameters (scales, then each
    phase's δ, tensor, σ²)."""

    def __init__(
        self,
        y: NDArray[np.float64],
        refs: NDArray[np.float64],
        covered: NDArray[np.bool_],
        bases: Sequence[StrainBasis | None],
        held: int = 0,
        wavelength_ratio: float = 1.0,
    ) -> None:
        self.y, self.refs, self.covered = y, refs, covered
        self.n = refs.shape[0]
        self.held = held  # the first phases, whose shapes stay (no shape derivatives)
        self._spectra = _spectra(refs)
        self._angles = _GRID[covered]
        sin_half, cos_half = _half_angles(wavelength_ratio)
        self._sin, self._cos = sin_half[covered], cos_half[covered]
        self._ratio = wavelength_ratio
        self._bases = [None if b is None else np.asarray(b, dtype=np.float64) for b in bases]
        # A phase's reading angles and broadened profile at its last shape:
        # the Jacobian is taken where the residual was just evaluated.
        self._cache: dict[tuple[int, bytes], _Reading] = {}

    def _phase(self, j: int, parameters: NDArray[np.float64]) -> _Reading:
        key = (j, parameters.tobytes())
        if key not in self._cache:
            if len(self._cache) > 4 * self.n:
                self._cache.clear()
            read = _reading_angles(
                parameters, self._bases[j], self._sin, self._cos, self._angles, self._ratio
            )
            variance = float(parameters[7])
            broad = _from_spectrum(self._spectra[j], variance) if variance > 1e-12 else self.refs[j]
            model = np.interp(read.angles, _GRID, broad, left=0.0, right=0.0)
            self._cache[key] = _Reading(read, broad, model)
        return self._cache[key]

    def models(self, shape_vector: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.n == 0:
            return np.zeros((0, self.y.size))
        per_phase = shape_vector.reshape(self.n, _PER_PHASE)
        return np.stack([self._phase(j, p).model for j, p in enumerate(per_phase)])

    def residual(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        return x[: self.n] @ self.models(x[self.n :]) - self.y

    def jacobian(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        n = self.n
        # Column-major: the Jacobian is written and read column by column.
        jac = np.empty((n * (1 + _PER_PHASE), self.y.size)).T
        for j, parameters in enumerate(x[n:].reshape(n, _PER_PHASE)):
            reading = self._phase(j, parameters)
            first = n + _PER_PHASE * j
            jac[:, j] = reading.model
            if j < self.held:
                jac[:, first : first + _PER_PHASE] = 0.0
                continue
            basis, read = self._bases[j], reading.read
            slope = _slope(reading.broad, read.angles)
            by_variance = np.interp(
                read.angles,
                _GRID,
                _from_spectrum(self._spectra[j], float(parameters[7]), by_variance=True),
                left=0.0,
                right=0.0,
            )
            by_shift, by_strain = read.derivatives()
            jac[:, first] = x[j] * slope * by_shift
            strained = x[j] * slope * by_strain  # the model's derivative by the strain
            if basis is None:  # the first component is the isotropic strain
                jac[:, first + 1] = strained
                jac[:, first + 2 : first + 7] = 0.0
            else:
                jac[:, first + 1 : first + 7] = strained[:, None] * basis[read.bins]
            jac[:, first + 7] = x[j] * by_variance
        return jac


def _slope(profile: NDArray[np.float64], angles: NDArray[np.float64]) -> NDArray[np.float64]:
    """The slope of ``profile`` as linearly interpolated (np.interp), at
    ``angles``: the exact derivative of the model (0 off the grid)."""
    segment, inside = grid_segments(angles)
    slopes: NDArray[np.float64] = np.diff(profile)[segment] / _STEP
    return np.where(inside, slopes, 0.0)


def _levenberg_marquardt(
    residual: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    jacobian: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    x0: NDArray[np.float64],
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    max_iterations: int,
    fixed: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Bounded least squares by damped Gauss–Newton steps projected onto the
    bounds, each step solved for the parameters not held at a bound (an
    active set) nor ``fixed``: a handful of parameters against thousands of
    points, so the normal equations are tiny. Returns the solution and its
    Jacobian there (None when the last step moved it: only the final level
    needs it, for the scales' uncertainties)."""
    x = np.clip(x0, lower, upper)
    if x.size == 0:
        return x, np.zeros((residual(x).size, 0))
    r = residual(x)
    misfit = float(r @ r)
    damping = 1e-3
    jac: NDArray[np.float64] | None = None
    for _ in range(max_iterations):
        jac = jacobian(x)
        gradient = jac.T @ r
        # Parameters at a bound that the step would push past it are held
        # there: a step clipped afterwards is no longer a descent step for the rest.
        free = ~(((x <= lower) & (gradient > 0)) | ((x >= upper) & (gradient < 0)))
        if fixed is not None:
            free &= ~fixed
        # Only the free parameters' normal equations: phases held at their
        # shapes leave most columns out.
        free_jac = jac[:, free]
        normal_free = free_jac.T @ free_jac
        diagonal = np.diag(normal_free) + 1e-12
        improved = False
        while damping < 1e8:
            step = np.zeros_like(x)
            step[free] = np.linalg.solve(normal_free + damping * np.diag(diagonal), -gradient[free])
            trial = np.clip(x + step, lower, upper)
            r_trial = residual(trial)
            trial_misfit = float(r_trial @ r_trial)
            if trial_misfit < misfit:
                improved = True
                break
            # Damping much below the diagonal barely changes a step that
            # failed: go straight to where it shortens the step.
            damping = max(4.0 * damping, _DAMPING_AFTER_FAILURE)
        if not improved:
            break
        change = (misfit - trial_misfit) / max(misfit, 1e-300)
        x, r, misfit, jac = trial, r_trial, trial_misfit, None
        damping = max(damping / 3.0, 1e-7)
        if change < _TOLERANCE:
            break
    return x, jac


def _scale_sd(jac: NDArray[np.float64], misfit: float, points: int, n: int) -> NDArray[np.float64]:
    """Standard deviations of the scales from the least-squares covariance
    σ² (JᵀJ)⁻¹, σ² = misfit / (points − parameters)."""
    if n == 0:
        return np.zeros(0)
    dof = max(points - jac.shape[1], 1)
    normal = jac.T @ jac
    covariance = np.linalg.pinv(normal) * (misfit / dof)
    return np.sqrt(np.clip(np.diag(covariance)[:n], 0.0, None))
