"""Space-group settings: Hall database, symbol matching, Wyckoff positions in any setting."""

import numpy as np
import pytest
import spglib
from pyxtal.symmetry import pyxtal_hall_numbers

from xrdid.structures import spacegroups as sg

# A point with no special coordinate values, for orbits of Wyckoff positions.
GENERIC_U = np.array([0.1234, 0.3561, 0.7213])


def _op_set(rotations: np.ndarray, translations: np.ndarray) -> set[tuple[int, ...]]:
    return {
        tuple(np.round(r).astype(int).ravel()) + tuple(np.round(np.mod(t, 1) * 48).astype(int) % 48)
        for r, t in zip(rotations, translations, strict=True)
    }


@pytest.mark.parametrize("hall", range(1, sg.N_HALL_SETTINGS + 1))
def test_transformation_maps_every_setting_onto_the_standard(hall: int) -> None:
    setting = sg.setting_from_hall(hall)
    standard = sg.setting_from_hall(pyxtal_hall_numbers[setting.number - 1])
    m, p = setting.to_standard, setting.standard_shift
    m_inv = np.linalg.inv(m)
    rotations = [m @ r @ m_inv for r in setting.rotations]
    translations = [
        m @ t + p - (m @ r @ m_inv) @ p
        for r, t in zip(setting.rotations, setting.translations, strict=True)
    ]
    # A smaller cell (rhombohedral axes) lacks the standard's centring translations.
    centring = [
        t
        for r, t in zip(standard.rotations, standard.translations, strict=True)
        if np.allclose(r, np.eye(3))
    ]
    mapped = _op_set(
        np.array([r for r in rotations for _ in centring]),
        np.array([t + c for t in translations for c in centring]),
    )
    assert mapped == _op_set(standard.rotations, standard.translations)


@pytest.mark.parametrize(
    "hall", [1, 2, 81, 90, 92, 290, 304, 365, 434, 460, 461, 488, 508, 525, 526, 529]
)
def test_wyckoff_orbits_have_the_tabulated_multiplicity(hall: int) -> None:
    setting = sg.setting_from_hall(hall)
    lattice = np.diag([7.1, 8.3, 9.7]) if setting.crystal_system != "hexagonal" else np.eye(3) * 7
    for letter in sg.wyckoff_letters(setting):
        wp = sg.wyckoff_position(setting, letter)
        linear, offset = wp.members[0]
        images = sg.orbit(setting, linear @ GENERIC_U + offset, lattice)
        assert len(images) == wp.multiplicity, letter


@pytest.mark.parametrize(
    ("symbol", "full", "choice"),
    [
        ("P12_1/n1", "P 1 2_1/n 1", "b2"),
        ("P 1 21/n 1", "P 1 2_1/n 1", "b2"),
        ("P2_1/c", "P 1 2_1/c 1", "b1"),
        ("P112_1/b", "P 1 1 2_1/b", "c3"),
        ("I12/a1", "I 1 2/a 1", "b3"),
        ("A12/a1", "A 1 2/a 1", "-b1"),
        ("P2_1/b2_1/c2_1/a", "P 2_1/b 2_1/c 2_1/a", ""),
        ("Pbca", "P 2_1/b 2_1/c 2_1/a", ""),
        ("Pbnm", "P 2_1/b 2_1/n 2_1/m", "cab"),
        ("Cmca", "C 2/m 2/c 2_1/e", ""),
        ("B2/m2_1/m2/b", "B 2/m 2_1/m 2/b", "a-cb"),
        ("Pn2_1a", "P n 2_1 a", "a-cb"),
        ("P4/m2_1/n2/c", "P 4/m 2_1/n c", ""),
        ("I2_1/m2_1/m2_1/a", "I 2/m 2/m 2/a", ""),
        ("Fd-3m:2", "F 4_1/d -3 2/m", "2"),
        ("R-3c:R", "R -3 2/c", "R"),
    ],
)
def test_symbols_name_their_settings(symbol: str, full: str, choice: str) -> None:
    found = sg.settings_for_symbol(symbol)
    assert len(found) == 1, symbol
    spglib_type = spglib.get_spacegroup_type(found[0].hall_number)
    assert (spglib_type.international_full, spglib_type.choice) == (full, choice)


def test_every_full_symbol_of_spglib_is_recognised() -> None:
    for hall in range(1, sg.N_HALL_SETTINGS + 1):
        full = spglib.get_spacegroup_type(hall).international_full
        assert hall in [s.hall_number for s in sg.settings_for_symbol(full)], full


def test_ambiguous_symbols_return_every_choice() -> None:
    assert {s.choice for s in sg.settings_for_symbol("F4_1/d-32/m")} == {"1", "2"}
    assert {s.choice for s in sg.settings_for_symbol("R-32/c")} == {"H", "R"}
    assert sg.settings_for_symbol("Q12") == []


def test_centred_triclinic_cells_double_the_operations() -> None:
    (setting,) = sg.settings_for_symbol("C-1")
    assert setting.number == 2
    assert len(setting.rotations) == 4
    assert sg.wyckoff_position(setting, "i").multiplicity == 4


def test_quartz_silicon_needs_only_x() -> None:
    """P3_221, 3a is (x, 0, 2/3): a file giving x alone fixes the atom."""
    setting = sg.settings_for_symbol("P3_221")[0]
    wp = sg.wyckoff_position(setting, "a")
    lattice = np.array([[4.9, 0, 0], [-2.45, 4.244, 0], [0, 0, 5.4]])
    placed = sg.place_on_wyckoff(wp, (0.47, None, None), lattice)
    assert placed.frac == pytest.approx([0.47, 0.0, 2 / 3])
    assert placed.undetermined == ()


def test_coordinates_match_other_orbit_members_modulo_one() -> None:
    """(x, -x, z) is satisfied by (0.4614, 0.5386, z): -x = 0.5386 - 1."""
    setting = sg.settings_for_symbol("P6_3mc")[0]
    wp = sg.wyckoff_position(setting, "c")
    lattice = np.array([[4.4, 0, 0], [-2.2, 3.81, 0], [0, 0, 7.2]])
    placed = sg.place_on_wyckoff(wp, (0.4614, 0.5386, 0.427), lattice)
    assert placed.moved_angstrom < 1e-6
    assert placed.frac == pytest.approx([0.4614, 0.5386, 0.427])


def test_crystal_system_by_number() -> None:
    assert [sg.crystal_system(n) for n in (1, 14, 62, 139, 167, 194, 227)] == [
        "triclinic",
        "monoclinic",
        "orthorhombic",
        "tetragonal",
        "trigonal",
        "hexagonal",
        "cubic",
    ]
    with pytest.raises(ValueError):
        sg.crystal_system(231)
