"""Renishaw WiRE ``.wdf`` spectra through ``renishawWiRE`` (py-wdf-reader).

``renishawWiRE`` (MIT) is the maintained reader of WiRE's block format; it
opens a path, so the bytes go through a temporary file. A series or map gives
its first spectrum, noted in the metadata.
"""

from __future__ import annotations

import os
import struct
import tempfile

import numpy as np

from xrdid.errors import PatternReadError
from xrdid.raman.spectrum import (
    RamanAxis,
    RamanSpectrum,
    axis_to_shift,
    make_raman_spectrum,
    plausible_laser,
)
from xrdid.readers._common import first_of

WDF_MAGIC = b"WDF1"

# A block header: 4-byte name, 4-byte id, 8-byte size (header included).
_BLOCK_HEADER = struct.Struct("<4sIQ")
# The WDF1 header's counts, at byte 0x3C: points per spectrum, capacity,
# count, accumulations, y-list and x-list lengths, origin lists.
_COUNTS = struct.Struct("<IQQIIII")
_COUNTS_AT = 0x3C
# WiRE writes a few origin lists (x, y, z, time, …); more is a damaged header.
MAX_ORIGIN_LISTS = 64


def check_blocks(data: bytes, source: str | None) -> None:
    """Check what renishawWiRE trusts blindly: a block whose size cannot hold
    its own header (it would loop on it for ever) and header counts the file
    cannot hold (it would allocate or loop over them)."""
    if len(data) < _COUNTS_AT + _COUNTS.size:
        raise PatternReadError("the WDF file is truncated inside its header", source=source)
    points, _, count, _, _, _, origins = _COUNTS.unpack_from(data, _COUNTS_AT)
    if not (1 <= count and points >= 1 and 4 * count * points <= len(data)):
        raise PatternReadError(
            f"the WDF header announces {count} spectra of {points} points, which the "
            f"{len(data):,}-byte file cannot hold; it is damaged or truncated",
            source=source,
        )
    if origins > MAX_ORIGIN_LISTS:
        raise PatternReadError(
            f"the WDF header announces {origins} origin lists; the file is damaged", source=source
        )
    position = 0
    while position + _BLOCK_HEADER.size <= len(data):
        name, _, size = _BLOCK_HEADER.unpack_from(data, position)
        if not name.isascii():
            return  # where renishawWiRE stops reading blocks
        if size < _BLOCK_HEADER.size:
            raise PatternReadError(
                f"WDF block {name.decode('ascii', 'replace')!r} at byte {position} claims "
                f"{size} bytes, less than its own header; the file is damaged",
                source=source,
            )
        position += size


def read_wdf(
    data: bytes, source: str | None = None, *, laser_wavelength_nm: float | None = None
) -> RamanSpectrum:
    """Read the (first) spectrum of a Renishaw WDF file."""
    from renishawWiRE import WDFReader  # imported here: only WDF uploads need it
    from renishawWiRE.types import UnitType

    check_blocks(data, source)
    handle, path = tempfile.mkstemp(suffix=".wdf")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        try:
            reader = WDFReader(path)
        except Exception as exc:  # truncated or foreign blocks
            raise PatternReadError(
                f"not a readable Renishaw WDF file ({type(exc).__name__}: {str(exc)[:120]})",
                source=source,
            ) from exc
        try:
            x = np.asarray(reader.xdata, dtype=np.float64)
            spectra = np.asarray(reader.spectra, dtype=np.float64).reshape(-1, x.size)
            unit, laser_file = reader.xlist_unit, reader.laser_length
            metadata = {
                "format": "wdf",
                "title": str(reader.title)[:200],
                "measurement": str(reader.measurement_type),
            }
        except (AttributeError, ValueError) as exc:  # a block missing or cut short
            raise PatternReadError(
                "the WDF file lacks a complete x list (XLST) or data (DATA) block",
                source=source,
            ) from exc
        finally:
            reader.close()
    finally:
        os.unlink(path)
    if spectra.shape[0] > 1:
        first_of(metadata, "spectra", int(spectra.shape[0]), "spectra")
    axes = {UnitType.RamanShift: RamanAxis.SHIFT, UnitType.Nanometre: RamanAxis.WAVELENGTH}
    axis = axes.get(unit)
    if axis is None:
        raise PatternReadError(
            f"the WDF x axis is in {unit!r} units, not Raman shift or nm", source=source
        )
    laser = laser_wavelength_nm or plausible_laser(laser_file)
    return make_raman_spectrum(
        axis_to_shift(x, axis, laser, source),
        spectra[0],
        laser_wavelength_nm=laser,
        metadata=metadata,
        source=source,
    )
