"""Structure → stick pattern: reflection positions, intensities and hkl.

pymatgen's :class:`XRDCalculator` computes the structure factors (atomic
scattering factors, occupancies, multiplicities). We keep its result in a
wavelength-independent form, d-spacing and |F|²·multiplicity, so a stick
pattern computed once can be placed at any wavelength, strained, textured or
re-broadened later without touching the structure again.
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from pymatgen.core import Lattice, Structure

from xrdid.errors import SimulationError, SimulationTooLargeError

if TYPE_CHECKING:
    from pymatgen.analysis.diffraction.xrd import XRDCalculator
from xrdid.grid import MODEL_GRID, d_to_two_theta

logger = logging.getLogger(__name__)

# Stick patterns are computed at Cu Kα1 over 2θ 2–110°: d = 44 Å … 0.94 Å,
# which covers the model grid (d ≥ 1.09 Å) with room for ±3% lattice strain
# and for the wider d-range of other wavelengths.
STICK_WAVELENGTH_ANGSTROM = MODEL_GRID.wavelength_angstrom
STICK_TWO_THETA_RANGE_DEG = (2.0, 110.0)

# Reflections weaker than this share of the strongest one are dropped: below
# any measurement's noise and they only cost time when profiling.
MIN_RELATIVE_INTENSITY = 1e-4

# A generic isotropic displacement parameter B (Å²) applied when a pattern is
# placed at a wavelength: room-temperature inorganic solids average 0.5–1.5 Å²,
# and without it high-angle intensities are overestimated.
DEFAULT_B_ISO_ANGSTROM2 = 1.0


@dataclass(frozen=True)
class StickPattern:
    """Reflections of one structure, independent of wavelength.

    Attributes
    ----------
    d_angstrom : (n,) float, decreasing (so 2θ increases)
    structure_factor : (n,) float, |F|² × multiplicity, max 1
    hkl : (n, 3) int, one representative Miller index per reflection family
    reciprocal_lattice : (3, 3) float, rows a*, b*, c* in Cartesian Å⁻¹ (no 2π),
        so ``|hkl @ reciprocal_lattice| = 1/d``; lets augmentation strain the
        cell anisotropically
    """

    d_angstrom: NDArray[np.float64]
    structure_factor: NDArray[np.float64]
    hkl: NDArray[np.int64]
    reciprocal_lattice: NDArray[np.float64]

    @property
    def n_reflections(self) -> int:
        return int(self.d_angstrom.size)

    def two_theta_deg(self, wavelength_angstrom: float) -> NDArray[np.float64]:
        """Reflection positions at a wavelength (NaN where λ > 2d)."""
        return d_to_two_theta(self.d_angstrom, wavelength_angstrom)

    def intensities(
        self,
        wavelength_angstrom: float,
        b_iso_angstrom2: float = DEFAULT_B_ISO_ANGSTROM2,
    ) -> NDArray[np.float64]:
        """Integrated intensities at a wavelength: Lorentz-polarisation and
        Debye–Waller factors applied (0 where the reflection is unreachable)."""
        two_theta = self.two_theta_deg(wavelength_angstrom)
        reachable = np.isfinite(two_theta)
        theta = np.radians(np.where(reachable, two_theta, 90.0) / 2.0)
        debye_waller = np.exp(-b_iso_angstrom2 / (2.0 * self.d_angstrom**2))
        lp = lorentz_polarisation(theta)
        return np.where(reachable, self.structure_factor * lp * debye_waller, 0.0)


def lorentz_polarisation(theta_rad: NDArray[np.float64]) -> NDArray[np.float64]:
    """Lorentz-polarisation factor of an unpolarised beam without monochromator
    (the same expression pymatgen applies)."""
    return (1.0 + np.cos(2.0 * theta_rad) ** 2) / (np.sin(theta_rad) ** 2 * np.cos(theta_rad))


# Simulation cost limits. pymatgen visits every reciprocal-lattice point in the
# sphere of radius 2 sin(θmax)/λ (≈ 5.04 per Å³ of cell volume over 2θ 2–110°
# at Cu Kα1) and sums over every atom at each: measured on 2 CPU cores, about
# 15-25 µs per point plus 0.035 µs per atom and point, and twice that at low
# priority on a busy machine. The defaults keep a simulation near 4 s idle;
# 2 of the 1,932 shared-data structures are over them (the largest,
# cod/4111132: 1,776 atoms, 135,000 points, 8.3 s) and go through the
# indexer instead of an upload.
MAX_REFLECTIONS = 100_000
MAX_ATOM_REFLECTIONS = 100_000_000


@dataclass(frozen=True)
class SimulationCost:
    """What simulating a structure will cost, estimated before simulating."""

    atoms: int  # sites in the cell, after symmetry expansion
    volume_angstrom3: float
    reflections: int  # reciprocal-lattice points pymatgen visits

    @property
    def atom_reflections(self) -> int:
        return self.atoms * self.reflections


@dataclass(frozen=True)
class SimulationLimits:
    max_reflections: int = MAX_REFLECTIONS
    max_atom_reflections: int = MAX_ATOM_REFLECTIONS


def reflections_in_range(lattice: Lattice) -> int:
    """Reciprocal-lattice points pymatgen visits: N ≈ (4π/3)(2 sin θmax/λ)³·V."""
    theta_max = math.radians(STICK_TWO_THETA_RANGE_DEG[1] / 2.0)
    radius = 2.0 * math.sin(theta_max) / STICK_WAVELENGTH_ANGSTROM
    reflections = (4.0 * math.pi / 3.0) * radius**3 * float(lattice.volume)
    return int(reflections) if math.isfinite(reflections) else 2**62


def simulation_cost(structure: Structure) -> SimulationCost:
    """Reflections in range and atoms of ``structure``."""
    return SimulationCost(
        atoms=len(structure),
        volume_angstrom3=float(structure.lattice.volume),
        reflections=reflections_in_range(structure.lattice),
    )


def check_cell_size(lattice: Lattice, limits: SimulationLimits, source: str) -> None:
    """SimulationTooLargeError when the cell alone has too many reflections in
    range (checked as soon as a reader knows the cell, before any per-atom work)."""
    reflections = reflections_in_range(lattice)
    if reflections > limits.max_reflections:
        raise SimulationTooLargeError(
            f"{source}: the cell ({float(lattice.volume):,.0f} Å³) has about "
            f"{reflections:,} reflections in range, more than the limit of "
            f"{limits.max_reflections:,} for a simulation here; add such large cells with "
            "the indexer (python -m indexer build)",
            quantity="reflections",
            value=reflections,
            limit=limits.max_reflections,
        )


def check_simulation_cost(
    structure: Structure, limits: SimulationLimits, source: str
) -> SimulationCost:
    """The cost of simulating ``structure``; SimulationTooLargeError when over ``limits``."""
    check_cell_size(structure.lattice, limits, source)
    cost = simulation_cost(structure)
    if cost.atom_reflections > limits.max_atom_reflections:
        raise SimulationTooLargeError(
            f"{source}: {cost.atoms:,} atoms × {cost.reflections:,} reflections = "
            f"{cost.atom_reflections:,} atom-reflections to simulate, more than the limit of "
            f"{limits.max_atom_reflections:,} here; add such large structures with the "
            "indexer (python -m indexer build)",
            quantity="atom_reflections",
            value=cost.atom_reflections,
            limit=limits.max_atom_reflections,
        )
    return cost


@functools.cache
def _calculator() -> XRDCalculator:
    # Imported when first used: it imports matplotlib (0.4 s), which
    # identifying a scan never needs.
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    return XRDCalculator(wavelength=STICK_WAVELENGTH_ANGSTROM)


def simulate_sticks(structure: Structure) -> StickPattern:
    """Compute the stick pattern of a structure.

    Raises :class:`SimulationError` when pymatgen fails (unknown scattering
    factors, e.g. for exotic elements) or the structure has no reflection in
    range (empty or absurd cells).
    """
    return simulate(structure)[0]


def simulate(structure: Structure) -> tuple[StickPattern, float]:
    """:func:`simulate_sticks` and the absolute scale its structure factors
    were divided by (the strongest |F|²·multiplicity, electrons²): with the
    cell's mass and volume it puts the pattern on an absolute scale, for
    weight fractions (:mod:`xrdid.rir`)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pattern = _calculator().get_pattern(
                structure, scaled=False, two_theta_range=STICK_TWO_THETA_RANGE_DEG
            )
    except MemoryError:
        raise  # the caller's memory budget, not a property of the structure
    except Exception as exc:  # pymatgen raises bare KeyError/ValueError/…
        logger.info("simulation failed: %r", exc)
        raise SimulationError(
            f"no diffraction pattern could be computed for "
            f"{structure.composition.reduced_formula} ({exc}); check the elements, "
            "occupancies and cell of the file"
        ) from exc
    two_theta = np.asarray(pattern.x, dtype=np.float64)
    intensity = np.asarray(pattern.y, dtype=np.float64)
    if two_theta.size == 0 or not np.any(intensity > 0):
        raise SimulationError(
            f"{structure.composition.reduced_formula} has no reflection between "
            f"{STICK_TWO_THETA_RANGE_DEG[0]}° and {STICK_TWO_THETA_RANGE_DEG[1]}° 2θ (Cu Kα1)"
        )
    theta = np.radians(two_theta / 2.0)
    structure_factor = intensity / lorentz_polarisation(theta)
    keep = intensity >= MIN_RELATIVE_INTENSITY * intensity.max()
    scale = float(structure_factor.max())
    structure_factor = structure_factor[keep]
    # Hexagonal cells come as (h, k, i, l); keep (h, k, l).
    hkl = np.array(
        [(f[0]["hkl"][0], f[0]["hkl"][1], f[0]["hkl"][-1]) for f in pattern.hkls], dtype=np.int64
    )[keep]
    d = np.asarray(pattern.d_hkls, dtype=np.float64)[keep]
    order = np.argsort(-d)
    sticks = StickPattern(
        d_angstrom=d[order],
        structure_factor=structure_factor[order] / scale,
        hkl=hkl[order],
        reciprocal_lattice=np.array(structure.lattice.reciprocal_lattice_crystallographic.matrix),
    )
    return sticks, scale
