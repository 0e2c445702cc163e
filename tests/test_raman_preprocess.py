"""Raman preprocessing: despiking, the grid, the baseline and the output contract."""

from __future__ import annotations

import numpy as np
import pytest

from xrdid.errors import InputError
from xrdid.raman.backgrounds import add_spikes, poisson_counts, random_fluorescence
from xrdid.raman.despike import remove_spikes, spike_mask
from xrdid.raman.grid import RAMAN_GRID, to_raman_grid
from xrdid.raman.preprocess import RamanBaseline, preprocess_spectrum, remove_baseline
from xrdid.raman.spectrum import make_raman_spectrum


@pytest.fixture(scope="module")
def real_spectra(rruff_records):
    """Forty real RRUFF spectra of different minerals."""
    seen, out = set(), []
    for record in rruff_records[::50]:
        if record.mineral not in seen:
            seen.add(record.mineral)
            out.append(record.spectrum)
    return out[:40]


def test_grid_is_documented_and_resampling_keeps_a_band() -> None:
    assert RAMAN_GRID.n_points == 1701
    assert RAMAN_GRID.shift_cm1[[0, -1]].tolist() == [100.0, 1800.0]
    x = np.arange(150.0, 1300.0, 0.48)  # a 532 nm RRUFF sampling
    y = np.exp(-0.5 * ((x - 1086.0) / 3.0) ** 2)
    gridded = to_raman_grid(x, y)
    assert gridded.covered_cm1 == pytest.approx((150.0, x[-1]))
    assert RAMAN_GRID.shift_cm1[np.argmax(gridded.intensity)] == 1086.0
    assert not gridded.mask[:50].any() and gridded.mask[50]
    assert np.all(gridded.intensity[~gridded.mask] == 0)


def test_too_little_coverage_is_refused() -> None:
    x = np.linspace(1700.0, 2500.0, 400)
    with pytest.raises(InputError, match="covers 100 cm⁻¹ of the compared range"):
        to_raman_grid(x, np.sin(x))


def test_despiking_finds_cosmic_rays_and_leaves_real_spectra_alone(real_spectra) -> None:
    rng = np.random.default_rng(3)
    found = total = 0
    error_before = error_after = 0.0
    points = flagged = 0
    for spectrum in real_spectra:
        points += spectrum.n_points
        flagged += int(spike_mask(spectrum.intensity).sum())  # RRUFF spectra are despiked
        spiked, starts = add_spikes(rng, spectrum.intensity, 2)
        found += int(spike_mask(spiked)[starts].sum())
        total += starts.size
        cleaned, _ = remove_spikes(spiked)
        error_before += np.abs(spiked - spectrum.intensity).sum()
        error_after += np.abs(cleaned - spectrum.intensity).sum()
    assert flagged <= 0.0005 * points
    assert found / total >= 0.9
    assert error_after < 0.15 * error_before


def test_baseline_removes_fluorescence_and_keeps_bands(real_spectra) -> None:
    rng = np.random.default_rng(5)
    removed, kept = [], []
    for spectrum in real_spectra:
        gridded = to_raman_grid(spectrum.shift_cm1, spectrum.intensity)
        bands = np.clip(gridded.intensity[gridded.mask], 0, None)
        bands /= bands.max()
        background = random_fluorescence(rng, RAMAN_GRID.shift_cm1[gridded.mask], 3.0)
        counts = poisson_counts(rng, bands + background, 3000.0)
        lo, scale = counts.min(), np.ptp(counts)
        _, baseline = remove_baseline((counts - lo) / scale)
        estimate = baseline * scale + lo
        truth = background * 3000.0
        removed.append(1 - np.clip(truth - estimate, 0, None).sum() / truth.sum())
        eaten = np.minimum(np.clip(estimate - truth, 0, None), bands * 3000.0)
        kept.append(1 - eaten.sum() / (bands * 3000.0).sum())
    assert np.mean(removed) > 0.95
    assert np.mean(kept) > 0.93


def test_preprocessed_spectrum_contract(real_spectra) -> None:
    spectrum = real_spectra[0]
    before = spectrum.intensity.copy()
    for method in RamanBaseline:
        result = preprocess_spectrum(spectrum, method=method)
        assert result.intensity.shape == (RAMAN_GRID.n_points,)
        assert result.intensity.max() == pytest.approx(1.0)
        assert result.intensity.min() >= 0.0
        assert np.all(result.intensity[~result.mask] == 0)
        assert result.method is method
    np.testing.assert_array_equal(spectrum.intensity, before)  # input not mutated


def test_partial_coverage_is_said() -> None:
    x = np.linspace(900.0, 1300.0, 500)
    y = 5 + np.exp(-0.5 * ((x - 1086.0) / 4.0) ** 2)
    result = preprocess_spectrum(make_raman_spectrum(x, y))
    assert any("covers only 900–1300" in w for w in result.warnings)
