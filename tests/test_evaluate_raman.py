"""evaluate-raman's measures: ROC AUC, top-k, the re-rank's ordering and mixtures."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from indexer.evaluate_raman import (
    QuerySet,
    Reranked,
    element_aucs,
    fused_ranking,
    match_rows,
    mixture_answers,
    no_match_with_more_minerals,
    profile_limits,
    roc_auc,
    topk,
    unseen_minerals_added,
)
from xrdid.data_paths import PROJECT_ROOT
from xrdid.raman.checkpoint import RamanEmbedder, model_inputs
from xrdid.raman.grid import RAMAN_GRID
from xrdid.raman.identify import RamanRanking, RamanReferences, identify
from xrdid.raman.split import Role


def _references(embeddings: np.ndarray, intensity: np.ndarray, names: list[str]) -> RamanReferences:
    """One reference per mineral ``names``, without chemistry (oxygen only)."""
    return RamanReferences(
        embeddings=embeddings,
        intensity=intensity,
        class_index=np.arange(len(names)),
        class_names=names,
        class_elements=np.zeros((len(names), 1), dtype=np.uint8),
        element_symbols=["O"],
    )


def test_roc_auc_counts_ordered_pairs() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 60).astype(float)  # ties on purpose
    positive = rng.random(60) < 0.4
    pairs = [
        1.0 if p > n else 0.5 if p == n else 0.0
        for p, n in itertools.product(scores[positive], scores[~positive])
    ]
    assert roc_auc(scores, positive) == pytest.approx(np.mean(pairs))


def test_element_auc_needs_enough_spectra() -> None:
    truth = np.zeros((20, 2), dtype=bool)
    truth[:10, 0] = True
    truth[:3, 1] = True
    probabilities = np.where(truth, 0.9, 0.1)
    assert element_aucs(probabilities, truth, ["Ca", "Zn"]) == {"Ca": 1.0}


def test_topk_and_fused_ranking() -> None:
    ranked = [np.array([3, 1, 2]), np.array([0, 2, 1])]
    assert topk(ranked, np.array([3, 1])) == (0.5, 1.0)
    rr = Reranked(
        candidates=[np.array([5, 7])],
        cosine=[np.array([0.9, 0.8])],
        hqi=[np.array([0.6, 0.7])],
        correlation={6: [np.array([0.1, 0.5])]},
    )
    assert fused_ranking(rr, 0.0, 6)[0][0].tolist() == [5, 7]
    order, top = fused_ranking(rr, 1.0, 6)
    assert order[0].tolist() == [7, 5] and top[0] == pytest.approx(1.3)
    # The match model reads the first candidate's fused score and hit quality index.
    np.testing.assert_allclose(match_rows(rr, 0.0, 6), [[0.9, 0.6]])
    np.testing.assert_allclose(match_rows(rr, 1.0, 6), [[1.3, 0.7]])


def _bands(*centres: int, points: int = 400) -> np.ndarray:
    x = np.arange(points)
    return sum(np.exp(-0.5 * ((x - c) / 3.0) ** 2) for c in centres).astype(np.float32)


def test_profile_limits_count_samples_another_mineral_fits_better() -> None:
    """Three library minerals; a held-out sample of mineral 0 that looks like
    mineral 1 is counted as one no profile ranking can put first (and as a
    miss of the ranking given), one that looks like its own is not; an
    absent mineral that looks like mineral 2 correlates above the floor."""
    library = np.stack([_bands(50, 200), _bands(120, 300), _bands(80, 250)])
    spectra = np.stack(
        [
            _bands(51, 201),  # test: mineral 0, like its own
            _bands(121, 299),  # test: mineral 0, like mineral 1
            _bands(50, 200),  # validation: mineral 0
            _bands(120, 301),  # validation: mineral 1
            _bands(81, 251),  # unseen test: mineral 2 offset by 1 cm⁻¹
            _bands(20, 370),  # unseen test: like nothing
        ]
    )
    data = SimpleNamespace(intensity=spectra, mask=np.ones(spectra.shape, dtype=bool))
    refs = _references(np.eye(3, dtype=np.float32), library, ["a", "b", "c"])

    def queries(indices: list[int], truth: list[int]) -> QuerySet:
        return QuerySet(np.array(indices), np.zeros((len(indices), 3), np.float32), np.array(truth))

    sets = {
        Role.TEST: queries([0, 1], [0, 0]),
        Role.VALIDATION: queries([2, 3], [0, 1]),
        Role.UNSEEN_TEST: queries([4, 5], [-1, -1]),
    }
    ranked = [np.array([0, 1]), np.array([1, 0])]
    limits = profile_limits(data, refs, sets, ranked, 3)  # type: ignore[arg-type]
    assert limits["test_other_mineral_closer"] == 0.5
    assert limits["validation_other_mineral_closer"] == 0.0
    assert (limits["test_top1_misses"], limits["test_top1_misses_other_closer"]) == (1, 1)
    assert limits["unseen_test_above_floor"] == 0.5


def test_mixture_answers_find_both_minerals_of_distinct_spectra() -> None:
    """Twelve minerals of two bands each, none shared, on the real grid and
    embedded by the shipped Raman model: an even mixture of two held-out
    samples puts one of them first and both in the top 5; one of 85% puts
    the major one first (so the share goes to the right spectrum)."""
    embedder = RamanEmbedder.load(PROJECT_ROOT / "model_store" / "raman_regnet1d.pt")
    points = RAMAN_GRID.shift_cm1.size
    centres = [(150 + 60 * k, 1000 + 60 * k) for k in range(12)]
    library = np.stack([_bands(a, b, points=points) for a, b in centres])
    held_out = np.stack([_bands(a + 1, b - 1, points=points) for a, b in centres])
    mask = np.ones(library.shape, dtype=bool)
    refs = _references(
        embedder.embed_array(model_inputs(library, mask)), library, [f"m{k}" for k in range(12)]
    )
    data = SimpleNamespace(intensity=held_out, mask=mask)
    queries = QuerySet(np.arange(12), np.zeros((12, refs.embeddings.shape[1])), np.arange(12))
    answers = mixture_answers(data, queries, embedder, refs, RamanRanking())  # type: ignore[arg-type]
    assert answers["0.50"]["first_either"] == 1.0
    assert answers["0.50"]["both_top5"] == 1.0
    assert answers["0.85"]["first_major"] == 1.0
    assert all(row["no_match"] == 0.0 for row in answers.values())  # no threshold set


def test_unseen_minerals_are_ranked_against_their_other_samples() -> None:
    """Two minerals absent from the library, each with two samples, and one
    with a single sample: each of the four is ranked against the library and
    the other samples, and found; the single one has nothing to find."""
    points = RAMAN_GRID.shift_cm1.size
    library = np.stack([_bands(200, 900, points=points), _bands(400, 1100, points=points)])
    spectra = np.stack(
        [
            _bands(600, 1300, points=points),  # mineral u0, sample A
            _bands(601, 1301, points=points),  # mineral u0, sample B
            _bands(700, 1500, points=points),  # mineral u1, sample C
            _bands(699, 1499, points=points),  # mineral u1, sample D
            _bands(300, 1600, points=points),  # mineral u2, its only sample
        ]
    )
    minerals, samples = ["u0", "u0", "u1", "u1", "u2"], ["A", "B", "C", "D", "E"]
    data = SimpleNamespace(
        intensity=spectra,
        mask=np.ones(spectra.shape, dtype=bool),
        records=[SimpleNamespace(rruff_id=s) for s in samples],
        class_of=lambda i: minerals[i],
    )
    embeddings = np.eye(8, dtype=np.float32)
    refs = _references(embeddings[:2], library, ["a", "b"])
    unseen = QuerySet(np.arange(5), embeddings[[2, 2, 3, 3, 4]], np.full(5, -1))
    found = unseen_minerals_added(data, unseen, refs, RamanRanking())  # type: ignore[arg-type]
    assert found == {"spectra": 4, "top1": 1.0, "top5": 1.0, "no_match": 0.0}


def test_more_minerals_can_make_an_absent_one_look_present() -> None:
    """An unseen test spectrum like an unseen validation mineral is no_match
    against the library alone (its correlation below the threshold) and is
    matched once that mineral is added; the held-out sample stays a match."""
    points = RAMAN_GRID.shift_cm1.size
    library = np.stack([_bands(200, 900, points=points), _bands(400, 1100, points=points)])
    spectra = np.stack(
        [
            _bands(201, 899, points=points),  # held-out test sample of mineral 0
            _bands(600, 1300, points=points),  # unseen validation mineral
            _bands(601, 1301, points=points),  # unseen test mineral, like it
        ]
    )
    minerals = ["a", "v", "t"]
    data = SimpleNamespace(
        intensity=spectra, mask=np.ones(spectra.shape, dtype=bool), class_of=lambda i: minerals[i]
    )
    embeddings = np.eye(8, dtype=np.float32)
    refs = _references(embeddings[:2], library, ["a", "b"])
    sets = {
        Role.TEST: QuerySet(np.array([0]), embeddings[[0]], np.array([0])),
        Role.UNSEEN_VALIDATION: QuerySet(np.array([1]), embeddings[[2]], np.array([-1])),
        Role.UNSEEN_TEST: QuerySet(np.array([2]), embeddings[[2]], np.array([-1])),
    }
    ranking = RamanRanking(no_match_on="correlation", no_match_below=0.5)
    found = no_match_with_more_minerals(data, sets, refs, ranking)  # type: ignore[arg-type]
    assert found == {"minerals_added": 1.0, "absent": 0.0, "held_out": 0.0}
    # Against the library alone, the absent spectrum is no_match.
    alone = identify(embeddings[2], spectra[2], data.mask[2], refs, ranking)
    assert alone.no_match
