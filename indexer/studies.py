"""What the synthetic-query studies (distortions, rerank-weights) share:
their command line, loading the model and training set it names, and the
markdown they write."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from indexer.training_set import TrainingSet, training_set_at
from xrdid.data_paths import PROJECT_ROOT
from xrdid.embedder import Embedder


def study_parser(prog: str, doc: str, queries: int, seed: int) -> argparse.ArgumentParser:
    """--model, --training-set, --queries, --seed and --markdown, with these defaults."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    parser.add_argument("--model", type=Path, default=PROJECT_ROOT / "model_store" / "regnet1d.pt")
    parser.add_argument("--training-set", type=Path, default=Path("runs/main/training_set.pkl"))
    parser.add_argument("--queries", type=int, default=queries)
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    return parser


def load_study(args: argparse.Namespace) -> tuple[Embedder, TrainingSet, int]:
    """The model, the training set and the query count (at most one per training material)."""
    logging.basicConfig(level=logging.WARNING)
    embedder = Embedder.load(args.model)
    data = training_set_at(args.training_set)
    return embedder, data, min(args.queries, len(data.train))


def markdown_with_rows(lines: list[str], rows: list[dict]) -> str:
    """The markdown lines, then every row as a JSON block (to read back exactly)."""
    return "\n".join(lines) + "\n\n```json\n" + json.dumps(rows, indent=1) + "\n```\n"
