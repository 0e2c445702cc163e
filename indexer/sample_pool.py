"""A shared-memory pool of augmented training samples, refilled continuously.

Augmentation plus BEADS costs ~25 ms per sample on one core while a training
step costs ~5 ms per sample, so on a 2-core machine the trainer would starve
if it waited for fresh samples. Producer processes keep overwriting random
slots of a large pool with new augmented samples; the trainer draws batches
from whatever the pool holds. Every sample went through the full
augmentation and the service's preprocessing; each is reused a few times
before it is replaced, and the pool gets fresher the longer training runs.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass

import numpy as np
import torch

from indexer.training_set import TrainingClass
from xrdid.augment import FULL_AUGMENTATION, AugmentConfig, augmented_input
from xrdid.grid import MODEL_GRID


@dataclass
class PoolTensors:
    inputs: torch.Tensor  # (size, 2, L) float16, shared
    labels: torch.Tensor  # (size,) int64, shared; -1 = empty slot
    produced: torch.Tensor  # (1,) int64, shared: samples generated so far


def _producer(
    worker: int,
    n_workers: int,
    seed: int,
    classes: list[TrainingClass],
    tensors: PoolTensors,
    stop: mp.synchronize.Event,
    cfg: AugmentConfig,
) -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng([seed, worker])
    size = tensors.labels.shape[0]
    # Each worker first fills its share of the empty slots, then overwrites
    # random ones. (A batch may read a slot mid-write: a rare, harmless torn
    # sample, cheaper than a lock around every read.)
    first_fill = iter(range(worker, size, n_workers))
    while not stop.is_set():
        label = int(rng.integers(len(classes)))
        cls = classes[label]
        sticks = cls.sticks[int(rng.integers(len(cls.sticks)))]
        other = classes[int(rng.integers(len(classes)))]
        impurity = other.sticks[0] if other is not cls else None
        sample = augmented_input(sticks, rng, cfg, impurity)
        slot = next(first_fill, None)
        if slot is None:
            slot = int(rng.integers(size))
        tensors.inputs[slot, 0] = torch.from_numpy(sample.intensity.astype(np.float16))
        tensors.inputs[slot, 1] = torch.from_numpy(sample.mask.astype(np.float16))
        tensors.labels[slot] = label
        tensors.produced += 1


class SamplePool:
    """Start producers, draw batches, stop producers."""

    def __init__(
        self,
        classes: list[TrainingClass],
        size: int,
        workers: int,
        seed: int,
        cfg: AugmentConfig = FULL_AUGMENTATION,
    ) -> None:
        self.tensors = PoolTensors(
            inputs=torch.zeros((size, 2, MODEL_GRID.n_points), dtype=torch.float16).share_memory_(),
            labels=torch.full((size,), -1, dtype=torch.int64).share_memory_(),
            produced=torch.zeros(1, dtype=torch.int64).share_memory_(),
        )
        context = mp.get_context("fork")
        self._stop = context.Event()
        self._processes = [
            context.Process(
                target=_producer,
                args=(w, workers, seed, classes, self.tensors, self._stop, cfg),
                daemon=True,
            )
            for w in range(workers)
        ]
        for process in self._processes:
            process.start()

    @property
    def produced(self) -> int:
        return int(self.tensors.produced.item())

    def filled(self) -> int:
        return int((self.tensors.labels >= 0).sum().item())

    def wait_until(self, n: int, poll_seconds: float = 1.0) -> None:
        while self.filled() < n:
            if not any(p.is_alive() for p in self._processes):
                raise RuntimeError("all sample producers died")
            time.sleep(poll_seconds)

    def batch(self, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs float32 (B, 2, L), labels (B,)) drawn from filled slots."""
        filled = torch.nonzero(self.tensors.labels >= 0).flatten()
        pick = filled[torch.randint(len(filled), (size,), generator=generator)]
        return self.tensors.inputs[pick].float(), self.tensors.labels[pick].clone()

    def close(self) -> None:
        self._stop.set()
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
