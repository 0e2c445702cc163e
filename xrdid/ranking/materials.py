"""Which references are one material.

One material is the same reduced formula and space group (quartz from COD,
AMCSD and BGMN), or the same mineral name where one side is a measured
pattern (RockJock's "Quartz" and a calculated quartz): measured patterns
carry no space group, and names of calculated structures are often generic
chemical names ("silicon dioxide") shared by polymorphs, so names alone
never join two calculated references.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Material", "group_materials"]


def _normalised(name: str) -> str:
    return re.sub(r"\s+", " ", name).strip().lower()


@dataclass(frozen=True)
class Material:
    """What identifies a reference's material."""

    name: str  # normalised display name
    formula_space_group: str | None  # "SiO2|154" when both are known
    measured: bool

    @classmethod
    def of(
        cls, name: str, formula: str | None, space_group_number: int | None, measured: bool
    ) -> Material:
        key = f"{formula}|{space_group_number}" if formula and space_group_number else None
        return cls(_normalised(name), key, measured)

    def same_as(self, other: Material) -> bool:
        if self.formula_space_group and self.formula_space_group == other.formula_space_group:
            return True
        return (self.measured or other.measured) and self.name == other.name


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
