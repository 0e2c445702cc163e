"""PANalytical/Malvern .xrdml (XML, schema versions 1.0–2.x).

Layout read here (by local name, since the namespace carries the version)::

    xrdMeasurements
      sample/id
      xrdMeasurement
        usedWavelength: kAlpha1, kAlpha2, ratioKAlpha2KAlpha1
        incidentBeamPath/xRayTube/anodeMaterial
        scan (one or more)
          dataPoints
            positions axis="2Theta": startPosition/endPosition | listPositions
            beamAttenuationFactors (optional)
            commonCountingTime | countingTimes (optional)
            intensities | counts

Counts are kept as measured (not divided by counting time), but multiplied by
``beamAttenuationFactors`` when present, since those undo an attenuator that
was in the beam for strong peaks. A file with several scans gives the first;
``metadata["scans"]`` says so.
"""

from __future__ import annotations

import math
from xml.etree.ElementTree import Element

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import PatternReadError
from xrdid.pattern import Pattern, make_pattern
from xrdid.readers._common import build_wavelength, first_of
from xrdid.readers._numbers import is_not_finite, parse_float, parse_floats
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
from xrdid.wavelengths import Wavelength

# Axis names meaning the detector angle 2θ in XRDML files.
_TWO_THETA_AXES = ("2theta", "2theta-omega", "omega-2theta", "2theta/omega")


def read_xrdml(data: bytes, source: str | None = None) -> Pattern:
    """Read the first 2θ scan of an XRDML document."""
    root = parse_xml(data, source, what="XRDML")
    if local_name(root.tag) != "xrdMeasurements":
        raise PatternReadError(
            f"the XML root is <{local_name(root.tag)}>, not <xrdMeasurements>; this is "
            "not a PANalytical XRDML file",
            source=source,
        )
    scans = list(descendants(root, "scan"))
    if not scans:
        raise PatternReadError(
            "the XRDML file holds no <scan> element", source=source, field="scan"
        )
    scan = scans[0]
    metadata: dict[str, str] = {"format": "xrdml"}
    namespace = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    if namespace:
        metadata["schema"] = namespace
    if len(scans) > 1:
        first_of(metadata, "scans", len(scans), "scans")
    for key in ("scanAxis", "mode"):
        value = scan.get(key)
        if value:
            metadata[f"scan_{key}"] = value

    sample = child(root, "sample")
    sample_id = text_of(child(sample, "id")) if sample is not None else ""
    if sample_id:
        metadata["sample_id"] = sample_id
    measurement = _measurement_of(root, scan)
    wavelength = _wavelength(measurement, metadata)

    points = child(scan, "dataPoints")
    if points is None:
        raise PatternReadError(
            "the first <scan> has no <dataPoints>", source=source, field="dataPoints"
        )
    intensity_element = child(points, "intensities")
    if intensity_element is None:
        intensity_element = child(points, "counts")
    if intensity_element is None:
        raise PatternReadError(
            "<dataPoints> holds neither <intensities> nor <counts>",
            source=source,
            field="intensities",
        )
    intensity = _numbers(intensity_element, source)
    metadata["intensity_unit"] = intensity_element.get("unit", "counts")
    two_theta = _two_theta(points, intensity.size, source)

    attenuation = child(points, "beamAttenuationFactors")
    if attenuation is not None and text_of(attenuation):
        factors = _numbers(attenuation, source)
        if factors.size != intensity.size:
            raise PatternReadError(
                f"{factors.size} beam attenuation factors for {intensity.size} intensities",
                source=source,
                field="beamAttenuationFactors",
            )
        if np.any(factors != 1.0):
            intensity = intensity * factors
            metadata["attenuation"] = "beamAttenuationFactors applied"
    counting_time = text_of(child(points, "commonCountingTime"))
    if counting_time:
        metadata["counting_time_s"] = counting_time
    return make_pattern(
        two_theta, intensity, wavelength=wavelength, metadata=metadata, source=source
    )


def _measurement_of(root: Element, scan: Element) -> Element:
    """The <xrdMeasurement> holding ``scan`` (the wavelength lives there)."""
    for measurement in descendants(root, "xrdMeasurement"):
        if any(item is scan for item in measurement.iter()):
            return measurement
    return root


def _wavelength(measurement: Element, metadata: dict[str, str]) -> Wavelength | None:
    used = first_descendant(measurement, "usedWavelength")
    anode = text_of(first_descendant(measurement, "anodeMaterial")) or None
    if anode:
        metadata["anode"] = anode
    if used is None:
        return None
    intended = used.get("intended")
    if intended:
        metadata["wavelength_intended"] = intended
    kalpha1 = parse_float(text_of(child(used, "kAlpha1")))
    kalpha2 = parse_float(text_of(child(used, "kAlpha2")))
    ratio = parse_float(text_of(child(used, "ratioKAlpha2KAlpha1")))
    return build_wavelength(kalpha1, kalpha2, ratio, anode, metadata=metadata)


def _two_theta(points: Element, n_points: int, source: str | None) -> NDArray[np.float64]:
    positions = [
        element
        for element in children(points, "positions")
        if (attribute(element, "axis") or "").strip().lower() in _TWO_THETA_AXES
    ]
    if not positions:
        axes = [attribute(element, "axis") or "?" for element in children(points, "positions")]
        raise PatternReadError(
            f"the scan has no 2Theta positions (axes: {', '.join(axes) or 'none'}); only "
            "2θ scans are powder patterns",
            source=source,
            field="positions",
        )
    element = positions[0]
    unit = (attribute(element, "unit") or "deg").strip().lower()
    if unit not in ("deg", "degree", "degrees", "°"):
        raise PatternReadError(
            f"2Theta positions are in {unit!r}, not degrees", source=source, field="positions"
        )
    listed = child(element, "listPositions")
    if listed is not None:
        values = _numbers(listed, source)
        if values.size != n_points:
            raise PatternReadError(
                f"{values.size} listed 2θ positions for {n_points} intensities",
                source=source,
                field="listPositions",
            )
        return values
    start = parse_float(text_of(child(element, "startPosition")))
    end = parse_float(text_of(child(element, "endPosition")))
    if start is None or end is None or not (math.isfinite(start) and math.isfinite(end)):
        raise PatternReadError(
            "2Theta positions give neither listPositions nor numeric startPosition/endPosition",
            source=source,
            field="startPosition",
        )
    if n_points < 2:
        return np.array([start])
    # XRDML puts the first and last point exactly at start and end.
    return np.linspace(start, end, n_points)


def _numbers(element: Element, source: str | None) -> NDArray[np.float64]:
    tokens = text_of(element).split()
    fast = parse_floats(tokens)
    if fast is not None:
        return fast
    name = local_name(element.tag)
    values = np.empty(len(tokens), dtype=np.float64)
    for index, token in enumerate(tokens):
        value = parse_float(token)
        if value is None:
            kind = "not a finite number" if is_not_finite(token) else "not a number"
            raise PatternReadError(
                f"value {index + 1} of <{name}> is {token[:30]!r}, {kind}",
                source=source,
                field=name,
            )
        values[index] = value
    return values
