"""Sietronics .cpi text files (Sieray; also written by PyXRD).

Lines in a fixed order, then one count a line after ``SCANDATA``::

    SIETRONICS XRD SCAN
    10.00                 2θ start
    155.00                2θ end
    0.010                 2θ step
    Cu                    the anode
    1.54056               the wavelength (Å)
    1-1-1900              the date
    0.600                 the time per step
    HH117 CaO:Nb2O5       the sample
    SCANDATA
    8992
    …

Numbers may carry a decimal comma (``1,5406``). The counts lie at start +
i·step.
"""

from __future__ import annotations

from xrdid.errors import InputError, PatternReadError
from xrdid.pattern import Pattern, make_pattern
from xrdid.readers._common import (
    check_stated_end,
    counts_block,
    normalise_anode,
    regular_grid,
)
from xrdid.readers._header import radiation_of
from xrdid.readers._numbers import parse_float
from xrdid.readers._textdecode import decode_text
from xrdid.wavelengths import ANODE_LINES_ANGSTROM, Wavelength, anode

MAGIC = "SIETRONICS XRD SCAN"
_HEADER_LINES = ("2θ start", "2θ end", "2θ step", "anode", "wavelength")


def read_cpi(data: bytes, source: str | None = None) -> Pattern:
    """Read a Sietronics .cpi scan."""
    lines = decode_text(data, source).lstrip("\ufeff").splitlines()
    if not lines or not lines[0].strip().upper().startswith(MAGIC):
        raise PatternReadError(f"not a Sietronics CPI file (no {MAGIC!r} line)", source=source)
    marker = next(
        (index for index, line in enumerate(lines) if line.strip().upper() == "SCANDATA"), None
    )
    if marker is None or marker < 1 + len(_HEADER_LINES):
        raise PatternReadError(
            "no SCANDATA line after the 2θ start, end, step, anode and wavelength lines",
            source=source,
        )
    start, end, step = (_number(lines, index, source) for index in (1, 2, 3))
    block = [line.replace(",", ".") for line in lines[marker + 1 :]]  # one count a line
    intensity = counts_block(block, source, marker + 1, comment="#")
    if intensity.size == 0:
        raise PatternReadError("SCANDATA is followed by no counts", source=source, line=marker + 1)
    two_theta = regular_grid(start, step, intensity.size, source, _HEADER_LINES[0])
    metadata = {"format": "sietronics_cpi"}
    sample = lines[marker - 1].strip()
    if marker - 1 > len(_HEADER_LINES) and sample:
        metadata["sample_id"] = sample[:200]
    check_stated_end(metadata, "line 3", end, two_theta)
    return make_pattern(
        two_theta,
        intensity,
        wavelength=_wavelength(lines[4].strip(), lines[5].strip(), metadata),
        metadata=metadata,
        source=source,
    )


def _wavelength(
    tube_line: str, wavelength_line: str, metadata: dict[str, str]
) -> Wavelength | None:
    """The anode's radiation: its doublet when the wavelength stated is its
    Kα1 or Kα mean (as a text header's is read), else that wavelength."""
    tube = normalise_anode(tube_line)
    tube = tube if tube in ANODE_LINES_ANGSTROM else None
    stated = parse_float(wavelength_line.replace(",", "."))
    if stated is None or stated <= 0:
        return anode(tube) if tube else None
    try:
        return radiation_of(stated, tube)
    except InputError as exc:
        metadata["wavelength_note"] = f"header wavelength ignored: {exc}"
        return anode(tube) if tube else None


def _number(lines: list[str], index: int, source: str | None) -> float:
    value = parse_float(lines[index].strip().replace(",", "."))
    if value is None:
        raise PatternReadError(
            f"line {index + 1}, the {_HEADER_LINES[index - 1]}, is {lines[index].strip()[:40]!r}, "
            "not a number",
            source=source,
            line=index + 1,
        )
    return value
