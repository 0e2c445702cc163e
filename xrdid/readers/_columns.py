"""Numeric columns out of free-form text: the core of the .xy/.csv reader.

Files in the wild mix comment styles (``#``, ``!``, ``;``, ``//``…), header
lines (``tth,counts``; ``2Theta Intensity``), delimiters (comma, semicolon,
tab, spaces) and decimal marks (``10.02`` or ``10,02``). The delimiter and
decimal mark are chosen once per file, from its first data lines, as the
reading under which most lines parse into the same number (≥ 2) of columns;
every line is then held to that reading, so a bad line is reported by number
instead of being skipped.

The pairs are unambiguous in practice: ``10.0,2001`` only parses as comma-
separated, ``10,02;2001`` only as decimal comma with semicolons, and
``10,02 2001`` only as decimal comma with spaces.
"""

from __future__ import annotations

import io
import re
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import PatternReadError
from xrdid.pattern import MAX_POINTS
from xrdid.readers._numbers import FLOAT, is_not_finite

# Lines starting with these are comments wherever they appear.
COMMENT_PREFIXES = ("#", "!", ";", "//", "%", "*", "@", "&")

# Data lines inspected to choose delimiter and decimal mark: enough to outvote
# a few odd lines, few enough to cost nothing.
_SAMPLE_LINES = 200

# A row of a wide table (170 columns) is a few kB; a multi-MB line is a file
# that is not a table at all, and splitting it would only waste memory.
MAX_LINE_CHARS = 1_000_000

# Values one table may hold (8 bytes each as float64): 10 M is 80 MB, far
# beyond the 0.5 M of the largest real table (rockjock, 3001 × 169).
MAX_TABLE_VALUES = 10_000_000

# Header/comment lines kept for metadata.
_MAX_HEADER_LINES = 40

# Real headers are tens of lines; a file with no data in its first 10 000
# lines is not a pattern, and scanning on through millions would only burn CPU.
MAX_LINES_BEFORE_DATA = 10_000

_NUM = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,6})?"
_NUM_COMMA = r"[+-]?(?:[0-9]+,?[0-9]*|,[0-9]+)(?:[eE][+-]?[0-9]{1,6})?"
_FIRST_TOKEN = re.compile(r"[^\s,;]+")
# "#1": a number sign in a column's name, not a comment.
_NUMBER_SIGN = re.compile(r"#\d")
# Letters that may appear in a data line: exponents and NaN/inf spellings.
_NUMERIC_WORDS = re.compile(r"(?i)nan|infinity|inf|1\.#(?:inf|qnan|ind)|(?<=[0-9.])e(?=[+-]?[0-9])")


@dataclass(frozen=True)
class Dialect:
    """How one file writes its numbers: delimiter (None = whitespace) and decimal mark."""

    delimiter: str | None
    decimal: str

    @property
    def label(self) -> str:
        names = {None: "whitespace", ",": "comma", ";": "semicolon"}
        return f"{names[self.delimiter]}-separated, decimal {self.decimal!r}"

    def split(self, line: str) -> list[str]:
        """Fields of ``line``; a trailing delimiter (``10;200;``) adds no field."""
        if self.delimiter is None:
            return line.split()
        fields = [field.strip() for field in line.split(self.delimiter)]
        while len(fields) > 1 and fields[-1] == "":
            fields.pop()
        return fields

    def number(self, token: str) -> float | None:
        """The value of one field, or None when it is not a plain number here."""
        if self.decimal == ",":
            if "." in token:
                return None
            token = token.replace(",", ".")
        if FLOAT.fullmatch(token) is None:
            return None
        return float(token)

    def row_pattern(self, n_columns: int) -> re.Pattern[str]:
        """A regex matching a whole well-formed row of ``n_columns`` values."""
        num = _NUM_COMMA if self.decimal == "," else _NUM
        repeat = f"{{{n_columns - 1}}}"
        if self.delimiter is None:
            return re.compile(rf"{num}(?:\s+{num}){repeat}")
        sep = re.escape(self.delimiter)
        return re.compile(rf"{num}(?:\s*{sep}\s*{num}){repeat}(?:\s*{sep})*")


# Tried in this order; on a tie the earlier wins (a file of plain integers
# separated by spaces reads the same under both decimal marks).
DIALECTS = (
    Dialect(";", ","),
    Dialect(";", "."),
    Dialect(",", "."),
    Dialect(None, "."),
    Dialect(None, ","),
)


class _HeaderLines:
    """Text lines before the data: the first few, the last one and a count.

    Only these are ever used (metadata, column names, messages), so a file of
    a million text lines costs no memory.
    """

    def __init__(self) -> None:
        self.kept: list[tuple[int, str]] = []
        self.last: tuple[int, str] | None = None
        self.count = 0

    def add(self, lineno: int, line: str) -> None:
        if len(self.kept) < _MAX_HEADER_LINES:
            self.kept.append((lineno, line))
        self.last = (lineno, line)
        self.count += 1


@dataclass(frozen=True)
class ColumnTable:
    """Numeric columns of a text file and what was learnt reading it."""

    columns: tuple[NDArray[np.float64], ...]
    names: tuple[str, ...] | None
    dialect: Dialect
    first_data_line: int
    header: tuple[str, ...]
    # Lines whose axis value and intensity had run together (a fixed-width
    # export's full field), read split where the axis step puts them.
    split_lines: tuple[int, ...] = ()

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    @property
    def n_rows(self) -> int:
        return int(self.columns[0].size) if self.columns else 0

    def select(self, indices: Sequence[int]) -> ColumnTable:
        """The table of these columns, in this order, with their names."""
        return replace(
            self,
            columns=tuple(self.columns[index] for index in indices),
            names=None if self.names is None else tuple(self.names[index] for index in indices),
        )


def parse_columns(text: str, source: str | None, *, first_line: int = 1) -> ColumnTable:
    """Read every data line of ``text`` into float columns.

    Raises PatternReadError for an empty or comment-only file, a single
    column, a line with a different number of values, a non-numeric or
    NaN/inf value (each naming the line). ``first_line`` is the file line
    number of ``text``'s first line, for blocks cut out of a larger file.
    """
    header_lines = _HeaderLines()
    comments: list[str] = []
    sample: list[tuple[int, str]] = []
    lines = _content_lines(text, source, first_line)
    for lineno, line, is_comment in lines:
        if not sample and lineno - first_line >= MAX_LINES_BEFORE_DATA:
            raise PatternReadError(
                f"no data row in the first {MAX_LINES_BEFORE_DATA:,} lines; this is not a "
                "pattern file (or its header is absurdly long)",
                source=source,
                line=lineno,
            )
        if is_comment:
            if not sample and len(comments) < _MAX_HEADER_LINES:
                comments.append(line)
            continue
        if _is_data_like(line):
            sample.append((lineno, line))
            if len(sample) >= _SAMPLE_LINES:
                break
        elif not sample:
            header_lines.add(lineno, line)
        else:
            sample.append((lineno, line))  # reported below, in line order
    if not sample:
        raise _no_data(header_lines, comments, source)

    dialect, n_columns = _choose_dialect(sample, source)
    first_data_line = sample[0][0]
    fast = _block_columns(text, first_data_line - first_line, dialect, n_columns)
    if fast is None:
        rows = sample + [(lineno, line) for lineno, line, is_comment in lines if not is_comment]
        fast = _fast_columns(rows, dialect, n_columns)
    split_lines: tuple[int, ...] = ()
    if fast is not None:
        columns = fast
    else:
        # Line by line: slower, but it knows which line is wrong and why.
        reader = _RowReader(dialect, n_columns, source)
        for lineno, line in rows:
            reader.add(lineno, line, header_lines)
        if reader.n_rows == 0:
            raise _no_data(header_lines, comments, source)
        columns, first_data_line = reader.columns(), reader.first_line
        split_lines = tuple(reader.split_lines)

    names = _column_names(header_lines, dialect, n_columns)
    header = tuple(comments + [line for _, line in header_lines.kept])[:_MAX_HEADER_LINES]
    return ColumnTable(
        columns=columns,
        names=names,
        dialect=dialect,
        first_data_line=first_data_line,
        header=header,
        split_lines=split_lines,
    )


def run_together_note(table: ColumnTable) -> str | None:
    """What a reader tells the user about :attr:`ColumnTable.split_lines`."""
    lines = table.split_lines
    if not lines:
        return None
    shown = ", ".join(str(n) for n in lines[:_SPLIT_LINES_SHOWN])
    more = f" and {len(lines) - _SPLIT_LINES_SHOWN} more" if len(lines) > _SPLIT_LINES_SHOWN else ""
    return (
        f"line{'s' if len(lines) > 1 else ''} {shown}{more}: the axis value and the intensity "
        "ran together (a fixed-width export whose intensity filled its field); read split "
        "where the axis step puts the boundary"
    )


def _lines_from(text: str, skip: int) -> str:
    """``text`` from its line ``skip`` on (0-based), lines split as
    :func:`_content_lines` splits them."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n", skip)[-1] if skip else text


# Characters of a block of plain numbers (decimal point), whitespace- or
# comma-separated: nothing a comment, quote, word or NaN could hide in.
_NOT_PLAIN = {None: re.compile(r"[^0-9.eE+\- \t\n]"), ",": re.compile(r"[^0-9.eE+\-, \t\n]")}


def _block_columns(
    text: str, skip: int, dialect: Dialect, n_columns: int
) -> tuple[NDArray[np.float64], ...] | None:
    """``text`` from its line ``skip`` on (the data block) converted whole by
    numpy's C parser when it holds plain numbers only (the common .xy/.csv
    export), or None for the line readers. Every row must have ``n_columns``
    finite values; ~5× faster than :func:`_fast_columns`, which splits line
    by line in Python."""
    if dialect.decimal != "." or dialect.delimiter not in _NOT_PLAIN:
        return None
    block = _lines_from(text, skip)
    if _NOT_PLAIN[dialect.delimiter].search(block) is not None:
        return None
    try:
        table = np.loadtxt(io.StringIO(block), delimiter=dialect.delimiter, comments=None, ndmin=2)
    except ValueError:  # a ragged row or a token that is no number: named line by line
        return None
    max_rows = min(MAX_POINTS, MAX_TABLE_VALUES // n_columns)
    if table.shape[1] != n_columns or len(table) > max_rows or not np.all(np.isfinite(table)):
        return None
    return tuple(table[:, i].copy() for i in range(n_columns))


def _fast_columns(
    rows: list[tuple[int, str]], dialect: Dialect, n_columns: int
) -> tuple[NDArray[np.float64], ...] | None:
    """All rows converted at once by numpy, or None when any row is not a
    clean row of ``n_columns`` finite numbers (the line-by-line reader then
    finds and names the culprit). Same result, ~20× faster on big scans."""
    if len(rows) > min(MAX_POINTS, MAX_TABLE_VALUES // n_columns):
        return None
    fields: list[str] = []
    for _, line in rows:
        parts = dialect.split(line)
        if len(parts) != n_columns:
            return None
        fields.extend(parts)
    if dialect.decimal == ",":
        fields = [field.replace(",", ".") for field in fields]
    # Python's float() (which numpy uses here) also takes "1_000" and
    # " 1"; the line reader's grammar does not, so leave those to it.
    if any("_" in field or not field for field in fields):
        return None
    try:
        values = np.array(fields, dtype=np.float64)
    except ValueError:
        return None
    if not np.all(np.isfinite(values)):
        return None
    table = values.reshape(len(rows), n_columns)
    return tuple(table[:, i].copy() for i in range(n_columns))


# How many repaired line numbers a note names before "and N more".
_SPLIT_LINES_SHOWN = 5
# A run-together value: the axis value's digits straight into the intensity's.
_RUN_TOGETHER = re.compile(r"([0-9]+)\.([0-9]+)")
# The intensity part: a whole number. Not a lone 0: "14.50" is as likely a row
# whose intensity was cut off as 14.5 followed by 0.
_INTENSITY = re.compile(r"[1-9][0-9]*")


class _RowReader:
    """Accumulates rows under one dialect, failing on the first bad line."""

    def __init__(self, dialect: Dialect, n_columns: int, source: str | None) -> None:
        self.dialect = dialect
        self.n_columns = n_columns
        self.source = source
        self.row = dialect.row_pattern(n_columns)
        self.values = [array("d") for _ in range(n_columns)]
        self.lines = array("q")
        self.n_rows = 0
        self.first_line = 0
        self.max_rows = min(MAX_POINTS, MAX_TABLE_VALUES // n_columns)
        # The most decimals an axis value was written with so far.
        self.axis_decimals = 0
        self.split_lines: list[int] = []

    def add(self, lineno: int, line: str, header_lines: _HeaderLines) -> None:
        if self.row.fullmatch(line) is None:
            if self.n_rows == 0 and not _is_data_like(line):
                # Text before the first good row is header ("2 Theta Counts").
                header_lines.add(lineno, line)
                return
            split = self._run_together(line)
            if split is None:
                raise self._diagnose(lineno, line)
            self.split_lines.append(lineno)
            fields = list(split)
        else:
            fields = self.dialect.split(line)
        if self.dialect.decimal == ",":
            fields = [field.replace(",", ".") for field in fields]
        if "." in fields[0]:
            self.axis_decimals = max(self.axis_decimals, len(fields[0]) - fields[0].index(".") - 1)
        for column, field in zip(self.values, fields, strict=False):
            column.append(float(field))
        if self.n_rows == 0:
            self.first_line = lineno
        self.lines.append(lineno)
        self.n_rows += 1
        if self.n_rows > self.max_rows:
            raise PatternReadError(
                f"more than {self.max_rows:,} data rows; this is not a single powder scan "
                "(limit reached at this line)",
                source=self.source,
                line=lineno,
            )

    def _run_together(self, line: str) -> tuple[str, str] | None:
        """The axis value and intensity of a fixed-width row whose fields ran
        together ("14.168110228" after "14.1185 1697", or " 39.1279" for
        39.127 and 9 when the export drops trailing zeros), or None. The split
        is the one that puts the axis value where the rows so far, evenly
        stepped, put the next one (to within the last decimal they were
        written with, and with no more decimals), followed by a whole positive
        count."""
        match = _RUN_TOGETHER.fullmatch(line)
        if match is None or self.n_columns != 2 or self.n_rows < 2 or self.dialect.decimal != ".":
            return None
        first, previous = self.values[0][0], self.values[0][-1]
        step = (previous - first) / (self.n_rows - 1)
        if step <= 0:
            return None
        expected = previous + step
        # The values are rounded to their last decimal, and so is the expectation.
        tolerance = 1.5 * 10.0**-self.axis_decimals
        whole, fraction = match.groups()
        splits = []
        for decimals in range(1, min(len(fraction) - 1, self.axis_decimals) + 1):
            axis, intensity = f"{whole}.{fraction[:decimals]}", fraction[decimals:]
            error = abs(float(axis) - expected)
            if error <= tolerance and _INTENSITY.fullmatch(intensity):
                splits.append((error, axis, intensity))
        if not splits:
            return None
        _, axis, intensity = min(splits)
        return axis, intensity

    def columns(self) -> tuple[NDArray[np.float64], ...]:
        """The columns; a value that overflowed ("1e999") is reported by line."""
        columns = tuple(np.frombuffer(values, dtype=np.float64).copy() for values in self.values)
        for index, column in enumerate(columns, start=1):
            overflow = np.flatnonzero(~np.isfinite(column))
            if overflow.size:
                raise PatternReadError(
                    f"column {index} holds a value too large for a float (it overflows "
                    "to infinity)",
                    source=self.source,
                    line=int(self.lines[overflow[0]]),
                )
        return columns

    def _diagnose(self, lineno: int, line: str) -> PatternReadError:
        fields = self.dialect.split(line)
        for index, field in enumerate(fields, start=1):
            if field == "":
                return PatternReadError(
                    f"column {index} is empty in {_clip(line)!r}; fill or delete the row",
                    source=self.source,
                    line=lineno,
                )
            if is_not_finite(field):
                return PatternReadError(
                    f"column {index} holds {field!r}, not a finite number; remove or "
                    "interpolate NaN/inf values",
                    source=self.source,
                    line=lineno,
                )
            if self.dialect.number(field) is None:
                hint = (
                    "; the file uses decimal commas, so a '.' inside a value is a "
                    "thousands separator or a mixed-up export — remove it"
                    if self.dialect.decimal == "," and "." in field
                    else ""
                )
                return PatternReadError(
                    f"column {index} holds {_clip(field)!r}, which is not a number "
                    f"(file read as {self.dialect.label}){hint}",
                    source=self.source,
                    line=lineno,
                )
        count = len(fields)
        if count == self.n_columns:
            return PatternReadError(
                f"the row {_clip(line)!r} is malformed (file read as {self.dialect.label})",
                source=self.source,
                line=lineno,
            )
        hint = ""
        if count < self.n_columns:
            hint = (
                "; values may have run together in a fixed-width export, or the line "
                "is truncated — re-export with a delimiter between columns"
            )
        return PatternReadError(
            f"{count} value{'s' if count != 1 else ''} where the data has "
            f"{self.n_columns} columns: {_clip(line)!r}{hint}",
            source=self.source,
            line=lineno,
        )


def _content_lines(
    text: str, source: str | None, first_line: int
) -> Iterator[tuple[int, str, bool]]:
    """(line number, stripped line, is comment) for every non-blank line."""
    # StringIO with universal newlines splits \n, \r\n and \r without copying
    # the whole file into a list.
    for lineno, raw in enumerate(
        io.StringIO(text.lstrip("\ufeff"), newline=None), start=first_line
    ):
        if len(raw) > MAX_LINE_CHARS:
            raise PatternReadError(
                f"the line is {len(raw):,} characters long; a pattern file has short "
                "lines of a few numbers (is this really a text pattern?)",
                source=source,
                line=lineno,
            )
        # DOS exports may end with Ctrl-Z (0x1A), which is no data.
        line = raw.strip().strip("\x1a").strip()
        if not line:
            continue
        if line.startswith(COMMENT_PREFIXES):
            yield lineno, line, True
            continue
        if "#" in line:
            head = line.split("#", 1)[0].strip()
            # A trailing comment, but for a header line whose names number
            # their columns ("Raw data #1", as B&W Tek's exports write).
            if _is_data_like(head) or not _NUMBER_SIGN.search(line):
                line = head
            if not line:
                continue
        if '"' in line:
            # CSV exports quote fields ("10.0","2001"); numbers never hold quotes.
            line = line.replace('"', "").strip()
        yield lineno, line, False


def _is_data_like(line: str) -> bool:
    """Whether the line starts with a number and holds no words."""
    first = _FIRST_TOKEN.match(line)
    if first is None:
        return False
    token = first.group()
    if FLOAT.fullmatch(token) is None and not is_not_finite(token):
        return False
    return not _has_words(line)


def _has_words(line: str) -> bool:
    return any(char.isalpha() for char in _NUMERIC_WORDS.sub("", line))


def _choose_dialect(sample: list[tuple[int, str]], source: str | None) -> tuple[Dialect, int]:
    best: tuple[bool, int, int] | None = None
    chosen: tuple[Dialect, int] | None = None
    for order, dialect in enumerate(DIALECTS):
        counts: Counter[int] = Counter()
        for _, line in sample:
            fields = dialect.split(line)
            if all(dialect.number(field) is not None for field in fields):
                counts[len(fields)] += 1
        if not counts:
            continue
        n_columns, score = counts.most_common(1)[0]
        key = (n_columns >= 2, score, -order)
        if best is None or key > best:
            best, chosen = key, (dialect, n_columns)
    if chosen is None:
        # No reading parses any sample line: report the first one as it stands.
        lineno, line = sample[0]
        raise _RowReader(Dialect(None, "."), 2, source)._diagnose(lineno, line)
    dialect, n_columns = chosen
    if n_columns < 2:
        lineno, line = sample[0]
        raise PatternReadError(
            f"the data has a single column ({_clip(line)!r}); a pattern needs 2θ and "
            "intensity columns side by side",
            source=source,
            line=lineno,
        )
    return dialect, n_columns


def _column_names(
    header_lines: _HeaderLines, dialect: Dialect, n_columns: int
) -> tuple[str, ...] | None:
    """Names from the last header line when it splits into one per column."""
    if header_lines.last is None:
        return None
    _, line = header_lines.last
    splitters = [dialect.delimiter, ",", ";", "\t", None]
    for delimiter in splitters:
        parts = line.split(delimiter) if delimiter else line.split()
        names = [part.strip().strip("'\"").strip() for part in parts]
        while names and names[-1] == "":
            names.pop()
        if len(names) == n_columns and all(names):
            return tuple(names)
    return None


def _no_data(
    header_lines: _HeaderLines, comments: list[str], source: str | None
) -> PatternReadError:
    if not header_lines.count and not comments:
        return PatternReadError("the file is empty", source=source)
    if not header_lines.kept:
        return PatternReadError("the file holds only comment lines and no data rows", source=source)
    lineno, line = header_lines.kept[0]
    return PatternReadError(
        f"no numeric data rows: the file has {header_lines.count} text line(s) such as "
        f"line {lineno} {_clip(line)!r}, and none starts with a number; a pattern file "
        "needs rows of '2θ intensity'",
        source=source,
    )


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# The name of a column that numbers the rows ("No.", "Index", "Point").
_ROW_NUMBER_NAME = re.compile(r"(?i)^(?:no\.?|nr\.?|n|#|index|idx|point|pt|row)$")


def numbers_rows(table: ColumnTable) -> bool:
    """Whether column 1 only numbers the rows (1, 2, 3…, as some instrument
    and spreadsheet exports write before the axis). Without a name saying
    so, only when column 2 is a strictly monotonic axis and a third column
    follows: a real 2θ axis stepping by whole degrees from 1° beside a
    monotonic "intensity" is no pattern."""
    if table.n_columns < 2 or table.n_rows < 2:
        return False
    numbers = table.columns[0]
    if numbers[0] not in (0.0, 1.0) or not bool(np.all(np.diff(numbers) == 1.0)):
        return False
    if table.names is not None and _ROW_NUMBER_NAME.match(table.names[0].strip()):
        return True
    axis_steps = np.diff(table.columns[1])
    monotonic = bool(np.all(axis_steps > 0) or np.all(axis_steps < 0))
    return table.n_columns >= 3 and monotonic


def without_row_numbers(table: ColumnTable, source: str | None) -> tuple[ColumnTable, str | None]:
    """``table`` less a first column that :func:`numbers_rows`, and the note
    that says so; ``table`` itself when column 1 is not one."""
    if not numbers_rows(table):
        return table, None
    if table.n_columns == 2:
        raise PatternReadError(
            "column 1 numbers the rows and column 2 is the only other column, so the file "
            "holds no axis (2θ or Raman shift); export the axis beside the intensity",
            source=source,
        )
    label = f"{table.names[0]!r} " if table.names is not None else ""
    return (
        table.select(range(1, table.n_columns)),
        f"column 1 {label}numbers the rows (1, 2, 3…): left out",
    )
