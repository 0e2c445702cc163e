"""Raman identification on arrays: correlation, ranking, HQI, elements, verdict."""

from __future__ import annotations

import numpy as np
import pytest

from xrdid.raman.correlation import shifted_correlation
from xrdid.raman.identify import RamanRanking, RamanReferences, hit_quality_index, identify
from xrdid.raman.preprocess import preprocess_spectrum

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


def test_no_match_on_the_profile_correlation(library) -> None:
    references, queries = library
    _, query = queries[1]
    embedding = (query.intensity / np.linalg.norm(query.intensity)).astype(np.float32)
    result = identify(embedding, query.intensity, query.mask, references)
    r = float(result.correlation.max())
    for offset, expected in ((0.01, True), (-0.01, False)):
        rule = RamanRanking(no_match_below=r + offset, no_match_on="correlation")
        assert identify(embedding, query.intensity, query.mask, references, rule).no_match is expected
