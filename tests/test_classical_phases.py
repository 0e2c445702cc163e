"""The classical find–subtract–search-again loop (a baseline of the evaluation)."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from indexer.classical_phases import fit_phase, phase_ranking, search_phases
from xrdid.augment import reference_input
from xrdid.embedder import model_input
from xrdid.sticks import simulate_sticks


def _cubic(symbol: str, a: float, group: str = "Fm-3m") -> Structure:
    return Structure.from_spacegroup(group, Lattice.cubic(a), [symbol], [[0, 0, 0]])


@pytest.fixture(scope="module")
def library(rutile: Structure) -> np.ndarray:
    """(n, 2, L): rutile, silicon, and distractors with other cells."""
    structures = [
        rutile,
        _cubic("Si", 5.4309, "Fd-3m"),
        _cubic("Cu", 3.615),
        _cubic("Al", 4.05),
        _cubic("Fe", 2.87, "Im-3m"),
        _cubic("W", 3.165, "Im-3m"),
    ]
    return model_input([reference_input(simulate_sticks(s)) for s in structures])


def _cosine_rank(library: np.ndarray):
    def rank(x: np.ndarray) -> list[int]:
        m = x[1] > 0.5
        refs = library[:, 0, m]
        scores = refs @ x[0, m] / (np.linalg.norm(refs, axis=1) * np.linalg.norm(x[0, m]) + 1e-12)
        return [int(i) for i in np.argsort(-scores)]

    return rank


def _mixture(library: np.ndarray, parts: dict[int, float], shift: int = 0) -> np.ndarray:
    intensity = sum(f * np.roll(library[i, 0], shift) for i, f in parts.items())
    return np.stack([intensity / intensity.max(), np.ones_like(intensity)]).astype(np.float32)


def test_fit_recovers_shift_and_scale_and_leaves_nothing(library):
    reference = library[1, 0]
    scan = 0.6 * np.roll(reference, 7)
    scale, shift, residual = fit_phase(scan, np.ones_like(scan, dtype=bool), reference)
    assert shift == 7
    assert scale == pytest.approx(0.6, rel=1e-6)
    assert residual.sum() < 1e-6 * scan.sum()


def test_two_phase_mixture_gives_both_phases_then_stops(library):
    query = _mixture(library, {0: 0.55, 1: 0.45}, shift=4)
    fits = search_phases(query, _cosine_rank(library), lambda i: library[i, 0])
    assert [f.candidate for f in fits] == [0, 1]
    assert sum(f.explained for f in fits) > 0.85
    assert all(f.shift_steps == 4 for f in fits)


def test_single_phase_stops_after_one(library):
    query = _mixture(library, {2: 1.0})
    fits = search_phases(query, _cosine_rank(library), lambda i: library[i, 0])
    assert [f.candidate for f in fits] == [2]
    assert fits[0].explained > 0.95


def test_a_material_is_not_found_twice(library):
    # Two library entries of one material (0 and 0'): only one is listed.
    doubled = np.concatenate([library, library[:1]])
    identity = {i: i for i in range(len(library))} | {len(library): 0}
    query = _mixture(doubled, {0: 0.5, 3: 0.5})
    fits = search_phases(query, _cosine_rank(doubled), lambda i: doubled[i, 0], identity.get)
    found = [identity[f.candidate] for f in fits]
    assert len(found) == len(set(found)) and set(found) >= {0, 3}
    ranked = phase_ranking(fits, _cosine_rank(doubled)(query), 5, identity.get)
    assert len({identity[i] for i in ranked}) == len(ranked)
