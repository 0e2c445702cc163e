"""Rigaku .rasx (SmartLab Studio II): a zip of profiles and their conditions.

Members read: ``Data0/Profile0.txt`` (tab-separated 2θ, intensity,
attenuator coefficient; UTF-8 with BOM) and ``Data0/MesurementConditions0.xml``
(sic — Rigaku's spelling; the correct spelling is accepted too) for the scan
axis, sample name and X-ray target/wavelengths. The first profile is read.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from xrdid.errors import PatternReadError
from xrdid.pattern import Pattern, make_pattern
from xrdid.readers._columns import parse_columns
from xrdid.readers._common import first_of
from xrdid.readers._rigaku import profile_arrays, rigaku_wavelength, take_header
from xrdid.readers._textdecode import decode_text
from xrdid.readers._xml import local_name, parse_xml
from xrdid.readers._zip import SafeZip
from xrdid.wavelengths import Wavelength

PROFILE_MEMBER = re.compile(r"(?i)(?:^|/)Data([0-9]{1,6})/Profile([0-9]{1,6})\.txt$")
_CONDITIONS = ("MesurementConditions", "MeasurementConditions")


def read_rasx(data: bytes, source: str | None = None, *, max_member_bytes: int) -> Pattern:
    """Read the first profile of a Rigaku .rasx archive."""
    archive = SafeZip(data, source, max_member_bytes=max_member_bytes)
    profiles = sorted(
        (
            (int(match.group(1)), int(match.group(2)), name)
            for name in archive.names
            if (match := PROFILE_MEMBER.search(name.replace("\\", "/")))
        ),
    )
    if not profiles:
        raise PatternReadError(
            "the zip holds no Data*/Profile*.txt member, so it is not a Rigaku .rasx",
            source=source,
        )
    data_index, profile_index, profile_name = profiles[0]
    metadata: dict[str, str] = {"format": "rigaku_rasx", "profile": profile_name}
    if len(profiles) > 1:
        first_of(metadata, "scans", len(profiles), "profiles")

    wavelength = None
    folder = profile_name.replace("\\", "/").rsplit("/", 1)[0]
    for spelling in _CONDITIONS:
        member = archive.find(f"{folder}/{spelling}{profile_index}.xml")
        if member is not None:
            conditions = parse_xml(archive.read(member), source, what=member)
            wavelength = _read_conditions(conditions, metadata, source)
            break

    member_source = f"{source}:{profile_name}" if source else profile_name
    text = decode_text(archive.read(profile_name), member_source)
    table = parse_columns(text, member_source)
    two_theta, intensity = profile_arrays(table, metadata, member_source)
    return make_pattern(
        two_theta, intensity, wavelength=wavelength, metadata=metadata, source=source
    )


def _read_conditions(
    root: Element, metadata: dict[str, str], source: str | None
) -> Wavelength | None:
    fields: dict[str, str] = {}
    for element in root.iter():
        name = local_name(element.tag).lower()
        if name and element.text and element.text.strip() and name not in fields:
            fields[name] = element.text.strip()
    labels = {"samplename": "sample_id", "targetname": "anode", "intensityunit": "intensity_unit"}
    take_header(fields, labels, "axisname", metadata, source, "AxisName")
    return rigaku_wavelength(
        fields.get("targetname"),
        fields.get("wavelengthkalpha1"),
        fields.get("wavelengthkalpha2"),
        fields.get("wavelengthkbeta"),
        fields.get("wavelengthtype") or fields.get("xraywavelengthtype"),
        metadata,
    )
