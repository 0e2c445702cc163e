"""Rigaku .ras text files (SmartLab, MiniFlex, Ultima).

A file is one or more blocks::

    *RAS_DATA_START
    *RAS_HEADER_START
    *MEAS_SCAN_AXIS_X "TwoThetaTheta"
    *HW_XG_WAVE_LENGTH_ALPHA1 "1.540593"
    …
    *RAS_HEADER_END
    *RAS_INT_START
    10.0000 1234.0000 1.0000
    …
    *RAS_INT_END
    *RAS_DATA_END

Header values are quoted strings; Japanese installations write them in
Shift-JIS (cp932), which is tried after UTF-8. The first block is read.
"""

from __future__ import annotations

from xrdid.errors import PatternReadError
from xrdid.pattern import Pattern, make_pattern
from xrdid.readers._columns import parse_columns
from xrdid.readers._common import first_of
from xrdid.readers._rigaku import profile_arrays, rigaku_wavelength, take_header
from xrdid.readers._textdecode import decode_text

MARKER = "*RAS_"

# Header fields copied into metadata, by RAS key.
_METADATA_KEYS = {
    "FILE_SAMPLE": "sample_id",
    "FILE_COMMENT": "comment",
    "FILE_OPERATOR": "operator",
    "MEAS_SCAN_START_TIME": "measured",
    "MEAS_SCAN_MODE": "scan_mode",
    "MEAS_SCAN_SPEED": "scan_speed",
    "MEAS_SCAN_STEP": "step_2theta_deg",
    "HW_XG_TARGET_NAME": "anode",
}


def read_ras(data: bytes, source: str | None = None) -> Pattern:
    """Read the first scan of a Rigaku .ras file."""
    text = decode_text(data, source, fallbacks=("cp932",))
    lines = text.lstrip("\ufeff").splitlines()
    header: dict[str, str] = {}
    blocks = 0
    data_start = data_end = None
    in_header = False
    for index, raw in enumerate(lines):
        line = raw.strip()
        upper = line.upper()
        if upper.startswith("*RAS_HEADER_START"):
            blocks += 1
            in_header = blocks == 1
        elif upper.startswith("*RAS_HEADER_END"):
            in_header = False
        elif upper.startswith("*RAS_INT_START") and data_start is None:
            data_start = index + 1
        elif upper.startswith("*RAS_INT_END") and data_start is not None and data_end is None:
            data_end = index
        elif in_header and line.startswith("*"):
            key, _, value = line[1:].partition(" ")
            header[key.strip().upper()] = value.strip().strip('"').strip()
    if data_start is None:
        raise PatternReadError(
            "no *RAS_INT_START line: the file holds no intensity block", source=source
        )
    if data_end is None:
        raise PatternReadError(
            "the intensity block has no *RAS_INT_END; the file is truncated",
            source=source,
            line=len(lines),
        )

    metadata: dict[str, str] = {"format": "rigaku_ras"}
    if blocks > 1:
        first_of(metadata, "scans", blocks, "scans")
    take_header(header, _METADATA_KEYS, "MEAS_SCAN_AXIS_X", metadata, source, "MEAS_SCAN_AXIS_X")
    unit = header.get("MEAS_SCAN_UNIT_X", "deg")
    if unit.lower() not in ("deg", "degree", "°"):
        raise PatternReadError(
            f"the scan axis is in {unit!r}, not degrees", source=source, field="MEAS_SCAN_UNIT_X"
        )
    if header.get("HW_XG_WAVE_LENGTH_UNIT", "Angstrom").lower() not in ("angstrom", "å", "a"):
        metadata["wavelength_note"] = "wavelength unit is not Å; wavelength ignored"
        wavelength = None
    else:
        wavelength = rigaku_wavelength(
            header.get("HW_XG_TARGET_NAME"),
            header.get("HW_XG_WAVE_LENGTH_ALPHA1"),
            header.get("HW_XG_WAVE_LENGTH_ALPHA2"),
            header.get("HW_XG_WAVE_LENGTH_BETA"),
            header.get("MEAS_COND_XG_WAVE_TYPE"),
            metadata,
        )
    table = parse_columns("\n".join(lines[data_start:data_end]), source, first_line=data_start + 1)
    two_theta, intensity = profile_arrays(table, metadata, source)
    return make_pattern(
        two_theta, intensity, wavelength=wavelength, metadata=metadata, source=source
    )
