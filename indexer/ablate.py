"""Measure the architecture choices that matter for spectra, at equal cost.

    python -m indexer ablate --training-set runs/main/training_set.pkl [--minutes 6]

Each variant trains from scratch for the same wall-clock budget on the same
training set, pool settings and seed, and is scored on the same closed-set
validation queries (top-1/top-5 of augmented patterns among all class
references). Variants: the shipped stem stride (0.08° per position after the
stem), less pooling (stride 2), more pooling (stride 8, nearby peaks merge
early) and group norm instead of batch norm. Short runs rank how fast each
variant learns on this machine, not where each would end after hours.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import replace
from pathlib import Path

import torch

from indexer.train import TrainConfig, train
from xrdid.model import RegNet1D, RegNetConfig, count_parameters

SHIPPED = TrainConfig().model

VARIANTS: dict[str, RegNetConfig] = {
    "shipped: stem stride 4, batch norm": SHIPPED,
    "less pooling: stem stride 2": replace(SHIPPED, stem_stride=2),
    "more pooling: stem stride 8": replace(SHIPPED, stem_stride=8),
    "group norm instead of batch norm": replace(SHIPPED, norm="group"),
}


def _share(source: Path, target: Path) -> None:
    """Give a variant the same cached file (hard link, or copy across devices)."""
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:
        target.write_bytes(source.read_bytes())


def ablate(training_set: Path, out: Path, minutes: float, seed: int) -> list[dict]:
    rows = []
    for name, model_cfg in VARIANTS.items():
        folder = out / name.split(":")[0].replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        _share(training_set, folder / "training_set.pkl")
        validation = training_set.parent / "validation.npz"
        if validation.exists():
            _share(validation, folder / "validation.npz")
        cfg = TrainConfig(out=folder, ship_to=folder, minutes=minutes, seed=seed, model=model_cfg)
        train(cfg, resume=False)
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
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows = ablate(args.training_set, args.out, args.minutes, args.seed)
    if args.markdown:
        header = (
            f"# Architecture ablation (`python -m indexer ablate --minutes {args.minutes:g}`)\n\n"
            "Each variant trained from scratch for the same wall-clock budget on a 2-core "
            "CPU, same training set, seed and augmentation; scored on the same closed-set "
            "validation queries. Short runs: they rank how fast each variant learns here.\n\n"
        )
        body = _table(rows) + "\n\n```json\n" + json.dumps(rows, indent=1) + "\n```\n"
        args.markdown.write_text(header + body)


if __name__ == "__main__":
    main()
