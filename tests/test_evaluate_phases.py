"""The evaluation's single-phase counts (one phase, exactly its phase, a
spurious second one, its material first), its reliability tables and
diagrams, and the conditions its mixtures are simulated under."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image
from pymatgen.core import Lattice, Structure

from indexer.evaluate_phases import (
    CONDITIONS,
    MIXTURE_AUGMENTATION,
    _count_single,
    _lookalike_stays,
    calibrated_ece_range,
    film_materials,
    halide_kin,
    isostructural_pairs,
    reliability_figure,
    reliability_table,
)
from xrdid.augment import reference_input
from xrdid.data_paths import PROJECT_ROOT
from xrdid.grid import MODEL_GRID
from xrdid.library import ReferenceInfo
from xrdid.ranking.materials import Material
from xrdid.sticks import simulate_sticks


def _result(phases: list[str], first: str | None):
    def named(name: str) -> SimpleNamespace:
        return SimpleNamespace(match=SimpleNamespace(entry=name))

    return SimpleNamespace(
        phases=[named(n) for n in phases], materials=[named(first)] if first else []
    )


def test_single_phase_counts() -> None:
    count = [0, 0, 0, 0]
    is_quartz = "quartz".__eq__
    _count_single(count, _result(["quartz"], "quartz"), is_quartz)  # right
    _count_single(count, _result(["cristobalite"], "quartz"), is_quartz)  # one, a look-alike
    _count_single(count, _result(["quartz", "calcite"], "quartz"), is_quartz)  # spurious
    _count_single(count, _result([], None), is_quartz)  # none
    assert count == [1, 1, 3, 2]  # exactly its phase, spurious, its material first, one phase


def _cubic_metals() -> tuple[np.ndarray, list[int]]:
    """Profiles and space groups of copper, nickel (the same fcc cell 2.5%
    smaller), aluminium (fcc, 12% larger) and tungsten (bcc)."""
    cells = {"Cu": (3.615, "Fm-3m", 225), "Ni": (3.524, "Fm-3m", 225)}
    cells |= {"Al": (4.05, "Fm-3m", 225), "W": (3.165, "Im-3m", 229)}
    profiles = np.stack(
        [
            reference_input(
                simulate_sticks(Structure.from_spacegroup(g, Lattice.cubic(a), [e], [[0, 0, 0]]))
            ).intensity
            for e, (a, g, _) in cells.items()
        ]
    )
    return profiles, [number for _, _, number in cells.values()]


def test_a_taken_out_material_keeps_its_family_only_through_a_look_alike() -> None:
    """Copper taken out: nickel is a look-alike left in the library;
    aluminium and tungsten are not."""
    profiles, groups = _cubic_metals()
    everywhere = np.ones(MODEL_GRID.n_points, dtype=bool)

    def stays(*left: int) -> bool:
        others = np.isin(np.arange(4), left)
        return _lookalike_stays(0, others, profiles, groups, everywhere)

    assert stays(1, 2, 3)
    assert not stays(2, 3)
    assert not stays()


def test_isostructural_pairs_are_look_alikes_of_one_space_group_and_other_materials() -> None:
    profiles, groups = _cubic_metals()
    materials = [Material.of(name, name, g, False) for name, g in zip("ABCD", groups, strict=True)]
    pairs = isostructural_pairs(profiles, materials, dict(enumerate(groups)))
    assert [(a, b) for a, b, _ in pairs] == [(0, 1)]
    assert 0.02 < pairs[0][2] < 0.03
    # One material's two references are no pair; a row without a space group is left out.
    same = [materials[0], materials[0], *materials[2:]]
    assert isostructural_pairs(profiles, same, dict(enumerate(groups))) == []
    assert isostructural_pairs(profiles, materials, {0: 225, 1: None, 2: 225}) == []


def test_reliability_table_lists_each_occupied_tenth() -> None:
    table = reliability_table(
        np.array([0.05, 0.15, 0.95, 0.92]), np.array([False, True, True, False])
    )
    assert table[2:] == [
        "| 0.0–0.1 | 0.050 | 0.000 | 1 |",
        "| 0.1–0.2 | 0.150 | 1.000 | 1 |",
        "| 0.9–1.0 | 0.935 | 0.500 | 2 |",
    ]


def test_calibrated_ece_range_narrows_with_more_predictions() -> None:
    rng = np.random.default_rng(0)
    few = calibrated_ece_range(rng.uniform(0.5, 1.0, 80), rng, draws=300)
    many = calibrated_ece_range(rng.uniform(0.5, 1.0, 8000), rng, draws=300)
    # Sampling alone puts a calibrated model's ECE on 80 predictions well above zero.
    assert 0.01 < few[0] < few[1] < 0.2
    assert many[1] < few[0]


def test_reliability_figure_draws_one_diagram_per_set(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=500)
    sets = {"answers": (p, rng.uniform(size=500) < p), "phases": (p, rng.uniform(size=500) < 0.5)}
    reliability_figure(sets, tmp_path / "reliability.png")
    with Image.open(tmp_path / "reliability.png") as image:
        assert image.format == "PNG" and image.size == (800, 420)


def test_each_condition_changes_one_thing_of_the_clean_scans() -> None:
    clean = CONDITIONS["clean"]

    def changed(label: str) -> set[str]:
        cfg = CONDITIONS[label]
        return {f.name for f in fields(cfg) if getattr(cfg, f.name) != getattr(clean, f.name)}

    anodes = [label for label in CONDITIONS if label.startswith("another anode")]
    singles = [
        label
        for label in CONDITIONS
        if label != "clean" and not label.startswith("all") and label not in anodes
    ]
    assert not changed("clean")
    assert all(len(changed(label)) == 1 for label in singles)
    assert all(changed(label) == {"other_anode_probability", "other_anodes"} for label in anodes)
    assert [CONDITIONS[label].other_anodes for label in anodes] == [
        (symbol,) for symbol in MIXTURE_AUGMENTATION.other_anodes
    ]
    # Each changes another setting, and together they are the synthetic section's conditions.
    assert len(set.union(*(changed(label) for label in singles))) == len(singles)
    assert CONDITIONS["all of them (the synthetic section's)"] == MIXTURE_AUGMENTATION
    assert changed("all of them (the synthetic section's)") == set.union(
        *(changed(label) for label in singles), {"other_anode_probability"}
    )


def _shipped_infos() -> list[ReferenceInfo]:
    path = PROJECT_ROOT / "model_store" / "library.sqlite"
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT id, name, formula, elements FROM reference WHERE technique = 'xrd'"
        ).fetchall()
    return [ReferenceInfo(n, "shipped", str(i), f, tuple(e.split())) for i, n, f, e in rows]


def test_the_shipped_library_lacks_the_thin_films_materials() -> None:
    """The no_match section's premise: no reference of the shipped library
    is a bromide or iodide of the films' metals with their cations; a
    caesium lead bromide would be."""
    assert film_materials(_shipped_infos()) == []
    film = ReferenceInfo("CsPbBr3", "test", "1", "CsPbBr3", ("Br", "Cs", "Pb"))
    salt = ReferenceInfo("PbCl2", "test", "2", "PbCl2", ("Cl", "Pb"))
    assert film_materials([film, salt]) == [film]
    assert halide_kin([film, salt]) == [film]
