"""Calibrate the answer's confidences and its ``no_match`` threshold.

    python -m indexer calibrate [--model model_store/regnet1d.pt]
                                [--training-set runs/main/training_set.pkl]
                                [--queries 300] [--seed 8]
                                [--out model_store/calibration.json]
                                [--markdown model_store/CALIBRATION.md]

Synthetic queries drawn apart from the evaluation's (seed 8, as the re-rank
tuning), half under the evaluation's full augmentation and half under its
low-strain one, against the evaluation's library (every training and held-out
material): single phases of materials in the library, single phases of
materials taken out of it (what ``no_match`` is for), and mixtures of 2–6
materials. Each is ranked, its phases analysed and its answer built as the
service does; every answer entry (top 5) is labelled by whether its material
is in the scan, and a logistic model is fitted
(:mod:`xrdid.ranking.confidence`). The phases' model is fitted on scans of
1–6 references of the shipped library (calculated ones simulated, RockJock's
measured ones summed; seed 8 as well), analysed against it: the library lab
scans are analysed against, measured references and all, not the evaluation
library crowded with look-alikes of the training materials. Whether a
scan's material is in the library at all is a logistic model of its first
answer's and its strongest phase's features (and one of the first answer's
alone, for ``phases=false``); each ``no_match`` threshold is the probability
below which at most 5% of the in-library scans fall.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from indexer.evaluate import (
    QUERY_SETS,
    Draw,
    Library,
    _parallel,
    augmented_queries,
    evaluation_library,
    query_draws,
)
from indexer.evaluate_phases import LibraryArrays, MixturePools, reliability_table
from indexer.mixtures import calculated_mixture, random_weights
from indexer.training_set import TrainingSet, training_set_at
from xrdid.augment import AugmentConfig
from xrdid.data_paths import PROJECT_ROOT
from xrdid.embedder import Embedder, model_input
from xrdid.identify import embed_like
from xrdid.library import Library as ShippedLibrary
from xrdid.ranking import SERVED, ArraySource, Query, RankingConfig, rank
from xrdid.ranking.answer import answer, match_features, phase_features
from xrdid.ranking.confidence import (
    CANDIDATE_FEATURES,
    MATCH_FEATURES,
    PHASE_FEATURES,
    Calibration,
    LogisticModel,
    expected_calibration_error,
    fit_logistic,
)
from xrdid.ranking.doublet import as_measured
from xrdid.ranking.phases import analyse_phases

log = logging.getLogger("indexer.calibrate")

# The in-library scans the no_match threshold may call no_match, at most.
FALSE_NO_MATCH = 0.05
# Answer entries labelled per scan (the ones a person reads).
ENTRIES = 5
# References ranked per scan before grouping (as the service: 4 per entry, ≥ 30).
POOL = 30
# As many phases as the analysis reports (up to 6): crowded scans are where
# a phase's evidence is least sure, and where the evaluation's mixtures go.
MIXTURE_PHASES = (2, 3, 4, 5, 6)
# Half the scans under the evaluation's full augmentation, half under its
# low-strain one (lab scans of catalogued phases); mixtures keep texture in:
# it is what confidences must learn to discount.
AUGMENTATIONS = (QUERY_SETS["full augmentation"], QUERY_SETS["low strain"])
# Phases per scan of the shipped library's references (1: single phases,
# whose spurious second phases the model must learn to doubt).
SHIPPED_PHASES = (1, 2, 3, 4, 5, 6)
# Shipped-library scans per query of each kind: they are all the phases'
# model learns from.
SHIPPED_SCANS_PER_QUERY = 2


@dataclass
class Labelled:
    """Features and labels gathered from answered queries."""

    candidate_rows: list[list[float]]
    candidate_labels: list[bool]
    phase_rows: list[list[float]]
    phase_labels: list[bool]
    # Per scan: its kind of query, what the match model reads (MATCH_FEATURES)
    # and what it reads with phases=false (the first entry's, no analysis).
    match_rows: list[tuple[str, list[float]]]
    match_rows_without_phases: list[list[float]]


@dataclass(frozen=True)
class QuerySet:
    """Model inputs (n, 2, L) with the materials each holds and whether
    the library keeps them (False: they are taken out for that query)."""

    kind: str
    inputs: np.ndarray
    truths: list[set[int]]
    in_library: bool


def _mixture_job(args: tuple) -> np.ndarray:
    members, sticks, weights, seed, cfg = args
    rng = np.random.default_rng(seed)
    mixture = calculated_mixture(members, sticks, [1.0] * len(sticks), weights, rng, cfg)
    return model_input([mixture.view])[0]


def _augmentation(i: int) -> AugmentConfig:
    return replace(AUGMENTATIONS[i % 2], impurity_probability=0.0)


def query_sets(lib: Library, data: TrainingSet, n: int, seed: int) -> list[QuerySet]:
    """In-library single phases, taken-out single phases and mixtures, ``n``
    each, alternately under the full and the low-strain augmentation."""
    assert lib.sticks is not None
    classes = data.train + data.held_out
    rng = np.random.default_rng(seed)
    # Scans of real materials only (the generated ones are training devices,
    # not references a lab searches); the library keeps them as distractors.
    real = np.array([i for i, c in enumerate(classes) if not c.generated])
    chosen = rng.choice(real, size=2 * n, replace=False)
    sets = []
    for kind, indices, in_library in (
        ("in library", chosen[:n], True),
        ("not in library", chosen[n:], False),
    ):
        draws = query_draws(classes, indices, rng)
        inputs = np.empty((n, 2, lib.inputs.shape[2]), dtype=np.float32)
        for parity in (0, 1):
            single: list[Draw] = [(sticks, None, s) for sticks, _, s in draws[parity::2]]
            inputs[parity::2] = augmented_queries(single, _augmentation(parity), kind)
        sets.append(QuerySet(kind, inputs, [{int(i)} for i in indices], in_library))
    jobs, truths = [], []
    for i in range(n):
        k = int(rng.choice(MIXTURE_PHASES))
        members = [int(m) for m in rng.choice(real, size=k, replace=False)]
        weights = random_weights(k, rng)
        sticks = [lib.sticks[m] for m in members]
        jobs.append((members, sticks, weights, int(rng.integers(1 << 31)), _augmentation(i)))
        truths.append(set(members))
    sets.append(QuerySet("mixtures", _parallel(_mixture_job, jobs, "mixtures"), truths, True))
    return sets


def labelled(
    embedder: Embedder,
    source: ArraySource,
    sets: list[QuerySet],
    config: RankingConfig = SERVED,
    on_answer: Callable[..., None] | None = None,
) -> Labelled:
    """Answer every query as the service does (no calibration yet), label
    each top entry by whether its material is in the scan, and keep what the
    match models read of each scan (its answer with and without the analysis)."""
    out = Labelled([], [], [], [], [], [])
    n_refs = source.profile_rows(config.profile_search_resolution).ids.size
    for query_set in sets:
        embeddings = embedder.embed_array(query_set.inputs)
        for x, e, truth in tqdm(
            list(zip(query_set.inputs, embeddings, query_set.truths, strict=True)),
            desc=f"answering: {query_set.kind}",
        ):
            view_source = source
            if not query_set.in_library:
                eligible = np.ones(n_refs, dtype=bool)
                eligible[list(truth)] = False
                view_source = source.restricted(eligible)
            query = Query(x[0], x[1] > 0.5, e)
            (ranking,) = rank([query], view_source, POOL, config)

            def embed(intensity: np.ndarray, mask: np.ndarray) -> np.ndarray:
                return embedder.embed_array(np.stack([intensity, mask]).astype(np.float32)[None])[0]

            analysis = analyse_phases(query, ranking, view_source, embed, config)
            result = answer(query, ranking, analysis, view_source, ENTRIES, None, None, config)
            if on_answer is not None:
                on_answer(query_set, truth, result)
            for entry in result.entries:
                out.candidate_rows.append(list(entry.features))
                out.candidate_labels.append(entry.lead.reference_id in truth)
            if result.entries:
                first = list(result.entries[0].features)
                out.match_rows.append((query_set.kind, match_features(first, result.phases)))
                flat = answer(query, ranking, None, view_source, ENTRIES, None, None, config)
                out.match_rows_without_phases.append(list(flat.entries[0].features))
    return out


def shipped_phases(
    embedder: Embedder, library_path: Path, n: int, seed: int
) -> tuple[list[list[float]], list[bool]]:
    """Phase features and labels from ``n`` scans of 1–6 references of the
    shipped library, alternately calculated and measured, analysed against it."""
    rows: list[list[float]] = []
    labels: list[bool] = []
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "library.sqlite"
        shutil.copyfile(library_path, copy)
        library = ShippedLibrary.open(copy, embedder)
        try:
            arrays = LibraryArrays.of(library)
            pools = MixturePools.of(library, arrays)
            for i in tqdm(range(n), desc="answering: shipped-library scans"):
                weights = random_weights(int(rng.choice(SHIPPED_PHASES)), rng)
                mixture = pools.mixture(("calculated", "measured")[i % 2], weights, arrays, rng)
                truth = [arrays.materials[k] for k in mixture.members]
                view = mixture.view
                (embedding,) = embedder.embed([view])
                query = Query(view.intensity, view.mask, embedding)
                with library.reading() as source:
                    (ranking,) = rank([query], source, POOL)
                    analysis = analyse_phases(
                        query,
                        ranking,
                        as_measured(source, view.wavelength),
                        embed_like(embedder, view),
                    )
                    found = np.array([p.reference_id for p in analysis.phases], dtype=np.int64)
                    facts = source.facts(found)
                for phase, fact in zip(analysis.phases, facts, strict=True):
                    rows.append(phase_features(phase))
                    labels.append(any(fact.material.same_as(t) for t in truth))
        finally:
            library.close(save=False)
    return rows, labels


def calibrate(data: Labelled, model_version: str) -> Calibration:
    """Fit the models: entries, phases, and whether the scan's material is in
    the library with and without the phase analysis; each no_match threshold
    lets at most FALSE_NO_MATCH of the scans whose materials are in the
    library fall below."""
    candidate = fit_logistic(
        np.array(data.candidate_rows), np.array(data.candidate_labels), CANDIDATE_FEATURES
    )
    phase = fit_logistic(np.array(data.phase_rows), np.array(data.phase_labels), PHASE_FEATURES)
    in_library = np.array([kind != "not in library" for kind, _ in data.match_rows])
    match, threshold = _match_model(
        np.array([f for _, f in data.match_rows]), in_library, MATCH_FEATURES
    )
    flat, flat_threshold = _match_model(
        np.array(data.match_rows_without_phases), in_library, CANDIDATE_FEATURES
    )
    return Calibration(model_version, candidate, phase, match, threshold, flat, flat_threshold)


def _match_model(
    rows: np.ndarray, in_library: np.ndarray, features: tuple[str, ...]
) -> tuple[LogisticModel, float]:
    """The match model and the threshold FALSE_NO_MATCH of the in-library scans fall below."""
    match = fit_logistic(rows, in_library, features)
    return match, float(np.quantile(match.probability(rows[in_library]), FALSE_NO_MATCH))


def report(calibration: Calibration, data: Labelled, n: int, seed: int) -> str:
    """Reliability tables and ECE on the calibration queries, and the no_match rates."""
    p_candidate = calibration.candidate.probability(np.array(data.candidate_rows))
    p_phase = calibration.phase.probability(np.array(data.phase_rows))
    lines = [
        "# Confidence calibration (`python -m indexer calibrate`)",
        "",
        f"Model `{calibration.model_version}`; {n} synthetic scans of each kind (seed {seed}, "
        "apart from the evaluation's): single phases of materials in the library, single "
        "phases of materials taken out of it, and mixtures of "
        f"{MIXTURE_PHASES[0]}–{MIXTURE_PHASES[-1]} materials. Every answer "
        f"entry (top {ENTRIES}) is labelled by whether its material is in the scan, and a "
        "logistic model fitted (`xrdid/ranking/confidence.py`). The phases' model is fitted "
        f"on {SHIPPED_SCANS_PER_QUERY * n} scans of {SHIPPED_PHASES[0]}–{SHIPPED_PHASES[-1]} "
        "references of the shipped library (calculated ones simulated, RockJock's measured "
        "ones summed), analysed against it, each phase found labelled by whether its "
        "material is in the scan.",
        "",
        f"- entries: {len(p_candidate)}, expected calibration error "
        f"{expected_calibration_error(p_candidate, np.array(data.candidate_labels)):.3f} (on the "
        "calibration scans; the evaluation reports it on its own)",
        f"- phases: {len(p_phase)}, ECE "
        f"{expected_calibration_error(p_phase, np.array(data.phase_labels)):.3f}",
        f"- no_match when the probability that the scan's material is in the library (a "
        f"logistic model of its first answer's and its strongest phase's features) is below "
        f"{calibration.no_match_below:.3f}: at most {100 * FALSE_NO_MATCH:.0f}% of the scans "
        "of materials in the library fall below it",
    ]
    kinds = [kind for kind, _ in data.match_rows]
    for label, model, threshold, rows in (
        (
            "",
            calibration.match,
            calibration.no_match_below,
            np.array([f for _, f in data.match_rows]),
        ),
        (
            " (with `phases=false`: the first answer's features without the analysis, "
            f"threshold {calibration.no_match_below_without_phases:.3f})",
            calibration.match_without_phases,
            calibration.no_match_below_without_phases,
            np.array(data.match_rows_without_phases),
        ),
    ):
        below = model.probability(rows) < threshold
        shares = ", ".join(
            f"{kind} {100 * np.mean(below[np.array(kinds) == kind]):.1f}%"
            for kind in ("in library", "not in library", "mixtures")
            if kind in kinds
        )
        lines.append(f"- scans below it (no_match){label}: {shares}")
    for name, p, y in (
        ("entries", p_candidate, data.candidate_labels),
        ("phases", p_phase, data.phase_labels),
    ):
        lines += ["", f"## Reliability: {name}", ""]
        lines += reliability_table(p, np.array(y))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m indexer calibrate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model", type=Path, default=PROJECT_ROOT / "model_store" / "regnet1d.pt")
    parser.add_argument("--training-set", type=Path, default=Path("runs/main/training_set.pkl"))
    parser.add_argument(
        "--library", type=Path, default=PROJECT_ROOT / "model_store" / "library.sqlite"
    )
    parser.add_argument("--queries", type=int, default=300, help="scans of each kind")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument(
        "--out", type=Path, default=PROJECT_ROOT / "model_store" / "calibration.json"
    )
    parser.add_argument("--markdown", type=Path, help="also write the reliability report here")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="refit from the features the last run saved next to the training set",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    embedder = Embedder.load(args.model)
    data = training_set_at(args.training_set)
    saved = args.training_set.parent / f"calibration_answers_{args.seed}_{args.queries}.json"
    if args.reuse and saved.is_file():
        gathered = Labelled(**json.loads(saved.read_text()))
    else:
        lib = evaluation_library(data, args.training_set.parent)
        source = ArraySource(
            lib.inputs[:, 0],
            embedder.embed_array(lib.inputs),
            lib.sticks,
            None,
            lib.labels,
            lib.space_groups,
        )
        gathered = labelled(embedder, source, query_sets(lib, data, args.queries, args.seed))
        rows, labels = shipped_phases(
            embedder, args.library, SHIPPED_SCANS_PER_QUERY * args.queries, args.seed
        )
        gathered.phase_rows += rows
        gathered.phase_labels += labels
        saved.write_text(json.dumps(asdict(gathered)))
    calibration = calibrate(gathered, embedder.version)
    calibration.save(args.out)
    text = report(calibration, gathered, args.queries, args.seed)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
