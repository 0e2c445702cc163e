"""Bruker .brml (DIFFRAC.SUITE): a zip of XML documents.

``Experiment0/DataContainer.xml`` lists the raw-data members
(``RawDataReferenceList``); each ``RawData<N>.xml`` holds ``DataRoute``
elements whose ``<Datum>`` rows are comma-separated values. Which value is
which is declared by ``DataViews``: a ``VaryingRawDataView`` spans the
motor positions (its ``FieldDefinitions`` name them, 2θ among them) and a
``RecordedRawDataView`` the detector counts. Columns are always located from
those views, never assumed; when a file has no views, 2θ falls back to the
``ScanAxisInfo`` Start/Increment of the TwoTheta axis and the count to the
last value of each row.

Counts are kept as recorded. The wavelength comes from the tube elements
(``WaveLengthAlpha1`` …, ``Value`` attributes) wherever they appear in the
archive's XML. The first measured route of the first raw-data member is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import PatternReadError
from xrdid.pattern import Pattern, make_pattern
from xrdid.readers._common import build_wavelength, first_of, regular_grid
from xrdid.readers._numbers import is_not_finite, parse_float
from xrdid.readers._xml import (
    attribute,
    child,
    children,
    descendants,
    first_descendant,
    local_name,
    parse_xml,
    text_of,
)
from xrdid.readers._zip import SafeZip
from xrdid.wavelengths import Wavelength

DEFAULT_RAW_DATA = "Experiment0/RawData0.xml"
_TWO_THETA_AXIS_IDS = ("twotheta", "2theta")
_MEASURED_ROUTE_FLAGS = ("final", "measured")


@dataclass(frozen=True)
class _Columns:
    """Where 2θ and counts sit in each Datum row (0-based), if declared."""

    two_theta: int | None
    counts: int | None


def read_brml(data: bytes, source: str | None = None, *, max_member_bytes: int) -> Pattern:
    """Read the first measured scan of a Bruker .brml archive."""
    archive = SafeZip(data, source, max_member_bytes=max_member_bytes)
    members = _raw_data_members(archive, source)
    metadata: dict[str, str] = {"format": "brml", "raw_data": members[0]}
    if len(members) > 1:
        first_of(metadata, "scans", len(members), "raw-data members")
    root = parse_xml(archive.read(members[0]), source, what=members[0])
    routes = list(descendants(root, "DataRoute"))
    if not routes:
        raise PatternReadError(
            f"{members[0]} holds no <DataRoute>", source=source, field="DataRoute"
        )
    measured = [
        route
        for route in routes
        if (route.get("RouteFlag") or "").strip().lower() in _MEASURED_ROUTE_FLAGS
    ]
    route = (measured or routes)[0]
    if len(routes) > 1:
        metadata["routes"] = f"first {'measured ' if measured else ''}of {len(routes)} routes read"

    _scan_metadata(root, route, metadata)
    rows = _datum_rows(route, source)
    columns = _locate_columns(route, source)
    width = len(rows[0])
    if columns.counts is not None and columns.counts >= width:
        raise PatternReadError(
            f"the counts view points at value {columns.counts + 1} but Datum rows hold {width}",
            source=source,
            field="RecordedRawDataView",
        )
    counts = rows[:, columns.counts if columns.counts is not None else width - 1]
    if columns.two_theta is not None:
        if columns.two_theta >= width:
            raise PatternReadError(
                f"the 2θ view points at value {columns.two_theta + 1} but Datum rows hold {width}",
                source=source,
                field="VaryingRawDataView",
            )
        two_theta = rows[:, columns.two_theta]
    else:
        two_theta = _grid_from_scan_axis(route, counts.size, source)
        metadata["two_theta_from"] = "ScanAxisInfo start/increment"
    wavelength = _wavelength(archive, root, metadata, source)
    return make_pattern(two_theta, counts, wavelength=wavelength, metadata=metadata, source=source)


def _raw_data_members(archive: SafeZip, source: str | None) -> list[str]:
    container = archive.find("Experiment0/DataContainer.xml")
    listed: list[str] = []
    if container is not None:
        root = parse_xml(archive.read(container), source, what=container)
        reference_list = first_descendant(root, "RawDataReferenceList")
        if reference_list is not None:
            for item in reference_list:
                name = archive.find(text_of(item))
                if name is not None:
                    listed.append(name)
    if listed:
        return listed
    fallback = archive.find(DEFAULT_RAW_DATA)
    if fallback is not None:
        return [fallback]
    others = sorted(
        name
        for name in archive.names
        if name.replace("\\", "/").rsplit("/", 1)[-1].lower().startswith("rawdata")
        and name.lower().endswith(".xml")
    )
    if others:
        return others
    raise PatternReadError(
        "the zip has no Experiment0/RawData*.xml member, so it is not a Bruker .brml",
        source=source,
    )


def _datum_rows(route: Element, source: str | None) -> NDArray[np.float64]:
    data = children(route, "Datum")
    if not data:
        raise PatternReadError("the scan holds no <Datum> rows", source=source, field="Datum")
    first = text_of(data[0]).split(",")
    rows = np.empty((len(data), len(first)), dtype=np.float64)
    for index, datum in enumerate(data):
        values = text_of(datum).split(",")
        if len(values) != len(first):
            raise PatternReadError(
                f"Datum row {index + 1} has {len(values)} values, the first has {len(first)}",
                source=source,
                field="Datum",
            )
        for column, value in enumerate(values):
            token = value.strip()
            number = parse_float(token)
            if number is None:
                kind = "not a finite number" if is_not_finite(token) else "not a number"
                raise PatternReadError(
                    f"value {column + 1} of Datum row {index + 1} is {token[:30]!r}, {kind}",
                    source=source,
                    field="Datum",
                )
            rows[index, column] = number
    return rows


def _locate_columns(route: Element, source: str | None) -> _Columns:
    views = first_descendant(route, "DataViews")
    if views is None:
        return _Columns(None, None)
    two_theta: int | None = None
    counts: int | None = None
    for view in children(views, "RawDataView"):
        kind = (attribute(view, "type") or "").rsplit(":", 1)[-1]
        start = _view_int(view, "Start", source)
        length = _view_int(view, "Length", source)
        if kind == "VaryingRawDataView":
            for offset, definition in enumerate(descendants(view, "FieldDefinitions")):
                names = (definition.get("AxisId") or "", definition.get("FieldName") or "")
                if any(name.strip().lower() in _TWO_THETA_AXIS_IDS for name in names):
                    two_theta = start + offset
                    break
        elif kind == "RecordedRawDataView" and counts is None:
            if length > 1:
                raise PatternReadError(
                    f"the detector view spans {length} values per step (a 2D/1D frame), "
                    "not one count; only 0D-integrated scans are read",
                    source=source,
                    field="RecordedRawDataView",
                )
            counts = start
    return _Columns(two_theta, counts)


def _view_int(view: Element, name: str, source: str | None) -> int:
    text = (view.get(name) or "0").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise PatternReadError(
            f"RawDataView {name}={text[:20]!r} is not a column index",
            source=source,
            field="RawDataView",
        )
    return int(text)


def _grid_from_scan_axis(route: Element, n_points: int, source: str | None) -> NDArray[np.float64]:
    for axis in descendants(route, "ScanAxisInfo"):
        names = (axis.get("AxisId") or "", axis.get("AxisName") or "")
        if any(name.strip().lower() in _TWO_THETA_AXIS_IDS for name in names):
            start = parse_float(text_of(child(axis, "Start")))
            step = parse_float(text_of(child(axis, "Increment")))
            if start is None or step is None:
                break
            return regular_grid(start, step, n_points, source, "ScanAxisInfo")
    raise PatternReadError(
        "neither a DataView nor a TwoTheta ScanAxisInfo (Start, Increment) locates 2θ",
        source=source,
        field="ScanAxisInfo",
    )


def _scan_metadata(root: Element, route: Element, metadata: dict[str, str]) -> None:
    for item in descendants(root, "InfoItem"):
        if item.get("Name") == "SampleName" and item.get("Value"):
            metadata["sample_id"] = item.get("Value", "")[:200]
            break
    info = first_descendant(route, "ScanInformation")
    if info is not None:
        name = info.get("ScanName") or info.get("VisibleName")
        if name:
            metadata["scan_name"] = name[:200]
        time_per_step = text_of(child(info, "TimePerStep"))
        if time_per_step:
            metadata["time_per_step_s"] = time_per_step[:30]
    started = text_of(first_descendant(root, "TimeStampStarted"))
    if started:
        metadata["measured"] = started[:60]


def _wavelength(
    archive: SafeZip, root: Element, metadata: dict[str, str], source: str | None
) -> Wavelength | None:
    found = _tube_fields(root)
    if "WaveLengthAlpha1" not in found:
        # DIFFRAC.SUITE also keeps the tube in MeasurementContainer.xml.
        for name in archive.names:
            if name.replace("\\", "/").rsplit("/", 1)[-1] == "MeasurementContainer.xml":
                found = _tube_fields(parse_xml(archive.read(name), source, what=name))
                break
    anode = found.get("TubeMaterial")
    if anode:
        metadata["anode"] = anode
    return build_wavelength(
        parse_float(found.get("WaveLengthAlpha1", "")),
        parse_float(found.get("WaveLengthAlpha2", "")),
        parse_float(found.get("WaveLengthRatio", "")),
        anode,
        metadata=metadata,
    )


def _tube_fields(root: Element) -> dict[str, str]:
    wanted = ("WaveLengthAlpha1", "WaveLengthAlpha2", "WaveLengthRatio", "TubeMaterial")
    found: dict[str, str] = {}
    for element in root.iter():
        name = local_name(element.tag)
        if name in wanted and name not in found:
            value = element.get("Value") or text_of(element)
            if value:
                found[name] = value.strip()
    return found
