"""Philips .udf text files (PC-APD and the X'Pert software's export).

A header of ``Key,value,/`` lines, then the counts after ``RawScan``::

    SampleIdent,Sample5 ,/
    Anode,Cu,/
    LabdaAlpha1, 1.54060,/
    LabdaAlpha2, 1.54439,/
    RatioAlpha21, 0.50000,/
    DataAngleRange,   5.0000, 120.0000,/
    ScanStepSize,    0.020,/
    RawScan
        6234,    6185,    5969,    6129,    6199,    5988,    6046,    5922
        …
         442/

The counts lie at 2θ = the range's start + i·step; a ``/`` ends them.
"""

from __future__ import annotations

from xrdid.errors import PatternReadError
from xrdid.pattern import Pattern, make_pattern
from xrdid.readers._common import (
    build_wavelength,
    check_stated_end,
    counts_block,
    normalise_anode,
    regular_grid,
)
from xrdid.readers._numbers import parse_float
from xrdid.readers._textdecode import decode_text
from xrdid.wavelengths import ANODE_LINES_ANGSTROM, anode

_METADATA_KEYS = {
    "SAMPLEIDENT": "sample_id",
    "TITLE1": "comment",
    "FILEDATETIME": "measured",
    "SCANTYPE": "scan_mode",
    "SCANSTEPTIME": "step_time_s",
}


def is_udf(lines: list[str]) -> bool:
    """Whether a text head is a Philips UDF file: it opens with ``SampleIdent,``."""
    content = [line.strip() for line in lines[:5] if line.strip()]
    return bool(content) and content[0].upper().startswith("SAMPLEIDENT,")


def read_udf(data: bytes, source: str | None = None) -> Pattern:
    """Read a Philips UDF file."""
    lines = decode_text(data, source).lstrip("\ufeff").splitlines()
    header: dict[str, list[str]] = {}
    start = None
    for index, raw in enumerate(lines):
        line = raw.strip()
        if line.upper() == "RAWSCAN":
            start = index + 1
            break
        if line:
            key, *values = (part.strip() for part in line.rstrip("/").split(","))
            header[key.upper()] = [value for value in values if value]
    if start is None:
        raise PatternReadError("no RawScan line: the file holds no counts", source=source)
    block = []
    for raw in lines[start:]:
        block.append(raw.replace("/", " "))
        if "/" in raw:  # the counts' end
            break
    intensity = counts_block(block, source, start, comment="#", separator=",")
    if intensity.size == 0:
        raise PatternReadError("RawScan is followed by no counts", source=source, line=start)
    angle_range = [parse_float(value) for value in header.get("DATAANGLERANGE", [])]
    step = parse_float(_first(header, "SCANSTEPSIZE"))
    if not angle_range or angle_range[0] is None or step is None:
        raise PatternReadError(
            "no DataAngleRange and ScanStepSize: the counts' 2θ cannot be known",
            source=source,
            field="DataAngleRange",
        )
    two_theta = regular_grid(angle_range[0], step, intensity.size, source, "DataAngleRange")
    metadata = {"format": "philips_udf"}
    for key, label in _METADATA_KEYS.items():
        if _first(header, key):
            metadata[label] = _first(header, key)[:200]
    end = angle_range[1] if len(angle_range) > 1 else None
    check_stated_end(metadata, "DataAngleRange", end, two_theta)
    tube = normalise_anode(_first(header, "ANODE"))
    wavelength = build_wavelength(
        parse_float(_first(header, "LABDAALPHA1")),
        parse_float(_first(header, "LABDAALPHA2")),
        parse_float(_first(header, "RATIOALPHA21")),
        tube,
        metadata=metadata,
    )
    if wavelength is None and tube in ANODE_LINES_ANGSTROM:
        wavelength = anode(tube)  # the tube named, its lines not written
    return make_pattern(
        two_theta, intensity, wavelength=wavelength, metadata=metadata, source=source
    )


def _first(header: dict[str, list[str]], key: str) -> str:
    values = header.get(key)
    return values[0] if values else ""
