"""χPLOT text files (``.chi``): the integrated pattern as Fit2D, pyFAI and
Dioptas write it.

Four header lines: a title, the x axis's label, the y axis's label, and the
number of points (then, optionally, the number of curves); rows of x and y
follow. The x label names the axis as Fit2D writes it (``2-Theta Angle
(Degrees)``, ``Q (Inverse Nanometres)``, ``D-spacing (Angstroms)``,
``Radial Distance (mm)``) or as pyFAI names its units (``2th_deg``,
``q_nm^-1``, ``Q (A-1)``); a q or d axis is converted to 2θ as a column file's is
(:mod:`._header`), and a detector radius is refused. The format states no
wavelength.
"""

from __future__ import annotations

import re
from dataclasses import replace

from xrdid.errors import PatternReadError
from xrdid.pattern import Pattern
from xrdid.readers._columns import parse_columns
from xrdid.readers._common import check_stated_count, first_of
from xrdid.readers._numbers import parse_float
from xrdid.readers._textdecode import decode_text
from xrdid.readers.text import pattern_from_table

# Line 4: the number of points, and of curves.
_COUNT_LINE = re.compile(r"^\s*(\d+)(?:[\s,]+(\d+))?\s*$")
_HAS_LETTER = re.compile(r"[^\W\d_]")

# Fit2D's labels of the radial axis, as the column names :func:`~._header.axis_of` reads.
_FIT2D_AXES = (
    (re.compile(r"(?i)^2-?theta"), "2th_deg"),
    (re.compile(r"(?i)^q\b.*inverse\s+nano"), "q_nm^-1"),
    (re.compile(r"(?i)^q\b.*inverse\s+ang"), "q_A^-1"),
    (re.compile(r"(?i)^d-?spacing.*nano"), "d_nm"),
    (re.compile(r"(?i)^d-?spacing"), "d_A"),
    (re.compile(r"(?i)^radial\s+distance"), "r_mm"),
)


def is_chiplot(lines: list[str]) -> bool:
    """Whether a text head is a χPLOT file: two labels with words, a line
    of one or two counts, then a row of numbers."""
    if len(lines) < 5 or _COUNT_LINE.match(lines[3]) is None:
        return False
    if not all(_HAS_LETTER.search(label) for label in lines[1:3]):
        return False
    row = lines[4].replace(",", " ").split()
    return len(row) >= 2 and all(parse_float(value) is not None for value in row[:2])


def read_chiplot(data: bytes, source: str | None = None) -> Pattern:
    """Read the first curve of a χPLOT file."""
    lines = decode_text(data, source).lstrip("\ufeff").splitlines()
    if not is_chiplot(lines):
        raise PatternReadError(
            "not a χPLOT (.chi) file: it needs a title, the x and y labels, the number "
            "of points on line 4, then rows of x and y",
            source=source,
        )
    title, x_label, y_label = (line.strip() for line in lines[:3])
    count = _COUNT_LINE.match(lines[3])
    assert count is not None  # is_chiplot checked it
    axis = _axis_name(x_label)
    if axis == "r_mm":
        raise PatternReadError(
            f"the x axis is {x_label!r}, a distance on the detector, not 2θ, q or d-spacing; "
            "integrate the image to 2θ or q (Fit2D's 2-Theta or Q-Space scan) and export that",
            source=source,
            field="axis",
        )
    table = parse_columns("\n".join(lines[4:]), source, first_line=5)
    # Line 4 states the curves; without it, every column after x is one.
    curves = int(count.group(2)) if count.group(2) else table.n_columns - 1
    table = replace(
        table,
        columns=table.columns[:2],
        names=(axis, y_label),
        header=(title, x_label, y_label),
    )
    pattern = pattern_from_table(table, source)
    metadata = {**pattern.metadata, "format": "chiplot", "title": title[:200]}
    if curves > 1:
        first_of(metadata, "curves", curves, "curves")
    check_stated_count(metadata, "line 4", int(count.group(1)), table.n_rows)
    return replace(pattern, metadata=metadata)


def _axis_name(label: str) -> str:
    """The column name of the x axis a label states (the label itself
    otherwise: ``2th_deg``, ``q_nm^-1`` and ``Q (A-1)`` name theirs)."""
    for pattern, name in _FIT2D_AXES:
        if pattern.search(label):
            return name
    return label
