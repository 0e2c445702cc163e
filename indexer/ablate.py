"""Measure the architecture choices that matter for spectra, at equal cost.

    python -m indexer ablate --training-set runs/main/training_set.pkl [--minutes 6]

Each variant trains from scratch for the same wall-clock budget on the same
classes, pool settings and seed, and is scored on the same closed-set
validation queries (top-1/top-5 of augmented patterns among all class
references). Variants: the shipped stem stride (0.08° per position after the
stem), less pooling (stride 2), more pooling (stride 8, nearby peaks merge
early), group norm instead of batch norm, and the square root of the
intensities at the input instead of the intensities.

So that minutes suffice to tell variants apart, the task is smaller than the
shipped model's: the first ``--classes`` real materials of the training set
(the full set needs ~30 minutes before retrieval leaves chance level).
Short runs rank how fast each variant learns here, not where each would end.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import torch

from indexer.train import TrainConfig, train
from indexer.training_set import training_set_at
from xrdid.model import RegNet1D, RegNetConfig, count_parameters

SHIPPED = TrainConfig().model

VARIANTS: dict[str, RegNetConfig] = {
    "shipped: stem stride 4, batch norm": SHIPPED,
    "less pooling: stem stride 2": replace(SHIPPED, stem_stride=2),
    "more pooling: stem stride 8": replace(SHIPPED, stem_stride=8),
    "group norm instead of batch norm": replace(SHIPPED, norm="group"),
    "square-root intensities": replace(SHIPPED, intensity_scale="sqrt"),
}


def _subset(training_set: Path, n_classes: int, out: Path) -> None:
    """The first ``n_classes`` real materials, as a training set of its own."""
    data = training_set_at(training_set)
    data.train = [c for c in data.train if not c.generated][:n_classes]
    data.save(out / "training_set.pkl")


def ablate(
    training_set: Path, out: Path, minutes: float, seed: int, n_classes: int, variants: list[str]
) -> list[dict]:
    rows = []
    out.mkdir(parents=True, exist_ok=True)
    _subset(training_set, n_classes, out)
    for name in variants:
        model_cfg = VARIANTS[name]
        folder = out / name.split(":")[0].replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        for cached in ("training_set.pkl", "validation.npz"):
            # Every variant sees the same classes and validation queries.
            if (out / cached).exists() and not (folder / cached).exists():
                shutil.copyfile(out / cached, folder / cached)
        cfg = TrainConfig(
            out=folder,
            ship_to=folder,
            minutes=minutes,
            seed=seed,
            model=model_cfg,
            warmup_steps=100,
            min_pool_fill=1500,
        )
        train(cfg, resume=False)
        if not (out / "validation.npz").exists():
            shutil.copyfile(folder / "validation.npz", out / "validation.npz")
        curve = torch.load(folder / "last.pt", map_location="cpu", weights_only=False)["rows"]
        last = curve[-1]
        steps = last["step"]
        rows.append(
            {
                "variant": name,
                "parameters": count_parameters(RegNet1D(model_cfg)),
                "minutes": minutes,
                "steps": steps,
                "ms_per_sample": 1000.0 * 60.0 * minutes / (steps * cfg.batch_size),
                "val_top1": last["val_top1"],
                "val_top5": last["val_top5"],
            }
        )
        print(_table(rows), flush=True)
    return rows


def _table(rows: list[dict]) -> str:
    lines = [
        "| variant | parameters | steps | ms/sample (train) | val top-1 % | val top-5 % |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['parameters']:,} | {r['steps']} | {r['ms_per_sample']:.1f} "
            f"| {100 * r['val_top1']:.1f} | {100 * r['val_top5']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m indexer ablate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--training-set", type=Path, default=Path("runs/main/training_set.pkl"))
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--minutes", type=float, default=6.0, help="training budget per variant")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--classes", type=int, default=300, help="real materials trained on")
    parser.add_argument(
        "--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME"
    )
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows = ablate(args.training_set, args.out, args.minutes, args.seed, args.classes, args.variants)
    if args.markdown:
        header = (
            f"# Architecture ablation (`python -m indexer ablate --minutes {args.minutes:g}`)\n\n"
            f"Each variant trained from scratch for {args.minutes:g} minutes of wall clock on a "
            f"2-core CPU, on the same {args.classes} real materials, seed and augmentation, "
            "and scored on the same closed-set validation queries (augmented scans "
            "retrieved among the class references). Short runs on a smaller task: they "
            "rank how fast each variant learns here, not where each would end.\n\n"
        )
        body = _table(rows) + "\n\n```json\n" + json.dumps(rows, indent=1) + "\n```\n"
        args.markdown.write_text(header + body)


if __name__ == "__main__":
    main()
