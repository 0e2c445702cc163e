"""train-raman: a few steps on a tiny pack of real spectra; its import footprint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer.train_raman import RamanTrainConfig, train
from xrdid.model import RegNetConfig
from xrdid.raman.checkpoint import RamanEmbedder, model_inputs
from xrdid.raman.pack import RamanPack, coverage_mask, coverage_range
from xrdid.raman.preprocess import preprocess_spectrum

MINERALS = ("Calcite", "Quartz", "Diamond", "Forsterite")


@pytest.fixture(scope="module")
def tiny_pack(rruff_records, tmp_path_factory) -> Path:
    rows = [r for m in MINERALS for r in [q for q in rruff_records if q.mineral == m][:6]]
    pre = [preprocess_spectrum(r.spectrum) for r in rows]
    ranges = np.array([coverage_range(p.mask) for p in pre], dtype=np.int32)
    x = np.stack([p.intensity for p in pre]).astype(np.float16)
    labels = np.array([MINERALS.index(r.mineral) for r in rows], dtype=np.int32)
    symbols = ["C", "O", "Mg", "Si", "Ca"]
    table = np.array(
        [
            [s in r.elements for s in symbols]
            for r in (next(q for q in rows if q.mineral == m) for m in MINERALS)
        ],
        dtype=np.uint8,
    )
    pack = RamanPack(
        grid=np.array([100.0, 1800.0, 1.0]),
        variants=x[None],
        lo=ranges[:, 0],
        hi=ranges[:, 1],
        labels=labels,
        val_x=x[:6],
        val_lo=ranges[:6, 0],
        val_hi=ranges[:6, 1],
        val_labels=labels[:6],
        class_names=np.array(MINERALS),
        element_symbols=np.array(symbols),
        class_elements=table,
    )
    path = tmp_path_factory.mktemp("pack") / "pack.npz"
    pack.save(path)
    loaded = RamanPack.load(path)
    np.testing.assert_array_equal(loaded.variants, pack.variants)
    np.testing.assert_array_equal(
        coverage_mask(loaded.lo, loaded.hi, 1701).sum(1), ranges[:, 1] - ranges[:, 0]
    )
    return path


def test_a_few_steps_write_a_loadable_checkpoint_and_a_curve(
    tiny_pack: Path, tmp_path: Path
) -> None:
    cfg = RamanTrainConfig(
        pack=tiny_pack,
        out=tmp_path / "run",
        ship_to=tmp_path / "ship",
        steps=6,
        steps_per_epoch=3,
        batch_size=8,
        warmup_steps=2,
        model=RegNetConfig(stem_stride=2, widths=(16, 32), depths=(1, 1), embedding_dim=32),
    )
    path = train(cfg)
    curve = (tmp_path / "run" / "learning_curve.csv").read_text().splitlines()
    assert len(curve) == 3 and curve[0].startswith("step,loss,element_loss")
    embedder = RamanEmbedder.load(path)
    assert embedder.card["training"]["steps_done"] == 6
    assert embedder.element_symbols == ["C", "O", "Mg", "Si", "Ca"]
    pack = RamanPack.load(tiny_pack)
    inputs = model_inputs(
        pack.val_x.astype(np.float32), coverage_mask(pack.val_lo, pack.val_hi, 1701)
    )
    embeddings = embedder.embed_array(inputs)
    assert embeddings.shape == (6, 32)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    probabilities = embedder.element_probabilities(embeddings)
    assert probabilities.shape == (6, 5) and np.all((probabilities > 0) & (probabilities < 1))


def test_the_command_trains_a_model_on_square_roots_when_asked(
    tiny_pack: Path, tmp_path: Path
) -> None:
    """--intensity-scale reaches the model, and its checkpoint serves it so."""
    from indexer.train_raman import main

    ship = tmp_path / "ship"
    arguments = ["--pack", str(tiny_pack), "--out", str(tmp_path / "run"), "--ship-to", str(ship)]
    main([*arguments, "--steps", "2", "--steps-per-epoch", "2", "--batch-size", "4"])
    assert RamanEmbedder.load(ship / "raman_regnet1d.pt").model.cfg.intensity_scale == "linear"
    main([*arguments, "--steps", "2", "--steps-per-epoch", "2", "--batch-size", "4",
          "--intensity-scale", "sqrt"])  # fmt: skip
    assert RamanEmbedder.load(ship / "raman_regnet1d.pt").model.cfg.intensity_scale == "sqrt"


BLOCKER = """
import importlib.abc, importlib.machinery, sys
BANNED = {banned!r}
class _Loader(importlib.abc.Loader):
    def create_module(self, spec):
        raise ModuleNotFoundError("not on the GPU machine: " + spec.name, name=spec.name)
    def exec_module(self, module):
        pass
class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BANNED:
            return importlib.machinery.ModuleSpec(name, _Loader())
        return None
sys.meta_path.insert(0, _Finder())
"""
# Installed here, absent on the GPU machine (torch, numpy and scipy only).
BANNED = {
    "pybaselines", "pymatgen", "faiss", "tqdm", "pandas", "matplotlib", "pydantic",
    "fastapi", "spglib", "pyxtal", "jcamp", "spc_io", "renishawWiRE", "defusedxml",
}  # fmt: skip


def test_training_imports_only_torch_numpy_and_scipy(tmp_path: Path) -> None:
    """With every other dependency made unimportable, the training job and
    what it imports still load (and train: the fixture-free smoke of the
    command is in docs/raman-science.md)."""
    (tmp_path / "sitecustomize.py").write_text(BLOCKER.format(banned=BANNED))
    code = (
        "import indexer.train_raman, xrdid.raman.pack, xrdid.raman.augment, xrdid.raman.checkpoint"
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    blocked = subprocess.run(
        [sys.executable, "-c", "import pybaselines"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "not on the GPU machine" in blocked.stderr  # the blocker works
