"""Augmentation of preprocessed Raman spectra, batched in torch (CPU or GPU).

It mimics what differs between two samples of one mineral, as the service
sees them after preprocessing (every number is per sample, drawn in both
directions where it has a sign):

- calibration: an offset of a few cm⁻¹ and a slight stretch of the axis;
- band widths: Gaussian broadening (crystallinity, resolution, temperature);
- relative intensities: a smooth random factor along the axis (orientation of
  the crystal against the laser's polarisation changes band ratios), and a
  tilt across the range (laser wavelength: the ν⁴ law and the detector's
  response weight high and low shifts differently at 532 and 785 nm);
- fluorescence: what baseline removal leaves, a smooth residual above or
  below zero (the pack also holds spectra with real backgrounds removed by
  the real pipeline);
- shot noise, and cosmic rays the despiker let through (small spikes);
- truncated ranges (spectrometers that start at 200 or stop at 1,100 cm⁻¹);
- a second mineral mixed in (fraction 10–45%).

Inputs and outputs are (B, L) intensities (≥ 0, max 1 in the covered range)
and (B, L) float masks. torch only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class RamanAugmentConfig:
    """Ranges of every distortion, in grid points (1 cm⁻¹) where not said."""

    clean_probability: float = 0.05  # untouched samples (a reference-like query)
    shift_max: float = 5.0  # ± calibration offset
    stretch_max: float = 0.004  # ± relative axis scale (±4 cm⁻¹ at 1,000 cm⁻¹)
    broaden_probability: float = 0.5
    broaden_sigma_max: float = 3.0  # Gaussian σ of the extra broadening
    intensity_sigma: float = 0.35  # log-normal factor along the axis
    intensity_spacing: tuple[int, int] = (25, 150)  # its correlation length
    tilt_max: float = 0.6  # × exp(±tilt) from one end of the grid to the other
    residual_probability: float = 0.5
    residual_max: float = 0.08  # fluorescence residual, share of the strongest band
    noise_range: tuple[float, float] = (0.003, 0.05)  # σ of shot noise at intensity 1
    spike_probability: float = 0.1
    spike_max: float = 0.3
    truncate_probability: float = 0.3
    truncate_max_share: float = 0.35  # of the covered range, at either end
    min_coverage: int = 300
    mixture_probability: float = 0.2
    mixture_fraction: tuple[float, float] = (0.1, 0.45)

    def to_dict(self) -> dict:
        return asdict(self)


RAMAN_AUGMENTATION = RamanAugmentConfig()


def _uniform(
    n: int, lo: float, hi: float, g: torch.Generator, device: torch.device
) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, device=device)


def _chance(n: int, p: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) < p


def warp(x: torch.Tensor, offset: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Read each row at positions (i − c)·scale + c + offset (linear
    interpolation, zero outside): a calibration offset and stretch."""
    n, length = x.shape
    index = torch.arange(length, device=x.device, dtype=x.dtype)
    centre = (length - 1) / 2.0
    position = (index[None, :] - centre) * scale[:, None] + centre + offset[:, None]
    left = position.floor().long()
    weight = position - left
    inside = (left >= 0) & (left + 1 <= length - 1)
    left_c, right_c = left.clamp(0, length - 1), (left + 1).clamp(0, length - 1)
    values = x.gather(1, left_c) * (1 - weight) + x.gather(1, right_c) * weight
    return torch.where(inside, values, torch.zeros_like(values))


def broaden(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Convolve each row with a Gaussian of its own σ (points; 0 = unchanged)."""
    n, length = x.shape
    half = max(1, int(math.ceil(3 * float(sigma.max()))))
    taps = torch.arange(-half, half + 1, device=x.device, dtype=x.dtype)
    safe = sigma.clamp_min(1e-3)[:, None]
    kernel = torch.exp(-0.5 * (taps[None, :] / safe) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    out = F.conv1d(x[None], kernel[:, None, :], padding=half, groups=n)[0]
    return torch.where(sigma[:, None] > 1e-3, out, x)


def smooth_field(
    n: int, length: int, spacing: int, g: torch.Generator, device: torch.device
) -> torch.Tensor:
    """(n, length) random values ~N(0, 1) varying over ``spacing`` points."""
    knots = torch.randn(n, 1, length // spacing + 2, generator=g, device=device)
    return F.interpolate(knots, size=length, mode="linear", align_corners=True)[:, 0]


def augment(
    x: torch.Tensor,
    mask: torch.Tensor,
    g: torch.Generator,
    cfg: RamanAugmentConfig = RAMAN_AUGMENTATION,
    *,
    residual: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Augment a batch. ``residual`` (B,) bool marks rows that may get a
    synthetic fluorescence residual (rows that already had a real background
    removed should not). Returns (x, mask, partner, fraction): each row's
    mixed-in row of the batch (−1 = none) and its share."""
    n, length = x.shape
    device, dtype = x.device, x.dtype
    x = x.clone()
    mask = mask.clone()
    clean = _chance(n, cfg.clean_probability, g, device)

    # A second mineral: another row of the batch, on this row's coverage.
    mixed = _chance(n, cfg.mixture_probability, g, device) & ~clean
    partner = torch.roll(torch.arange(n, device=device), 1)
    fraction = _uniform(n, *cfg.mixture_fraction, g, device) * mixed
    x = (1 - fraction[:, None]) * x + fraction[:, None] * x[partner] * mask
    partner = torch.where(mixed, partner, torch.full_like(partner, -1))

    # Calibration offset and stretch, to spectrum and coverage alike.
    offset = _uniform(n, -cfg.shift_max, cfg.shift_max, g, device)
    scale = 1 + _uniform(n, -cfg.stretch_max, cfg.stretch_max, g, device)
    offset, scale = torch.where(clean, 0.0, offset), torch.where(clean, 1.0, scale)
    x = warp(x, offset, scale)
    mask = (warp(mask, offset, scale) > 0.5).to(dtype)

    sigma = _uniform(n, 0.0, cfg.broaden_sigma_max, g, device)
    sigma = sigma * (_chance(n, cfg.broaden_probability, g, device) & ~clean)
    x = broaden(x, sigma)

    spacing = int(torch.randint(*cfg.intensity_spacing, (1,), generator=g, device=device))
    field = cfg.intensity_sigma * smooth_field(n, length, spacing, g, device)
    t = torch.linspace(-1.0, 1.0, length, device=device, dtype=dtype)
    tilt = _uniform(n, -cfg.tilt_max, cfg.tilt_max, g, device)[:, None] * t[None, :]
    factor = torch.exp(field + tilt)
    x = torch.where(clean[:, None], x, x * factor)
    x = x / x.amax(dim=1, keepdim=True).clamp_min(1e-6)

    wants_residual = _chance(n, cfg.residual_probability, g, device) & ~clean
    if residual is not None:
        wants_residual &= residual
    coefficients = torch.randn(n, 4, generator=g, device=device)
    powers = torch.stack([t**k for k in range(4)])  # (4, L)
    shape = coefficients @ powers  # (n, L): smooth, above and below zero
    shape = shape / shape.abs().amax(dim=1, keepdim=True).clamp_min(1e-6)
    level = _uniform(n, 0.0, cfg.residual_max, g, device) * wants_residual
    x = x + level[:, None] * shape

    low, high = cfg.noise_range
    noise = torch.exp(_uniform(n, math.log(low), math.log(high), g, device)) * ~clean
    x = x + noise[:, None] * torch.sqrt(x.clamp_min(0) + 0.02) * torch.randn(
        n, length, generator=g, device=device
    )

    spiked = _chance(n, cfg.spike_probability, g, device) & ~clean
    where = torch.randint(0, length, (n,), generator=g, device=device)
    height = _uniform(n, 0.05, cfg.spike_max, g, device) * spiked
    x = x.scatter_add(1, where[:, None], height[:, None].to(dtype))

    # Truncated range: cut each end by up to a share of the covered width.
    covered = mask.sum(dim=1)
    first = mask.argmax(dim=1)
    cut = _chance(n, cfg.truncate_probability, g, device) & ~clean
    room = (covered - cfg.min_coverage).clamp_min(0)
    cut_lo = (_uniform(n, 0, cfg.truncate_max_share, g, device) * covered).clamp(max=room / 2)
    cut_hi = (_uniform(n, 0, cfg.truncate_max_share, g, device) * covered).clamp(max=room / 2)
    start = first + (cut_lo * cut).long()
    stop = first + covered.long() - (cut_hi * cut).long()
    index = torch.arange(length, device=device)
    mask = mask * ((index[None, :] >= start[:, None]) & (index[None, :] < stop[:, None]))

    x = x.clamp_min(0) * mask
    x = x / x.amax(dim=1, keepdim=True).clamp_min(1e-6)
    return x, mask, partner, fraction
