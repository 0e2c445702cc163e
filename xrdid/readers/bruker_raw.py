"""Siemens/Bruker DIFFRAC .raw, all four binary versions.

=========  ==========  ===========================================
signature  version     software
=========  ==========  ===========================================
``RAW ``   1           DIFFRAC-AT (DOS)
``RAW2``   2           DIFFRAC-AT v2
``RAW1.01`` 3          DIFFRAC plus (XCH 5, 1990s–2000s)
``RAW4.00`` 4          DIFFRAC.SUITE (Commander, 2010s–)
=========  ==========  ===========================================

Offsets follow the DIFFRAC plus XCH V.5.0 user's manual, appendix A (v3) and
the layouts documented in xylib's ``bruker_raw.cpp`` (v1, v2, v4), which
GSAS-II's importer agrees with. All versions store one or more ranges, each a
header (start angle, step, point count) followed by float32 counts; the 2θ
grid is ``start + i·step``. The first range is read; ``metadata["ranges"]``
says when there were more. Every offset and count from the file is checked
against its length, so truncated or forged files fail with the field named.

No maintained library covers this: xylib-py (C++, LGPL) has had no release
since 2020 and needs swig to build; fairmat-readers-xrd reads v4 only and
pulls in pint and xmltodict.
"""

from __future__ import annotations

from dataclasses import dataclass

from xrdid.errors import PatternReadError, UnsupportedFormatError
from xrdid.pattern import MAX_POINTS, Pattern, make_pattern
from xrdid.readers._binary import BinaryView
from xrdid.readers._common import build_wavelength, first_of, fmt, regular_grid

SIGNATURES = (b"RAW1.01", b"RAW4.00", b"RAW2", b"RAW ")

# v3: a 712-byte file header, then per range a header of (normally) 304 bytes.
_V3_FILE_HEADER = 712
_V3_RANGE_HEADER = 304
# v4: a 61-byte file header, then tagged segments, then ranges whose fixed
# header is 160 bytes (its first field says so in newer files).
_V4_FILE_HEADER = 61
_V4_RANGE_HEADER = 160
# v2: 256-byte file header; range headers give their own length (≥ 48).
_V2_FILE_HEADER = 256
_V2_MIN_RANGE_HEADER = 48
# v1: each range is a 156-byte header followed by its counts.
_V1_RANGE_HEADER = 156

# More ranges than this is a corrupt count (real files hold 1 to a few dozen).
_MAX_RANGES = 10_000

# v4 scan types that are 2θ scans (the others are rocking curves, maps…).
_V4_TWO_THETA_SCANS = ("locked coupled", "unlocked coupled", "detector scan", "2theta")


@dataclass(frozen=True)
class _Range:
    """One measured range: where its counts sit and how to place them in 2θ."""

    start_deg: float
    step_deg: float
    n_points: int
    data_offset: int
    index: int


def read_bruker_raw(data: bytes, source: str | None = None) -> Pattern:
    """Read the first range of a Bruker RAW file (any version)."""
    view = BinaryView(data, source)
    metadata: dict[str, str] = {"format": "bruker_raw"}
    if data.startswith(b"RAW1.01"):
        metadata["raw_version"] = "3 (RAW1.01)"
        scan, n_ranges, wavelength_fields = _version3(view, metadata)
    elif data.startswith(b"RAW4.00"):
        metadata["raw_version"] = "4 (RAW4.00)"
        scan, n_ranges, wavelength_fields = _version4(view, metadata)
    elif data.startswith(b"RAW2"):
        metadata["raw_version"] = "2"
        scan, n_ranges, wavelength_fields = _version2(view, metadata)
    elif data.startswith(b"RAW "):
        metadata["raw_version"] = "1"
        scan, n_ranges, wavelength_fields = _version1(view, metadata)
    else:
        raise UnsupportedFormatError(
            f"the file starts with {data[:8]!r}, not a Bruker RAW signature "
            "(RAW1.01, RAW4.00, RAW2 or 'RAW '); Philips/STOE .raw files are other formats — "
            "export the scan as .xy",
            source=source,
        )
    if n_ranges > 1:
        first_of(metadata, "ranges", n_ranges, "ranges")
    intensity = view.float32_array(scan.data_offset, scan.n_points, "range 1 counts")
    if n_ranges == 1:
        _check_tail(view, scan)
    metadata["start_2theta_deg"] = fmt(scan.start_deg)
    metadata["step_2theta_deg"] = fmt(scan.step_deg)
    wavelength = build_wavelength(*wavelength_fields, metadata=metadata)
    two_theta = regular_grid(scan.start_deg, scan.step_deg, scan.n_points, source, "range 1")
    return make_pattern(
        two_theta, intensity, wavelength=wavelength, metadata=metadata, source=source
    )


WavelengthFields = tuple[float | None, float | None, float | None, str | None]


def _version3(view: BinaryView, metadata: dict[str, str]) -> tuple[_Range, int, WavelengthFields]:
    n_ranges = view.u32(12, "range count")
    _check_range_count(view, n_ranges)
    _put(metadata, "measured_date", view.text(16, 10, "date"))
    _put(metadata, "measured_time", view.text(26, 10, "time"))
    _put(metadata, "sample_id", view.text(326, 60, "sample id"))
    _put(metadata, "comment", view.text(386, 160, "comment"))
    anode = view.text(608, 4, "anode")
    _put(metadata, "anode", anode)
    kalpha1 = view.f64(624, "Kα1 wavelength")
    kalpha2: float | None = view.f64(632, "Kα2 wavelength")
    ratio: float | None = view.f64(648, "Kα2/Kα1 ratio")

    offset = _V3_FILE_HEADER
    header_length = view.u32(offset, "range 1 header length")
    if header_length < _V3_RANGE_HEADER:
        raise _corrupt(view, f"range 1 header length is {header_length}, below {_V3_RANGE_HEADER}")
    n_points = view.u32(offset + 4, "range 1 point count")
    start = view.f64(offset + 16, "range 1 start 2θ")
    step = view.f64(offset + 176, "range 1 step")
    supplementary = view.u32(offset + 256, "range 1 supplementary header size")
    time_per_step = view.f32(offset + 192, "range 1 time per step")
    metadata["time_per_step_s"] = fmt(time_per_step)
    if kalpha1 <= 0:
        # Some files leave the tube block empty but state the wavelength used.
        kalpha1 = view.f64(offset + 240, "range 1 wavelength")
        kalpha2 = ratio = None
    data_offset = offset + header_length + supplementary
    scan = _checked_range(view, start, step, n_points, data_offset, 1)
    return scan, n_ranges, (kalpha1, kalpha2, ratio, anode)


def _version4(view: BinaryView, metadata: dict[str, str]) -> tuple[_Range, int, WavelengthFields]:
    _put(metadata, "measured_date", view.text(12, 12, "date"))
    _put(metadata, "measured_time", view.text(24, 10, "time"))
    kalpha1 = kalpha2 = ratio = None
    anode = None
    offset = _V4_FILE_HEADER
    # Tagged segments up to the first range (type 0 or 160). Each segment
    # states its length, so unknown ones are skipped; a length below 8 would
    # loop forever and is refused.
    while True:
        segment_type = view.u32(offset, "segment type")
        if segment_type in (0, 160):
            break
        length = view.u32(offset + 4, "segment length")
        if length < 8:
            raise _corrupt(view, f"segment at byte {offset} claims length {length}")
        view.require(offset, length, f"segment type {segment_type}")
        if segment_type == 10 and length >= 36:
            name = view.text(offset + 12, 24, "variable name")
            value = view.text(offset + 36, length - 36, "variable value")
            if name and value:
                metadata[f"raw_{name}"] = value[:200]
        elif segment_type == 30 and length >= 120:
            kalpha1 = view.f64(offset + 80, "Kα1 wavelength")
            kalpha2 = view.f64(offset + 88, "Kα2 wavelength")
            ratio = view.f64(offset + 104, "Kα2/Kα1 ratio")
            anode = view.text(offset + 116, 4, "anode")
            _put(metadata, "anode", anode)
        offset += length

    ranges: list[_Range] = []
    # Ranges follow one another, each opening with type 0 or 160; whatever
    # else follows the last one is judged by _check_tail.
    while not ranges or (
        offset + _V4_RANGE_HEADER <= len(view) and view.u32(offset, "range type") in (0, 160)
    ):
        if len(ranges) >= _MAX_RANGES:
            raise _corrupt(view, f"more than {_MAX_RANGES} ranges")
        index = len(ranges) + 1
        view.require(offset, _V4_RANGE_HEADER, f"range {index} header")
        scan_type = view.text(offset + 32, 24, f"range {index} scan type")
        start = view.f64(offset + 72, f"range {index} start angle")
        step = view.f64(offset + 80, f"range {index} step")
        n_points = view.u32(offset + 88, f"range {index} point count")
        datum_size = view.u32(offset + 136, f"range {index} datum size")
        supplementary = view.u32(offset + 140, f"range {index} supplementary header size")
        if datum_size != 4:
            raise _corrupt(view, f"range {index} stores {datum_size}-byte values, not float32")
        if index == 1:
            _put(metadata, "scan_type", scan_type)
            metadata["time_per_step_s"] = fmt(view.f32(offset + 92, "range 1 time per step"))
            if not scan_type.lower().startswith(_V4_TWO_THETA_SCANS):
                raise PatternReadError(
                    f"the first range is a {scan_type or 'unnamed'!r} scan, not a 2θ scan "
                    "(locked/unlocked coupled or detector scan)",
                    source=view.source,
                    field="scan type",
                )
            if kalpha1 is None:
                kalpha1 = view.f64(offset + 112, "range 1 wavelength")
        data_offset = offset + _V4_RANGE_HEADER + supplementary
        ranges.append(_checked_range(view, start, step, n_points, data_offset, index))
        offset = data_offset + 4 * n_points
    return ranges[0], len(ranges), (kalpha1, kalpha2, ratio, anode)


def _version2(view: BinaryView, metadata: dict[str, str]) -> tuple[_Range, int, WavelengthFields]:
    n_ranges = view.u16(4, "range count")
    _check_range_count(view, n_ranges)
    _put(metadata, "measured", view.text(168, 20, "date and time"))
    anode = view.text(188, 2, "anode")
    _put(metadata, "anode", anode)
    kalpha1 = view.f32(190, "Kα1 wavelength")
    kalpha2 = view.f32(194, "Kα2 wavelength")
    ratio = view.f32(198, "Kα2/Kα1 ratio")
    offset = _V2_FILE_HEADER
    header_length = view.u16(offset, "range 1 header length")
    if header_length < _V2_MIN_RANGE_HEADER:
        raise _corrupt(view, f"range 1 header length is {header_length}, below 48")
    n_points = view.u16(offset + 2, "range 1 point count")
    metadata["time_per_step_s"] = fmt(view.f32(offset + 8, "range 1 time per step"))
    step = view.f32(offset + 12, "range 1 step")
    start = view.f32(offset + 16, "range 1 start 2θ")
    scan = _checked_range(view, start, step, n_points, offset + header_length, 1)
    return scan, n_ranges, (kalpha1, kalpha2, ratio, anode)


def _version1(view: BinaryView, metadata: dict[str, str]) -> tuple[_Range, int, WavelengthFields]:
    n_points = view.u32(4, "range 1 point count")
    metadata["time_per_step_s"] = fmt(view.f32(8, "range 1 time per step"))
    step = view.f32(12, "range 1 step")
    start = view.f32(24, "range 1 start 2θ")
    _put(metadata, "sample_id", view.text(40, 32, "sample name"))
    kalpha1 = view.f32(72, "Kα1 wavelength")
    kalpha2 = view.f32(76, "Kα2 wavelength")
    more = view.u32(152, "following range flag")
    scan = _checked_range(view, start, step, n_points, _V1_RANGE_HEADER, 1)
    # v1 does not store its range count; each header flags whether another follows.
    n_ranges = 2 if more else 1
    return scan, n_ranges, (kalpha1, kalpha2, None, None)


def _checked_range(
    view: BinaryView, start: float, step: float, n_points: int, data_offset: int, index: int
) -> _Range:
    if n_points > MAX_POINTS:
        raise _corrupt(view, f"range {index} claims {n_points:,} points")
    available = max(len(view) - data_offset, 0) // 4
    if n_points > available:
        raise PatternReadError(
            f"range {index} declares {n_points:,} points ({4 * n_points:,} bytes) but only "
            f"{available:,} fit after its header; the file is truncated or its point "
            "count is wrong",
            source=view.source,
            field=f"range {index} point count",
        )
    return _Range(start, step, n_points, data_offset, index)


def _check_tail(view: BinaryView, scan: _Range) -> None:
    """A lone range must end the file (zero padding aside).

    Non-zero bytes after it mean the point count is too small, which would
    otherwise silently drop the end of the scan.
    """
    end = scan.data_offset + 4 * scan.n_points
    tail = view.data[end:]
    if tail.strip(b"\x00"):
        raise PatternReadError(
            f"{len(tail):,} bytes of data follow the {scan.n_points:,} points the header "
            "declares; the point count is wrong or the file is corrupt",
            source=view.source,
            field="range 1 point count",
        )


def _check_range_count(view: BinaryView, n_ranges: int) -> None:
    if n_ranges == 0:
        raise _corrupt(view, "the header declares no ranges")
    if n_ranges > _MAX_RANGES:
        raise _corrupt(view, f"the header declares {n_ranges:,} ranges")


def _put(metadata: dict[str, str], key: str, value: str) -> None:
    if value:
        metadata[key] = value


def _corrupt(view: BinaryView, what: str) -> PatternReadError:
    return PatternReadError(f"corrupt Bruker RAW header: {what}", source=view.source)
