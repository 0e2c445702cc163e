"""Bytes → text for the text-based formats, and the binary/text verdict.

Instrument software writes UTF-8, Windows code pages (latin-1 °, µ), UTF-16
with a BOM (Excel "Unicode text") and, for Rigaku, Shift-JIS. Numbers are
ASCII in all of them, so a wrong guess only garbles comments, never data.
"""

from __future__ import annotations

import codecs
import re

from xrdid.errors import UnsupportedFormatError

# How much of the file the binary test looks at: enough to see past a header.
_SNIFF_BYTES = 64 * 1024

# Control characters no text export contains (NUL, bell, backspace…); tab,
# newline, vertical tab, form feed, carriage return and DOS EOF (0x1A) are fine.
_CONTROL = frozenset([*range(0x00, 0x09), *range(0x0E, 0x1A), *range(0x1B, 0x20), 0x7F])
# The same set as one byte class, so the scan runs in C, not a Python loop.
_CONTROL_BYTE = re.compile(b"[" + b"".join(re.escape(bytes([b])) for b in sorted(_CONTROL)) + b"]")

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_text(data: bytes, source: str | None, *, fallbacks: tuple[str, ...] = ()) -> str:
    """Decode a text file, or raise :class:`UnsupportedFormatError` if it is binary.

    Order: BOM, BOM-less UTF-16 (every other byte NUL), strict UTF-8, the
    ``fallbacks`` (e.g. ``("cp932",)`` for Rigaku), then latin-1, which maps
    every byte and so always succeeds.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _strict(data[len(bom) :], encoding, source)
    utf16 = _bomless_utf16(data)
    if utf16:
        return _strict(data, utf16, source)
    _reject_binary(data, source)
    for encoding in ("utf-8", *fallbacks):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def decode_head(data: bytes, source: str | None, size: int) -> str:
    """The first ``size`` bytes as text, for sniffing the format.

    Like :func:`decode_text` (and raising the same error for binary data), but
    a multi-byte character cut at the end of the head is replaced, not fatal.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) : size].decode(encoding, errors="replace")
    utf16 = _bomless_utf16(data)
    if utf16:
        return data[:size].decode(utf16, errors="replace")
    _reject_binary(data, source)
    return data[:size].decode("utf-8", errors="replace")


def looks_binary(data: bytes) -> bool:
    """Whether the head of ``data`` holds control bytes no text file has."""
    if any(data.startswith(bom) for bom, _ in _BOMS) or _bomless_utf16(data):
        return False
    return _binary_offset(data) is not None


def _strict(data: bytes, encoding: str, source: str | None) -> str:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UnsupportedFormatError(
            f"the file announces {encoding.upper()} (byte-order mark) but byte "
            f"{exc.start} is not valid {encoding.upper()}; re-save it as UTF-8 text",
            source=source,
        ) from exc
    if "\x00" in text:
        raise UnsupportedFormatError(
            "the file holds NUL characters after decoding; it is binary, not text",
            source=source,
        )
    return text


def _bomless_utf16(data: bytes) -> str | None:
    """'utf-16-le'/'-be' when the head is ASCII interleaved with NULs."""
    head = data[:_SNIFF_BYTES]
    if len(head) < 8:
        return None
    head = head[: len(head) // 2 * 2]
    even, odd = head[0::2], head[1::2]
    # Real UTF-16 text of digits and Latin letters has the high byte 0 nearly
    # everywhere; demanding 95 % keeps random binary out.
    if odd.count(0) >= 0.95 * len(odd) and even.count(0) == 0:
        return "utf-16-le"
    if even.count(0) >= 0.95 * len(even) and odd.count(0) == 0:
        return "utf-16-be"
    return None


def _binary_offset(data: bytes) -> int | None:
    found = _CONTROL_BYTE.search(data, 0, _SNIFF_BYTES)
    return None if found is None else found.start()


def _reject_binary(data: bytes, source: str | None) -> None:
    offset = _binary_offset(data)
    if offset is not None:
        raise UnsupportedFormatError(
            f"the file is binary (control byte 0x{data[offset]:02x} at offset {offset}) "
            "and not a binary format xrdid reads (Bruker .raw, Philips .rd/.sd, a .brml or "
            ".rasx zip; Raman: SPC, WDF); export the pattern as .xy text",
            source=source,
        )
