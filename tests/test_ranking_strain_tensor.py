"""The strain-tensor fit of the ranking's best candidates (xrdid/ranking/strain_tensor.py)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from xrdid.augment import reference_input
from xrdid.grid import MODEL_GRID
from xrdid.ranking import SERVED
from xrdid.ranking.correlation import rerank_correlation, rerank_fits, rerank_scores
from xrdid.ranking.strain_tensor import (
    fit_strain_tensors,
    reflection_strains,
    strain_basis,
    symmetric_tensor,
)
from xrdid.sticks import StickPattern, simulate_sticks

EVERYWHERE = np.ones(MODEL_GRID.n_points, dtype=bool)


def orthorhombic(a: float, b: float, c: float) -> StickPattern:
    structure = Structure(
        Lattice.orthorhombic(a, b, c),
        ["Ba", "Ti", "O"],
        [[0, 0, 0], [0.5, 0.3, 0.2], [0.2, 0.6, 0.7]],
    )
    return simulate_sticks(structure)


def strained(sticks: StickPattern, tensor: np.ndarray) -> StickPattern:
    """The same reflections once the cell is deformed by (I + tensor)."""
    reciprocal = sticks.reciprocal_lattice @ np.linalg.inv(np.eye(3) + tensor)
    d = 1.0 / np.linalg.norm(sticks.hkl @ reciprocal, axis=1)
    order = np.argsort(-d)
    return StickPattern(d[order], sticks.structure_factor[order], sticks.hkl[order], reciprocal)


REFERENCE = orthorhombic(4.1, 5.3, 6.7)
# ±0.8% along a and b: no isotropic strain matches both.
ANISOTROPIC = np.diag([0.008, -0.008, 0.0])


def roots(sticks: StickPattern) -> np.ndarray:
    return np.sqrt(np.clip(reference_input(sticks).intensity, 0.0, None))


def fit(query: StickPattern, references: list[StickPattern]):
    """The tensor fit started, as the re-rank starts it, from no strain and no shift."""
    n = len(references)
    return fit_strain_tensors(
        roots(query), EVERYWHERE, np.stack([roots(s) for s in references]),
        [strain_basis(s) for s in references], np.zeros(n), np.zeros(n),
        SERVED.anisotropic_strain_max,
    )  # fmt: skip


def test_anisotropic_strain_is_fitted_where_an_isotropic_one_cannot_be() -> None:
    query = strained(REFERENCE, ANISOTROPIC)
    isotropic = rerank_correlation(
        reference_input(query).intensity, EVERYWHERE, reference_input(REFERENCE).intensity[None]
    )[0]
    tensor = fit(query, [REFERENCE])
    # Overlapping reflections that move apart share one strain in the warp,
    # so r stays below 1 (0.91 here), but far above the isotropic fit's.
    assert isotropic < 0.75
    assert tensor.r[0] > 0.88
    assert tensor.isotropic_strain[0] == pytest.approx(0.0, abs=0.002)
    # the departure found is the one applied: 0.8% on each of two components
    assert tensor.anisotropic_departure[0] == pytest.approx(0.016, abs=0.005)
    assert tensor.correlation(SERVED.strain_penalty, SERVED.anisotropic_penalty)[
        0
    ] == pytest.approx(
        tensor.r[0]
        - SERVED.strain_penalty * abs(tensor.isotropic_strain[0])
        - SERVED.anisotropic_penalty * tensor.anisotropic_departure[0]
    )


def test_an_unstrained_query_keeps_its_fit() -> None:
    tensor = fit(REFERENCE, [REFERENCE])
    assert tensor.r[0] > 0.99
    assert tensor.anisotropic_departure[0] < 0.002


def test_the_fit_does_not_make_another_structure_match() -> None:
    query = strained(REFERENCE, ANISOTROPIC)
    other = orthorhombic(4.4, 5.0, 7.3)
    assert fit(query, [other]).r[0] < 0.6


def test_too_little_coverage_gives_zeros() -> None:
    mask = np.zeros_like(EVERYWHERE)
    mask[100:120] = True
    tensor = fit_strain_tensors(
        roots(REFERENCE),
        mask,
        roots(REFERENCE)[None],
        [strain_basis(REFERENCE)],
        np.zeros(1),
        np.zeros(1),
        SERVED.anisotropic_strain_max,
    )
    assert tensor.r.tolist() == [0.0]


def test_rerank_fits_the_best_calculated_candidates_only() -> None:
    """Candidates: the right cell (calculated), a measured copy of it (no
    sticks) and another cell; only the calculated right one gains."""
    query = reference_input(strained(REFERENCE, ANISOTROPIC))
    other = orthorhombic(4.4, 5.0, 7.3)
    bases = [strain_basis(REFERENCE), None, strain_basis(other)]
    profiles = np.stack([reference_input(s).intensity for s in (REFERENCE, REFERENCE, other)])
    similarity = np.array([0.9, 0.9, 0.8])
    asked: list[list[int]] = []

    def bases_of(indices: np.ndarray) -> list[np.ndarray | None]:
        asked.append([int(i) for i in indices])
        return [bases[int(i)] for i in indices]

    isotropic = rerank_correlation(query.intensity, query.mask, profiles)
    three = replace(SERVED, strain_fit_candidates=3)
    fits = rerank_fits(query.intensity, query.mask, similarity, profiles, bases_of, three)
    np.testing.assert_allclose(fits.isotropic.correlation, isotropic, atol=1e-6)
    fitted = fits.correlation(three)
    assert fitted[0] > isotropic[0] + 0.1
    assert fitted[1] == isotropic[1]  # measured: nothing to fit
    assert fitted[2] >= isotropic[2]
    assert sorted(asked[0]) == [0, 1, 2]
    # no candidate fitted: the isotropic correlation
    none = replace(SERVED, strain_fit_candidates=0)
    np.testing.assert_array_equal(fits.correlation(none), fits.isotropic.correlation)
    np.testing.assert_array_equal(
        rerank_scores(query.intensity, query.mask, similarity, profiles), isotropic
    )


def one_atom(lattice: Lattice) -> StickPattern:
    return simulate_sticks(Structure(lattice, ["Cu"], [[0, 0, 0]]))


# An uneven tensor (xx, yy, zz, xy, xz, yz) that no crystal system but triclinic allows.
UNEVEN = np.array([0.004, -0.002, 0.001, 0.003, -0.001, 0.002])


@pytest.mark.parametrize(
    ("lattice", "free_components"),
    [
        (Lattice.cubic(4.2), 1),
        (Lattice.tetragonal(3.78, 9.5), 2),
        (Lattice.hexagonal(3.25, 5.2), 2),
        (Lattice.rhombohedral(5.4, 55.3), 2),  # a 3-fold axis off every Cartesian axis
        (Lattice.orthorhombic(4.1, 5.3, 6.7), 3),
        (Lattice.monoclinic(5.0, 6.0, 7.0, 100.0), 4),
        (Lattice.from_parameters(5.0, 6.0, 7.0, 80.0, 95.0, 100.0), 6),
    ],
)
def test_the_symmetric_tensor_keeps_the_lattice_symmetry(lattice, free_components) -> None:
    """Whatever tensor a fit gives, the cell made from its symmetric part
    keeps the reference's metric (a tetragonal cell stays a = b, α = β = γ =
    90°), and a tensor the symmetry already allows is kept as it is."""
    sticks = one_atom(lattice)
    symmetric = symmetric_tensor(sticks, UNEVEN)
    deformation = np.eye(3) + np.array(
        [[symmetric[0], symmetric[3], symmetric[4]],
         [symmetric[3], symmetric[1], symmetric[5]],
         [symmetric[4], symmetric[5], symmetric[2]]]
    )  # fmt: skip
    vectors = np.linalg.inv(sticks.reciprocal_lattice).T
    fitted = Lattice(vectors @ deformation.T)
    original = Lattice(vectors)
    for i, j in _equal_pairs(original.abc):
        assert fitted.abc[i] == pytest.approx(fitted.abc[j], rel=1e-12)
    for i, j in _equal_pairs(original.angles):
        assert fitted.angles[i] == pytest.approx(fitted.angles[j], rel=1e-12)
    for angle, before in zip(fitted.angles, original.angles, strict=True):
        if round(before, 6) in (90.0, 120.0):
            assert angle == pytest.approx(before, abs=1e-9)
    if free_components == 6:
        np.testing.assert_allclose(symmetric, UNEVEN, atol=1e-12)
    np.testing.assert_allclose(symmetric_tensor(sticks, symmetric), symmetric, atol=1e-12)
    # The symmetric part moves the reflections as nearly as any allowed tensor
    # can: it is the least-squares one (an allowed tensor near it does worse).
    weights = sticks.intensities(MODEL_GRID.wavelength_angstrom)
    two_theta = sticks.two_theta_deg(MODEL_GRID.wavelength_angstrom)
    inside = (two_theta >= MODEL_GRID.two_theta_deg[0]) & (
        two_theta <= MODEL_GRID.two_theta_deg[-1]
    )

    def misfit(tensor: np.ndarray) -> float:
        difference = reflection_strains(sticks, tensor) - reflection_strains(sticks, UNEVEN)
        return float(np.sum((weights * difference**2)[inside]))

    isotropic_nudge = symmetric + 1e-4 * np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    assert misfit(symmetric) < misfit(isotropic_nudge)


def _equal_pairs(values: tuple[float, float, float]) -> list[tuple[int, int]]:
    return [(i, j) for i in range(3) for j in range(i + 1, 3) if math.isclose(values[i], values[j])]
