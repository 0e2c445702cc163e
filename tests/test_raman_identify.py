"""Raman identification on arrays: correlation, ranking, HQI, elements, verdict."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from xrdid.errors import InputError
from xrdid.raman.correlation import shifted_correlation
from xrdid.raman.identify import (
    CONFIDENCE_FEATURES,
    MATCH_FEATURES,
    RamanRanking,
    RamanReferences,
    candidate_features,
    combine_elements,
    confidences,
    hit_quality_index,
    identify,
)
from xrdid.raman.preprocess import preprocess_spectrum
from xrdid.ranking.confidence import LogisticModel, fit_logistic

MINERALS = ["Calcite", "Quartz", "Diamond", "Forsterite", "Grossular", "Beryl"]


@pytest.fixture(scope="module")
def library(rruff_records):
    """Per mineral: its first sample's spectra as references, another sample as a query."""
    refs, queries = [], []
    for name in MINERALS:
        records = [r for r in rruff_records if r.mineral == name]
        first = records[0].rruff_id
        refs += [(name, r) for r in records if r.rruff_id == first]
        queries.append((name, next(r for r in records if r.rruff_id != first)))
    pre = [preprocess_spectrum(r.spectrum) for _, r in refs]
    intensity = np.stack([p.intensity for p in pre]).astype(np.float32)
    symbols = ["H", "C", "O", "Be", "Mg", "Al", "Si", "Ca"]
    elements = {name: r.elements for name, r in refs}
    references = RamanReferences(
        # The preprocessed spectrum itself as the embedding: a real (if plain) one.
        embeddings=intensity / np.linalg.norm(intensity, axis=1, keepdims=True),
        intensity=intensity,
        class_index=np.array([MINERALS.index(name) for name, _ in refs]),
        class_names=MINERALS,
        class_elements=np.array(
            [[s in elements[m] for s in symbols] for m in MINERALS], dtype=np.uint8
        ),
        element_symbols=symbols,
    )
    return references, [(name, preprocess_spectrum(r.spectrum)) for name, r in queries]


def test_squared_norms_sum_over_any_mask() -> None:
    """The references' sums of squares over a query's range, from per-block
    sums and the two ends, equal the direct sum: ranges within one block,
    across blocks, on block edges, the whole grid, one with gaps, none."""
    rng = np.random.default_rng(3)
    intensity = rng.random((7, 1701)).astype(np.float32)
    references = RamanReferences(
        embeddings=np.eye(7, dtype=np.float32),
        intensity=intensity,
        class_index=np.arange(7),
        class_names=[str(k) for k in range(7)],
        class_elements=np.zeros((7, 1), dtype=np.uint8),
        element_symbols=["O"],
    )
    grid = np.arange(1701)
    masks = [(grid >= lo) & (grid < hi) for lo, hi in [(3, 40), (64, 128), (50, 1700), (0, 1701)]]
    masks.append(masks[2] & (grid % 7 != 0))
    masks.append(np.zeros(1701, dtype=bool))
    for mask in masks:
        direct = np.square(intensity.astype(np.float64) * mask).sum(axis=1)
        assert references.squared_norms(mask) == pytest.approx(direct, rel=1e-12, abs=1e-12)


def test_shifted_correlation_recovers_a_calibration_offset() -> None:
    index = np.arange(1701)
    query = np.exp(-0.5 * ((index - 900) / 1.5) ** 2) + np.exp(-0.5 * ((index - 1000) / 2.0) ** 2)
    mask = (index >= 35) & (index < 1200)
    reference = np.roll(query, 4)[None, :]
    assert shifted_correlation(query, mask, reference, 6)[0] == pytest.approx(1.0, abs=1e-4)
    assert shifted_correlation(query, mask, reference, 2)[0] < 0.9
    assert shifted_correlation(query, np.zeros(1701, bool), reference).tolist() == [0.0]


def test_another_sample_finds_its_mineral(library) -> None:
    references, queries = library
    for name, query in queries:
        embedding = query.intensity / np.linalg.norm(query.intensity)
        result = identify(embedding.astype(np.float32), query.intensity, query.mask, references)
        assert references.class_names[result.classes[0]] == name
        assert np.all(np.diff(result.scores) <= 0)
        assert (
            references.class_names[
                int(np.argmax(hit_quality_index(query.intensity, query.mask, references)))
            ]
            == name
        )


def test_elements_and_no_match(library) -> None:
    references, queries = library
    name, query = queries[0]  # calcite: Ca, C, O
    embedding = (query.intensity / np.linalg.norm(query.intensity)).astype(np.float32)
    sharp = RamanRanking(element_neighbours=3, element_temperature=0.001)
    result = identify(embedding, query.intensity, query.mask, references, sharp)
    probabilities = dict(zip(references.element_symbols, result.element_probability, strict=True))
    assert probabilities["Ca"] > 0.99 and probabilities["C"] > 0.99 and probabilities["Si"] < 0.01
    assert not result.no_match
    strict = RamanRanking(no_match_below=float(result.scores[0]) + 0.01)
    assert identify(embedding, query.intensity, query.mask, references, strict).no_match


def test_the_element_vote_weighs_the_profile_fit(library) -> None:
    """A query whose embedding points at quartz but whose bands are calcite's:
    the vote follows the embedding alone, or the profile once it is weighed."""
    references, queries = library
    _, calcite = queries[0]
    quartz_reference = int(np.flatnonzero(references.class_index == MINERALS.index("Quartz"))[0])
    embedding = references.embeddings[quartz_reference]
    vote = RamanRanking(element_neighbours=1, element_temperature=0.01)

    def probabilities(ranking: RamanRanking) -> dict[str, float]:
        result = identify(embedding, calcite.intensity, calcite.mask, references, ranking)
        return dict(zip(references.element_symbols, result.element_probability, strict=True))

    embedding_only = probabilities(vote)
    assert embedding_only["Si"] == 1.0 and embedding_only["Ca"] == 0.0
    with_profile = probabilities(replace(vote, element_profile_weight=10.0))
    assert with_profile["Ca"] == 1.0 and with_profile["Si"] == 0.0


def test_no_match_on_the_profile_correlation(library) -> None:
    references, queries = library
    _, query = queries[1]
    embedding = (query.intensity / np.linalg.norm(query.intensity)).astype(np.float32)
    result = identify(embedding, query.intensity, query.mask, references)
    r = float(result.correlation.max())
    for offset, expected in ((0.01, True), (-0.01, False)):
        rule = RamanRanking(no_match_below=r + offset, no_match_on="correlation")
        assert (
            identify(embedding, query.intensity, query.mask, references, rule).no_match is expected
        )


def test_no_match_on_the_match_model(library, tmp_path) -> None:
    """The match model reads the first candidate's fused score and hit quality
    index; the rule flags the query when its probability is below the
    threshold, and the settings keep the model through a save."""
    references, queries = library
    _, query = queries[2]
    embedding = (query.intensity / np.linalg.norm(query.intensity)).astype(np.float32)
    result = identify(embedding, query.intensity, query.mask, references)
    assert result.hqi[0] == pytest.approx(
        hit_quality_index(query.intensity, query.mask, references)[result.classes[0]]
    )
    # A model that trusts the hit quality index alone.
    model = LogisticModel(MATCH_FEATURES, (0.0, 0.5), (1.0, 0.1), (0.0, 1.0), 0.0)
    p = float(model.probability(np.array([[result.scores[0], result.hqi[0]]]))[0])
    for offset, expected in ((0.01, True), (-0.01, False)):
        rule = RamanRanking(no_match_below=p + offset, no_match_on="match model", match_model=model)
        found = identify(embedding, query.intensity, query.mask, references, rule)
        assert found.no_match is expected
    rule.save(tmp_path / "ranking.json")
    assert RamanRanking.load(tmp_path / "ranking.json") == rule
    (tmp_path / "no_model.json").write_text('{"no_match_on": "match model", "no_match_below": 0.3}')
    with pytest.raises(InputError, match="thresholds the match model but has none"):
        RamanRanking.load(tmp_path / "no_model.json")
    (tmp_path / "unknown.json").write_text('{"no_match_on": "luck"}')
    with pytest.raises(InputError, match="no_match_on 'luck'"):
        RamanRanking.load(tmp_path / "unknown.json")


def test_an_element_filter_ranks_only_the_minerals_it_admits(library) -> None:
    references, queries = library
    name, query = queries[0]  # calcite
    embedding = (query.intensity / np.linalg.norm(query.intensity)).astype(np.float32)
    whole = identify(embedding, query.intensity, query.mask, references)
    # The best reference of each ranked mineral is one of that mineral's.
    assert np.array_equal(references.class_index[whole.best_reference], whole.classes)
    no_calcite = references.class_index != MINERALS.index(name)
    filtered = identify(embedding, query.intensity, query.mask, references, eligible=no_calcite)
    assert MINERALS.index(name) not in filtered.classes
    assert no_calcite[filtered.best_reference].all()
    # The element vote still predicts the sample's chemistry from the whole library.
    np.testing.assert_allclose(filtered.element_probability, whole.element_probability)
    nothing = identify(
        embedding, query.intensity, query.mask, references, eligible=np.zeros_like(no_calcite)
    )
    assert nothing.classes.size == 0 and nothing.no_match


def test_confidences_come_from_the_saved_settings(library, tmp_path) -> None:
    references, queries = library
    _, query = queries[0]
    embedding = (query.intensity / np.linalg.norm(query.intensity)).astype(np.float32)
    result = identify(embedding, query.intensity, query.mask, references)
    features = candidate_features(result.scores, result.cosine, result.correlation)
    assert features.shape == (result.classes.size, len(CONFIDENCE_FEATURES))
    assert features[0, 3] >= 0 and np.all(features[1:, 3] <= 0)  # the margin
    labels = np.arange(result.classes.size) == 0
    model = fit_logistic(np.tile(features, (3, 1)), np.tile(labels, 3), CONFIDENCE_FEATURES)
    settings = RamanRanking(confidence=model, element_method="mean", model_version="m1")
    settings.save(tmp_path / "ranking.json")
    loaded = RamanRanking.load(tmp_path / "ranking.json")
    assert loaded == settings
    p = confidences(result, loaded)
    assert p is not None and p[0] > 0.5 > p[1:].max()
    assert confidences(result, RamanRanking()) is None
    (tmp_path / "bad.json").write_text('{"candidates": 3, "threshold": 1}')
    with pytest.raises(InputError, match="unknown Raman ranking settings"):
        RamanRanking.load(tmp_path / "bad.json")


def test_element_methods_combine_the_vote_and_the_head() -> None:
    vote, head = {"O": 0.9, "Ca": 0.6, "Xe": 0.2}, {"O": 0.7, "Ca": 0.2, "Si": 0.4}
    assert combine_elements(vote, head, "vote") == vote
    assert combine_elements(vote, None, "mean") == vote
    assert combine_elements(vote, head, "head") == {"O": 0.7, "Ca": 0.2, "Xe": 0.2, "Si": 0.4}
    mean = combine_elements(vote, head, "mean")
    assert mean == pytest.approx({"O": 0.8, "Ca": 0.4, "Xe": 0.2, "Si": 0.4})
    with pytest.raises(InputError, match="element method 'max'"):
        combine_elements(vote, head, "max")
