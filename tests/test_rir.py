"""Reference intensity ratios calculated from structures."""

from __future__ import annotations

import pytest
from pymatgen.core import Structure

from xrdid.rir import calculated_rir, corundum
from xrdid.sticks import simulate
from xrdid.structures import read_structure


def _rir(structure: Structure) -> float | None:
    sticks, scale = simulate(structure)
    return calculated_rir(sticks, scale, structure)


def test_corundum_is_one_and_the_shipped_corundum_files_agree(structures_dir) -> None:
    assert _rir(corundum()) == pytest.approx(1.0)
    for relative in ("bgmn/Minerals/Corundum.str", "bgmn/BGMN/Corundum.str"):
        assert _rir(read_structure(structures_dir / relative).structure) == pytest.approx(
            1.0, abs=0.03
        )


def test_rir_does_not_depend_on_the_cell_chosen(rutile: Structure) -> None:
    """A supercell has Z·M·V eight times larger and |F|² 64 times: per unit
    weight it diffracts the same (Hill & Howard's relation)."""
    assert _rir(rutile.make_supercell([2, 2, 2], in_place=False)) == pytest.approx(
        _rir(rutile), rel=1e-3
    )


def test_heavier_scatterers_per_weight_diffract_more(structures_dir) -> None:
    """Zincite (Zn, 30 electrons) shows more per gram than periclase (MgO),
    as every RIR table has it (I/I_c ≈ 5 against ≈ 3)."""
    zincite = _rir(read_structure(structures_dir / "bgmn/Minerals/Zincite.str").structure)
    periclase = _rir(read_structure(structures_dir / "bgmn/Minerals/Periclase.str").structure)
    assert zincite is not None and periclase is not None
    assert zincite > 1.5 * periclase > 1.5 * 2.0
