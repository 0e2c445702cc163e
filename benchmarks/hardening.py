"""Hardening benchmark: the targets of issue 17, measured on a real uvicorn
process (``python -m app``) on the small test library.

    python -m benchmarks.hardening [--seconds 30] [--flood 20000] [--json OUT]

Each figure is printed beside its baseline from the same run:

- reads under writes: ``/identify`` p50/p95 idle, then while two heavy
  structure uploads run (target: p95 ≤ 2× idle);
- overload: single-client p50, then 20 concurrent clients for ``--seconds``
  (target: admitted p95 ≤ 4× single-client p50; the rest refused at once
  with ``Retry-After``; refused clients wait ``Retry-After`` before trying
  again, as well-behaved clients do);
- bounded metrics: ``/metrics`` size and server RSS before and after
  ``--flood`` requests with made-up methods and paths (target: < 100 kB);
- bounded uploads: time and status of the heavy structures of issue 17;
- slow senders: how long a trickled request head and body stay open.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tests.e2e.support import (
    Server,
    build_library,
    model_path,
    prepare_small_library,
    rockjock_column_xy,
)
from xrdid.data_paths import shared_data_dir

WRITE_KEY = "bench-write-key-0123456789"
HEAVY_CIF = "cod/4300013.cif"


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def start_server(tmp: Path, library: Path, model: Path, **env: str) -> Server:
    settings = {
        "XRDID_MODEL_PATH": str(model),
        "XRDID_LIBRARY_PATH": str(library),
        "XRDID_DEFAULT_LIBRARY_PATH": str(tmp / "none.sqlite"),
        "XRDID_WRITE_API_KEYS": WRITE_KEY,
        "XRDID_DEVICE": "cpu",
        "XRDID_LOG_LEVEL": "warning",
        "XRDID_MAX_UPLOAD_BYTES": str(2 * 1024 * 1024),
        **env,
    }
    server = Server(settings, tmp / "server.log").start()
    with server.client() as client:  # the write worker does its imports
        client.post(
            "/references",
            files={
                "file": ("Cu.cif", (shared_data_dir() / "structures/elements/Cu.cif").read_bytes())
            },
            data={"source": "warm-up"},
            headers={"X-API-Key": WRITE_KEY},
        )
    return server


def identify_latencies(server: Server, query: bytes, n: int) -> list[float]:
    out = []
    with server.client() as client:
        for _ in range(n):
            started = time.perf_counter()
            response = client.post("/identify", files={"file": ("q.xy", query)})
            out.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    return out


def reads_under_writes(server: Server, query: bytes) -> dict[str, float]:
    identify_latencies(server, query, 3)
    idle = identify_latencies(server, query, 30)
    heavy = (shared_data_dir() / "structures" / HEAVY_CIF).read_bytes()
    stop = threading.Event()
    write_statuses: list[int] = []

    def writer(i: int) -> None:
        with server.client() as client:
            n = 0
            while not stop.is_set():
                response = client.post(
                    "/references",
                    files={"file": ("h.cif", heavy)},
                    data={"source": f"bench-{i}", "source_id": f"{i}-{n}"},
                    headers={"X-API-Key": WRITE_KEY},
                )
                write_statuses.append(response.status_code)
                n += 1

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    busy = identify_latencies(server, query, 30)
    stop.set()
    for thread in threads:
        thread.join()
    return {
        "idle_p50_ms": 1000 * statistics.median(idle),
        "idle_p95_ms": 1000 * percentile(idle, 95),
        "busy_p50_ms": 1000 * statistics.median(busy),
        "busy_p95_ms": 1000 * percentile(busy, 95),
        "p95_ratio": percentile(busy, 95) / percentile(idle, 95),
        "writes_done": float(len(write_statuses)),
    }


def overload(server: Server, query: bytes, seconds: float, clients: int = 20) -> dict[str, float]:
    single = identify_latencies(server, query, 20)
    admitted: list[float] = []
    refused: list[float] = []
    other: list[int] = []
    retry_after_missing = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client_loop() -> None:
        nonlocal retry_after_missing
        with server.client() as client:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = client.post("/identify", files={"file": ("q.xy", query)})
                took = time.perf_counter() - started
                with lock:
                    if response.status_code == 200:
                        admitted.append(took)
                    elif response.status_code == 503:
                        refused.append(took)
                        retry_after_missing += "retry-after" not in response.headers
                    else:
                        other.append(response.status_code)
                if response.status_code == 503:
                    time.sleep(float(response.headers.get("retry-after", "1")))

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    single_p50 = statistics.median(single)
    return {
        "single_p50_ms": 1000 * single_p50,
        "admitted": float(len(admitted)),
        "admitted_p50_ms": 1000 * statistics.median(admitted),
        "admitted_p95_ms": 1000 * percentile(admitted, 95),
        "admitted_p95_over_single_p50": percentile(admitted, 95) / single_p50,
        "refused": float(len(refused)),
        "refused_p95_ms": 1000 * percentile(refused, 95),
        "refused_without_retry_after": float(retry_after_missing),
        "other_statuses": float(len(other)),
    }


def rss_kb(server: Server) -> int:
    assert server.process is not None
    text = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1))  # type: ignore[union-attr]


def flood(server: Server, requests: int, seed: int) -> int:
    """Pipelined requests with made-up methods and paths; returns the 5xx count."""
    rng = random.Random(seed)
    errors = 0
    for start in range(0, requests, 250):
        lines = []
        for i in range(start, min(start + 250, requests)):
            method = rng.choice(["GET", "POST", f"M{i}", f"X{rng.randrange(10**9)}"])
            path = rng.choice(["/health", f"/p/{i}", f"/references/{i}/x", "/identify"])
            lines.append(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall("".join(lines).encode())
            received = b""
            while received.count(b"HTTP/1.1 ") < len(lines):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                received += chunk
        errors += len(re.findall(rb"HTTP/1.1 5\d\d", received))
    return errors


def metrics_flood(server: Server, requests: int) -> dict[str, float]:
    with server.client() as client:
        before_size = len(client.get("/metrics").content)
        before_rss = rss_kb(server)
        started = time.perf_counter()
        errors = flood(server, requests, seed=1)
        seconds = time.perf_counter() - started
        after_rss = rss_kb(server)
        metrics = client.get("/metrics")
        started = time.perf_counter()
        client.get("/metrics")
        scrape_ms = 1000 * (time.perf_counter() - started)
    return {
        "requests": float(requests),
        "seconds": seconds,
        "5xx": float(errors),
        "metrics_bytes_before": float(before_size),
        "metrics_bytes_after": float(len(metrics.content)),
        "metrics_scrape_ms": scrape_ms,
        "rss_kb_before": float(before_rss),
        "rss_kb_after": float(after_rss),
    }


def heavy_uploads(server: Server) -> list[dict[str, Any]]:
    def cubic_cif(a: float, element: str, n: int) -> bytes:
        side = int(np.ceil(n ** (1 / 3)))
        rows = "".join(
            f"{element}{i} {(i % side) / side:.5f} {(i // side % side) / side:.5f} "
            f"{(i // side // side) / side:.5f}\n"
            for i in range(n)
        )
        return (
            f"data_x\n_cell_length_a {a}\n_cell_length_b {a}\n_cell_length_c {a}\n"
            "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
            "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n"
            f"_atom_site_fract_z\n{rows}"
        ).encode()

    cases = {
        "60 U atoms, 30 Å cell": cubic_cif(30, "U", 60),
        "1,999 C atoms, 60 Å cell": cubic_cif(60, "C", 1999),
        "50,000 C atoms, 200 Å cell": cubic_cif(200, "C", 50_000),
        "3,000 data blocks": "".join(
            f"data_b{i}\n_cell_length_a 5\n_cell_length_b 5\n_cell_length_c 5\n"
            "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
            for i in range(3000)
        ).encode(),
        f"{HEAVY_CIF} (real, 1,220 atoms)": (
            shared_data_dir() / "structures" / HEAVY_CIF
        ).read_bytes(),
    }
    out = []
    with server.client(timeout=120) as client:
        for name, data in cases.items():
            started = time.perf_counter()
            response = client.post(
                "/references",
                files={"file": ("s.cif", data)},
                data={"source": "bench-heavy", "source_id": name},
                headers={"X-API-Key": WRITE_KEY},
            )
            out.append(
                {
                    "case": name,
                    "status": response.status_code,
                    "seconds": time.perf_counter() - started,
                }
            )
    return out


def slow_senders(server: Server) -> dict[str, float]:
    """Seconds a connection trickling 7 bytes a second stays open (the issue
    used 7 bytes every 10 s; faster trickles only make the test shorter)."""

    def open_for(first: bytes, trickle: bytes) -> float:
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
            sock.sendall(first)
            started = time.perf_counter()
            sock.settimeout(1.0)
            position = 0
            while time.perf_counter() - started < 300:
                try:
                    sock.sendall(trickle[position : position + 7])
                    position += 7
                    sock.recv(4096)  # an answer (408) or the close ends the wait
                    break
                except TimeoutError:
                    continue
                except OSError:
                    break
            return time.perf_counter() - started

    head = open_for(b"GET /health HTTP/1.1\r\n", b"X-A: " + b"a" * 10_000)
    body = open_for(
        b"POST /identify HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=z\r\n"
        b"Content-Length: 100000\r\n\r\n",
        b"x" * 100_000,
    )
    return {"head_open_s": head, "body_open_s": body}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="overload duration")
    parser.add_argument("--flood", type=int, default=20_000, help="made-up requests")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        model = model_path(tmp)
        library = tmp / "library.sqlite"
        build_library(library, model, prepare_small_library())
        query = rockjock_column_xy("QUARTZ")
        server = start_server(tmp, library, model)
        try:
            results = {
                "reads_under_writes": reads_under_writes(server, query),
                "overload": overload(server, query, args.seconds),
                "metrics_flood": metrics_flood(server, args.flood),
                "heavy_uploads": heavy_uploads(server),
                "slow_senders": slow_senders(server),
            }
        finally:
            server.stop()
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def table(results: dict[str, Any]) -> str:
    r, o, m = results["reads_under_writes"], results["overload"], results["metrics_flood"]
    s = results["slow_senders"]
    lines = [
        "| measure | baseline | under test | target |",
        "|---|---|---|---|",
        f"| /identify p95, two heavy writes running | idle {r['idle_p95_ms']:.0f} ms | "
        f"{r['busy_p95_ms']:.0f} ms ({r['p95_ratio']:.2f}×; {r['writes_done']:.0f} writes) | ≤ 2× |",
        f"| 20 clients: admitted p95 | single-client p50 {o['single_p50_ms']:.0f} ms | "
        f"{o['admitted_p95_ms']:.0f} ms ({o['admitted_p95_over_single_p50']:.2f}×, "
        f"{o['admitted']:.0f} admitted) | ≤ 4× |",
        f"| 20 clients: refused | | {o['refused']:.0f}, p95 {o['refused_p95_ms']:.0f} ms, "
        f"{o['refused_without_retry_after']:.0f} without Retry-After, "
        f"{o['other_statuses']:.0f} other statuses | at once, with Retry-After |",
        f"| /metrics after {m['requests']:.0f} made-up requests | {m['metrics_bytes_before']:.0f} B | "
        f"{m['metrics_bytes_after']:.0f} B, scrape {m['metrics_scrape_ms']:.1f} ms, "
        f"{m['5xx']:.0f} 5xx | < 100 kB |",
        f"| server RSS over the flood | {m['rss_kb_before'] / 1024:.1f} MiB | "
        f"{m['rss_kb_after'] / 1024:.1f} MiB | not growing |",
        f"| trickled request head open for | | {s['head_open_s']:.1f} s | XRDID_HEADER_TIMEOUT_S (10 s) |",
        f"| trickled body open for | | {s['body_open_s']:.1f} s | XRDID_BODY_TIMEOUT_S (60 s) |",
    ]
    for upload in results["heavy_uploads"]:
        lines.append(
            f"| upload: {upload['case']} | | {upload['status']} in {upload['seconds']:.1f} s | "
            "≤ 10 s |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
