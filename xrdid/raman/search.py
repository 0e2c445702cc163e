"""A Raman spectrum against a Raman library: the library's references as the
arrays the Raman ranking (:mod:`xrdid.raman.identify`) scores, and the
ranking's answer with each mineral's stored reference.

The library (:class:`xrdid.library.Library` opened with the Raman model)
stores and indexes the references as it does for XRD: durably, with element
bits and each reference's whole profile in memory. Per library generation
(every add or delete makes a new one) its references are gathered once into
a :class:`RamanReferences` snapshot: the embeddings, the profiles, a class
per mineral name and each class's elements. A write costs the next query
that gathering (60 ms for 3,259 references on 2 busy cores),
never a stale answer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import InputError
from xrdid.library import ELEMENT_SYMBOLS, ElementFilter, Library, LibrarySource, Match
from xrdid.library.filters import element_table
from xrdid.raman.checkpoint import RamanEmbedder
from xrdid.raman.identify import (
    RamanIdentification,
    RamanRanking,
    RamanReferences,
    combine_elements,
    confidences,
    identify,
    no_match_score,
)
from xrdid.raman.preprocess import PreprocessedSpectrum
from xrdid.ranking import RankedReference

__all__ = ["RamanAnswer", "RamanSearch", "RamanSnapshot"]


@dataclass(frozen=True)
class RamanSnapshot:
    """A library generation's references as arrays; row i is reference ``ids[i]``."""

    generation: int
    ids: NDArray[np.int64]
    references: RamanReferences


def snapshot(source: LibrarySource) -> RamanSnapshot:
    """Gather every indexed reference of a Raman library (a class per name)."""
    rows = source.rows()
    # Whole profiles: a Raman library is always searched exactly (its layout).
    assert isinstance(rows.rows, np.ndarray)
    names = source.names(rows.ids)
    class_names = sorted(set(names))
    index_of = {name: i for i, name in enumerate(class_names)}
    class_index = np.array([index_of[n] for n in names], dtype=np.int64)
    table = element_table(source.element_bits())  # (N, 118)
    per_class = np.zeros((len(class_names), table.shape[1]), dtype=bool)
    np.logical_or.at(per_class, class_index, table)
    present = np.flatnonzero(per_class.any(axis=0))
    references = RamanReferences(
        embeddings=source.vectors(rows.ids),
        intensity=rows.rows,
        class_index=class_index,
        class_names=class_names,
        class_elements=per_class[:, present].astype(np.uint8),
        element_symbols=[ELEMENT_SYMBOLS[i] for i in present],
    )
    return RamanSnapshot(source.generation, rows.ids, references)


@dataclass(frozen=True)
class RamanAnswer:
    """The ranking of one spectrum with the library's entries."""

    # One per mineral, best first: its best-fitting reference, with the
    # mineral's confidence when the settings have a confidence model.
    matches: tuple[Match, ...]
    profiles: NDArray[np.float32]  # (len(matches), L) their preprocessed profiles
    no_match: bool
    # Probability of each element in the sample, highest first.
    elements: tuple[tuple[str, float], ...]
    top_score: float | None  # what the no-match rule compared (None: nothing ranked)


class RamanSearch:
    """The Raman model, its ranking settings and a Raman library, as the
    service and the evaluation identify with them."""

    def __init__(self, embedder: RamanEmbedder, library: Library, ranking: RamanRanking) -> None:
        if library.layout.technique is not embedder.technique:
            raise InputError(f"{library.location} is not a Raman library")
        self.embedder = embedder
        self.library = library
        self.ranking = ranking
        self._snapshot: RamanSnapshot | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        model: Path,
        library: Path | str,
        ranking: Path | None = None,
        **library_options: object,
    ) -> RamanSearch:
        """Load the model and its settings and open the library (a SQLite
        file or a ``postgresql://`` URL; created if absent)."""
        embedder = RamanEmbedder.load(model)
        settings = RamanRanking.load(ranking) if ranking is not None else RamanRanking()
        return cls(embedder, Library.open(library, embedder, **library_options), settings)  # type: ignore[arg-type]

    @property
    def settings_match_model(self) -> bool:
        """Whether the ranking settings (and the no-match threshold) were chosen for this model."""
        return self.ranking.model_version in (None, self.embedder.version)

    def warm(self) -> None:
        """Gather the references now (at service start), not in the first query."""
        with self.library.reading() as source:
            self._references(source)

    def _references(self, source: LibrarySource) -> RamanSnapshot:
        current = self._snapshot
        if current is not None and current.generation == source.generation:
            return current
        with self._lock:
            current = self._snapshot
            if current is None or current.generation != source.generation:
                current = snapshot(source)
                self._snapshot = current
        return current

    def rank(
        self,
        view: PreprocessedSpectrum,
        embedding: NDArray[np.float32],
        top_k: int,
        elements: ElementFilter | None = None,
    ) -> RamanAnswer:
        """Rank the library's minerals for one embedded spectrum: each shown
        by its reference that fits best, with the class's cosine, correlation
        and fused score."""
        ranking = self.effective_ranking
        with self.library.reading(elements) as source:
            snap = self._references(source)
            refs = snap.references
            if refs.class_index.size == 0:
                return RamanAnswer(
                    (), np.empty((0, refs.intensity.shape[1]), np.float32), True, (), None
                )
            result = identify(
                embedding, view.intensity, view.mask, refs, ranking, eligible=source.rows().eligible
            )
            shown = np.arange(min(top_k, result.classes.size))
            rows = result.best_reference[shown]
            (matches,) = self.library.matches(
                [
                    [
                        RankedReference(
                            int(snap.ids[row]),
                            float(result.cosine[i]),
                            float(result.correlation[i]),
                            float(result.scores[i]),
                        )
                        for i, row in zip(shown, rows, strict=True)
                    ]
                ]
            )
        probability = confidences(result, ranking)
        if probability is not None:
            matches = tuple(
                replace(m, confidence=float(probability[i])) for i, m in enumerate(matches)
            )
        vote = dict(zip(refs.element_symbols, result.element_probability.tolist(), strict=True))
        probabilities = combine_elements(vote, self._head(embedding), ranking.element_method)
        ordered = tuple(sorted(probabilities.items(), key=lambda item: (-item[1], item[0])))
        return RamanAnswer(
            matches, refs.intensity[rows], result.no_match, ordered, _top(result, ranking)
        )

    @property
    def effective_ranking(self) -> RamanRanking:
        """The settings; without the no-match threshold and the confidence
        model when they were chosen for another model (its scores are not
        comparable)."""
        if self.settings_match_model:
            return self.ranking
        return replace(self.ranking, no_match_below=None, confidence=None)

    def _head(self, embedding: NDArray[np.float32]) -> dict[str, float] | None:
        if self.embedder.element_head is None:
            return None
        (p,) = self.embedder.element_probabilities(embedding[None, :])
        return dict(zip(self.embedder.element_symbols, p.astype(float).tolist(), strict=True))


def _top(result: RamanIdentification, ranking: RamanRanking) -> float | None:
    return no_match_score(result, ranking) if result.classes.size else None
