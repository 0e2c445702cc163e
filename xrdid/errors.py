"""The one exception tree of xrdid.

Every error a user can cause derives from :class:`XrdidError`; its message says
what is wrong, where (file, line, field) and how to fix it. Only ``app/`` maps
these classes to HTTP status codes:

- ``XrdidError``
  - ``PatternReadError``: a pattern file could not be read (bad content)
    - ``UnsupportedFormatError``: the file is not in any format xrdid reads
  - ``StructureReadError``: a structure file (CIF, BGMN .str) could not be read
  - ``SimulationError``: a structure read fine but gives no usable pattern
  - ``InputError``: a parameter is out of range (wavelength, grid, options)
"""

from __future__ import annotations


class XrdidError(Exception):
    """Base of every error xrdid raises on purpose."""


class PatternReadError(XrdidError):
    """A pattern file is malformed, hostile or physically impossible.

    ``line`` (1-based) and ``field`` locate the problem when they are known.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = message
        self.source = source
        self.line = line
        self.field = field
        where = []
        if source:
            where.append(source)
        if line is not None:
            where.append(f"line {line}")
        if field:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class UnsupportedFormatError(PatternReadError):
    """The bytes are not any pattern format xrdid knows."""


class StructureReadError(XrdidError):
    """A crystal-structure file cannot be turned into a structure."""


class SimulationError(XrdidError):
    """A structure cannot be simulated into a usable reference pattern."""


class InputError(XrdidError):
    """A parameter (wavelength, range, option) is invalid."""
