"""Synthetic mixtures with known weight fractions, for the phase analysis's
calibration, tuning and evaluation.

A phase of weight fraction w diffracts w × RIR times as strongly (its
strongest point, at the library's default peak widths) as the same weight of
corundum (:mod:`xrdid.rir`), so a mixture's phases are scaled by w_i × RIR_i:

- **calculated** phases are simulated as a lab measurement of them all
  (:func:`xrdid.augment.simulate_measurement`: strain, shifts, widths,
  texture as the config says, background, counting noise), each phase's
  strongest reflection scaled so that its strongest point would be
  w_i × RIR_i at the default widths;
- **measured** references (RockJock's, whose RIRs are given) are summed as
  full-pattern programs (powdR) model a mixture: each profile slightly
  shifted, strained and broadened, scaled by w_i × RIR_i, on a random
  background with counting noise.

Both are preprocessed as uploads are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xrdid.augment import AugmentConfig, simulate_measurement
from xrdid.backgrounds import poisson_counts, random_background
from xrdid.grid import MODEL_GRID
from xrdid.pattern import Pattern, make_pattern
from xrdid.preprocess import BaselineMethod, PreprocessedPattern, preprocess
from xrdid.profiles import render_sticks
from xrdid.ranking.refine import PhaseShape, transformed
from xrdid.sticks import StickPattern
from xrdid.wavelengths import CU_KALPHA, Wavelength

__all__ = [
    "Mixture",
    "calculated_mixture",
    "measured_mixture",
    "random_weights",
]

# Weight fractions are drawn from a Dirichlet(1) and kept when every phase
# has at least this much (a 1 wt% phase is below what a lab scan shows).
MIN_WEIGHT = 0.04


@dataclass(frozen=True)
class Mixture:
    """A synthetic scan (as measured, and preprocessed as uploads are) and
    what it holds (indices into the caller's references)."""

    pattern: Pattern
    wavelength: Wavelength
    view: PreprocessedPattern
    members: tuple[int, ...]
    weight_percent: tuple[float, ...]


def random_weights(n: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Weight fractions of ``n`` phases, each at least MIN_WEIGHT."""
    while True:
        weights = rng.dirichlet(np.ones(n))
        if weights.min() >= MIN_WEIGHT or n == 1:
            return weights


def _area_per_height(sticks: StickPattern) -> float:
    """The strongest reflection's integrated intensity per strongest profile
    point, at the library's default widths (Cu Kα): converts an RIR's height
    ratio into the reflection scale :func:`simulate_measurement` takes."""
    height = float(render_sticks(sticks, wavelength=CU_KALPHA, normalise=False).max())
    area = float(sticks.intensities(CU_KALPHA.kalpha1_angstrom).max())
    return area / max(height, 1e-300)


def calculated_mixture(
    members: Sequence[int],
    sticks: Sequence[StickPattern],
    rirs: Sequence[float],
    weights: NDArray[np.float64],
    rng: np.random.Generator,
    cfg: AugmentConfig,
) -> Mixture:
    """A simulated measurement of ``sticks`` (one per member) at ``weights``."""
    strength = np.array(
        [w * r * _area_per_height(s) for w, r, s in zip(weights, rirs, sticks, strict=True)]
    )
    fractions = strength / strength.sum()
    main = int(np.argmax(fractions))
    others = [(sticks[i], float(fractions[i])) for i in range(len(sticks)) if i != main]
    grid, radiation, counts = simulate_measurement(sticks[main], rng, cfg, others)
    pattern = make_pattern(grid.two_theta_deg, counts)
    view = preprocess(pattern, wavelength=radiation, method=BaselineMethod.BEADS)
    return Mixture(pattern, radiation, view, tuple(members), tuple(float(100 * w) for w in weights))


def measured_mixture(
    members: Sequence[int],
    profiles: NDArray[np.floating],
    rirs: Sequence[float],
    weights: NDArray[np.float64],
    rng: np.random.Generator,
    max_shift_deg: float = 0.1,
    max_strain: float = 0.003,
    max_broadening_deg: float = 0.05,
) -> Mixture:
    """Measured reference ``profiles`` (model grid) summed at ``weights``,
    each moved a little (as one sample's phases differ from their references),
    on a background with counting noise."""
    shift = rng.uniform(-max_shift_deg, max_shift_deg)  # the instrument's, shared
    scan = np.zeros(MODEL_GRID.n_points)
    for profile, rir, weight in zip(profiles, rirs, weights, strict=True):
        shape = PhaseShape(
            shift_deg=shift,
            strain=float(rng.uniform(-max_strain, max_strain)),
            broadening_deg=float(rng.uniform(0.0, max_broadening_deg)),
        )
        scan += weight * rir * transformed(profile, shape)
    scan /= max(scan.max(), 1e-12)
    x = MODEL_GRID.two_theta_deg
    level = float(np.exp(rng.uniform(np.log(0.02), np.log(0.3))))
    background = random_background(rng, level, (float(x[0]), float(x[-1]))).evaluate(x)
    counts = poisson_counts(
        rng, scan + background, float(np.exp(rng.uniform(np.log(3e3), np.log(1e5))))
    )
    pattern = make_pattern(x, counts)
    view = preprocess(pattern, wavelength=CU_KALPHA, method=BaselineMethod.BEADS)
    return Mixture(pattern, CU_KALPHA, view, tuple(members), tuple(float(100 * w) for w in weights))
