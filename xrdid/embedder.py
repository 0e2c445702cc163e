"""Load a trained RegNet1D checkpoint and embed preprocessed patterns.

A shipped checkpoint is self-describing (nanoGPT style): the model config,
the weights, the grid and preprocessing it expects, and its model card
(training data, held-out list, metrics). Its model version is a hash of the
file's content, so a library built with another model is detected.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from xrdid.checkpoints import content_version, weights, write_checkpoint
from xrdid.errors import InputError
from xrdid.grid import MODEL_GRID
from xrdid.model import RegNet1D, RegNetConfig, folded
from xrdid.preprocess import PreprocessedPattern
from xrdid.technique import Technique

# Patterns embedded per forward pass: bounds memory (≈ 35 kB of input and a
# few MB of activations per pattern) while keeping the CPU/GPU busy.
EMBED_BATCH_SIZE = 64


def model_input(patterns: Sequence[PreprocessedPattern]) -> NDArray[np.float32]:
    """(n, 2, L) float32: intensity and coverage mask, the model's two channels."""
    out = np.empty((len(patterns), 2, MODEL_GRID.n_points), dtype=np.float32)
    for i, p in enumerate(patterns):
        out[i, 0] = p.intensity
        out[i, 1] = p.mask
    return out


def save_checkpoint(path: Path, model: RegNet1D, card: dict[str, Any]) -> str:
    """Write the serving checkpoint atomically; return its model version."""
    return write_checkpoint(
        path,
        {
            "format": "xrdid-embedder/1",
            "model_config": model.cfg.to_dict(),
            "state_dict": weights(model),
            "grid": MODEL_GRID.describe(),
            "card": card,
        },
    )


def pick_device(requested: str | None = None) -> torch.device:
    """CUDA when present (or asked for), else CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class Embedder:
    """A loaded model, ready to embed batches of preprocessed patterns."""

    model: RegNet1D
    version: str
    card: dict[str, Any]
    device: torch.device

    @classmethod
    def load(cls, path: Path, device: str | None = None) -> Embedder:
        data = Path(path).read_bytes()
        try:
            checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupt or foreign file
            raise InputError(f"{path} is not a readable xrdid checkpoint: {exc}") from exc
        if checkpoint.get("format") != "xrdid-embedder/1":
            raise InputError(f"{path} is not an xrdid embedder checkpoint")
        grid = checkpoint["grid"]
        if grid != MODEL_GRID.describe():
            raise InputError(f"{path} was trained on grid {grid}, not {MODEL_GRID.describe()}")
        model = RegNet1D(RegNetConfig.from_dict(checkpoint["model_config"]))
        model.load_state_dict(checkpoint["state_dict"])
        target = pick_device(device)
        model = folded(model.eval()).to(target)
        return cls(model, content_version(data), checkpoint.get("card", {}), target)

    @property
    def dim(self) -> int:
        return self.model.cfg.embedding_dim

    @property
    def technique(self) -> Technique:
        return Technique.XRD

    @torch.inference_mode()
    def embed_array(self, inputs: NDArray[np.float32]) -> NDArray[np.float32]:
        """(n, 2, L) model inputs → (n, dim) unit vectors, float32 on the CPU."""
        out = np.empty((inputs.shape[0], self.dim), dtype=np.float32)
        for start in range(0, inputs.shape[0], EMBED_BATCH_SIZE):
            batch = torch.from_numpy(np.ascontiguousarray(inputs[start : start + EMBED_BATCH_SIZE]))
            out[start : start + batch.shape[0]] = (
                self.model(batch.to(self.device)).float().cpu().numpy()
            )
        return out

    def embed(self, patterns: Sequence[PreprocessedPattern]) -> NDArray[np.float32]:
        """Embed preprocessed patterns: (n, dim) unit vectors."""
        if not patterns:
            return np.empty((0, self.dim), dtype=np.float32)
        return self.embed_array(model_input(patterns))
