"""Evaluate the embedding against baselines, in one run, one table.

    python -m indexer evaluate [--model model_store/regnet1d.pt]
                               [--training-set runs/main/training_set.pkl]

Rows (top-1 / top-5 and time per query for every method):

- closed set: augmented patterns of materials whose references are in the library;
- open set: held-out materials (never trained on), put into the library by
  embedding their reference only; augmented queries of them;
- both again with most queries strained by a few tenths of a percent only
  (the same materials and seeds otherwise), to show what exact positions are
  worth to each method;
- real measured patterns: XRD-AutoAnalyzer single-phase scans against a
  library of their 84 references plus every other real structure; their
  mixtures and the dara precursor mixtures (share of phases found in the top 5),
  ranked plainly and again with each method inside the find–subtract–search
  loop of :mod:`xrdid.ranking.phases`; the powdR mineral scans against the 168
  measured RockJock references.

For each synthetic row it also sorts the served ranking's misses by cause
and counts those beside a material the augmentation makes hard to tell from
the truth (:func:`within_reach`).

Methods: the model alone (cosine of embeddings); the model as the service
ranks (its nearest references, and those the whole-library profile search
of :mod:`xrdid.ranking.profile_search` finds, re-ranked by the fused score of
:mod:`xrdid.ranking.correlation`); and the baselines, cosine of the preprocessed profiles
and a shift-tolerant search-match (best Pearson r over 2θ shifts of ±0.3°),
each restricted to the 2θ range the query covers.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import re
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from indexer.classical_phases import phase_ranking, search_phases
from indexer.training_set import TrainingClass, TrainingSet, training_set_at
from xrdid.augment import FULL_AUGMENTATION, AugmentConfig, augmented_input, reference_input
from xrdid.data_paths import PROJECT_ROOT, shared_data_dir
from xrdid.embedder import Embedder, model_input
from xrdid.preprocess import PreprocessedPattern, preprocess
from xrdid.ranking import SERVED, ArraySource, Query, candidates, rank
from xrdid.ranking.correlation import profile_correlation, rerank_correlation
from xrdid.sticks import StickPattern

log = logging.getLogger("indexer.evaluate")

# Synthetic queries are of one material (impurity up to 30% included): a
# 50/50 mixture has no single right answer; real mixtures are their own row.
QUERY_AUGMENTATION = replace(FULL_AUGMENTATION, mixture_probability=0.0)
# Query sets: the full augmentation (every sample strained anywhere within
# ±3% / ±1%), and the same queries with most samples strained only by a few
# tenths of a percent, as lab scans of catalogued phases are: there exact
# peak positions tell look-alikes apart, and the profile baselines gain most.
QUERY_SETS = {
    "full augmentation": QUERY_AUGMENTATION,
    "low strain": replace(QUERY_AUGMENTATION, large_strain_probability=0.2),
}


@dataclass
class Library:
    """References as model inputs (n, 2, L), their labels (formula or class)
    and, for calculated references, their stick patterns (the served ranking
    fits strain tensors to those)."""

    inputs: np.ndarray
    labels: list[str]
    sticks: list[StickPattern] | None = None
    space_groups: list[int | None] | None = None

    def source(self, embeddings: np.ndarray) -> ArraySource:
        """The references as the ranking reads them, with their embeddings."""
        return ArraySource(self.inputs[:, 0], embeddings, self.sticks)


def as_queries(inputs: np.ndarray, embeddings: np.ndarray) -> list[Query]:
    """Model inputs (n, 2, L) and their embeddings as the ranking's queries."""
    return [Query(x[0], x[1] > 0.5, e) for x, e in zip(inputs, embeddings, strict=True)]


@dataclass
class Queries:
    inputs: np.ndarray
    truths: list[set[str]]  # labels that count as a hit (several for mixtures)


# --- methods: each maps (library, queries) → ranked library indices ----------

# Candidates each method returns per query (the table scores the first 5;
# the phase search looks further down for materials not yet found).
CANDIDATES = 20

Method = Callable[[Library, Queries], tuple[list[list[int]], float]]


def _top(scores: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(-scores)[:CANDIDATES]]


def rank_model(embedder: Embedder, rerank: bool = False) -> Method:
    """The model's ranking: by cosine, or (``rerank``) as the service ranks."""
    cache: dict[int, tuple[Library, np.ndarray, ArraySource]] = {}

    def run(lib: Library, qs: Queries) -> tuple[list[list[int]], float]:
        # Reference embeddings once per library: the phase search ranks one
        # query at a time. The library is kept in the cache so its id stays unique.
        if id(lib) not in cache:
            references = embedder.embed_array(lib.inputs)
            cache[id(lib)] = (lib, references, lib.source(references))
        _, references, source = cache[id(lib)]
        start = time.perf_counter()
        embeddings = embedder.embed_array(qs.inputs)
        if rerank:
            rankings = rank(as_queries(qs.inputs, embeddings), source, CANDIDATES)
            ranked = [[r.reference_id for r in row.best] for row in rankings]
        else:
            ranked = [_top(c) for c in embeddings @ references.T]
        return ranked, (time.perf_counter() - start) / len(qs.inputs)

    return run


def rank_profile_cosine(lib: Library, qs: Queries) -> tuple[list[list[int]], float]:
    refs = lib.inputs[:, 0]
    start = time.perf_counter()
    ranked = []
    for q in qs.inputs:
        m = q[1] > 0.5
        r = refs[:, m]
        scores = r @ q[0, m] / (np.linalg.norm(r, axis=1) * np.linalg.norm(q[0, m]) + 1e-12)
        ranked.append(_top(scores))
    return ranked, (time.perf_counter() - start) / len(qs.inputs)


def rank_shifted_pearson(lib: Library, qs: Queries) -> tuple[list[list[int]], float]:
    refs = lib.inputs[:, 0]
    start = time.perf_counter()
    ranked = [_top(profile_correlation(q[0], q[1] > 0.5, refs)) for q in qs.inputs]
    return ranked, (time.perf_counter() - start) / len(qs.inputs)


def with_phase_search(method: Method) -> Method:
    """The same method inside the find–subtract–search-again loop
    (:func:`indexer.classical_phases.search_phases`); one material is never listed twice."""

    def run(lib: Library, qs: Queries) -> tuple[list[list[int]], float]:
        def rank(x: np.ndarray) -> list[int]:
            return method(lib, Queries(x[None], [set()]))[0][0]

        def identity(i: int) -> str:
            return lib.labels[i]

        start = time.perf_counter()
        ranked = []
        for q in qs.inputs:
            first = rank(q)
            fits = search_phases(
                q, rank, lambda i: lib.inputs[i, 0], identity=identity, ranking=first
            )
            ranked.append(phase_ranking(fits, first, 5, identity))
        return ranked, (time.perf_counter() - start) / len(qs.inputs)

    return run


# --- building libraries and queries -------------------------------------------


def _augment_job(args: tuple[StickPattern, StickPattern | None, int, AugmentConfig]) -> np.ndarray:
    sticks, impurity, seed, cfg = args
    rng = np.random.default_rng(seed)
    return model_input([augmented_input(sticks, rng, cfg, impurity)])[0]


def _reference_job(sticks: StickPattern) -> np.ndarray:
    return model_input([reference_input(sticks)])[0]


def _parallel(fn: Callable, jobs: list, desc: str) -> np.ndarray:
    with ProcessPoolExecutor(max_workers=2) as pool:
        return np.stack(list(tqdm(pool.map(fn, jobs, chunksize=8), total=len(jobs), desc=desc)))


def _cached(path: Path, make: Callable[..., np.ndarray], *args: object) -> np.ndarray:
    """``make(*args)``, saved to ``path`` the first time and loaded after."""
    if path.exists():
        return np.load(path, allow_pickle=False)["array"]
    array = make(*args)
    # Write then rename: a run killed mid-write must not leave a truncated cache.
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(partial, array=array)
    partial.replace(path)
    return array


Draw = tuple[StickPattern, StickPattern | None, int]


def split_digest(data: TrainingSet) -> str:
    """A short digest of the split (each class's key and files, in order):
    caches computed from one split are never read for another of its size."""
    text = "\n".join(
        f"{part}|{c.key}|{','.join(c.sources)}"
        for part, classes in (("train", data.train), ("held out", data.held_out))
        for c in classes
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def evaluation_library(data: TrainingSet, cache_dir: Path) -> Library:
    """References of every training and held-out class, cached in ``cache_dir``."""
    classes = data.train + data.held_out
    references = [c.sticks[0] for c in classes]
    lib_path = cache_dir / f"eval_library_{len(classes)}_{split_digest(data)}.npz"
    lib = _cached(lib_path, _parallel, _reference_job, references, "library")
    return Library(
        lib, [c.key for c in classes], references, [c.space_group_number for c in classes]
    )


def query_draws(
    classes: list[TrainingClass], indices: np.ndarray, rng: np.random.Generator
) -> list[Draw]:
    """Per query: one of the material's structures, a possible impurity
    (None when the draw hits the material itself) and an augmentation seed."""
    draws = []
    for i in indices:
        cls, other = classes[int(i)], classes[int(rng.integers(len(classes)))]
        draws.append(
            (
                cls.sticks[int(rng.integers(len(cls.sticks)))],
                other.sticks[0] if other is not cls else None,
                int(rng.integers(1 << 31)),
            )
        )
    return draws


def augmented_queries(draws: list[Draw], cfg: AugmentConfig, desc: str) -> np.ndarray:
    return _parallel(_augment_job, [(*draw, cfg) for draw in draws], desc)


def synthetic_rows(
    data: TrainingSet, n_closed: int, per_held_out: int, seed: int, cache_dir: Path
) -> tuple[Library, dict[str, tuple[Queries, Queries]]]:
    """Library (train + held-out references) and closed/open query sets for
    each query augmentation (same materials and seeds: paired queries)."""
    classes = data.train + data.held_out
    lib = evaluation_library(data, cache_dir)
    rng = np.random.default_rng(seed)
    closed_idx = rng.choice(len(data.train), size=min(n_closed, len(data.train)), replace=False)
    open_idx = np.repeat(np.arange(len(data.train), len(classes)), per_held_out)
    draws = query_draws(classes, np.concatenate([closed_idx, open_idx]), rng)
    labels = lib.labels
    sets = {}
    size, digest = f"{len(closed_idx)}x{per_held_out}", split_digest(data)
    for name, cfg in QUERY_SETS.items():
        path = cache_dir / f"eval_queries_{seed}_{size}_{digest}_{name.replace(' ', '_')}.npz"
        queries = _cached(path, augmented_queries, draws, cfg, f"queries, {name}")
        closed = Queries(queries[: len(closed_idx)], [{labels[int(i)]} for i in closed_idx])
        open_set = Queries(queries[len(closed_idx) :], [{labels[int(i)]} for i in open_idx])
        sets[name] = (closed, open_set)
    return lib, sets


def _formula(text: str) -> str:
    from pymatgen.core import Composition

    return Composition(text).reduced_formula


def _phases_from_name(stem: str) -> list[str]:
    """'Li2CO3_0p9001-ZrO2_0p1000--8min' → ['Li2CO3', 'ZrO2']; 'Mn2O3+LiF' → both."""
    stem = stem.split("--")[0]
    parts = re.split(r"[+]|-(?=[A-Z])", stem)
    return [p.split("_")[0] for p in parts if p]


def _read_preprocessed(path: Path) -> PreprocessedPattern:
    from xrdid.readers import read_pattern

    return preprocess(read_pattern(path))


def autoanalyzer_rows(data: TrainingSet) -> tuple[Library, Queries, Queries, list[str]]:
    """Single-phase and mixture queries against AutoAnalyzer refs + other structures."""
    from xrdid.sticks import simulate_sticks
    from xrdid.structures import read_structure

    root = shared_data_dir()
    refs = sorted((root / "structures" / "xrd_autoanalyzer").rglob("*.cif"))
    sticks, labels = [], []
    for path in refs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = read_structure(path)
        sticks.append(simulate_sticks(ref.structure))
        labels.append(ref.formula)
    others = [c for c in data.train + data.held_out if not c.generated]
    sticks += [c.sticks[0] for c in others]
    labels += [c.formula for c in others]
    lib = Library(_parallel(_reference_job, sticks, "real-data library"), labels, sticks)
    in_library = set(labels)
    notes = []
    single_in, single_truth, mix_in, mix_truth = [], [], [], []
    scans = sorted((root / "patterns" / "xrd_autoanalyzer").glob("*.xy"))
    scans += sorted((root / "patterns" / "dara" / "precursor_mixtures").glob("*.xrdml"))
    for path in scans:
        phases = [_formula(p) for p in _phases_from_name(path.stem)]
        known = [p for p in phases if p in in_library]
        if not known:
            notes.append(f"{path.name}: no phase in the library ({', '.join(phases)})")
            continue
        x = model_input([_read_preprocessed(path)])[0]
        if len(phases) == 1 and path.parent.name == "xrd_autoanalyzer":
            single_in.append(x)
            single_truth.append(set(known))
        else:
            mix_in.append(x)
            mix_truth.append(set(known))
    return (
        lib,
        Queries(np.stack(single_in), single_truth),
        Queries(np.stack(mix_in), mix_truth),
        notes,
    )


def rockjock_rows() -> tuple[Library, Queries, list[str]]:
    """powdR mineral scans against the 168 measured RockJock references."""
    from xrdid.readers import read_pattern_table

    folder = shared_data_dir() / "patterns"
    names = _phase_names(
        folder / "rockjock" / "rockjock_phases.csv", folder / "rockjock" / "rockjock_regroup.csv"
    )
    table = read_pattern_table(folder / "rockjock" / "rockjock_xrd.csv", skip_invalid=True)
    ref_ids = [k for k in table if names.get(k, {"background"}) != {"background"}]
    lib = Library(model_input([preprocess(table[k]) for k in ref_ids]), [k for k in ref_ids])
    label_names = {k: names.get(k, set()) for k in ref_ids}
    minerals = read_pattern_table(folder / "powdr_minerals" / "minerals_xrd.csv")
    query_names = _phase_names(folder / "powdr_minerals" / "minerals_phases.csv", None)
    inputs, truths, notes = [], [], []
    for key, pattern in minerals.items():
        wanted = query_names.get(key, set())
        hits = {k for k, n in label_names.items() if n & wanted}
        if not hits:
            notes.append(
                f"powdR {key} ({', '.join(sorted(wanted))}): no RockJock reference of that mineral"
            )
            continue
        inputs.append(model_input([preprocess(pattern)])[0])
        truths.append(hits)
    return lib, Queries(np.stack(inputs), truths), notes


def _phase_names(phases_csv: Path, regroup_csv: Path | None) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for path in (phases_csv, regroup_csv):
        if path is None:
            continue
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                values = {
                    v.strip().lower()
                    for k, v in row.items()
                    if k != "phase_id" and k.startswith("phase_name") and v
                }
                names.setdefault(row["phase_id"], set()).update(
                    values - {"non-clay", "clay", "amorphous"}
                )
    return names


# --- scoring --------------------------------------------------------------------


def score(ranked: list[list[str]], truths: list[set[str]], mixture: bool) -> tuple[float, float]:
    """(top-1, top-5); for mixtures, top-1 = best hit is a phase, top-5 = share of phases found."""
    if mixture:
        top1 = np.mean([r[0] in t for r, t in zip(ranked, truths, strict=True)])
        found = [len(t & set(r)) / len(t) for r, t in zip(ranked, truths, strict=True)]
        return float(top1), float(np.mean(found))
    top1 = np.mean([r[0] in t for r, t in zip(ranked, truths, strict=True)])
    top5 = np.mean([bool(set(r) & t) for r, t in zip(ranked, truths, strict=True)])
    return float(top1), float(top5)


# The served correlation without its prior for small strains: how far a
# pattern moved, not how plausible the move is.
NO_PRIOR = replace(SERVED, strain_penalty=0.0)

# A reference whose calculated pattern is closer to the truth's than this
# share of a row's augmented queries are to their own material's is within the
# augmentation's reach: a query of the truth may well look more like it.
REACH_QUANTILE = 0.9


@dataclass(frozen=True)
class Reach:
    """How far the augmentation moves a pattern, and how many misses lie within that."""

    median: float  # the queries' median r with their own material's reference
    threshold: float  # their REACH_QUANTILE quantile
    misses: int  # misses with a top-5 reference at least that close to the truth's


@dataclass(frozen=True)
class Misses:
    """Why a ranking missed single-phase queries' material in its top 5."""

    queries: int
    missed: int
    outside_candidates: int  # not among the references the re-rank scored
    isostructural: int  # a structure of the material's space group in the top 5 instead
    # per isostructural miss: |cell edge of the closest such structure / the truth's − 1|
    cell_edge_differences: list[float]
    reach: Reach | None = None

    def describe(self) -> str:
        edges = np.array(self.cell_edge_differences)
        close = (
            f" (its cell edge, ∛volume, within {100 * np.median(edges):.1f}% of the "
            f"truth's at the median; < 1% for {100 * np.mean(edges < 0.01):.0f}%, < 3% for "
            f"{100 * np.mean(edges < 0.03):.0f}%)"
            if edges.size
            else ""
        )
        other = self.missed - self.outside_candidates - self.isostructural
        text = (
            f"{self.missed} of {self.queries} missed in the top 5: {self.outside_candidates} "
            f"not re-ranked (neither among the embedding's {SERVED.rerank_candidates} nearest "
            f"nor the profile search's {SERVED.profile_search_candidates}), "
            f"{self.isostructural} with a "
            f"structure of the same space group in the top 5{close}, {other} other"
        )
        if self.reach is not None:
            found = self.queries - self.missed + self.reach.misses
            text += (
                f". {self.reach.misses} of the misses have in their top 5 a material whose "
                f"calculated pattern is closer to the truth's (profile correlation "
                f"r ≥ {self.reach.threshold:.2f}, shift and strain fitted) than "
                f"{100 * REACH_QUANTILE:.0f}% of the queries are to their own material's "
                f"(median r {self.reach.median:.2f}); counting those as found, top-5 would "
                f"be {100 * found / self.queries:.1f}%"
            )
        return text


def _truth_indices(lib: Library, queries: Queries) -> list[int]:
    """Each single-phase query's material, as a library index."""
    index = {label: i for i, label in enumerate(lib.labels)}
    return [index[next(iter(t))] for t in queries.truths]


def closeness_to_truth(lib: Library, queries: Queries) -> np.ndarray:
    """Each query's profile correlation with its material's reference, as the
    re-rank fits it but without the strain prior (how far the augmentation
    moved it)."""
    return np.array(
        [
            rerank_correlation(x[0], x[1] > 0.5, lib.inputs[[truth], 0], NO_PRIOR)[0]
            for x, truth in zip(queries.inputs, _truth_indices(lib, queries), strict=True)
        ]
    )


def within_reach(
    lib: Library, queries: Queries, ranked: list[list[int]], closeness: np.ndarray
) -> Reach:
    """Count the misses of ``ranked`` whose top 5 holds a reference at least as
    close to the truth's (reference against reference, as
    :func:`closeness_to_truth` compares) as ``closeness``'s REACH_QUANTILE."""
    threshold = float(np.quantile(closeness, REACH_QUANTILE))
    count = 0
    for top, truth in zip(ranked, _truth_indices(lib, queries), strict=True):
        if truth in top[:5]:
            continue
        reference = lib.inputs[truth]
        r = rerank_correlation(reference[0], reference[1] > 0.5, lib.inputs[top[:5], 0], NO_PRIOR)
        count += bool(r.max() >= threshold)
    return Reach(float(np.median(closeness)), threshold, count)


def synthetic_misses(
    embedder: Embedder,
    lib: Library,
    rows: list[tuple[str, Library, Queries, bool, bool]],
    served: dict[str, list[list[int]]],
) -> dict[str, Misses]:
    """:func:`miss_breakdown` and :func:`within_reach` of the served ranking
    on each synthetic row."""
    source = lib.source(embedder.embed_array(lib.inputs))
    out = {}
    for name, _, queries, _, _ in rows:
        if name not in served:
            continue
        embeddings = embedder.embed_array(queries.inputs)
        nearest = source.nearest(embeddings, SERVED.rerank_candidates)
        profile_rows = source.profile_rows(SERVED.profile_search_resolution)
        truth = _truth_indices(lib, queries)
        scored = [
            i in candidates(query, hits, profile_rows)[0]
            for query, hits, i in zip(
                as_queries(queries.inputs, embeddings), nearest, truth, strict=True
            )
        ]
        reach = within_reach(lib, queries, served[name], closeness_to_truth(lib, queries))
        out[name] = replace(miss_breakdown(lib, queries, served[name], scored), reach=reach)
    return out


def miss_breakdown(
    lib: Library, queries: Queries, ranked: list[list[int]], rescored: list[bool]
) -> Misses:
    """Sort the misses of ``ranked`` (library indices, best first) by cause;
    ``rescored``: whether the re-rank scored each query's material."""
    assert lib.sticks is not None and lib.space_groups is not None
    groups, sticks = lib.space_groups, lib.sticks

    def edge(i: int) -> float:
        return float(abs(np.linalg.det(sticks[i].reciprocal_lattice)) ** (-1.0 / 3.0))

    missed = outside = 0
    differences = []
    for top, truth, scored in zip(ranked, _truth_indices(lib, queries), rescored, strict=True):
        if truth in top[:5]:
            continue
        missed += 1
        alike = [i for i in top[:5] if groups[i] is not None and groups[i] == groups[truth]]
        if not scored:
            outside += 1
        elif alike:
            differences.append(min(abs(edge(i) / edge(truth) - 1.0) for i in alike))
    return Misses(len(ranked), missed, outside, len(differences), differences)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m indexer evaluate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model", type=Path, default=PROJECT_ROOT / "model_store" / "regnet1d.pt")
    parser.add_argument("--training-set", type=Path, default=Path("runs/main/training_set.pkl"))
    parser.add_argument("--closed", type=int, default=1000, help="closed-set queries")
    parser.add_argument(
        "--per-held-out", type=int, default=3, help="augmented queries per held-out material"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")
    parser.add_argument("--card", type=Path, help="also write the model card (markdown) here")
    parser.add_argument(
        "--rankings", type=Path, help="also write each row's and method's rankings (JSON) here"
    )
    parser.add_argument(
        "--model-only", action="store_true", help="skip the baselines (to compare checkpoints)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    embedder = Embedder.load(args.model)
    data = training_set_at(args.training_set)
    cache_dir = args.training_set.parent
    lib, query_sets = synthetic_rows(data, args.closed, args.per_held_out, args.seed, cache_dir)
    aa_lib, single, mixtures, notes = autoanalyzer_rows(data)
    rj_lib, minerals, rj_notes = rockjock_rows()
    closed, open_set = query_sets["full augmentation"]
    closed_low, open_low = query_sets["low strain"]
    # (name, library, queries, scored as mixtures, each method in the phase search)
    rows = [
        ("closed set (augmented)", lib, closed, False, False),
        ("open set (held-out, augmented)", lib, open_set, False, False),
        ("closed set, low strain", lib, closed_low, False, False),
        ("open set, low strain", lib, open_low, False, False),
        ("AutoAnalyzer single-phase (real)", aa_lib, single, False, False),
        ("mixtures: phases in top 5 (real)", aa_lib, mixtures, True, False),
        ("mixtures, phase search (real)", aa_lib, mixtures, True, True),
        ("powdR minerals vs RockJock (real)", rj_lib, minerals, False, False),
    ]
    methods = {"model": rank_model(embedder), "model + re-rank": rank_model(embedder, True)}
    if not args.model_only:
        methods |= {"profile cosine": rank_profile_cosine, "shifted Pearson": rank_shifted_pearson}
    results = []
    rankings: dict[str, list[list[int]]] = {}  # "row | method" → library indices per query
    served: dict[str, list[list[int]]] = {}  # synthetic rows' served rankings
    header = f"{'row':<36}{'queries':>8}{'library':>8}  " + "  ".join(f"{m:>24}" for m in methods)
    print(f"model {embedder.version}; each method cell: top-1 / top-5 / ms per query\n")
    print(header)
    for name, library, queries, mixture, phase_search in rows:
        cells = []
        for method, fn in methods.items():
            run = with_phase_search(fn) if phase_search else fn
            ranked, seconds = run(library, queries)
            rankings[f"{name} | {method}"] = ranked
            if method == "model + re-rank" and library is lib:
                served[name] = ranked
            labels = [[library.labels[i] for i in r[:5]] for r in ranked]
            top1, top5 = score(labels, queries.truths, mixture)
            results.append(
                {
                    "row": name,
                    "method": method,
                    "queries": len(queries.truths),
                    "library": len(library.labels),
                    "top1": top1,
                    "top5": top5,
                    "ms_per_query": 1000 * seconds,
                }
            )
            cells.append(f"{100 * top1:5.1f} / {100 * top5:5.1f} / {1000 * seconds:6.1f}")
        print(
            f"{name:<36}{len(queries.truths):>8}{len(library.labels):>8}  "
            + "  ".join(f"{c:>24}" for c in cells),
            flush=True,
        )
    if args.rankings:
        args.rankings.write_text(json.dumps(rankings))
    misses = synthetic_misses(embedder, lib, rows, served)
    for name, m in misses.items():
        print(f"served, {name}: {m.describe()}")
    for note in notes + rj_notes:
        print("note:", note)
    notes_all = notes + rj_notes + [f"served, {n}: {m.describe()}" for n, m in misses.items()]
    if args.json:
        args.json.write_text(
            json.dumps(
                {"model_version": embedder.version, "rows": results, "notes": notes_all}, indent=1
            )
        )
    if args.card:
        args.card.write_text(model_card(embedder, data, results, notes_all))


def model_card(embedder: Embedder, data: TrainingSet, results: list[dict], notes: list[str]) -> str:
    """The model card: what the checkpoint is, what it was trained on, how it
    scores (``data``: the training set the synthetic rows were drawn from)."""
    card = embedder.card
    training = card.get("training", {})
    generated = sum(c.generated for c in data.train)
    lines = [
        "# Model card: xrdid RegNet1D + AdaCos",
        "",
        f"- **model version** (SHA-256 of `regnet1d.pt`, first 16 hex): `{embedder.version}`",
        f"- **grid**: {json.dumps(card.get('grid'))}",
        "- **input**: 2 channels (preprocessed intensity, coverage mask) on the grid; "
        f"output: a {embedder.dim}-d unit vector, compared by cosine",
        f"- **preprocessing**: {json.dumps(card.get('preprocessing'))}",
        f"- **architecture**: {json.dumps(card.get('model'))}; stem stride, norm and "
        "intensity-scale variants measured in `ABLATION.md` (`make ablation`); what each "
        "distortion costs the model in `DISTORTIONS.md` (`make distortions`)",
        "",
        "## Training data",
        "",
        f"- {training.get('real_classes')} real materials (reduced formula + space group) from "
        "every structure in `../shared/data/structures` that reads and simulates; "
        f"{training.get('held_out_classes')} more held out (20%, seed {training.get('seed')}), "
        "listed with their files in `held_out.json`",
        f"- {training.get('generated_classes')} pyxtal random crystals with (formula, space "
        "group) pairs from the COD index (held-out formulas excluded)",
        f"- {training.get('steps_done')} steps of batch {training.get('batch_size')} in "
        f"{training.get('minutes')} minutes on a 2-core CPU; learning curve in "
        "`learning_curve.csv` / `.png`; last epoch: "
        f"{json.dumps(training.get('final_epoch'))}",
        f"- augmentation: {json.dumps(card.get('augmentation'))}",
        "",
        "## Evaluation (`python -m indexer evaluate`)",
        "",
        "The synthetic rows' library holds every material of the training set as today's "
        f"readers rebuild it: {len(data.train) - generated} real training materials, "
        f"{len(data.held_out)} held out (each material `held_out.json` names, or holding a "
        f"file it lists) and {generated} generated ones; {len(data.rejected)} files rejected "
        f"(training: {training.get('rejected_files')}). Readers that accept another file or "
        "read a file's symmetry otherwise move those counts from training's; the held-out "
        "files stay held out.",
        "",
        "| row | method | queries | library | top-1 % | top-5 % | ms/query |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['row']} | {r['method']} | {r['queries']} | {r['library']} | "
            f"{100 * r['top1']:.1f} | {100 * r['top5']:.1f} | {r['ms_per_query']:.1f} |"
        )
    lines += [
        "",
        "'model': the embedding alone (cosine). 'model + re-rank': as the service ranks "
        f"(`xrdid/ranking/`): the embedding's {SERVED.rerank_candidates} nearest references, "
        f"and the {SERVED.profile_search_candidates} whose profiles correlate best with the "
        "query's (`xrdid/ranking/profile_search.py`, every reference, coarsely), scored "
        f"by cosine + {SERVED.profile_weight:g} × profile correlation (Pearson r of "
        "square-rooted profiles, best over 2θ shifts of ±0.3° and isotropic strains of ±3.5% "
        f"with a prior for small strains; the {SERVED.strain_fit_candidates} best by that "
        "score also get a strain tensor fitted, `xrdid/ranking/strain_tensor.py`; chosen on "
        "other synthetic queries, `RERANK.md`). "
        "Mixtures: top-1 = the best candidate is one of the sample's phases; top-5 = the "
        "share of its phases found in the top 5. 'Phase search': each method inside the "
        "find–subtract–search-again loop of `indexer/classical_phases.py` (up to 3 phases). "
        "'Low strain': the same synthetic queries, but only one in five strained anywhere "
        "within ±3% (isotropic) and ±1% (per strain-tensor component), as the full "
        "augmentation does to every query; the rest by a few tenths of a percent. "
        "Times exclude reading and preprocessing "
        "(common to all methods) and include embedding the query for the model.",
        "",
    ]
    lines += [f"- note: {n}" for n in notes]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
