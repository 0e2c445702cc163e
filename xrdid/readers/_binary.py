"""Bounds-checked little-endian reads for binary formats.

Every offset and count in a binary header comes from the file and may lie;
each read here checks it against the real length first, so a truncated or
forged file gives a PatternReadError naming the field instead of struct.error.
"""

from __future__ import annotations

import struct

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import PatternReadError


class BinaryView:
    """Read fields of a byte string by absolute offset, with bounds checks."""

    def __init__(self, data: bytes, source: str | None) -> None:
        self.data = data
        self.source = source

    def __len__(self) -> int:
        return len(self.data)

    def require(self, offset: int, size: int, field: str) -> None:
        """Fail unless ``size`` bytes exist at ``offset``."""
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise PatternReadError(
                f"the file ends at byte {len(self.data)} but {field} needs bytes "
                f"{offset}–{offset + size}; the file is truncated or its header is corrupt",
                source=self.source,
                field=field,
            )

    def u16(self, offset: int, field: str) -> int:
        return int(self._unpack("<H", offset, field))

    def u32(self, offset: int, field: str) -> int:
        return int(self._unpack("<I", offset, field))

    def f32(self, offset: int, field: str) -> float:
        # Shortest decimal that round-trips the float32 (0.02, not
        # 0.019999999552965164), so start + i·step lands on the written grid.
        value = self._unpack("<f", offset, field)
        return float(str(np.float32(value)))

    def f64(self, offset: int, field: str) -> float:
        return float(self._unpack("<d", offset, field))

    def text(self, offset: int, size: int, field: str) -> str:
        """A NUL-padded ASCII/latin-1 string field, trimmed."""
        self.require(offset, size, field)
        raw = self.data[offset : offset + size].split(b"\x00", 1)[0]
        return raw.decode("latin-1").strip()

    def float32_array(self, offset: int, count: int, field: str) -> NDArray[np.float64]:
        self.require(offset, 4 * count, field)
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=offset)
        # Signalling NaNs warn on the cast; make_pattern reports them anyway.
        with np.errstate(invalid="ignore"):
            return values.astype(np.float64)

    def _unpack(self, fmt: str, offset: int, field: str) -> float | int:
        size = struct.calcsize(fmt)
        self.require(offset, size, field)
        value: float | int = struct.unpack_from(fmt, self.data, offset)[0]
        return value
