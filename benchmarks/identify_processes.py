"""Concurrent POST /identify on threads and in processes (XRDID_IDENTIFY_PROCESSES),
side by side in one run.

    python -m benchmarks.identify_processes [--size 10000] [--clients 1 2 4]
                                            [--per-client 20] [--json OUT]

A library of ``--size`` references is built as ``benchmarks.service`` builds
it (the shipped library's real references, then more under random unit
embeddings). The service is started as a real uvicorn process twice on it,
with the default settings (phase analysis on): once computing on its threads,
once in processes (one per core). Each client (a thread with one connection)
sends real scans in turn (the dara precursor mixtures, the XRD-AutoAnalyzer
scans, powdR's quartz); the table gives requests per second, latency, the
CPU the service family used and its resident memory (the service and its
children, RSS summed: shared pages are counted once per process).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

from benchmarks.service import (
    Service,
    ThroughputResult,
    _model,
    build_library,
    concurrent,
    real_scans,
)


@dataclass
class Row:
    way: str
    throughput: list[ThroughputResult]
    cpu_s_per_request: list[float]
    rss_gb: float


def family_rss_gb(pid: int) -> float:
    parent = psutil.Process(pid)
    processes = [parent, *parent.children(recursive=True)]
    return sum(p.memory_info().rss for p in processes) / 1e9


def wait_for_loading(url: str, processes: bool, timeout_s: float = 120.0) -> None:
    """Until the Raman model has loaded and, with processes, they have taken
    /identify over (loading would take CPU from the first measurement)."""
    deadline = time.monotonic() + timeout_s
    while (
        httpx.get(url + "/ready", timeout=5).json()["raman_status"] == "loading"
        or processes
        and "xrdid_identify_processes 0.0" in httpx.get(url + "/metrics", timeout=5).text
    ):
        if time.monotonic() > deadline:
            raise TimeoutError("the service did not finish loading")
        time.sleep(0.2)


def measure(
    way: str,
    library: Path,
    model: Path,
    log: Path,
    settings: dict[str, str],
    scans: Sequence[tuple[str, bytes]],
    clients: Sequence[int],
    per_client: int,
) -> Row:
    service = Service(library, model, log, settings)
    try:
        wait_for_loading(service.url, settings["XRDID_IDENTIFY_PROCESSES"] == "true")
        concurrent(service.url, scans, len(clients) and max(clients), 2)  # every process warm
        throughput, cpu = [], []
        for n in clients:
            before = service.cpu_seconds()
            result = concurrent(service.url, scans, n, per_client)
            cpu.append((service.cpu_seconds() - before) / (n * (per_client + 1)))
            throughput.append(result)
            print(
                f"  {way}: {n} client(s) {result.requests_per_s:.2f} req/s, "
                f"p50 {result.p50_ms:.0f} ms"
            )
        rss = family_rss_gb(service.process.pid)
    finally:
        service.stop()
    return Row(way, throughput, cpu, rss)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.identify_processes", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--size", type=int, default=10_000, help="references in the library")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--per-client", type=int, default=20, help="requests per client")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    from xrdid.embedder import Embedder

    with tempfile.TemporaryDirectory(prefix="xrdid-bench-") as tmp_name:
        tmp = Path(tmp_name)
        model = _model(args.model, tmp)
        scans = real_scans()
        library = tmp / "library.sqlite"
        built = build_library(library, args.size, Embedder.load(model, device="cpu"))
        print(f"library of {args.size:,} references built in {built:.1f} s")
        rows = [
            measure(
                way,
                library,
                model,
                tmp / f"{way}.log",
                {"XRDID_IDENTIFY_PROCESSES": flag, "XRDID_JOB_PROCESSES": "false"},
                scans,
                args.clients,
                args.per_client,
            )
            for way, flag in (("threads", "false"), ("processes", "true"))
        ]
    print(table(rows, args.size))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
            "size": args.size,
            "per_client": args.per_client,
            "rows": [asdict(r) for r in rows],
        }
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


def table(rows: Sequence[Row], size: int) -> str:
    lines = [
        f"POST /identify at {size:,} references, phase analysis on; {os.cpu_count()} CPUs",
        f"{'way':10} {'clients':>7} {'req/s':>7} {'× 1 client':>10} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'CPU ms/req':>10} {'RSS GB':>7}",
    ]
    for row in rows:
        single = row.throughput[0].requests_per_s
        for result, cpu in zip(row.throughput, row.cpu_s_per_request, strict=True):
            lines.append(
                f"{row.way:10} {result.clients:7d} {result.requests_per_s:7.2f} "
                f"{result.requests_per_s / single:10.2f} {result.p50_ms:7.0f} "
                f"{result.p95_ms:7.0f} {1000 * cpu:10.0f} {row.rss_gb:7.2f}"
            )
    lines.append(f"(load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
