"""The measured Raman spectrum and the one validation step every Raman reader ends in.

Readers turn bytes into arrays and call :func:`make_raman_spectrum`; it checks
everything once (finite, enough points, a Raman-shift axis, ordered, no
duplicates), as :func:`xrdid.pattern.make_pattern` does for XRD. Axes stored
as absolute wavenumbers or wavelengths are converted to Raman shift with the
laser wavelength (:func:`shift_from_wavenumber`, :func:`shift_from_wavelength`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from xrdid.errors import PatternReadError
from xrdid.pattern import MAX_POINTS, MIN_POINTS, as_vector, check_finite

# Raman shifts outside this window are no vibrational band (the highest, O–H
# and N–H stretching, lie below 4,000 cm⁻¹; anti-Stokes spectra go negative).
# Larger values are absolute wavenumbers (a 532 nm laser sits at 18,797 cm⁻¹).
MIN_SHIFT_CM1 = -5000.0
MAX_SHIFT_CM1 = 10000.0

# Lasers Raman spectrometers use: 244 nm (deep UV) to 1,064 nm (Nd:YAG).
MIN_LASER_NM = 200.0
MAX_LASER_NM = 1100.0

NM_PER_CM = 1e7  # wavenumber (cm⁻¹) = 1e7 / wavelength (nm)


@dataclass(frozen=True)
class RamanSpectrum:
    """A measured Raman spectrum: intensity over Raman shift (cm⁻¹), strictly
    increasing in shift. ``laser_wavelength_nm`` is None when the file does
    not state it; ``metadata`` holds what the instrument or database wrote."""

    shift_cm1: NDArray[np.float64]
    intensity: NDArray[np.float64]
    laser_wavelength_nm: float | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def n_points(self) -> int:
        return int(self.shift_cm1.size)

    @property
    def shift_range_cm1(self) -> tuple[float, float]:
        return float(self.shift_cm1[0]), float(self.shift_cm1[-1])


def check_laser(laser_wavelength_nm: float | None, source: str | None = None) -> float | None:
    """The laser wavelength if plausible (200–1,100 nm), else a clear error."""
    if laser_wavelength_nm is None:
        return None
    value = float(laser_wavelength_nm)
    if not (MIN_LASER_NM <= value <= MAX_LASER_NM):
        raise PatternReadError(
            f"laser wavelength {value:g} nm is outside {MIN_LASER_NM:g}–{MAX_LASER_NM:g} nm; "
            "give it in nanometres (e.g. 532, 785)",
            source=source,
            field="laser_wavelength_nm",
        )
    return value


def plausible_laser(value: float | None) -> float | None:
    """A laser wavelength read from a header, or None when it is unset (0) or
    implausible: a file's odd field should not fail the read."""
    if value is None or not (MIN_LASER_NM <= float(value) <= MAX_LASER_NM):
        return None
    return float(value)


def shift_from_wavenumber(
    wavenumber_cm1: ArrayLike, laser_wavelength_nm: float
) -> NDArray[np.float64]:
    """Raman shift of scattered light measured as absolute wavenumber (cm⁻¹)."""
    return NM_PER_CM / laser_wavelength_nm - np.asarray(wavenumber_cm1, dtype=np.float64)


def shift_from_wavelength(
    wavelength_nm: ArrayLike, laser_wavelength_nm: float
) -> NDArray[np.float64]:
    """Raman shift of scattered light measured as wavelength (nm)."""
    with np.errstate(divide="ignore"):
        return NM_PER_CM / laser_wavelength_nm - NM_PER_CM / np.asarray(
            wavelength_nm, dtype=np.float64
        )


class RamanAxis(StrEnum):
    """What the first column of a Raman file holds."""

    SHIFT = "shift"  # Raman shift, cm⁻¹ (what nearly every export writes)
    WAVENUMBER = "wavenumber"  # absolute wavenumber of the scattered light, cm⁻¹
    WAVELENGTH = "wavelength"  # wavelength of the scattered light, nm


def axis_to_shift(
    values: ArrayLike,
    axis: RamanAxis,
    laser_wavelength_nm: float | None,
    source: str | None = None,
) -> NDArray[np.float64]:
    """Raman shift (cm⁻¹) of an axis in ``axis`` units; absolute wavenumbers
    and wavelengths need the laser wavelength."""
    x = np.asarray(values, dtype=np.float64)
    if axis is RamanAxis.SHIFT:
        return x
    laser = check_laser(laser_wavelength_nm, source)
    if laser is None:
        unit = "cm⁻¹ (absolute wavenumber)" if axis is RamanAxis.WAVENUMBER else "nm (wavelength)"
        raise PatternReadError(
            f"the axis is in {unit} and the file states no laser wavelength; give "
            "laser_wavelength_nm so it can be converted to Raman shift",
            source=source,
            field="laser_wavelength_nm",
        )
    if axis is RamanAxis.WAVENUMBER:
        return shift_from_wavenumber(x, laser)
    if np.any(x <= 0):
        raise PatternReadError("a wavelength axis must be positive (nm)", source=source)
    return shift_from_wavelength(x, laser)


def make_raman_spectrum(
    shift_cm1: ArrayLike,
    intensity: ArrayLike,
    *,
    laser_wavelength_nm: float | None = None,
    metadata: Mapping[str, str] | None = None,
    source: str | None = None,
) -> RamanSpectrum:
    """Validate raw arrays and build a :class:`RamanSpectrum`.

    A spectrum written from high to low shift (as WiRE and absolute-wavenumber
    axes are) is reversed; a shuffled one is rejected.
    """
    x = as_vector(shift_cm1, "Raman shift", source)
    y = as_vector(intensity, "intensity", source)
    if y.size != x.size:
        raise PatternReadError(
            f"columns differ in length (Raman shift {x.size}, intensity {y.size})", source=source
        )
    if x.size < MIN_POINTS:
        raise PatternReadError(
            f"only {x.size} data points; a Raman spectrum needs at least {MIN_POINTS} "
            "(is the file truncated or the wrong column split?)",
            source=source,
        )
    if x.size > MAX_POINTS:
        raise PatternReadError(
            f"{x.size} data points is more than the {MAX_POINTS} a spectrum can have", source=source
        )
    check_finite(x, "Raman shift", source)
    check_finite(y, "intensity", source)
    if x.min() < MIN_SHIFT_CM1 or x.max() > MAX_SHIFT_CM1:
        raise PatternReadError(
            f"the axis runs {x.min():g}–{x.max():g}, outside the Raman shifts "
            f"{MIN_SHIFT_CM1:g}–{MAX_SHIFT_CM1:g} cm⁻¹; absolute wavenumbers (cm⁻¹) or "
            "wavelengths (nm) need the laser wavelength to be converted to Raman shift",
            source=source,
            field="Raman shift",
        )
    step = np.diff(x)
    if np.all(step < 0):
        x, y, step = x[::-1], y[::-1], -step[::-1]
    if np.any(step == 0):
        index = int(np.flatnonzero(step == 0)[0])
        raise PatternReadError(
            f"duplicate Raman shift {x[index]:g} cm⁻¹ at points {index + 1} and {index + 2}; "
            "each shift must appear once (merge stitched windows)",
            source=source,
            field="Raman shift",
        )
    if np.any(step < 0):
        index = int(np.flatnonzero(step < 0)[0])
        raise PatternReadError(
            f"the Raman shift is not monotonic: {x[index]:g} is followed by {x[index + 1]:g} "
            f"cm⁻¹ (point {index + 2}); sort the spectrum by shift",
            source=source,
            field="Raman shift",
        )
    if not np.any(y != y[0]):
        raise PatternReadError("intensity is constant: the file holds no spectrum", source=source)
    return RamanSpectrum(
        shift_cm1=x,
        intensity=y,
        laser_wavelength_nm=check_laser(laser_wavelength_nm, source),
        metadata=dict(metadata or {}),
    )
