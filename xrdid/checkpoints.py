"""Model checkpoints on disk: written atomically, versioned by their content.
torch and the standard library only (the training jobs run where the
service's other dependencies are not installed)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from xrdid.files import atomic_write

__all__ = ["content_version", "weights", "write_checkpoint"]


def write_checkpoint(path: Path, checkpoint: dict[str, Any]) -> str:
    """torch.save ``checkpoint`` to ``path`` atomically; return its model version."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    data = buffer.getvalue()
    atomic_write(path, [data])
    return content_version(data)


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's weights, on the CPU, as a checkpoint stores them."""
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def content_version(data: bytes) -> str:
    """The model version: the first 16 hex digits of the file's SHA-256."""
    return hashlib.sha256(data).hexdigest()[:16]
