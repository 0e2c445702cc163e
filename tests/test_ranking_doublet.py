"""Reference profiles converted to the scan's Kα doublet for the phase refinement."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Structure

from xrdid.augment import reference_input
from xrdid.grid import MODEL_GRID
from xrdid.profiles import render_sticks
from xrdid.ranking import ArraySource
from xrdid.ranking.doublet import DoubletSource, as_measured, same_doublet, with_doublet
from xrdid.ranking.refine import PhaseShape, refine
from xrdid.sticks import simulate_sticks
from xrdid.wavelengths import CU_KALPHA, Wavelength, anode

EVERYWHERE = np.ones(MODEL_GRID.n_points, dtype=bool)
CU_KALPHA1 = CU_KALPHA.monochromatic


def test_only_another_doublet_is_converted() -> None:
    """A file's Cu Kα with its own digits is the library's doublet; Kα1 alone,
    Mo and Co are not."""
    assert same_doublet(CU_KALPHA)
    assert same_doublet(Wavelength(1.540598, 1.544426, 0.5, "Cu"))
    for other in (CU_KALPHA1, anode("Mo"), anode("Co"), Wavelength(0.8)):
        assert not same_doublet(other), other


def test_the_cu_kalpha2_is_stripped_as_a_kalpha1_rendering_shows(rutile: Structure) -> None:
    """Stripped of its Kα2, a Cu Kα1 + Kα2 rendering is the Kα1 rendering
    (within 3% of the strongest point: the Kα2 peaks' own widths), where the
    unstripped one is off by the Kα2 shoulders; the strongest point is kept."""
    sticks = simulate_sticks(rutile)
    both = render_sticks(sticks, MODEL_GRID, wavelength=CU_KALPHA)
    single = render_sticks(sticks, MODEL_GRID, wavelength=CU_KALPHA1)
    single *= both.max() / single.max()
    stripped = with_doublet(both, CU_KALPHA1)[0]
    assert stripped.max() == pytest.approx(both.max())
    assert np.abs(stripped - single).max() < 0.03 * both.max()
    assert np.abs(both - single).max() > 0.2 * both.max()
    np.testing.assert_array_equal(with_doublet(both, CU_KALPHA)[0], both)


def test_a_kalpha1_scan_is_fitted_by_the_converted_reference(rutile: Structure) -> None:
    """A monochromatic scan of rutile: the reference as stored (with Cu Kα2)
    leaves misfit at every peak; converted, it fits."""
    sticks = simulate_sticks(rutile)
    reference = reference_input(sticks).intensity
    scan = render_sticks(sticks, MODEL_GRID, wavelength=CU_KALPHA1)
    scan = 0.7 * scan / scan.max()
    stored = refine(scan, EVERYWHERE, reference[None], [PhaseShape()])
    converted = refine(scan, EVERYWHERE, with_doublet(reference, CU_KALPHA1), [PhaseShape()])
    assert converted.misfit < 0.2 * stored.misfit


def test_only_calculated_references_are_converted(rutile: Structure) -> None:
    """A measured reference carries whatever doublet its instrument had: the
    source leaves it as stored; everything else is the wrapped source's."""
    calculated = reference_input(simulate_sticks(rutile)).intensity
    measured = calculated.copy()
    source = ArraySource(
        np.stack([calculated, measured]),
        np.eye(2, 8, dtype=np.float32),
        [simulate_sticks(rutile), None],
    )
    ids = np.array([0, 1], dtype=np.int64)
    converted = as_measured(source, CU_KALPHA1)
    assert isinstance(converted, DoubletSource)
    profiles = converted.profiles(ids)
    np.testing.assert_allclose(profiles[0], with_doublet(calculated, CU_KALPHA1)[0], atol=1e-6)
    np.testing.assert_array_equal(profiles[1], source.profiles(ids)[1])
    assert as_measured(source, CU_KALPHA) is source
    assert converted.facts(ids) == source.facts(ids)
