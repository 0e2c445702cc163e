"""The joint refinement of several references against one scan."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from scipy.ndimage import gaussian_filter1d

from xrdid.augment import reference_input
from xrdid.grid import MODEL_GRID
from xrdid.ranking.refine import (
    PhaseShape,
    ShapeLimits,
    _levenberg_marquardt,
    _parameters,
    _Problem,
    instrument_shift,
    refine,
    transformed,
)
from xrdid.ranking.strain_tensor import strain_basis
from xrdid.results import fitted_cell, reflections
from xrdid.sticks import simulate_sticks
from xrdid.wavelengths import MAX_WAVELENGTH_ANGSTROM, MIN_WAVELENGTH_ANGSTROM, anode

EVERYWHERE = np.ones(MODEL_GRID.n_points, dtype=bool)
# A scan's wavelength over the model grid's: Cu, Ag (shorter), Co (longer).
CU, AG, CO = (
    anode(a).kalpha1_angstrom / MODEL_GRID.wavelength_angstrom for a in ("Cu", "Ag", "Co")
)


def _profile(structure: Structure) -> np.ndarray:
    return reference_input(simulate_sticks(structure)).intensity


@pytest.fixture(scope="module")
def profiles(rutile: Structure) -> np.ndarray:
    """Rutile, silicon and a rock salt: three real, distinct patterns."""
    silicon = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.4309), ["Si"], [[0, 0, 0]])
    salt = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    return np.stack([_profile(s) for s in (rutile, silicon, salt)])


def test_transformed_moves_peaks_as_a_strained_shifted_cell_would(profiles) -> None:
    reference = profiles[1]
    peak = int(np.argmax(reference))
    theta = np.radians(MODEL_GRID.two_theta_deg[peak] / 2.0)
    strained = transformed(reference, PhaseShape(shift_deg=0.1, strain=0.01))
    # d × 1.01 → sin θ / 1.01, then 0.1° up.
    expected = 2.0 * np.degrees(np.arcsin(np.sin(theta) / 1.01)) + 0.1
    assert MODEL_GRID.two_theta_deg[np.argmax(strained)] == pytest.approx(expected, abs=0.03)
    broad = transformed(reference, PhaseShape(broadening_deg=0.1))
    assert broad.max() < reference.max()  # broader, lower …
    assert broad.sum() == pytest.approx(reference.sum(), rel=1e-3)  # … the same area


@pytest.mark.parametrize("sigma_deg", [0.02, 0.1, ShapeLimits().broadening_deg])
def test_broadening_is_a_gaussian_of_that_width_up_to_the_bound(profiles, sigma_deg) -> None:
    """Broadened in Fourier space: the same as a direct Gaussian convolution,
    with no wrap-round at the grid's ends even at the widest broadening."""
    reference = profiles[0]
    direct = gaussian_filter1d(reference, sigma_deg / MODEL_GRID.step_deg, mode="constant")
    broad = transformed(reference, PhaseShape(broadening_deg=sigma_deg))
    np.testing.assert_allclose(broad, direct, atol=1e-4 * reference.max())
    edge = np.zeros_like(reference)
    edge[-3] = 1.0  # a peak at the top end must not leak round to the bottom
    assert transformed(edge, PhaseShape(broadening_deg=sigma_deg))[:100].max() < 1e-6


@pytest.mark.parametrize("ratio", [CU, AG, CO])
def test_the_jacobian_matches_finite_differences(profiles, rutile, ratio) -> None:
    """Every column that moves: scales, shifts (of the scan's own 2θ, at
    any wavelength), a calculated phase's six tensor components and a
    measured one's strain, the broadenings (exact, by their variance)."""
    basis = strain_basis(simulate_sticks(rutile))
    scan = transformed(0.7 * profiles[1], PhaseShape(0.05, 0.004, 0.08), wavelength_ratio=ratio)
    problem = _Problem(scan, profiles[:2].astype(np.float64), EVERYWHERE, [basis, None], 0, ratio)
    tensor = (0.004, 0.002, 0.003, 0.001, -0.001, 0.0005)
    x = np.concatenate(
        [
            [0.6, 0.1],
            _parameters(PhaseShape(0.03, 0.003, 0.06, tensor), True),
            _parameters(PhaseShape(0.0, 0.001, 0.1), False),
        ]
    )
    jac = problem.jacobian(x)
    # (column, step, tolerance)
    checks = [(0, 1e-6, 1e-6), (1, 1e-6, 1e-6), (9, 1e-6, 1e-6), (10, 1e-4, 1e-3)]
    checks += [*((c, 1e-6, 0.01) for c in range(2, 9)), (11, 1e-6, 1e-3), (17, 1e-6, 1e-6)]
    for column, step, tolerance in checks:
        up, down = x.copy(), x.copy()
        up[column] += step
        down[column] -= step
        numeric = (problem.residual(up) - problem.residual(down)) / (2 * step)
        # The tensor phase's shift and diagonal also move where its basis is
        # read (bins of 0.06°), which the Jacobian leaves out: the few points
        # whose bin the step changes are not compared.
        same = problem._phase(0, up[2:10]).read.bins == problem._phase(0, down[2:10]).read.bins
        assert (~same).sum() <= 5
        error = np.linalg.norm((jac[:, column] - numeric)[same]) / np.linalg.norm(numeric[same])
        assert error < tolerance, (column, error)
    assert not jac[:, 12:17].any()  # a measured phase has no tensor


def test_three_phases_are_refined_together(profiles) -> None:
    truth = [
        PhaseShape(0.05, 0.004, 0.03),
        PhaseShape(-0.08, -0.006, 0.0),
        PhaseShape(0.0, 0.01, 0.06),
    ]
    scales = np.array([0.7, 0.4, 0.2])
    scan = sum(s * transformed(p, t) for s, p, t in zip(scales, profiles, truth, strict=True))
    scan = scan + np.random.default_rng(0).normal(0.0, 0.005, scan.size)
    # Starts as the ranking's isotropic fit gives them: near, not exact.
    start = [PhaseShape(0.0, 0.003), PhaseShape(-0.06, -0.006), PhaseShape(0.0, 0.009)]
    fit = refine(scan, EVERYWHERE, profiles, start)
    np.testing.assert_allclose(fit.scales, scales, rtol=0.03)
    for found, true in zip(fit.shapes, truth, strict=True):
        assert found.shift_deg == pytest.approx(true.shift_deg, abs=0.02)
        assert found.strain == pytest.approx(true.strain, abs=0.0006)
        assert found.broadening_deg == pytest.approx(true.broadening_deg, abs=0.02)
    assert np.all(fit.scale_sd > 0) and np.all(fit.scale_sd < 0.02)
    np.testing.assert_allclose(fit.model + fit.residual, scan, atol=1e-9)
    assert fit.misfit == pytest.approx(float(fit.residual @ fit.residual))


@pytest.mark.parametrize("ratio", [AG, CO])
def test_a_shift_of_the_scans_own_two_theta_is_refined_as_that_shift(profiles, ratio) -> None:
    """A zero offset moves every peak of an Ag or Co scan by the same degrees
    of its own 2θ; on the model grid (Cu) that is ×2.8–3.8 or ×0.7–0.9,
    uneven with angle. Refined in the scan's 2θ, it is found as it was made, and
    the phases fit better than by one shift of the model grid."""
    truth = [PhaseShape(0.12, 0.003, 0.03), PhaseShape(0.12, -0.002, 0.0)]
    scales = np.array([0.8, 0.5])
    scan = sum(
        s * transformed(p, t, wavelength_ratio=ratio)
        for s, p, t in zip(scales, profiles[:2], truth, strict=True)
    )
    # The scan's reach at that wavelength, on the model grid.
    covered = ratio * np.sin(np.radians(MODEL_GRID.two_theta_deg) / 2.0) < 0.99
    start = [PhaseShape(instrument_shift(0.1 / ratio, ratio), 0.002)] * 2
    fit = refine(scan, covered, profiles[:2], start, wavelength_ratio=ratio)
    np.testing.assert_allclose(fit.scales, scales, rtol=0.01)
    for found, true in zip(fit.shapes, truth, strict=True):
        assert found.shift_deg == pytest.approx(true.shift_deg, abs=0.005)
        assert found.strain == pytest.approx(true.strain, abs=0.0002)
    on_the_grid = refine(scan, covered, profiles[:2], start)
    assert fit.misfit < 0.05 * on_the_grid.misfit


@pytest.mark.parametrize("wavelength", [MIN_WAVELENGTH_ANGSTROM, MAX_WAVELENGTH_ANGSTROM])
def test_any_wavelength_accepted_reads_finite_profiles(profiles, wavelength) -> None:
    """At the shortest and longest wavelengths a scan may state, grid angles
    the radiation cannot reach still read finite values (never fitted: a
    scan has no points there), and the reachable part refines."""
    ratio = wavelength / MODEL_GRID.wavelength_angstrom
    moved = transformed(profiles[0], PhaseShape(0.1, 0.01, 0.05), wavelength_ratio=ratio)
    assert np.isfinite(moved).all()
    covered = ratio * np.sin(np.radians(MODEL_GRID.two_theta_deg) / 2.0) < 0.99
    fit = refine(moved, covered, profiles[:1], [PhaseShape()], wavelength_ratio=ratio)
    assert np.isfinite(fit.misfit) and fit.scales[0] > 0


@pytest.mark.parametrize("ratio", [CU, AG, CO])
def test_the_ticks_stand_on_the_peaks_of_a_shifted_scan(rutile, ratio) -> None:
    """The overlay's reflections, moved by a shift of the scan's own 2θ,
    stand where the fitted profile puts the peaks."""
    sticks = simulate_sticks(rutile)
    profile = reference_input(sticks).intensity
    shape = PhaseShape(0.2, 0.0, 0.0)
    moved = transformed(profile, shape, wavelength_ratio=ratio)
    (strongest,) = (r for r in reflections(sticks, shape, (10, 60), ratio) if r.intensity == 1.0)
    peak = MODEL_GRID.two_theta_deg[np.argmax(np.where(MODEL_GRID.two_theta_deg < 60, moved, 0))]
    assert strongest.two_theta_deg == pytest.approx(peak, abs=0.02)
    unmoved = reflections(sticks, PhaseShape(), (10, 60))
    assert strongest.two_theta_deg - max(unmoved, key=lambda r: r.intensity).two_theta_deg == (
        pytest.approx(0.2 / ratio, rel=0.15)
    )


def test_held_phases_keep_their_shapes_and_the_rest_is_refined(profiles) -> None:
    """Rutile held where it was fitted, a little off, and silicon refined
    beside it: rutile's shape stays to the last digit, its scale is refitted,
    silicon's shape is found, and the misfit is no lower than the joint fit's."""
    truth = [PhaseShape(0.05, 0.004, 0.03), PhaseShape(-0.08, -0.006, 0.0)]
    scan = 0.7 * transformed(profiles[0], truth[0]) + 0.4 * transformed(profiles[1], truth[1])
    scan = scan + np.random.default_rng(1).normal(0.0, 0.005, scan.size)
    held = PhaseShape(0.04, 0.0038, 0.035)
    start = [held, PhaseShape(-0.06, -0.006)]
    fit = refine(scan, EVERYWHERE, profiles[:2], start, held=1)
    assert fit.shapes[0] == held
    assert fit.scales[0] == pytest.approx(0.7, rel=0.1)
    assert fit.shapes[1].shift_deg == pytest.approx(-0.08, abs=0.02)
    assert fit.shapes[1].strain == pytest.approx(-0.006, abs=0.0006)
    joint = refine(scan, EVERYWHERE, profiles[:2], start)
    assert joint.shapes[0] != held
    assert joint.misfit < fit.misfit


def test_held_phases_keep_their_shapes_outside_narrower_limits(profiles) -> None:
    """A phase tried under narrower limits beside phases refined under the
    full ones: those keep their shapes, the tried one stays within."""
    broad = PhaseShape(0.02, 0.001, 0.3)
    scan = transformed(0.8 * profiles[0], broad) + transformed(
        0.5 * profiles[1], PhaseShape(0.02, 0.0, 0.02)
    )
    limits = ShapeLimits(broadening_deg=0.1)
    fit = refine(scan, EVERYWHERE, profiles[:2], [broad, PhaseShape()], limits, held=1)
    assert fit.shapes[0] == broad
    assert fit.shapes[1].broadening_deg <= limits.broadening_deg + 1e-9
    assert fit.scales[0] == pytest.approx(0.8, rel=0.01)


def test_scales_stay_non_negative_and_shapes_in_bounds(profiles) -> None:
    scan = transformed(profiles[0], PhaseShape(0.9, 0.0))  # shifted beyond the bound
    fit = refine(scan, EVERYWHERE, profiles[:2], [PhaseShape(), PhaseShape()])
    limits = ShapeLimits()
    assert np.all(fit.scales >= 0)
    assert all(abs(s.shift_deg) <= limits.shift_deg + 1e-9 for s in fit.shapes)
    assert all(abs(s.strain) <= limits.strain + 1e-9 for s in fit.shapes)


def test_only_the_covered_range_is_fitted(profiles) -> None:
    scan = 0.5 * profiles[1]
    mask = (MODEL_GRID.two_theta_deg > 20) & (MODEL_GRID.two_theta_deg < 60)
    junk = np.where(mask, scan, 5.0)  # what lies outside the coverage must not count
    fit = refine(junk, mask, profiles[1:2], [PhaseShape()])
    assert fit.scales[0] == pytest.approx(0.5, rel=0.01)
    assert np.all(fit.residual[~mask] == 0)


def test_no_phase_is_no_fit(profiles) -> None:
    fit = refine(profiles[0], EVERYWHERE, profiles[:0], [])
    assert fit.scales.size == 0 and fit.misfit == pytest.approx(float(profiles[0] @ profiles[0]))


def test_a_parameter_whose_bounds_meet_stays_put_and_the_rest_is_fitted(profiles) -> None:
    """With no room to strain (bounds 0 to 0) the strain stays exactly 0 and
    the shift and width are still found; the scales' uncertainties are those
    of the fit's final Jacobian."""
    truth = PhaseShape(shift_deg=0.12, broadening_deg=0.05)
    scan = 0.6 * transformed(profiles[1], truth)
    scan = scan + np.random.default_rng(2).normal(0.0, 0.004, scan.size)
    fit = refine(scan, EVERYWHERE, profiles[1:2], [PhaseShape()], ShapeLimits(strain=0.0))
    (shape,) = fit.shapes
    assert shape.strain == 0.0
    assert shape.shift_deg == pytest.approx(0.12, abs=0.01)
    assert shape.broadening_deg == pytest.approx(0.05, abs=0.01)
    problem = _Problem(scan, profiles[1:2], EVERYWHERE, [None])
    x = np.concatenate([fit.scales, _parameters(shape, False)])
    jac = problem.jacobian(x)
    dof = scan.size - jac.shape[1]
    expected = np.sqrt(np.linalg.pinv(jac.T @ jac)[0, 0] * fit.misfit / dof)
    assert fit.scale_sd[0] == pytest.approx(expected, rel=1e-6)


def test_a_cell_strained_unevenly_is_fitted_by_the_tensor(rutile) -> None:
    """Rutile with a 0.6% longer a and a 0.4% shorter c: an isotropic strain
    leaves misfit at the peaks that move apart; the tensor, through the
    reference's strain basis, fits them and gives back the cell and the
    reflections where they are."""
    sticks = simulate_sticks(rutile)
    reference = _profile(rutile)
    a, c = rutile.lattice.a * 1.006, rutile.lattice.c * 0.996
    strained = Structure(Lattice.tetragonal(a, c), rutile.species, rutile.frac_coords)
    scan = 0.8 * _profile(strained)
    isotropic = refine(scan, EVERYWHERE, reference[None], [PhaseShape()])
    fit = refine(scan, EVERYWHERE, reference[None], [PhaseShape()], bases=[strain_basis(sticks)])
    assert isotropic.shapes[0].tensor is None
    assert fit.misfit < 0.2 * isotropic.misfit
    shape = fit.shapes[0]
    assert shape.tensor is not None
    assert shape.strain == pytest.approx(np.mean(shape.tensor[:3]))
    # The basis averages the directions of reflections within about 0.1° of
    # each other, so the cell comes back within 0.2% (the change was 0.4–0.6%),
    # and tetragonal: the fitted tensor's part the lattice's symmetry allows.
    cell = fitted_cell(sticks, shape.tensor)
    assert cell.a == pytest.approx(a, rel=2e-3) and cell.c == pytest.approx(c, rel=2e-3)
    assert cell.c < rutile.lattice.c and cell.b == pytest.approx(cell.a, rel=1e-12)
    assert (cell.alpha, cell.beta, cell.gamma) == pytest.approx((90, 90, 90), abs=1e-9)
    # The overlay's ticks stand on the strained scan's peaks, far closer than
    # an isotropic strain puts them.
    truth = reflections(simulate_sticks(strained), PhaseShape(), (10, 90))
    expected = {r.hkl: r.two_theta_deg for r in truth}

    def errors(fitted: PhaseShape) -> np.ndarray:
        ticks = reflections(sticks, fitted, (10, 90))[:20]
        return np.array([abs(t.two_theta_deg - expected[t.hkl]) for t in ticks])

    assert errors(shape).max() < 0.1
    assert errors(shape).mean() < 0.3 * errors(isotropic.shapes[0]).mean()


def test_a_parameter_held_at_its_bound_does_not_slow_the_others() -> None:
    """Two coupled parameters, the first's optimum beyond its bound (x₀ ≥ 0):
    the step holds it there and solves for the other at once, where a step
    computed as if it could move, then clipped, undershoots."""

    def residual(x: np.ndarray) -> np.ndarray:
        return np.array([x[0] + 1.0, x[1] - 2.0 - 0.9 * x[0]])

    def jacobian(x: np.ndarray) -> np.ndarray:
        return np.array([[1.0, 0.0], [-0.9, 1.0]])

    x, _ = _levenberg_marquardt(
        residual, jacobian, np.zeros(2), np.array([0.0, -10.0]), np.array([10.0, 10.0]), 2
    )
    np.testing.assert_allclose(x, [0.0, 2.0], atol=1e-3)


def test_the_slope_is_read_on_the_segment_np_interp_reads() -> None:
    """The model's slope comes from the segment np.interp interpolates on, at
    and a rounding error either side of every grid point too (where the
    arithmetic that finds it could land a point off)."""
    from xrdid.ranking.refine import _slope

    grid = MODEL_GRID.two_theta_deg
    rng = np.random.default_rng(3)
    angles = np.concatenate(
        [
            rng.uniform(grid[0] - 1.0, grid[-1] + 1.0, 20_000),
            grid,
            np.nextafter(grid, -np.inf),
            np.nextafter(grid, np.inf),
        ]
    )
    profile = rng.random(grid.size)
    segment = np.clip(np.searchsorted(grid, angles, side="right") - 1, 0, grid.size - 2)
    inside = (angles >= grid[0]) & (angles <= grid[-1])
    expected = np.where(inside, np.diff(profile)[segment] / MODEL_GRID.step_deg, 0.0)
    np.testing.assert_array_equal(_slope(profile, angles), expected)
