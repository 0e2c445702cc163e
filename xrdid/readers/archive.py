"""Zip archives of scans (a batch sent as one file), unpacked in memory and
bounded: member count, each member's size, the total, the compression
ratio (:class:`~xrdid.readers._zip.SafeZip`), and member paths that could
point outside a folder (absolute, drive letters, ``..``) refuse the archive.

Bruker .brml and Rigaku .rasx files are zips too; they are scans, not
archives (:func:`is_scan_archive` tells them apart).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from xrdid.errors import PatternReadError, UnsupportedFormatError
from xrdid.readers._detect import _zip_format
from xrdid.readers._source import RawInput
from xrdid.readers._zip import ZIP_MAGIC, SafeZip

__all__ = ["ScanFile", "is_scan_archive", "unpack_scans"]

ScanFile = tuple[str, bytes]  # (name, content)

_DRIVE = re.compile(r"^[A-Za-z]:")


def is_scan_archive(data: bytes, filename: str | None) -> bool:
    """A zip that is not itself a pattern file (.brml, .rasx)."""
    if not data.startswith(ZIP_MAGIC):
        return False
    try:
        _zip_format_of(data, filename)
    except UnsupportedFormatError:
        return True
    except PatternReadError:
        return False  # a broken .brml/.rasx: the reader says what is wrong with it
    return False


def _zip_format_of(data: bytes, filename: str | None) -> str:
    return _zip_format(RawInput(data, filename), max_member_bytes=len(data) + 1)


def _is_junk(name: str) -> bool:
    """Folders and the bookkeeping files archivers add (macOS, Windows)."""
    path = PurePosixPath(name)
    return (
        name.endswith("/")
        or path.parts[:1] == ("__MACOSX",)
        or path.name.startswith(".")
        or path.name.lower() in ("thumbs.db", "desktop.ini")
    )


def _check_path(name: str, source: str | None) -> None:
    parts = PurePosixPath(name).parts
    if name.startswith("/") or _DRIVE.match(name) or ".." in parts:
        raise PatternReadError(
            f"zip member {name!r} has an absolute path or climbs out of its folder ('..'); "
            "make the archive from the scans' folder (e.g. zip -r scans.zip scans/)",
            source=source,
            field=name,
        )


def unpack_scans(
    data: bytes,
    filename: str | None,
    *,
    max_members: int,
    max_member_bytes: int,
    max_total_bytes: int,
) -> list[ScanFile]:
    """The files of a zip of scans, in archive order, without folders and
    archiver junk. PatternReadError when the archive is unreadable, empty,
    has too many or too large members, or unsafe paths."""
    archive = SafeZip(data, filename, max_member_bytes=max_member_bytes)
    names = [n.replace("\\", "/") for n in archive.names]
    for name in names:
        _check_path(name, filename)
    members = [(original, name) for original, name in zip(archive.names, names, strict=True)]
    members = [(original, name) for original, name in members if not _is_junk(name)]
    if not members:
        raise PatternReadError("the zip holds no files; put the scans in it", source=filename)
    if len(members) > max_members:
        raise PatternReadError(
            f"the zip holds {len(members)} files, more than the {max_members} a job takes "
            "(XRDID_JOB_MAX_FILES); split it into several jobs",
            source=filename,
        )
    out: list[ScanFile] = []
    total = 0
    for original, name in members:
        content = archive.read(original)
        total += len(content)
        if total > max_total_bytes:
            raise PatternReadError(
                f"the zip's files add up to more than {max_total_bytes:,} bytes unpacked; "
                "split it into several jobs",
                source=filename,
            )
        out.append((name, content))
    return out
