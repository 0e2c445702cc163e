"""The reference structure every reader returns."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

from pymatgen.core import Element, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from xrdid.sticks import SimulationLimits, check_simulation_cost
from xrdid.structures import checks
from xrdid.structures.spacegroups import crystal_system, standard_short_symbol

logger = logging.getLogger(__name__)

# spglib tolerance (angstrom) for finding the space group of a structure whose
# file does not state it; loose enough for refined coordinates in old files.
SYMPREC_ANGSTROM = 0.01


@dataclass(frozen=True)
class ReferenceStructure:
    """A crystal structure read from a file, checked and described.

    ``structure`` is the conventional cell as the file gives it, elements
    without charges (D as H), partial occupancies kept; treat it as read-only
    (``structure.copy()`` before changing it). ``space_group_symbol`` is the
    standard short symbol of the group (``P2_1/c``) whatever setting the file
    used; number and symbol come from the file when it states them, else from
    spglib. ``warnings`` say what was odd but tolerated.
    """

    structure: Structure
    name: str
    formula: str  # reduced formula, e.g. "SiO2"
    elements: tuple[str, ...]  # sorted symbols
    space_group_symbol: str | None
    space_group_number: int | None
    crystal_system: str | None
    source_id: str
    source_path: str | None
    warnings: tuple[str, ...]


def make_reference(
    structure: Structure,
    *,
    name: str | None,
    source_id: str,
    source_path: Path | None,
    space_group_number: int | None,
    notes: list[str] | tuple[str, ...],
    where: str,
    simulation_limits: SimulationLimits | None = None,
) -> ReferenceStructure:
    """Normalise ``structure`` (in place: readers hand over fresh structures),
    run the sanity checks and describe it.

    ``notes`` are the reader's warnings; ``where`` names the file (and block)
    in error messages. With ``simulation_limits``, a structure over them is
    refused first (the checks and spglib's symmetry search grow with its size:
    minutes for some 2,000-atom cells).
    """
    if simulation_limits is not None:
        check_simulation_cost(structure, simulation_limits, where)
    structure = _plain_elements(structure)
    all_warnings = list(notes)
    structure, check_warnings = checks.validate(structure, where)
    all_warnings.extend(check_warnings)
    number = space_group_number
    if number is None or not 1 <= number <= 230 or number == 1:
        # Files written with every atom listed often declare P1 (or nothing)
        # whatever the real symmetry; spglib finds it.
        detected = _detect_space_group(structure, where)
        if number == 1 and detected not in (None, 1):
            all_warnings.append(f"file declares P1; the atoms have space group {detected}")
        number = detected or number
    formula = structure.composition.reduced_formula
    reference = ReferenceStructure(
        structure=structure,
        name=(name or "").strip() or formula,
        formula=formula,
        elements=tuple(sorted(el.symbol for el in structure.composition.elements)),
        space_group_symbol=standard_short_symbol(number) if number else None,
        space_group_number=number,
        crystal_system=crystal_system(number) if number else None,
        source_id=source_id,
        source_path=str(source_path) if source_path is not None else None,
        warnings=tuple(dict.fromkeys(all_warnings)),
    )
    if reference.warnings:
        logger.debug("%s: %s", where, "; ".join(reference.warnings))
    return reference


def _plain_elements(structure: Structure) -> Structure:
    """The structure (changed in place) without oxidation states.

    Charges in files are inconsistent (some files have them, some not) and
    the pattern simulation uses neutral-atom scattering factors anyway.
    Deuterium is already hydrogen: pymatgen reads D as H, the .str reader maps it.
    """
    if any(not isinstance(sp, Element) for sp in structure.composition):
        structure.remove_oxidation_states()
    return structure


def _detect_space_group(structure: Structure, where: str) -> int | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # spglib's error-handling notice
            analyzer = SpacegroupAnalyzer(structure, symprec=SYMPREC_ANGSTROM)
            return int(analyzer.get_space_group_number())
    except Exception as exc:  # spglib fails on some disordered cells; the number is optional
        logger.info("%s: no space group from spglib (%s)", where, exc)
        return None
