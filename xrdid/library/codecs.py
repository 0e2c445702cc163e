"""Bytes of what the library stores: reference patterns and model-grid profiles.

Patterns (stick patterns or measured profiles) are kept as float32 arrays
behind a JSON header, zlib-compressed, so a new model or preprocessing can
recompute everything derived from them. Profiles are 8-bit square-root
companded (1.5 kB a reference; the re-rank compares square roots anyway).
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
from xrdid.library.records import MeasuredProfile, ReferencePattern
from xrdid.preprocess import BaselineMethod
from xrdid.sticks import StickPattern
from xrdid.wavelengths import Wavelength

__all__ = ["decode_pattern", "decode_profile", "encode_pattern", "encode_profile"]

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


def encode_pattern(pattern: ReferencePattern) -> bytes:
    """Compact bytes of a reference pattern: float32 values, zlib-compressed.

    Stick patterns keep d, |F|²·multiplicity, hkl and the reciprocal lattice
    (enough to re-render, strain or re-embed them); measured profiles keep 2θ
    (float64, so fine steps stay distinct), intensity, radiation and baseline.
    """
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


def encode_profile(intensity: NDArray[np.floating]) -> bytes:
    """Compact bytes of a model-grid profile (values 0…1)."""
    values = np.asarray(intensity, dtype=np.float64)
    if values.shape != (MODEL_GRID.n_points,) or not np.all(np.isfinite(values)):
        raise InputError(f"a profile must be {MODEL_GRID.n_points} finite values on the model grid")
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
    if len(payload) != MODEL_GRID.n_points:
        raise InputError(f"stored profile has {len(payload)} points, not {MODEL_GRID.n_points}")
    roots = np.frombuffer(payload, dtype=np.uint8) / _PROFILE_LEVELS
    return (roots * roots).astype(np.float32)
