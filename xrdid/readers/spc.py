"""Galactic/Thermo SPC spectra through ``spc-io``.

``spc-io`` (MIT, by the CHARISMA Raman project; reads and writes the common
new-format SPC) decodes the header and sub-files; this module checks the x
axis type: Raman shift, absolute wavenumber or nm. A multi-spectrum file
(a map or series) gives its first spectrum, noted in the metadata.
"""

from __future__ import annotations

import io
import logging

import numpy as np

from xrdid.errors import PatternReadError
from xrdid.raman.spectrum import (
    MAX_SHIFT_CM1,
    NM_PER_CM,
    RamanAxis,
    RamanSpectrum,
    axis_to_shift,
    make_raman_spectrum,
    plausible_laser,
)
from xrdid.readers._common import first_of

# Byte 1 of an SPC file is its version: 0x4B new format, 0x4D old format.
SPC_VERSIONS = (0x4B, 0x4D)

# SPC x types (spc-io's names) and the axis each means.
_AXES = {
    "XRAMANS": RamanAxis.SHIFT,
    "XWAVEN": RamanAxis.SHIFT,  # many Raman programs label the shift "wavenumber"
    "XNMETR": RamanAxis.WAVELENGTH,
    "XARB": RamanAxis.SHIFT,
}


def looks_like_spc(data: bytes) -> bool:
    """An SPC header is 512 bytes with the version in byte 1."""
    return len(data) > 512 and data[1] in SPC_VERSIONS


def read_spc(
    data: bytes, source: str | None = None, *, laser_wavelength_nm: float | None = None
) -> RamanSpectrum:
    """Read the (first) spectrum of an SPC file."""
    from spc_io import SPC  # imported here: only SPC uploads need it

    # spc-io logs trailing padding bytes as a warning; that is normal for SPC.
    logging.getLogger("spc_io").setLevel(logging.ERROR)
    try:
        spc = SPC.from_bytes_io(io.BytesIO(data))
    except Exception as exc:  # the package raises whatever its struct parsing meets
        version = "old-format (0x4D) " if data[1:2] == b"\x4d" else ""
        raise PatternReadError(
            f"not a readable {version}SPC file ({type(exc).__name__}: {str(exc)[:120]}); "
            "export it as new-format SPC or as text",
            source=source,
        ) from exc
    if len(spc) == 0:
        raise PatternReadError("the SPC file holds no spectrum", source=source)
    first = spc[0]
    x, y = np.asarray(first.xarray, dtype=np.float64), np.asarray(first.yarray, dtype=np.float64)
    xtype = str(spc.xtype)
    metadata = {"format": "spc", "x_type": xtype}
    if len(spc) > 1:
        first_of(metadata, "spectra", len(spc), "spectra")
    axis = _AXES.get(xtype)
    if axis is None:
        raise PatternReadError(
            f"the SPC x axis is {xtype}, not a Raman shift, wavenumber or wavelength",
            source=source,
            field="fxtype",
        )
    if axis is RamanAxis.SHIFT and x.size and float(np.max(x)) > MAX_SHIFT_CM1:
        axis = RamanAxis.WAVENUMBER
    laser = laser_wavelength_nm or plausible_laser(_laser_nm(spc.log_book.text))
    return make_raman_spectrum(
        axis_to_shift(x, axis, laser, source),
        y,
        laser_wavelength_nm=laser,
        metadata=metadata,
        source=source,
    )


def _laser_nm(log_text: object) -> float | None:
    """The excitation laser from the log book's RAMANFREQ (cm⁻¹), if any."""
    if not isinstance(log_text, dict):
        return None
    for key, value in log_text.items():
        if str(key).strip().upper() == "RAMANFREQ":
            try:
                return NM_PER_CM / float(str(value).strip())
            except (ValueError, ZeroDivisionError):
                return None
    return None
