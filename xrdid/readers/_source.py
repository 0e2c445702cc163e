"""Turn what a caller hands over (bytes, a path, an open file) into bytes.

The size cap is enforced here, before anything is parsed, and without reading
more than ``max_bytes + 1`` bytes of an oversized stream.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from xrdid.errors import PatternReadError

# Default cap on the input size. The largest real pattern files are a few MB
# (a 2θ-resolved 1D detector scan as XML); 50 MB leaves room for big tables
# while keeping a hostile upload from exhausting memory.
DEFAULT_MAX_BYTES = 50 * 1024 * 1024

PatternSource = bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO


@dataclass(frozen=True)
class RawInput:
    """The bytes of one file, the name used in messages and for the extension,
    and the size cap that also bounds what its zip members may inflate to."""

    data: bytes
    name: str | None
    max_bytes: int = DEFAULT_MAX_BYTES

    @property
    def extension(self) -> str:
        """Lower-case extension with its dot (``".xy"``), or ``""``."""
        if not self.name:
            return ""
        return Path(self.name).suffix.lower()


def load(source: PatternSource, filename: str | None, max_bytes: int) -> RawInput:
    """Read ``source`` into memory, refusing anything larger than ``max_bytes``.

    A ``str`` is always a path, never file content: pass content as bytes.
    """
    if max_bytes <= 0:
        raise PatternReadError(f"max_bytes must be positive, got {max_bytes}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = filename
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = filename or path.name
        data = _read_path(path, name, max_bytes)
    elif hasattr(source, "read"):
        name = filename or _stream_name(source)
        data = _read_stream(source, name, max_bytes)
    else:
        raise PatternReadError(
            f"cannot read a pattern from a {type(source).__name__}; pass bytes, a path "
            "or a file opened in binary mode"
        )
    if len(data) > max_bytes:
        raise _too_large(len(data), max_bytes, name)
    return RawInput(data=data, name=name, max_bytes=max_bytes)


def _read_path(path: Path, name: str, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise _too_large(size, max_bytes, name)
        with path.open("rb") as handle:
            return handle.read(max_bytes + 1)
    except PatternReadError:
        raise
    except OSError as exc:
        raise PatternReadError(
            f"cannot open the file: {exc.strerror or exc}", source=str(path)
        ) from exc


def _read_stream(stream: BinaryIO, name: str | None, max_bytes: int) -> bytes:
    try:
        data = stream.read(max_bytes + 1)
    except (OSError, ValueError) as exc:
        raise PatternReadError(f"cannot read the upload: {exc}", source=name) from exc
    if isinstance(data, str):
        raise PatternReadError(
            "the file was opened in text mode; open it in binary mode ('rb') so the "
            "reader can detect its encoding",
            source=name,
        )
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise PatternReadError(f"the stream returned {type(data).__name__}, not bytes", source=name)
    return bytes(data)


def _stream_name(stream: object) -> str | None:
    name = getattr(stream, "name", None)
    if isinstance(name, str) and name:
        return Path(name).name
    return None


def _too_large(size: int, max_bytes: int, name: str | None) -> PatternReadError:
    return PatternReadError(
        f"the file is {size:,} bytes, more than the {max_bytes:,}-byte limit; "
        "a powder pattern is far smaller — check that this is the right file",
        source=name,
    )
