"""Which reader a file needs, judged by its content.

Content decides; the extension only chooses between equally plausible
readings and sharpens error messages. A ``.xy`` that is really XRDML reads
as XRDML, and a pattern with no or an unknown extension still reads.
"""

from __future__ import annotations

import re

from xrdid.errors import UnsupportedFormatError
from xrdid.readers import bruker_raw, gsas, philips_rd
from xrdid.readers._not_patterns import refuse_non_pattern
from xrdid.readers._source import RawInput
from xrdid.readers._textdecode import decode_head, looks_binary
from xrdid.readers._zip import ZIP_MAGIC, SafeZip
from xrdid.readers.bruker_uxd import is_uxd
from xrdid.readers.chiplot import is_chiplot
from xrdid.readers.jcamp_dx import is_jcamp
from xrdid.readers.philips_udf import is_udf
from xrdid.readers.raman_text import is_rruff
from xrdid.readers.rigaku_asc import is_rigaku_asc
from xrdid.readers.rigaku_rasx import PROFILE_MEMBER
from xrdid.readers.sietronics_cpi import MAGIC as CPI_MAGIC
from xrdid.readers.spc import looks_like_spc
from xrdid.readers.wdf import WDF_MAGIC

# Bytes inspected to classify text content.
_HEAD_BYTES = 64 * 1024

# The format each extension promises (used only for hints).
EXTENSION_FORMATS = {
    ".xy": "text",
    ".xye": "text",
    ".dat": "text",
    ".txt": "text",
    ".csv": "text",
    ".asc": "rigaku_asc",
    ".xrdml": "xrdml",
    ".raw": "bruker_raw",
    ".uxd": "bruker_uxd",
    ".udf": "philips_udf",
    ".rd": "philips_rd",
    ".sd": "philips_rd",
    ".cpi": "sietronics_cpi",
    ".chi": "chiplot",
    ".brml": "brml",
    ".ras": "rigaku_ras",
    ".rasx": "rigaku_rasx",
    ".gsa": "gsas",
    ".gss": "gsas",
    ".gsas": "gsas",
    ".fxye": "gsas",
    ".cif": "pdcif",
    ".jdx": "jcamp",
    ".dx": "jcamp",
    ".jcamp": "jcamp",
    ".spc": "spc",
    ".wdf": "wdf",
}

# Formats that hold a Raman spectrum; every other one holds an XRD pattern,
# but for "text", whose technique its header and axis tell.
RAMAN_FORMATS = frozenset({"rruff", "jcamp", "spc", "wdf"})

_CIF_BLOCK = re.compile(r"(?im)^\s*data_\S*")
_CIF_HINTS = ("_pd_", "_cell_", "_atom_", "_symmetry_", "_space_group", "_diffrn_")


def detect_format(raw: RawInput, *, max_member_bytes: int) -> str:
    """The reader key for ``raw``: "text", "chiplot", "xrdml", "bruker_raw",
    "bruker_uxd", "philips_udf", "philips_rd", "sietronics_cpi", "brml", "rigaku_ras", "rigaku_asc", "rigaku_rasx", "gsas",
    "pdcif" (XRD) or "rruff", "jcamp", "spc", "wdf" (Raman)."""
    data = raw.data
    refuse_non_pattern(data, raw.name)
    if data.startswith(bruker_raw.SIGNATURES):
        return "bruker_raw"
    if data.startswith(philips_rd.SIGNATURES):
        return "philips_rd"
    if data.startswith(WDF_MAGIC):
        return "wdf"
    if data.startswith(ZIP_MAGIC):
        return _zip_format(raw, max_member_bytes)
    # After the zip test: "PK", a zip's magic, has SPC's version byte 0x4B too.
    if looks_like_spc(data) and looks_binary(data):
        return "spc"
    try:
        head = decode_head(data, raw.name, _HEAD_BYTES).lstrip("\ufeff \t\r\n")
    except UnsupportedFormatError as exc:
        expected = EXTENSION_FORMATS.get(raw.extension)
        if expected is None:
            raise
        raise UnsupportedFormatError(
            f"{exc.reason} (the name says {raw.extension}, but the content does not match "
            "that format)",
            source=raw.name,
        ) from exc
    if head.startswith("<"):
        return _xml_format(head, raw)
    if is_jcamp(head):
        return "jcamp"
    if is_rruff(head):
        return "rruff"
    lines = head.splitlines()
    if any(line.lstrip().upper().startswith("*RAS_") for line in lines[:5]):
        return "rigaku_ras"
    if is_rigaku_asc(lines):
        return "rigaku_asc"
    if _CIF_BLOCK.search(head) and (
        raw.extension == ".cif" or any(hint in head for hint in _CIF_HINTS)
    ):
        return "pdcif"
    if _is_gsas(lines):
        return "gsas"
    if is_uxd(lines):
        return "bruker_uxd"
    if is_chiplot(lines):
        return "chiplot"
    if is_udf(lines):
        return "philips_udf"
    if lines and lines[0].strip().upper().startswith(CPI_MAGIC):
        return "sietronics_cpi"
    return "text"


def _is_gsas(lines: list[str]) -> bool:
    """Title, optional instrument-parameter/comment lines, then a BANK line."""
    for line in lines[1:60]:
        stripped = line.strip()
        if gsas.BANK_LINE.match(stripped):
            return True
        if (
            not stripped
            or stripped.startswith("#")
            or stripped.lower().startswith("instrument parameter")
        ):
            continue
        return False
    return False


def _xml_format(head: str, raw: RawInput) -> str:
    if "xrdMeasurements" in head[:4096]:
        return "xrdml"
    root = re.search(r"<([A-Za-z_][\w.:-]*)", head.split("?>", 1)[-1] if "?>" in head else head)
    name = root.group(1) if root else "?"
    hint = ""
    if "RawData" in name:
        hint = "; it looks like one member of a Bruker .brml archive — upload the whole .brml"
    elif "MeasurementConditions" in name or "MesurementConditions" in name:
        hint = "; it looks like one member of a Rigaku .rasx archive — upload the whole .rasx"
    raise UnsupportedFormatError(
        f"XML document with root <{name}> is not a pattern format xrdid reads "
        f"(XRDML's root is <xrdMeasurements>){hint}",
        source=raw.name,
    )


def _zip_format(raw: RawInput, max_member_bytes: int) -> str:
    archive = SafeZip(raw.data, raw.name, max_member_bytes=max_member_bytes)
    names = [name.replace("\\", "/") for name in archive.names]
    lowered = [name.lower() for name in names]
    if any(
        name.rsplit("/", 1)[-1].startswith("rawdata") and name.endswith(".xml") for name in lowered
    ) or any(name.endswith("datacontainer.xml") for name in lowered):
        return "brml"
    if any(PROFILE_MEMBER.search(name) for name in names):
        return "rigaku_rasx"
    hint = ""
    if any(name.startswith("xl/") for name in lowered):
        hint = "; it is an Excel workbook — save the sheet as CSV"
    elif any(name.startswith("word/") for name in lowered):
        hint = "; it is a Word document"
    shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
    raise UnsupportedFormatError(
        f"zip archive that is neither a Bruker .brml nor a Rigaku .rasx "
        f"(members: {shown or 'none'}){hint}",
        source=raw.name,
    )
