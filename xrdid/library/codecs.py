"""Bytes of what the library stores: reference patterns and model-grid profiles.

Patterns (stick patterns, measured XRD profiles, Raman spectra) are kept as
arrays behind a JSON header, zlib-compressed, so a new model or
preprocessing can recompute everything derived from them: float32 for XRD;
a Raman spectrum's intensity to 16 bits of its range (delta-coded, which
halves what a float32 spectrum takes) and its shift axis as start and step
when it is even. Profiles are 8-bit square-root companded (1.5 kB a
reference; the re-rank compares square roots anyway).
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import InputError
from xrdid.grid import MODEL_GRID
from xrdid.library.records import MeasuredProfile, RamanProfile, ReferencePattern
from xrdid.preprocess import BaselineMethod
from xrdid.raman.grid import RAMAN_GRID
from xrdid.raman.preprocess import RamanBaseline
from xrdid.sticks import StickPattern
from xrdid.wavelengths import Wavelength

__all__ = [
    "PROFILE_POINTS",
    "decode_pattern",
    "decode_profile",
    "encode_pattern",
    "encode_profile",
]

_PATTERN_MAGIC = b"XP1"
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _pack(kind: str, arrays: dict[str, NDArray[Any]], attrs: dict[str, Any]) -> bytes:
    spec = [[name, a.dtype.str, list(a.shape)] for name, a in arrays.items()]
    header = json.dumps({"kind": kind, "arrays": spec, "attrs": attrs}).encode()
    body = b"".join(np.ascontiguousarray(a).tobytes() for a in arrays.values())
    return _PATTERN_MAGIC + zlib.compress(struct.pack("<I", len(header)) + header + body, 6)


def _unpack(blob: bytes) -> tuple[str, dict[str, NDArray[Any]], dict[str, Any]]:
    if not blob.startswith(_PATTERN_MAGIC):
        raise InputError("stored pattern has an unknown encoding")
    raw = zlib.decompress(blob[len(_PATTERN_MAGIC) :])
    (length,) = struct.unpack_from("<I", raw)
    header = json.loads(raw[4 : 4 + length])
    offset = 4 + length
    arrays: dict[str, NDArray[Any]] = {}
    for name, dtype, shape in header["arrays"]:
        dt = np.dtype(dtype)
        count = int(np.prod(shape)) if shape else 1
        arrays[name] = np.frombuffer(raw, dtype=dt, count=count, offset=offset).reshape(shape)
        offset += count * dt.itemsize
    return header["kind"], arrays, header["attrs"]


# A Raman intensity is stored as round((y − min) / (max − min) · 65,535): a
# step of 1.5·10⁻⁵ of the range, far below the noise of any spectrum (and a
# 16-bit detector's own resolution).
_RAMAN_LEVELS = 65_535
# An axis whose points are this close (cm⁻¹) to an even one is stored as
# start and step: exports print shifts to 4 decimals.
_EVEN_AXIS_TOLERANCE_CM1 = 1e-3


def _encode_raman(pattern: RamanProfile) -> bytes:
    x = np.asarray(pattern.shift_cm1, dtype=np.float64)
    y = np.asarray(pattern.intensity, dtype=np.float64)
    low, span = float(y.min()), float(y.max() - y.min())
    levels = np.round((y - low) / (span or 1.0) * _RAMAN_LEVELS).astype("<u2")
    # Differences (mod 2¹⁶) of neighbouring levels are small; their high and
    # low bytes apart compress to about half.
    delta = np.diff(levels, prepend=np.uint16(0)).astype("<u2")
    planes = delta.view(np.uint8).reshape(-1, 2).T.copy()
    attrs: dict[str, Any] = {
        "intensity_low": low,
        "intensity_step": span / _RAMAN_LEVELS,
        "laser_wavelength_nm": pattern.laser_wavelength_nm,
        "baseline": str(pattern.baseline),
        "despiked": pattern.despiked,
    }
    arrays: dict[str, NDArray[Any]] = {"intensity_delta_bytes": planes}
    even = np.linspace(x[0], x[-1], x.size)
    if x.size > 1 and float(np.abs(x - even).max()) <= _EVEN_AXIS_TOLERANCE_CM1:
        attrs["shift_even_cm1"] = [float(x[0]), float(x[-1]), int(x.size)]
    else:
        arrays["shift_cm1"] = x.astype("<f8")
    return _pack("raman", arrays, attrs)


def _decode_raman(arrays: dict[str, NDArray[Any]], attrs: dict[str, Any]) -> RamanProfile:
    planes = arrays["intensity_delta_bytes"]
    delta = np.ascontiguousarray(planes.T).view("<u2").reshape(-1)
    levels = np.cumsum(delta, dtype=np.uint16)  # wraps as the differences did
    intensity = attrs["intensity_low"] + attrs["intensity_step"] * levels.astype(np.float64)
    if "shift_even_cm1" in attrs:
        start, stop, n = attrs["shift_even_cm1"]
        shift = np.linspace(start, stop, int(n))
    else:
        shift = arrays["shift_cm1"].astype(np.float64)
    return RamanProfile(
        shift_cm1=shift,
        intensity=intensity,
        laser_wavelength_nm=attrs["laser_wavelength_nm"],
        baseline=RamanBaseline(attrs["baseline"]),
        despiked=bool(attrs["despiked"]),
    )


def encode_pattern(pattern: ReferencePattern) -> bytes:
    """Compact bytes of a reference pattern, zlib-compressed.

    Stick patterns keep d, |F|²·multiplicity, hkl and the reciprocal lattice
    (enough to re-render, strain or re-embed them); measured profiles keep 2θ
    (float64, so fine steps stay distinct), intensity, radiation and baseline;
    Raman spectra their shift, intensity (16 bits), laser and baseline.
    """
    if isinstance(pattern, RamanProfile):
        return _encode_raman(pattern)
    if isinstance(pattern, StickPattern):
        hkl_dtype = "<i2" if np.abs(pattern.hkl).max(initial=0) < 2**15 else "<i4"
        return _pack(
            "sticks",
            {
                "d_angstrom": pattern.d_angstrom.astype("<f4"),
                "structure_factor": pattern.structure_factor.astype("<f4"),
                "hkl": pattern.hkl.astype(hkl_dtype),
                "reciprocal_lattice": pattern.reciprocal_lattice.astype("<f8"),
            },
            {},
        )
    w = pattern.wavelength
    return _pack(
        "profile",
        {
            "two_theta_deg": pattern.two_theta_deg.astype("<f8"),
            # float32 unless the values do not fit (float32 overflows at 3.4e38)
            "intensity": pattern.intensity.astype(
                "<f4" if np.abs(pattern.intensity).max(initial=0.0) < _FLOAT32_MAX else "<f8"
            ),
        },
        {
            "kalpha1_angstrom": w.kalpha1_angstrom,
            "kalpha2_angstrom": w.kalpha2_angstrom,
            "kalpha2_ratio": w.kalpha2_ratio,
            "anode": w.anode,
            "baseline": str(pattern.baseline),
        },
    )


def decode_pattern(blob: bytes) -> ReferencePattern:
    """Inverse of :func:`encode_pattern` (float64 arrays)."""
    kind, arrays, attrs = _unpack(blob)
    if kind == "sticks":
        return StickPattern(
            d_angstrom=arrays["d_angstrom"].astype(np.float64),
            structure_factor=arrays["structure_factor"].astype(np.float64),
            hkl=arrays["hkl"].astype(np.int64),
            reciprocal_lattice=arrays["reciprocal_lattice"].astype(np.float64),
        )
    if kind == "raman":
        return _decode_raman(arrays, attrs)
    return MeasuredProfile(
        two_theta_deg=arrays["two_theta_deg"].astype(np.float64),
        intensity=arrays["intensity"].astype(np.float64),
        wavelength=Wavelength(
            attrs["kalpha1_angstrom"],
            attrs["kalpha2_angstrom"],
            attrs["kalpha2_ratio"],
            attrs["anode"],
        ),
        baseline=BaselineMethod(attrs["baseline"]),
    )


# Profiles are stored square-root companded to 8 bits (as μ-law does for
# sound), then zlib: 1.5 kB a reference instead of 17 kB as float32. The
# re-rank compares square roots anyway, and the weak peaks survive (the
# smallest non-zero value is 1.5·10⁻⁵ of the maximum).
_PROFILE_LEVELS = 255
_PROFILE_MAGIC = b"XG3"  # then zlib(uint8 per grid point: round(255·√intensity))
# Points of a profile: the XRD model grid's or the Raman grid's.
PROFILE_POINTS = (MODEL_GRID.n_points, RAMAN_GRID.n_points)


def encode_profile(intensity: NDArray[np.floating]) -> bytes:
    """Compact bytes of a model-grid profile (values 0…1)."""
    values = np.asarray(intensity, dtype=np.float64)
    if values.ndim != 1 or values.size not in PROFILE_POINTS or not np.all(np.isfinite(values)):
        raise InputError(
            f"a profile must be {MODEL_GRID.n_points} (XRD) or {RAMAN_GRID.n_points} (Raman) "
            "finite values on the model grid"
        )
    levels = np.round(np.sqrt(np.clip(values, 0.0, 1.0)) * _PROFILE_LEVELS).astype(np.uint8)
    return _PROFILE_MAGIC + zlib.compress(levels.tobytes(), 9)


def decode_profile(blob: bytes) -> NDArray[np.float32]:
    """Inverse of :func:`encode_profile` (intensities again, not their roots)."""
    if not blob.startswith(_PROFILE_MAGIC):
        raise InputError("stored profile has an unknown encoding")
    try:
        payload = zlib.decompress(blob[len(_PROFILE_MAGIC) :])
    except zlib.error as exc:
        raise InputError(f"stored profile is corrupt ({exc})") from exc
    if len(payload) not in PROFILE_POINTS:
        raise InputError(f"stored profile has {len(payload)} points, not one of {PROFILE_POINTS}")
    roots = np.frombuffer(payload, dtype=np.uint8) / _PROFILE_LEVELS
    return (roots * roots).astype(np.float32)
