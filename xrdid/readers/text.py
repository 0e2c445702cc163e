"""Column text files: .xy, .xye, .dat, .txt, .csv.

Column 1 is 2θ in degrees, column 2 the intensity, an optional column 3 its
standard uncertainty σ. A column line that names column 1 2θ in radians,
q or d-spacing (``2th_rad``, ``q_nm^-1``, ``q_A^-1``, ``d``, as pyFAI and
other integration software write) is converted to 2θ; a header line that
states the radiation sets the pattern's wavelength (:mod:`._header`). A
column named as the angle is the axis wherever it stands, and a first
column that only numbers the rows is left out, each said in a warning.

A third column is taken as σ only when its header
says so (``esd``, ``sigma``, ``err``…) or, without a header, when it is
plausible as one (non-negative and mostly below half the intensity: Poisson
σ = √I is below I/2 from 4 counts up). Anything else is a second intensity
column, and a file with several intensity columns is a table: ``read_text``
refuses it rather than silently picking one, and ``read_text_table`` reads
one pattern per column. The exception is the export of a fit: of a few
named columns, the one named as observed (``y_obs``, ``Iobs``) beside
fitted or derived ones (``y_calc``, ``Iback``) is read, the others named in
a warning.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import PatternReadError
from xrdid.pattern import CONVERTED_AXIS, READER_WARNING, Pattern, make_pattern
from xrdid.readers._columns import (
    ColumnTable,
    parse_columns,
    run_together_note,
    without_row_numbers,
)
from xrdid.readers._header import (
    TWO_THETA_DEGREES,
    axis_of,
    conversion_note,
    stated_radiation,
    to_two_theta,
)
from xrdid.readers._numbers import parse_float
from xrdid.readers._textdecode import decode_text
from xrdid.wavelengths import Wavelength, anode

logger = logging.getLogger(__name__)

# Header names that mark a column as the uncertainty of the one before it:
# short symbols exactly, longer words anywhere in the name ("I_esd", "Sigma(I)").
_SIGMA_SYMBOLS = frozenset({"e", "s", "u", "σ", "dy", "di", "de"})

_SIGMA_WORDS = ("sig", "σ", "esd", "err", "std", "uncert")

# Median σ/I above this is not an uncertainty: Poisson σ = √I exceeds I/2
# only below 4 counts, while a background or second scan sits near I.
_MAX_MEDIAN_SIGMA_RATIO = 0.5

# Column names of a measured intensity ("y_obs", "Iobs [cts]", "Counts"), and
# of what a program fitted or derived beside it ("y_calc", "Iback", "weight").
_OBSERVED = re.compile(
    r"(?i)^[iy]?[_ ]?(?:obs(?:erved)?|meas(?:ured)?)\b|^counts?\b|^cts\b|^cps\b|^intensit|^[iy]$"
)
_DERIVED = re.compile(r"(?i)calc|bkg|back|diff|weight|fit|model|sigma|esd|err|peak|net|^q\b|^d\b")
# An export of a fit has a few columns; a library table (RockJock's ~170
# patterns) is refused as a table even where one name reads as "observed".
_MAX_EXPORT_COLUMNS = 6

# A column named as the scan's angle ("2Theta", "2θ", "Pos. [°2Th.]", "Angle").
_ANGLE_NAME = re.compile(r"(?i)2\s*-?\s*th|2θ|two[\s_-]?theta|^tth|^angle")

# How many column names an error message lists before "…".
_NAMES_SHOWN = 5


def read_text(data: bytes, source: str | None = None) -> Pattern:
    """Read a two- or three-column text pattern."""
    return pattern_from_table(_parse(data, source), source)


def pattern_from_table(table: ColumnTable, source: str | None = None) -> Pattern:
    """The pattern of parsed columns (2θ, intensity, optional σ)."""
    table, notes = _axis_first(table, source)
    intensity_columns, sigma = _split_columns(table)
    split = run_together_note(table)
    notes += [split] if split else []
    observed = [column for column in intensity_columns if _is_observed(column[0])]
    if (
        1 < len(intensity_columns) <= _MAX_EXPORT_COLUMNS
        and table.names is not None
        and len(observed) == 1
    ):
        # A refinement's or a processing program's export: the observed
        # intensity beside what was fitted or derived from it.
        others = ", ".join(name for name, _ in intensity_columns if name != observed[0][0])
        notes.append(f"{others} ignored: {observed[0][0]} read as the measured intensity")
        intensity_columns = observed
    elif len(intensity_columns) == 2 and table.n_columns == 3:
        # Exports often append a fitted background or a second scan as column 3;
        # the measured intensity is column 2 by convention. Say so, don't fail.
        notes.append(
            f"{intensity_columns[1][0]} ignored: it is not an uncertainty "
            "(negative or as large as the intensity); column 2 read as the intensity"
        )
        intensity_columns = intensity_columns[:1]
    if len(intensity_columns) > 1:
        names = [name for name, _ in intensity_columns]
        shown = ", ".join(names[:_NAMES_SHOWN]) + (", …" if len(names) > _NAMES_SHOWN else "")
        raise PatternReadError(
            f"the file has {len(intensity_columns)} intensity columns ({shown}) after 2θ, "
            "so it is a table of patterns, not one pattern; read it with "
            "read_pattern_table (one pattern per column), or save 2θ and a single "
            "intensity column",
            source=source,
        )
    name, intensity = intensity_columns[0]
    metadata = _metadata(table, name, sigma is not None)
    axis = _Abscissa.of(table, source, metadata)
    notes += [axis.note] if axis.note else []
    if notes:
        metadata[READER_WARNING] = "; ".join(notes)
    return make_pattern(
        axis.two_theta,
        intensity[axis.kept],
        None if sigma is None else sigma[axis.kept],
        wavelength=axis.wavelength,
        metadata=metadata,
        source=source,
    )


@dataclass(frozen=True)
class _Abscissa:
    """A column file's first column as 2θ in degrees, with the radiation its
    header states (or that a q or d axis was converted at)."""

    two_theta: NDArray[np.float64]
    # The rows that have a 2θ (a q beyond the radiation's reach has none).
    kept: NDArray[np.bool_]
    wavelength: Wavelength | None
    note: str | None

    @classmethod
    def of(cls, table: ColumnTable, source: str | None, metadata: dict[str, str]) -> _Abscissa:
        radiation = stated_radiation(table.header, metadata)
        axis = axis_of(_axis_name(table), source)
        x = table.columns[0]
        if axis.quantity == "2θ":
            return cls(x * axis.scale, np.ones(x.size, dtype=bool), radiation, None)
        at = radiation or anode("Cu", with_kalpha2=False)
        two_theta = to_two_theta(x, axis, at.kalpha1_angstrom)
        kept = np.isfinite(two_theta)
        metadata[CONVERTED_AXIS] = axis.label
        note = conversion_note(axis, at, radiation is not None, int(x.size - kept.sum()))
        return cls(two_theta[kept], kept, at, note)


def _axis_first(table: ColumnTable, source: str | None) -> tuple[ColumnTable, list[str]]:
    """``table`` with its axis as column 1, and notes saying what moved: a
    column of row numbers left out (:func:`without_row_numbers`), and the one
    column named as 2θ put first where column 1's name is no axis
    (``Intensity,2Theta``; ``No.,Time,Angle,Counts``)."""
    table, row_numbers = without_row_numbers(table, source)
    notes = [row_numbers] if row_numbers else []
    names = table.names
    if (
        names is None
        or _ANGLE_NAME.search(names[0])
        or axis_of(names[0], source) != TWO_THETA_DEGREES
    ):
        return table, notes
    angles = [index for index, name in enumerate(names) if index and _ANGLE_NAME.search(name)]
    if len(angles) != 1:
        return table, notes
    (angle,) = angles
    order = [angle, *(index for index in range(table.n_columns) if index != angle)]
    notes.append(f"{names[angle]!r} read as 2θ, not the first column {names[0]!r}")
    return table.select(order), notes


def _axis_name(table: ColumnTable) -> str | None:
    """Column 1's name: its header, or the first word of the header's last
    line when that line has a word, and no number, per column
    (``#  q_nm^-1  I``, not ``# Q-range: 0.5``)."""
    if table.names is not None:
        return table.names[0]
    if not table.header:
        return None
    words = table.header[-1].lstrip("#;!%*/ \t").split()
    if len(words) != table.n_columns or any(parse_float(w) is not None for w in words):
        return None
    return words[0]


def read_text_table(
    data: bytes, source: str | None = None, *, skip_invalid: bool = False
) -> dict[str, Pattern]:
    """Read a table of 2θ and N intensity columns into ``{column name: Pattern}``.

    Columns without a header name are called ``"column 2"``, ``"column 3"``…
    A column that is not a valid pattern (constant, NaN) raises, naming it;
    with ``skip_invalid`` it is left out instead (and logged).
    """
    table, notes = _axis_first(_parse(data, source), source)
    intensity_columns, sigma = _split_columns(table)
    patterns: dict[str, Pattern] = {}
    axis_metadata: dict[str, str] = {}
    axis = _Abscissa.of(table, source, axis_metadata)
    notes += [axis.note] if axis.note else []
    for name, intensity in intensity_columns:
        key = _unique(name, patterns)
        metadata = _metadata(table, key, sigma is not None) | axis_metadata
        if notes:
            metadata[READER_WARNING] = "; ".join(notes)
        try:
            patterns[key] = make_pattern(
                axis.two_theta,
                intensity[axis.kept],
                None if sigma is None else sigma[axis.kept],
                wavelength=axis.wavelength,
                metadata=metadata,
                source=source,
            )
        except PatternReadError as exc:
            if not skip_invalid:
                raise PatternReadError(
                    f"column {key!r}: {exc.reason} (pass skip_invalid=True to leave such "
                    "columns out)",
                    source=source,
                    field=key,
                ) from exc
            logger.info("skipping column %r of %s: %s", key, source, exc.reason)
    if not patterns:
        raise PatternReadError("no column of the table is a valid pattern", source=source)
    return patterns


def _parse(data: bytes, source: str | None) -> ColumnTable:
    return parse_columns(decode_text(data, source), source)


def _split_columns(
    table: ColumnTable,
) -> tuple[list[tuple[str, NDArray[np.float64]]], NDArray[np.float64] | None]:
    """The intensity columns (named) and the σ column, if there is one."""
    names = table.names or tuple(f"column {index}" for index in range(1, table.n_columns + 1))
    columns = [(names[index], table.columns[index]) for index in range(1, table.n_columns)]
    if table.n_columns == 3 and _is_sigma(table, names[2]):
        return columns[:1], table.columns[2]
    return columns, None


def _is_observed(name: str) -> bool:
    return _OBSERVED.search(name) is not None and _DERIVED.search(name) is None


def _is_sigma(table: ColumnTable, name: str) -> bool:
    if table.names is not None:
        lowered = name.strip().lower()
        return lowered in _SIGMA_SYMBOLS or any(word in lowered for word in _SIGMA_WORDS)
    intensity, sigma = table.columns[1], table.columns[2]
    if np.any(sigma < 0):
        return False
    ratio = np.divide(
        sigma, np.abs(intensity), out=np.full(sigma.shape, np.inf), where=intensity != 0
    )
    return bool(np.median(ratio) < _MAX_MEDIAN_SIGMA_RATIO)


def _metadata(table: ColumnTable, column: str, has_sigma: bool) -> dict[str, str]:
    metadata = {
        "format": "text",
        "layout": table.dialect.label,
        "intensity_column": column,
        "first_data_line": str(table.first_data_line),
    }
    if has_sigma:
        metadata["sigma"] = "third column"
    if table.header:
        metadata["header"] = "\n".join(table.header)[:2000]
    return metadata


def _unique(name: str, taken: dict[str, Pattern]) -> str:
    if name not in taken:
        return name
    index = 2
    while f"{name} ({index})" in taken:
        index += 1
    return f"{name} ({index})"
