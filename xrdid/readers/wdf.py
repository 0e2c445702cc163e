"""Renishaw WiRE ``.wdf`` spectra through ``renishawWiRE`` (py-wdf-reader).

``renishawWiRE`` (MIT) is the maintained reader of WiRE's block format; it
opens a path, so the bytes go through a temporary file. A series or map gives
its first spectrum, noted in the metadata.
"""

from __future__ import annotations

import os
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
from xrdid.readers.text import READER_WARNING

WDF_MAGIC = b"WDF1"


def read_wdf(
    data: bytes, source: str | None = None, *, laser_wavelength_nm: float | None = None
) -> RamanSpectrum:
    """Read the (first) spectrum of a Renishaw WDF file."""
    from renishawWiRE import WDFReader  # imported here: only WDF uploads need it
    from renishawWiRE.types import UnitType

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
        finally:
            reader.close()
    finally:
        os.unlink(path)
    if spectra.shape[0] > 1:
        metadata[READER_WARNING] = f"first of {spectra.shape[0]} spectra read"
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
