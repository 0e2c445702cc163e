"""CIF files to structures, through pymatgen's CifParser.

pymatgen reads most CIFs, but it warns rather than fails in many cases, and a
few old or hand-written files trip it. This module repairs what can be
repaired without guessing, decides per pymatgen warning whether the
structure is still trustworthy, and turns every failure into a
StructureReadError naming the problem:

- repaired: tags in the wrong case (``_atom_site_fract_Y``), ``?``
  occupancies and type symbols, symmetry operations without the identity or
  otherwise incomplete, a Hall symbol ignored in favour of an ambiguous
  Hermann-Mauguin symbol, atoms listed again as their own symmetry copies,
  a missing origin choice (both are tried);
- rejected: no cell, no atoms, missing coordinates, unparseable symmetry,
  occupancy > 1, overlapping atoms, magnetic CIFs, cells above the site cap,
  labels read as elements the formula does not contain.

pymatgen's per-block parser is private API (``CifParser._get_structure``,
``_sanitize_data``); the tests pin its behaviour on the shared data.
pymatgen's warnings are captured with ``warnings.catch_warnings``, which is
process-global: concurrent reads from several threads may misplace a warning
(never an error).
"""

from __future__ import annotations

import copy
import functools
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.core import Structure
from pymatgen.core.operations import SymmOp
from pymatgen.io.cif import CifBlock, CifParser

from xrdid.errors import StructureReadError
from xrdid.sticks import SimulationLimits, check_cell_size
from xrdid.structures import spacegroups
from xrdid.structures.checks import (
    MAX_SITES,
    OCCUPANCY_TOLERANCE,
    check_cell,
    check_cell_parameters,
    count_clashes,
)

logger = logging.getLogger(__name__)

_SYMOP_KEYS = (
    "_symmetry_equiv_pos_as_xyz",
    "_symmetry_equiv_pos_as_xyz_",
    "_space_group_symop_operation_xyz",
    "_space_group_symop_operation_xyz_",
)
_HALL_KEYS = ("_symmetry_space_group_name_hall", "_space_group_name_hall")
_HM_KEYS = (
    "_symmetry_space_group_name_h-m",
    "_space_group_name_h-m_alt",
    "_symmetry_space_group_name_h_m",
)
_NUMBER_KEYS = ("_space_group_it_number", "_symmetry_int_tables_number")
_NAME_KEYS = ("_chemical_name_mineral", "_chemical_name_common", "_chemical_name_systematic")
_ID_KEYS = (("_cod_database_code", "cod"), ("_database_code_amcsd", "amcsd"))
_MAGNETIC_MARKERS = ("_space_group_magn", "_atom_site_moment", "_parent_space_group")
_UNKNOWN = ("?", ".")
# Largest group closure (192 operations times 4 centring vectors); more means
# the listed operations are not a space group.
_MAX_OPERATIONS = 768
# Symmetry images closer than this are one site. pymatgen compares
# fractional coordinates; its default 1e-4 leaves images of 0.1667-style
# coordinates unmerged, so we use 1e-3, capped at 0.02 A on long axes.
SITE_TOLERANCE_FRACTIONAL = 1e-3
SITE_TOLERANCE_ANGSTROM = 0.02
# Symmetry copies of an atom closer than this (angstrom) are the same atom.
_DUPLICATE_ANGSTROM = 0.05


@dataclass(frozen=True)
class CifBlockResult:
    """One data block read into a structure."""

    block: str
    structure: Structure
    name: str | None
    database_id: str | None
    space_group_number: int | None
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class _Attempt:
    clashes: int
    label: str
    structure: Structure | None
    messages: list[str]
    number: int | None
    notes: list[str]
    error: StructureReadError | None


@dataclass(frozen=True)
class CifBlockFailure:
    block: str
    reason: str


def read_cif(
    text: str, source: str, simulation_limits: SimulationLimits | None = None
) -> tuple[list[CifBlockResult], list[CifBlockFailure]]:
    """All data blocks of CIF ``text``: those read and those rejected with why.

    With ``simulation_limits``, a block whose cell alone is too large to
    simulate raises SimulationTooLargeError before its atoms are read.
    Raises StructureReadError when the text is not a CIF at all.
    """
    if not text.strip():
        raise StructureReadError(f"{source}: empty file")
    if not re.search(r"^\s*data_", text, flags=re.MULTILINE | re.IGNORECASE):
        raise StructureReadError(f"{source}: not a CIF: no data_ block")
    lowered = text.lower()
    if any(marker in lowered for marker in _MAGNETIC_MARKERS):
        raise StructureReadError(
            f"{source}: magnetic CIF (magCIF); xrdid reads nuclear structures, "
            "use the parent structure's CIF"
        )
    # CIF tags are case-insensitive; pymatgen looks atom-site tags up in lower case.
    text = re.sub(r"(?im)^(\s*)(_atom_site_\S+)", lambda m: m.group(1) + m.group(2).lower(), text)
    results, failures = _read_blocks(text, source, simulation_limits)
    if not results and not failures:
        raise StructureReadError(f"{source}: not a CIF: no data_ block")
    return results, failures


# pymatgen's own split into blocks (CifFile.from_str), so one block's text
# parses exactly as it would within the whole file.
_BLOCK_START = re.compile(r"^\s*data_", flags=re.MULTILINE)


def split_blocks(text: str) -> Iterator[str]:
    """The text of each data block, in file order, found without parsing them."""
    starts = [m.start() for m in _BLOCK_START.finditer(text)]
    for begin, end in zip(starts, [*starts[1:], len(text)], strict=True):
        yield text[begin:end]


def _read_blocks(
    text: str, source: str, limits: SimulationLimits | None
) -> tuple[list[CifBlockResult], list[CifBlockFailure]]:
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        try:
            parser = _RepairingCifParser.from_str(
                text,
                occupancy_tolerance=OCCUPANCY_TOLERANCE,
                site_tolerance=SITE_TOLERANCE_FRACTIONAL,
                check_cif=True,
            )
        except Exception as exc:  # pymatgen raises many types on broken syntax
            raise StructureReadError(f"{source}: CIF syntax error: {exc}") from exc

    results: list[CifBlockResult] = []
    failures: list[CifBlockFailure] = []
    for name, block in parser._cif.data.items():
        where = f"{source}, block {name}"
        try:
            results.append(_read_block(parser, name, block, where, limits))
        except StructureReadError as exc:
            failures.append(CifBlockFailure(name, str(exc)))
            logger.debug("%s", exc)
    return results, failures


class _RepairingCifParser(CifParser):
    """CifParser whose per-block clean-up first repairs unknown values.

    The annotations name the private attributes this module relies on.
    """

    _cif: Any
    _site_tolerance: float
    warnings: list[str]

    def _sanitize_data(self, data: CifBlock) -> CifBlock:
        _repair_values(data)
        return super()._sanitize_data(data)


def _repair_values(block: CifBlock) -> None:
    """Repairs that need no symmetry: '?' values, implicit hydrogens, odd type symbols."""
    data = block.data
    rows = _atom_rows(block)
    # Hydrogens counted per atom have no positions; pymatgen would add them at
    # the atom's site. We keep the located atoms only (and say so later).
    if "_atom_site_attached_hydrogens" in data:
        counts = [_number(v) or 0.0 for v in _as_list(data["_atom_site_attached_hydrogens"])]
        data["_xrdid_implicit_hydrogens"] = str(sum(counts))
        _drop_column(block, "_atom_site_attached_hydrogens")
    if rows == 0:
        return
    flags = _as_list(data.get("_atom_site_calc_flag", []))
    dummies = [i for i, flag in enumerate(flags) if flag.strip().lower() == "dum"]
    if dummies:  # dummy atoms mark centroids or ring centres, not atoms
        _drop_row_indices(block, dummies)
        data["_xrdid_dummy_atoms"] = str(len(dummies))
    if "_atom_site_type_symbol" not in data and "_atom_site_label" in data:
        # Without type symbols pymatgen reads water labels ("Wat1", "O-H1")
        # as O plus implicit hydrogens at the O site; those H have no place.
        labels = _as_list(data["_atom_site_label"])
        if any(label[:3] in ("Wat", "wat", "O-H") for label in labels):
            data["_atom_site_type_symbol"] = [
                "O" if label[:3] in ("Wat", "wat", "O-H") else label for label in labels
            ]
            data["_xrdid_water_labels"] = "1"
            for loop in block.loops:
                if "_atom_site_label" in loop:
                    loop.append("_atom_site_type_symbol")
    if "_atom_site_occupancy" in data:
        data["_atom_site_occupancy"] = [
            "1" if v.strip() in _UNKNOWN else v for v in _as_list(data["_atom_site_occupancy"])
        ]
    if "_atom_site_type_symbol" in data:
        symbols = _as_list(data["_atom_site_type_symbol"])
        labels = _as_list(data.get("_atom_site_label", symbols))
        if all(s.strip() in _UNKNOWN for s in symbols):
            _drop_column(block, "_atom_site_type_symbol")
        else:
            data["_atom_site_type_symbol"] = [
                label if s.strip() in _UNKNOWN else s
                for s, label in zip(symbols, labels, strict=False)
            ]


def _read_block(
    parser: _RepairingCifParser,
    name: str,
    block: CifBlock,
    where: str,
    limits: SimulationLimits | None,
) -> CifBlockResult:
    """One data block to a structure, or StructureReadError saying why not."""
    data = block.data
    notes = _check_fields(block, where)
    lattice = parser.get_lattice_no_exception(block)
    if lattice is None:
        raise StructureReadError(f"{where}: no cell: the cell parameters give no lattice")
    check_cell(lattice, where)
    if limits is not None:
        check_cell_size(lattice, limits, where)
    variants = _symmetry_variants(parser, block, where, notes)
    attempts = [
        _attempt(parser, block, where, variant, lattice.matrix, copy_block=len(variants) > 1)
        for variant in variants
    ]
    # Fewest clashing atoms wins; ties keep the order (the file's own or origin choice 1).
    best = min(attempts, key=lambda a: a.clashes)
    if best.structure is None:
        assert best.error is not None
        raise best.error
    notes.extend(best.notes)
    if len(attempts) > 1:
        notes.append(f"origin choice not stated; chose {best.label} by atom placement")
    notes.extend(_triage(best.messages, where))
    return CifBlockResult(
        block=name,
        structure=best.structure,
        name=_first_text(data, _NAME_KEYS),
        database_id=_database_id(data),
        space_group_number=best.number or _declared_number(data),
        warnings=tuple(notes),
    )


def _check_fields(block: CifBlock, where: str) -> list[str]:
    """Reject blocks without atoms, cell or coordinates; note what repairs left out."""
    data = block.data
    notes: list[str] = []
    if "_atom_site_fract_x" not in data and "_atom_site_label" not in data:
        if "_atom_site_cartn_x" in data:
            raise StructureReadError(
                f"{where}: only Cartesian coordinates (_atom_site_Cartn_x); fractional needed"
            )
        raise StructureReadError(f"{where}: no atoms (no _atom_site_ loop)")
    for key in ("_cell_length_a", "_cell_length_b", "_cell_length_c"):
        if _number(data.get(key)) is None:
            raise StructureReadError(f"{where}: no cell: {key} is missing or not a number")
    for key in ("_cell_angle_alpha", "_cell_angle_beta", "_cell_angle_gamma"):
        if _number(data.get(key)) is None:
            raise StructureReadError(f"{where}: incomplete cell: {key} is missing or not a number")
    lengths = [_number_or(data.get(f"_cell_length_{axis}"), 0.0) for axis in "abc"]
    angles = [_number_or(data.get(f"_cell_angle_{n}"), 0.0) for n in ("alpha", "beta", "gamma")]
    check_cell_parameters(
        (lengths[0], lengths[1], lengths[2]), (angles[0], angles[1], angles[2]), where
    )
    for axis in "xyz":
        if f"_atom_site_fract_{axis}" not in data:
            raise StructureReadError(f"{where}: missing coordinates: no _atom_site_fract_{axis}")
    if "_atom_site_label" not in data:
        if "_atom_site_type_symbol" not in data:
            raise StructureReadError(
                f"{where}: no elements: neither _atom_site_label nor _atom_site_type_symbol"
            )
        data["_atom_site_label"] = list(_as_list(data["_atom_site_type_symbol"]))
    used = ("_atom_site_label", "_atom_site_type_symbol", "_atom_site_occupancy") + tuple(
        f"_atom_site_fract_{axis}" for axis in "xyz"
    )
    columns = {key: len(_as_list(data[key])) for key in used if key in data}
    if len(set(columns.values())) > 1:
        raise StructureReadError(
            f"{where}: malformed atom loop: columns of different lengths {columns}"
        )
    if _atom_rows(block) > MAX_SITES:
        # Checked before any per-atom work (the symmetry-copy search is quadratic).
        raise StructureReadError(
            f"{where}: {_atom_rows(block)} atoms listed, more than the {MAX_SITES} "
            "that references may hold (huge cell)"
        )
    _drop_rows_without_coordinates(block, notes)
    if _atom_rows(block) == 0:
        raise StructureReadError(f"{where}: no atoms with coordinates")
    if (_number(data.get("_xrdid_implicit_hydrogens")) or 0.0) > 0:
        notes.append("hydrogen atoms given only as counts (attached_hydrogens) are not included")
    if "_xrdid_water_labels" in data:
        notes.append("hydrogen atoms of water or hydroxyl labels are not located")
    if "_xrdid_dummy_atoms" in data:
        notes.append(f"{data['_xrdid_dummy_atoms']} dummy atoms (calc_flag dum) left out")
    return notes


def _attempt(
    parser: _RepairingCifParser,
    block: CifBlock,
    where: str,
    variant: tuple[str, list[SymmOp], int | None],
    matrix: np.ndarray,
    copy_block: bool,
) -> _Attempt:
    """Build the block with one set of operations; failures are kept, not raised."""
    label, operations, number = variant
    trial = copy.deepcopy(block) if copy_block else block  # each origin edits its own copy
    notes: list[str] = []
    _set_operations(trial.data, operations)
    _drop_symmetry_copies(trial, operations, matrix, notes)
    estimate = _atom_rows(trial) * len(operations)
    if estimate > 4 * MAX_SITES:
        raise StructureReadError(
            f"{where}: about {estimate} atoms in the cell, more than the {MAX_SITES} "
            "that references may hold (huge cell)"
        )
    try:
        structure, messages = _parse(parser, trial, where)
    except StructureReadError as exc:
        return _Attempt(10**6, label, None, [], number, notes, exc)
    return _Attempt(count_clashes(structure), label, structure, messages, number, notes, None)


def _parse(parser: _RepairingCifParser, block: CifBlock, where: str) -> tuple[Structure, list[str]]:
    """Run pymatgen on one block; its warnings come back as messages."""
    parser.warnings = []
    lattice = parser.get_lattice_no_exception(block)
    longest = max(lattice.abc) if lattice is not None else 1.0
    parser._site_tolerance = min(SITE_TOLERANCE_FRACTIONAL, SITE_TOLERANCE_ANGSTROM / longest)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            structure = parser._get_structure(
                block, primitive=False, symmetrized=False, check_occu=True
            )
        except KeyError as exc:
            raise StructureReadError(f"{where}: missing CIF field {exc}") from exc
        except (ValueError, TypeError, IndexError, ZeroDivisionError, RuntimeError) as exc:
            text = str(exc)
            match = re.search(r"Occupancy ([\d.]+) exceeded", text)
            if match:
                raise StructureReadError(
                    f"{where}: occupancy {float(match.group(1)):.3f} > 1 on a site "
                    "(atoms or occupancies listed twice?)"
                ) from exc
            if "could not convert" in text or "float" in text:
                raise StructureReadError(f"{where}: a number cannot be read: {text}") from exc
            raise StructureReadError(
                f"{where}: pymatgen cannot build the structure: {text}"
            ) from exc
        except NotImplementedError as exc:
            raise StructureReadError(f"{where}: not supported: {exc}") from exc
    if structure is None or len(structure) == 0:
        raise StructureReadError(f"{where}: no atoms: no atom site has a known element")
    messages = [str(w.message) for w in caught] + list(parser.warnings)
    return structure, messages


def _triage(messages: list[str], where: str) -> list[str]:
    """Keep, reword or act on pymatgen's warnings."""
    notes: list[str] = []
    relabelled: list[str] = []
    unlisted: list[str] = []
    for message in dict.fromkeys(messages):
        first = message.strip().splitlines()[0] if message.strip() else ""
        if (
            "rounded to ideal values" in message
            or "Spacegroup from" in message
            or "Cannot determine chemical composition" in message
            or "1-line symmetry op" in message
            or "Possible issue in CIF" in message
            or "Issues encountered while parsing" in message
            or "Skipping relative stoichiometry check" in message
        ):
            continue
        if " parsed as " in message:
            relabelled.append(first.replace(" parsed as ", "->"))
        elif "Missing elements" in message and "CIF-reported composition" in message:
            missing = message.split("Missing elements", 1)[1].split("from", 1)[0].strip()
            unlisted.extend(missing.split())
        elif "Missing elements" in message:
            missing = message.split("Missing elements", 1)[1].split("from", 1)[0].strip()
            notes.append(f"{missing} in the formula but not among the atoms (not located)")
        elif "Incorrect stoichiometry" in message:
            notes.append("composition differs from _chemical_formula_sum")
        elif "sum to > 1" in message:
            notes.append("site occupancies slightly above 1 scaled down to 1")
        elif "implicit hydrogens" in message:
            notes.append("hydrogen atoms of water or hydroxyl labels are not located")
        elif "Defaulting to P1" in message:
            notes.append("no symmetry given; read as P1")
        else:
            notes.append(first[:200])
    guessed = {r.split("->")[-1].strip() for r in relabelled}
    wrong = sorted(set(unlisted) & guessed)
    if wrong:
        raise StructureReadError(
            f"{where}: atom labels read as {', '.join(wrong)}, which _chemical_formula_sum "
            "does not contain; the labels are ambiguous and there is no type symbol"
        )
    if unlisted:
        notes.append(f"{' '.join(sorted(set(unlisted)))} among the atoms but not in the formula")
    if relabelled:
        notes.append("element taken from atom label: " + ", ".join(sorted(set(relabelled))[:8]))
    if (
        "no symmetry given; read as P1" in notes
        and "composition differs from _chemical_formula_sum" in notes
    ):
        raise StructureReadError(
            f"{where}: unparseable symmetry: no operations or space group given, and the "
            "atoms alone do not match _chemical_formula_sum"
        )
    return notes


# --- symmetry ---------------------------------------------------------------


def _symmetry_variants(
    parser: CifParser, block: CifBlock, where: str, notes: list[str]
) -> list[tuple[str, list[SymmOp], int | None]]:
    """Operation sets to try: one, or one per origin choice when the file leaves it open."""
    data = block.data
    for key in _SYMOP_KEYS:
        listed = _as_list(data.get(key, []))
        listed = [s for s in listed if s.strip() and s.strip() not in _UNKNOWN]
        if listed:
            try:
                operations = [_parse_operation(text, where) for text in listed]
                closed = _closure(operations, where)
            except StructureReadError as exc:
                if _first_text(data, _HALL_KEYS + _HM_KEYS) is None:
                    raise
                notes.append(f"{exc.args[0].split(': ', 1)[-1]}; used the space-group symbol")
                break
            if len(closed) > len(operations):
                notes.append(
                    f"symmetry operations incomplete ({len(operations)} listed); "
                    f"completed to {len(closed)}"
                )
            return [("listed operations", closed, None)]
    hall = _first_text(data, _HALL_KEYS)
    if hall:
        setting = _setting_from_hall_symbol(hall)
        if setting is not None:
            return [(setting.symbol, _operations(setting), setting.number)]
    symbol = _first_text(data, _HM_KEYS)
    settings = spacegroups.settings_for_symbol(symbol) if symbol else []
    if not settings:
        number = _declared_number(data)
        if number is not None:
            settings = spacegroups.settings_for_number(number)
    settings = _drop_rhombohedral_mismatch(settings, data)
    if settings:
        return [(s.symbol, _operations(s), s.number) for s in settings]
    # Leave the rest (old symbols, P1 default) to pymatgen.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        operations = parser.get_symops(block)
    if symbol and len(operations) == 1:
        raise StructureReadError(f"{where}: unparseable symmetry: unknown space group {symbol!r}")
    return [("pymatgen", list(operations), None)]


_OPERATION_PART = re.compile(r"[\sxyzXYZ0-9+\-*/.]+")


def _parse_operation(text: str, where: str) -> SymmOp:
    """A symmetry operation such as '-x+1/2, y, -z'; pymatgen accepts too much."""
    parts = text.strip().strip("'\"").split(",")
    if len(parts) != 3 or not all(_OPERATION_PART.fullmatch(p) and p.strip() for p in parts):
        raise StructureReadError(f"{where}: unparseable symmetry operation {text!r}")
    try:
        return SymmOp.from_xyz_str(",".join(parts))
    except (ValueError, ZeroDivisionError) as exc:
        raise StructureReadError(f"{where}: unparseable symmetry operation {text!r}") from exc


def _drop_rhombohedral_mismatch(
    settings: list[spacegroups.Setting], data: dict[str, object]
) -> list[spacegroups.Setting]:
    """R groups: hexagonal axes when gamma is 120 degrees, else rhombohedral."""
    if not any(s.choice in ("H", "R") for s in settings):
        return settings
    gamma = _number(data.get("_cell_angle_gamma"))
    wanted = "H" if gamma is not None and abs(gamma - 120.0) < 0.5 else "R"
    return [s for s in settings if s.choice == wanted] or settings


def _setting_from_hall_symbol(hall: str) -> spacegroups.Setting | None:
    key = _hall_key(hall)
    for number, symbol in enumerate(_hall_symbols(), start=1):
        if symbol == key:
            return spacegroups.setting_from_hall(number)
    return None


def _hall_key(text: str) -> str:
    return re.sub(r"[\s_'\"]", "", text).lower()


@functools.cache
def _hall_symbols() -> tuple[str, ...]:
    keys = []
    for hall in range(1, spacegroups.N_HALL_SETTINGS + 1):
        keys.append(_hall_key(spacegroups.spacegroup_type(hall).hall_symbol))
    return tuple(keys)


def _operations(setting: spacegroups.Setting) -> list[SymmOp]:
    return [
        SymmOp.from_rotation_and_translation(rot.astype(float), trans)
        for rot, trans in zip(setting.rotations, setting.translations, strict=True)
    ]


def _closure(operations: list[SymmOp], where: str) -> list[SymmOp]:
    """The group generated by ``operations`` (identity included), translations mod 1.

    Returns ``operations`` themselves when they already form the group.
    """
    rotations = np.array([op.rotation_matrix for op in operations])
    translations = np.array([op.translation_vector for op in operations])
    rounded = np.round(rotations)
    steps = np.mod(translations, 1.0) * _GRID
    if (
        not np.allclose(rotations, rounded, atol=1e-6)
        or np.any(np.abs(np.abs(np.linalg.det(rounded)) - 1) > 1e-6)
        or np.any(np.abs(steps - np.round(steps)) > _GRID * 2e-3)
    ):
        raise StructureReadError(
            f"{where}: unparseable symmetry: an operation is not crystallographic"
        )
    rots = np.concatenate([np.eye(3, dtype=int)[None], rounded.astype(int)])
    trans = np.concatenate([np.zeros((1, 3), dtype=int), np.round(steps).astype(int) % _GRID])
    rots, trans = _unique_operations(rots, trans)
    while True:
        new_rots = np.einsum("aij,bjk->abik", rots, rots).reshape(-1, 3, 3)
        new_trans = (np.einsum("aij,bj->abi", rots, trans) + trans[:, None, :]).reshape(
            -1, 3
        ) % _GRID
        all_rots, all_trans = _unique_operations(
            np.concatenate([rots, new_rots]), np.concatenate([trans, new_trans])
        )
        if len(all_rots) > _MAX_OPERATIONS:
            raise StructureReadError(
                f"{where}: unparseable symmetry: the operations do not form a space group"
            )
        if len(all_rots) == len(rots):
            break
        rots, trans = all_rots, all_trans
    if len(rots) == len(operations):
        return operations
    return [
        SymmOp.from_rotation_and_translation(r.astype(float), t / _GRID)
        for r, t in zip(rots, trans, strict=True)
    ]


# Translations of space-group operations are multiples of 1/24; 1/48 leaves room.
_GRID = 48


def _unique_operations(rots: np.ndarray, trans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (rotation, translation) pairs, first occurrences in order."""
    # One integer per operation: rotation entries (-1, 0, 1) as base-3 digits,
    # translations as base-48 digits.
    digits = (rots.reshape(len(rots), 9) + 1) @ (3 ** np.arange(9))
    codes = digits.astype(np.int64) * _GRID**3 + trans @ (_GRID ** np.arange(3))
    _, first = np.unique(codes, return_index=True)
    keep = np.sort(first)
    return rots[keep], trans[keep]


def _set_operations(data: dict[str, object], operations: list[SymmOp]) -> None:
    for key in _SYMOP_KEYS:
        data.pop(key, None)
    data["_symmetry_equiv_pos_as_xyz"] = [op.as_xyz_str() for op in operations]


# --- atom rows --------------------------------------------------------------


def _drop_symmetry_copies(
    block: CifBlock, operations: list[SymmOp], matrix: np.ndarray, notes: list[str]
) -> None:
    """Remove atoms listed again as symmetry images of an earlier atom.

    Only the same element with the same occupancy, and only when keeping both
    would over-fill the site: two half-occupied atoms of one element at one
    place are a legitimate split.
    """
    data = block.data
    n = _atom_rows(block)
    if n < 2:
        return
    coords = np.array(
        [[_number(v) or 0.0 for v in _as_list(data[f"_atom_site_fract_{a}"])] for a in "xyz"]
    ).T
    symbols = _as_list(data.get("_atom_site_type_symbol", data["_atom_site_label"]))
    elements = [_element_of(s) for s in symbols]
    occupancies = [
        _number_or(v, 1.0) for v in _as_list(data.get("_atom_site_occupancy", ["1"] * n))
    ]
    rotations = np.array([op.rotation_matrix for op in operations])
    translations = np.array([op.translation_vector for op in operations])
    drop: list[int] = []
    kept: list[int] = []
    for i in range(n):
        candidates = [
            j
            for j in kept
            if elements[j] == elements[i]
            and abs(occupancies[j] - occupancies[i]) < 1e-3
            and occupancies[i] + occupancies[j] > OCCUPANCY_TOLERANCE
        ]
        if candidates:
            images = np.einsum("nij,j->ni", rotations, coords[i]) + translations
            delta = images[:, None, :] - coords[candidates][None, :, :]
            delta -= np.round(delta)
            if np.min(np.linalg.norm(delta @ matrix, axis=2)) < _DUPLICATE_ANGSTROM:
                drop.append(i)
                continue
        kept.append(i)
    if drop:
        _drop_row_indices(block, drop)
        notes.append(f"{len(drop)} atoms listed again as symmetry copies were dropped")


def _drop_rows_without_coordinates(block: CifBlock, notes: list[str]) -> None:
    data = block.data
    bad = [
        i
        for i in range(_atom_rows(block))
        if any(_number(_as_list(data[f"_atom_site_fract_{a}"])[i]) is None for a in "xyz")
    ]
    if bad:
        _drop_row_indices(block, bad)
        notes.append(f"{len(bad)} atoms without coordinates ('?') were left out")


def _atom_rows(block: CifBlock) -> int:
    value = block.data.get("_atom_site_fract_x", block.data.get("_atom_site_label"))
    return len(_as_list(value)) if value is not None else 0


def _atom_loop(block: CifBlock) -> list[str]:
    for loop in block.loops:
        if "_atom_site_fract_x" in loop or "_atom_site_label" in loop:
            return loop
    return [
        k
        for k in block.data
        if k.startswith("_atom_site_") and not k.startswith("_atom_site_aniso")
    ]


def _drop_row_indices(block: CifBlock, indices: list[int]) -> None:
    gone = set(indices)
    for key in _atom_loop(block):
        values = block.data.get(key)
        if isinstance(values, list):
            block.data[key] = [v for i, v in enumerate(values) if i not in gone]


def _drop_column(block: CifBlock, key: str) -> None:
    block.data.pop(key, None)
    for loop in block.loops:
        if key in loop:
            loop.remove(key)


# --- small readers ----------------------------------------------------------


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _number(value: object) -> float | None:
    """A CIF number without its standard uncertainty, or None ('?', '.', text)."""
    if value is None or isinstance(value, list):
        return None
    text = re.sub(r"\(\d*\)$", "", str(value).strip())
    try:
        number = float(text)
    except ValueError:
        return None
    return number if np.isfinite(number) else None


def _number_or(value: object, default: float) -> float:
    number = _number(value)
    return default if number is None else number


def _element_of(symbol: str) -> str:
    match = re.match(r"[A-Za-z]{1,2}", symbol.strip())
    return match.group(0).capitalize() if match else symbol


def _first_text(data: dict[str, object], keys: tuple[str, ...]) -> str | None:
    lowered = {k.lower(): v for k, v in data.items()}
    for key in keys:
        value = lowered.get(key)
        if isinstance(value, str) and value.strip() and value.strip() not in _UNKNOWN:
            return " ".join(value.split())
    return None


def _declared_number(data: dict[str, object]) -> int | None:
    text = _first_text(data, _NUMBER_KEYS)
    number = _number(text)
    if number is not None and number.is_integer() and 1 <= number <= 230:
        return int(number)
    return None


def _database_id(data: dict[str, object]) -> str | None:
    for key, prefix in _ID_KEYS:
        text = _first_text(data, (key,))
        if text:
            return f"{prefix}:{text}"
    return None
