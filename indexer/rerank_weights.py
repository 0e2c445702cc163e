"""Choose the profile re-rank's correlation, weight and candidate count, its strain
tensor fit and the profile search that adds to its candidates (the fields of
``xrdid.ranking.RankingConfig``), each by ranking with :func:`xrdid.ranking.rank`.

    python -m indexer rerank-weights [--model model_store/regnet1d.pt]
                                     [--training-set runs/main/training_set.pkl]
                                     [--queries 600] [--seed 8] [--markdown FILE]

Closed-set queries of training materials only, drawn with another seed than
the evaluation's (7), under both of its query augmentations, and the same
materials again as two-phase mixtures (each with its impurity draw at a
Dirichlet fraction, low strain; a hit is either phase): the choice is made
without the open set or the real scans the evaluation reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np

from indexer.evaluate import (
    QUERY_SETS,
    Queries,
    as_queries,
    augmented_queries,
    evaluation_library,
    query_draws,
)
from indexer.evaluate import score as top_k_score
from indexer.studies import load_study, markdown_with_rows, study_parser
from indexer.training_set import TrainingSet
from xrdid.embedder import Embedder
from xrdid.ranking import SERVED, ArraySource, Query, Ranking, RankingConfig, SearchResolution, rank
from xrdid.ranking.rows import trial_shifts, trial_strains

WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
CANDIDATES = (50, 300)
# The isotropic correlation's variants: each prior and scale named explicitly.
CORRELATIONS: dict[str, RankingConfig] = {
    "shifts": replace(
        SERVED, sqrt_intensity=False, strain_max=0.0, bin_steps=1, strain_penalty=0.0
    ),
    "shifts + strain": replace(SERVED, sqrt_intensity=False, strain_penalty=0.0),
    "shifts + strain, √intensity": replace(SERVED, sqrt_intensity=True, strain_penalty=0.0),
    "shifts + strain, √intensity, strain penalty 2": replace(
        SERVED, sqrt_intensity=True, strain_penalty=2.0
    ),
    "shifts + strain, √intensity, strain penalty 5": replace(
        SERVED, sqrt_intensity=True, strain_penalty=5.0
    ),
}

Setting = tuple[str, int, float]  # correlation, candidates, weight

# The strain-tensor fit (xrdid/strain_fit.py) on top of the chosen isotropic
# re-rank: how many of the best candidates get it, and its prior.
STRAIN_FIT_CANDIDATES = (0, 5, 10, 20)
ANISOTROPIC_PENALTIES = (0.5, 1.0, 2.0)

# The profile search (xrdid/profile_search.py) on top of the served re-rank:
# how many references it adds and how coarsely it compares. It costs every
# query a pass over the whole library, so the cheapest setting within
# PROFILE_SEARCH_TOLERANCE of the best is chosen.
PROFILE_SEARCH_ADDED = (0, 10, 20)
PROFILE_SEARCH_RESOLUTIONS = (
    SearchResolution(bin_steps=6, strain_step=0.006),
    SearchResolution(bin_steps=10, strain_step=0.008),
    SearchResolution(bin_steps=15, strain_step=0.01),
)
PROFILE_SEARCH_TOLERANCE = 0.002  # in the mean of top-1 and top-5 (0.2 point)

MIXTURES = "2-phase mixtures, low strain"
TUNING_SETS = QUERY_SETS | {MIXTURES: replace(QUERY_SETS["low strain"], mixture_probability=1.0)}


def sweep(
    embedder: Embedder, data: TrainingSet, n_queries: int, seed: int, cache_dir: Path
) -> list[dict]:
    """Top-1 / top-5 for every query set and setting."""
    lib = evaluation_library(data, cache_dir)
    rng = np.random.default_rng(seed)
    indices = rng.choice(len(data.train), size=n_queries, replace=False)
    classes = data.train + data.held_out
    draws = query_draws(classes, indices, rng)
    label_of = {id(c.sticks[0]): c.key for c in classes}  # impurity draws are a sticks[0]
    truths = [{lib.labels[int(i)]} for i in indices]
    mixed = [
        t | {label_of[id(d[1])]} if d[1] is not None else t
        for t, d in zip(truths, draws, strict=True)
    ]
    source = lib.source(embedder.embed_array(lib.inputs))
    rows = []
    for name, cfg in TUNING_SETS.items():
        mixture = name == MIXTURES
        queries = Queries(augmented_queries(draws, cfg, name), mixed if mixture else truths)
        batch = as_queries(queries.inputs, embedder.embed_array(queries.inputs))

        scored = partial(top_5, labels=lib.labels, truths=queries.truths, mixture=mixture)
        for kind, correlation in CORRELATIONS.items():
            for k in CANDIDATES:
                # The isotropic fit alone over the embedding's k nearest; each
                # weight re-scores the same fits.
                isotropic = replace(
                    correlation,
                    rerank_candidates=k,
                    profile_search_candidates=0,
                    strain_fit_candidates=0,
                )
                rankings = rank(batch, source, 5, isotropic)
                for weight in WEIGHTS:
                    top1, top5 = scored(rankings, replace(isotropic, profile_weight=weight))
                    rows.append(
                        {
                            "queries": name,
                            "correlation": kind,
                            "candidates": k,
                            "weight": weight,
                            "top1": top1,
                            "top5": top5,
                        }
                    )
                    print(
                        f"{name:<20}{kind:<18}{k:>6}{weight:>8.2f}"
                        f"{100 * top1:8.1f} / {100 * top5:5.1f}",
                        flush=True,
                    )
        rows += strain_fit_rows(name, batch, source, scored)
        rows += profile_search_rows(name, batch, source, scored)
    return rows


def top_5(
    rankings: list[Ranking],
    config: RankingConfig,
    labels: list[str],
    truths: list[set[str]],
    mixture: bool,
) -> tuple[float, float]:
    """Top-1 / top-5 of ``rankings`` re-scored with ``config``."""
    ranked = [[labels[r.reference_id] for r in x.reordered(5, config)] for x in rankings]
    return top_k_score(ranked, truths, mixture)


Scorer = Callable[[list[Ranking], RankingConfig], tuple[float, float]]


def strain_fit_rows(
    name: str, batch: list[Query], source: ArraySource, scored: Scorer
) -> list[dict]:
    """Top-1 / top-5 of the served re-rank (its correlation, candidates and
    weight, no profile search) with strain tensors fitted to its best few,
    for each count and prior."""
    fitted = replace(
        SERVED, profile_search_candidates=0, strain_fit_candidates=max(STRAIN_FIT_CANDIDATES)
    )
    rankings = rank(batch, source, 5, fitted)
    rows = []
    for count in STRAIN_FIT_CANDIDATES:
        for penalty in ANISOTROPIC_PENALTIES:
            config = replace(fitted, strain_fit_candidates=count, anisotropic_penalty=penalty)
            top1, top5 = scored(rankings, config)
            rows.append(
                {
                    "queries": name,
                    "strain_fit_candidates": count,
                    "anisotropic_penalty": penalty,
                    "top1": top1,
                    "top5": top5,
                }
            )
            print(
                f"{name:<20}strain tensor fit {count:>3} {penalty:>5.1f}"
                f"{100 * top1:8.1f} / {100 * top5:5.1f}",
                flush=True,
            )
    return rows


def profile_search_rows(
    name: str, batch: list[Query], source: ArraySource, scored: Scorer
) -> list[dict]:
    """Top-1 / top-5 as served (the re-rank with its strain tensor fit) when
    the profile search adds its best references to the embedding's nearest,
    for each count added and resolution."""
    rows = []
    for resolution in PROFILE_SEARCH_RESOLUTIONS:
        for added in PROFILE_SEARCH_ADDED:
            if added == 0 and resolution != PROFILE_SEARCH_RESOLUTIONS[0]:
                continue  # nothing added: the same for every resolution
            config = replace(
                SERVED, profile_search_candidates=added, profile_search_resolution=resolution
            )
            top1, top5 = scored(rank(batch, source, 5, config), config)
            rows.append(
                {
                    "queries": name,
                    "profile_search_added": added,
                    "bin_steps": resolution.bin_steps,
                    "strain_step": resolution.strain_step,
                    "top1": top1,
                    "top5": top5,
                }
            )
            print(
                f"{name:<20}profile search {added:>3} {resolution.bin_steps:>3} "
                f"{resolution.strain_step:>6.3f}{100 * top1:8.1f} / {100 * top5:5.1f}",
                flush=True,
            )
    return rows


def _setting(row: dict) -> Setting:
    return row["correlation"], row["candidates"], row["weight"]


def best(rows: list[dict]) -> Setting:
    """The setting with the best mean of top-1 and top-5 over the query sets
    (the first candidate is the one a user reads first; ties: the fewer
    candidates, then the smaller weight)."""
    isotropic = [r for r in rows if "correlation" in r]
    return _best_by_mean(isotropic, _setting, lambda s: (-s[1], -s[2]))


def best_strain_fit(rows: list[dict]) -> tuple[int, float]:
    """(candidates, prior) of the strain-tensor fit by the same rule (ties:
    the fewer candidates, then the stronger prior)."""
    tensor = [r for r in rows if "strain_fit_candidates" in r]

    def setting(row: dict) -> tuple[int, float]:
        return row["strain_fit_candidates"], row["anisotropic_penalty"]

    return _best_by_mean(tensor, setting, lambda s: (-s[0], s[1]))


def best_profile_search(rows: list[dict]) -> tuple[int, int, float]:
    """(added, bin steps, strain step) of the profile search: the fewest
    added, then the least arithmetic per reference (trials × bins), among the
    settings within PROFILE_SEARCH_TOLERANCE of the best mean of top-1 and
    top-5 over the query sets."""
    search = [r for r in rows if "profile_search_added" in r]

    def setting(row: dict) -> tuple[int, int, float]:
        return row["profile_search_added"], row["bin_steps"], row["strain_step"]

    mean = _means(search, setting)
    top = max(mean.values())

    def cost(s: tuple[int, int, float]) -> tuple[int, float]:
        trials = len(trial_strains(SERVED.strain_max, s[2])) * len(trial_shifts(s[1]))
        return s[0], trials / s[1]

    return min((s for s in mean if mean[s] >= top - PROFILE_SEARCH_TOLERANCE), key=cost)


_S = TypeVar("_S", bound=tuple)


def _best_by_mean(
    rows: list[dict], setting: Callable[[dict], _S], tie_break: Callable[[_S], tuple]
) -> _S:
    """The setting whose rows have the best mean of top-1 and top-5."""
    mean = _means(rows, setting)
    return max(mean, key=lambda s: (round(mean[s], 6), *tie_break(s)))


def _means(rows: list[dict], setting: Callable[[dict], _S]) -> dict[_S, float]:
    """Each setting's mean of top-1 and top-5 over its rows (the query sets)."""
    settings = sorted({setting(r) for r in rows})
    return {
        s: float(np.mean([r["top1"] + r["top5"] for r in rows if setting(r) == s]) / 2)
        for s in settings
    }


def markdown(rows: list[dict], version: str, n_queries: int, library: int, seed: int) -> str:
    kind, k, weight = best(rows)
    lines = [
        "# Profile re-rank: correlation, weight, candidates (`python -m indexer rerank-weights`)",
        "",
        f"Model `{version}`; {n_queries} closed-set queries (seed {seed}, not the "
        f"evaluation's) against {library} references, under the evaluation's two query "
        "augmentations and again as two-phase mixtures (each material with its impurity "
        "draw at a Dirichlet fraction, low strain). Score = embedding cosine + "
        "weight × profile correlation over the embedding's nearest candidates; weight 0 "
        "is the embedding alone. Correlation 'shifts': best Pearson r over 2θ shifts of "
        "±0.3°; 'shifts + strain': also over isotropic strains of ±3.5% in 0.3% steps, "
        "in 0.06° bins; '√intensity': that, on square roots of the intensities; 'strain "
        "penalty p': each strain ε's r lowered by p·|ε| (p = 2: 0.06 at 3%). "
        f"Best mean of top-1 and top-5 over the three query sets: {kind}, {k} candidates, "
        f"weight {weight:.2f} (`xrdid/ranking/config.py` holds these).",
        "",
        "Mixtures: top-1 = the first candidate is one of the phases; top-5 = the share of "
        "the phases in the top 5.",
        "",
        "| queries | correlation | candidates | weight | top-1 % | top-5 % |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['queries']} | {r['correlation']} | {r['candidates']} | {r['weight']:.2f} | "
        f"{100 * r['top1']:.1f} | {100 * r['top5']:.1f} |"
        for r in rows
        if "correlation" in r
    ]
    count, penalty = best_strain_fit(rows)
    lines += [
        "",
        "## Strain tensor fit",
        "",
        f"The served re-rank ({SERVED.rerank_candidates} candidates, its correlation and weight) "
        "with a strain tensor and zero shift fitted (`xrdid/ranking/strain_tensor.py`) to its best few "
        "candidates by the fused score, keeping the better of the two correlations; the "
        "tensor's departure from the isotropic strain costs 'prior' × the sum of its six "
        "components' departures. 0 candidates: the isotropic fit alone. Best by the same "
        f"rule: {count} candidates, prior {penalty:g}.",
        "",
        "| queries | candidates fitted | prior | top-1 % | top-5 % |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['queries']} | {r['strain_fit_candidates']} | {r['anisotropic_penalty']:g} | "
        f"{100 * r['top1']:.1f} | {100 * r['top5']:.1f} |"
        for r in rows
        if "strain_fit_candidates" in r
    ]
    added, bins, step = best_profile_search(rows)
    lines += [
        "",
        "## Profile search",
        "",
        f"The served re-rank (its {SERVED.rerank_candidates} candidates, correlation, weight and "
        "strain tensor fit) with the references a coarse profile search of the whole library "
        "ranks best added to its candidates (`xrdid/ranking/profile_search.py`): the re-rank's "
        "isotropic correlation in bins of so many grid steps and strain steps of so much. "
        "0 added: the re-rank alone. The search costs every query a pass over the library, "
        "so the chosen setting is the fewest added, then the least arithmetic, within "
        f"{100 * PROFILE_SEARCH_TOLERANCE:.1f} point of the best mean of top-1 and top-5: "
        f"{added} added, bins of {bins} steps, strain steps of {100 * step:g}%.",
        "",
        "| queries | added | bins (grid steps) | strain step | top-1 % | top-5 % |",
        "|---|---|---|---|---|---|",
    ]

    def resolution(row: dict) -> str:
        if row["profile_search_added"] == 0:
            return "– | –"  # nothing searched
        return f"{row['bin_steps']} | {100 * row['strain_step']:g}%"

    lines += [
        f"| {r['queries']} | {r['profile_search_added']} | {resolution(r)} | "
        f"{100 * r['top1']:.1f} | {100 * r['top5']:.1f} |"
        for r in rows
        if "profile_search_added" in r
    ]
    return markdown_with_rows(lines, rows)


def main(argv: list[str] | None = None) -> None:
    parser = study_parser("python -m indexer rerank-weights", __doc__ or "", queries=600, seed=8)
    args = parser.parse_args(argv)
    embedder, data, n_queries = load_study(args)
    rows = sweep(embedder, data, n_queries, args.seed, args.training_set.parent)
    print("best mean of top-1 and top-5: {}, {} candidates, weight {:.2f}".format(*best(rows)))
    print("strain tensor fit: {} candidates, prior {:g}".format(*best_strain_fit(rows)))
    print(
        "profile search: {} added, bins of {}, strain step {:g}".format(*best_profile_search(rows))
    )
    if args.markdown:
        library = len(data.train) + len(data.held_out)
        args.markdown.write_text(markdown(rows, embedder.version, n_queries, library, args.seed))


if __name__ == "__main__":
    main()
