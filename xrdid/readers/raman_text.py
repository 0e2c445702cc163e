"""Raman spectra as text: RRUFF files and generic two-column exports.

RRUFF (rruff.info) writes a ``##KEY=value`` header (NAMES, RRUFFID, IDEAL
CHEMISTRY, LOCALITY…; latin-1 or UTF-8) and ``shift, intensity`` rows; the
laser is only in the file name (``…__Raman__532__…``). A generic export has
optional header lines and two columns. Its first column is the Raman shift in
cm⁻¹ unless the header says wavelength/nm, or the values are absolute
wavenumbers (above any Raman shift); both need the laser wavelength, which a
header line naming the laser or excitation gives ("#Laser (nm)=532.17", as
LabSpec writes it; a request's overrides it).
"""

from __future__ import annotations

import io
import re

import numpy as np

from xrdid.errors import PatternReadError
from xrdid.pattern import READER_WARNING
from xrdid.raman.spectrum import (
    MAX_SHIFT_CM1,
    RamanAxis,
    RamanSpectrum,
    axis_to_shift,
    make_raman_spectrum,
)
from xrdid.readers._columns import (
    ColumnTable,
    numbers_rows,
    parse_columns,
    run_together_note,
    without_row_numbers,
)
from xrdid.readers._header import mentions_laser, stated_laser
from xrdid.readers._textdecode import decode_text
from xrdid.readers.text import _split_columns

# RRUFF header keys kept as metadata, under these names.
_RRUFF_KEYS = {
    "NAMES": "mineral",
    "RRUFFID": "rruff_id",
    "IDEAL CHEMISTRY": "ideal_chemistry",
    "MEASURED CHEMISTRY": "measured_chemistry",
    "LOCALITY": "locality",
    "SOURCE": "source",
    "OWNER": "owner",
    "DESCRIPTION": "description",
    "STATUS": "status",
    "URL": "url",
}
_HEADER_LINE = re.compile(r"^##([^=]+)=(.*)$")
# The laser in a RRUFF file name: Mineral__R050001__Raman__532__0__unoriented__…
_RRUFF_LASER = re.compile(r"__Raman__(\d{3,4})__", re.IGNORECASE)

# Header words that name the axis; "wavenumber" alone is how most exports
# label a Raman-shift axis, so only "absolute" makes it absolute.
_WAVELENGTH_WORDS = re.compile(r"(?i)wavelength|\bnm\b|\(nm\)|lambda")
_ABSOLUTE_WORDS = re.compile(r"(?i)absolute")
# Words that make a column file a Raman spectrum, and ones that make it XRD.
RAMAN_WORDS = re.compile(r"(?i)raman|cm-1|cm\^-1|cm⁻¹|1/cm|wavenumber|\bshift\b")
# Columns named as the Raman shift, and as the spectrum to read beside it (a
# dark-subtracted one, or one named as the intensity), in an export of many.
_SHIFT_NAME = re.compile(r"(?i)raman\s*shift")
_SPECTRUM_NAME = re.compile(r"(?i)dark[\s_-]*subtracted|^intensity|^counts$")
XRD_WORDS = re.compile(r"(?i)2\s*-?theta|2θ|two.?theta|\btth\b|\bangle\b|degree|°|\bd.?spacing")


def is_rruff(head: str) -> bool:
    """Whether a text head is a RRUFF spectrum (its ``##KEY=`` header)."""
    lines = [line.strip().upper() for line in head.splitlines()[:12]]
    return any(line.startswith(("##RRUFFID=", "##NAMES=")) for line in lines)


def read_rruff(data: bytes, source: str | None = None) -> RamanSpectrum:
    """Read one RRUFF Raman text file (header + ``shift, intensity`` rows)."""
    text = decode_text(data, source)
    metadata: dict[str, str] = {"format": "rruff"}
    for line in text.splitlines()[:60]:
        match = _HEADER_LINE.match(line.strip())
        if match and match.group(1).strip().upper() in _RRUFF_KEYS:
            value = match.group(2).strip()
            if value:
                metadata[_RRUFF_KEYS[match.group(1).strip().upper()]] = value[:500]
    # The rows end at "##END="; cutting there lets numpy parse the block at once.
    end = re.search(r"(?m)^##END=", text)
    body = text[: end.start()] if end else text
    columns = _plain_rows(body)
    if columns is None:  # the general reader finds and names the bad line
        table = parse_columns(body, source)
        if table.n_columns != 2:
            raise PatternReadError(
                f"a RRUFF spectrum has two columns (shift, intensity), this one {table.n_columns}",
                source=source,
            )
        columns = (table.columns[0], table.columns[1])
        split = run_together_note(table)
        if split:
            metadata[READER_WARNING] = split
    laser = None
    found = _RRUFF_LASER.search(source or "")
    if found:
        laser = float(found.group(1))
        metadata["laser_from"] = "file name"
    return make_raman_spectrum(
        columns[0], columns[1], laser_wavelength_nm=laser, metadata=metadata, source=source
    )


# A RRUFF data block: "shift, intensity" rows of plain numbers only.
_PLAIN_BLOCK = re.compile(r"[0-9.eE+\-,\s]*")


def _plain_rows(body: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The two columns of a RRUFF body when every row after the ``##`` header
    is two plain finite numbers (numpy parses them at once), else None."""
    start = 0
    for match in re.finditer(r"(?m)^##.*$\n?", body):
        if match.start() != start:
            break
        start = match.end()
    block = body[start:]
    if not _PLAIN_BLOCK.fullmatch(block):
        return None
    try:
        table = np.loadtxt(io.StringIO(block), delimiter=",", ndmin=2)
    except ValueError:
        return None
    if table.shape[1] != 2 or not np.all(np.isfinite(table)):
        return None
    return table[:, 0].copy(), table[:, 1].copy()


def read_raman_text(
    data: bytes,
    source: str | None = None,
    *,
    laser_wavelength_nm: float | None = None,
    axis: RamanAxis | None = None,
) -> RamanSpectrum:
    """Read a generic column export of a Raman spectrum."""
    return spectrum_from_table(
        parse_columns(decode_text(data, source), source),
        source,
        laser_wavelength_nm=laser_wavelength_nm,
        axis=axis,
    )


def spectrum_from_table(
    table: ColumnTable,
    source: str | None = None,
    *,
    laser_wavelength_nm: float | None = None,
    axis: RamanAxis | None = None,
) -> RamanSpectrum:
    """The Raman spectrum of parsed columns (x, intensity)."""
    table, row_numbers = without_row_numbers(table, source)
    table, named = _named_columns(table)
    intensity_columns, _ = _split_columns(table)
    metadata = {"format": "text", "layout": table.dialect.label}
    if len(intensity_columns) > 1:
        if table.n_columns == 3 and not named:
            metadata[READER_WARNING] = (
                f"{intensity_columns[1][0]} ignored; column 2 read as the intensity"
            )
        else:
            raise PatternReadError(
                f"the file has {len(intensity_columns)} intensity columns after the Raman "
                "shift; save the shift and a single intensity column",
                source=source,
            )
    notes = [row_numbers, named, run_together_note(table), metadata.get(READER_WARNING)]
    if any(notes):
        metadata[READER_WARNING] = "; ".join(filter(None, notes))
    x = table.columns[0]
    if laser_wavelength_nm is None:
        laser_wavelength_nm = stated_laser(table.header)
        if laser_wavelength_nm is not None:
            metadata["laser_from"] = "header"
    # A column named as the shift is one, whatever else the header names.
    chosen = axis or (RamanAxis.SHIFT if named else guess_axis(table))
    metadata["axis"] = chosen.value
    if table.header:
        metadata["header"] = "\n".join(table.header)[:2000]
    return make_raman_spectrum(
        axis_to_shift(x, chosen, laser_wavelength_nm, source),
        intensity_columns[0][1],
        laser_wavelength_nm=laser_wavelength_nm,
        metadata=metadata,
        source=source,
    )


def _named_columns(table: ColumnTable) -> tuple[ColumnTable, str | None]:
    """Of an export of many named columns (B&W Tek's ``Pixel;Wavelength;
    Wavenumber;Raman Shift;Dark;Reference;Raw data #1;Dark Subtracted
    #1;…``), the one named as the Raman shift and the one named as the
    spectrum, and the note that says so; ``table`` itself, and None, unless
    exactly one of each is named."""
    names = table.names
    if names is None or table.n_columns < 3:
        return table, None
    shifts = [index for index, name in enumerate(names) if _SHIFT_NAME.search(name)]
    spectra = [index for index, name in enumerate(names) if _SPECTRUM_NAME.search(name)]
    if len(shifts) != 1 or len(spectra) != 1 or shifts == spectra:
        return table, None
    kept = [shifts[0], spectra[0]]
    ignored = ", ".join(name for index, name in enumerate(names) if index not in kept)
    note = (
        f"{names[kept[0]]!r} read as the Raman shift and {names[kept[1]]!r} as the spectrum; "
        f"{ignored} ignored"
    )
    return table.select(kept), note


def guess_axis(table: ColumnTable) -> RamanAxis:
    """The axis of a column file: what the header names (lines about the
    laser aside: its wavelength is no axis), else absolute wavenumbers when
    the values exceed any Raman shift, else Raman shift."""
    words = [*table.header, *(table.names or ())]
    header = " ".join(word for word in words if not mentions_laser(word))
    if _WAVELENGTH_WORDS.search(header):
        return RamanAxis.WAVELENGTH
    if _ABSOLUTE_WORDS.search(header) or float(np.max(table.columns[0])) > MAX_SHIFT_CM1:
        return RamanAxis.WAVENUMBER
    return RamanAxis.SHIFT


def text_technique(table: ColumnTable) -> str:
    """ "raman" or "xrd" for a column file: the header's words decide, else the
    axis (2θ never exceeds 180°, Raman bands reach 4,000 cm⁻¹)."""
    header = " ".join(table.header) + " " + " ".join(table.names or ())
    raman, xrd = RAMAN_WORDS.search(header), XRD_WORDS.search(header)
    if raman and not xrd:
        return "raman"
    if xrd and not raman:
        return "xrd"
    axis = table.columns[1 if numbers_rows(table) else 0]
    return "raman" if float(np.max(axis)) > 180.0 else "xrd"
