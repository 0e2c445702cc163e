"""The one exception tree of xrdid.

Every error a user can cause derives from :class:`XrdidError`; its message says
what is wrong, where (file, line, field) and how to fix it. Only ``app/`` maps
these classes to HTTP status codes:

- ``XrdidError``
  - ``PatternReadError``: a pattern file could not be read (bad content)
    - ``UnsupportedFormatError``: the file is not in any format xrdid reads
  - ``StructureReadError``: a structure file (CIF, BGMN .str) could not be read
  - ``SimulationError``: a structure read fine but gives no usable pattern
    - ``SimulationTooLargeError``: simulating it would cost more than the limit
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

    def __reduce__(self) -> tuple[object, ...]:
        # Keep source, line and field when the error crosses a process boundary
        # (the service reads uploads in worker processes).
        return (_rebuild_read_error, (type(self), self.reason, self.source, self.line, self.field))


def _rebuild_read_error(
    cls: type[PatternReadError],
    reason: str,
    source: str | None,
    line: int | None,
    field: str | None,
) -> PatternReadError:
    return cls(reason, source=source, line=line, field=field)


class UnsupportedFormatError(PatternReadError):
    """The bytes are not any pattern format xrdid knows."""


class StructureReadError(XrdidError):
    """A crystal-structure file cannot be turned into a structure."""


class SimulationError(XrdidError):
    """A structure cannot be simulated into a usable reference pattern."""


class SimulationTooLargeError(SimulationError):
    """Simulating a structure would cost more than allowed.

    ``quantity`` names what was estimated, ``value`` its estimate and
    ``limit`` the most allowed.
    """

    def __init__(self, message: str, *, quantity: str, value: float, limit: float) -> None:
        self.quantity, self.value, self.limit = quantity, value, limit
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_too_large, (str(self), self.quantity, self.value, self.limit))


def _rebuild_too_large(
    message: str, quantity: str, value: float, limit: float
) -> SimulationTooLargeError:
    return SimulationTooLargeError(message, quantity=quantity, value=value, limit=limit)


class InputError(XrdidError):
    """A parameter (wavelength, range, option) is invalid."""
