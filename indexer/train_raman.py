"""Train the Raman RegNet1D embedding (a class is a mineral) with AdaCos and an
element head, from a training pack (``python -m indexer raman-pack``).

    python -m indexer train-raman --pack runs/raman/pack.npz --minutes 5 --device cuda

Imports torch, numpy and the project's torch/numpy modules only (no
pybaselines, pymatgen or faiss): the pack holds the preprocessed spectra, and
augmentation runs in torch on the training device. Samples classes uniformly
(then one of the class's spectra, clean or with a removed synthetic
background), follows a warm-up + cosine learning rate over ``--steps`` or a
wall-clock ``--minutes``, evaluates closed-set retrieval of the held-out
validation spectra every epoch (learning curve CSV, PNG when matplotlib is
there), checkpoints ``OUT/last.pt`` (``--resume``) and writes the serving
checkpoint ``SHIP_TO/raman_regnet1d.pt``.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xrdid.data_paths import PROJECT_ROOT
from xrdid.model import AdaCos, RegNet1D, RegNetConfig, count_parameters
from xrdid.raman.augment import RAMAN_AUGMENTATION, augment
from xrdid.raman.checkpoint import save_raman_checkpoint
from xrdid.raman.grid import RAMAN_GRID
from xrdid.raman.pack import RamanPack, coverage_mask

log = logging.getLogger("indexer.train_raman")

MODEL_STORE = PROJECT_ROOT / "model_store"
CHECKPOINT_NAME = "raman_regnet1d.pt"


@dataclass
class RamanTrainConfig:
    pack: Path = Path("runs/raman/pack.npz")
    out: Path = Path("runs/raman")
    ship_to: Path = MODEL_STORE
    seed: int = 20261204
    steps: int = 20000
    minutes: float | None = None  # wall-clock budget; the schedule follows elapsed time
    steps_per_epoch: int = 250
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup_steps: int = 200
    element_weight: float = 0.3  # BCE of the element head, next to AdaCos
    device: str = "cpu"
    threads: int = 1
    # 1,701 grid points: stride 2 in the stem (2 cm⁻¹ per position), then four
    # stages halve it to ~54 positions of ~32 cm⁻¹.
    model: RegNetConfig = field(default_factory=lambda: RegNetConfig(stem_stride=2))


def progress(step: int, elapsed_seconds: float, cfg: RamanTrainConfig) -> float:
    if cfg.minutes:
        return min(1.0, elapsed_seconds / (60.0 * cfg.minutes))
    return min(1.0, step / cfg.steps)


def learning_rate(step: int, done: float, cfg: RamanTrainConfig) -> float:
    """Linear warm-up over ``warmup_steps`` (or the first 5% of the budget, if
    sooner: a short CPU run must leave it), then cosine decay with progress."""
    warm = max((step + 1) / cfg.warmup_steps, done / 0.05)
    if warm < 1.0:
        return cfg.lr * warm
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * done))


class Batches:
    """Class-balanced batches of the pack, on the training device."""

    def __init__(self, pack: RamanPack, device: torch.device, seed: int) -> None:
        self.device = device
        self.variants = torch.from_numpy(pack.variants).to(device)  # (V, N, L) float16
        self.lo = torch.from_numpy(pack.lo).long().to(device)
        self.hi = torch.from_numpy(pack.hi).long().to(device)
        self.labels = torch.from_numpy(pack.labels).long().to(device)
        order = np.argsort(pack.labels, kind="stable")
        counts = np.bincount(pack.labels, minlength=pack.n_classes)
        self.order = torch.from_numpy(order).long().to(device)
        self.counts = torch.from_numpy(counts).long().to(device)
        self.starts = (
            torch.from_numpy(np.concatenate([[0], np.cumsum(counts)[:-1]])).long().to(device)
        )
        self.index = torch.arange(pack.n_points, device=device)
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def draw(self, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x, mask, row indices, variant) of ``size`` samples."""
        g = self.generator
        n_classes = self.counts.numel()
        classes = torch.randint(0, n_classes, (size,), generator=g, device=self.device)
        offset = (torch.rand(size, generator=g, device=self.device) * self.counts[classes]).long()
        rows = self.order[self.starts[classes] + offset]
        variant = torch.randint(0, self.variants.shape[0], (size,), generator=g, device=self.device)
        x = self.variants[variant, rows].float()
        mask = ((self.index >= self.lo[rows, None]) & (self.index < self.hi[rows, None])).float()
        return x, mask, rows, variant


def soft_targets(
    labels: torch.Tensor, partner_labels: torch.Tensor, fraction: torch.Tensor, n_classes: int
) -> torch.Tensor:
    """(B, C) class probabilities of samples mixing two minerals."""
    targets = F.one_hot(labels, n_classes).float() * (1 - fraction)[:, None]
    mixed = partner_labels >= 0
    targets[mixed] += F.one_hot(partner_labels[mixed], n_classes).float() * fraction[mixed, None]
    return targets


@torch.no_grad()
def embed(model: RegNet1D, x: torch.Tensor, mask: torch.Tensor, batch: int = 512) -> torch.Tensor:
    model.eval()
    out = torch.cat(
        [
            model(torch.stack([x[i : i + batch], mask[i : i + batch]], dim=1)).float()
            for i in range(0, x.shape[0], batch)
        ]
    )
    model.train()
    return out


def class_topk(
    references: torch.Tensor,
    ref_labels: torch.Tensor,
    queries: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
) -> tuple[float, float]:
    """Top-1/top-5 of queries ranking classes by their nearest reference."""
    similarity = queries @ references.T  # (M, N)
    per_class = torch.full((queries.shape[0], n_classes), -2.0, device=queries.device)
    per_class = per_class.scatter_reduce(
        1, ref_labels.expand(queries.shape[0], -1), similarity, reduce="amax"
    )
    top = per_class.topk(min(5, n_classes), dim=1).indices
    hits = top == labels[:, None]
    return float(hits[:, 0].float().mean()), float(hits.any(dim=1).float().mean())


def _write_curve(rows: list[dict], out: Path) -> None:
    if not rows:
        return
    with open(out / "learning_curve.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    try:
        import matplotlib
    except ImportError:  # the GPU machine may lack it; the CSV is the record
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    axes[0].plot(steps, [r["loss"] for r in rows], label="AdaCos CE")
    axes[0].plot(steps, [r["element_loss"] for r in rows], label="element BCE")
    axes[0].legend()
    axes[0].set_title("training loss")
    axes[1].plot(steps, [r["adacos_scale"] for r in rows])
    axes[1].set_title("AdaCos scale s")
    axes[2].plot(steps, [r["val_top1"] for r in rows], label="top-1")
    axes[2].plot(steps, [r["val_top5"] for r in rows], label="top-5")
    axes[2].set_title("held-out validation samples (closed set)")
    axes[2].legend()
    for ax in axes:
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(out / "learning_curve.png", dpi=90)
    plt.close(fig)


def train(cfg: RamanTrainConfig, resume: bool = False) -> Path:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    cfg.out.mkdir(parents=True, exist_ok=True)
    pack = RamanPack.load(cfg.pack)
    if pack.n_points != RAMAN_GRID.n_points:
        raise ValueError(f"the pack's grid has {pack.n_points} points, not {RAMAN_GRID.n_points}")
    n_classes, n_elements = pack.n_classes, pack.element_symbols.size
    log.info(
        "%d classes, %d library spectra × %d variants, %d validation spectra, %d elements",
        n_classes, pack.labels.size, pack.variants.shape[0], pack.val_labels.size, n_elements,
    )  # fmt: skip
    batches = Batches(pack, device, cfg.seed)
    class_elements = torch.from_numpy(pack.class_elements).float().to(device)
    references = batches.variants[0].float()
    ref_mask = torch.from_numpy(coverage_mask(pack.lo, pack.hi, pack.n_points)).float().to(device)
    val_x = torch.from_numpy(pack.val_x).float().to(device)
    val_mask = (
        torch.from_numpy(coverage_mask(pack.val_lo, pack.val_hi, pack.n_points)).float().to(device)
    )
    val_labels = torch.from_numpy(pack.val_labels).long().to(device)

    model = RegNet1D(cfg.model).to(device)
    head = AdaCos(cfg.model.embedding_dim, n_classes).to(device)
    element_head = nn.Linear(cfg.model.embedding_dim, n_elements).to(device)
    params = [*model.parameters(), *head.parameters(), *element_head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, rows, elapsed = 0, [], 0.0
    last = cfg.out / "last.pt"
    if resume and last.exists():
        state = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        head.load_state_dict(state["head"])
        element_head.load_state_dict(state["element_head"])
        optimizer.load_state_dict(state["optimizer"])
        step, rows, elapsed = state["step"], state["rows"], state["elapsed"]
        log.info("resumed at step %d", step)
    log.info("model: %d parameters, device %s", count_parameters(model), device)
    autocast = torch.autocast(
        device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"
    )
    started = time.time() - elapsed
    losses: list[float] = []
    element_losses: list[float] = []
    epoch_start = time.time()
    model.train()
    while progress(step, time.time() - started, cfg) < 1.0:
        lr = learning_rate(step, progress(step, time.time() - started, cfg), cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, mask, rows_drawn, variant = batches.draw(cfg.batch_size)
        x, mask, partner, fraction = augment(
            x, mask, batches.generator, RAMAN_AUGMENTATION, residual=variant == 0
        )
        labels = batches.labels[rows_drawn]
        partner_labels = torch.where(partner >= 0, labels[partner.clamp_min(0)], -1)
        with autocast:
            embeddings = model(torch.stack([x, mask], dim=1))
        embeddings = embeddings.float()
        loss = head(embeddings, labels, soft_targets(labels, partner_labels, fraction, n_classes))
        wanted = class_elements[labels]
        mixed = partner_labels >= 0
        wanted[mixed] = torch.maximum(wanted[mixed], class_elements[partner_labels[mixed]])
        element_loss = F.binary_cross_entropy_with_logits(element_head(embeddings), wanted)
        total = loss + cfg.element_weight * element_loss
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        optimizer.step()
        losses.append(loss.item())
        element_losses.append(element_loss.item())
        step += 1
        finished = progress(step, time.time() - started, cfg) >= 1.0
        if step % cfg.steps_per_epoch == 0 or finished:
            with autocast:
                ref_emb = embed(model, references, ref_mask)
                val_emb = embed(model, val_x, val_mask)
            top1, top5 = class_topk(
                ref_emb.float(), batches.labels, val_emb.float(), val_labels, n_classes
            )
            rows.append(
                {
                    "step": step,
                    "loss": round(float(np.mean(losses)), 4),
                    "element_loss": round(float(np.mean(element_losses)), 4),
                    "adacos_scale": round(float(head.scale), 3),
                    "lr": lr,
                    "val_top1": round(top1, 4),
                    "val_top5": round(top5, 4),
                    "seconds": round(time.time() - epoch_start, 1),
                }
            )
            log.info("epoch %s", rows[-1])
            losses, element_losses, epoch_start = [], [], time.time()
            _write_curve(rows, cfg.out)
            tmp = last.with_suffix(".tmp")
            torch.save(
                {
                    "model": model.state_dict(),
                    "head": head.state_dict(),
                    "element_head": element_head.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "step": step,
                    "rows": rows,
                    "elapsed": time.time() - started,
                },
                tmp,
            )
            os.replace(tmp, last)
    model.eval().cpu()
    element_head.eval().cpu()
    card = {
        "grid": RAMAN_GRID.describe(),
        "classes": n_classes,
        "class_names": [str(name) for name in pack.class_names],
        "library_spectra": int(pack.labels.size),
        "pack_variants": int(pack.variants.shape[0]),
        "augmentation": RAMAN_AUGMENTATION.to_dict(),
        "training": {
            "seed": cfg.seed,
            "device": cfg.device,
            "batch_size": cfg.batch_size,
            "lr": cfg.lr,
            "element_weight": cfg.element_weight,
            "steps_done": step,
            "minutes": round((time.time() - started) / 60.0, 2),
            "final_epoch": rows[-1] if rows else None,
        },
        "model": cfg.model.to_dict(),
    }
    cfg.ship_to.mkdir(parents=True, exist_ok=True)
    path = cfg.ship_to / CHECKPOINT_NAME
    version = save_raman_checkpoint(
        path, model, element_head, [str(s) for s in pack.element_symbols], card
    )
    _write_curve(rows, cfg.ship_to) if cfg.ship_to != cfg.out else None
    log.info("shipped %s (version %s) after %d steps", path, version, step)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m indexer train-raman", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--pack", type=Path, default=RamanTrainConfig.pack)
    parser.add_argument("--out", type=Path, default=RamanTrainConfig.out)
    parser.add_argument("--ship-to", type=Path, default=MODEL_STORE)
    parser.add_argument("--steps", type=int, default=RamanTrainConfig.steps)
    parser.add_argument("--minutes", type=float, help="wall-clock budget (overrides --steps)")
    parser.add_argument("--steps-per-epoch", type=int, default=RamanTrainConfig.steps_per_epoch)
    parser.add_argument("--batch-size", type=int, default=RamanTrainConfig.batch_size)
    parser.add_argument("--lr", type=float, default=RamanTrainConfig.lr)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    parser.add_argument("--seed", type=int, default=RamanTrainConfig.seed)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument(
        "--intensity-scale",
        choices=("linear", "sqrt"),
        default=RamanTrainConfig().model.intensity_scale,
        help="what the model reads: the intensities, or their square roots",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = RamanTrainConfig(
        pack=args.pack,
        out=args.out,
        ship_to=args.ship_to,
        steps=args.steps,
        minutes=args.minutes,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
        threads=args.threads,
        seed=args.seed,
        model=replace(RamanTrainConfig().model, intensity_scale=args.intensity_scale),
    )
    train(cfg, args.resume)


if __name__ == "__main__":
    main()
