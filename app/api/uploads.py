"""Reading an uploaded file, bounded (the body limit middleware already cut
oversize requests; this also covers the file alone)."""

from __future__ import annotations

from fastapi import UploadFile

from app.core.config import Settings
from app.core.errors import UploadTooLargeError

_CHUNK_BYTES = 1024 * 1024


async def read_upload(file: UploadFile, settings: Settings) -> bytes:
    """The file's bytes; 413 when it is larger than XRDID_MAX_UPLOAD_BYTES."""
    limit = settings.max_upload_bytes
    chunks: list[bytes] = []
    size = 0
    while chunk := await file.read(_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise UploadTooLargeError(
                f"the file is larger than the limit of {limit} bytes (XRDID_MAX_UPLOAD_BYTES)"
            )
        chunks.append(chunk)
    return b"".join(chunks)
