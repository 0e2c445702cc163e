"""Fit several references to a scan at once: scales, 2θ shifts, strains, widths.

Each phase's model is its reference profile on the model grid (the stored
one: a calculated reference's default rendering, or a measured reference as
preprocessed), broadened by a Gaussian of σ (area kept: broadening cannot
narrow a peak, so a reference is stored at an instrument's narrow widths;
a product in Fourier space, as cheap at any width, with an exact derivative
by σ²),
strained isotropically (every d-spacing × (1 + ε), which moves Kα1 and Kα2
peaks exactly as a real cell change does) and shifted by δ in 2θ (zero offset,
displacement). The scan is modelled as Σ s_j · phase_j with s_j ≥ 0, all
parameters refined together by bounded least squares (damped Gauss–Newton
steps projected onto the bounds); the Jacobian is analytic, so an iteration
costs a few profile transforms per phase.

Scales are in units of each reference's own strongest point (at its stored
width): with the phases' reference intensity ratios they give weight
fractions (:mod:`xrdid.ranking.quantify`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft
from numpy.typing import NDArray
from scipy.optimize import nnls

from xrdid.grid import MODEL_GRID

__all__ = ["JointFit", "PhaseShape", "ShapeLimits", "refine", "transformed"]

_GRID = MODEL_GRID.two_theta_deg
_STEP = MODEL_GRID.step_deg
# Stop when an iteration lowers the misfit by less than this share: scales
# and shapes then move by less than anything a lab reads.
_TOLERANCE = 1e-3
# Gaussian σ (°) both scan and references are smoothed by in turn, coarse to fine.
_SMOOTHING_DEG = (0.1, 0.0)


@dataclass(frozen=True)
class PhaseShape:
    """How a reference is moved and broadened to fit the scan."""

    shift_deg: float = 0.0  # δ: the scan shows the reference this much higher in 2θ
    strain: float = 0.0  # ε: the scan's d-spacings are the reference's × (1 + ε)
    broadening_deg: float = 0.0  # σ of the Gaussian added to the reference's peaks


@dataclass(frozen=True)
class ShapeLimits:
    """Bounds of the shape parameters (the ranking's ranges, with room)."""

    # Zero offset and displacement reach ±0.3° at low angle (the ranking's
    # range); strains ±4%; crystallites of ~10 nm broaden peaks by σ ≈ 0.6°.
    shift_deg: float = 0.45
    strain: float = 0.04
    broadening_deg: float = 0.6


# Broadening is circular in Fourier space: padding of 4σ of the widest
# broadening on each side keeps the tails from wrapping round (3e-4 of a peak).
_PAD = scipy.fft.next_fast_len(_GRID.size + 2 * math.ceil(4 * ShapeLimits().broadening_deg / _STEP))
# ln of a Gaussian's transfer function per unit variance: −2π²f² (f in cycles/deg).
_LOG_TRANSFER_PER_DEG2 = -2.0 * np.pi**2 * scipy.fft.rfftfreq(_PAD, d=_STEP) ** 2


def transformed(profile: NDArray[np.floating], shape: PhaseShape) -> NDArray[np.float64]:
    """``profile`` (L,) on the model grid once broadened, strained and shifted."""
    angles, _, _ = _reference_angles(shape, _GRID)
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


def _reference_angles(
    shape: PhaseShape, two_theta_deg: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Where the reference is read for each angle x of the scan (its d = the
    scan's d / (1 + ε), after the zero shift δ), and that angle's derivatives
    by δ and by ε."""
    half = np.radians(two_theta_deg - shape.shift_deg) / 2.0
    k = 1.0 + shape.strain
    sin_half = np.clip(np.sin(half) * k, -1.0, 1.0)
    angles = 2.0 * np.degrees(np.arcsin(sin_half))
    cos_half = np.sqrt(np.maximum(1.0 - sin_half**2, 1e-12))
    by_shift = -k * np.cos(half) / cos_half
    by_strain = 2.0 * np.degrees(np.sin(half) / cos_half)
    return angles, by_shift, by_strain


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


# The refinement moves each phase's (δ, ε, σ²): a broadening's variance, not
# σ, so that its derivative at no broadening is not zero.
def _shape_vector(shapes: Sequence[PhaseShape]) -> NDArray[np.float64]:
    return np.array(
        [[s.shift_deg, s.strain, s.broadening_deg**2] for s in shapes], dtype=np.float64
    ).reshape(-1)


def _shapes(vector: NDArray[np.float64]) -> tuple[PhaseShape, ...]:
    return tuple(
        PhaseShape(float(d), float(e), float(np.sqrt(max(v, 0.0))))
        for d, e, v in vector.reshape(-1, 3)
    )


def refine(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    profiles: NDArray[np.floating],
    start: Sequence[PhaseShape],
    limits: ShapeLimits = ShapeLimits(),
    max_iterations: int = 10,
) -> JointFit:
    """Fit ``profiles`` (n, L) to the scan (``intensity`` over ``mask``),
    starting from the shapes ``start``: first with scan and references
    smoothed alike, so that peaks a few widths apart still pull each other,
    then as they are."""
    n = len(start)
    covered = np.asarray(mask, dtype=bool)
    scan = np.where(covered, np.asarray(intensity, dtype=np.float64), 0.0)
    refs = np.asarray(profiles, dtype=np.float64).reshape(n, covered.size)
    lower = np.tile([-limits.shift_deg, -limits.strain, 0.0], n)
    upper = np.tile([limits.shift_deg, limits.strain, limits.broadening_deg**2], n)
    shapes = np.clip(_shape_vector(start), lower, upper)
    x: NDArray[np.float64] | None = None
    jac = np.zeros((int(covered.sum()), 4 * n))
    for smoothing in _SMOOTHING_DEG:
        y = _broadened(scan, smoothing)[covered]
        smoothed = np.stack([_broadened(r, smoothing) for r in refs]) if n else refs
        problem = _Problem(y, smoothed, covered)
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
        )
    assert x is not None
    y = scan[covered]
    models = _Problem(y, refs, covered).models(x[n:])
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
        shapes=_shapes(x[n:]),
        components=components,
        residual=full_residual,
        misfit=misfit,
    )


class _Problem:
    """The least-squares problem of one smoothing level: the scan's covered
    points ``y`` against the references, parameters (scales, then each
    phase's δ, ε, σ²)."""

    def __init__(
        self, y: NDArray[np.float64], refs: NDArray[np.float64], covered: NDArray[np.bool_]
    ) -> None:
        self.y, self.refs, self.covered = y, refs, covered
        self.n = refs.shape[0]
        self._spectra = _spectra(refs)
        self._angles = _GRID[covered]
        # A phase's reading angles and broadened profile at its last shape:
        # the Jacobian is taken where the residual was just evaluated.
        self._cache: dict[tuple[int, float, float, float], tuple[NDArray[np.float64], ...]] = {}

    def _phase(self, j: int, shape: PhaseShape) -> tuple[NDArray[np.float64], ...]:
        """(reading angles, their derivatives by δ and ε, broadened profile, model)."""
        key = (j, shape.shift_deg, shape.strain, shape.broadening_deg)
        if key not in self._cache:
            if len(self._cache) > 4 * self.n:
                self._cache.clear()
            angles, by_shift, by_strain = _reference_angles(shape, self._angles)
            broad = (
                _from_spectrum(self._spectra[j], shape.broadening_deg**2)
                if shape.broadening_deg > 1e-6
                else self.refs[j]
            )
            model = np.interp(angles, _GRID, broad, left=0.0, right=0.0)
            self._cache[key] = (angles, by_shift, by_strain, broad, model)
        return self._cache[key]

    def models(self, shape_vector: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.n == 0:
            return np.zeros((0, self.y.size))
        return np.stack([self._phase(j, shape)[4] for j, shape in enumerate(_shapes(shape_vector))])

    def residual(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        return x[: self.n] @ self.models(x[self.n :]) - self.y

    def jacobian(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        n = self.n
        jac = np.empty((self.y.size, 4 * n))
        for j, shape in enumerate(_shapes(x[n:])):
            angles, by_shift, by_strain, broad, model = self._phase(j, shape)
            slope = np.interp(angles, _GRID, np.gradient(broad, _STEP), left=0.0, right=0.0)
            by_variance = np.interp(
                angles,
                _GRID,
                _from_spectrum(self._spectra[j], shape.broadening_deg**2, by_variance=True),
                left=0.0,
                right=0.0,
            )
            jac[:, j] = model
            jac[:, n + 3 * j] = x[j] * slope * by_shift
            jac[:, n + 3 * j + 1] = x[j] * slope * by_strain
            jac[:, n + 3 * j + 2] = x[j] * by_variance
        return jac


def _levenberg_marquardt(
    residual: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    jacobian: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    x0: NDArray[np.float64],
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    max_iterations: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Bounded least squares by damped Gauss–Newton steps projected onto the
    bounds: a handful of parameters against thousands of points, so the
    normal equations are tiny. Returns the solution and its Jacobian."""
    x = np.clip(x0, lower, upper)
    if x.size == 0:
        return x, np.zeros((residual(x).size, 0))
    r = residual(x)
    misfit = float(r @ r)
    damping = 1e-3
    jac = jacobian(x)
    for _ in range(max_iterations):
        normal = jac.T @ jac
        gradient = jac.T @ r
        diagonal = np.diag(normal) + 1e-12
        improved = False
        while damping < 1e8:
            step = np.linalg.solve(normal + damping * np.diag(diagonal), -gradient)
            trial = np.clip(x + step, lower, upper)
            r_trial = residual(trial)
            trial_misfit = float(r_trial @ r_trial)
            if trial_misfit < misfit:
                improved = True
                break
            damping *= 4.0
        if not improved:
            break
        change = (misfit - trial_misfit) / max(misfit, 1e-300)
        x, r, misfit = trial, r_trial, trial_misfit
        damping = max(damping / 3.0, 1e-7)
        jac = jacobian(x)
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
