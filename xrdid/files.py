"""Files written so that a crash leaves either the old or the new content
(index files, model checkpoints)."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

__all__ = ["atomic_write", "remove_partial_writes"]


def atomic_write(path: Path, chunks: Sequence[bytes]) -> None:
    """Write ``chunks`` to ``path``: a temporary file beside it, flushed to
    disk, then renamed over it (readers see one or the other, never a part)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_directory(path.parent)


def remove_partial_writes(path: Path) -> None:
    """Delete what writes to ``path`` interrupted by a crash left beside it."""
    for leftover in path.parent.glob(path.name + ".tmp-*"):
        leftover.unlink(missing_ok=True)


def _fsync_directory(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not supported on this platform
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
