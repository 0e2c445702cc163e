"""Weight percents of the phases found, from their fitted scales.

A phase's weight fraction is proportional to its scale over its reference
intensity ratio (:mod:`xrdid.rir`): w_i ∝ s_i / RIR_i (Chung's matrix-flushing
method; with calculated RIRs, Hill & Howard's Z·M·V relation). Without an
internal standard the phases found sum to 100%. With one (a known weight
percent of a phase added to the sample, e.g. corundum, as RockJock and powdR
do), every phase's percent is absolute and what is left is amorphous or
unidentified. Standard deviations propagate the fit's scale deviations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["WeightPercents", "weight_percents"]


@dataclass(frozen=True)
class WeightPercents:
    """Per phase: weight percent, its standard deviation, and why it is
    missing or what it is relative to (None when plain)."""

    percent: tuple[float | None, ...]
    sd: tuple[float | None, ...]
    notes: tuple[str | None, ...]
    amorphous_percent: float | None  # with an internal standard: 100 − the phases found


def weight_percents(
    names: Sequence[str],
    scales: Sequence[float],
    scale_sd: Sequence[float],
    rirs: Sequence[float | None],
    standard: tuple[int, float] | None = None,
) -> WeightPercents:
    """Weight percents of phases ``names`` with fitted ``scales`` (± ``scale_sd``)
    and reference intensity ratios ``rirs`` (None: unknown). ``standard`` is
    (index of the internal standard among the phases, its weight percent)."""
    n = len(names)
    known = [i for i in range(n) if rirs[i] is not None and scales[i] > 0]
    missing = [i for i in range(n) if rirs[i] is None]
    amounts = np.zeros(n)
    amounts_sd = np.zeros(n)
    for i in known:
        rir = float(rirs[i])  # type: ignore[arg-type]
        amounts[i] = scales[i] / rir
        amounts_sd[i] = scale_sd[i] / rir
    percent: list[float | None] = [None] * n
    sd: list[float | None] = [None] * n
    notes: list[str | None] = [None] * n
    for i in missing:
        notes[i] = (
            f"{names[i]} has no reference intensity ratio (a measured reference added without "
            "one, or a library built before they were stored): add it again with its RIR"
        )
    if standard is not None:
        return _absolute(amounts, amounts_sd, known, percent, sd, notes, standard)
    total = amounts[known].sum()
    if total <= 0:
        return WeightPercents(tuple(percent), tuple(sd), tuple(notes), None)
    for i in known:
        percent[i] = float(100.0 * amounts[i] / total)
        # ∂w_i/∂a_j = (δ_ij Σ − a_i) / Σ², the amounts taken as independent.
        gradient = -amounts[known] / total**2
        gradient[known.index(i)] += 1.0 / total
        sd[i] = float(100.0 * np.sqrt(np.sum((gradient * amounts_sd[known]) ** 2)))
        if missing:
            notes[i] = "relative to the phases with a reference intensity ratio only"
    return WeightPercents(tuple(percent), tuple(sd), tuple(notes), None)


def _absolute(
    amounts: np.ndarray,
    amounts_sd: np.ndarray,
    known: list[int],
    percent: list[float | None],
    sd: list[float | None],
    notes: list[str | None],
    standard: tuple[int, float],
) -> WeightPercents:
    """Percents scaled so the internal standard has its known weight percent;
    the rest of 100 is amorphous or unidentified."""
    index, standard_percent = standard
    if index not in known:
        for i in known:
            notes[i] = "the internal standard has no reference intensity ratio"
        return WeightPercents(tuple(percent), tuple(sd), tuple(notes), None)
    factor = standard_percent / amounts[index]
    for i in known:
        value = float(amounts[i] * factor)
        percent[i] = value
        if i == index:
            sd[i] = 0.0
        else:
            relative = np.hypot(amounts_sd[i] / amounts[i], amounts_sd[index] / amounts[index])
            sd[i] = float(value * relative)
    amorphous = float(100.0 - sum(p for p in percent if p is not None))
    return WeightPercents(tuple(percent), tuple(sd), tuple(notes), amorphous)
