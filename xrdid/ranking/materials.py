"""Which references are one material.

One material is the same reduced formula and space group (quartz from COD,
AMCSD and BGMN; the two space groups of an enantiomorphic pair count as one,
as left- and right-handed quartz, P3₁21 and P3₂21, give one powder pattern), the
same mineral where one side is a measured pattern
(RockJock's "Quartz" and a calculated quartz: measured patterns carry no
space group), or the same mineral species in the same space group (two
sources' lawsonite, one with some Fe for Al; a kaolinite whose source left
out the hydrogen). Names of calculated structures are often generic chemical
names ("silicon dioxide") shared by polymorphs, so a name without a species
in it, or with another space group, never joins two calculated references.

A mineral is known by its name, by the name without a variant or polytype
("Kaolinite1A", "Sanidine_Na07", "MICROCLINE_maximum") and by the group it
belongs to: measured references of rocks are often named by group
("K-feldspar", "Plagioclase"), the species each holds varying by sample.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MINERAL_GROUPS", "Material", "group_materials", "species_of"]

# Mineral groups measured libraries name phases by (RockJock's, powdR's) and
# their common species (IMA nomenclature), normalised as ``_normalised``.
MINERAL_GROUPS: dict[str, frozenset[str]] = {
    "k feldspar": frozenset({"microcline", "orthoclase", "sanidine", "adularia"}),
    "plagioclase": frozenset(
        {"albite", "oligoclase", "andesine", "labradorite", "bytownite", "anorthite"}
    ),
    "pyroxene": frozenset(
        {
            "enstatite",
            "ferrosilite",
            "diopside",
            "hedenbergite",
            "augite",
            "pigeonite",
            "aegirine",
            "jadeite",
            "omphacite",
            "spodumene",
        }
    ),
    "amphibole": frozenset(
        {
            "tremolite",
            "actinolite",
            "hornblende",
            "glaucophane",
            "riebeckite",
            "anthophyllite",
            "cummingtonite",
            "grunerite",
            "pargasite",
            "edenite",
        }
    ),
    "garnet": frozenset(
        {"almandine", "pyrope", "spessartine", "grossular", "andradite", "uvarovite"}
    ),
    "olivine": frozenset({"forsterite", "fayalite"}),
    "serpentine": frozenset({"antigorite", "chrysotile", "lizardite"}),
    "chlorite": frozenset({"clinochlore", "chamosite"}),
    "smectite di": frozenset({"montmorillonite", "beidellite", "nontronite"}),
    "smectite tri": frozenset({"saponite", "hectorite"}),
    "mica tri": frozenset({"biotite", "phlogopite", "annite"}),
}
_GROUP_OF = {species: group for group, members in MINERAL_GROUPS.items() for species in members}
# The eleven enantiomorphic space-group pairs (International Tables numbers),
# each to its first: a structure and its mirror image give one powder pattern
# (a powder sums each reflection with its inverse), so no scan tells them apart.
_ENANTIOMORPH_OF = {78: 76, 95: 91, 96: 92, 145: 144, 153: 151, 154: 152, 170: 169, 172: 171,
                    179: 178, 181: 180, 213: 212}  # fmt: skip
# A species name with a polytype or structure-type suffix: kaolinite1a, illite 2m1.
_POLYTYPE = re.compile(r"^([a-z]{4,}?) ?(\d[a-z]{1,2}\d?)$")


def _normalised(name: str) -> str:
    return re.sub(r"[\s_\-()]+", " ", name).strip().lower()


def species_of(name: str) -> str | None:
    """The mineral species a name gives, without a variant after '_' or a
    polytype ("Sanidine_Na07", "Kaolinite1A"); None for a chemical name."""
    species = _normalised(name.split("_")[0])
    polytype = _POLYTYPE.match(species)
    species = polytype.group(1) if polytype else species
    return species if species.isalpha() and len(species) >= 4 else None


@dataclass(frozen=True)
class Material:
    """What identifies a reference's material."""

    name: str  # normalised display name
    formula_space_group: str | None  # "SiO2|154" when both are known
    measured: bool
    species: str | None = None  # :func:`species_of`

    @classmethod
    def of(
        cls, name: str, formula: str | None, space_group_number: int | None, measured: bool
    ) -> Material:
        if space_group_number is not None:
            space_group_number = _ENANTIOMORPH_OF.get(space_group_number, space_group_number)
        key = f"{formula}|{space_group_number}" if formula and space_group_number else None
        return cls(_normalised(name), key, measured, species_of(name))

    @property
    def space_group(self) -> str | None:
        return self.formula_space_group.split("|")[1] if self.formula_space_group else None

    def same_as(self, other: Material) -> bool:
        if self.formula_space_group and self.formula_space_group == other.formula_space_group:
            return True
        if not (self.measured or other.measured):
            return (
                self.species is not None
                and self.species == other.species
                and self.space_group is not None
                and self.space_group == other.space_group
            )
        if self.name == other.name or (self.species and self.species == other.species):
            return True
        return self._holds(other) or other._holds(self)

    def _holds(self, other: Material) -> bool:
        """This is a group (a measured "K-feldspar") and ``other`` one of its species."""
        return other.species is not None and _GROUP_OF.get(other.species) == self.name


def group_materials(materials: Sequence[Material]) -> list[int]:
    """A group number per material (0, 1, … in order of first appearance):
    references of one material share it (joined transitively)."""
    parent = list(range(len(materials)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(materials)):
        for j in range(i):
            if materials[i].same_as(materials[j]):
                parent[root(i)] = root(j)
    labels: dict[int, int] = {}
    return [labels.setdefault(root(i), len(labels)) for i in range(len(materials))]
