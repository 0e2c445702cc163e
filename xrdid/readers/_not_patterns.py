"""Files that are not a pattern xrdid reads but are uploaded as one: a 2D
detector frame, an HDF5/NeXus container, a picture or report of a scan, an
old Office document, a vendor binary without a maintained reader.
Recognised by their magic bytes, so the answer says what the file is and
what to upload instead, rather than "binary garbage" (or, for a big-endian
TIFF, whose second byte is an SPC version byte, a Raman spectrum)."""

from __future__ import annotations

from xrdid.errors import UnsupportedFormatError

_INTEGRATE = (
    "integrate it to a 1D pattern (pyFAI, Dioptas, GSAS-II, DIFFRAC.EVA) and upload the "
    "2θ or q text it writes"
)
_UPLOAD_DATA = "upload the data file the instrument wrote (.xy, .xrdml, .raw…) instead"

# (magic at offset 0, what the file is, what to do)
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"II*\x00", "a TIFF image (a 2D detector frame?), not a pattern", _INTEGRATE),
    (b"MM\x00*", "a TIFF image (a 2D detector frame?), not a pattern", _INTEGRATE),
    (b"###CBF", "a CBF detector image, not a pattern", _INTEGRATE),
    (
        b"RAW_1.",
        "a STOE WinXPOW .raw, a binary format xrdid does not read",
        "export the scan from WinXPOW as .xy text and upload that",
    ),
    (
        b"\x89HDF\r\n\x1a\n",
        "an HDF5/NeXus container, not a pattern",
        "save the integrated pattern it holds as 2θ (or q) text and upload that",
    ),
    (b"\x89PNG\r\n\x1a\n", "a PNG picture, not a pattern", _UPLOAD_DATA),
    (b"\xff\xd8\xff", "a JPEG picture, not a pattern", _UPLOAD_DATA),
    (b"%PDF", "a PDF document, not a pattern", _UPLOAD_DATA),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an old Office document (.xls/.doc), not a pattern",
        "save the sheet of 2θ and intensity as CSV and upload that",
    ),
)


def refuse_non_pattern(data: bytes, source: str | None) -> None:
    """Raise UnsupportedFormatError, saying what the file is, when ``data``
    is one of the files above."""
    for magic, kind, advice in _MAGIC:
        if data.startswith(magic):
            raise UnsupportedFormatError(f"the file is {kind}: {advice}", source=source)
    # Text headers, then pixels: ESRF EDF (a brace-delimited header naming
    # the frame) and Bruker .sfrm/.gfrm (80-character "KEY    :" records).
    head = data[:1024]
    frame: str | None = None
    if data.startswith(b"{") and b"HeaderID" in head:
        frame = "an ESRF EDF detector image, not a pattern"
    elif data.startswith(b"FORMAT :") and b"HDRBLKS:" in head:
        frame = "a Bruker area-detector frame (.sfrm/.gfrm), not a pattern"
    if frame is not None:
        raise UnsupportedFormatError(f"the file is {frame}: {_INTEGRATE}", source=source)
