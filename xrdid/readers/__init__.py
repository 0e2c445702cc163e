"""Measurement file readers: bytes in, a validated :class:`~xrdid.pattern.Pattern`
(XRD) or :class:`~xrdid.raman.spectrum.RamanSpectrum` out.

:func:`read_measurement` reads either technique; :func:`read_pattern` reads
XRD patterns only (as it always has). Each detects the format from the
content (the extension only breaks ties and sharpens messages), runs the
format's reader, and every reader ends in :func:`xrdid.pattern.make_pattern`.
Whatever goes wrong surfaces as :class:`~xrdid.errors.PatternReadError`
(:class:`~xrdid.errors.UnsupportedFormatError` for unknown formats), with a
message naming the line or field and the fix.

Formats (one module each): column text (``text``), PANalytical XRDML
(``xrdml``), Bruker RAW v1–v4 (``bruker_raw``), Bruker BRML (``brml``),
Rigaku RAS/RASX (``rigaku_ras``, ``rigaku_rasx``), GSAS STD/ESD/FXYE
(``gsas``) and powder CIF (``pdcif``); for Raman, RRUFF and generic text
(``raman_text``), JCAMP-DX (``jcamp_dx``), Galactic SPC (``spc``) and Renishaw
WDF (``wdf``). A column text file is Raman or XRD by its header's words (cm⁻¹,
shift… or 2θ, angle…), else by its axis (2θ never exceeds 180°).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from xrdid.errors import PatternReadError, UnsupportedFormatError
from xrdid.pattern import Pattern
from xrdid.raman.spectrum import RamanAxis, RamanSpectrum, check_laser
from xrdid.readers._columns import parse_columns
from xrdid.readers._detect import EXTENSION_FORMATS, RAMAN_FORMATS, detect_format
from xrdid.readers._source import DEFAULT_MAX_BYTES, PatternSource, RawInput, load
from xrdid.readers._textdecode import decode_text
from xrdid.readers.brml import read_brml
from xrdid.readers.bruker_raw import read_bruker_raw
from xrdid.readers.bruker_uxd import read_uxd
from xrdid.readers.chiplot import read_chiplot
from xrdid.readers.gsas import read_gsas
from xrdid.readers.jcamp_dx import read_jcamp
from xrdid.readers.pdcif import read_pdcif
from xrdid.readers.philips_rd import read_philips_rd
from xrdid.readers.philips_udf import read_udf
from xrdid.readers.raman_text import read_rruff, spectrum_from_table, text_technique
from xrdid.readers.rigaku_asc import read_rigaku_asc
from xrdid.readers.rigaku_ras import read_ras
from xrdid.readers.rigaku_rasx import read_rasx
from xrdid.readers.sietronics_cpi import read_cpi
from xrdid.readers.spc import read_spc
from xrdid.readers.text import pattern_from_table, read_text, read_text_table
from xrdid.readers.wdf import read_wdf
from xrdid.readers.xrdml import read_xrdml
from xrdid.technique import Technique

__all__ = [
    "DEFAULT_MAX_BYTES",
    "SUPPORTED_FORMATS",
    "Measurement",
    "PatternReadError",
    "PatternSource",
    "RamanAxis",
    "RamanSpectrum",
    "Technique",
    "UnsupportedFormatError",
    "read_measurement",
    "read_pattern",
    "read_pattern_table",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

SUPPORTED_FORMATS: tuple[str, ...] = (
    ".xy",
    ".xye",
    ".dat",
    ".txt",
    ".csv",
    ".xrdml",
    ".raw",
    ".uxd",
    ".chi",
    ".udf",
    ".rd",
    ".sd",
    ".cpi",
    ".brml",
    ".ras",
    ".asc",
    ".rasx",
    ".gsa",
    ".gss",
    ".fxye",
    ".cif",
    ".jdx",
    ".dx",
    ".spc",
    ".wdf",
)
"""File extensions xrdid reads (for docs, upload forms and error messages)."""

Measurement = Pattern | RamanSpectrum

_Reader = Callable[[RawInput, int], Pattern]

_READERS: dict[str, _Reader] = {
    "text": lambda raw, cap: read_text(raw.data, raw.name),
    "xrdml": lambda raw, cap: read_xrdml(raw.data, raw.name),
    "bruker_raw": lambda raw, cap: read_bruker_raw(raw.data, raw.name),
    "bruker_uxd": lambda raw, cap: read_uxd(raw.data, raw.name),
    "chiplot": lambda raw, cap: read_chiplot(raw.data, raw.name),
    "philips_udf": lambda raw, cap: read_udf(raw.data, raw.name),
    "philips_rd": lambda raw, cap: read_philips_rd(raw.data, raw.name),
    "sietronics_cpi": lambda raw, cap: read_cpi(raw.data, raw.name),
    "brml": lambda raw, cap: read_brml(raw.data, raw.name, max_member_bytes=cap),
    "rigaku_ras": lambda raw, cap: read_ras(raw.data, raw.name),
    "rigaku_asc": lambda raw, cap: read_rigaku_asc(raw.data, raw.name),
    "rigaku_rasx": lambda raw, cap: read_rasx(raw.data, raw.name, max_member_bytes=cap),
    "gsas": lambda raw, cap: read_gsas(raw.data, raw.name),
    "pdcif": lambda raw, cap: read_pdcif(raw.data, raw.name),
}


def read_pattern(
    source: PatternSource,
    filename: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Pattern:
    """Read one measured powder pattern from a file in any supported format.

    Parameters
    ----------
    source
        The file content as bytes, a path (``str`` is always a path), or a
        file object opened in binary mode.
    filename
        Name used in messages and as an extension hint (an upload's name);
        defaults to the path's or stream's name.
    max_bytes
        Refuse inputs larger than this, and zip members inflating past it.

    Raises
    ------
    PatternReadError
        The file is malformed, hostile, or not a single valid pattern (a wide
        table gets a message pointing to :func:`read_pattern_table`).
    UnsupportedFormatError
        The content is no format xrdid reads.
    """
    return _guarded(filename, lambda: _read_as_detected(load(source, filename, max_bytes)))


def read_measurement(
    source: PatternSource,
    filename: str | None = None,
    *,
    technique: Technique | str | None = None,
    laser_wavelength_nm: float | None = None,
    raman_axis: RamanAxis | str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Measurement:
    """Read one measurement, an XRD pattern or a Raman spectrum.

    Parameters
    ----------
    source, filename, max_bytes
        As for :func:`read_pattern`.
    technique
        ``"xrd"`` or ``"raman"`` to insist on one (a file of the other kind is
        refused, naming what it is); None decides from the content.
    laser_wavelength_nm
        The Raman laser, overriding the file's; needed to convert an axis in
        absolute wavenumbers or nm to Raman shift.
    raman_axis
        What a Raman column file's first column holds (``"shift"``,
        ``"wavenumber"``, ``"wavelength"``); None reads the header.

    Returns
    -------
    Pattern or RamanSpectrum
    """

    def read() -> Measurement:
        wanted = _technique(technique, filename)
        axis = None if raman_axis is None else _raman_axis(raman_axis, filename)
        laser = check_laser(laser_wavelength_nm, filename)
        raw = load(source, filename, max_bytes)
        kind = detect_format(raw, max_member_bytes=max_bytes)
        if kind == "text":
            table = parse_columns(decode_text(raw.data, raw.name), raw.name)
            found = Technique(text_technique(table)) if wanted is None else wanted
            if found is Technique.XRD:
                return pattern_from_table(table, raw.name)
            return spectrum_from_table(table, raw.name, laser_wavelength_nm=laser, axis=axis)
        found = Technique.RAMAN if kind in RAMAN_FORMATS else Technique.XRD
        if wanted is not None and wanted is not found:
            raise PatternReadError(
                f"the file is a {found.value.upper()} measurement ({kind} format), but "
                f"technique={wanted.value!r} was asked for",
                source=raw.name,
            )
        if found is Technique.XRD:
            return _read_as_detected(raw, kind)
        if kind == "rruff":
            spectrum = read_rruff(raw.data, raw.name)
            return spectrum if laser is None else replace(spectrum, laser_wavelength_nm=laser)
        reader = {"jcamp": read_jcamp, "spc": read_spc, "wdf": read_wdf}[kind]
        return reader(raw.data, raw.name, laser_wavelength_nm=laser)

    return _guarded(filename, read)


def _technique(value: Technique | str | None, name: str | None) -> Technique | None:
    if value is None:
        return None
    try:
        return Technique(str(value).lower())
    except ValueError:
        raise PatternReadError(
            f"unknown technique {value!r}; use 'xrd' or 'raman'", source=name, field="technique"
        ) from None


def _raman_axis(value: RamanAxis | str, name: str | None) -> RamanAxis:
    try:
        return RamanAxis(str(value).lower())
    except ValueError:
        raise PatternReadError(
            f"unknown Raman axis {value!r}; use 'shift', 'wavenumber' or 'wavelength'",
            source=name,
            field="raman_axis",
        ) from None


def read_pattern_table(
    source: PatternSource,
    filename: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    skip_invalid: bool = False,
) -> dict[str, Pattern]:
    """Read a text table of 2θ and N intensity columns: column name → Pattern.

    For files such as a reference library exported as one CSV (``tth`` plus a
    column per phase). A column that is not a valid pattern (constant, NaN)
    raises, naming it; ``skip_invalid=True`` leaves such columns out.
    Only text tables hold several patterns; other formats raise.
    """

    def read() -> dict[str, Pattern]:
        raw = load(source, filename, max_bytes)
        kind = detect_format(raw, max_member_bytes=max_bytes)
        if kind != "text":
            raise PatternReadError(
                f"read_pattern_table reads column text tables; this is a {kind} file "
                "holding one pattern — use read_pattern",
                source=raw.name,
            )
        return read_text_table(raw.data, raw.name, skip_invalid=skip_invalid)

    return _guarded(filename, read)


def _read_as_detected(raw: RawInput, kind: str | None = None) -> Pattern:
    kind = kind or detect_format(raw, max_member_bytes=raw.max_bytes)
    if kind in RAMAN_FORMATS:
        raise PatternReadError(
            f"the file is a Raman spectrum ({kind} format), not an XRD pattern; read it "
            "with read_measurement",
            source=raw.name,
        )
    try:
        return _READERS[kind](raw, raw.max_bytes)
    except PatternReadError as exc:
        expected = EXTENSION_FORMATS.get(raw.extension)
        if expected is None or expected == kind:
            raise
        hint = f" (note: the name ends in {raw.extension} but the content reads as {kind})"
        raise type(exc)(
            exc.reason + hint, source=exc.source, line=exc.line, field=exc.field
        ) from exc


def _guarded(name: str | None, read: Callable[[], _T]) -> _T:
    """Run a reader so that only PatternReadError can leave it.

    Readers raise PatternReadError for every problem they foresee; anything
    else is a reader bug met on odd input. It is logged with its traceback
    and still reported as a read error, because the caller (the web service
    maps PatternReadError to 422) must never see a crash caused by a file.
    """
    try:
        return read()
    except (PatternReadError, MemoryError):
        raise
    except RecursionError as exc:
        raise PatternReadError("the file nests too deeply to read", source=name) from exc
    except Exception as exc:
        logger.exception("internal error reading %s", name)
        raise PatternReadError(
            "internal error while reading the file; the file is probably malformed — "
            "please report it with the file attached",
            source=name,
        ) from exc
