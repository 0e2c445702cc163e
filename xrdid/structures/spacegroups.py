"""Space-group settings: symbols to symmetry operations and Wyckoff positions.

Symmetry operations of all 530 settings (origin choices, cell choices, unique
axes, rhombohedral or hexagonal axes) come from spglib's Hall-number database.
Wyckoff positions come from pyxtal's tables, which are written for one
standard setting per space group (origin choice 2, hexagonal axes, unique axis
b, cell choice 1); they are carried into any other setting with the
transformation that pyxtal tabulates for each Hall number (International
Tables for Crystallography, Vol. A, Table 4.3.2.1 conventions).

Coordinates transform as ``x_standard = M @ x_setting + shift``; the tests
check for every Hall number that this maps the setting's operations onto the
standard ones.
"""

from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import spglib
from pyxtal.symmetry import HALL_TABLE, Group, abc2matrix, pyxtal_hall_numbers

N_HALL_SETTINGS = 530

# Centring translations by lattice letter, for the centred triclinic cells
# (C-1, I-1, F-1, A1, ...) that BGMN accepts but spglib has no Hall number for.
CENTRING_VECTORS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "P": ((0.0, 0.0, 0.0),),
    "A": ((0.0, 0.0, 0.0), (0.0, 0.5, 0.5)),
    "B": ((0.0, 0.0, 0.0), (0.5, 0.0, 0.5)),
    "C": ((0.0, 0.0, 0.0), (0.5, 0.5, 0.0)),
    "I": ((0.0, 0.0, 0.0), (0.5, 0.5, 0.5)),
    "F": ((0.0, 0.0, 0.0), (0.0, 0.5, 0.5), (0.5, 0.0, 0.5), (0.5, 0.5, 0.0)),
}

RHOMBOHEDRAL_NUMBERS = frozenset({146, 148, 155, 160, 161, 166, 167})

# Groups with two origin choices in International Tables (Vol. A).
TWO_ORIGIN_NUMBERS = frozenset(
    {48, 50, 59, 68, 70, 85, 86, 88, 125, 126, 129, 130, 133, 134, 137, 138, 141, 142}
    | {201, 203, 222, 224, 227, 228}
)

# Two fractional positions closer than this (in angstrom) are the same site.
SAME_SITE_ANGSTROM = 0.01


def crystal_system(number: int) -> str:
    """The crystal system of space group ``number`` (1-230)."""
    if not 1 <= number <= 230:
        raise ValueError(f"space-group number {number} is outside 1-230")
    for upper, name in (
        (2, "triclinic"),
        (15, "monoclinic"),
        (74, "orthorhombic"),
        (142, "tetragonal"),
        (167, "trigonal"),
        (194, "hexagonal"),
        (230, "cubic"),
    ):
        if number <= upper:
            return name
    raise AssertionError("unreachable")


@dataclass(frozen=True, eq=False)
class Setting:
    """One setting of a space group, with its operations in its own axes.

    ``rotations`` (n_ops, 3, 3) and ``translations`` (n_ops, 3) include the
    centring translations. ``to_standard`` and ``standard_shift`` map
    fractional coordinates into pyxtal's standard setting of the group.
    """

    number: int
    symbol: str  # full Hermann-Mauguin symbol with the choice, e.g. "P 1 2_1/n 1"
    hall_number: int | None  # None for centred triclinic cells
    choice: str  # spglib's choice: "", "1", "2", "H", "R", "b1", "-c2", ...
    rotations: np.ndarray
    translations: np.ndarray
    to_standard: np.ndarray
    standard_shift: np.ndarray

    @property
    def crystal_system(self) -> str:
        return crystal_system(self.number)

    @property
    def rhombohedral_axes(self) -> bool:
        return self.choice == "R"

    @property
    def unique_axis(self) -> str | None:
        """'a', 'b' or 'c' for monoclinic settings, else None."""
        if self.crystal_system != "monoclinic":
            return None
        if self.hall_number is None:
            return "b"
        return self.choice.lstrip("-")[:1] or "b"

    @property
    def short_symbol(self) -> str:
        """The standard short symbol of the group, e.g. ``P2_1/c``."""
        return standard_short_symbol(self.number)


@dataclass(frozen=True, eq=False)
class WyckoffPosition:
    """A Wyckoff position in a setting's axes.

    ``members`` lists the affine subspaces of the orbit, each as
    ``(linear (3, 3), offset (3,))`` with points ``linear @ u + offset``; the
    first is the representative carried over from the standard setting.
    """

    letter: str
    multiplicity: int  # in the setting's cell, centring included
    members: tuple[tuple[np.ndarray, np.ndarray], ...]


def spacegroup_type(hall: int) -> Any:
    """spglib's description of Hall number ``hall`` (its deprecation chatter silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        sg = spglib.get_spacegroup_type(hall)
    if sg is None:  # pragma: no cover - spglib's database is complete
        raise RuntimeError(f"spglib has no Hall number {hall}")
    return sg


def _database_operations(hall: int) -> dict[str, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ops = spglib.get_symmetry_from_database(hall)
    if ops is None:  # pragma: no cover
        raise RuntimeError(f"spglib has no operations for Hall number {hall}")
    return ops


def normalise_symbol(symbol: str) -> str:
    """Compare-ready form of a Hermann-Mauguin symbol: no spaces, no quotes.

    Spaced spellings write screw axes without the underscore ("P 1 21/c 1");
    those become "2_1" (unspaced "P321" is P 3 2 1, so only spaced tokens).
    """
    tokens = symbol.replace("'", " ").replace('"', " ").split()
    if len(tokens) > 1:
        tokens = [re.sub(r"^(-?[2346])([1-5])(?=/|$)", r"\1_\2", t) for t in tokens]
    return "".join(tokens)


_COMPONENT = re.compile(r"-?[1-6](?:_[1-5])?(?:/[a-z])?|[a-z]")


def _symbol_key(symbol: str) -> str | None:
    """A key that is equal for two spellings of the same setting, or None.

    Full and short symbols give the same key: "P2_1/b2_1/n2_1/m" and "Pbnm" give
    "Pbnm"; "P4/m2_1/n2/c" and "P 4/m 2_1/n c" give "P4/mnc". Monoclinic symbols
    keep their 1s, which tell the unique axis ("P12_1/c1", "P112_1/b").
    """
    text = normalise_symbol(symbol)
    if not text or text[0].upper() not in "PABCIFR":
        return None
    lattice, rest = text[0].upper(), text[1:]
    parts = _COMPONENT.findall(rest)
    if "".join(parts) != rest or not parts:
        return None
    if len(parts) == 3 and parts.count("1") >= 2:
        return lattice + rest

    def letter(part: str) -> str:
        return part.split("/")[-1]

    if len(parts) >= 2 and parts[1] in ("3", "-3"):  # cubic: "Fd-3m"
        return lattice + "".join(letter(p) for p in parts)
    if any(p.lstrip("-")[:1] in "346" for p in parts if p[0] in "-123456"):
        return lattice + parts[0] + "".join(letter(p) for p in parts[1:])
    if len(parts) == 3:  # orthorhombic: "Pbnm"
        return lattice + "".join(letter(p) for p in parts)
    return lattice + rest


def _monoclinic_short_key(symbol: str) -> str | None:
    """ "P 1 2_1/c 1" -> "P2_1/c": the spelling without the unique-axis 1s."""
    text = normalise_symbol(symbol)
    parts = _COMPONENT.findall(text[1:])
    if len(parts) != 3 or parts.count("1") != 2:
        return None
    return text[0] + "".join(p for p in parts if p != "1")


def _keys_match(a: str, b: str) -> bool:
    """Equal keys, where the double glide e also matches its old names a, b, c."""
    return len(a) == len(b) and all(
        x == y or (x == "e" and y in "abc") or (y == "e" and x in "abc")
        for x, y in zip(a, b, strict=True)
    )


@functools.cache
def _hall_table() -> tuple[tuple[int, str, str | None, str], ...]:
    """(number, symbol key, monoclinic short key, choice) per Hall number."""
    rows = []
    for hall in range(1, N_HALL_SETTINGS + 1):
        sg = spacegroup_type(hall)
        key = _symbol_key(sg.international_full)
        assert key is not None, sg.international_full
        rows.append((sg.number, key, _monoclinic_short_key(sg.international_full), sg.choice))
    return tuple(rows)


@functools.cache
def standard_short_symbol(number: int) -> str:
    return str(spacegroup_type(pyxtal_hall_numbers[number - 1]).international_short)


@functools.cache
def setting_from_hall(hall: int) -> Setting:
    """The setting with spglib Hall number ``hall`` (1-530)."""
    if not 1 <= hall <= N_HALL_SETTINGS:
        raise ValueError(f"Hall number {hall} is outside 1-{N_HALL_SETTINGS}")
    sg = spacegroup_type(hall)
    ops = _database_operations(hall)
    rows, shift = abc2matrix(HALL_TABLE["P"][hall - 1])
    symbol = sg.international_full + (f" :{sg.choice}" if sg.choice else "")
    return Setting(
        number=sg.number,
        symbol=symbol,
        hall_number=hall,
        choice=sg.choice,
        rotations=np.asarray(ops["rotations"], dtype=int),
        translations=np.asarray(ops["translations"], dtype=float),
        # pyxtal lists the new basis vectors as rows; coordinates transform
        # with the transpose.
        to_standard=np.asarray(rows, dtype=float).T,
        standard_shift=np.asarray(shift, dtype=float),
    )


@functools.cache
def centred_triclinic_setting(centring: str, centrosymmetric: bool) -> Setting:
    """P1 or P-1 operations repeated over a centred cell (e.g. ``C-1``, ``A1``).

    Wyckoff letters keep their P-1 coordinates in the centred cell.
    """
    base = setting_from_hall(2 if centrosymmetric else 1)
    vectors = np.array(CENTRING_VECTORS[centring])
    rotations = np.concatenate([base.rotations for _ in vectors])
    translations = np.concatenate([base.translations + v for v in vectors])
    name = f"{centring} {'-1' if centrosymmetric else '1'}"
    return Setting(
        number=base.number,
        symbol=name,
        hall_number=None,
        choice="",
        rotations=rotations,
        translations=np.mod(translations, 1.0),
        to_standard=np.eye(3),
        standard_shift=np.zeros(3),
    )


def settings_for_symbol(symbol: str) -> list[Setting]:
    """All settings that ``symbol`` names, full or short spelling.

    An optional suffix ``:1``, ``:2`` (origin choice) or ``:H``, ``:R`` (axes)
    narrows the match. Returns an empty list when nothing matches.
    """
    return list(_settings_for_symbol(symbol))


@functools.lru_cache(maxsize=1024)
def _settings_for_symbol(symbol: str) -> tuple[Setting, ...]:
    text = normalise_symbol(symbol)
    choice = None
    if ":" in text:
        text, choice = text.split(":", 1)
        choice = choice.upper()
    triclinic = re.fullmatch(r"([ABCFI])(-?)1", text[:1].upper() + text[1:])
    if triclinic:
        return (centred_triclinic_setting(triclinic.group(1), bool(triclinic.group(2))),)
    key = _symbol_key(text)
    if key is None:
        return ()
    table = _hall_table()
    matches = [h for h, row in enumerate(table, start=1) if _keys_match(row[1], key)]
    if not matches:
        # Monoclinic short symbols ("P2_1/c") name the first setting that fits
        # once the 1s are dropped: unique axis b, cell choice 1.
        matches = [
            h
            for h, row in enumerate(table, start=1)
            if row[2] is not None and _keys_match(row[2], key)
        ][:1]
    if choice:
        matches = [h for h in matches if table[h - 1][3].upper() == choice]
    return tuple(setting_from_hall(h) for h in matches)


def settings_for_number(number: int) -> list[Setting]:
    """The default settings of space group ``number``.

    Unique axis b and cell choice 1 for monoclinic groups; both origin choices
    where there are two; hexagonal and rhombohedral axes for R groups.
    """
    if not 1 <= number <= 230:
        raise ValueError(f"space-group number {number} is outside 1-230")
    table = _hall_table()
    halls = [h for h, row in enumerate(table, start=1) if row[0] == number]
    keep = {"", "1", "2", "H", "R", "b", "b1"}
    return [setting_from_hall(h) for h in halls if table[h - 1][3] in keep]


@functools.cache
def _standard_wyckoff(number: int) -> dict[str, tuple[int, np.ndarray]]:
    """letter -> (multiplicity, representative affine 4x4) in pyxtal's standard setting."""
    group = Group(number)
    return {
        wp.letter: (int(wp.multiplicity), np.asarray(wp.ops[0].affine_matrix, dtype=float))
        for wp in group.Wyckoff_positions
    }


def wyckoff_letters(setting: Setting) -> tuple[str, ...]:
    return tuple(sorted(_standard_wyckoff(setting.number)))


@functools.lru_cache(maxsize=4096)
def wyckoff_position(setting: Setting, letter: str) -> WyckoffPosition:
    """Wyckoff position ``letter`` of ``setting`` in the setting's axes.

    Raises KeyError when the group has no such letter. Settings are cached
    singletons, so results are cached per setting and letter.
    """
    table = _standard_wyckoff(setting.number)
    if letter not in table:
        raise KeyError(letter)
    multiplicity_std, affine = table[letter]
    general_std = max(m for m, _ in table.values())
    multiplicity = round(multiplicity_std * len(setting.rotations) / general_std)

    # Representative x_std -> W x_std + w, carried into the setting:
    # x -> M^-1 (W (M x + p) + w - p).
    m, p = setting.to_standard, setting.standard_shift
    m_inv = np.linalg.inv(m)
    w_lin, w_off = affine[:3, :3], affine[:3, 3]
    linear = m_inv @ w_lin @ m
    offset = m_inv @ (w_lin @ p + w_off - p)

    members: list[tuple[np.ndarray, np.ndarray]] = []
    seen: set[tuple[float, ...]] = set()
    for rot, trans in zip(setting.rotations, setting.translations, strict=True):
        lin = rot @ linear
        off = np.mod(rot @ offset + trans, 1.0)
        key = tuple(np.round(lin, 6).ravel()) + tuple(np.round(off, 6) % 1.0)
        if key in seen:
            continue
        seen.add(key)
        members.append((lin, off))
    return WyckoffPosition(letter=letter, multiplicity=multiplicity, members=tuple(members))


def orbit(setting: Setting, frac: np.ndarray, lattice_matrix: np.ndarray) -> np.ndarray:
    """Distinct images of fractional position ``frac`` under the setting, in [0, 1).

    ``lattice_matrix`` (3, 3) has the lattice vectors in angstrom as rows; two
    images closer than SAME_SITE_ANGSTROM are one.
    """
    images = np.mod(np.einsum("nij,j->ni", setting.rotations, frac) + setting.translations, 1.0)
    delta = images[:, None, :] - images[None, :, :]
    delta -= np.round(delta)
    same = np.linalg.norm(delta @ lattice_matrix, axis=2) < SAME_SITE_ANGSTROM
    first = np.argmax(same, axis=1)  # the first image each one coincides with
    return images[first == np.arange(len(images))]


@dataclass(frozen=True, eq=False)
class Placement:
    """Where an atom lands on a Wyckoff position.

    ``frac`` lies exactly on the position; ``moved_angstrom`` is how far the
    file's coordinates were from it; ``undetermined`` names free coordinates
    the file did not give (set to the position's default, usually 0).
    """

    frac: np.ndarray
    moved_angstrom: float
    undetermined: tuple[str, ...]


# Coordinates within this distance of a Wyckoff position are on it (files
# round 1/3 to 0.333; on a 20 A axis that is 0.007 A).
ON_POSITION_ANGSTROM = 0.05


def place_on_wyckoff(
    wp: WyckoffPosition,
    given: tuple[float | None, float | None, float | None],
    lattice_matrix: np.ndarray,
) -> Placement:
    """Put an atom with coordinates ``given`` (None where missing) on ``wp``.

    Every member of the orbit is tried: the atom goes to the member that the
    given coordinates fit (within ON_POSITION_ANGSTROM) and determine; among
    several, the member whose free parameters are the given coordinates
    themselves ((x, x, z) rather than (z, x, x)), then the representative.
    When none fits, the nearest member wins and ``moved_angstrom`` says by
    how much.
    """
    axes = tuple(i for i, v in enumerate(given) if v is not None)
    values = np.array([given[i] for i in axes], dtype=float)
    best: tuple[tuple[float, ...], Placement] | None = None
    for order, (linear, offset) in enumerate(wp.members):
        rows, determined, identity_like = _fit_plan(wp, order, axes)
        frac, residual = _fit_member(linear, offset, axes, rows, values)
        moved = float(np.linalg.norm(residual @ lattice_matrix))
        fits = moved <= ON_POSITION_ANGSTROM
        rank = (
            0.0 if fits else 1.0,
            0.0 if determined else 1.0,
            -float(identity_like),
            moved if not fits else 0.0,
            float(order),
        )
        if best is None or rank < best[0]:
            free = [i for i in range(3) if np.any(np.abs(linear[i]) > 1e-9)]
            undetermined = () if determined else tuple("xyz"[i] for i in free if i not in axes)
            best = (rank, Placement(np.mod(frac, 1.0), moved, undetermined))
        if fits and determined and identity_like == len(axes):
            break  # cannot do better than the given coordinates themselves
    assert best is not None
    return best[1]


@functools.lru_cache(maxsize=65536)
def _fit_plan(
    wp: WyckoffPosition, member: int, axes: tuple[int, ...]
) -> tuple[tuple[int, ...], bool, int]:
    """Which given axes fix the free parameters of one member, and how well.

    Returns (indices into ``axes`` to solve from, whether they fix every free
    parameter, how many given axes are the parameter itself).
    """
    linear = wp.members[member][0]
    rank_all = np.linalg.matrix_rank(linear, tol=1e-9)
    chosen: list[int] = []
    order = sorted(
        range(len(axes)), key=lambda r: (np.count_nonzero(np.abs(linear[axes[r]]) > 1e-9), r)
    )
    for row in order:
        if not np.any(np.abs(linear[axes[row]]) > 1e-9):
            continue
        trial = chosen + [row]
        if np.linalg.matrix_rank(linear[[axes[r] for r in trial]], tol=1e-9) == len(trial):
            chosen = trial
    identity_like = sum(1 for i in axes if abs(linear[i, i] - 1.0) < 1e-9)
    return tuple(chosen), len(chosen) == rank_all, identity_like


def _fit_member(
    linear: np.ndarray,
    offset: np.ndarray,
    axes: tuple[int, ...],
    rows: tuple[int, ...],
    values: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Point ``linear @ u + offset`` matching ``values`` on ``axes`` modulo 1.

    The free parameters come from the given coordinates ``rows`` picked by
    _fit_plan (x of (x, -x, z) rather than -x); the other given coordinates
    are compared modulo 1, so 0.5386 fits -x for x = 0.4614. Returns the point
    and the fractional residual (zero on missing axes).
    """
    residual = np.zeros(3)
    u = np.zeros(3)
    if rows:
        picked = [axes[r] for r in rows]
        u = np.linalg.lstsq(linear[picked], values[list(rows)] - offset[picked], rcond=None)[0]
    point = linear @ u + offset
    if axes:
        diff = point[list(axes)] - values
        residual[list(axes)] = diff - np.round(diff)
    return point, residual
