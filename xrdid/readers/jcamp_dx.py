"""JCAMP-DX Raman spectra (``.jdx``, ``.dx``) through the ``jcamp`` package.

``jcamp`` (MIT, maintained) decodes every JCAMP-DX data form (AFFN, and the
compressed SQZ/DIF/DUP forms) into x and y; this module checks what it
returns: a Raman spectrum (``##DATA TYPE``), an axis in 1/CM or nm, matching
lengths. ``jcamp`` reports failed line checks by printing; the print is
captured and a failed y-check (a corrupt compressed line) is an error.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

from xrdid.errors import PatternReadError, UnsupportedFormatError
from xrdid.raman.spectrum import (
    MAX_SHIFT_CM1,
    RamanAxis,
    RamanSpectrum,
    axis_to_shift,
    make_raman_spectrum,
)
from xrdid.readers._header import laser_nm
from xrdid.readers._textdecode import decode_text


def is_jcamp(head: str) -> bool:
    """A JCAMP-DX file opens with ``##TITLE=`` and declares ``##JCAMP-DX=``."""
    upper = head[:4096].upper()
    return upper.lstrip().startswith("##TITLE") and "##JCAMP-DX" in upper


def read_jcamp(
    data: bytes, source: str | None = None, *, laser_wavelength_nm: float | None = None
) -> RamanSpectrum:
    """Read the (first) Raman spectrum of a JCAMP-DX file."""
    import jcamp  # imported here: only JCAMP uploads need it

    lines = decode_text(data, source).splitlines()
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            block = jcamp.read(lines)
    except KeyError as exc:
        raise PatternReadError(
            f"the JCAMP-DX header lacks ##{str(exc).strip(chr(39)).upper()}, which its "
            "(X++(Y..Y)) data need",
            source=source,
        ) from exc
    except Exception as exc:  # the package's own parse errors
        raise PatternReadError(
            f"the JCAMP-DX data cannot be decoded: {exc}", source=source
        ) from exc
    if "Y-Check failed" in printed.getvalue():
        raise PatternReadError(
            "a compressed JCAMP-DX data line fails its y-check (the file is corrupt)",
            source=source,
        )
    block = _raman_block(block, source)
    x, y = np.asarray(block["x"], dtype=np.float64), np.asarray(block["y"], dtype=np.float64)
    if x.size == 0 or x.size != y.size:
        raise PatternReadError(
            f"the JCAMP-DX data hold {x.size} x and {y.size} y values; ##NPOINTS or the "
            "data lines are wrong",
            source=source,
        )
    laser = laser_wavelength_nm or _laser_nm(block)
    metadata = {"format": "jcamp-dx", "title": str(block.get("title", ""))[:200]}
    metadata["x_units"] = str(block.get("xunits", ""))
    axis = _axis(str(block.get("xunits", "")), x, source)
    if axis is RamanAxis.WAVELENGTH and "micro" in str(block.get("xunits", "")).lower():
        x = x * 1000.0
    return make_raman_spectrum(
        axis_to_shift(x, axis, laser, source),
        y,
        laser_wavelength_nm=laser,
        metadata=metadata,
        source=source,
    )


def _raman_block(block: dict[str, Any], source: str | None) -> dict[str, Any]:
    """The block holding the spectrum: the file, or a compound file's first
    Raman child."""
    children = block.get("children")
    if children:
        raman = [child for child in children if "RAMAN" in _data_type(child)]
        if not raman:
            kinds = ", ".join(sorted({_data_type(child) or "?" for child in children}))
            raise UnsupportedFormatError(
                f"compound JCAMP-DX without a Raman spectrum (blocks: {kinds})", source=source
            )
        return raman[0]
    kind = _data_type(block)
    if kind and "RAMAN" not in kind:
        raise UnsupportedFormatError(
            f"the JCAMP-DX file holds a {kind.lower()}, not a Raman spectrum", source=source
        )
    return block


def _data_type(block: dict[str, Any]) -> str:
    return str(block.get("data type", block.get("datatype", ""))).strip().upper()


def _axis(units: str, x: np.ndarray, source: str | None) -> RamanAxis:
    lowered = units.lower().replace(" ", "")
    if lowered in ("1/cm", "cm-1", "cm^-1", "") or "1/cm" in lowered:
        return RamanAxis.WAVENUMBER if float(x.max()) > MAX_SHIFT_CM1 else RamanAxis.SHIFT
    if "nanometer" in lowered or lowered in ("nm", "micrometers", "microns", "um"):
        return RamanAxis.WAVELENGTH
    raise PatternReadError(
        f"the JCAMP-DX x axis is in {units!r}; a Raman spectrum needs 1/CM or nanometres",
        source=source,
        field="XUNITS",
    )


def _laser_nm(block: dict[str, Any]) -> float | None:
    """The laser wavelength from a header label naming the laser or excitation
    (vendor labels such as ``##$LASER WAVELENGTH=785``)."""
    for key, value in block.items():
        if isinstance(key, str):
            laser = laser_nm(key, str(value))
            if laser is not None:
                return laser
    return None
