"""Raman augmentation: shapes, ranges, coverage and each distortion's effect."""

from __future__ import annotations

import numpy as np
import torch

from xrdid.raman.augment import RamanAugmentConfig, augment, broaden, warp

L = 1701


def batch(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    index = torch.arange(L, dtype=torch.float32)
    x = torch.exp(-0.5 * ((index - 986.0) / 3.0) ** 2).repeat(n, 1)  # band at 1,086 cm⁻¹
    mask = ((index >= 35) & (index < 1200)).float().repeat(n, 1)
    return x * mask, mask


def test_output_contract_and_determinism() -> None:
    x, mask = batch()
    out = augment(x, mask, torch.Generator().manual_seed(1))
    again = augment(x, mask, torch.Generator().manual_seed(1))
    for a, b in zip(out, again, strict=True):
        assert torch.equal(a, b)
    y, m, partner, fraction = out
    assert y.shape == m.shape == (32, L)
    assert torch.all(y >= 0) and torch.allclose(y.amax(dim=1), torch.ones(32))
    assert torch.all(y[m == 0] == 0)
    assert torch.all(m.sum(dim=1) >= 300)  # truncation keeps min_coverage
    assert torch.all((partner == -1) == (fraction == 0))


def test_warp_moves_a_band_by_the_offset() -> None:
    x, _ = batch(3)
    moved = warp(x, torch.tensor([-4.0, 0.0, 4.0]), torch.ones(3))
    assert moved.argmax(dim=1).tolist() == [990, 986, 982]


def test_broadening_keeps_area_and_widens() -> None:
    x, _ = batch(2)
    wide = broaden(x, torch.tensor([0.0, 3.0]))
    assert torch.equal(wide[0], x[0])
    assert torch.isclose(wide[1].sum(), x[1].sum(), rtol=1e-4)
    assert wide[1].max() < 0.8 * x[1].max()


def test_clean_samples_pass_unchanged() -> None:
    x, mask = batch(8)
    y, m, _, _ = augment(
        x, mask, torch.Generator().manual_seed(2), RamanAugmentConfig(clean_probability=1.0)
    )
    assert torch.allclose(y, x, atol=1e-6) and torch.equal(m, mask)


def test_calibration_shifts_stay_within_bounds() -> None:
    x, mask = batch(200)
    cfg = RamanAugmentConfig(
        mixture_probability=0.0,
        spike_probability=0.0,
        truncate_probability=0.0,
        residual_probability=0.0,
        noise_range=(1e-6, 1e-5),
    )
    y, _, _, _ = augment(x, mask, torch.Generator().manual_seed(3), cfg)
    peaks = y.argmax(dim=1).numpy()
    assert np.abs(peaks - 986).max() <= cfg.shift_max + cfg.stretch_max * 500 + 1
    assert len(set(peaks.tolist())) > 5
