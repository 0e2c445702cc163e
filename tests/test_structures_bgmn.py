"""BGMN .str reader: golden structures from the shared library and hand-written cases."""

from pathlib import Path

import pytest
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from xrdid.errors import StructureReadError
from xrdid.structures import read_structure
from xrdid.structures.bgmn import parse_bgmn


def _read(text: str):
    return read_structure(text.encode(), "test.str")


def _sg_number(reference) -> int:
    return SpacegroupAnalyzer(reference.structure, symprec=0.01).get_space_group_number()


@pytest.fixture(scope="module")
def bgmn_dir(structures_dir: Path) -> Path:
    return structures_dir / "bgmn"


@pytest.mark.parametrize(
    "name", ["Minerals/Quartz-p3121.str", "Minerals/Quartz-p3221.str", "BGMN/QUARTZ.STR"]
)
def test_quartz_has_three_si_and_six_o(bgmn_dir: Path, name: str) -> None:
    quartz = read_structure(bgmn_dir / name)
    assert len(quartz.structure) == 9
    assert quartz.formula == "SiO2"
    assert quartz.structure.composition.as_dict() == pytest.approx({"Si": 3.0, "O": 6.0})
    assert quartz.space_group_number in (152, 154)
    assert _sg_number(quartz) == quartz.space_group_number
    assert quartz.crystal_system == "trigonal"
    assert quartz.structure.lattice.a == pytest.approx(4.93, abs=0.05)  # nm in the file


@pytest.mark.parametrize(
    "name", ["Minerals/Calcite.str", "BGMN/Calcite.str", "Cement-PST/Calcite.str"]
)
def test_calcite_hexagonal_cell(bgmn_dir: Path, name: str) -> None:
    calcite = read_structure(bgmn_dir / name)
    assert calcite.formula == "CaCO3"
    assert len(calcite.structure) == 30
    assert _sg_number(calcite) == 167
    assert calcite.structure.lattice.gamma == pytest.approx(120)
    assert calcite.space_group_symbol == "R-3c"


@pytest.mark.parametrize(
    ("name", "setting", "n_sites", "number"),
    [
        ("Alumina-Titania-Zirconia-Yttria/Al2O3-theta.str", "C12/m1", 20, 12),
        ("Minerals/Gibbsite.str", "P12_1/n1", 56, 14),
        ("Minerals/Newberyite.str", "P2_1/b2_1/c2_1/a", 128, 61),
        ("BGMN/CLINOMIM.STR", "P112_1/b", 84, 14),
        ("Minerals/Gypsum.str", "I12/a1", 48, 15),
        ("Phosphate/Cu2P2O7-alpha.str", "A12/a1", 44, 15),
        ("Minerals/Albite.str", "C-1", 52, 2),
        ("Phosphate/NaCaPO4.str", "Pn2_1a", 84, 33),
        ("Minerals/Anhydrite.str", "B2/m2_1/m2/b", 24, 63),
        ("BGMN/Perowski.str", "P2_1/n2_1/m2_1/a", 20, 62),
    ],
)
def test_settings_give_the_right_cell_contents(
    bgmn_dir: Path, name: str, setting: str, n_sites: int, number: int
) -> None:
    assert f"HermannMauguin={setting}" in (bgmn_dir / name).read_text(errors="replace")
    reference = read_structure(bgmn_dir / name)
    assert len(reference.structure) == n_sites
    assert reference.space_group_number == number
    assert _sg_number(reference) == number


def test_origin_choice_is_chosen_by_atom_placement(bgmn_dir: Path) -> None:
    """SPINEL.STR names no origin; its coordinates fit origin choice 1."""
    spinel = read_structure(bgmn_dir / "BGMN/SPINEL.STR")
    assert len(spinel.structure) == 56
    assert _sg_number(spinel) == 227
    assert any("origin choice not stated" in w for w in spinel.warnings)


def test_stated_origin_that_the_atoms_contradict(bgmn_dir: Path) -> None:
    """CoFe2O4.str says origin 1 but gives origin-2 coordinates."""
    ferrite = read_structure(bgmn_dir / "Ceramics/CoFe2O4.str")
    assert len(ferrite.structure) == 56
    assert any("atoms fit" in w for w in ferrite.warnings)


def test_wrong_letter_with_exact_coordinates(bgmn_dir: Path) -> None:
    """Celadonite_1.str puts K on 'c' with the coordinates of 2d (1/2, 0, 1/2)."""
    celadonite = read_structure(bgmn_dir / "MarsMineralCompendium/Celadonite_1.str")
    potassium = [site for site in celadonite.structure if site.species_string == "K"]
    assert {tuple(round(x, 3) for x in site.frac_coords) for site in potassium} == {
        (0.5, 0.0, 0.5),
        (0.0, 0.5, 0.5),
    }
    assert any("used the coordinates" in w for w in celadonite.warnings)


def test_placeholder_coordinates_follow_the_letter(bgmn_dir: Path) -> None:
    """CRYOLITE.STR writes x=0 y=0 z=0 for Na on 2b, which is (1/2, 0, 0)."""
    cryolite = read_structure(bgmn_dir / "BGMN/CRYOLITE.STR")
    assert cryolite.formula == "Na3AlF6"
    assert len(cryolite.structure) == 20
    assert _sg_number(cryolite) == 14


def test_rhombohedral_axes(bgmn_dir: Path) -> None:
    hematite = read_structure(bgmn_dir / "MarsMineralCompendium/Hematite_1.str")
    assert len(hematite.structure) == 10  # 2 Fe2O3 in the rhombohedral cell
    lattice = hematite.structure.lattice
    assert lattice.a == pytest.approx(lattice.c)
    assert lattice.alpha == pytest.approx(55.28)
    assert _sg_number(hematite) == 167


QUARTZ = """PHASE=Quartz // a comment
SpacegropuNo=154 HermannMauguin=P3_221 //
PARAM=A=0.4913_0.49^0.4935 PARAM=C=0.5404_0.538^0.545 //
RP=4 PARAM=B1=0_0^0.01 GEWICHT=SPHAR4 GOAL:quartz=GEWICHT*ifthenelse(ifdef(d),exp(my*d*3/4),1)
E=SI+4 Wyckoff=a x=0.47 TDS=0.0056
E=O-2 Wyckoff=c x=0.415 y=0.268 z=0.786 TDS=0.0096
"""


def test_misspelt_spacegroup_key_and_missing_coordinates() -> None:
    quartz = _read(QUARTZ)
    assert len(quartz.structure) == 9
    assert quartz.space_group_number == 154
    assert quartz.name == "Quartz"
    assert quartz.structure.site_properties["b_iso_angstrom2"][0] == pytest.approx(0.56)


def test_parameters_expressions_and_mixed_sites() -> None:
    text = """PHASE=Test SpacegroupNo=225 HermannMauguin=F4/m-32/m
A=2*a0+0.1 PARAM=a0=0.2_0.1^0.3   // cell from a refinable parameter
PARAM=p=0.25_0^1
E=(NA+1(1-p),K+1(p)) Wyckoff=a
E=CL-1 Wyckoff=b x=0.5
"""
    reference = _read(text)
    assert reference.structure.lattice.a == pytest.approx(5.0)
    assert len(reference.structure) == 8
    assert reference.structure.composition.as_dict() == pytest.approx(
        {"Na": 3.0, "K": 1.0, "Cl": 4.0}
    )
    assert reference.elements == ("Cl", "K", "Na")


def test_element_without_occupancy_takes_the_rest_of_the_site() -> None:
    text = """SpacegroupNo=225 A=0.5
E=(MG+2,FE+2(p)) p=0.2 Wyckoff=a
E=O-2 Wyckoff=b
"""
    reference = _read(text)
    assert reference.structure.composition.as_dict() == pytest.approx(
        {"Mg": 3.2, "Fe": 0.8, "O": 4.0}
    )


def test_continued_lines_and_comments() -> None:
    text = """SpacegroupNo=221 HermannMauguin=P4/m-32/m PARAM=A=0.39_0.38^0.4 //
B2=cat(x==1,
  y==2) // continues while parentheses are open
E=SR+2 Wyckoff=a
E=TI+4 Wyckoff=b // B-site
E=O-2 Wyckoff=c
"""
    reference = _read(text)
    assert reference.formula == "SrTiO3"
    assert len(reference.structure) == 5


def test_symmetry_copies_listed_as_atoms_are_merged() -> None:
    text = """SpacegroupNo=2 HermannMauguin=P-1 A=0.5 B=0.6 C=0.7
E=CA Wyckoff=h x=0.5 y=0.5 z=0.5
E=CA Wyckoff=h x=0.5 y=0.5 z=0.5
E=O Wyckoff=i x=0.1 y=0.2 z=0.3
"""
    reference = _read(text)
    assert len(reference.structure) == 3
    assert any("repeat atoms" in w for w in reference.warnings)


def test_parse_keeps_atom_local_assignments() -> None:
    parsed = parse_bgmn("PARAM=p=0.5_0^1 E=FE(p) Wyckoff=a x=0.1 PARAM=q=0.3 E=O Wyckoff=b\n")
    assert parsed.assignments["p"] == ("0.5", 1)
    assert [a.species for a in parsed.atoms] == ["FE(p)", "O"]
    assert parsed.atoms[0].local == {"Wyckoff": "a", "x": "0.1", "q": "0.3"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "SpacegroupNo=195 GeneralCondition=eq(1,sqr(h)) PARAM=A=0.29_0.27^0.31\n",
            "peak-list phase",
        ),
        ("SpacegroupNo=14 A=0.5 B=0.6 C=0.7 BETA=100 LeBail=1\n", "Le Bail phase"),
        ("SpacegroupNo=225 A=0.5\n", "no atoms"),
        ("SpacegroupNo=225\nE=NA Wyckoff=a\n", "no cell"),
        (
            "SpacegroupNo=14 A=0.5 C=0.7 BETA=100\nE=NA Wyckoff=e x=0.1 y=0.2 z=0.3\n",
            "B= is missing",
        ),
        ("A=0.5\nE=NA Wyckoff=a\n", "no space group"),
        ("SpacegroupNo=999 A=0.5\nE=NA Wyckoff=a\n", "not a number 1-230"),
        ("HermannMauguin=Q42 A=0.5\nE=NA Wyckoff=a\n", "unknown space-group symbol"),
        (
            "SpacegroupNo=14 HermannMauguin=P2_1/b2_1/c2_1/a A=0.5 B=0.6 C=0.7\nE=NA Wyckoff=c\n",
            "is space group 61",
        ),
        ("SpacegroupNo=225 A=0.5\nE=XX Wyckoff=a\n", "unknown element"),
        ("SpacegroupNo=225 A=0.5\nE=NA x=0.1\n", "no Wyckoff= position"),
        ("SpacegroupNo=225 A=0.5\nE=NA Wyckoff=z\n", "no Wyckoff position 'z'"),
        ("SpacegroupNo=225 A=0.5\nE=NA Wyckoff=e x=undefined\n", "never defined"),
        ("SpacegroupNo=225 A=0.5\nE=NA(2) Wyckoff=a\n", "occupancy 2.000 > 1"),
        ("SpacegroupNo=225 A=0.15\nE=PB Wyckoff=a\n", "implausible density"),
        ("SpacegroupNo=225 A=0.05\nE=PB Wyckoff=a\n", "impossible cell: edges"),
        (
            "SpacegroupNo=2 A=0.5 B=0.5 C=0.5 ALPHA=120 BETA=120 GAMMA=120\nE=PB Wyckoff=a\n",
            "impossible cell",
        ),
        ("SpacegroupNo=221 A=0.4\nE=NA Wyckoff=a\nE=CL Wyckoff=a\n", "occupancy 2.000 > 1"),
        ("SpacegroupNo=221 A=0.4\nE=NA Wyckoff=a\nE=CL Wyckoff=g x=0.01\n", "overlapping atoms"),
        (
            "SpacegroupNo=5 A=0.5 B=0.9 C=1.5\nset(ECA,0,0,0)\nE=CA Wyckoff=c x=X(ECA)\n",
            "rigid-body",
        ),
    ],
)
def test_rejections_say_why(text: str, message: str) -> None:
    with pytest.raises(StructureReadError, match=message):
        _read(text)


def test_huge_cell_is_rejected() -> None:
    text = "SpacegroupNo=1 A=5 B=5 C=5\n" + "".join(
        f"E=C Wyckoff=a x={i / 13:.4f} y={j / 13:.4f} z={k / 13:.4f}\n"
        for i in range(13)
        for j in range(13)
        for k in range(13)
    )
    with pytest.raises(StructureReadError, match="huge cell"):
        _read(text)
