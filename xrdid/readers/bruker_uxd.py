"""Bruker .uxd text files (DIFFRAC AT / plus and EVA exports).

A file is a header of ``_KEY=value`` lines (``;`` starts a comment) and one
or more ranges, each its own ``_KEY=value`` lines and a data marker::

    _FILEVERSION=1
    _ANODE='Cu'
    _WL1=1.540600
    _WL2=1.544390
    _WLRATIO=0.500000
    ; (Data for Range number 1)
    _DRIVE='COUPLED'
    _START=10.000000
    _STEPSIZE=0.020000
    _COUNTS
         123      130      127 …

``_COUNTS`` / ``_CPS`` blocks hold intensities only, any number a line, at
2θ = ``_START`` + i·``_STEPSIZE``; ``_2THETACOUNTS`` / ``_2THETACPS`` blocks
hold (angle, intensity) pairs. The marker's ``_2THETA`` says a position
column is there; the angle is whatever ``_DRIVE`` moves, so a rocking curve
(``THETA``, ``OMEGA``…) is refused. The first range is read.
"""

from __future__ import annotations

import re

from xrdid.errors import PatternReadError
from xrdid.pattern import Pattern, make_pattern
from xrdid.readers._columns import parse_columns
from xrdid.readers._common import (
    build_wavelength,
    counts_block,
    first_of,
    normalise_anode,
    regular_grid,
)
from xrdid.readers._numbers import parse_float
from xrdid.readers._textdecode import decode_text
from xrdid.wavelengths import ANODE_LINES_ANGSTROM, Wavelength, anode

# The data markers: intensities alone, or (angle, intensity) pairs.
MARKER = re.compile(r"(?i)^_(2THETA)?(COUNTS|CPS)\s*(?:=.*)?$")
_KEY = re.compile(r"^_([A-Za-z0-9_]+)\s*=\s*(.*)$")
# Drives that move the detector in 2θ (a coupled θ–2θ scan or the detector alone).
_TWO_THETA_DRIVES = (
    "COUPLED",
    "LOCKED",
    "UNLOCKED",
    "2THETA",
    "TWOTHETA",
    "DETECTOR",
    "THETA-2THETA",
    "THETA/2THETA",
)

# _WL_UNIT's spellings, in Å.
_ANGSTROM_PER = {"a": 1.0, "å": 1.0, "angstrom": 1.0, "nm": 10.0}

_METADATA_KEYS = {
    "SAMPLE": "sample_id",
    "SITE": "site",
    "USER": "operator",
    "DATE": "measured",
    "DRIVE": "scan_axis",
    "STEPTIME": "step_time_s",
}


def is_uxd(lines: list[str]) -> bool:
    """Whether a text head is a UXD file: ``_KEY=value`` lines and a data marker."""
    stripped = [line.strip() for line in lines[:400]]
    return any(MARKER.match(line) for line in stripped) and any(
        _KEY.match(line) for line in stripped
    )


def read_uxd(data: bytes, source: str | None = None) -> Pattern:
    """Read the first range of a Bruker .uxd file."""
    lines = decode_text(data, source).lstrip("\ufeff").splitlines()
    header: dict[str, str] = {}
    marker: re.Match[str] | None = None
    start = end = len(lines)
    for index, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if marker is None:
            if found := MARKER.match(line):
                marker, start = found, index + 1
            elif key := _KEY.match(line):
                header[key.group(1).upper()] = key.group(2).strip().strip("'\"").strip()
        elif line.startswith("_"):  # the next range's header or marker
            end = index
            break
    if marker is None:
        raise PatternReadError(
            "no _COUNTS, _CPS, _2THETACOUNTS or _2THETACPS line: the file holds no data range",
            source=source,
        )
    block = lines[start:end]
    ranges = 1 + sum(1 for line in lines[end:] if MARKER.match(line.strip()))
    metadata = {"format": "bruker_uxd"}
    for name, label in _METADATA_KEYS.items():
        if header.get(name):
            metadata[label] = header[name][:200]
    if ranges > 1:
        first_of(metadata, "scans", ranges, "ranges")
    drive = header.get("DRIVE", "").upper()
    if drive and not drive.startswith(_TWO_THETA_DRIVES):
        raise PatternReadError(
            f"the scan drive is {header['DRIVE']!r}, not 2θ; only 2θ scans are powder patterns",
            source=source,
            field="_DRIVE",
        )
    metadata["intensity_unit"] = (
        "counts per second" if marker.group(2).upper() == "CPS" else "counts"
    )
    if marker.group(1):
        table = parse_columns("\n".join(block), source, first_line=start + 1)
        two_theta, intensity = table.columns[0], table.columns[1]
    else:
        intensity = counts_block(block, source, start, comment=";")
        two_theta = regular_grid(
            _number(header, ("START", "2THETA"), source),
            _number(header, ("STEPSIZE",), source),
            intensity.size,
            source,
            "_START",
        )
    wavelength = _wavelength(header, metadata)
    return make_pattern(
        two_theta, intensity, wavelength=wavelength, metadata=metadata, source=source
    )


def _number(header: dict[str, str], keys: tuple[str, ...], source: str | None) -> float:
    """The first of ``keys`` the header has, as a number."""
    for key in keys:
        value = parse_float(header.get(key, ""))
        if value is not None:
            return value
    raise PatternReadError(
        f"the range gives its intensities alone but no _{keys[0]}: its 2θ cannot be known",
        source=source,
        field=f"_{keys[0]}",
    )


def _wavelength(header: dict[str, str], metadata: dict[str, str]) -> Wavelength | None:
    """The tube's lines (in ``_WL_UNIT``, Å unless it says nm), or the
    lines of the anode it names when they are not written."""
    tube = normalise_anode(header.get("ANODE"))
    per_unit = _ANGSTROM_PER.get(header.get("WL_UNIT", "A").strip().lower())
    if per_unit is None:
        metadata["wavelength_note"] = (
            f"wavelength unit {header['WL_UNIT']!r} unknown: the lines stated are not used"
        )

    def stated(key: str) -> float | None:
        value = parse_float(header.get(key, ""))
        return None if value is None or per_unit is None else value * per_unit

    wavelength = build_wavelength(
        stated("WL1"),
        stated("WL2"),
        parse_float(header.get("WLRATIO", "")),
        tube,
        metadata=metadata,
    )
    if wavelength is None and tube in ANODE_LINES_ANGSTROM:
        return anode(tube)
    return wavelength
