"""One answer per material, and look-alikes as one family.

A ranked list repeats itself: the same hematite from five sources, or five
garnets of one solid-solution series whose cells differ by less than a
strained sample's. Grouping turns the list into answers a person reads once:

- references of one material (:mod:`xrdid.ranking.materials`) are one entry,
  its best reference first and the others as alternatives;
- materials of one space group whose patterns the ranking's strain and shift
  turn into one another (profile correlation ≥ ``config.lookalike_correlation``,
  without the prior for small strains) are one family, the member that fits
  the scan best first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from xrdid.ranking.config import SERVED, RankingConfig
from xrdid.ranking.correlation import References, isotropic_fit
from xrdid.ranking.materials import Material, group_materials

__all__ = ["Entry", "are_lookalikes", "grouped", "lookalike_fit"]


@dataclass(frozen=True)
class Entry:
    """One answer: positions in the ranked list (best first) of the
    references of its leading material, and of each other member material
    of its family (each list best first)."""

    members: tuple[tuple[int, ...], ...]  # members[0]: the leading material's references

    @property
    def lead(self) -> int:
        return self.members[0][0]


def lookalike_fit(
    profile: NDArray[np.floating],
    others: References,
    mask: NDArray[np.bool_],
    config: RankingConfig = SERVED,
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Whether each of ``others`` (k, L) is a look-alike of ``profile``: the
    ranking's strain and shift turn one into the other (profile correlation
    over ``mask`` ≥ ``config.lookalike_correlation``, without the prior for
    small strains); and the strain ε that lines each up (``profile``'s
    d-spacings = its × (1 + ε)). Matching space groups is the caller's."""
    fit = isotropic_fit(profile, mask, others, replace(config, strain_penalty=0.0))
    return np.asarray(fit.correlation >= config.lookalike_correlation), fit.strain


def are_lookalikes(
    profile: NDArray[np.floating],
    others: NDArray[np.floating],
    mask: NDArray[np.bool_],
    config: RankingConfig = SERVED,
) -> NDArray[np.bool_]:
    """Whether each of ``others`` is a look-alike of ``profile`` (:func:`lookalike_fit`)."""
    return lookalike_fit(profile, others, mask, config)[0]


def grouped(
    materials: Sequence[Material],
    space_groups: Sequence[int | None],
    profiles: NDArray[np.floating],
    mask: NDArray[np.bool_],
    config: RankingConfig = SERVED,
) -> list[Entry]:
    """Entries of a ranked list (best first) whose references are of
    ``materials`` with ``space_groups`` and model-grid ``profiles`` (n, L);
    the correlations are taken over the scan's coverage ``mask``."""
    labels = group_materials(materials)
    by_material: dict[int, list[int]] = {}
    for position, label in enumerate(labels):
        by_material.setdefault(label, []).append(position)
    leads = [refs[0] for refs in by_material.values()]  # in ranked order
    family = list(range(len(leads)))

    def root(i: int) -> int:
        while family[i] != i:
            family[i] = family[family[i]]
            i = family[i]
        return i

    for i, a in enumerate(leads):
        same_group = [
            j
            for j, b in enumerate(leads[:i])
            if space_groups[a] is not None and space_groups[a] == space_groups[b]
        ]
        if not same_group:
            continue
        others = np.stack([profiles[leads[j]] for j in same_group])
        alike = are_lookalikes(profiles[a], others, mask, config)
        for j in np.array(same_group)[alike]:
            family[root(i)] = root(int(j))
    entries: dict[int, list[tuple[int, ...]]] = {}
    for i, refs in enumerate(by_material.values()):
        entries.setdefault(root(i), []).append(tuple(refs))
    return [Entry(tuple(members)) for members in entries.values()]
