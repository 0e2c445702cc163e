"""Scale benchmark: a million references on one replica, side by side with
10,000 and 100,000, exact and approximate search.

    python -m benchmarks.scale build  [--sizes 10000 100000 1000000]
    python -m benchmarks.scale serve  [--sizes …] [--requests 60] [--exact-too]
    python -m benchmarks.scale recall [--size 1000000] [--queries 300] [--skip 0]
                                      [--training-set runs/main/training_set.pkl]
    python -m benchmarks.scale replicas --database-url postgresql://… [--trials 50]

``build`` makes each library once and caches it in ``runs/scale/`` (git-ignored):
the shipped library's 2,067 real references, then copies of their stored rows
(patterns, profiles, intensity ratios, as encoded) under new ids and random
unit embeddings up to the size (as ``benchmarks.service`` does), stored in
batches of 5,000 without an index (a streaming build: memory holds one
batch), then the index built once from the database in batches, with
progress, and saved next to it.

``serve`` starts the service (a real uvicorn process) on each cached library
and times ``/identify`` with ``phases=false`` (the flat list) on the real scans
of ``benchmarks.service``: p50/p95 and the server's resident memory, the
search ``auto`` chooses (exact below 200,000 references, approximate from
there) and, with ``--exact-too``, exact search at the largest size.

``recall`` measures what approximate search costs the served ranking: the
evaluation's synthetic queries (``python -m indexer evaluate``'s cache: the
library of its 2,522 materials and the closed set's augmented queries) are
ranked as the service ranks them against those references plus padding up to
``--size`` (copies of their profiles, each under an embedding near the copied
reference's: many entries per material, as in a large database), once with
exact and once with approximate search structures (:class:`SearchIndex`),
and the top-5 hit rates are compared.

``replicas`` measures how long an add on one replica takes to be searchable
on another: two libraries on one (empty) PostgreSQL database, the second
following the first's writes (:class:`LibraryFollower`, LISTEN/NOTIFY); the
time from the add's return to the second's index holding it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from benchmarks.service import DEFAULT_MODEL, SHIPPED_LIBRARY, Service, real_scans
from xrdid.data_paths import PROJECT_ROOT
from xrdid.library import Library, NewReference, SearchSettings
from xrdid.library.index import SearchIndex
from xrdid.library.layouts import LAYOUTS
from xrdid.library.store import SqliteStore
from xrdid.ranking import SERVED, ArraySource, EmbeddingHits, ProfileRows, Query, rank
from xrdid.ranking.config import SearchResolution
from xrdid.ranking.profile_search import coarse_rows
from xrdid.technique import Technique

CACHE = PROJECT_ROOT / "runs" / "scale"
# Targets at a million references (issue 20).
TARGET_P50_MS = 100.0
TARGET_RSS_GB = 4.0
TARGET_RECALL_POINTS = 0.5
BATCH = 5_000


# --------------------------------------------------------------------------- build


def library_path(size: int) -> Path:
    return CACHE / f"library-{size}.sqlite"


def build(size: int, embedder: object, seed: int = 0) -> float:
    """The cached library of ``size`` references (built once); seconds taken."""
    import shutil

    path = library_path(size)
    if path.exists() and path.with_name(path.name + ".done").exists():
        return 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(path.name + "*"):
        stale.unlink()
    start = time.perf_counter()
    shutil.copyfile(SHIPPED_LIBRARY, path)
    rng = np.random.default_rng(seed)
    library = Library.open(path, embedder, load_index=False)  # type: ignore[arg-type]
    try:
        store = library.store
        assert isinstance(store, SqliteStore)
        # The templates' stored rows (encoded blobs), copied under new ids,
        # source ids and random unit embeddings, a batch per transaction.
        templates = store.export_rows(0, 1_000_000)
        count, next_id = len(templates), int(templates[-1][0]) + 1
        with tqdm(total=size, initial=count, desc=f"storing {size:,}", unit="ref") as bar:
            while count < size:
                n = min(BATCH, size - count)
                vectors = rng.standard_normal((n, library.dim)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                rows = []
                for i in range(n):
                    row = list(templates[(count + i) % len(templates)])
                    row[0] = next_id + i
                    row[1] = f"copy {count + i} of {row[1]}"
                    row[7], row[8] = "benchmark", str(count + i)  # source, source id
                    row[11] = vectors[i].tobytes()
                    rows.append(tuple(row))
                store.import_rows(rows)
                count += n
                next_id += n
                bar.update(n)
        with tqdm(total=size, desc="indexing", unit="ref") as bar:

            def progress(done: int, total: int) -> None:
                bar.update(done - bar.n)

            library.load_index(progress)
    finally:
        library.close()
    path.with_name(path.name + ".done").write_text(f"{time.perf_counter() - start:.1f}\n")
    return time.perf_counter() - start


# --------------------------------------------------------------------------- serve


def resident_gb(pid: int) -> float:
    """Resident memory of a process (VmRSS), GB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def serve_one(
    size: int, mode: str, scans: Sequence[tuple[str, bytes]], requests: int, tmp: Path
) -> dict[str, float | int | str]:
    os.environ["XRDID_SEARCH_MODE"] = mode
    service = Service(library_path(size), DEFAULT_MODEL, tmp / f"service-{size}-{mode}.log")
    try:
        times, search = [], []
        with httpx.Client(base_url=service.url, timeout=600) as client:
            for i in range(requests + 3):
                scan = scans[i % len(scans)]
                began = time.perf_counter()
                response = client.post("/identify", files={"file": scan}, data={"phases": "false"})
                response.raise_for_status()
                if i >= 3:  # warm-up: caches, lazy imports
                    times.append(1000 * (time.perf_counter() - began))
                    search.append(response.json()["timings_ms"]["search_ms"])
        rss = resident_gb(service.process.pid)
    finally:
        service.stop()
    return {
        "size": size,
        "mode": mode,
        "requests": requests,
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
        "search_p50_ms": statistics.median(search),
        "rss_gb": rss,
    }


# --------------------------------------------------------------------------- recall


class IndexedSource(ArraySource):
    """References as arrays, searched through the library's search
    structures (:class:`SearchIndex`, exact or approximate) as the service
    searches them; ids are row indices."""

    def __init__(
        self,
        index: SearchIndex,
        profiles: NDArray[np.floating],
        embeddings: NDArray[np.float32],
        sticks: Sequence[object],
    ) -> None:
        super().__init__(profiles, embeddings, sticks)  # type: ignore[arg-type]
        self.index = index

    def nearest(self, embeddings: NDArray[np.float32], n: int) -> list[EmbeddingHits]:
        scores, ids = self.index.nearest(np.ascontiguousarray(embeddings), n)
        out = []
        for query, row_scores, row_ids in zip(embeddings, scores, ids, strict=True):
            found = row_ids >= 0
            out.append(
                EmbeddingHits(
                    row_ids[found],
                    row_scores[found].astype(np.float64),
                    lambda i, q=query: self._embeddings[i] @ q,
                )
            )
        return out

    def profile_rows(self, resolution: SearchResolution) -> ProfileRows:
        return ProfileRows(self.index.ids, self.index.rows, None)


def padded_embeddings(
    references: NDArray[np.float32], size: int, spread: float | None, seed: int = 0
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """``references`` padded to ``size`` rows: row i copies reference i mod
    their number, under a unit embedding near its own (``spread`` of random
    noise), as a large database holds many entries per material; spread
    None: under a random unit embedding, as ``build`` stores them. (The
    embeddings, each row's reference.)"""
    n_real = len(references)
    rng = np.random.default_rng(seed)
    template = np.arange(size) % n_real
    embeddings = np.empty((size, references.shape[1]), dtype=np.float32)
    embeddings[:n_real] = references[:size]
    for start in range(n_real, size, 100_000):
        stop = min(start + 100_000, size)
        noise = rng.standard_normal((stop - start, references.shape[1])).astype(np.float32)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        if spread is None:
            embeddings[start:stop] = noise
            continue
        mixed = references[template[start:stop]] + spread * noise
        embeddings[start:stop] = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    return embeddings, template


def recall(args: argparse.Namespace) -> dict[str, object]:
    """Top-5 of the served ranking with exact and approximate search structures."""
    from indexer.evaluate import evaluation_library, synthetic_rows
    from indexer.training_set import training_set_at
    from xrdid.embedder import Embedder

    embedder = Embedder.load(args.model, device="cpu")
    data = training_set_at(args.training_set)
    cache_dir = args.training_set.parent
    lib = evaluation_library(data, cache_dir)
    _, sets = synthetic_rows(data, 1000, 3, 7, cache_dir)
    closed, _ = sets["full augmentation"]
    chosen = slice(args.skip, args.skip + args.queries)
    queries_in = closed.inputs[chosen]
    truths = closed.truths[chosen]
    references = embedder.embed_array(lib.inputs)
    query_embeddings = embedder.embed_array(queries_in)
    n_real = len(lib.labels)
    embeddings, template = padded_embeddings(references, args.size, args.spread, args.seed)
    labels = [lib.labels[t] for t in template]
    profiles = lib.inputs[:, 0]
    coarse_real = coarse_rows(profiles)
    ids = np.arange(args.size, dtype=np.int64)
    bits = np.zeros((args.size, 2), dtype=np.uint64)
    results: dict[str, object] = {
        "size": args.size,
        "queries": len(truths),
        "skipped": args.skip,
        "seed": args.seed,
    }
    queries = [
        Query(x[0], x[1] > 0.5, e) for x, e in zip(queries_in, query_embeddings, strict=True)
    ]
    for mode in args.modes:
        settings = SearchSettings(
            mode=mode,
            probe=args.probe,
            profile_shortlist=args.profile_shortlist,
            sketch_dims=args.sketch_dims,
        )
        began = time.perf_counter()
        if mode == "exact":
            index = SearchIndex(embeddings.shape[1], LAYOUTS[Technique.XRD])
            index.vectors.add_with_ids(embeddings, ids)
            index.set_rows(ids, bits, coarse_real[template])
        else:
            step = max(1, args.size // settings.training_sample)
            index = SearchIndex.trained(
                embeddings.shape[1],
                LAYOUTS[Technique.XRD],
                embeddings[::step],
                coarse_real[template[::step]],
                settings,
                args.size,
            )
            index.vectors.add_with_ids(embeddings, ids)
            parts = [
                index.rows.encoded(coarse_real[template[s : s + 100_000]])  # type: ignore[union-attr]
                for s in range(0, args.size, 100_000)
            ]
            index.set_rows(ids, bits, index.rows.joined(parts))  # type: ignore[union-attr]
        built = time.perf_counter() - began
        # Profiles of the padding are the copied reference's: index them by template.
        source = IndexedSource(
            index,
            profiles[template] if args.size <= n_real else _Rows(profiles, template),
            embeddings,
            [lib.sticks[t] for t in template] if lib.sticks else [],
        )  # type: ignore[arg-type]
        hits1 = hits5 = 0
        began = time.perf_counter()
        top5: list[list[int]] = []
        for query, truth in tqdm(list(zip(queries, truths, strict=True)), desc=mode):
            (ranking,) = rank([query], source, 5, SERVED)
            found = [labels[r.reference_id] for r in ranking.best]
            top5.append([r.reference_id for r in ranking.best])
            hits1 += bool(found[:1]) and found[0] in truth
            hits5 += any(label in truth for label in found[:5])
        seconds = (time.perf_counter() - began) / len(queries)
        results[mode] = {
            "top1": hits1 / len(queries),
            "top5": hits5 / len(queries),
            "ms_per_query": 1000 * seconds,
            "index_build_s": built,
        }
        results[f"{mode}_top5_ids"] = top5
        print(mode, json.dumps(results[mode]), flush=True)
    if set(args.modes) != {"exact", "approximate"}:
        return results
    exact, approximate = results["exact"], results["approximate"]
    same = [
        len(set(a) & set(e)) / max(len(e), 1)
        for a, e in zip(results["approximate_top5_ids"], results["exact_top5_ids"], strict=True)  # type: ignore[call-overload]
    ]
    results["top5_overlap"] = float(np.mean(same))
    results["top5_points_lost"] = 100 * (exact["top5"] - approximate["top5"])  # type: ignore[index]
    del results["approximate_top5_ids"], results["exact_top5_ids"]
    return results


class _Rows:
    """Rows of a template array by index (padding shares its template's arrays)."""

    def __init__(self, values: NDArray[np.floating], template: NDArray[np.int64]) -> None:
        self.values, self.template = values, template

    def __getitem__(self, ids: NDArray[np.int64]) -> NDArray[np.floating]:
        return self.values[self.template[ids]]


# --------------------------------------------------------------------------- replicas


def replicas(args: argparse.Namespace) -> dict[str, float]:
    """Add-to-searchable seconds on a second library following the first."""
    import shutil

    from xrdid.embedder import Embedder
    from xrdid.library.follow import LibraryFollower

    embedder = Embedder.load(args.model, device="cpu")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="xrdid-replicas-") as tmp:
        copy = Path(tmp) / "library.sqlite"  # the shipped file stays as it is
        shutil.copyfile(SHIPPED_LIBRARY, copy)
        with Library.open(copy, embedder) as shipped:
            template = shipped.page(limit=1).entries[0]
            pattern = shipped.get_pattern(template.id)
    with (
        Library.open(args.database_url, embedder) as one,
        Library.open(args.database_url, embedder) as two,
    ):
        follower = LibraryFollower(two, interval_s=1.0).start()
        delays = []
        try:
            for trial in range(args.trials):
                vector = rng.standard_normal(one.dim).astype(np.float32)
                added = one.add(
                    NewReference(
                        info=replace(template.info, source="replicas", source_id=str(trial)),
                        pattern=pattern,
                        embedding=vector / np.linalg.norm(vector),
                        model_version=one.model_version,
                    )
                )
                began = time.perf_counter()
                while two.status().size < one.status().size:
                    time.sleep(0.0005)
                delays.append(time.perf_counter() - began)
                assert two.search(vector / np.linalg.norm(vector), 1)[0][0].entry.id == added.id
                time.sleep(0.05)
        finally:
            follower.stop()
    return {
        "trials": args.trials,
        "p50_ms": 1000 * float(np.percentile(delays, 50)),
        "p95_ms": 1000 * float(np.percentile(delays, 95)),
        "max_ms": 1000 * max(delays),
    }


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale", description=__doc__.splitlines()[0]
    )
    parser.add_argument("command", choices=["build", "serve", "recall", "replicas"])
    parser.add_argument("--database-url", help="replicas: an empty PostgreSQL database")
    parser.add_argument("--trials", type=int, default=50, help="replicas: adds timed")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument(
        "--exact-too", action="store_true", help="also exact search at the largest size"
    )
    parser.add_argument("--size", type=int, default=1_000_000, help="recall: library size")
    parser.add_argument("--queries", type=int, default=300, help="recall: queries")
    parser.add_argument("--skip", type=int, default=0, help="recall: queries skipped first")
    parser.add_argument("--spread", type=float, default=0.5, help="recall: padding embedding noise")
    parser.add_argument("--seed", type=int, default=0, help="recall: padding embeddings' seed")
    parser.add_argument(
        "--modes", nargs="+", default=["approximate", "exact"], choices=["approximate", "exact"]
    )
    parser.add_argument("--probe", type=int, default=SearchSettings.probe)
    parser.add_argument("--profile-shortlist", type=float, default=SearchSettings.profile_shortlist)
    parser.add_argument("--sketch-dims", type=int, default=SearchSettings.sketch_dims)
    parser.add_argument("--training-set", type=Path, default=Path("runs/main/training_set.pkl"))
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    from xrdid.embedder import Embedder

    record: dict[str, object] = {"cpu_count": os.cpu_count()}
    if args.command == "build":
        embedder = Embedder.load(args.model, device="cpu")
        for size in args.sizes:
            seconds = build(size, embedder)
            print(f"{size:,} references: built in {seconds:.0f} s ({library_path(size)})")
    elif args.command == "serve":
        scans = real_scans()
        rows = []
        with tempfile.TemporaryDirectory(prefix="xrdid-scale-") as tmp:
            for size in args.sizes:
                rows.append(serve_one(size, "auto", scans, args.requests, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
            if args.exact_too:
                size = max(args.sizes)
                rows.append(serve_one(size, "exact", scans, max(args.requests // 4, 10), Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
        record["serve"] = rows
        print(serve_table(rows))
    elif args.command == "replicas":
        if not args.database_url:
            parser.error("replicas needs --database-url")
        record["replicas"] = replicas(args)
        print(json.dumps(record["replicas"], indent=1))
    else:
        record["recall"] = recall(args)
        print(json.dumps(record["recall"], indent=1))
    record["load_average"] = os.getloadavg()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


def serve_table(rows: Sequence[dict[str, float | int | str]]) -> str:
    width = 26
    heads = [f"{int(r['size']):,} ({r['mode']})" for r in rows]
    lines = [f"{'':34}" + "".join(f"{h:>{width}}" for h in heads)]
    for label, key, fmt in (
        ("/identify phases=false p50 (ms)", "p50_ms", "{:.1f}"),
        ("/identify phases=false p95 (ms)", "p95_ms", "{:.1f}"),
        ("  server search stage p50 (ms)", "search_p50_ms", "{:.1f}"),
        ("  server resident memory (GB)", "rss_gb", "{:.2f}"),
    ):
        lines.append(f"{label:34}" + "".join(f"{fmt.format(r[key]):>{width}}" for r in rows))
    big = [
        r for r in rows if r["size"] == max(int(r["size"]) for r in rows) and r["mode"] == "auto"
    ]
    for r in big:
        lines.append(
            f"target at {r['size']:,}: p50 ≤ {TARGET_P50_MS:.0f} ms "
            f"{'met' if float(r['p50_ms']) <= TARGET_P50_MS else 'missed'} ({float(r['p50_ms']):.1f}); "
            f"≤ {TARGET_RSS_GB:.0f} GB {'met' if float(r['rss_gb']) <= TARGET_RSS_GB else 'missed'} "
            f"({float(r['rss_gb']):.2f})"
        )
    lines.append(
        f"(load average: {', '.join(f'{v:.1f}' for v in os.getloadavg())}; {os.cpu_count()} CPUs)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
