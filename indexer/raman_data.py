"""The RRUFF archive preprocessed once: every spectrum on the Raman grid as
the service would see it, with its labels and the split's role.

Shared by ``raman-pack``, ``evaluate-raman`` and the tests; cached in
``data_cache/raman/preprocessed-<hash>.npz`` (the hash covers the grid and
the preprocessing settings, so changing either rebuilds it).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from xrdid.data_paths import PROJECT_ROOT
from xrdid.raman.archive import CACHE_DIR, RruffRecord, load_records
from xrdid.raman.grid import RAMAN_GRID
from xrdid.raman.preprocess import DEFAULT_BASELINE, DEFAULT_SETTINGS, preprocess_spectrum
from xrdid.raman.split import RamanSplit, Role, make_split

log = logging.getLogger(__name__)

SPLIT_PATH = PROJECT_ROOT / "model_store" / "raman_split.json"


@dataclass(frozen=True)
class PreprocessedArchive:
    records: list[RruffRecord]
    intensity: NDArray[np.float32]  # (N, L)
    mask: NDArray[np.bool_]  # (N, L)
    split: RamanSplit

    def roles(self) -> NDArray[np.str_]:
        return np.array([self.split.role(r.mineral, r.rruff_id).value for r in self.records])

    def where(self, role: Role) -> NDArray[np.int64]:
        return np.flatnonzero(self.roles() == role.value)

    def class_of(self, index: int) -> str:
        return self.split.classes[self.records[index].mineral]


def load_split(path: Path = SPLIT_PATH, records: list[RruffRecord] | None = None) -> RamanSplit:
    """The shipped split; drawn (and written) when the file does not exist."""
    if path.exists():
        return RamanSplit.load(path)
    records = records if records is not None else load_records()
    split = make_split((r.mineral, r.rruff_id) for r in records)
    split.save(path)
    log.info("wrote the Raman split to %s", path)
    return split


def _settings_hash() -> str:
    settings = {
        "grid": RAMAN_GRID.describe(),
        "baseline": str(DEFAULT_BASELINE),
        "settings": asdict(DEFAULT_SETTINGS),
        "despike": "v1",
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def preprocessed_archive(
    split_path: Path = SPLIT_PATH, cache: Path = CACHE_DIR
) -> PreprocessedArchive:
    """Every archive spectrum preprocessed (about a minute the first time)."""
    records = load_records(cache=cache)
    split = load_split(split_path, records)
    path = cache / f"preprocessed-{_settings_hash()}.npz"
    names = np.array([r.file_name for r in records])
    if path.exists():
        with np.load(path) as data:
            if np.array_equal(data["names"], names):
                return PreprocessedArchive(records, data["intensity"], data["mask"], split)
    intensity = np.zeros((len(records), RAMAN_GRID.n_points), dtype=np.float32)
    mask = np.zeros((len(records), RAMAN_GRID.n_points), dtype=bool)
    for index, record in enumerate(records):
        result = preprocess_spectrum(record.spectrum)
        intensity[index], mask[index] = result.intensity, result.mask
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, names=names, intensity=intensity, mask=mask)
    tmp.replace(path)
    return PreprocessedArchive(records, intensity, mask, split)
