"""Reading members of zip-based formats (.brml, .rasx) without trusting them.

Nothing is extracted to disk, so member paths cannot escape; what remains is
size: a member's declared size is the archive's own claim, so it is checked
and the inflated stream is also read through a cap (a forged header cannot
smuggle a zip bomb past the first check).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Sequence

from xrdid.errors import PatternReadError

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")

# Real .brml/.rasx archives hold tens of members (one experiment, a few
# scans, thumbnails); thousands are a crafted archive.
MAX_MEMBERS = 2000

# A measured profile compresses about 3–10×; text of repeated bytes reaches
# 1000×. Anything beyond this is a bomb even if it stays under the size cap.
MAX_COMPRESSION_RATIO = 200

_READ_CHUNK = 1 << 16

# zipfile raises all of these on corrupt or unsupported archives.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
    RuntimeError,
    EOFError,
    zlib.error,
    OSError,
    ValueError,
    struct.error,
    KeyError,
)


class SafeZip:
    """A zip archive in memory whose members are read with size caps."""

    def __init__(self, data: bytes, source: str | None, *, max_member_bytes: int) -> None:
        self.source = source
        self.max_member_bytes = max_member_bytes
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            self._infos = self._zip.infolist()
        except _ZIP_ERRORS as exc:
            raise PatternReadError(
                f"the file looks like a zip archive but cannot be opened ({exc})",
                source=source,
            ) from exc
        if len(self._infos) > MAX_MEMBERS:
            raise PatternReadError(
                f"the zip holds {len(self._infos)} members, more than the {MAX_MEMBERS} "
                "a pattern archive has; refusing it",
                source=source,
            )

    @property
    def names(self) -> Sequence[str]:
        # Not ZipInfo.is_dir(): it raises IndexError on a forged empty name.
        return [
            info.filename
            for info in self._infos
            if info.filename and not info.filename.endswith("/")
        ]

    def find(self, name: str) -> str | None:
        """The member called ``name`` (case-insensitive, / or \\ separators)."""
        wanted = name.replace("\\", "/").lower()
        for member in self.names:
            if member.replace("\\", "/").lower() == wanted:
                return member
        return None

    def read(self, name: str) -> bytes:
        """Inflate one member, refusing it once it passes the size cap."""
        try:
            info = self._zip.getinfo(name)
        except KeyError as exc:
            raise PatternReadError(f"the zip has no member {name!r}", source=self.source) from exc
        limit = self.max_member_bytes
        if info.file_size > limit:
            raise self._bomb(name, f"declares {info.file_size:,} bytes")
        if info.compress_size > 0 and info.file_size > MAX_COMPRESSION_RATIO * info.compress_size:
            raise self._bomb(
                name, f"inflates {info.file_size // max(info.compress_size, 1)}× its stored size"
            )
        chunks: list[bytes] = []
        total = 0
        try:
            with self._zip.open(info) as stream:
                while True:
                    chunk = stream.read(_READ_CHUNK)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > limit:
                        raise self._bomb(name, f"inflates past {limit:,} bytes")
                    chunks.append(chunk)
        except PatternReadError:
            raise
        except _ZIP_ERRORS as exc:
            raise PatternReadError(
                f"zip member {name!r} cannot be read ({exc}); the archive is corrupt",
                source=self.source,
                field=name,
            ) from exc
        return b"".join(chunks)

    def _bomb(self, name: str, what: str) -> PatternReadError:
        return PatternReadError(
            f"zip member {name!r} {what}, over the {self.max_member_bytes:,}-byte limit "
            "(or a zip bomb); refusing it",
            source=self.source,
            field=name,
        )
