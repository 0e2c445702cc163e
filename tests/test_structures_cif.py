"""CIF reader: malformed files become StructureReadError with the reason; repairs hold."""

import time
from pathlib import Path

import pytest

from xrdid.errors import StructureReadError
from xrdid.structures import read_structure, read_structures

HALITE = """data_halite
_chemical_name_mineral 'Halite'
_chemical_formula_sum 'Cl Na'
_cell_length_a 5.64
_cell_length_b 5.64
_cell_length_c 5.64
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'F m -3 m'
_space_group_IT_number 225
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Na1 Na+ 0 0 0 1
Cl1 Cl- 0.5 0.5 0.5 1
"""

CELL = """_cell_length_a 5.0
_cell_length_b 6.0
_cell_length_c 7.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
"""


def _write(tmp_path: Path, text: str | bytes, name: str = "test.cif") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_halite_reads_with_metadata(tmp_path: Path) -> None:
    halite = read_structure(_write(tmp_path, HALITE, "NaCl.cif"))
    assert halite.formula == "NaCl"
    assert len(halite.structure) == 8
    assert halite.name == "Halite"
    assert halite.space_group_number == 225
    assert halite.space_group_symbol == "Fm-3m"
    assert halite.crystal_system == "cubic"
    assert halite.source_id == "NaCl"
    assert halite.source_path == str(tmp_path / "NaCl.cif")
    assert halite.warnings == ()
    # Charges are dropped: every site holds a plain element.
    assert {str(sp) for sp in halite.structure.composition} == {"Na", "Cl"}


def test_bytes_need_no_file(tmp_path: Path) -> None:
    halite = read_structure(HALITE.encode())
    assert halite.formula == "NaCl"
    assert halite.source_path is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("   \n\n", "empty file"),
        ("this is not a crystal structure\n1 2 3\n", "not a CIF: no data_ block"),
        (b"\x00\x01\x02binary", "not a text file"),
        ("data_x\n" + CELL, "no atoms"),
        (
            "data_x\nloop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n"
            "_atom_site_fract_z\nNa1 0 0 0\n",
            "no cell",
        ),
        (
            "data_x\n"
            + CELL
            + "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_z\nNa1 0 0\n",
            "missing coordinates: no _atom_site_fract_y",
        ),
        (
            "data_x\n" + CELL + "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n"
            "_atom_site_fract_z\n_atom_site_occupancy\nNa1 0 0 0 1.6\n",
            "occupancy 1.600 > 1",
        ),
        (
            "data_x\n" + CELL + "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n"
            "_atom_site_fract_z\nNa1 0 0 0\nCl1 0.02 0 0\n",
            "overlapping atoms",
        ),
        (
            "data_x\n" + CELL + "loop_\n_symmetry_equiv_pos_as_xyz\nx,y,z\n'x,y,z+w'\n"
            "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\nNa1 0 0 0\n",
            "unparseable symmetry operation",
        ),
        (
            "data_x\n" + CELL + "loop_\n_symmetry_equiv_pos_as_xyz\nx,y,z\n-y,x,z\n0.1+x,y,z\n"
            "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\nNa1 0 0 0\n",
            "unparseable symmetry",
        ),
        (
            "data_x\n" + CELL.replace("_cell_angle_alpha 90\n", "") + "loop_\n_atom_site_label\n"
            "_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\nNa1 0 0 0\n",
            "incomplete cell: _cell_angle_alpha",
        ),
        (
            "data_x\n" + CELL + "_symmetry_space_group_name_H-M 'Q 9 9'\n"
            "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\nNa1 0 0 0\n",
            "unknown space group",
        ),
        (
            "data_x\n" + CELL + "_space_group_magn.name_BNS 'P 1'\nloop_\n_atom_site_label\n"
            "_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\nFe1 0 0 0\n",
            "magnetic CIF",
        ),
        (
            "data_x\n"
            + CELL.replace("5.0", "1").replace("6.0", "1").replace("7.0", "1")
            + "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\nPb1 0 0 0\n",
            "implausible density",
        ),
    ],
)
def test_malformed_cifs_say_what_is_wrong(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    with pytest.raises(StructureReadError, match=message):
        read_structure(_write(tmp_path, content))


def test_huge_cell_is_rejected(tmp_path: Path) -> None:
    """200 atoms in general positions of Pm-3m make 9,600 in the cell."""
    rows = "".join(
        f"C{i} {0.01 + i / 450:.5f} {0.02 + i / 470:.5f} {0.03 + i / 490:.5f}\n" for i in range(200)
    )
    text = (
        "data_x\n"
        + CELL.replace("5.0", "80").replace("6.0", "80").replace("7.0", "80")
        + "_symmetry_space_group_name_H-M 'P m -3 m'\n"
        + "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
        + rows
    )
    with pytest.raises(StructureReadError, match="huge cell"):
        read_structure(_write(tmp_path, text))


ATOM_LOOP = (
    "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
    "Na1 0 0 0\n"
)


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("_cell_length_a 5.0", "_cell_length_a -5", "must be positive"),
        ("_cell_length_b 6.0", "_cell_length_b 0", "must be positive"),
        ("_cell_angle_beta 90", "_cell_angle_beta 180", "between 0 and 180"),
        ("_cell_angle_beta 90", "_cell_angle_beta -90", "between 0 and 180"),
        # 150 + 150 + 90 > 360: three such angles cannot meet in one corner.
        (
            "_cell_angle_alpha 90\n_cell_angle_beta 90",
            "_cell_angle_alpha 150\n_cell_angle_beta 150",
            "cannot meet",
        ),
        ("_cell_length_c 7.0", "_cell_length_c nan", "missing or not a number"),
    ],
)
def test_impossible_cells_are_refused(tmp_path: Path, replace: str, by: str, message: str) -> None:
    """Checked on the numbers as written (a lattice of a = -5 has |a| = 5)."""
    text = "data_x\n" + CELL.replace(replace, by) + ATOM_LOOP
    assert by in text
    with pytest.raises(StructureReadError, match=message):
        read_structure(_write(tmp_path, text))


def test_only_blocks_up_to_the_first_usable_are_read(tmp_path: Path) -> None:
    """3,000 blocks cost what the first costs; a file of unusable blocks stops early."""
    many = HALITE + "".join(HALITE.replace("data_halite", f"data_copy{i}") for i in range(3000))
    started = time.perf_counter()
    assert read_structure(many.encode(), "many.cif").formula == "NaCl"
    assert time.perf_counter() - started < 2.0
    broken = "data_global\n_journal_year 1999\n" + "".join(
        f"data_b{i}\n" + CELL + "\n" for i in range(3000)
    )
    started = time.perf_counter()
    with pytest.raises(StructureReadError, match="none of the first 20 data blocks"):
        read_structure(broken.encode(), "broken.cif")
    assert time.perf_counter() - started < 5.0


def test_too_many_atom_rows_are_refused_before_any_per_atom_work(tmp_path: Path) -> None:
    """50,000 listed atoms: refused at once (the copy search is quadratic)."""
    rows = "".join(f"C{i} {i / 50000:.6f} 0.1 0.2\n" for i in range(50_000))
    text = "data_x\n" + CELL.replace("5.0", "200").replace("6.0", "200").replace("7.0", "200")
    text += "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
    started = time.perf_counter()
    with pytest.raises(StructureReadError, match="50000 atoms listed"):
        read_structure((text + rows).encode(), "huge.cif")
    assert time.perf_counter() - started < 10.0


def test_missing_file_is_a_read_error(tmp_path: Path) -> None:
    with pytest.raises(StructureReadError, match="cannot read file"):
        read_structure(tmp_path / "absent.cif")


def test_several_blocks(tmp_path: Path) -> None:
    text = (
        "data_global\n_journal_year 1999\n"
        + HALITE
        + HALITE.replace("data_halite", "data_second").replace("5.64", "5.70")
    )
    path = _write(tmp_path, text)
    references = read_structures(path)
    assert [r.source_id for r in references] == ["test/halite", "test/second"]
    assert read_structure(path).structure.lattice.a == pytest.approx(5.64)


def test_repairs_case_unknown_occupancy_missing_identity_and_copies(tmp_path: Path) -> None:
    text = (
        "data_x\n"
        + CELL.replace("90\n", "90\n", 1)
        + "loop_\n_symmetry_equiv_pos_as_xyz\n-x,-y,-z\n"
        "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_Y\n"
        "_atom_site_fract_z\n_atom_site_occupancy\n"
        "Ca1 Ca 0.1 0.2 0.3 ?\nCa1a Ca -0.1 -0.2 -0.3 ?\nD1 D 0.3 0.3 0.1 1\n"
    )
    reference = read_structure(_write(tmp_path, text))
    assert reference.structure.composition.as_dict() == pytest.approx({"Ca": 2.0, "H": 2.0})
    assert any("completed to 2" in w for w in reference.warnings)
    assert any("symmetry copies were dropped" in w for w in reference.warnings)


def test_declared_p1_gets_the_real_space_group(tmp_path: Path) -> None:
    text = HALITE.replace("'F m -3 m'", "'P 1'").replace("225", "1")
    rows = "".join(
        f"Na{i} Na {x} {y} {z} 1\n"
        for i, (x, y, z) in enumerate([(0, 0, 0), (0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0)])
    ) + "".join(
        f"Cl{i} Cl {x} {y} {z} 1\n"
        for i, (x, y, z) in enumerate([(0.5, 0.5, 0.5), (0.5, 0, 0), (0, 0.5, 0), (0, 0, 0.5)])
    )
    text = text.split("Na1 Na+")[0] + rows
    reference = read_structure(_write(tmp_path, text))
    assert reference.space_group_number == 225
    assert any("declares P1" in w for w in reference.warnings)


@pytest.mark.parametrize(
    ("name", "formula", "n_sites"),
    [
        ("cod/2006199.cif", "PH21C15S(N2O)2", None),  # symmetry operations without the identity
        ("cod/4300081.cif", None, None),  # _atom_site_fract_Y in upper case
        ("cod/1000002.cif", "SrH3C3O7", 56),  # '?' occupancies, deuterium
        ("cod/2101258.cif", None, None),  # Hall symbol fixes the origin choice
        ("cod/5910234.cif", "AlPS4", 12),  # every atom listed plus symmetry
        ("cod/1523050.cif", None, None),  # periodic images listed as atoms
        ("cod/2009397.cif", None, None),  # a wrong operation; the symbol is used
        ("cod/2310693.cif", "KAl3H6(SO7)2", None),  # 1/6 written as 0.1667
        ("elements/In.cif", "In", 2),
    ],
)
def test_odd_shared_files_are_repaired(
    structures_dir: Path, name: str, formula: str | None, n_sites: int | None
) -> None:
    reference = read_structure(structures_dir / name)
    if formula:
        assert reference.formula == formula
    if n_sites:
        assert len(reference.structure) == n_sites


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("amcsd/14335.cif", "labels read as Ho"),
        ("dans_diffraction/MnO.mcif", "magnetic CIF"),
        ("cod/2104374.cif", "huge cell"),
    ],
)
def test_bad_shared_files_are_rejected(structures_dir: Path, name: str, message: str) -> None:
    with pytest.raises(StructureReadError, match=message):
        read_structure(structures_dir / name)
