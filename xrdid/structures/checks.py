"""Sanity checks every structure passes before it becomes a reference.

A structure read without error can still be nonsense: a cell in the wrong
unit, atoms on top of each other after a wrong origin choice, or a cell so
large that simulating it would stall the indexer. These checks catch that for
both CIF and .str input.
"""

from __future__ import annotations

import math

import numpy as np
from pymatgen.core import Element, Lattice, Structure

from xrdid.errors import StructureReadError

# Sites in the conventional cell. Simulation cost grows with sites x
# reflections; minerals and inorganic phases stay well below ~1,000 sites,
# larger cells are proteins, frameworks with guests or modulated supercells
# that powder references represent poorly. The cap bounds the indexer's worst case.
MAX_SITES = 2000

# Fully occupied atoms closer than this overlap (the shortest real bond,
# O-H, is ~0.95 A); split sites with partial occupancies may be closer.
MIN_DISTANCE_ANGSTROM = 0.5

# Crystal densities run from ~0.2 g/cm3 (open frameworks) to 22.6 (osmium);
# outside this range the cell or its unit is wrong (nm read as angstrom
# changes the density a thousandfold).
DENSITY_RANGE_G_CM3 = (0.1, 30.0)

# Refined occupancies summing to at most this are rounding; they are scaled
# to 1. Above it the site is over-full and the file is wrong.
OCCUPANCY_TOLERANCE = 1.05

# Split positions (one atom disordered over two close sites) are refined
# independently and often sum a little above 1 (0.54 + 0.54 in LGPS).
SPLIT_SITE_TOLERANCE = 1.1

# Cell edges outside this range (angstrom) are unit mistakes or damaged
# numbers; the longest real ones are long-period polytypes (SiC-174R, 437 A).
CELL_LENGTH_RANGE_ANGSTROM = (1.0, 1000.0)
# Volume over a*b*c below this means the three axes are nearly coplanar.
MIN_CELL_FLATNESS = 0.01

# Two atoms clash (for choosing between candidate settings) when closer than
# this fraction of the sum of their atomic radii.
CLASH_FRACTION = 0.6


def check_cell_parameters(
    lengths: tuple[float, float, float], angles_deg: tuple[float, float, float], source: str
) -> None:
    """Raise StructureReadError unless the declared a, b, c, α, β, γ describe a cell.

    Checked on the numbers as written: a lattice built from a negative length
    has positive edge lengths (the sign flips a vector), so it would pass
    :func:`check_cell` as another, wrong cell.
    """
    values = [*lengths, *angles_deg]
    if not all(math.isfinite(v) for v in values):
        raise StructureReadError(
            f"{source}: impossible cell: parameters {values} are not all finite numbers"
        )
    if min(lengths) <= 0:
        raise StructureReadError(
            f"{source}: impossible cell: edge lengths {list(lengths)} A must be positive"
        )
    if not all(0.0 < angle < 180.0 for angle in angles_deg):
        raise StructureReadError(
            f"{source}: impossible cell: angles {list(angles_deg)} degrees must lie between "
            "0 and 180"
        )
    cosines = [math.cos(math.radians(angle)) for angle in angles_deg]
    # V² / (abc)² = 1 − Σcos² + 2Πcos; three angles give a cell only when it is positive.
    metric = 1.0 - sum(c * c for c in cosines) + 2.0 * cosines[0] * cosines[1] * cosines[2]
    if metric <= 0:
        raise StructureReadError(
            f"{source}: impossible cell: angles {list(angles_deg)} degrees cannot meet in "
            "one corner (no parallelepiped has them)"
        )


def check_cell(lattice: Lattice, source: str) -> None:
    """Raise StructureReadError for a cell no crystal has (checked before building on it)."""
    low, high = CELL_LENGTH_RANGE_ANGSTROM
    lengths = lattice.abc
    if not all(math.isfinite(x) and low <= x <= high for x in lengths):
        raise StructureReadError(
            f"{source}: impossible cell: edges {[round(x, 4) for x in lengths]} A "
            f"(expected {low}-{high} A)"
        )
    volume = lattice.volume
    if (
        not math.isfinite(volume)
        or volume < MIN_CELL_FLATNESS * lengths[0] * lengths[1] * lengths[2]
    ):
        raise StructureReadError(
            f"{source}: impossible cell: angles {[round(x, 3) for x in lattice.angles]} "
            "leave almost no volume"
        )


def validate(structure: Structure, source: str) -> tuple[Structure, list[str]]:
    """Check that ``structure`` is plausible; return it (maybe with H removed) and warnings.

    Hydrogen atoms that overlap another atom are removed rather than failing
    the structure: X-ray hydrogen positions are the least reliable part of a
    file and barely change the pattern. Raises StructureReadError otherwise.
    """
    warnings: list[str] = []
    check_cell(structure.lattice, source)
    if len(structure) == 0:
        raise StructureReadError(f"{source}: no atoms")
    unknown = sorted({str(sp) for sp in structure.composition if not isinstance(sp, Element)})
    if unknown:
        raise StructureReadError(f"{source}: unknown element(s) {', '.join(unknown)}")
    if len(structure) > MAX_SITES:
        raise StructureReadError(
            f"{source}: {len(structure)} atoms in the cell, more than the {MAX_SITES} "
            "that references may hold (huge cell)"
        )
    for site in structure:
        total = sum(site.species.values())
        if total > OCCUPANCY_TOLERANCE:
            raise StructureReadError(
                f"{source}: occupancy {total:.3f} > 1 on a site at "
                f"{np.round(site.frac_coords, 4).tolist()} ({site.species_string})"
            )
    if structure.composition.num_atoms <= 0:
        raise StructureReadError(f"{source}: no atoms: all occupancies are zero")
    density = float(structure.density)
    low, high = DENSITY_RANGE_G_CM3
    if not low <= density <= high:
        raise StructureReadError(
            f"{source}: implausible density {density:.3g} g/cm3 (expected {low}-{high}); "
            "the cell or its unit is wrong"
        )
    pairs = _close_pairs(structure, MIN_DISTANCE_ANGSTROM)
    overlaps = [
        (i, j, d) for i, j, d in pairs if _occupancy(structure, i, j) > SPLIT_SITE_TOLERANCE
    ]
    hydrogens = {
        k for i, j, _ in overlaps for k in (j, i) if structure[k].species.elements == [Element("H")]
    }
    if hydrogens:
        removed: set[int] = set()
        for i, j, _ in overlaps:
            if i in removed or j in removed:
                continue
            for k in (j, i):
                if k in hydrogens:
                    removed.add(k)
                    break
        structure = structure.copy()
        structure.remove_sites(sorted(removed))
        warnings.append(f"{len(removed)} hydrogen atoms overlapping other atoms removed")
        pairs = _close_pairs(structure, MIN_DISTANCE_ANGSTROM)
        overlaps = [
            (i, j, d) for i, j, d in pairs if _occupancy(structure, i, j) > SPLIT_SITE_TOLERANCE
        ]
    if overlaps:
        i, j, d = overlaps[0]
        raise StructureReadError(
            f"{source}: overlapping atoms: {structure[i].species_string} and "
            f"{structure[j].species_string} are {d:.2f} A apart "
            f"(at {np.round(structure[i].frac_coords, 3).tolist()})"
        )
    if pairs:
        warnings.append(
            f"{len(pairs)} pairs of partially occupied sites closer than "
            f"{MIN_DISTANCE_ANGSTROM} A (split positions)"
        )
    return structure, warnings


def count_clashes(structure: Structure) -> int:
    """Pairs of atoms closer than CLASH_FRACTION of their radii sum (over-full pairs only)."""
    if len(structure) == 0 or len(structure) > MAX_SITES:
        return 0  # too large to judge; validate() rejects it
    radii = np.array([_radius(site.species) for site in structure])
    cutoff = CLASH_FRACTION * 2.0 * float(radii.max())
    count = 0
    for i, j, d in _close_pairs(structure, cutoff):
        if d < CLASH_FRACTION * (radii[i] + radii[j]) and _occupancy(structure, i, j) > (
            OCCUPANCY_TOLERANCE
        ):
            count += 1
    return count


def _radius(species: object) -> float:
    """Largest atomic radius (angstrom) on a site, 1.0 when unknown."""
    values = [
        float(Element(el.symbol).atomic_radius or 1.0)
        for el in species.elements  # type: ignore[attr-defined]
    ]
    return max(values) if values else 1.0


def _occupancy(structure: Structure, i: int, j: int) -> float:
    return float(sum(structure[i].species.values()) + sum(structure[j].species.values()))


def _close_pairs(structure: Structure, cutoff: float) -> list[tuple[int, int, float]]:
    """Distinct site pairs (i < j) closer than ``cutoff`` angstrom, periodic images included."""
    centers, neighbors, _, distances = structure.get_neighbor_list(cutoff)
    pairs = []
    for i, j, d in zip(centers, neighbors, distances, strict=True):
        if i < j or (i == j and d > 1e-8):
            pairs.append((int(i), int(j), float(d)))
    return pairs
