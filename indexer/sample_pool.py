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
from xrdid.augment import FULL_AUGMENTATION, AugmentConfig, augmented_sample
from xrdid.grid import MODEL_GRID

# Phases per sample at most (main + mixed-in); unused label slots hold -1.
MAX_PHASES = 3


@dataclass
class PoolTensors:
    inputs: torch.Tensor  # (size, 2, L) float16, shared
    labels: torch.Tensor  # (size, MAX_PHASES) int64, shared; main phase first; -1 = none
    fractions: torch.Tensor  # (size, MAX_PHASES) float32, shared: fraction of each phase
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
    # sample, cheaper than a lock around every read; the main label of a
    # filled slot is never -1, and the trainer renormalises the fractions.)
    first_fill = iter(range(worker, size, n_workers))
    while not stop.is_set():
        labels = rng.choice(len(classes), size=MAX_PHASES, replace=False)
        cls = classes[int(labels[0])]
        sticks = cls.sticks[int(rng.integers(len(cls.sticks)))]
        candidates = [classes[int(i)].sticks[0] for i in labels[1:]]
        sample, fractions = augmented_sample(sticks, rng, cfg, candidates)
        slot = next(first_fill, None)
        if slot is None:
            slot = int(rng.integers(size))
        tensors.inputs[slot, 0] = torch.from_numpy(sample.intensity.astype(np.float16))
        tensors.inputs[slot, 1] = torch.from_numpy(sample.mask.astype(np.float16))
        padded = np.zeros(MAX_PHASES)
        padded[: len(fractions)] = fractions
        tensors.fractions[slot] = torch.from_numpy(padded.astype(np.float32))
        tensors.labels[slot] = torch.from_numpy(np.where(padded > 0, labels, -1))
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
            labels=torch.full((size, MAX_PHASES), -1, dtype=torch.int64).share_memory_(),
            fractions=torch.zeros((size, MAX_PHASES), dtype=torch.float32).share_memory_(),
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
        return int((self.tensors.labels[:, 0] >= 0).sum().item())

    def wait_until(self, n: int, poll_seconds: float = 1.0) -> None:
        while self.filled() < n:
            if not any(p.is_alive() for p in self._processes):
                raise RuntimeError("all sample producers died")
            time.sleep(poll_seconds)

    def batch(
        self, size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs float32 (B, 2, L), labels (B, MAX_PHASES), fractions
        (B, MAX_PHASES)) drawn from filled slots; labels[:, 0] is the main phase."""
        filled = torch.nonzero(self.tensors.labels[:, 0] >= 0).flatten()
        pick = filled[torch.randint(len(filled), (size,), generator=generator)]
        return (
            self.tensors.inputs[pick].float(),
            self.tensors.labels[pick].clone(),
            self.tensors.fractions[pick].clone(),
        )

    def close(self) -> None:
        self._stop.set()
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
