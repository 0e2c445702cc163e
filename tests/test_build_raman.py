"""The default Raman library holds every archive spectrum of a named mineral;
the evaluation's library (``--split-only``) holds the split's library spectra."""

from __future__ import annotations

from pathlib import Path

from indexer.build_raman import build
from indexer.raman_data import SPLIT_PATH, load_split
from xrdid.data_paths import PROJECT_ROOT
from xrdid.library import Library
from xrdid.raman.archive import load_records
from xrdid.raman.checkpoint import RamanEmbedder
from xrdid.raman.split import Role

MODEL = PROJECT_ROOT / "model_store" / "raman_regnet1d.pt"
# Calcite has held-out samples; Forsterite is a mineral the split keeps from
# the library and the model (unseen).
MINERALS = ("Calcite", "Forsterite")


def built_ids(tmp_path: Path, *, split_only: bool) -> set[str]:
    path = tmp_path / ("split.sqlite" if split_only else "all.sqlite")
    report = build(path, MODEL, SPLIT_PATH, MINERALS, split_only=split_only)
    with Library.open(path, RamanEmbedder.load(MODEL)) as library:
        ids = {key[1] for key in library.source_keys()}
    assert report["references"] == len(ids)
    return ids


def test_the_default_library_holds_every_spectrum_and_the_split_one_its_library_part(
    tmp_path: Path,
) -> None:
    records = [r for r in load_records() if r.mineral in MINERALS]
    split = load_split(SPLIT_PATH, load_records())
    roles = {r.file_name.removesuffix(".txt"): split.role(r.mineral, r.rruff_id) for r in records}
    assert {Role.LIBRARY, Role.TEST, Role.UNSEEN_TEST} <= set(roles.values())

    assert built_ids(tmp_path, split_only=False) == set(roles)
    assert built_ids(tmp_path, split_only=True) == {
        name for name, role in roles.items() if role is Role.LIBRARY
    }
