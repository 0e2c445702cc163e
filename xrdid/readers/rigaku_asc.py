"""Rigaku .asc / .dat text files (RINT, PDXL and older Rigaku software).

A file header of ``*KEY = value`` lines, then one or more groups::

    *TYPE          =  Raw
    *TARGET        =  29
    *WAVE_LENGTH1  =  1.54056
    *WAVE_LENGTH2  =  1.5444
    *SCAN_AXIS     =  2theta/theta
    *XUNIT         =  deg.
    *GROUP_COUNT   =  1
    *BEGIN
    *GROUP         =  0
    *START         =  3
    *STOP          =  90
    *STEP          =  0.02
    *COUNT         =  4351
     1048, 1162, 1108, 1163
    …
    *END
    *EOF

The counts after ``*COUNT`` lie at 2θ = ``*START`` + i·``*STEP``. The tube
is ``*TARGET`` (its element or atomic number) with the lines
``*WAVE_LENGTH1`` and ``*WAVE_LENGTH2``. A scan axis other than 2θ is
refused. The first group is read.
"""

from __future__ import annotations

import re

from xrdid.errors import PatternReadError
from xrdid.pattern import Pattern, make_pattern
from xrdid.readers._common import (
    check_stated_count,
    counts_block,
    first_of,
    normalise_anode,
    regular_grid,
)
from xrdid.readers._numbers import parse_float
from xrdid.readers._rigaku import rigaku_wavelength, take_header
from xrdid.readers._textdecode import decode_text
from xrdid.wavelengths import ANODE_LINES_ANGSTROM, anode

_KEY = re.compile(r"^\*([A-Za-z0-9_]+)\s*=?\s*(.*)$")
# Lines that open and close a group.
_BEGIN = re.compile(r"(?i)^\*BEGIN\b")
_END = re.compile(r"(?i)^\*(?:END|EOF)\b")
# *TARGET as an atomic number.
_ANODE_OF_Z = {"24": "Cr", "26": "Fe", "27": "Co", "29": "Cu", "42": "Mo", "47": "Ag"}

_METADATA_KEYS = {
    "SAMPLE": "sample_id",
    "COMMENT": "comment",
    "DATE": "measured",
    "MEAS_MODE": "scan_mode",
    "SPEED": "scan_speed",
    "FILTER": "filter",
}


def is_rigaku_asc(lines: list[str]) -> bool:
    """Whether a text head is a Rigaku ASC file: ``*TYPE`` first, or a
    header of ``*KEY`` lines with a ``*BEGIN`` group."""
    content = [line.strip() for line in lines[:400] if line.strip()]
    if not content or not content[0].startswith("*"):
        return False
    if content[0].upper().startswith("*TYPE"):
        return True
    return any(_BEGIN.match(line) for line in content) and any(
        line.upper().startswith("*COUNT") for line in content
    )


def read_rigaku_asc(data: bytes, source: str | None = None) -> Pattern:
    """Read the first group of a Rigaku ASC file."""
    lines = decode_text(data, source, fallbacks=("cp932",)).lstrip("\ufeff").splitlines()
    header: dict[str, str] = {}
    groups = 0
    start = end = None
    for index, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if _BEGIN.match(line):
            groups += 1
        elif groups > 1:
            continue
        elif _END.match(line):
            if start is not None and end is None:
                end = index
        elif line.startswith("*"):
            if (field := _KEY.match(line)) and end is None:
                name = field.group(1).upper()
                header[name] = field.group(2).strip()
                if name == "COUNT" and groups == 1:
                    start = index + 1
        elif start is None:
            raise PatternReadError(
                f"values before a group's *BEGIN and *COUNT: {line[:60]!r}",
                source=source,
                line=index + 1,
            )
    if start is None:
        raise PatternReadError(
            "no *BEGIN group with a *COUNT line: the file holds no counts", source=source
        )
    metadata = {"format": "rigaku_asc"}
    if groups > 1:
        first_of(metadata, "scans", groups, "groups")
    take_header(header, _METADATA_KEYS, "SCAN_AXIS", metadata, source, "*SCAN_AXIS")
    unit = header.get("XUNIT", "deg").strip().lower()
    if not unit.startswith("deg"):
        raise PatternReadError(
            f"the scan axis is in {header['XUNIT']!r}, not degrees", source=source, field="*XUNIT"
        )
    intensity = counts_block(
        lines[start : end if end is not None else len(lines)],
        source,
        start,
        comment="#",
        separator=",",
    )
    two_theta = regular_grid(
        _number(header, "START", source),
        _number(header, "STEP", source),
        intensity.size,
        source,
        "*START",
    )
    check_stated_count(metadata, "*COUNT", parse_float(header.get("COUNT", "")), intensity.size)
    if header.get("YUNIT"):
        metadata["intensity_unit"] = header["YUNIT"][:40]
    target = normalise_anode(
        _ANODE_OF_Z.get(header.get("TARGET", "").strip()) or header.get("TARGET")
    )
    wavelength = rigaku_wavelength(
        target, header.get("WAVE_LENGTH1"), header.get("WAVE_LENGTH2"), None, None, metadata
    )
    if wavelength is None and target in ANODE_LINES_ANGSTROM:
        wavelength = anode(target)  # the tube named, its lines not written
    return make_pattern(
        two_theta, intensity, wavelength=wavelength, metadata=metadata, source=source
    )


def _number(header: dict[str, str], key: str, source: str | None) -> float:
    value = parse_float(header.get(key, ""))
    if value is None:
        raise PatternReadError(
            f"the group has no *{key}: the counts' 2θ cannot be known",
            source=source,
            field=f"*{key}",
        )
    return value
