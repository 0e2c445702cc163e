"""BGMN / Profex structure files (.str) to a pymatgen Structure.

No maintained library reads .str files, so this module does. A file is a list
of ``KEY=value`` assignments separated by blanks; ``//`` starts a comment; a
line continues while parentheses are open. What matters here:

- ``SpacegroupNo=`` (also the misspelling ``SpacegropuNo=``),
  ``HermannMauguin=`` (full symbols such as ``P12_1/n1``, ``P2_1/b2_1/c2_1/a``,
  ``C-1``), ``OriginChoice=``, ``Setting=``, ``Lattice=``;
- the cell ``A B C`` in nanometres and ``ALPHA BETA GAMMA`` in degrees, either
  plain or refinable (``PARAM=A=0.4914_0.4867^0.4965``: value, then limits);
  parameters the crystal system fixes (B=A when tetragonal) may be missing;
- atoms ``E=SI+4 Wyckoff=a x=0.47 TDS=0.0056`` with charges, occupancies
  (``E=FE(0.5)``, ``E=(SI(0.75),AL(0.25))``) and expressions over parameters
  defined anywhere in the file (``PARAM=p=0.7_0.5^0.9``, ``pMG=0.02``).
  Coordinates the Wyckoff position fixes may be omitted.

The symmetry operations of the named setting are applied to each atom and
coincident images merged. Files that describe no crystal structure (Le Bail
or peak-list phases, rigid-body models) raise StructureReadError with the reason.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Element, Lattice, Structure

from xrdid.errors import StructureReadError
from xrdid.structures import spacegroups
from xrdid.structures._bgmn_expr import ExpressionError, evaluate
from xrdid.structures.checks import (
    MAX_SITES,
    OCCUPANCY_TOLERANCE,
    check_cell,
    check_cell_parameters,
    count_clashes,
)
from xrdid.structures.spacegroups import Setting

logger = logging.getLogger(__name__)

NM_TO_ANGSTROM = 10.0
# BGMN's TDS is the isotropic displacement factor B in nm^2.
TDS_NM2_TO_B_ANGSTROM2 = 100.0
# Coordinates further than this from the named Wyckoff position are reported.
MOVED_WARNING_ANGSTROM = 0.1
# Cell lengths (angstrom) or angles (degrees) the crystal system fixes may
# differ this much from the file's value before we say so.
CELL_LENGTH_TOLERANCE = 1e-3
CELL_ANGLE_TOLERANCE_DEG = 0.05

_KEY_SPACEGROUP = ("SpacegroupNo", "SpacegropuNo")
_CELL_KEYS = ("A", "B", "C", "ALPHA", "BETA", "GAMMA")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_SPECIES_ITEM = re.compile(r"([A-Za-z]{1,2})([+-]\d*)?(?:\((.*)\))?")


@dataclass(frozen=True)
class BgmnAtom:
    """One ``E=`` definition with the assignments on its line."""

    line: int
    species: str
    local: dict[str, str] = field(hash=False)


@dataclass(frozen=True)
class BgmnFile:
    """The assignments of a .str file, not yet evaluated."""

    assignments: dict[str, tuple[str, int]] = field(hash=False)  # name -> (text, line)
    atoms: tuple[BgmnAtom, ...]
    statements: tuple[tuple[str, int], ...]  # bare calls such as set(...)


@dataclass(frozen=True)
class BgmnResult:
    """A structure read from a .str file, with its metadata."""

    structure: Structure
    setting: Setting
    name: str | None
    mineral_name: str | None
    formula: str | None
    reference: str | None
    warnings: tuple[str, ...]


def parse_bgmn(text: str) -> BgmnFile:
    """Split .str text into global assignments, atoms and bare statements."""
    assignments: dict[str, tuple[str, int]] = {}
    atoms: list[BgmnAtom] = []
    statements: list[tuple[str, int]] = []
    for line_no, line in _logical_lines(text):
        tokens = _tokens(line)
        current: tuple[str, int, dict[str, str]] | None = None
        for token in tokens:
            key, value = _split_token(token)
            if key is None:
                statements.append((token, line_no))
                continue
            if key == "E":
                if current is not None:
                    atoms.append(BgmnAtom(current[1], current[0], current[2]))
                current = (value, line_no, {})
            elif current is not None:
                current[2][key] = value
            else:
                assignments[key] = (value, line_no)
        if current is not None:
            atoms.append(BgmnAtom(current[1], current[0], current[2]))
    return BgmnFile(assignments=assignments, atoms=tuple(atoms), statements=tuple(statements))


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines without ``//`` comments, joined while parentheses are open."""
    out: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if not pending:
            start = number
        pending = f"{pending} {line}" if pending else line
        if pending.count("(") <= pending.count(")"):
            out.append((start, pending))
            pending = ""
    if pending:
        out.append((start, pending))
    return out


def _tokens(line: str) -> list[str]:
    """Blank-separated tokens, keeping blanks inside parentheses."""
    tokens: list[str] = []
    depth = 0
    current = ""
    for char in line:
        if char in " \t" and depth == 0:
            if current:
                tokens.append(current)
            current = ""
            continue
        depth += (char == "(") - (char == ")")
        current += char
    if current:
        tokens.append(current)
    # "x= 0.25" and "x =0.25" split the assignment; join the pieces back.
    joined: list[str] = []
    for token in tokens:
        if joined and (joined[-1].endswith("=") or token.startswith("=")):
            joined[-1] += token
        else:
            joined.append(token)
    return joined


def _split_token(token: str) -> tuple[str | None, str]:
    """``KEY=value`` -> (KEY, value); ``PARAM=X=v_lo^hi`` -> (X, v); else (None, token)."""
    if "=" not in token:
        return None, token
    key, value = token.split("=", 1)
    if key == "PARAM" and "=" in value:
        key, value = value.split("=", 1)
    value = value.lstrip("=")  # "pi==2*acos(0)" defines a local macro
    return key.strip(), _strip_limits(value.strip())


def _strip_limits(value: str) -> str:
    """``0.4914_0.4867^0.4965`` -> ``0.4914``: drop refinement limits after a number."""
    match = re.match(r"([^_^]*)[_^]", value)
    if match and _NUMBER.fullmatch(match.group(1)):
        return match.group(1)
    return value


class _Scope:
    """Evaluates names of a file, atom-local names first, with cycle detection."""

    def __init__(self, parsed: BgmnFile, local: dict[str, str] | None = None) -> None:
        self._global = parsed.assignments
        self._local = local or {}
        self._stack: list[str] = []
        self._cache: dict[str, float] = {}

    def value(self, name: str) -> float:
        if name in self._cache:
            return self._cache[name]
        if name in self._stack:
            raise ExpressionError(f"parameter {name!r} is defined in terms of itself")
        if name in self._local:
            text = self._local[name]
        elif name in self._global:
            text = self._global[name][0]
        else:
            raise ExpressionError(f"parameter {name!r} is used but never defined")
        self._stack.append(name)
        try:
            result = evaluate(text, self.value)
        finally:
            self._stack.pop()
        self._cache[name] = result
        return result

    def expression(self, text: str) -> float:
        return evaluate(text, self.value)


def read_bgmn(text: str, source: str) -> BgmnResult:
    """Read .str ``text``; ``source`` names the file in messages.

    Raises StructureReadError when the file holds no usable crystal structure.
    """
    parsed = parse_bgmn(text)
    fields = parsed.assignments
    _reject_non_structures(parsed, source)
    warnings: list[str] = []
    if "RefMult" in fields:
        warnings.append("file models stacking disorder (RefMult); read as the ordered structure")
    cell = _cell_values(fields, _Scope(parsed), source)
    candidates = _filter_axes(_candidate_settings(fields, source), fields, cell)
    origin_given = _origin_hint(fields)
    if origin_given is not None and any(
        s.number in spacegroups.TWO_ORIGIN_NUMBERS for s in candidates
    ):
        # The stated origin goes first; the other is still tried because some
        # files state origin 1 but give origin-2 coordinates.
        candidates.sort(key=lambda s: s.choice != origin_given)
    setting, structure, setting_warnings = _best_setting(parsed, candidates, cell, source)
    warnings.extend(setting_warnings)
    if len(candidates) > 1 and origin_given is None:
        warnings.append(f"origin choice not stated; chose {setting.symbol} by atom placement")
    elif setting is not candidates[0]:
        warnings.append(
            f"file states {candidates[0].symbol} but its atoms fit {setting.symbol}; used the latter"
        )

    def text_field(key: str) -> str | None:
        value = fields.get(key)
        return value[0].strip() if value and value[0].strip() else None

    return BgmnResult(
        structure=structure,
        setting=setting,
        name=text_field("PHASE") or text_field("TITEL"),
        mineral_name=text_field("MineralName"),
        formula=text_field("Formula"),
        reference=text_field("Reference"),
        warnings=tuple(warnings),
    )


def _reject_non_structures(parsed: BgmnFile, source: str) -> None:
    """Peak-list and Le Bail phases, files without atoms, rigid-body models."""
    fields = parsed.assignments
    if "GeneralCondition" in fields:
        raise StructureReadError(
            f"{source}: a peak-list phase (GeneralCondition=), not a crystal structure"
        )
    if not parsed.atoms:
        if fields.get("LeBail", ("0", 0))[0].strip() not in ("", "0"):
            raise StructureReadError(
                f"{source}: a Le Bail phase (LeBail=1) without atoms, not a crystal structure"
            )
        if not any(k in fields for k in (*_KEY_SPACEGROUP, "HermannMauguin", "A")):
            raise StructureReadError(
                f"{source}: not a BGMN structure file: no SpacegroupNo=, cell or E= atoms"
            )
        raise StructureReadError(f"{source}: no atoms: the file defines no E= lines")
    if any(re.match(r"set(gitter)?\(", s) for s, _ in parsed.statements):
        raise StructureReadError(
            f"{source}: uses BGMN rigid-body definitions (set(...)) whose atoms are computed "
            "by BGMN at run time; not supported"
        )


def _best_setting(
    parsed: BgmnFile, candidates: list[Setting], cell: dict[str, float], source: str
) -> tuple[Setting, Structure, list[str]]:
    """Build the structure in each candidate setting and keep the most plausible.

    Where the file does not say which origin it uses (or states one its atoms
    do not fit), the setting whose atoms land on their Wyckoff positions and
    multiplicities without clashes wins; ties go to the first candidate (the
    stated origin, else origin choice 1).
    """
    results: list[tuple[int, Setting, Structure, list[str]]] = []
    errors: list[StructureReadError] = []
    for setting in candidates:
        try:
            lattice, cell_warnings = _lattice(setting, cell, source)
            structure, site_warnings, bad_sites = _build(parsed, setting, lattice, source)
        except StructureReadError as exc:
            errors.append(exc)
            continue
        score = bad_sites + count_clashes(structure)
        results.append((score, setting, structure, cell_warnings + site_warnings))
    if not results:
        raise errors[0]
    _, setting, structure, warnings = min(results, key=lambda r: r[0])
    if len(candidates) > 1:
        logger.info("%s: chose setting %s of %d", source, setting.symbol, len(candidates))
    return setting, structure, warnings


def _candidate_settings(fields: dict[str, tuple[str, int]], source: str) -> list[Setting]:
    number: int | None = None
    for key in _KEY_SPACEGROUP:
        if key in fields:
            text = fields[key][0].strip()
            if not text.isdigit() or not 1 <= int(text) <= 230:
                raise StructureReadError(f"{source}: {key}={text!r} is not a number 1-230")
            number = int(text)
            break
    symbol = fields.get("HermannMauguin", ("", 0))[0].strip()
    if symbol:
        settings = spacegroups.settings_for_symbol(symbol)
        if not settings:
            raise StructureReadError(
                f"{source}: unknown space-group symbol HermannMauguin={symbol!r}"
            )
        if number is not None and settings[0].number != number:
            raise StructureReadError(
                f"{source}: HermannMauguin={symbol} is space group {settings[0].number} "
                f"but SpacegroupNo={number}"
            )
        return settings
    if number is None:
        raise StructureReadError(f"{source}: no space group (SpacegroupNo= or HermannMauguin=)")
    return spacegroups.settings_for_number(number)


def _origin_hint(fields: dict[str, tuple[str, int]]) -> str | None:
    """ "1" or "2" when the file names the origin choice.

    Profex writes ``OriginChoice=``; older files only ``Setting=1``/``2``,
    which for these groups counts the origin choices.
    """
    for key in ("OriginChoice", "Setting"):
        value = fields.get(key, ("", 0))[0].strip()
        if value in ("1", "2"):
            return value
    return None


def _filter_axes(
    candidates: list[Setting], fields: dict[str, tuple[str, int]], cell: dict[str, float]
) -> list[Setting]:
    """Rhombohedral groups: rhombohedral axes when the cell has no C (a and an angle)."""
    if not any(s.choice in ("H", "R") for s in candidates):
        return candidates
    lattice_word = fields.get("Lattice", ("", 0))[0].strip().lower()
    rhombohedral = lattice_word == "rhombohedral" or (
        "C" not in cell
        and any(k in cell for k in ("ALPHA", "BETA", "GAMMA"))
        and cell.get("GAMMA", 0.0) != 120.0
    )
    wanted = "R" if rhombohedral else "H"
    return [s for s in candidates if s.choice == wanted] or candidates


def _cell_values(
    fields: dict[str, tuple[str, int]], scope: _Scope, source: str
) -> dict[str, float]:
    values = {}
    for key in _CELL_KEYS:
        if key in fields:
            text, line = fields[key]
            try:
                values[key] = scope.value(key)
            except ExpressionError as exc:
                raise StructureReadError(
                    f"{source}, line {line}: cell parameter {key}={text!r}: {exc}"
                ) from exc
    if "A" not in values:
        raise StructureReadError(f"{source}: no cell: lattice parameter A= is missing")
    return values


def _lattice(setting: Setting, cell: dict[str, float], source: str) -> tuple[Lattice, list[str]]:
    """The cell in angstrom, completed and constrained by the crystal system."""
    system = setting.crystal_system
    warnings: list[str] = []

    def need(key: str) -> float:
        if key not in cell:
            raise StructureReadError(f"{source}: no cell: {key}= is missing for a {system} cell")
        return cell[key]

    a = need("A")
    if system == "cubic":
        wanted = {"B": a, "C": a, "ALPHA": 90.0, "BETA": 90.0, "GAMMA": 90.0}
    elif system == "tetragonal":
        wanted = {"B": a, "C": need("C"), "ALPHA": 90.0, "BETA": 90.0, "GAMMA": 90.0}
    elif setting.rhombohedral_axes:
        given = [cell[k] for k in ("ALPHA", "BETA", "GAMMA") if k in cell]
        if not given:
            raise StructureReadError(f"{source}: no cell: rhombohedral axes need ALPHA=")
        wanted = {"B": a, "C": a, "ALPHA": given[0], "BETA": given[0], "GAMMA": given[0]}
    elif system in ("trigonal", "hexagonal"):
        wanted = {"B": a, "C": need("C"), "ALPHA": 90.0, "BETA": 90.0, "GAMMA": 120.0}
    elif system == "orthorhombic":
        wanted = {"B": need("B"), "C": need("C"), "ALPHA": 90.0, "BETA": 90.0, "GAMMA": 90.0}
    elif system == "monoclinic":
        unique = {"a": "ALPHA", "b": "BETA", "c": "GAMMA"}[setting.unique_axis or "b"]
        wanted = {"B": need("B"), "C": need("C"), "ALPHA": 90.0, "BETA": 90.0, "GAMMA": 90.0}
        wanted[unique] = cell.get(unique, 90.0)
    else:
        wanted = {
            "B": need("B"),
            "C": need("C"),
            "ALPHA": cell.get("ALPHA", 90.0),
            "BETA": cell.get("BETA", 90.0),
            "GAMMA": cell.get("GAMMA", 90.0),
        }
    for key, value in wanted.items():
        if key in cell:
            tolerance = (
                CELL_ANGLE_TOLERANCE_DEG
                if key in ("ALPHA", "BETA", "GAMMA")
                else (CELL_LENGTH_TOLERANCE * a)
            )
            if abs(cell[key] - value) > tolerance:
                warnings.append(
                    f"{key}={cell[key]:g} contradicts the {system} cell; used {value:g}"
                )
    lengths = [NM_TO_ANGSTROM * v for v in (a, wanted["B"], wanted["C"])]
    angles = [wanted["ALPHA"], wanted["BETA"], wanted["GAMMA"]]
    check_cell_parameters(
        (lengths[0], lengths[1], lengths[2]), (angles[0], angles[1], angles[2]), source
    )
    try:
        lattice = Lattice.from_parameters(*lengths, *angles)
    except ValueError as exc:
        raise StructureReadError(f"{source}: impossible cell angles {angles}: {exc}") from exc
    check_cell(lattice, source)
    return lattice, warnings


def _species(atom: BgmnAtom, scope: _Scope, source: str) -> dict[str, float]:
    """Element -> occupancy for one ``E=`` value."""
    text = atom.species.strip()
    where = f"{source}, line {atom.line}"
    inner = text[1:-1] if text.startswith("(") and text.endswith(")") else text
    items = _split_commas(inner)  # "E=FE+2,MG+2(p)" lists a mixed site without parentheses
    parsed: list[tuple[str, float | None]] = []
    for item in items:
        match = _SPECIES_ITEM.fullmatch(item.strip())
        if not match:
            raise StructureReadError(f"{where}: cannot read element {item!r} in E={text}")
        symbol = match.group(1).capitalize()
        if symbol == "D":  # deuterium scatters X-rays as hydrogen
            symbol = "H"
        if not Element.is_valid_symbol(symbol):
            raise StructureReadError(f"{where}: unknown element {match.group(1)!r} in E={text}")
        occupancy = None
        if match.group(3) is not None:
            try:
                occupancy = scope.expression(match.group(3))
            except ExpressionError as exc:
                raise StructureReadError(f"{where}: occupancy of {symbol}: {exc}") from exc
        parsed.append((symbol, occupancy))
    # An element without occupancy takes what the others leave of the site
    # (E=(MG+2,FE+2(p)) is Mg 1-p, Fe p); a lone element is fully occupied.
    given = sum(o for _, o in parsed if o is not None)
    missing = [s for s, o in parsed if o is None]
    share = max(0.0, 1.0 - given) / len(missing) if missing else 0.0
    if len(parsed) == 1 and missing:
        share = 1.0
    species: dict[str, float] = {}
    for symbol, occupancy in parsed:
        value = share if occupancy is None else occupancy
        if value < -1e-9:
            raise StructureReadError(f"{where}: negative occupancy {value:g} of {symbol}")
        species[symbol] = species.get(symbol, 0.0) + max(value, 0.0)
    return species


def _split_commas(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += (char == "(") - (char == ")")
        current += char
    parts.append(current)
    return parts


def _build(
    parsed: BgmnFile, setting: Setting, lattice: Lattice, source: str
) -> tuple[Structure, list[str], int]:
    """Apply the setting's operations to every atom.

    Returns the structure, warnings, and how many atoms did not land on their
    Wyckoff multiplicity (used to choose between candidate settings).
    """
    matrix = lattice.matrix
    letters = spacegroups.wyckoff_letters(setting)
    warnings: list[str] = []
    bad_sites = 0
    duplicates = 0
    positions: list[np.ndarray] = []
    contents: list[dict[str, float]] = []
    b_factors: list[list[float]] = []
    for atom in parsed.atoms:
        where = f"{source}, line {atom.line}"
        scope = _Scope(parsed, atom.local)
        species = _species(atom, scope, source)
        letter = atom.local.get("Wyckoff", "").strip()
        if not letter:
            raise StructureReadError(f"{where}: atom E={atom.species} has no Wyckoff= position")
        if letter not in letters:
            raise StructureReadError(
                f"{where}: space group {setting.number} has no Wyckoff position {letter!r} "
                f"(it has {', '.join(letters)})"
            )
        given: list[float | None] = []
        for axis in "xyz":
            if axis in atom.local:
                try:
                    given.append(scope.expression(atom.local[axis]))
                except ExpressionError as exc:
                    raise StructureReadError(f"{where}: coordinate {axis}: {exc}") from exc
            else:
                given.append(None)
        wp = spacegroups.wyckoff_position(setting, letter)
        placement = spacegroups.place_on_wyckoff(wp, (given[0], given[1], given[2]), matrix)
        label = f"{'/'.join(species)} ({letter}, line {atom.line})"
        if placement.undetermined:
            warnings.append(
                f"{label}: free coordinate(s) {', '.join(placement.undetermined)} not given; set to 0"
            )
        frac = placement.frac
        images = spacegroups.orbit(setting, frac, matrix)
        if placement.moved_angstrom > MOVED_WARNING_ANGSTROM:
            bad_sites += 1
            as_given: np.ndarray | None = None
            given_images: np.ndarray | None = None
            if None not in given:
                as_given = np.mod(np.array(given, dtype=float), 1.0)
                given_images = spacegroups.orbit(setting, as_given, matrix)
            if (
                as_given is not None
                and given_images is not None
                and len(given_images) == wp.multiplicity
                and not _lands_on(given_images, positions, matrix)
            ):
                # Converted files often carry a wrong letter with exact
                # coordinates of another position of the same multiplicity.
                # (Hand-written files put x=0 y=0 z=0 as placeholders; those
                # land on an atom already placed and are projected instead.)
                frac, images = as_given, given_images
                warnings.append(
                    f"{label}: coordinates are not on Wyckoff position {letter} but on another "
                    f"position of the same multiplicity; used the coordinates"
                )
            else:
                warnings.append(
                    f"{label}: coordinates are {placement.moved_angstrom:.2f} A off Wyckoff "
                    f"position {letter}; moved onto it"
                )
        if len(images) != wp.multiplicity:
            warnings.append(
                f"{label}: {len(images)} atoms in the cell, Wyckoff {letter} has {wp.multiplicity}"
            )
            bad_sites += 1
        tds_text = atom.local.get("TDS") or parsed.assignments.get("TDS", (None, 0))[0]
        b_iso = math.nan
        if tds_text:
            try:
                b_iso = TDS_NM2_TO_B_ANGSTROM2 * scope.expression(tds_text)
            except ExpressionError:
                b_iso = math.nan  # thermal factors are optional; the structure stands
        if _add_sites(positions, contents, b_factors, images, species, b_iso, matrix):
            duplicates += 1
        if len(positions) > MAX_SITES:
            raise StructureReadError(
                f"{source}: more than {MAX_SITES} atoms in the cell by line {atom.line}, "
                "more than references may hold (huge cell)"
            )

    if duplicates:
        warnings.append(
            f"{duplicates} atoms repeat atoms already placed (symmetry copies); dropped"
        )
    total = [sum(c.values()) for c in contents]
    over = [i for i, t in enumerate(total) if t > OCCUPANCY_TOLERANCE]
    if over:
        i = over[0]
        raise StructureReadError(
            f"{source}: occupancy {total[i]:.3f} > 1 at {np.round(positions[i], 4).tolist()} "
            f"({', '.join(f'{k}:{v:g}' for k, v in contents[i].items())})"
        )
    for i, t in enumerate(total):
        if t > 1.0:
            contents[i] = {k: v / t for k, v in contents[i].items()}
    if any(t > 1.0 for t in total):
        warnings.append("site occupancies slightly above 1 scaled down to 1")
    keep = [i for i, t in enumerate(total) if t > 1e-6]
    if not keep:
        raise StructureReadError(f"{source}: no atoms: every site has zero occupancy")
    b_mean = [_mean_known(b) for b in b_factors]
    properties = {}
    if not any(math.isnan(b_mean[i]) for i in keep):
        properties["b_iso_angstrom2"] = [b_mean[i] for i in keep]
    structure = Structure(
        lattice,
        [contents[i] for i in keep],
        [positions[i] for i in keep],
        site_properties=properties or None,
    )
    return structure, warnings, bad_sites


def _add_sites(
    positions: list[np.ndarray],
    contents: list[dict[str, float]],
    b_factors: list[list[float]],
    images: np.ndarray,
    species: dict[str, float],
    b_iso: float,
    matrix: np.ndarray,
) -> int:
    """Add an atom's images, merging each into a site already at its place (mixed sites).

    An image that repeats an atom already there (same elements and
    occupancies, together over-full) is dropped: files list symmetry copies
    as atoms. Returns how many images were dropped.
    """
    nearest = np.full(len(images), -1)
    if positions:
        delta = images[:, None, :] - np.asarray(positions)[None, :, :]
        delta -= np.round(delta)
        distances = np.linalg.norm(delta @ matrix, axis=2)
        closest = np.argmin(distances, axis=1)
        hit = distances[np.arange(len(images)), closest] < spacegroups.SAME_SITE_ANGSTROM
        nearest[hit] = closest[hit]
    dropped = 0
    full = sum(species.values()) * 2 > OCCUPANCY_TOLERANCE
    for image, i in zip(images, nearest, strict=True):
        if i < 0:
            positions.append(image)
            contents.append(dict(species))
            b_factors.append([b_iso])
        elif full and _same_species(contents[i], species):
            dropped += 1
        else:
            for element, occupancy in species.items():
                contents[i][element] = contents[i].get(element, 0.0) + occupancy
            b_factors[i].append(b_iso)
    return dropped


def _lands_on(images: np.ndarray, positions: list[np.ndarray], matrix: np.ndarray) -> bool:
    """Whether any image is where an atom was already placed."""
    if not positions:
        return False
    delta = images[:, None, :] - np.asarray(positions)[None, :, :]
    delta -= np.round(delta)
    return bool(np.min(np.linalg.norm(delta @ matrix, axis=2)) < spacegroups.SAME_SITE_ANGSTROM)


def _mean_known(values: list[float]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return sum(known) / len(known) if known else math.nan


def _same_species(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-3 for k in a)
