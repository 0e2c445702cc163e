"""The Raman model's checkpoint: RegNet1D weights, the element head, the grid
and the model card, self-describing as the XRD checkpoint is; loaded into a
:class:`RamanEmbedder`. torch and numpy only (the training job writes it)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from xrdid.checkpoints import content_version, weights, write_checkpoint
from xrdid.errors import InputError
from xrdid.model import RegNet1D, RegNetConfig, folded
from xrdid.raman.grid import RAMAN_GRID
from xrdid.technique import Technique

CHECKPOINT_FORMAT = "xrdid-raman-embedder/1"
EMBED_BATCH_SIZE = 128


def save_raman_checkpoint(
    path: Path,
    model: RegNet1D,
    element_head: nn.Linear | None,
    element_symbols: list[str],
    card: dict[str, Any],
) -> str:
    """Write the checkpoint atomically; return its version (content hash)."""
    return write_checkpoint(
        path,
        {
            "format": CHECKPOINT_FORMAT,
            "model_config": model.cfg.to_dict(),
            "state_dict": weights(model),
            "element_head": None if element_head is None else weights(element_head),
            "element_symbols": list(element_symbols),
            "grid": RAMAN_GRID.describe(),
            "card": card,
        },
    )


@dataclass
class RamanEmbedder:
    """A loaded Raman model: embeds (n, 2, L) inputs; predicts elements."""

    model: RegNet1D
    element_head: nn.Linear | None
    element_symbols: list[str]
    version: str
    card: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> RamanEmbedder:
        data = Path(path).read_bytes()
        try:
            checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InputError(f"{path} is not a readable Raman checkpoint: {exc}") from exc
        if checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise InputError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint")
        if checkpoint["grid"] != RAMAN_GRID.describe():
            raise InputError(f"{path} was trained on grid {checkpoint['grid']}")
        model = RegNet1D(RegNetConfig.from_dict(checkpoint["model_config"]))
        model.load_state_dict(checkpoint["state_dict"])
        model = folded(model.eval())
        head = None
        if checkpoint.get("element_head"):
            weight = checkpoint["element_head"]["weight"]
            head = nn.Linear(weight.shape[1], weight.shape[0])
            head.load_state_dict(checkpoint["element_head"])
            head.eval()
        version = content_version(data)
        return cls(model, head, list(checkpoint["element_symbols"]), version, checkpoint["card"])

    @property
    def dim(self) -> int:
        return self.model.cfg.embedding_dim

    @property
    def technique(self) -> Technique:
        return Technique.RAMAN

    def embed(self, spectra: Sequence[Any]) -> NDArray[np.float32]:
        """Embed preprocessed spectra (anything with ``intensity`` and ``mask``
        on the Raman grid: :class:`xrdid.raman.preprocess.PreprocessedSpectrum`)."""
        if not spectra:
            return np.empty((0, self.dim), dtype=np.float32)
        return self.embed_array(
            model_inputs(
                np.stack([s.intensity for s in spectra]), np.stack([s.mask for s in spectra])
            )
        )

    @torch.inference_mode()
    def embed_array(self, inputs: NDArray[np.float32]) -> NDArray[np.float32]:
        """(n, 2, L) → (n, dim) unit vectors."""
        out = []
        for start in range(0, inputs.shape[0], EMBED_BATCH_SIZE):
            batch = torch.from_numpy(np.ascontiguousarray(inputs[start : start + EMBED_BATCH_SIZE]))
            out.append(self.model(batch).float().numpy())
        return np.concatenate(out) if out else np.empty((0, self.model.cfg.embedding_dim), "f4")

    @torch.inference_mode()
    def element_probabilities(self, embeddings: NDArray[np.float32]) -> NDArray[np.float32]:
        """(n, E) probabilities from the element head."""
        if self.element_head is None:
            raise InputError("this Raman checkpoint has no element head")
        return torch.sigmoid(self.element_head(torch.from_numpy(embeddings))).numpy()


def model_inputs(intensity: NDArray[np.floating], mask: NDArray[np.bool_]) -> NDArray[np.float32]:
    """(n, 2, L) float32: preprocessed intensity and coverage mask."""
    intensity = np.atleast_2d(intensity)
    mask = np.atleast_2d(mask)
    return np.stack([intensity, mask], axis=1).astype(np.float32)
