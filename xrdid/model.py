"""RegNet1D: a RegNet-style 1-D CNN that embeds a powder pattern.

Input (B, 2, L): the preprocessed pattern and its coverage mask on the model
grid (the mask lets the network tell "no peak here" from "not measured").
Output (B, embedding_dim), L2-normalised, so the dot product of two
embeddings is their cosine similarity.

Layout follows RegNet (Radosavovic et al., CVPR 2020): a stem, then stages of
bottleneck blocks (1×1 conv → grouped k-conv → squeeze-and-excitation → 1×1
conv, residual), each stage halving the length once. Widths, depths, group
width, the normalisation layer and the intensity scale (linear, or square
root applied inside the model, so every caller feeds the same preprocessed
pattern) are configuration.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


@dataclass(frozen=True)
class RegNetConfig:
    in_channels: int = 2  # intensity + coverage mask
    stem_width: int = 32
    stem_kernel: int = 7
    stem_stride: int = 2  # 0.02° → 0.04° per position after the stem
    widths: tuple[int, ...] = (32, 64, 128, 192)
    depths: tuple[int, ...] = (1, 2, 2, 2)
    group_width: int = 16  # channels per group in the grouped convolution
    kernel_size: int = 5
    bottleneck_ratio: float = 1.0
    se_ratio: float = 0.25
    norm: str = "batch"  # "batch" or "group"; measured in model_store/ABLATION.md
    # "sqrt" feeds √intensity: texture scales a reflection by up to ~5×, √ makes
    # that ~2×, and weak reflections (positions) stand out. Measured in ABLATION.md.
    intensity_scale: str = "linear"  # "linear" or "sqrt"
    embedding_dim: int = 192
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> RegNetConfig:
        values = dict(values)
        values["widths"] = tuple(values["widths"])
        values["depths"] = tuple(values["depths"])
        return cls(**values)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(channels)
    if kind == "group":
        return nn.GroupNorm(num_groups=max(1, channels // 16), num_channels=channels)
    raise ValueError(f"unknown norm {kind!r}; use 'batch' or 'group'")


class SqueezeExcite(nn.Module):
    """Channel attention: global average → bottleneck MLP → sigmoid gate."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.reduce = nn.Conv1d(channels, squeezed, 1)
        self.expand = nn.Conv1d(squeezed, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L)
        gate = x.mean(dim=2, keepdim=True)  # (B, C, 1)
        gate = torch.sigmoid(self.expand(F.relu(self.reduce(gate))))
        return x * gate


class BottleneckBlock(nn.Module):
    """RegNet's X/Y block: 1×1 → grouped k-conv (stride) → SE → 1×1, + shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int, cfg: RegNetConfig) -> None:
        super().__init__()
        c_mid = max(cfg.group_width, int(round(c_out * cfg.bottleneck_ratio)))
        c_mid = (c_mid // cfg.group_width) * cfg.group_width
        groups = c_mid // cfg.group_width
        self.conv_a = nn.Conv1d(c_in, c_mid, 1, bias=False)
        self.norm_a = _norm(cfg.norm, c_mid)
        self.conv_b = nn.Conv1d(
            c_mid,
            c_mid,
            cfg.kernel_size,
            stride=stride,
            padding=cfg.kernel_size // 2,
            groups=groups,
            bias=False,
        )
        self.norm_b = _norm(cfg.norm, c_mid)
        self.se = SqueezeExcite(c_mid, max(1, int(c_in * cfg.se_ratio)))
        self.conv_c = nn.Conv1d(c_mid, c_out, 1, bias=False)
        self.norm_c = _norm(cfg.norm, c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), _norm(cfg.norm, c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c_in, L) → (B, c_out, L/stride)
        y = F.relu(self.norm_a(self.conv_a(x)))
        y = F.relu(self.norm_b(self.conv_b(y)))
        y = self.se(y)
        y = self.norm_c(self.conv_c(y))
        return F.relu(y + self.shortcut(x))


class RegNet1D(nn.Module):
    """Pattern (B, 2, L) → unit-length embedding (B, embedding_dim)."""

    def __init__(self, cfg: RegNetConfig) -> None:
        super().__init__()
        if cfg.intensity_scale not in ("linear", "sqrt"):
            raise ValueError(
                f"unknown intensity_scale {cfg.intensity_scale!r}; use 'linear' or 'sqrt'"
            )
        self.cfg = cfg
        self.stem = nn.Sequential(
            nn.Conv1d(
                cfg.in_channels,
                cfg.stem_width,
                cfg.stem_kernel,
                stride=cfg.stem_stride,
                padding=cfg.stem_kernel // 2,
                bias=False,
            ),
            _norm(cfg.norm, cfg.stem_width),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        c_in = cfg.stem_width
        for width, depth in zip(cfg.widths, cfg.depths, strict=True):
            for i in range(depth):
                blocks.append(BottleneckBlock(c_in, width, stride=2 if i == 0 else 1, cfg=cfg))
                c_in = width
        self.stages = nn.Sequential(*blocks)
        # Average and max pooling together: the average sees the whole pattern,
        # the max keeps single strong reflections from being diluted.
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(2 * c_in, cfg.embedding_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.intensity_scale == "sqrt":
            # Background subtraction leaves small negative values: clamp first.
            x = torch.cat([x[:, :1].clamp(min=0.0).sqrt(), x[:, 1:]], dim=1)
        x = self.stages(self.stem(x))  # (B, C, L')
        pooled = torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)  # (B, 2C)
        return F.normalize(self.head(pooled), dim=1)


def folded(model: RegNet1D) -> RegNet1D:
    """An inference copy of a trained model (eval mode) with each batch norm
    folded into the convolution before it: the same function to float
    rounding, one pass less over the activations per layer (about 15% faster
    on the CPU). A group norm depends on its input, so it stays."""
    out = copy.deepcopy(model).eval()
    if out.cfg.norm != "batch":
        return out
    pairs: list[tuple[nn.Module, str, str]] = [(out.stem, "0", "1")]
    for block in out.stages:
        pairs += [(block, "conv_a", "norm_a"), (block, "conv_b", "norm_b")]
        pairs.append((block, "conv_c", "norm_c"))
        if isinstance(block.shortcut, nn.Sequential):
            pairs.append((block.shortcut, "0", "1"))
    for parent, conv, norm in pairs:
        setattr(parent, conv, fuse_conv_bn_eval(getattr(parent, conv), getattr(parent, norm)))
        setattr(parent, norm, nn.Identity())
    return out


@dataclass
class AdaCosState:
    """The adaptive scale, kept apart so checkpoints and logs can show it."""

    scale: float
    history: list[float] = field(default_factory=list)


class AdaCos(nn.Module):
    """AdaCos classification head (Zhang et al., CVPR 2019).

    Logits are s·cos θ between the embedding and L2-normalised class weights.
    s starts at s₀ = √2·ln(C − 1) and, in training, is re-estimated from
    every batch (with its labels): s = ln(B_avg) / cos(min(π/4, θ_med)),
    where B_avg is the mean over samples of Σ_{k≠y} exp(s·cos θ_k) and θ_med
    the median angle to the true class. In eval mode s is frozen.
    """

    scale: torch.Tensor  # registered buffer: saved with the model, never trained

    def __init__(self, embedding_dim: int, n_classes: int) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError("AdaCos needs at least two classes")
        self.weight = nn.Parameter(torch.empty(n_classes, embedding_dim))
        nn.init.xavier_uniform_(self.weight)
        self.register_buffer("scale", torch.tensor(math.sqrt(2.0) * math.log(n_classes - 1.0)))

    def forward(
        self,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        targets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Cross-entropy loss of a batch; updates the scale in training mode.

        ``labels`` (B,) are the true classes. ``targets`` (B, C), if given, are
        class probabilities for samples holding several classes (mixtures); the
        scale is still estimated from ``labels``, each sample's main class.
        """
        cosine = F.linear(embeddings, F.normalize(self.weight, dim=1))  # (B, C)
        cosine = cosine.clamp(-1.0 + 1e-7, 1.0 - 1e-7)
        if self.training:
            with torch.no_grad():
                self.scale.copy_(self._updated_scale(cosine, labels))
        return F.cross_entropy(self.scale * cosine, labels if targets is None else targets)

    def _updated_scale(self, cosine: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        target = F.one_hot(labels, cosine.shape[1]).bool()
        # log B_avg = logsumexp over all non-target logits − log(batch): no overflow.
        non_target = (self.scale * cosine).masked_fill(target, float("-inf"))
        log_b_avg = torch.logsumexp(non_target.flatten(), dim=0) - torch.log(
            torch.tensor(float(cosine.shape[0]))
        )
        theta_target = torch.acos(cosine[target])
        theta_med = torch.median(theta_target)
        return log_b_avg / torch.cos(torch.clamp(theta_med, max=torch.pi / 4))

    @torch.no_grad()
    def predict(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Class scores (cosines) for evaluation."""
        return F.linear(embeddings, F.normalize(self.weight, dim=1))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
