"""Build the Raman training pack (``xrdid.raman.pack``) from the RRUFF archive.

    python -m indexer raman-pack [--out runs/raman/pack.npz] [--variants 2]

Library spectra (the split's ``library`` role) clean and with ``--variants``
synthetic fluorescence backgrounds + shot noise + cosmic rays each, every one
preprocessed as an upload is; the held-out validation spectra for the
learning curve; class names and elements. The split is
``model_store/raman_split.json`` (drawn on first use). About 2 minutes.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from indexer.raman_data import SPLIT_PATH, PreprocessedArchive, preprocessed_archive
from xrdid.raman.backgrounds import add_spikes, poisson_counts, random_fluorescence
from xrdid.raman.chemistry import ELEMENTS
from xrdid.raman.grid import RAMAN_GRID
from xrdid.raman.pack import RamanPack, coverage_range
from xrdid.raman.preprocess import preprocess_spectrum
from xrdid.raman.spectrum import make_raman_spectrum
from xrdid.raman.split import Role

log = logging.getLogger("indexer.raman_pack")

DEFAULT_PACK = Path("runs/raman/pack.npz")

# Synthetic measurement conditions of the variants: as in
# benchmarks/raman_preprocessing.py (fluorescence 0.1–10× the strongest band,
# 10^2.5–10^4 counts at it, 0–2 cosmic rays).
FLUORESCENCE_RANGE = (0.1, 10.0)
PEAK_COUNTS_RANGE = (10**2.5, 10**4)


def class_elements(
    data: PreprocessedArchive, class_names: list[str]
) -> tuple[list[str], np.ndarray]:
    """Elements present in any class, and the (C, E) table of which class has which."""
    of_class: dict[str, set[str]] = {name: set() for name in class_names}
    for record in data.records:
        name = data.split.classes.get(record.mineral)
        if name in of_class:
            of_class[name].update(record.elements)
    symbols = [e for e in ELEMENTS if any(e in found for found in of_class.values())]
    table = np.zeros((len(class_names), len(symbols)), dtype=np.uint8)
    for row, name in enumerate(class_names):
        for col, symbol in enumerate(symbols):
            table[row, col] = symbol in of_class[name]
    return symbols, table


def fluorescent_variant(record_spectrum, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One spectrum with a synthetic background, noise and spikes, preprocessed."""
    x, y = record_spectrum.shift_cm1, record_spectrum.intensity
    bands = np.clip(y, 0.0, None)
    bands = bands / (bands.max() or 1.0)
    level = float(np.exp(rng.uniform(*np.log(FLUORESCENCE_RANGE))))
    counts = poisson_counts(
        rng,
        bands + random_fluorescence(rng, x, level),
        float(np.exp(rng.uniform(*np.log(PEAK_COUNTS_RANGE)))),
    )
    counts, _ = add_spikes(rng, counts, int(rng.integers(0, 3)))
    result = preprocess_spectrum(make_raman_spectrum(x, counts))
    return result.intensity, result.mask


def build_pack(data: PreprocessedArchive, variants: int, seed: int) -> RamanPack:
    class_names = data.split.library_classes
    index_of = {name: i for i, name in enumerate(class_names)}
    library = data.where(Role.LIBRARY)
    validation = data.where(Role.VALIDATION)
    n_points = RAMAN_GRID.n_points
    stack = np.zeros((1 + variants, library.size, n_points), dtype=np.float16)
    lo = np.zeros(library.size, dtype=np.int32)
    hi = np.zeros(library.size, dtype=np.int32)
    rng = np.random.default_rng(seed)
    for row, index in enumerate(library):
        stack[0, row] = data.intensity[index]
        lo[row], hi[row] = coverage_range(data.mask[index])
        for variant in range(1, variants + 1):
            intensity, mask = fluorescent_variant(data.records[index].spectrum, rng)
            # Keep the clean spectrum's coverage: the variant's differs only
            # where the background removal reached the ends.
            stack[variant, row] = intensity * data.mask[index] * mask
        if row % 500 == 0:
            log.info("pack: %d / %d library spectra", row, library.size)
    val_ranges = np.array([coverage_range(data.mask[i]) for i in validation], dtype=np.int32)
    symbols, table = class_elements(data, class_names)
    return RamanPack(
        grid=np.array([RAMAN_GRID.start_cm1, RAMAN_GRID.stop_cm1, RAMAN_GRID.step_cm1]),
        variants=stack,
        lo=lo,
        hi=hi,
        labels=np.array([index_of[data.class_of(i)] for i in library], dtype=np.int32),
        val_x=data.intensity[validation].astype(np.float16),
        val_lo=val_ranges[:, 0],
        val_hi=val_ranges[:, 1],
        val_labels=np.array([index_of[data.class_of(i)] for i in validation], dtype=np.int32),
        class_names=np.array(class_names),
        element_symbols=np.array(symbols),
        class_elements=table,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m indexer raman-pack", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_PACK)
    parser.add_argument("--split", type=Path, default=SPLIT_PATH)
    parser.add_argument("--variants", type=int, default=2, help="synthetic-background copies")
    parser.add_argument("--seed", type=int, default=20261204)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    pack = build_pack(preprocessed_archive(args.split), args.variants, args.seed)
    pack.save(args.out)
    log.info(
        "wrote %s: %d library spectra × %d variants, %d validation spectra, %d classes, "
        "%d elements, %.1f MB",
        args.out,
        pack.labels.size,
        pack.variants.shape[0],
        pack.val_labels.size,
        pack.n_classes,
        pack.element_symbols.size,
        args.out.stat().st_size / 1e6,
    )


if __name__ == "__main__":
    main()
