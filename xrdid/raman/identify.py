"""Raman identification on arrays: nearest references by embedding, a
shift-tolerant re-rank, element probabilities and the "no match" verdict.

Pure functions: the references come as :class:`RamanReferences` (what the
library will hold per Raman reference), the query as its preprocessed
intensity, mask and embedding. The service and ``indexer evaluate-raman``
call :func:`identify`; its tuned numbers live in :class:`RamanRanking`
(chosen on validation spectra by ``evaluate-raman``, model card).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import InputError
from xrdid.raman.correlation import RAMAN_MAX_SHIFT_STEPS, shifted_correlation
from xrdid.ranking.confidence import LogisticModel

# What a candidate's confidence is computed from: its fused score, cosine and
# profile correlation, its lead over the best other candidate (negative
# below the first) and its place.
CONFIDENCE_FEATURES = ("score", "similarity", "correlation", "margin", "log_rank")
# What the match model (P(the sample's mineral is in the library)) reads: the
# first candidate's fused score and its hit quality index (how much of the
# spectrum it explains without a calibration shift).
MATCH_FEATURES = ("fused", "hqi")
# The query scores a no-match rule can threshold (RamanRanking.no_match_on).
NO_MATCH_SCORES = ("fused", "cosine", "correlation", "match model")


@dataclass(frozen=True)
class RamanReferences:
    """Reference spectra as arrays, several per class (mineral)."""

    embeddings: NDArray[np.float32]  # (N, D) unit vectors
    intensity: NDArray[np.float32]  # (N, L) preprocessed
    class_index: NDArray[np.int64]  # (N,)
    class_names: list[str]  # (C,)
    class_elements: NDArray[np.uint8]  # (C, E)
    element_symbols: list[str]  # (E,)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @cached_property
    def _block_squares(self) -> NDArray[np.float64]:
        """(N, B) each reference's sum of squared intensities per block of
        ``_NORM_BLOCK`` grid points."""
        length = self.intensity.shape[1]
        return np.stack(
            [
                _squares(self.intensity, start, min(start + _NORM_BLOCK, length))
                for start in range(0, length, _NORM_BLOCK)
            ],
            axis=1,
        )

    def squared_norms(self, mask: NDArray[np.bool_]) -> NDArray[np.float64]:
        """(N,) each reference's sum of squared intensities where ``mask`` is
        set: a query's covered range is one run of grid points, so the blocks
        inside it are summed already and only its two ends are added up."""
        covered = np.flatnonzero(mask)
        if covered.size == 0:
            return np.zeros(len(self.intensity))
        lo, hi = int(covered[0]), int(covered[-1]) + 1
        if covered.size != hi - lo:  # gaps: sum what is covered
            return np.square(self.intensity[:, mask], dtype=np.float64).sum(axis=1)
        first, last = -(-lo // _NORM_BLOCK), hi // _NORM_BLOCK  # whole blocks inside
        if first >= last:
            return _squares(self.intensity, lo, hi)
        return (
            self._block_squares[:, first:last].sum(axis=1)
            + _squares(self.intensity, lo, first * _NORM_BLOCK)
            + _squares(self.intensity, last * _NORM_BLOCK, hi)
        )


# Grid points per block of the references' precomputed sums of squares:
# small blocks leave little to add at a query's ends, and the sums stay small.
_NORM_BLOCK = 64


def _squares(intensity: NDArray[np.floating], start: int, stop: int) -> NDArray[np.float64]:
    """(N,) sums of the squared intensities of grid points ``start:stop``."""
    return np.square(intensity[:, start:stop], dtype=np.float64).sum(axis=1)


@dataclass(frozen=True)
class RamanRanking:
    """The identification's settings."""

    candidates: int = 30  # the embedding's nearest classes, re-ranked
    # ... and the classes whose profiles fit the query best (hit quality
    # index over all references), so a class the embedding misses can still win.
    profile_candidates: int = 10
    rerank_weight: float = 1.0  # fused = cosine + weight × correlation
    max_shift_steps: int = RAMAN_MAX_SHIFT_STEPS
    element_neighbours: int = 10  # classes that vote on the elements
    element_temperature: float = 0.05  # softmax temperature of their vote scores
    # A class's vote score: its cosine + this × its hit quality index (the
    # profile says which bands, hence anions, the sample has; the embedding
    # was trained to tell minerals apart, not chemistry).
    element_profile_weight: float = 0.0
    # "no match" when the query's score of kind ``no_match_on`` (one of
    # NO_MATCH_SCORES: the best over the candidates, or the match model's
    # probability) is below this (None: never).
    no_match_below: float | None = None
    no_match_on: str = "fused"
    # P(the sample's mineral is in the library) from MATCH_FEATURES, fitted
    # on validation spectra ("match model" rule only).
    match_model: LogisticModel | None = None
    # Element probabilities: "vote" of the nearest minerals, the model's
    # element "head", or the "mean" of both.
    element_method: str = "vote"
    # The model these settings were chosen for (None: not recorded).
    model_version: str | None = None
    # P(a candidate is the sample's mineral) from its CONFIDENCE_FEATURES,
    # fitted on validation spectra (None: confidences are omitted).
    confidence: LogisticModel | None = None

    @classmethod
    def load(cls, path: Path) -> RamanRanking:
        """Settings written by ``indexer evaluate-raman`` (unknown keys refused)."""
        try:
            data = json.loads(Path(path).read_text())
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(data) - known)
            if unknown:
                raise InputError(f"{path} has unknown Raman ranking settings {unknown}")
            for key, features in (
                ("confidence", CONFIDENCE_FEATURES),
                ("match_model", MATCH_FEATURES),
            ):
                if data.get(key) is not None:
                    data[key] = _logistic_model(data[key], features, f"{path} {key}")
            if data.get("no_match_on", "fused") not in NO_MATCH_SCORES:
                raise InputError(
                    f"{path} has no_match_on {data['no_match_on']!r}, not one of {NO_MATCH_SCORES}"
                )
            if data.get("no_match_on") == "match model" and data.get("match_model") is None:
                raise InputError(f"{path} thresholds the match model but has none")
            return cls(**data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path} is not readable Raman ranking settings: {exc}") from exc

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1) + "\n")


def _logistic_model(model: dict, features: tuple[str, ...], what: str) -> LogisticModel:
    loaded = LogisticModel(
        tuple(model["features"]),
        tuple(model["mean"]),
        tuple(model["scale"]),
        tuple(model["weights"]),
        float(model["bias"]),
    )
    if loaded.features != features:
        raise InputError(f"{what} reads features {loaded.features}, not {features}")
    return loaded


@dataclass(frozen=True)
class RamanIdentification:
    classes: NDArray[np.int64]  # ranked class indices (the candidates)
    scores: NDArray[np.float64]  # fused scores, descending
    cosine: NDArray[np.float64]  # embedding cosine of each ranked class
    correlation: NDArray[np.float64]  # profile correlation of each ranked class
    hqi: NDArray[np.float64]  # hit quality index of each ranked class
    element_probability: NDArray[np.float64]  # (E,)
    no_match: bool
    # Per ranked class, the row (in the references given) of its reference
    # that fits best: the highest cosine, or re-ranked, cosine + weight × correlation.
    best_reference: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    extra: dict[str, float] = field(default_factory=dict)


def class_cosines(
    query_embeddings: NDArray[np.float32], references: RamanReferences
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """(M, C) best cosine of each class's references, and which reference gave it."""
    similarity = query_embeddings @ references.embeddings.T  # (M, N)
    return _per_class_best(similarity, references.class_index, references.n_classes)


def _per_class_best(
    similarity: NDArray[np.floating], class_index: NDArray[np.int64], n_classes: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    best = np.full((similarity.shape[0], n_classes), -np.inf, dtype=np.float32)
    which = np.zeros((similarity.shape[0], n_classes), dtype=np.int64)
    order = np.argsort(similarity, axis=1)  # ascending: the last write per class wins
    rows = np.arange(similarity.shape[0])[:, None]
    classes = class_index[order]
    best[rows, classes] = similarity[rows, order]
    which[rows, classes] = order
    return best, which


def reference_hit_quality(
    intensity: NDArray[np.floating], mask: NDArray[np.bool_], references: RamanReferences
) -> NDArray[np.float32]:
    """(N,) the classical hit quality index of the query against each
    reference: cos² of the two over the query's covered range."""
    q = np.where(mask, intensity, 0.0).astype(np.float32)
    dot = references.intensity @ q
    norms = references.squared_norms(mask) * float(q @ q) + 1e-12
    return (dot * dot / norms).astype(np.float32)


def hit_quality_index(
    intensity: NDArray[np.floating], mask: NDArray[np.bool_], references: RamanReferences
) -> NDArray[np.float32]:
    """(C,) the hit quality index of each class: its best reference's."""
    per_reference = reference_hit_quality(intensity, mask, references)
    best, _ = _per_class_best(per_reference[None, :], references.class_index, references.n_classes)
    return best[0]


def candidate_classes(
    cosine: NDArray[np.floating], hqi: NDArray[np.floating], ranking: RamanRanking
) -> NDArray[np.int64]:
    """The embedding's nearest classes, then the best-fitting profiles not
    among them (classes without a reference to score, −inf, never)."""
    nearest = np.argsort(-cosine, kind="stable")[: ranking.candidates]
    nearest = nearest[np.isfinite(cosine[nearest])]
    fitting = np.argsort(-hqi, kind="stable")[: ranking.profile_candidates]
    fitting = fitting[np.isfinite(hqi[fitting])]
    return np.concatenate([nearest, fitting[~np.isin(fitting, nearest)]])


def element_vote(
    class_scores: NDArray[np.floating], references: RamanReferences, ranking: RamanRanking
) -> NDArray[np.float64]:
    """(E,) probability of each element: the chemistry of the classes of the
    highest vote scores (:func:`vote_scores`), weighted by a softmax of them."""
    top = np.argsort(-class_scores)[: ranking.element_neighbours]
    weights = np.exp((class_scores[top] - class_scores[top].max()) / ranking.element_temperature)
    weights /= weights.sum()
    return weights @ references.class_elements[top].astype(np.float64)


def vote_scores(
    cosine: NDArray[np.floating], hqi: NDArray[np.floating], ranking: RamanRanking
) -> NDArray[np.float64]:
    """(C,) each class's element vote score from its cosine and hit quality index."""
    return np.asarray(cosine, np.float64) + ranking.element_profile_weight * np.asarray(
        hqi, np.float64
    )


def _only(references: RamanReferences, eligible: NDArray[np.bool_] | None) -> RamanReferences:
    """The references ``eligible`` admits (classes and their chemistry kept)."""
    if eligible is None:
        return references
    return replace(
        references,
        embeddings=references.embeddings[eligible],
        intensity=references.intensity[eligible],
        class_index=references.class_index[eligible],
    )


def identify(
    embedding: NDArray[np.float32],
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    references: RamanReferences,
    ranking: RamanRanking = RamanRanking(),
    *,
    rerank: bool = True,
    eligible: NDArray[np.bool_] | None = None,
) -> RamanIdentification:
    """Rank the library's minerals for one query.

    ``eligible`` (a mask over the references, an element filter's) limits
    the ranking to the minerals of those references; the element vote still
    asks the whole library (it predicts the sample's chemistry, which a
    filter does not change).
    """
    n_classes = references.n_classes
    # Each reference's cosine and hit quality index, and each class's best of
    # them over the whole library (the element vote's) and over the eligible
    # references (the ranking's; the same without a filter).
    per_reference = np.stack(
        [references.embeddings @ embedding, reference_hit_quality(intensity, mask, references)]
    )
    best_all, which_all = _per_class_best(per_reference, references.class_index, n_classes)
    searched = _only(references, eligible)
    rows_of = np.arange(per_reference.shape[1]) if eligible is None else np.flatnonzero(eligible)
    class_best, which_rows = (
        (best_all, which_all)
        if eligible is None
        else _per_class_best(per_reference[:, rows_of], searched.class_index, n_classes)
    )
    similarity = per_reference[0, rows_of]
    cosine, which, hqi = class_best[0].astype(np.float64), which_rows[0], class_best[1]
    candidates = candidate_classes(
        cosine, hqi, ranking if rerank else replace(ranking, profile_candidates=0)
    )
    correlation = np.zeros(candidates.size)
    best_row = which[candidates]  # the reference each class is shown by: best cosine …
    if rerank and candidates.size:
        # Every reference of each candidate class; the class keeps its best.
        refs = np.flatnonzero(np.isin(searched.class_index, candidates))
        r = shifted_correlation(intensity, mask, searched.intensity[refs], ranking.max_shift_steps)
        best = np.full(n_classes, -np.inf)
        np.maximum.at(best, searched.class_index[refs], r)
        correlation = best[candidates]
        # … or, re-ranked, the best fused score of its own.
        _, fit_row = _per_class_best(
            (similarity[refs] + ranking.rerank_weight * r)[None, :],
            searched.class_index[refs],
            n_classes,
        )
        best_row = refs[fit_row[0][candidates]]
    fused = cosine[candidates] + (ranking.rerank_weight if rerank else 0.0) * correlation
    order = np.argsort(-fused, kind="stable")
    ranked, scores = candidates[order], fused[order]
    elements = element_vote(vote_scores(best_all[0], best_all[1], ranking), references, ranking)
    result = RamanIdentification(
        classes=ranked,
        scores=scores,
        cosine=cosine[ranked],
        correlation=correlation[order],
        hqi=hqi[ranked].astype(np.float64),
        element_probability=elements,
        no_match=False,
        best_reference=rows_of[best_row[order]],
    )
    # Nothing eligible to rank is no match too.
    no_match = ranked.size == 0
    if ranked.size and ranking.no_match_below is not None:
        no_match = no_match_score(result, ranking) < ranking.no_match_below
    return replace(result, no_match=no_match)


def no_match_score(result: RamanIdentification, ranking: RamanRanking) -> float:
    """The query's score of kind ``ranking.no_match_on`` (at least one class ranked)."""
    if ranking.no_match_on == "match model":
        if ranking.match_model is None:
            raise ValueError("the Raman ranking thresholds a match model it does not have")
        return float(ranking.match_model.probability(match_features(result))[0])
    top = {
        "fused": float(result.scores[0]),
        "cosine": float(result.cosine.max()),
        "correlation": float(result.correlation.max()),
    }
    return top[ranking.no_match_on]


def match_features(result: RamanIdentification) -> NDArray[np.float64]:
    """(1, MATCH_FEATURES) of the first candidate."""
    return np.array([[result.scores[0], result.hqi[0]]], dtype=np.float64)


def candidate_features(
    scores: NDArray[np.floating],
    cosine: NDArray[np.floating],
    correlation: NDArray[np.floating],
) -> NDArray[np.float64]:
    """(n, CONFIDENCE_FEATURES) of ranked candidates (fused scores descending)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return np.empty((0, len(CONFIDENCE_FEATURES)))
    runner_up = scores[1] if scores.size > 1 else scores[0]
    margin = np.where(np.arange(scores.size) == 0, scores[0] - runner_up, scores - scores[0])
    log_rank = np.log(np.arange(1, scores.size + 1, dtype=np.float64))
    return np.column_stack([scores, cosine, correlation, margin, log_rank]).astype(np.float64)


def confidences(result: RamanIdentification, ranking: RamanRanking) -> NDArray[np.float64] | None:
    """Each ranked candidate's probability of being the sample's mineral
    (None without a confidence model)."""
    if ranking.confidence is None:
        return None
    features = candidate_features(result.scores, result.cosine, result.correlation)
    if features.shape[0] == 0:
        return np.empty(0)
    return ranking.confidence.probability(features)


ELEMENT_METHODS = ("vote", "head", "mean")


def combine_elements(
    vote: dict[str, float], head: dict[str, float] | None, method: str
) -> dict[str, float]:
    """Element probabilities by ``method`` (:data:`ELEMENT_METHODS`): the
    vote, the head, or their mean; an element only one of them knows (the
    library's chemistry grows with added references, the head's is fixed at
    training) keeps that one's probability."""
    if method not in ELEMENT_METHODS:
        raise InputError(f"element method {method!r} is not one of {ELEMENT_METHODS}")
    if head is None or method == "vote":
        return dict(vote)
    if method == "head":
        return {**vote, **head}
    return {
        symbol: (vote[symbol] + head[symbol]) / 2
        if symbol in vote and symbol in head
        else vote.get(symbol, head.get(symbol, 0.0))
        for symbol in {**vote, **head}
    }
