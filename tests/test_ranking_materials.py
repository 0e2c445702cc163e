"""Which references are one material, and which materials one family."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure

from xrdid.augment import reference_input
from xrdid.grid import MODEL_GRID
from xrdid.ranking.grouping import grouped
from xrdid.ranking.materials import Material, group_materials
from xrdid.sticks import simulate_sticks


def test_one_material_is_formula_and_space_group_or_a_measured_name() -> None:
    cod_quartz = Material.of("alpha-Quartz", "SiO2", 154, measured=False)
    bgmn_quartz = Material.of("Quartz", "SiO2", 154, measured=False)
    rockjock_quartz = Material.of("Quartz", None, None, measured=True)
    cristobalite = Material.of("Silicon dioxide", "SiO2", 92, measured=False)
    tridymite = Material.of("silicon  dioxide", "SiO2", 20, measured=False)
    assert cod_quartz.same_as(bgmn_quartz)
    assert rockjock_quartz.same_as(bgmn_quartz) and bgmn_quartz.same_as(rockjock_quartz)
    assert not rockjock_quartz.same_as(cod_quartz)  # another name, no space group to compare
    # A shared chemical name never joins two calculated polymorphs.
    assert not cristobalite.same_as(tridymite)
    # One mineral species in one space group is one material, whatever
    # substitutions or left-out hydrogen its sources' formulas show.
    lawsonite = Material.of("Lawsonite", "CaAl2Si2(H2O5)2", 63, measured=False)
    assert lawsonite.same_as(Material.of("Lawsonite", "Ca4Al7.76Fe0.24Si8H16O40", 63, False))
    assert Material.of("Kaolinite_disordered", "Al2Si2O9", 1, False).same_as(
        Material.of("Kaolinite1A", "Al2Si2H4O9", 1, False)
    )
    assert not lawsonite.same_as(Material.of("Lawsonite", "CaAl2Si2(H2O5)2", 33, False))
    # Left- and right-handed quartz (an enantiomorphic pair of space groups)
    # diffract alike: one material.
    left_quartz = Material.of("Quartz", "SiO2", 152, measured=False)
    assert left_quartz.same_as(bgmn_quartz) and left_quartz.same_as(cod_quartz)
    assert Material.of("Quartz", "SiO2", 152, False).same_as(
        Material.of("Quartz", "SiO2", 154, False)
    )
    assert not left_quartz.same_as(Material.of("Quartz", "SiO2", 153, measured=False))
    labels = group_materials([cod_quartz, cristobalite, rockjock_quartz, bgmn_quartz, tridymite])
    # bgmn joins cod (formula) and rockjock (name): one group of three.
    assert labels == [0, 1, 0, 0, 2]


def _salt(a: float, cation: str = "Na") -> np.ndarray:
    structure = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), [cation, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    return reference_input(simulate_sticks(structure)).intensity


def test_look_alikes_of_one_space_group_are_one_family(rutile: Structure) -> None:
    profiles = np.stack(
        [
            _salt(5.64),  # halite
            reference_input(simulate_sticks(rutile)).intensity,
            _salt(5.64 * 1.02, "K"),  # a rock salt 2% larger: what strain makes of halite
            _salt(5.64),  # halite again, from another source
        ]
    )
    materials = [
        Material.of("Halite", "NaCl", 225, False),
        Material.of("Rutile", "TiO2", 136, False),
        Material.of("Look-alike", "KCl", 225, False),
        Material.of("Halite", "NaCl", 225, False),
    ]
    entries = grouped(materials, [225, 136, 225, 225], profiles, np.ones(MODEL_GRID.n_points, bool))
    assert [e.members for e in entries] == [((0, 3), (2,)), ((1,),)]
    assert entries[0].lead == 0


def test_a_measured_group_or_species_joins_its_calculated_species() -> None:
    k_feldspar = Material.of("K-feldspar", None, None, measured=True)  # RockJock, by group
    sanidine = Material.of("Sanidine_Na07", "K3.72Na0.28Al4Si12O32", 12, measured=False)
    microcline = Material.of("MICROCLINE_maximum", "KAlSi3O8", 2, measured=False)
    albite = Material.of("Plagioclase_Albite", "Na4Al4.36Si11.64O32", 2, measured=False)
    plagioclase = Material.of("Plagioclase", None, None, measured=True)
    assert k_feldspar.same_as(sanidine) and sanidine.same_as(k_feldspar)
    assert k_feldspar.same_as(microcline)
    assert plagioclase.same_as(albite) and not k_feldspar.same_as(albite)
    assert not sanidine.same_as(microcline)  # two calculated species stay two
    # A polytype or variant suffix names the same species.
    assert Material.of("Kaolinite", None, None, True).same_as(
        Material.of("Kaolinite1A", "Al2Si2H4O9", 1, False)
    )
    assert Material.of("Organic-Matter", None, None, True).same_as(
        Material.of("Organic matter", None, None, True)
    )
    # Group qualifiers are not variants: di- and trioctahedral smectites differ.
    assert not Material.of("Smectite (Di)", None, None, True).same_as(
        Material.of("Smectite (Tri)", None, None, True)
    )
    assert not Material.of("Dolomite", None, None, True).same_as(
        Material.of("Ankerite_Fe0.2", "Ca2.832Mg2.466Fe0.702C6O18", 148, False)
    )
