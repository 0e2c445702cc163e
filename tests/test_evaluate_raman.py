"""evaluate-raman's measures: ROC AUC, top-k and the re-rank's ordering."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from indexer.evaluate_raman import (
    Reranked,
    element_aucs,
    fused_ranking,
    match_rows,
    roc_auc,
    topk,
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
