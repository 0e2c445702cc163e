"""The measured powder pattern and the one validation step every reader ends in.

Readers turn bytes into arrays and call :func:`make_pattern`; it checks
everything once (finite, enough points, 2θ inside (0°, 180°), ordered, no
duplicates) so all later stages get clean float arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from xrdid.errors import PatternReadError
from xrdid.wavelengths import Wavelength

# Fewer points than this cannot hold a usable powder pattern (a handful of
# peaks at 3+ points each); it mostly catches truncated or mis-split files.
MIN_POINTS = 50

# Upper bound on points: 2θ 0–180° at 0.0001° is 1.8 M points, beyond any real
# scan; larger arrays are hostile or mis-parsed files.
MAX_POINTS = 2_000_000


# Metadata key: what a reader tells the user about the file (shown as a warning).
READER_WARNING = "reader_warning"

# Metadata key: what a reader converted the file's first column to 2θ from
# ("q (nm⁻¹)", "d (Å)"); the pattern's wavelength is the one it converted at.
CONVERTED_AXIS = "converted_axis"


@dataclass(frozen=True)
class Pattern:
    """A measured pattern: intensity over 2θ, strictly increasing in 2θ.

    ``wavelength`` is None when the file does not state it; ``metadata`` holds
    what the instrument wrote (sample id, anode, scan axis…) as text.
    """

    two_theta_deg: NDArray[np.float64]
    intensity: NDArray[np.float64]
    sigma: NDArray[np.float64] | None = None
    wavelength: Wavelength | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def n_points(self) -> int:
        return int(self.two_theta_deg.size)

    @property
    def two_theta_range_deg(self) -> tuple[float, float]:
        return float(self.two_theta_deg[0]), float(self.two_theta_deg[-1])


def make_pattern(
    two_theta_deg: ArrayLike,
    intensity: ArrayLike,
    sigma: ArrayLike | None = None,
    *,
    wavelength: Wavelength | None = None,
    metadata: Mapping[str, str] | None = None,
    source: str | None = None,
) -> Pattern:
    """Validate raw arrays and build a :class:`Pattern`.

    A file written from high to low 2θ is reversed; a shuffled one is rejected
    (no instrument writes that, so it means a broken export).
    """
    x = as_vector(two_theta_deg, "2θ", source)
    y = as_vector(intensity, "intensity", source)
    s = None if sigma is None else as_vector(sigma, "sigma", source)
    if y.size != x.size or (s is not None and s.size != x.size):
        raise PatternReadError(
            f"columns differ in length (2θ {x.size}, intensity {y.size}"
            + ("" if s is None else f", sigma {s.size}")
            + ")",
            source=source,
        )
    if x.size < MIN_POINTS:
        raise PatternReadError(
            f"only {x.size} data points; a powder pattern needs at least "
            f"{MIN_POINTS} (is the file truncated or the wrong column split?)",
            source=source,
        )
    if x.size > MAX_POINTS:
        raise PatternReadError(
            f"{x.size} data points is more than the {MAX_POINTS} a scan can have",
            source=source,
        )
    check_finite(x, "2θ", source)
    check_finite(y, "intensity", source)
    if s is not None:
        check_finite(s, "sigma", source)
        if np.any(s < 0):
            raise PatternReadError("negative sigma (uncertainty)", source=source, field="sigma")
    if x[0] <= 0.0 or x[-1] <= 0.0 or x.min() <= 0.0 or x.max() >= 180.0:
        raise PatternReadError(
            f"2θ runs {x.min():g}–{x.max():g}°, outside (0°, 180°); the first column "
            "must be 2θ in degrees (not radians, d-spacing or Q)",
            source=source,
            field="2θ",
        )
    step = np.diff(x)
    if np.all(step < 0):
        x, y = x[::-1], y[::-1]
        s = None if s is None else s[::-1]
        step = -step[::-1]
    if np.any(step == 0):
        index = int(np.flatnonzero(step == 0)[0])
        raise PatternReadError(
            f"duplicate 2θ value {x[index]:g}° at points {index + 1} and {index + 2}; "
            "each angle must appear once (merge or drop repeated scans)",
            source=source,
            field="2θ",
        )
    if np.any(step < 0):
        index = int(np.flatnonzero(step < 0)[0])
        raise PatternReadError(
            f"2θ is not monotonic: {x[index]:g}° is followed by {x[index + 1]:g}° "
            f"(point {index + 2}); sort the scan by 2θ",
            source=source,
            field="2θ",
        )
    if not np.any(y != y[0]):
        raise PatternReadError("intensity is constant: the file holds no pattern", source=source)
    return Pattern(
        two_theta_deg=x,
        intensity=y,
        sigma=s,
        wavelength=wavelength,
        metadata=dict(metadata or {}),
    )


def as_vector(values: ArrayLike, name: str, source: str | None) -> NDArray[np.float64]:
    """``values`` as a new float64 column, or a PatternReadError naming ``name``."""
    try:
        array = np.array(values, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise PatternReadError(f"{name} is not numeric: {exc}", source=source, field=name) from exc
    if array.ndim != 1:
        raise PatternReadError(f"{name} must be one column", source=source, field=name)
    return array


def check_finite(values: NDArray[np.float64], name: str, source: str | None) -> None:
    """A PatternReadError naming the first NaN/inf of ``values``, if any."""
    bad = ~np.isfinite(values)
    if np.any(bad):
        index = int(np.flatnonzero(bad)[0])
        raise PatternReadError(
            f"{name} holds {values[index]!r} at point {index + 1}; remove NaN/inf values",
            source=source,
            field=name,
        )
