"""Service benchmark: latency and throughput of ``POST /identify`` over HTTP,
next to the naive pipeline the original work implies.

    python -m benchmarks.service [--sizes 10000 100000] [--requests 100]
                                 [--concurrency 1 4 8] [--model CKPT] [--json OUT]

For each library size a library is built through the library API: the
shipped default library's 2,067 real references, then as many more as the
size asks, each another's real pattern, profile and RIR under a random unit
embedding (the cost of the search, of the profile search of every reference,
of re-ranking and of the phase analysis depends on the count and on real
patterns, not on which material each is). The service is started as a real
uvicorn process on 127.0.0.1 and real scans are identified in turn (the dara
precursor mixtures' 8-minute scans, the XRD-AutoAnalyzer scans and powdR's
quartz: single phases and mixtures of 2–3):

- sequential requests, with the phase analysis (the default) and without
  (``phases=false``, the flat ranked list): client-side p50/p95 latency and
  the server's stage breakdown (read, preprocess, embed, search, phases;
  medians);
- concurrent clients (threads, one connection each): requests per second and
  p50/p95 under load.

The naive pipeline, timed in the same run on the same scan: BEADS computed as
pybeads does it but with every matrix dense (N×N high-pass filter matrices,
(2N−3)×N difference matrix, dense products and an LU solve per iteration;
O(N³) per iteration), then full-profile Pearson correlation of the result
against every reference profile (4,251 points each). Dense BEADS is timed
over ``--naive-iterations`` iterations and extrapolated to pybeads' usual 15
(``--naive-full`` runs all of them); the correlation against 100,000 profiles
streams a 10,000-profile block ten times (same arithmetic, a tenth of the memory).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import httpx
import numpy as np
from numpy.typing import NDArray

from xrdid.data_paths import PROJECT_ROOT, shared_data_dir
from xrdid.grid import MODEL_GRID
from xrdid.library import Library, NewReference
from xrdid.sticks import StickPattern

DEFAULT_MODEL = PROJECT_ROOT / "model_store" / "regnet1d.pt"
SHIPPED_LIBRARY = PROJECT_ROOT / "model_store" / "library.sqlite"
QUERY_POINTS = 4500
# p50 targets at 10,000 references: the flat list (issue 2), and with the
# phase analysis (issue 16).
TARGET_P50_MS = 50.0
TARGET_PHASES_P50_MS = 100.0
# pybeads' example settings (chromatography): d=1, fc=0.006, r=6, 15 iterations.
NAIVE_BEADS = {"d": 1, "fc": 0.006, "r": 6.0, "lam0": 0.4, "lam1": 4.0, "lam2": 3.2}
NAIVE_NIT = 15
PROFILE_BLOCK = 10_000


# --------------------------------------------------------------------------- inputs


def bgmn_sticks(name: str) -> StickPattern:
    """The stick pattern of one of BGMN's structures (e.g. 'QUARTZ.STR')."""
    from xrdid.sticks import simulate_sticks
    from xrdid.structures import read_structure

    path = shared_data_dir() / "structures" / "bgmn" / "BGMN" / name
    return simulate_sticks(read_structure(path).structure)


def query_scan() -> tuple[NDArray[np.float64], NDArray[np.float64], bytes]:
    """A 4,500-point Cu Kα scan of quartz (2θ 5–95°) with background and noise."""
    from xrdid.backgrounds import poisson_counts
    from xrdid.grid import Grid
    from xrdid.profiles import render_sticks
    from xrdid.wavelengths import CU_KALPHA

    step = 90.0 / (QUERY_POINTS - 1)
    grid = Grid(
        wavelength_angstrom=CU_KALPHA.kalpha1_angstrom, start_deg=5.0, stop_deg=95.0, step_deg=step
    )
    x = grid.two_theta_deg[:QUERY_POINTS]
    peaks = render_sticks(bgmn_sticks("QUARTZ.STR"), grid, wavelength=CU_KALPHA)[:QUERY_POINTS]
    background = 0.08 + 0.25 * np.exp(-(x - 5.0) / 12.0)
    counts = poisson_counts(np.random.default_rng(0), peaks + background, 20_000.0)
    text = "".join(f"{a:.4f} {b:.1f}\n" for a, b in zip(x, counts, strict=True)).encode()
    return x, np.asarray(counts, dtype=np.float64), text


def real_scans() -> list[tuple[str, bytes]]:
    """The real scans identified in turn: single phases and mixtures."""
    root = shared_data_dir() / "patterns"
    paths = sorted((root / "dara" / "precursor_mixtures").glob("*--8min.xrdml"))
    paths += sorted((root / "xrd_autoanalyzer").glob("*.xy"))
    paths.append(root / "powdr_minerals" / "quartz.xy")
    return [(p.name, p.read_bytes()) for p in paths]


def build_library(path: Path, size: int, embedder: object, seed: int = 0) -> float:
    """The shipped library's references, then copies of their patterns under
    random unit embeddings up to ``size``; seconds taken."""
    start = time.perf_counter()
    shutil.copyfile(SHIPPED_LIBRARY, path)
    rng = np.random.default_rng(seed)
    with Library.open(path, embedder) as library:  # type: ignore[arg-type]
        templates = library.page(limit=1).total
        ids = [e.id for e in _all_entries(library)]
        entries = {e.id: e for e in _all_entries(library)}
        with library.reading() as source:
            profiles = source.profiles(np.array(ids))
        for chunk_start in range(templates, size, 2000):
            n = min(2000, size - chunk_start)
            vectors = rng.standard_normal((n, library.dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            items = []
            for i in range(n):
                k = (chunk_start + i) % len(ids)
                template = entries[ids[k]]
                items.append(
                    NewReference(
                        info=replace(
                            template.info,
                            name=f"copy {chunk_start + i} of {template.info.name}",
                            source="benchmark",
                            source_id=str(chunk_start + i),
                        ),
                        pattern=library.get_pattern(ids[k]),
                        embedding=vectors[i],
                        model_version=library.model_version,
                        profile=profiles[k],
                    )
                )
            library.add_many(items)
    return time.perf_counter() - start


def _all_entries(library: Library) -> list:
    out, after = [], 0
    while True:
        page = library.page(after=after, limit=500)
        out += page.entries
        if page.next_after is None:
            return out
        after = page.next_after


# --------------------------------------------------------------------------- HTTP


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def family_cpu_s(pid: int) -> float:
    """CPU seconds of a process and of its children alive now (a PostgreSQL
    server's backends, the service's job and write workers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class Service:
    def __init__(
        self, library: Path, model: Path, log: Path, settings: Mapping[str, str] | None = None
    ) -> None:
        """Start ``python -m app`` on ``library``; ``settings``: more XRDID_* variables."""
        self.port = _free_port()
        env = {
            **os.environ,
            "XRDID_LIBRARY_PATH": str(library),
            "XRDID_MODEL_PATH": str(model),
            "XRDID_DEFAULT_LIBRARY_PATH": str(library.with_name("none.sqlite")),
            "XRDID_HOST": "127.0.0.1",
            "XRDID_PORT": str(self.port),
            "XRDID_LOG_LEVEL": "warning",
            **(settings or {}),
        }
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited; see {log}")
            try:
                if httpx.get(self.url + "/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"the service did not get ready; see {log}")

    def cpu_seconds(self) -> float:
        """CPU seconds of the service and of its worker processes so far."""
        return family_cpu_s(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self._log.close()


@dataclass
class LatencyResult:
    p50_ms: float
    p95_ms: float
    mean_ms: float
    stages_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class ThroughputResult:
    clients: int
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p95_ms: float


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _post(
    client: httpx.Client, scan: tuple[str, bytes], form: dict[str, str]
) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    response = client.post("/identify", files={"file": scan}, data=form)
    elapsed = (time.perf_counter() - start) * 1000.0
    response.raise_for_status()
    return elapsed, response.json()["timings_ms"]


def sequential(
    url: str, scans: Sequence[tuple[str, bytes]], n: int, form: dict[str, str]
) -> LatencyResult:
    with httpx.Client(base_url=url, timeout=60) as client:
        for scan in scans[:5]:  # warm-up: connection, caches, lazy imports
            _post(client, scan, form)
        times, stages = [], []
        for i in range(n):
            elapsed, timing = _post(client, scans[i % len(scans)], form)
            times.append(elapsed)
            stages.append(timing)
    keys = ("read_ms", "preprocess_ms", "embed_ms", "search_ms", "phases_ms", "total_ms")
    return LatencyResult(
        p50_ms=_percentile(times, 50),
        p95_ms=_percentile(times, 95),
        mean_ms=statistics.fmean(times),
        stages_ms={k: statistics.median(s[k] for s in stages) for k in keys},
    )


def concurrent(
    url: str, scans: Sequence[tuple[str, bytes]], clients: int, per_client: int
) -> ThroughputResult:
    times: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with httpx.Client(base_url=url, timeout=120) as client:
                _post(client, scans[0], {})
                for i in range(per_client):
                    elapsed, _ = _post(client, scans[i % len(scans)], {})
                    with lock:
                        times.append(elapsed)
        except BaseException as exc:  # pragma: no cover - reported
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    total = clients * (per_client + 1)
    return ThroughputResult(
        clients=clients,
        requests=len(times),
        seconds=seconds,
        requests_per_s=total / seconds,
        p50_ms=_percentile(times, 50),
        p95_ms=_percentile(times, 95),
    )


@dataclass
class SizeResult:
    size: int
    build_s: float
    sequential: LatencyResult  # with the phase analysis (the default)
    flat: LatencyResult  # phases=false
    filtered: LatencyResult  # elements_all=O
    throughput: list[ThroughputResult]


@dataclass
class NaiveResult:
    beads_setup_s: float
    beads_per_iteration_s: float
    beads_iterations_timed: int
    correlation_s: dict[int, float]

    @property
    def beads_s(self) -> float:
        """Dense BEADS with pybeads' usual iteration count."""
        return self.beads_setup_s + NAIVE_NIT * self.beads_per_iteration_s


# --------------------------------------------------------------------------- naive pipeline


def _ba_filter_dense(d: int, fc: float, n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """pybeads' BAfilt: banded high-pass filter matrices A, B, built dense."""
    b1 = np.array([1.0, -1.0])
    for _ in range(1, d):
        b1 = np.convolve(b1, [-1.0, 2.0, -1.0])
    b = np.convolve(b1, [-1.0, 1.0])
    omc = 2.0 * np.pi * fc
    t = ((1.0 - np.cos(omc)) / (1.0 + np.cos(omc))) ** d
    a = np.array([1.0])
    for _ in range(d):
        a = np.convolve(a, [1.0, 2.0, 1.0])
    a = b + t * a
    offsets = range(-d, d + 1)
    big_a, big_b = np.zeros((n, n)), np.zeros((n, n))
    for k, offset in enumerate(offsets):
        big_a += np.diag(np.full(n - abs(offset), a[k]), offset)
        big_b += np.diag(np.full(n - abs(offset), b[k]), offset)
    return big_a, big_b


def dense_beads(
    y: NDArray[np.float64], iterations: int, params: dict[str, float] = NAIVE_BEADS
) -> tuple[NDArray[np.float64], float, float]:
    """BEADS as pybeads computes it, with dense matrices.

    Returns (estimated peaks x, setup seconds, seconds per iteration).
    """
    eps0, eps1 = 1e-6, 1e-6
    d, fc, r = int(params["d"]), params["fc"], params["r"]
    lam0, lam1, lam2 = params["lam0"], params["lam1"], params["lam2"]
    n = y.size
    start = time.perf_counter()
    big_a, big_b = _ba_filter_dense(d, fc, n)
    d1 = np.zeros((n - 1, n))
    d1[np.arange(n - 1), np.arange(n - 1)] = -1.0
    d1[np.arange(n - 1), np.arange(1, n)] = 1.0
    d2 = np.zeros((n - 2, n))
    d2[np.arange(n - 2), np.arange(n - 2)] = 1.0
    d2[np.arange(n - 2), np.arange(1, n - 1)] = -2.0
    d2[np.arange(n - 2), np.arange(2, n)] = 1.0
    d1[-1, -1] = d2[-1, -1] = 1.0
    big_d = np.vstack([d1, d2])  # (2N-3, N)
    btb = big_b.T @ big_b
    w = np.concatenate([np.full(n - 1, lam1), np.full(n - 2, lam2)])
    b = np.full(n, (1.0 - r) / 2.0)
    rhs = btb @ np.linalg.solve(big_a, y) - lam0 * big_a.T @ b
    x = y.copy()
    setup = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(iterations):
        diff = big_d @ x
        weights = w / (np.abs(diff) + eps1)  # L1_v2 penalty
        gamma = np.where(
            np.abs(x) > eps0, (1.0 + r) / 4.0 / np.maximum(np.abs(x), eps0), (1.0 + r) / 4.0 / eps0
        )
        # M = 2 λ0 Γ + Dᵀ Λ D (diagonals applied by broadcasting: a (2N−3)² dense Λ
        # would need 650 MB at N = 4,500)
        m = big_d.T @ (weights[:, None] * big_d)
        m[np.diag_indices(n)] += 2.0 * lam0 * gamma
        x = big_a @ np.linalg.solve(btb + big_a.T @ m @ big_a, rhs)
    per_iteration = (time.perf_counter() - start) / max(iterations, 1)
    return x, setup, per_iteration


def correlation_seconds(query: NDArray[np.float64], n_references: int, seed: int = 1) -> float:
    """Pearson correlation of one profile against ``n_references`` profiles on the grid."""
    rng = np.random.default_rng(seed)
    block = rng.random((min(PROFILE_BLOCK, n_references), MODEL_GRID.n_points), dtype=np.float32)
    block -= block.mean(axis=1, keepdims=True)
    block /= np.linalg.norm(block, axis=1, keepdims=True)
    q = (query - query.mean()).astype(np.float32)
    q /= np.linalg.norm(q)
    start = time.perf_counter()
    done = 0
    best = np.empty(0)
    while done < n_references:
        take = min(block.shape[0], n_references - done)
        scores = block[:take] @ q
        best = np.concatenate([best, np.partition(scores, -5)[-5:]])
        done += take
    np.sort(best)[-5:]
    return time.perf_counter() - start


# --------------------------------------------------------------------------- main


def _model(path: Path | None, tmp: Path) -> Path:
    if path is not None:
        return path
    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL
    import torch

    from xrdid.embedder import save_checkpoint
    from xrdid.model import RegNet1D, RegNetConfig

    torch.manual_seed(0)
    checkpoint = tmp / "untrained.pt"
    save_checkpoint(checkpoint, RegNet1D(RegNetConfig()), {"note": "untrained, timing only"})
    print(f"(no {DEFAULT_MODEL}: timing an untrained model of the same architecture)")
    return checkpoint


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.service", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--requests", type=int, default=100, help="sequential requests per size")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--per-client", type=int, default=15, help="requests per concurrent client")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument(
        "--naive-iterations", type=int, default=1, help="dense BEADS iterations timed"
    )
    parser.add_argument(
        "--naive-full", action="store_true", help=f"time all {NAIVE_NIT} iterations"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    from xrdid.embedder import Embedder

    with tempfile.TemporaryDirectory(prefix="xrdid-bench-") as tmp_name:
        tmp = Path(tmp_name)
        model = _model(args.model, tmp)
        embedder = Embedder.load(model, device="cpu")
        x, counts, _ = query_scan()
        scans = real_scans()
        print(f"queries: {len(scans)} real scans in turn; model {embedder.version}")
        sizes: list[SizeResult] = []
        for size in args.sizes:
            library = tmp / f"library-{size}.sqlite"
            built = build_library(library, size, embedder)
            print(f"library of {size:,} references built in {built:.1f} s; serving it …")
            service = Service(library, model, tmp / f"service-{size}.log")
            try:
                plain = sequential(service.url, scans, args.requests, {})
                flat = sequential(service.url, scans, args.requests, {"phases": "false"})
                filtered = sequential(
                    service.url, scans, max(args.requests // 2, 10), {"elements_all": "O"}
                )
                throughput = [
                    concurrent(service.url, scans, c, args.per_client) for c in args.concurrency
                ]
            finally:
                service.stop()
            sizes.append(SizeResult(size, built, plain, flat, filtered, throughput))
        print("naive pipeline (dense BEADS + full-profile correlation) …")
        iterations = NAIVE_NIT if args.naive_full else args.naive_iterations
        baseline_removed, setup_s, per_iteration_s = dense_beads(counts / counts.max(), iterations)
        grid_profile = np.interp(MODEL_GRID.two_theta_deg, x, baseline_removed)
        naive = NaiveResult(
            beads_setup_s=setup_s,
            beads_per_iteration_s=per_iteration_s,
            beads_iterations_timed=iterations,
            correlation_s={size: correlation_seconds(grid_profile, size) for size in args.sizes},
        )
    print(table(sizes, naive))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
            "model_version": embedder.version,
            "sizes": [asdict(r) for r in sizes],
            "naive": asdict(naive) | {"beads_s": naive.beads_s},
        }
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


def table(sizes: Sequence[SizeResult], naive: NaiveResult) -> str:
    """The results side by side, one column per library size."""
    width = 24
    lines = [f"{'':46}" + "".join(f"{f'{r.size:,} references':>{width}}" for r in sizes)]

    def row(label: str, cells: Sequence[str]) -> None:
        lines.append(f"{label:46}" + "".join(f"{c:>{width}}" for c in cells))

    row(
        "/identify over HTTP: p50 / p95 (ms)",
        [f"{r.sequential.p50_ms:.1f} / {r.sequential.p95_ms:.1f}" for r in sizes],
    )
    row(
        "/identify, phases=false: p50 / p95 (ms)",
        [f"{r.flat.p50_ms:.1f} / {r.flat.p95_ms:.1f}" for r in sizes],
    )
    for stage in ("read", "preprocess", "embed", "search", "phases", "total"):
        row(
            f"  server: {stage} (median ms)",
            [f"{r.sequential.stages_ms[stage + '_ms']:.2f}" for r in sizes],
        )
    row(
        "  HTTP + multipart + queueing (ms)",
        [f"{r.sequential.p50_ms - r.sequential.stages_ms['total_ms']:.1f}" for r in sizes],
    )
    row(
        "/identify, elements_all=O: p50 / p95 (ms)",
        [f"{r.filtered.p50_ms:.1f} / {r.filtered.p95_ms:.1f}" for r in sizes],
    )
    for i, clients in enumerate(sizes[0].throughput if sizes else []):
        row(
            f"{clients.clients} concurrent client(s): req/s, p50/p95 ms",
            [
                f"{r.throughput[i].requests_per_s:.1f}, {r.throughput[i].p50_ms:.0f}/{r.throughput[i].p95_ms:.0f}"
                for r in sizes
            ],
        )
    row(
        f"naive: dense BEADS, {NAIVE_NIT} iterations (ms)",
        [f"{1000 * naive.beads_s:,.0f}" for _ in sizes],
    )
    row(
        "naive: full-profile correlation (ms)",
        [f"{1000 * naive.correlation_s[r.size]:.1f}" for r in sizes],
    )
    row(
        "naive: total per query (ms)",
        [f"{1000 * (naive.beads_s + naive.correlation_s[r.size]):,.0f}" for r in sizes],
    )
    if naive.beads_iterations_timed != NAIVE_NIT:
        lines.append(
            f"(dense BEADS: setup {1000 * naive.beads_setup_s:,.0f} ms + {NAIVE_NIT} × "
            f"{1000 * naive.beads_per_iteration_s:,.0f} ms per iteration, timed over "
            f"{naive.beads_iterations_timed}; --naive-full times all)"
        )
    if sizes:
        for label, p50, target in (
            ("with phases", sizes[0].sequential.p50_ms, TARGET_PHASES_P50_MS),
            ("phases=false", sizes[0].flat.p50_ms, TARGET_P50_MS),
        ):
            verdict = "met" if p50 <= target else "missed"
            lines.append(
                f"target p50 {label} ≤ {target:.0f} ms at {sizes[0].size:,} references: "
                f"{verdict} ({p50:.1f} ms)"
            )
    lines.append(
        f"(load average during the run: {', '.join(f'{v:.1f}' for v in os.getloadavg())}; {os.cpu_count()} CPUs)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
