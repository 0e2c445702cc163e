"""Small pieces every instrument reader shares: anode names and wavelengths."""

from __future__ import annotations

import logging
import math
import re

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import InputError, PatternReadError
from xrdid.pattern import MAX_POINTS, READER_WARNING
from xrdid.readers._numbers import NOT_FINITE, parse_float
from xrdid.wavelengths import ANODE_LINES_ANGSTROM, Wavelength

logger = logging.getLogger(__name__)


def normalise_anode(text: str | None) -> str | None:
    """``"CU"``, ``"Cu "``, ``"cu"`` → ``"Cu"``; unknown symbols pass through trimmed."""
    if not text:
        return None
    cleaned = text.strip().strip("\x00").strip()
    if not cleaned:
        return None
    for symbol in ANODE_LINES_ANGSTROM:
        if cleaned.lower() == symbol.lower():
            return symbol
    return cleaned


def build_wavelength(
    kalpha1: float | None,
    kalpha2: float | None = None,
    ratio: float | None = None,
    anode: str | None = None,
    *,
    metadata: dict[str, str],
) -> Wavelength | None:
    """A :class:`Wavelength` from header fields, or None when they are unusable.

    Headers hold 0 or garbage when the operator never set the tube; such a
    wavelength is dropped (and noted in ``metadata``) rather than failing the
    whole read, since the pattern itself is fine and the user can state it.
    """
    if kalpha1 is None or not math.isfinite(kalpha1) or kalpha1 <= 0:
        return None
    usable_kalpha2 = (
        kalpha2
        if kalpha2 is not None and math.isfinite(kalpha2) and kalpha2 > 0 and kalpha2 != kalpha1
        else None
    )
    usable_ratio = ratio if ratio is not None and math.isfinite(ratio) else None
    if usable_kalpha2 is None:
        usable_ratio = 0.0
    elif usable_ratio is None or usable_ratio <= 0:
        # The Kα2 line is stated without its weight: use the textbook 0.5.
        usable_ratio = 0.5
    try:
        return Wavelength(kalpha1, usable_kalpha2, usable_ratio, normalise_anode(anode))
    except InputError as exc:
        logger.info("dropping unusable wavelength from header: %s", exc)
        metadata["wavelength_note"] = f"header wavelength ignored: {exc}"
        return None


def add_warning(metadata: dict[str, str], note: str) -> None:
    """Add ``note`` to what the reader tells the user (the answer's warnings)."""
    metadata[READER_WARNING] = "; ".join(filter(None, [metadata.get(READER_WARNING), note]))


def first_of(metadata: dict[str, str], key: str, count: int, what: str) -> None:
    """Record, and warn the user, that of the ``count`` ``what`` (scans,
    ranges, banks…) a file holds only the first was read: the rest of the
    measurement is not in the answer."""
    metadata[key] = f"first of {count} {what} read"
    add_warning(
        metadata,
        f"the file holds {count} {what}; only the first was read (upload the others as "
        "files of their own)",
    )


def check_stated_count(
    metadata: dict[str, str], field: str, stated: float | None, held: int
) -> None:
    """Warn when a header's number of points is not the number the file
    holds (a scan cut short, or a header edited): all are read."""
    if stated is not None and int(stated) != held:
        add_warning(
            metadata, f"{field} states {int(stated)} points, the file holds {held}: all were read"
        )


def check_stated_end(
    metadata: dict[str, str], field: str, end_deg: float | None, two_theta: NDArray[np.float64]
) -> None:
    """Warn when a header's last 2θ is not where the counts, read at its
    start and step, end (by more than half a step)."""
    step = abs(float(two_theta[1] - two_theta[0])) if two_theta.size > 1 else 0.0
    if end_deg is not None and abs(end_deg - float(two_theta[-1])) > step / 2:
        add_warning(
            metadata,
            f"{field} says the scan ends at {fmt(end_deg)}°, but its {two_theta.size} counts "
            f"end at {fmt(float(two_theta[-1]))}°: read at its start and step",
        )


def fmt(value: float) -> str:
    """A float for metadata: short and exact enough (``1.5406``, ``0.02``)."""
    return f"{value:.10g}"


def regular_grid(
    start_deg: float, step_deg: float, n_points: int, source: str | None, field: str
) -> NDArray[np.float64]:
    """2θ = start + i·step, for formats that store a start and a step.

    Multiplying (not accumulating) keeps thousands of steps free of drift.
    """
    if not (math.isfinite(start_deg) and math.isfinite(step_deg)):
        raise PatternReadError(
            f"the 2θ start ({start_deg!r}) or step ({step_deg!r}) is not a finite number",
            source=source,
            field=field,
        )
    return start_deg + step_deg * np.arange(n_points, dtype=np.float64)


# Anything a block of plain decimal counts cannot hold (but its separators).
_NOT_COUNTS = re.compile(r"[^0-9eE+\-.\s]")


def counts_block(
    block: list[str], source: str | None, first: int, *, comment: str, separator: str = " "
) -> NDArray[np.float64]:
    """The intensities of a block of counts, any number a line, split at
    whitespace and ``separator`` (lines starting with ``comment`` skipped):
    converted whole, and line by line only to name what is not a number.
    ``first`` is the block's first line's index in the file."""
    rows = [raw for raw in block if not raw.lstrip().startswith(comment)]
    text = " ".join(rows).replace(separator, " ")
    if not _NOT_COUNTS.search(text):
        tokens = text.split()
        if len(tokens) > MAX_POINTS:
            raise PatternReadError(
                f"more than the {MAX_POINTS} points a scan can have", source=source
            )
        try:
            values = np.asarray(tokens, dtype=np.float64)
        except ValueError:  # "1.2.3", "+-1": named below
            values = np.full(1, np.nan)
        if np.all(np.isfinite(values)):
            return values
    for offset, raw in enumerate(block):
        if raw.lstrip().startswith(comment):
            continue
        for token in raw.replace(separator, " ").split():
            if parse_float(token) is None:
                what = "NaN or infinite" if NOT_FINITE.fullmatch(token) else "not a number"
                raise PatternReadError(
                    f"{token!r} is {what}", source=source, line=first + offset + 1
                )
    raise PatternReadError("a count is too large to be a number", source=source)
