"""Every shared structure file reads or says why not; CIF and .str agree on shared minerals."""

from pathlib import Path

import numpy as np
import pytest
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import Structure

from xrdid.errors import StructureReadError
from xrdid.structures import ReferenceStructure, read_structure
from xrdid.structures.survey import main as survey_main
from xrdid.structures.survey import structure_files, survey


@pytest.mark.slow
def test_every_file_reads_or_raises_a_structure_read_error(structures_dir: Path) -> None:
    # Two processes: the suite's budget is two cores; pymatgen's CIF parsing dominates.
    result = survey(structures_dir, jobs=2)
    assert not result.crashed, result.crashed
    assert len(result.read) + len(result.rejected) == len(list(structure_files(structures_dir)))
    for path, reason in result.rejected.items():
        assert reason.strip(), path
        assert "internal error" not in reason, reason
    bgmn = [p for p in result.read if p.suffix.lower() == ".str"]
    bgmn_rejected = [p for p in result.rejected if p.suffix.lower() == ".str"]
    # The .str library holds a few Le Bail/peak phases and flawed files; the rest reads.
    assert len(bgmn) / (len(bgmn) + len(bgmn_rejected)) > 0.97
    assert len(result.read) > 1900


def test_survey_cli_counts_and_groups(
    structures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert survey_main([str(structures_dir / "dans_diffraction"), "--per-folder"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("32 files: 27 read")
    assert "magnetic CIF" in out


# (CIF, .str) of one mineral. Patterns are compared after giving the .str
# structure the CIF's cell (or its volume), because the two come from
# different samples and refinements: a 1% cell difference moves high-angle
# peaks by more than their width, which says nothing about the readers.
SAME_MINERAL = [
    ("dans_diffraction/Sapphire.cif", "bgmn/Minerals/Corundum.str"),
    ("dans_diffraction/Rutile.cif", "bgmn/Minerals/Rutile.str"),
    ("xrd_autoanalyzer/example/TiO2_141.cif", "bgmn/Minerals/Anatase.str"),
    ("xrd_autoanalyzer/pdf_example/ZrO2_14.cif", "bgmn/Alumina-Titania-Zirconia-Yttria/ZrO2-m.str"),
    ("cod/9002107.cif", "bgmn/BGMN/SPINEL.STR"),
    ("cod/9000618.cif", "bgmn/BGMN/PYROPE.STR"),
    ("cod/9001833.cif", "bgmn/BGMN/Kyanite.str"),
    ("amcsd/04685.cif", "bgmn/Cement-PST/Gypsum.str"),
    ("cod/9010373.cif", "bgmn/BGMN/JADEITE.STR"),
    ("dans_diffraction/ZnO.cif", "bgmn/Minerals/Zincite.str"),
    ("elements/S.cif", "bgmn/BGMN/Sulfur_alpha.str"),
    ("elements/C.cif", "bgmn/Minerals/Graphite-2h.str"),
    ("elements/diamond.cif", "bgmn/Minerals/Diamond.str"),
    ("cod/1000039.cif", "bgmn/BGMN/C3ACUB.STR"),
    ("cod/1000054.cif", "bgmn/BGMN/BRUCITE.STR"),
    ("obelix/9lo.cif", "bgmn/Phosphate/Li3PO4-gamma.str"),
    ("dans_diffraction/KCl.cif", "bgmn/BGMN/SYLVITE.STR"),
    ("elements/As.cif", "bgmn/BGMN/ARSENIC.STR"),
    ("cod/2310693.cif", "bgmn/BGMN/ALUNITE.STR"),
    ("cod/1011335.cif", "bgmn/MarsMineralCompendium/Barringerite.str"),
    ("elements/BaTiO3_cubic.cif", "bgmn/BGMN/BATIO3C.STR"),
]

TWO_THETA_GRID_DEG = np.arange(5.0, 90.0 + 1e-9, 0.02)
FWHM_DEG = 0.2
MIN_COSINE = 0.9


def _profile(structure: Structure) -> np.ndarray:
    """Cu Ka1 sticks broadened by a Gaussian onto the 2-theta grid."""
    pattern = XRDCalculator(wavelength="CuKa1").get_pattern(
        structure, scaled=False, two_theta_range=(4, 91)
    )
    sigma = FWHM_DEG / (2 * np.sqrt(2 * np.log(2)))
    x, y = np.asarray(pattern.x), np.asarray(pattern.y)
    return np.exp(-0.5 * ((TWO_THETA_GRID_DEG[:, None] - x[None, :]) / sigma) ** 2) @ y


def _on_cell_of(structure: Structure, reference: Structure) -> Structure:
    """``structure`` with ``reference``'s cell when they match, else its volume per formula unit."""
    mine, theirs = structure.lattice, reference.lattice
    if np.allclose(mine.abc, theirs.abc, rtol=0.05) and np.allclose(
        mine.angles, theirs.angles, atol=2
    ):
        return Structure(theirs, structure.species_and_occu, structure.frac_coords)
    units = reference.composition.get_reduced_composition_and_factor()[1]
    own_units = structure.composition.get_reduced_composition_and_factor()[1]
    scaled = structure.copy()
    scaled.scale_lattice(reference.volume / units * own_units)
    return scaled


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize(("cif", "bgmn"), SAME_MINERAL)
def test_cif_and_str_of_one_mineral_give_the_same_pattern(
    structures_dir: Path, cif: str, bgmn: str
) -> None:
    from_cif: ReferenceStructure = read_structure(structures_dir / cif)
    from_str: ReferenceStructure = read_structure(structures_dir / bgmn)
    assert from_cif.space_group_number == from_str.space_group_number
    cif_profile = _profile(from_cif.structure)
    str_profile = _profile(_on_cell_of(from_str.structure, from_cif.structure))
    assert _cosine(cif_profile, str_profile) >= MIN_COSINE


def test_unreadable_file_message_names_the_file(structures_dir: Path) -> None:
    with pytest.raises(StructureReadError, match=r"amorphPeak\.str: a peak-list phase"):
        read_structure(structures_dir / "bgmn" / "amorphPeak.str")
