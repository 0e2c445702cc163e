"""Which distortions cost the model most: each switched off in turn.

    python -m indexer distortions [--model model_store/regnet1d.pt]
                                  [--training-set runs/main/training_set.pkl]
                                  [--queries 400] [--markdown FILE]

Closed-set queries (augmented scans of training materials) against the
evaluation library (every training and held-out reference). Every row uses
the same materials, structures, impurity draws and seeds; only its
augmentation differs from the first row's, so the rows differ by the
distortion switched off and by nothing else. The first row is the
evaluation's full augmentation without the impurity phase; the second adds
the impurity back (the evaluation's closed-set row, on fewer queries).
Each row is scored for the embedding alone and as served (re-ranked).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from indexer.evaluate import (
    QUERY_AUGMENTATION,
    Queries,
    augmented_queries,
    evaluation_library,
    query_draws,
    rank_model,
    score,
)
from indexer.studies import load_study, markdown_with_rows, study_parser
from indexer.training_set import TrainingSet
from xrdid.augment import AugmentConfig
from xrdid.embedder import Embedder

ALL_ON = replace(QUERY_AUGMENTATION, impurity_probability=0.0)

VARIANTS: dict[str, AugmentConfig] = {
    "all distortions on (no impurity)": ALL_ON,
    "with an impurity up to 30%": QUERY_AUGMENTATION,
    "no texture, no missing reflections": replace(
        ALL_ON, march_dollase_probability=0.0, texture_sigma=0.0, drop_probability=0.0
    ),
    "no missing reflections": replace(ALL_ON, drop_probability=0.0),
    "no truncated 2θ range": replace(ALL_ON, truncate_probability=0.0),
    "no strain": replace(ALL_ON, strain_max=0.0, anisotropic_strain_max=0.0),
    # Which part of the strain costs: the isotropic one (±3%) makes
    # isostructural look-alikes fit, the anisotropic one (±1% per component)
    # is what the re-rank's tensor fit has to recover.
    "isotropic strain only": replace(ALL_ON, anisotropic_strain_max=0.0),
    "anisotropic strain only": replace(ALL_ON, strain_max=0.0),
    "no zero offset, no displacement": replace(
        ALL_ON, zero_offset_max_deg=0.0, displacement_max_mm=0.0
    ),
    "high counts, low background": replace(
        ALL_ON, peak_counts_range=(1e4, 1e5), background_range=(0.01, 0.05)
    ),
    "Cu Kα1 only": replace(ALL_ON, other_anode_probability=0.0, kalpha2_probability=0.0),
    "crystallites 100–300 nm": replace(ALL_ON, size_nm_range=(100.0, 300.0)),
}


def distortion_rows(
    embedder: Embedder, data: TrainingSet, n_queries: int, seed: int, cache_dir: Path
) -> list[dict]:
    """Top-1 / top-5 of the model alone and as served (re-ranked) for each
    variant, on ``n_queries`` paired queries (at most one per training material)."""
    lib = evaluation_library(data, cache_dir)
    rng = np.random.default_rng(seed)
    indices = rng.choice(len(data.train), size=n_queries, replace=False)
    draws = query_draws(data.train + data.held_out, indices, rng)
    truths = [{lib.labels[int(i)]} for i in indices]
    methods = {"": rank_model(embedder), "served_": rank_model(embedder, rerank=True)}
    rows = []
    for name, cfg in VARIANTS.items():
        queries = Queries(augmented_queries(draws, cfg, name), truths)
        row: dict = {"queries": name}
        for prefix, rank in methods.items():
            ranked, _ = rank(lib, queries)
            labels = [[lib.labels[i] for i in r[:5]] for r in ranked]
            row[f"{prefix}top1"], row[f"{prefix}top5"] = score(labels, truths, False)
        rows.append(row)
        print(
            f"{name:<40}{100 * row['top1']:6.1f} / {100 * row['top5']:5.1f}"
            f"{100 * row['served_top1']:8.1f} / {100 * row['served_top5']:5.1f}",
            flush=True,
        )
    return rows


def markdown(rows: list[dict], version: str, n_queries: int, library: int) -> str:
    lines = [
        "# Which distortions cost the model most (`python -m indexer distortions`)",
        "",
        f"Model `{version}`; {n_queries} closed-set queries against {library} references. "
        "Every row uses the same materials, impurity draws and seeds; it differs from the "
        "first row only as its name says. 'Model': the embedding alone; 'served': "
        "ranked as `/identify` does (`xrdid/ranking/`).",
        "",
        "| queries | model top-1 % | model top-5 % | served top-1 % | served top-5 % |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['queries']} | {100 * r['top1']:.1f} | {100 * r['top5']:.1f} | "
        f"{100 * r['served_top1']:.1f} | {100 * r['served_top5']:.1f} |"
        for r in rows
    ]
    return markdown_with_rows(lines, rows)


def main(argv: list[str] | None = None) -> None:
    parser = study_parser("python -m indexer distortions", __doc__ or "", queries=400, seed=11)
    args = parser.parse_args(argv)
    embedder, data, n_queries = load_study(args)
    rows = distortion_rows(embedder, data, n_queries, args.seed, args.training_set.parent)
    if args.markdown:
        library = len(data.train) + len(data.held_out)
        args.markdown.write_text(markdown(rows, embedder.version, n_queries, library))


if __name__ == "__main__":
    main()
