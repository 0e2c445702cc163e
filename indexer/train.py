"""Train the RegNet1D embedding with AdaCos on augmented simulated patterns.

    python -m indexer train --out runs/main --steps 12000 [--resume]

Steps: build (or load) the training set (real materials minus a seeded 20%
held out, plus pyxtal-generated classes), start the augmented-sample pool,
train with AdamW and a warm-up + cosine learning rate, checkpoint every
epoch (resumable), log a learning curve (CSV + PNG, with the AdaCos scale),
and write the serving checkpoint and held-out list into ``model_store/``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from indexer.sample_pool import SamplePool
from indexer.training_set import (
    SHIPPED_GENERATED,
    SHIPPED_SEED,
    TrainingSet,
    training_set_at,
)
from xrdid.augment import FULL_AUGMENTATION, augmented_input, reference_input
from xrdid.data_paths import PROJECT_ROOT
from xrdid.embedder import model_input, save_checkpoint
from xrdid.grid import MODEL_GRID
from xrdid.model import AdaCos, RegNet1D, RegNetConfig, count_parameters
from xrdid.preprocess import DEFAULT_BEADS

log = logging.getLogger("indexer.train")

MODEL_STORE = PROJECT_ROOT / "model_store"


@dataclass
class TrainConfig:
    out: Path = Path("runs/main")
    ship_to: Path = MODEL_STORE
    seed: int = SHIPPED_SEED
    n_generated: int = SHIPPED_GENERATED  # pyxtal classes added to the real ones
    steps: int = 12000
    minutes: float | None = None  # wall-clock budget; the schedule follows elapsed time
    steps_per_epoch: int = 400
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup_steps: int = 300
    pool_size: int = 24000
    pool_workers: int = 1
    min_pool_fill: int = 3000  # samples before the first step
    val_classes: int = 600  # closed-set check each epoch
    threads: int = 1
    model: RegNetConfig = field(default_factory=lambda: RegNetConfig(stem_stride=4, stem_kernel=9))


def progress(step: int, elapsed_seconds: float, cfg: TrainConfig) -> float:
    """Share of training done: by steps, or by wall-clock time when a budget
    is set (a shared 2-core machine runs at unpredictable speed, and the
    cosine schedule should still end at its minimum when the budget does)."""
    if cfg.minutes:
        return min(1.0, elapsed_seconds / (60.0 * cfg.minutes))
    return min(1.0, step / cfg.steps)


def learning_rate(step: int, done: float, cfg: TrainConfig) -> float:
    """Linear warm-up over the first steps, then cosine decay to 0 with progress."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * done))


def mixture_targets(labels: torch.Tensor, fractions: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(B, C) class probabilities of samples holding the phases ``labels``
    (B, K; -1 = none) in ``fractions`` (B, K): a mixture should land between
    its phases, so that every one of them ranks high."""
    weights = torch.where(labels >= 0, fractions, torch.zeros_like(fractions))
    weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-12)
    targets = torch.zeros(labels.shape[0], n_classes)
    return targets.scatter_add_(1, labels.clamp_min(0), weights)


@torch.no_grad()
def embed(model: RegNet1D, inputs: np.ndarray, batch: int = 256) -> torch.Tensor:
    model.eval()
    out = torch.cat(
        [model(torch.from_numpy(inputs[i : i + batch])) for i in range(0, len(inputs), batch)]
    )
    model.train()
    return out


def closed_set_topk(
    model: RegNet1D, references: np.ndarray, queries: np.ndarray, labels: np.ndarray
) -> tuple[float, float]:
    """Top-1/top-5 of augmented queries retrieved among all class references."""
    ref = embed(model, references)
    qry = embed(model, queries)
    top = (qry @ ref.T).topk(5, dim=1).indices.numpy()
    hits = top == labels[:, None]
    return float(hits[:, 0].mean()), float(hits.any(axis=1).mean())


def _training_set(cfg: TrainConfig) -> TrainingSet:
    path = cfg.out / "training_set.pkl"
    # Built with the shipped model's held-out materials held out, so every
    # model and evaluation is measured on the same open set.
    data = training_set_at(path, cfg.n_generated, cfg.seed)
    # A cached set may hold more generated classes than asked for: keep
    # the first n (generation order is seeded, so this is reproducible).
    generated = [c for c in data.train if c.generated]
    if len(generated) > cfg.n_generated:
        data.train = [c for c in data.train if not c.generated] + generated[: cfg.n_generated]
        data.save(path)  # the cached set is then exactly the set trained on
    return data


def _validation_arrays(
    data: TrainingSet, cfg: TrainConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    path = cfg.out / "validation.npz"
    if path.exists():
        saved = np.load(path)
        return saved["references"], saved["queries"], saved["labels"]
    rng = np.random.default_rng(cfg.seed + 1)
    refs = model_input([reference_input(c.sticks[0]) for c in tqdm(data.train, desc="references")])
    labels = rng.choice(len(data.train), size=min(cfg.val_classes, len(data.train)), replace=False)
    queries = model_input(
        [
            augmented_input(data.train[i].sticks[0], rng, FULL_AUGMENTATION)
            for i in tqdm(labels, desc="val queries")
        ]
    )
    np.savez(path, references=refs, queries=queries, labels=labels)
    return refs, queries, labels


def _write_curve(rows: list[dict], out: Path) -> None:
    if not rows:
        return
    with open(out / "learning_curve.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    axes[0].plot(epochs, [r["loss"] for r in rows])
    axes[0].set_title("training loss (AdaCos CE)")
    axes[1].plot(epochs, [r["adacos_scale"] for r in rows])
    axes[1].set_title("AdaCos scale s")
    axes[2].plot(epochs, [r["val_top1"] for r in rows], label="top-1")
    axes[2].plot(epochs, [r["val_top5"] for r in rows], label="top-5")
    axes[2].set_title("closed-set retrieval (augmented queries)")
    axes[2].legend()
    for ax in axes:
        ax.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(out / "learning_curve.png", dpi=90)
    plt.close(fig)


def train(cfg: TrainConfig, resume: bool) -> Path:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    cfg.out.mkdir(parents=True, exist_ok=True)
    data = _training_set(cfg)
    n_classes = len(data.train)
    log.info(
        "%d training classes (%d generated), %d held out",
        n_classes,
        sum(c.generated for c in data.train),
        len(data.held_out),
    )
    references, queries, val_labels = _validation_arrays(data, cfg)

    model = RegNet1D(cfg.model)
    head = AdaCos(cfg.model.embedding_dim, n_classes)
    params = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, rows, elapsed = 0, [], 0.0
    generator = torch.Generator().manual_seed(cfg.seed)
    last = cfg.out / "last.pt"
    if resume and last.exists():
        state = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        head.load_state_dict(state["head"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        step, rows, elapsed = state["step"], state["rows"], state.get("elapsed", 0.0)
        log.info("resumed at step %d", step)
    log.info("model: %d parameters", count_parameters(model))

    pool = SamplePool(data.train, cfg.pool_size, cfg.pool_workers, cfg.seed + step)
    try:
        pool.wait_until(min(cfg.min_pool_fill, cfg.pool_size))
        model.train()
        head.train()
        epoch_loss, epoch_start, produced_start = [], time.time(), pool.produced
        resumed_at = time.time() - elapsed
        bar = tqdm(total=None if cfg.minutes else cfg.steps, initial=step, desc="train")
        while progress(step, time.time() - resumed_at, cfg) < 1.0:
            done = progress(step, time.time() - resumed_at, cfg)
            lr = learning_rate(step, done, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            inputs, labels, fractions = pool.batch(cfg.batch_size, generator)
            loss = head(model(inputs), labels[:, 0], mixture_targets(labels, fractions, n_classes))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            optimizer.step()
            epoch_loss.append(float(loss))
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", s=f"{head.scale.item():.2f}")
            finished = progress(step, time.time() - resumed_at, cfg) >= 1.0
            if step % cfg.steps_per_epoch == 0 or finished:
                top1, top5 = closed_set_topk(model, references, queries, val_labels)
                rows.append(
                    {
                        "epoch": len(rows) + 1,
                        "step": step,
                        "loss": float(np.mean(epoch_loss)),
                        "adacos_scale": float(head.scale),
                        "lr": lr,
                        "val_top1": top1,
                        "val_top5": top5,
                        "fresh_samples": pool.produced - produced_start,
                        "seconds": round(time.time() - epoch_start, 1),
                    }
                )
                log.info("epoch %s", rows[-1])
                epoch_loss, epoch_start, produced_start = [], time.time(), pool.produced
                _write_curve(rows, cfg.out)
                tmp = last.with_suffix(".tmp")
                torch.save(
                    {
                        "model": model.state_dict(),
                        "head": head.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "generator": generator.get_state(),
                        "step": step,
                        "rows": rows,
                        "elapsed": time.time() - resumed_at,
                        "config": repr(cfg),
                    },
                    tmp,
                )
                os.replace(tmp, last)
        bar.close()
    finally:
        pool.close()
    return ship(model, data, cfg, rows, elapsed=time.time() - resumed_at)


def ship(
    model: RegNet1D, data: TrainingSet, cfg: TrainConfig, rows: list[dict], elapsed: float
) -> Path:
    """Write the serving checkpoint (+ held-out list) with its model card."""
    cfg.ship_to.mkdir(parents=True, exist_ok=True)
    held_out = [{"key": c.key, "name": c.name, "sources": c.sources} for c in data.held_out]
    (cfg.ship_to / "held_out.json").write_text(json.dumps(held_out, indent=1) + "\n")
    card = {
        "grid": MODEL_GRID.describe(),
        "preprocessing": {
            "baseline": "beads (pybaselines)",
            "beads": asdict(DEFAULT_BEADS),
            "normalisation": "max = 1 over the covered range; mask channel",
        },
        "augmentation": asdict(FULL_AUGMENTATION),
        "training": {
            "seed": cfg.seed,
            "steps": cfg.steps,
            "batch_size": cfg.batch_size,
            "classes": len(data.train),
            "generated_classes": sum(c.generated for c in data.train),
            "real_classes": sum(not c.generated for c in data.train),
            "held_out_classes": len(data.held_out),
            "rejected_files": len(data.rejected),
            "steps_done": rows[-1]["step"] if rows else 0,
            "minutes": round(elapsed / 60.0, 1),
            "final_epoch": rows[-1] if rows else None,
        },
        "model": cfg.model.to_dict(),
    }
    path = cfg.ship_to / "regnet1d.pt"
    version = save_checkpoint(path, model.eval(), card)
    log.info("shipped %s (model version %s)", path, version)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m indexer train", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=TrainConfig.out)
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--minutes", type=float, help="wall-clock budget (overrides --steps)")
    parser.add_argument(
        "--ship-to", type=Path, default=MODEL_STORE, help="where the serving checkpoint goes"
    )
    parser.add_argument("--n-generated", type=int, default=TrainConfig.n_generated)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--pool-workers", type=int, default=TrainConfig.pool_workers)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # Per-file notes of the structure readers would drown the training log.
    logging.getLogger("xrdid").setLevel(logging.WARNING)
    cfg = TrainConfig(
        out=args.out,
        ship_to=args.ship_to,
        steps=args.steps,
        minutes=args.minutes,
        n_generated=args.n_generated,
        seed=args.seed,
        pool_workers=args.pool_workers,
        threads=args.threads,
    )
    train(cfg, args.resume)


if __name__ == "__main__":
    main()
