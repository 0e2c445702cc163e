"""Should the embeddings be searched in PostgreSQL (pgvector) instead of in
each replica (FAISS)? The same embeddings, the same queries, side by side.

    python -m benchmarks.pgvector [--database-url postgresql://…] [--size 100000]
        [--padding near random] [--json OUT]

The embeddings are the shipped library's (2,067 real references) padded to
``--size`` as ``benchmarks.scale recall`` pads them (``--padding near``:
copies under unit embeddings near their reference's, many entries per
material) or as ``benchmarks.scale build`` does (``random``: random unit
embeddings, far from every real one); the queries are the embeddings of the
real scans of the shared data (read, preprocessed and embedded as
``/identify`` does). Without ``--database-url`` a PostgreSQL server is
started for the run in a temporary folder (shared_buffers 1 GB, so table
and index stay in memory); the pgvector extension must be installed in it
(``CREATE EXTENSION vector``).

Compared, each query alone (one thread: the service searches one query per
compute thread; PostgreSQL with no parallel workers), for the 5 and the 300
nearest (the ranking takes the 300 nearest embeddings, ``rerank_candidates``):

- FAISS exact inner product (``IndexFlatIP``), in process: the service's
  exact search, and the ground truth;
- pgvector exact: ``ORDER BY embedding <#> query LIMIT k`` on the table (a
  sequential scan), over a local connection;
- pgvector HNSW (``vector_ip_ops``, m 16, ef_construction 64: the defaults)
  with ``hnsw.ef_search`` 40 (the default), 300 (at least k: HNSW returns at
  most ef_search rows) and 1,000 (its most).

Reported: p50/p95 latency per query, recall@k against FAISS exact, build
time (FAISS add; PostgreSQL COPY and CREATE INDEX) and memory (FAISS's
vectors; the table's and the index's size in PostgreSQL).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import faiss
import numpy as np
import psycopg
from numpy.typing import NDArray

from benchmarks.jobs import DEFAULT_LIBRARY, DEFAULT_MODEL, real_scans
from benchmarks.postgres import database
from benchmarks.scale import padded_embeddings
from xrdid.embedder import Embedder
from xrdid.errors import XrdidError
from xrdid.library import Library
from xrdid.preprocess import preprocess
from xrdid.readers import read_pattern

KS = (5, 300)
EF_SEARCH = (40, 300, 1000)  # the default, the ranking's k, pgvector's most
# Room for the table and its index in memory.
SERVER_SETTINGS = {"shared_buffers": "1GB"}


def library_embeddings(library: Path, embedder: Embedder, tmp: Path) -> NDArray[np.float32]:
    """The stored embeddings of the library's references, in id order."""
    copy = tmp / "library.sqlite"
    shutil.copy(library, copy)
    opened = Library.open(copy, embedder, load_index=False)
    try:
        vectors = [
            np.frombuffer(row[11], dtype=np.float32)
            for row in opened.store.export_rows(0, 10_000_000)  # type: ignore[attr-defined]
        ]
    finally:
        opened.close()
    return np.stack(vectors)


def scan_embeddings(embedder: Embedder) -> NDArray[np.float32]:
    """The real scans of the shared data embedded as /identify embeds them
    (the files no reader accepts left out)."""
    _, distinct = real_scans(1)
    scans, _ = real_scans(distinct)
    views = []
    for name, data in scans:
        try:
            views.append(preprocess(read_pattern(data, name)))
        except XrdidError:
            continue
    return embedder.embed(views)


def scalar(db: psycopg.Connection[tuple[object, ...]], sql: str) -> object:
    row = db.execute(sql).fetchone()  # type: ignore[arg-type]  # static SQL
    assert row is not None
    return row[0]


def vector_literal(vector: NDArray[np.float32]) -> str:
    return "[" + ",".join(f"{x:.9g}" for x in vector) + "]"


def timed(
    search: Callable[[NDArray[np.float32]], list[int]], queries: NDArray[np.float32]
) -> tuple[list[list[int]], list[float]]:
    """Each query searched alone after one warm-up pass: (ids, milliseconds)."""
    for query in queries[:10]:
        search(query)
    found, ms = [], []
    for query in queries:
        start = time.perf_counter()
        found.append(search(query))
        ms.append(1000 * (time.perf_counter() - start))
    return found, ms


def recall(found: Sequence[Sequence[int]], truth: Sequence[Sequence[int]]) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def summary(
    name: str, k: int, ms: list[float], found: list[list[int]], truth: list[list[int]]
) -> dict[str, object]:
    row = {
        "search": name,
        "k": k,
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "recall": round(recall(found, truth), 4),
    }
    print(json.dumps(row), flush=True)
    return row


def compare(
    embeddings: NDArray[np.float32], queries: NDArray[np.float32], database_url: str | None
) -> dict[str, object]:
    """FAISS and pgvector on the same embeddings and queries."""
    n, dim = embeddings.shape
    results: dict[str, object] = {"size": n, "dim": dim, "queries": len(queries)}
    rows: list[dict[str, object]] = []

    began = time.perf_counter()
    index = faiss.IndexFlatIP(dim)
    index.add(embeddings)
    results["faiss_build_s"] = round(time.perf_counter() - began, 3)
    results["faiss_bytes"] = int(index.ntotal * dim * 4)
    truth: dict[int, list[list[int]]] = {}
    for k in KS:

        def faiss_search(query: NDArray[np.float32], k: int = k) -> list[int]:
            return [int(i) for i in index.search(query[None, :], k)[1][0]]

        truth[k], ms = timed(faiss_search, queries)
        rows.append(summary("faiss exact", k, ms, truth[k], truth[k]))

    with (
        database(database_url, SERVER_SETTINGS) as url,
        psycopg.connect(url, autocommit=True) as db,
    ):
        try:
            db.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.errors.UndefinedFile as exc:
            raise SystemExit(
                "the pgvector extension is not installed in this PostgreSQL "
                f"({exc}); docs/scale-out.md says how it was built for this benchmark"
            ) from exc
        results["pgvector_version"] = scalar(
            db, "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        )
        db.execute("SET max_parallel_workers_per_gather = 0")
        db.execute("SET max_parallel_maintenance_workers = 0")
        db.execute("SET maintenance_work_mem = '1GB'")
        db.execute("DROP TABLE IF EXISTS embedding")
        db.execute(f"CREATE TABLE embedding (id INTEGER PRIMARY KEY, embedding vector({dim}))")
        began = time.perf_counter()
        with db.cursor().copy("COPY embedding (id, embedding) FROM STDIN") as copy:
            for i, vector in enumerate(embeddings):
                copy.write_row((i, vector_literal(vector)))
        db.execute("VACUUM ANALYZE embedding")
        results["pgvector_copy_s"] = round(time.perf_counter() - began, 2)
        results["pgvector_table_bytes"] = scalar(db, "SELECT pg_total_relation_size('embedding')")

        def pg_search(k: int) -> Callable[[NDArray[np.float32]], list[int]]:
            sql = f"SELECT id FROM embedding ORDER BY embedding <#> %s::vector LIMIT {k}"
            return lambda query: [row[0] for row in db.execute(sql, (vector_literal(query),))]

        for k in KS:
            found, ms = timed(pg_search(k), queries)
            rows.append(summary("pgvector exact", k, ms, found, truth[k]))

        began = time.perf_counter()
        db.execute("CREATE INDEX embedding_hnsw ON embedding USING hnsw (embedding vector_ip_ops)")
        results["pgvector_hnsw_build_s"] = round(time.perf_counter() - began, 2)
        results["pgvector_hnsw_bytes"] = scalar(db, "SELECT pg_relation_size('embedding_hnsw')")
        plan = db.execute(
            "EXPLAIN SELECT id FROM embedding ORDER BY embedding <#> %s::vector LIMIT 5",
            (vector_literal(queries[0]),),
        ).fetchall()
        if not any("embedding_hnsw" in str(line) for line in plan):
            raise AssertionError(f"the HNSW index is not used: {plan}")
        for ef in EF_SEARCH:
            db.execute(f"SET hnsw.ef_search = {ef}")
            for k in KS:
                found, ms = timed(pg_search(k), queries)
                rows.append(summary(f"pgvector hnsw ef_search {ef}", k, ms, found, truth[k]))
    results["rows"] = rows
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default=None, help="an empty database (default: a temporary server)"
    )
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument(
        "--padding",
        choices=["near", "random"],
        nargs="+",
        default=["near", "random"],
        help="padding embeddings near their reference's (scale recall) or random (scale build)",
    )
    parser.add_argument("--spread", type=float, default=0.5, help="near padding's noise")
    parser.add_argument("--library", type=Path, default=DEFAULT_LIBRARY)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    faiss.omp_set_num_threads(1)
    load_before = round(os.getloadavg()[0], 1)
    embedder = Embedder.load(args.model, device="cpu")
    tmp = Path(tempfile.mkdtemp(prefix="xrdid-pgvector-"))
    try:
        references = library_embeddings(args.library, embedder, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    queries = scan_embeddings(embedder)
    runs = []
    for padding in args.padding:
        spread = args.spread if padding == "near" else None
        embeddings, _ = padded_embeddings(references, args.size, spread)
        print(f"{len(embeddings):,} embeddings, {padding} padding", flush=True)
        runs.append(
            {"padding": padding, "spread": spread} | compare(embeddings, queries, args.database_url)
        )

    for run in runs:
        print(
            f"\n{run['size']:,} embeddings ({run['dim']} dimensions, {run['padding']} padding),"
            f" {len(queries)} real scans as queries"
        )
        print(f"{'search':32s} {'k':>4s} {'p50 ms':>8s} {'p95 ms':>8s} {'recall':>7s}")
        for row in run["rows"]:  # type: ignore[attr-defined]
            print(
                f"{row['search']:32s} {row['k']:4d} {row['p50_ms']:8.2f} {row['p95_ms']:8.2f}"
                f" {row['recall']:7.3f}"
            )
        print(json.dumps({k: v for k, v in run.items() if k != "rows"}))
    if args.json is not None:
        report = {
            "cores": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": round(os.getloadavg()[0], 1),
            "runs": runs,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
