import pickle

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from xrdid.errors import SimulationTooLargeError
from xrdid.grid import MODEL_GRID, Grid
from xrdid.profiles import (
    InstrumentProfile,
    render_peaks,
    render_sticks,
    scherrer_fwhm_deg,
    tch_pseudo_voigt_params,
)
from xrdid.sticks import (
    STICK_TWO_THETA_RANGE_DEG,
    SimulationLimits,
    check_simulation_cost,
    simulate_sticks,
    simulation_cost,
)
from xrdid.wavelengths import anode


@pytest.fixture(scope="module")
def silicon():
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.4309), ["Si"], [[0, 0, 0]])


def test_silicon_golden_peaks(silicon):
    sticks = simulate_sticks(silicon)
    two_theta = sticks.two_theta_deg(1.54056)
    # Si standard (NIST SRM 640): 111, 220, 311 at 28.44°, 47.30°, 56.12° (Cu Kα1).
    assert two_theta[:3] == pytest.approx([28.44, 47.30, 56.12], abs=0.02)
    assert [tuple(sorted(map(abs, h))) for h in sticks.hkl[:3]] == [(1, 1, 1), (0, 2, 2), (1, 1, 3)]
    intensity = sticks.intensities(1.54056)
    assert np.argmax(intensity) == 0  # 111 strongest


def test_hexagonal_hkl_are_three_index():
    quartz_like = Structure.from_spacegroup(
        "P6_3/mmc", Lattice.hexagonal(2.46, 6.7), ["C"], [[0, 0, 0.25]]
    )
    assert simulate_sticks(quartz_like).hkl.shape[1] == 3


def test_sticks_move_with_wavelength_through_d(silicon):
    sticks = simulate_sticks(silicon)
    mo = sticks.two_theta_deg(0.7093)
    assert mo[0] == pytest.approx(12.99, abs=0.02)
    assert np.allclose(sticks.d_angstrom, 0.7093 / (2 * np.sin(np.radians(mo / 2))))


def test_rendered_peaks_conserve_area_and_position():
    grid = MODEL_GRID
    centers = np.array([20.0, 50.031])
    areas = np.array([1.0, 2.0])
    fwhm, eta = tch_pseudo_voigt_params(np.array([0.1, 0.1]), np.array([0.05, 0.0]))
    profile = render_peaks(centers, areas, fwhm, eta, grid)
    assert profile.sum() * grid.step_deg == pytest.approx(3.0, rel=0.02)
    x = grid.two_theta_deg
    assert x[np.argmax(profile)] == pytest.approx(50.03, abs=0.011)


def test_render_skips_unreachable_and_out_of_range_peaks():
    grid = Grid(start_deg=10, stop_deg=20, step_deg=0.02)
    profile = render_peaks(
        np.array([np.nan, 50.0, 15.0]), np.ones(3), np.full(3, 0.1), np.zeros(3), grid
    )
    assert profile.sum() * 0.02 == pytest.approx(1.0, rel=0.01)


def test_kalpha2_partner_and_scherrer_width(rutile):
    sticks = simulate_sticks(rutile)
    x = MODEL_GRID.two_theta_deg
    single = render_sticks(sticks)
    doublet = render_sticks(sticks, wavelength=anode("Cu"))
    # Rutile 110 at 27.45°; Kα2 partner at 27.52°, half as strong: the doublet
    # has extra intensity on the high-angle side only.
    window = (x > 27.2) & (x < 27.8)
    centroid_single = (x * single)[window].sum() / single[window].sum()
    centroid_doublet = (x * doublet)[window].sum() / doublet[window].sum()
    assert centroid_single == pytest.approx(27.45, abs=0.02)
    assert 0.015 < centroid_doublet - centroid_single < 0.04
    # Scherrer: 10 nm crystallites at 2θ=30° broaden by ≈ 0.82° FWHM.
    assert scherrer_fwhm_deg(np.array([30.0]), 1.54056, 10.0)[0] == pytest.approx(0.82, abs=0.01)
    broad = render_sticks(sticks, crystallite_size_nm=10.0)
    assert (broad > 0.5).sum() > 3 * (single > 0.5).sum()


def test_instrument_width_grows_with_angle():
    widths = InstrumentProfile().fwhm_deg(np.array([10.0, 90.0]))
    assert widths[0] == pytest.approx(0.06, abs=0.005)
    assert widths[1] > widths[0]


def test_mo_measurement_renders_where_cu_does(silicon):
    """A Mo-Kα1 simulated scan, mapped to the Cu grid, puts peaks where Cu does."""
    sticks = simulate_sticks(silicon)
    cu = render_sticks(sticks, wavelength=anode("CuKa1"))
    mo = render_sticks(sticks, wavelength=anode("MoKa1"))
    x = MODEL_GRID.two_theta_deg
    assert x[np.argmax(cu)] == pytest.approx(x[np.argmax(mo)], abs=0.021)


def test_reciprocal_lattice_reproduces_d_spacings(rutile):
    sticks = simulate_sticks(rutile)
    g = sticks.hkl @ sticks.reciprocal_lattice
    assert np.allclose(1.0 / np.linalg.norm(g, axis=1), sticks.d_angstrom, rtol=1e-6)


def test_reciprocal_lattice_matches_hexagonal_hkl():
    graphite = Structure.from_spacegroup(
        "P6_3/mmc", Lattice.hexagonal(2.46, 6.7), ["C"], [[0, 0, 0.25]]
    )
    sticks = simulate_sticks(graphite)
    g = sticks.hkl @ sticks.reciprocal_lattice
    assert np.allclose(1.0 / np.linalg.norm(g, axis=1), sticks.d_angstrom, rtol=1e-6)


def test_very_broad_peaks_render_in_bounded_chunks():
    """Small crystallites at high angle give FWHM of degrees: their windows span
    the grid, but memory stays bounded and the area is still conserved."""
    grid = Grid(start_deg=10, stop_deg=160, step_deg=0.01)
    n = 3000
    rng = np.random.default_rng(0)
    centers = rng.uniform(40, 130, n)
    fwhm = np.full(n, 0.1)
    fwhm[:10] = 8.0
    profile = render_peaks(centers, np.ones(n), fwhm, np.zeros(n), grid)
    assert profile.sum() * grid.step_deg == pytest.approx(n, rel=0.01)


# --------------------------------------------------------------------------- simulation cost


@pytest.mark.parametrize(
    "lattice",
    [Lattice.cubic(10.0), Lattice.from_parameters(7.0, 9.0, 13.0, 80.0, 95.0, 105.0)],
)
def test_reflection_estimate_counts_the_points_pymatgen_visits(lattice: Lattice) -> None:
    structure = Structure(lattice, ["Si"], [[0, 0, 0]])
    radius = 2.0 * np.sin(np.radians(STICK_TWO_THETA_RANGE_DEG[1] / 2.0)) / 1.54056
    visited = len(
        lattice.reciprocal_lattice_crystallographic.get_points_in_sphere(
            [[0, 0, 0]], [0, 0, 0], radius
        )
    )
    assert simulation_cost(structure).reflections == pytest.approx(visited, rel=0.03)


def test_simulation_over_the_limits_is_refused_before_simulating() -> None:
    big = Structure(
        Lattice.cubic(60.0), ["U"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    )
    with pytest.raises(SimulationTooLargeError, match="more than the limit of 100,000") as info:
        check_simulation_cost(big, SimulationLimits(), "big.cif")
    assert info.value.quantity == "reflections" and info.value.value > 1_000_000
    small = Structure(Lattice.cubic(10.0), ["U"] * 200, np.random.default_rng(0).random((200, 3)))
    with pytest.raises(SimulationTooLargeError, match="atom-reflections") as info:
        check_simulation_cost(small, SimulationLimits(max_atom_reflections=10**5), "s.cif")
    copied = pickle.loads(pickle.dumps(info.value))  # crosses the worker boundary intact
    assert (copied.quantity, copied.limit, str(copied)) == (
        "atom_reflections",
        10**5,
        str(info.value),
    )
    assert check_simulation_cost(small, SimulationLimits(), "s.cif").atoms == 200
