"""GSAS powder data files (.gsa, .gss, .fxye, .raw from GSAS).

Layout (GSAS manual, "Powder data file")::

    title line
    Instrument parameter file: name.prm      (optional)
    # comments                                (optional)
    BANK ibank nchan nrec BINTYP bcoef1 bcoef2 bcoef3 bcoef4 TYPE
    data records

For constant-wavelength data angles are in centidegrees. ``CONST`` banks
give the grid as ``bcoef1 + i·bcoef2``; the record TYPE sets the layout:
``STD`` ten 8-character fields ``(I2, F6.0)`` — counter count and intensity;
``ESD`` five ``(F8.0, F8.0)`` intensity/σ pairs per record; ``FXY``/``FXYE``
one ``x y [σ]`` triple per line with x in centidegrees. Time-of-flight banks
(``TIME_MAP``, ``SLOG``, ``RALF``, ``ALT`` records) are not angle data and are
refused. The first bank is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import PatternReadError
from xrdid.pattern import MAX_POINTS, Pattern, make_pattern
from xrdid.readers._common import first_of, fmt, regular_grid
from xrdid.readers._numbers import is_not_finite, parse_float
from xrdid.readers._textdecode import decode_text

# GSAS stores constant-wavelength angles in hundredths of a degree.
CENTIDEGREES_PER_DEGREE = 100.0

_FIELD_WIDTH = 8
_RECORD_WIDTH = 80
BANK_LINE = re.compile(r"^BANK\s+\d+", re.ASCII)
_TIME_OF_FLIGHT = ("TIME_MAP", "SLOG", "RALF")


@dataclass(frozen=True)
class _Bank:
    line: int
    n_points: int
    bin_type: str
    coefficients: tuple[float, ...]
    record_type: str


def read_gsas(data: bytes, source: str | None = None) -> Pattern:
    """Read the first bank of a GSAS powder data file."""
    lines = decode_text(data, source).lstrip("\ufeff").splitlines()
    metadata: dict[str, str] = {"format": "gsas"}
    if lines:
        metadata["title"] = lines[0].strip()[:200]
    bank_indices = [index for index, line in enumerate(lines) if BANK_LINE.match(line)]
    if not bank_indices:
        raise PatternReadError(
            "no 'BANK n …' line: this is not a GSAS powder data file", source=source
        )
    for line in lines[1 : bank_indices[0]]:
        if line.lower().startswith("instrument parameter"):
            metadata["instrument_parameter_file"] = line.split(None, 3)[-1].strip()[:200]
    if len(bank_indices) > 1:
        first_of(metadata, "banks", len(bank_indices), "banks")
    first = bank_indices[0]
    end = bank_indices[1] if len(bank_indices) > 1 else len(lines)
    bank = _parse_bank(lines[first], first + 1, source)
    metadata["record_type"] = bank.record_type
    records = [
        (first + 2 + offset, line)
        for offset, line in enumerate(lines[first + 1 : end])
        if line.strip() and not line.lstrip().startswith("#")
    ]

    sigma: NDArray[np.float64] | None = None
    if bank.record_type in ("FXY", "FXYE"):
        two_theta, intensity, sigma = _xye_records(records, bank, source)
    else:
        if bank.bin_type not in ("CONST", "CONS"):
            raise PatternReadError(
                f"{bank.record_type} records need a CONST bank, not {bank.bin_type}",
                source=source,
                line=bank.line,
            )
        if len(bank.coefficients) < 2 or bank.coefficients[1] == 0:
            raise PatternReadError(
                "CONST bank needs start and a non-zero step (bcoef1, bcoef2)",
                source=source,
                line=bank.line,
            )
        start, step = (value / CENTIDEGREES_PER_DEGREE for value in bank.coefficients[:2])
        metadata["start_2theta_deg"] = fmt(start)
        metadata["step_2theta_deg"] = fmt(step)
        values = _fixed_records(records, bank, source)
        if bank.record_type == "ESD":
            intensity, sigma = values[0::2], values[1::2]
        else:
            intensity = values
        two_theta = regular_grid(start, step, intensity.size, source, "BANK")
    return make_pattern(two_theta, intensity, sigma, metadata=metadata, source=source)


def _parse_bank(line: str, lineno: int, source: str | None) -> _Bank:
    tokens = line.split()
    record_type = "STD"
    if tokens and tokens[-1].isascii() and tokens[-1].isalpha():
        record_type = tokens.pop().upper()
    if len(tokens) < 5:
        raise PatternReadError(
            "BANK line needs 'BANK ibank nchan nrec BINTYP …'", source=source, line=lineno
        )
    bin_type = tokens[4].upper()
    if bin_type in _TIME_OF_FLIGHT or record_type == "ALT":
        raise PatternReadError(
            f"bank is time-of-flight data ({bin_type} {record_type}), not 2θ; xrdid reads "
            "angle-dispersive (constant wavelength) patterns",
            source=source,
            line=lineno,
        )
    if record_type not in ("STD", "ESD", "FXY", "FXYE"):
        raise PatternReadError(
            f"unknown GSAS record type {record_type!r} (expected STD, ESD, FXY or FXYE)",
            source=source,
            line=lineno,
        )
    n_points = _integer(tokens[2], "nchan", source, lineno)
    if not 0 < n_points <= MAX_POINTS:
        raise PatternReadError(
            f"BANK declares {n_points} points", source=source, line=lineno, field="nchan"
        )
    coefficients = []
    for token in tokens[5:9]:
        value = parse_float(token)
        if value is None:
            raise PatternReadError(
                f"BANK coefficient {token[:30]!r} is not a finite number",
                source=source,
                line=lineno,
            )
        coefficients.append(value)
    return _Bank(lineno, n_points, bin_type, tuple(coefficients), record_type)


def _fixed_records(
    records: list[tuple[int, str]], bank: _Bank, source: str | None
) -> NDArray[np.float64]:
    """All numbers of STD/ESD records, in order (ESD: y, σ, y, σ…)."""
    per_point = 2 if bank.record_type == "ESD" else 1
    wanted = bank.n_points * per_point
    values: list[float] = []
    for lineno, line in records:
        values.extend(_record_values(line, bank.record_type, lineno, source))
        if len(values) >= wanted:
            break
    if len(values) < wanted:
        raise PatternReadError(
            f"BANK declares {bank.n_points} points but the records hold "
            f"{len(values) // per_point}; the file is truncated",
            source=source,
            line=bank.line,
            field="nchan",
        )
    return np.array(values[:wanted], dtype=np.float64)


def _record_values(line: str, record_type: str, lineno: int, source: str | None) -> list[float]:
    """One STD/ESD record: fixed 8-character fields, or free format as fallback."""
    text = line.rstrip()
    fixed = _fixed_width_values(text, record_type)
    if fixed is not None:
        return fixed
    values = []
    for token in text.split():
        value = parse_float(token)
        if value is None:
            kind = "not a finite number" if is_not_finite(token) else "not a number"
            raise PatternReadError(f"{token[:30]!r} is {kind}", source=source, line=lineno)
        values.append(value)
    return values


def _fixed_width_values(text: str, record_type: str) -> list[float] | None:
    """Values of a record in the manual's fixed layout, or None if it is not."""
    if len(text) > _RECORD_WIDTH:
        return None
    values = []
    for start in range(0, len(text), _FIELD_WIDTH):
        field = text[start : start + _FIELD_WIDTH]
        if record_type == "STD":
            # I2 counter count, then F6.0 intensity.
            counters, field = field[:2].strip(), field[2:]
            if counters and not (counters.isascii() and counters.isdigit()):
                return None
        value = parse_float(field.strip())
        if value is None:
            return None
        values.append(value)
    return values


def _xye_records(
    records: list[tuple[int, str]], bank: _Bank, source: str | None
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64] | None]:
    width = 3 if bank.record_type == "FXYE" else 2
    rows = np.empty((bank.n_points, width), dtype=np.float64)
    count = 0
    for lineno, line in records:
        if count == bank.n_points:
            break
        tokens = line.split()
        if len(tokens) < width:
            raise PatternReadError(
                f"{bank.record_type} record needs {width} values, found {len(tokens)}",
                source=source,
                line=lineno,
            )
        for column, token in enumerate(tokens[:width]):
            value = parse_float(token)
            if value is None:
                kind = "not a finite number" if is_not_finite(token) else "not a number"
                raise PatternReadError(f"{token[:30]!r} is {kind}", source=source, line=lineno)
            rows[count, column] = value
        count += 1
    if count < bank.n_points:
        raise PatternReadError(
            f"BANK declares {bank.n_points} points but only {count} records follow; the "
            "file is truncated",
            source=source,
            line=bank.line,
            field="nchan",
        )
    sigma = rows[:, 2] if width == 3 else None
    return rows[:, 0] / CENTIDEGREES_PER_DEGREE, rows[:, 1], sigma


def _integer(token: str, name: str, source: str | None, lineno: int) -> int:
    if not (token.isascii() and token.isdigit()) or len(token) > 9:
        raise PatternReadError(
            f"BANK {name} {token!r} is not a whole number", source=source, line=lineno, field=name
        )
    return int(token)
