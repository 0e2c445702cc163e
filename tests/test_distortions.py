"""The distortion study: paired queries, one row per variant, with the real model."""

from __future__ import annotations

import numpy as np

from indexer import distortions
from indexer.evaluate import augmented_queries, query_draws


def test_same_draws_and_config_give_the_same_queries(rock_salt_classes):
    draws = query_draws(rock_salt_classes, np.array([0, 3]), np.random.default_rng(2))
    first = augmented_queries(draws, distortions.ALL_ON, "a")
    np.testing.assert_array_equal(first, augmented_queries(draws, distortions.ALL_ON, "b"))
    no_strain = augmented_queries(draws, distortions.VARIANTS["no strain"], "c")
    assert not np.allclose(first, no_strain)


def test_command_writes_one_row_per_variant(run_study):
    text, rows = run_study(distortions.main)
    assert [r["queries"] for r in rows] == list(distortions.VARIANTS)
    assert all(0.0 <= r["top1"] <= r["top5"] <= 1.0 for r in rows)
    assert all(0.0 <= r["served_top1"] <= r["served_top5"] <= 1.0 for r in rows)
    assert "3 closed-set queries against 5 references" in text
