"""The training pack: preprocessed library spectra on the Raman grid, their
classes and elements, and held-out validation spectra, in one ``.npz``.

Built on the CPU by ``python -m indexer raman-pack`` (which needs pybaselines
for the preprocessing), read by ``python -m indexer train-raman`` anywhere
torch, numpy and scipy are installed: this module imports numpy only.

Spectra are float16 (a preprocessed spectrum is 0…1; float16 keeps 3 decimal
digits), coverage is a contiguous index range [lo, hi). Each library spectrum
comes clean (``variants[0]``) and with fluorescence, shot noise and cosmic
rays added and then preprocessed as an upload is (``variants[1:]``), so the
training sees what the real baseline removal and despiking leave behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

PACK_FORMAT = "xrdid-raman-pack/1"


@dataclass(frozen=True)
class RamanPack:
    grid: NDArray[np.float64]  # (3,) start, stop, step in cm⁻¹
    variants: NDArray[np.float16]  # (V, N, L): V = 1 clean + synthetic-background variants
    lo: NDArray[np.int32]  # (N,) first covered grid index
    hi: NDArray[np.int32]  # (N,) one past the last covered index
    labels: NDArray[np.int32]  # (N,) class index
    val_x: NDArray[np.float16]  # (M, L) held-out validation spectra (clean)
    val_lo: NDArray[np.int32]
    val_hi: NDArray[np.int32]
    val_labels: NDArray[np.int32]  # (M,) class index of their mineral
    class_names: NDArray[np.str_]  # (C,)
    element_symbols: NDArray[np.str_]  # (E,)
    class_elements: NDArray[np.uint8]  # (C, E) 1 where the mineral holds the element

    @property
    def n_classes(self) -> int:
        return int(self.class_names.size)

    @property
    def n_points(self) -> int:
        return int(self.variants.shape[2])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, format=np.array(PACK_FORMAT), **self.__dict__)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> RamanPack:
        with np.load(path, allow_pickle=False) as data:
            if str(data["format"]) != PACK_FORMAT:
                raise ValueError(f"{path} is not a {PACK_FORMAT} file")
            return cls(**{name: data[name] for name in cls.__dataclass_fields__})


def coverage_mask(
    lo: NDArray[np.integer], hi: NDArray[np.integer], n_points: int
) -> NDArray[np.bool_]:
    """(N, L) masks of the index ranges [lo, hi)."""
    index = np.arange(n_points)
    return (index >= np.asarray(lo)[:, None]) & (index < np.asarray(hi)[:, None])


def coverage_range(mask: NDArray[np.bool_]) -> tuple[int, int]:
    """[lo, hi) of a contiguous coverage mask."""
    covered = np.flatnonzero(mask)
    return int(covered[0]), int(covered[-1]) + 1
