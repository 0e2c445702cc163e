"""Reference intensity ratios: how strongly a phase diffracts per unit weight.

Weight fractions follow from a fit's scale factors through each phase's RIR
(I/I_c: the height of its strongest line against corundum's strongest in a
1:1 mixture by weight; Chung, J. Appl. Cryst. 7 (1974) 519):
w_i ∝ s_i / RIR_i, where s_i scales the phase's profile normalised to its
strongest point.

A measured reference's RIR is given (RockJock's phase table, a user's
value). A calculated one's follows from its structure (Hill & Howard,
J. Appl. Cryst. 20 (1987) 467): the pattern of a phase of weight fraction w
scales as w / (Z·M·V) times its absolute intensities |F|²·multiplicity·Lp, so
its strongest point per unit weight is K = max(profile) / (Z·M·V), and the
RIR is K / K_corundum, both profiled alike (Cu Kα, the library's default
peak widths).
"""

from __future__ import annotations

import functools

import numpy as np
from pymatgen.core import Lattice, Structure

from xrdid.profiles import render_sticks
from xrdid.sticks import StickPattern, simulate
from xrdid.wavelengths import CU_KALPHA

__all__ = ["calculated_rir", "corundum"]

# RIRs outside this range are not physical (I/I_c of real phases lie within
# 0.1–20; heavy-atom compounds reach ~20): a value beyond it is a bad input.
MIN_RIR = 1e-3
MAX_RIR = 1e3


def corundum() -> Structure:
    """α-Al₂O₃ (R-3c; Lewis, Schwarzenbach & Flack, Acta Cryst. A38 (1982) 733),
    the standard RIRs are measured against."""
    return Structure.from_spacegroup(
        "R-3c",
        Lattice.hexagonal(4.7589, 12.991),
        ["Al", "O"],
        [[0.0, 0.0, 0.35216], [0.30624, 0.0, 0.25]],
    )


def _peak_per_weight(sticks: StickPattern, scale: float, cell_mass: float, volume: float) -> float:
    """The strongest point of the phase's absolute profile per unit weight."""
    peak = float(render_sticks(sticks, wavelength=CU_KALPHA, normalise=False).max())
    return scale * peak / (cell_mass * volume)


@functools.cache
def _corundum_peak_per_weight() -> float:
    structure = corundum()
    sticks, scale = simulate(structure)
    return _peak_per_weight(
        sticks, scale, float(structure.composition.weight), float(structure.volume)
    )


def calculated_rir(sticks: StickPattern, scale: float, structure: Structure) -> float | None:
    """The RIR of a structure whose stick pattern is ``sticks`` with absolute
    scale ``scale`` (:func:`xrdid.sticks.simulate`); None when the cell gives
    none (no mass, volume or intensity)."""
    mass = float(structure.composition.weight)  # Z·M, amu per cell
    volume = float(structure.volume)  # Å³
    if not (mass > 0 and volume > 0 and np.isfinite(scale) and scale > 0):
        return None
    rir = _peak_per_weight(sticks, scale, mass, volume) / _corundum_peak_per_weight()
    return rir if MIN_RIR <= rir <= MAX_RIR else None
