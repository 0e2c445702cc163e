"""Patterns embedded per second, CPU against CUDA, at batch sizes 1–1,024.

    python -m benchmarks.gpu [--model model_store/regnet1d.pt] [--json FILE]

The service embeds one upload per forward pass and a batch job many
(:func:`xrdid.identify.identify_many`); this measures what each batch size
buys on each device, in one run: the shipped model on real-sized inputs
(2 × 4,251 points), warm-up passes first, then the median of several timed
passes (CUDA synchronised). It imports only the model code (torch, numpy),
so it runs on a GPU machine without the service's other dependencies.
Without CUDA it measures the CPU alone and says so.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from xrdid.data_paths import PROJECT_ROOT
from xrdid.embedder import Embedder

BATCH_SIZES = (1, 4, 16, 64, 256, 1024)
# CPU passes above this batch size take seconds each on 2 cores: fewer repeats.
_LARGE = 256


def _rate(embedder: Embedder, inputs: np.ndarray, repeats: int) -> float:
    """Patterns per second: the median of ``repeats`` timed passes."""
    batch = torch.from_numpy(inputs).to(embedder.device)
    times = []
    with torch.inference_mode():
        for _ in range(2):  # warm-up (cuDNN autotuning, allocator)
            embedder.model(batch)
        for _ in range(repeats):
            if embedder.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            embedder.model(batch)
            if embedder.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return inputs.shape[0] / float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model", type=Path, default=PROJECT_ROOT / "model_store" / "regnet1d.pt")
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")
    args = parser.parse_args(argv)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rng = np.random.default_rng(0)
    rows = []
    for device in devices:
        embedder = Embedder.load(args.model, device=device)
        for size in BATCH_SIZES:
            inputs = rng.random((size, 2, 4251), dtype=np.float32)
            repeats = 3 if device == "cpu" and size >= _LARGE else 10
            rate = _rate(embedder, inputs, repeats)
            rows.append({"device": device, "batch": size, "patterns_per_s": rate})
            print(f"{device:>5} batch {size:>5}: {rate:10.0f} patterns/s", flush=True)
    if "cuda" not in devices:
        print("no CUDA device: CPU only")
    else:
        print(f"GPU: {torch.cuda.get_device_name(0)}; CPU threads: {torch.get_num_threads()}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
