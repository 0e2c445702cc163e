"""Zips of scans: unpacked in memory, bounded, paths checked."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from xrdid.errors import PatternReadError
from xrdid.readers.archive import is_scan_archive, unpack_scans

TEST_PATTERNS = Path(__file__).parent / "files" / "patterns"
LIMITS = {"max_members": 5, "max_member_bytes": 10_000, "max_total_bytes": 20_000}


def zipped(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def test_members_in_order_without_folders_and_junk() -> None:
    data = zipped(
        [("run/b.xy", b"1 2\n"), ("run/", b""), ("__MACOSX/run/._b.xy", b"x"),
         ("run/.DS_Store", b"x"), ("run/a.xrdml", b"<x/>"), ("Thumbs.db", b"x")]
    )  # fmt: skip
    assert is_scan_archive(data, "run.zip")
    assert unpack_scans(data, "run.zip", **LIMITS) == [
        ("run/b.xy", b"1 2\n"),
        ("run/a.xrdml", b"<x/>"),
    ]


@pytest.mark.parametrize("name", ["d5000_1.brml", "d5000_1.rasx"])
def test_pattern_containers_are_scans(name: str) -> None:
    assert not is_scan_archive((TEST_PATTERNS / name).read_bytes(), name)


def test_text_is_no_archive() -> None:
    assert not is_scan_archive(b"10 20\n", "a.xy")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("../../etc/passwd", b"x")], "climbs out"),
        ([("C:\\scans\\a.xy", b"x")], "absolute path"),
        ([(f"{i}.xy", b"x") for i in range(6)], "more than the 5"),
        ([("a.xy", b"1" * 12_000)], "limit"),
        ([(f"{i}.xy", bytes(range(256)) * 30) for i in range(3)], "more than 20,000 bytes"),
        ([("folder/", b"")], "holds no files"),
    ],
)
def test_refused(entries: list[tuple[str, bytes]], message: str) -> None:
    with pytest.raises(PatternReadError, match=message):
        unpack_scans(zipped(entries), "batch.zip", **LIMITS)


def test_corrupt_zip_is_a_read_error() -> None:
    data = zipped([("a.xy", b"1 2\n")])
    with pytest.raises(PatternReadError, match="cannot be opened"):
        unpack_scans(data[:30] + b"\0" * 10, "batch.zip", **LIMITS)
