"""The training loop's parts: the sample pool, the mixture targets and the held-out split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from indexer.ablate import VARIANTS
from indexer.sample_pool import MAX_PHASES, SamplePool
from indexer.train import mixture_targets
from indexer.training_set import TrainingClass, shipped_held_out, split_held_out
from xrdid.grid import MODEL_GRID
from xrdid.model import AdaCos, RegNet1D


def test_mixture_targets_put_each_fraction_on_its_class():
    labels = torch.tensor([[2, -1, -1], [0, 3, 1], [1, 2, -1]])
    fractions = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.3, 0.2], [0.7, 0.3, 0.0]])
    targets = mixture_targets(labels, fractions, 4)
    expected = torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.5, 0.2, 0.0, 0.3], [0.0, 0.7, 0.3, 0.0]])
    assert torch.allclose(targets, expected)


def test_mixture_targets_renormalise_a_torn_row():
    # A row read mid-write: a -1 label with a stale nonzero fraction.
    targets = mixture_targets(torch.tensor([[1, -1, -1]]), torch.tensor([[0.6, 0.4, 0.0]]), 3)
    assert torch.allclose(targets, torch.tensor([[0.0, 1.0, 0.0]]))


def test_adacos_soft_targets_equal_labels_when_one_hot():
    torch.manual_seed(0)
    embeddings = F.normalize(torch.randn(8, 16), dim=1)
    labels = torch.randint(0, 5, (8,))
    head = AdaCos(16, 5).eval()
    hard = head(embeddings, labels)
    soft = head(embeddings, labels, F.one_hot(labels, 5).float())
    assert torch.allclose(hard, soft)


@pytest.fixture(scope="module")
def classes(rock_salt_classes) -> list[TrainingClass]:
    return rock_salt_classes[:4]


def test_pool_serves_augmented_batches_with_valid_phase_labels(classes):
    pool = SamplePool(classes, size=40, workers=1, seed=1)
    try:
        pool.wait_until(40, poll_seconds=0.2)
        inputs, labels, fractions = pool.batch(32, torch.Generator().manual_seed(0))
    finally:
        pool.close()
    assert inputs.shape == (32, 2, MODEL_GRID.n_points) and inputs.dtype == torch.float32
    assert labels.shape == fractions.shape == (32, MAX_PHASES)
    assert (labels[:, 0] >= 0).all() and (labels < len(classes)).all()
    used = labels >= 0
    assert torch.allclose(fractions.sum(dim=1), torch.ones(32), atol=1e-5)
    assert (fractions[~used] == 0).all() and (fractions[used] > 0).all()
    for row in labels.numpy():  # phases of one sample are distinct
        phases = row[row >= 0]
        assert len(set(phases)) == len(phases)
    assert np.isfinite(inputs.numpy()).all()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_ablation_variant_embeds_the_model_grid(variant):
    model = RegNet1D(VARIANTS[variant]).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 2, MODEL_GRID.n_points))
    assert out.shape == (2, VARIANTS[variant].embedding_dim)
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)


def test_a_shipped_models_held_out_file_stays_held_out_under_another_key(tmp_path: Path):
    """held_out.json names a material by the key the readers gave it then
    (a CIF once read as P1); read today with its space group, its file
    still keeps it out of training."""
    (tmp_path / "held_out.json").write_text(
        json.dumps([{"key": "MnO2|1", "name": "MnO2", "sources": ["a/MnO2_136.cif"]}])
    )

    def material(key: str, *sources: str) -> TrainingClass:
        return TrainingClass(
            key, key, key.split("|")[0], int(key.split("|")[1]), False, list(sources)
        )

    classes = [
        material("MnO2|136", "a/MnO2_136.cif"),
        material("MnO2|1", "b/other.cif"),
        material("TiO2|136", "a/TiO2_136.cif"),
    ]
    held_out = shipped_held_out(tmp_path / "held_out.json")
    train, held = split_held_out(classes, seed=0, held_out=held_out)
    assert [c.key for c in held] == ["MnO2|136", "MnO2|1"]
    assert [c.key for c in train] == ["TiO2|136"]
    assert held_out is not None and held_out.formulas == {"MnO2"}
    assert shipped_held_out(tmp_path / "missing.json") is None


def test_a_missing_training_set_is_built_once_with_the_shipped_held_out_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rock_salt_classes
):
    """The evaluation on a fresh clone: no saved training set, so it is built
    (with the shipped model's held-out list), saved, and read back after."""
    import indexer.training_set as training_set

    calls = []

    def build(n_generated, seed, workers=2, held_out_list=None):
        calls.append((n_generated, seed, held_out_list))
        return training_set.TrainingSet(rock_salt_classes[:4], rock_salt_classes[4:], {}, seed)

    monkeypatch.setattr(training_set, "build_training_set", build)
    path = tmp_path / "runs" / "training_set.pkl"
    first = training_set.training_set_at(path)
    again = training_set.training_set_at(path)
    assert len(calls) == 1 and path.is_file()
    n_generated, seed, held_out = calls[0]
    assert (n_generated, seed) == (training_set.SHIPPED_GENERATED, training_set.SHIPPED_SEED)
    assert held_out is not None and len(held_out.keys) == 299  # model_store/held_out.json
    assert [c.key for c in again.train] == [c.key for c in first.train] == ["c0", "c1", "c2", "c3"]
