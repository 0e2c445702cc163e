"""Schema-driven fuzzing of every endpoint with schemathesis, against a real
uvicorn process (``python -m app``) on the small test library.

    python -m tests.e2e.fuzz [--examples 400] [--seed 1]      # make fuzz

Runs schemathesis' examples, coverage and fuzzing phases twice, without and
with a write key, with every check but ``positive_data_acceptance`` (a file
that is valid by the schema is any non-empty file, but only a readable
pattern or structure is accepted; no schema can say which bytes those are).
The requests and their statuses are counted by the server itself
(``/metrics``), so the count includes the extra requests the checks send.
Exits 1 on any 5xx or any failed check.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.e2e.support import Server, build_library, model_path, prepare_small_library

WRITE_KEY = "fuzz-write-key-0123456789"
# Latency is the benchmarks' business: "all" includes a 10 s response-time
# check, which only measures how loaded the machine running the fuzz is; it
# is set to the request timeout instead.
REQUEST_TIMEOUT_S = "60"
CHECKS = [
    "--checks",
    "all",
    "--exclude-checks",
    "positive_data_acceptance",
    "--max-response-time",
    REQUEST_TIMEOUT_S,
]
_REQUESTS = re.compile(
    r'^xrdid_http_requests_total\{method="([^"]*)",route="([^"]*)",status="(\d+)"\} (\S+)$',
    re.MULTILINE,
)


@dataclass(frozen=True)
class FuzzRun:
    key: bool
    requests: int
    server_errors: int
    schemathesis_exit: int
    summary: str


def request_counts(server: Server) -> tuple[int, int]:
    """(requests, 5xx) the server has counted, /metrics scrapes left out."""
    text = httpx.get(server.url + "/metrics", timeout=30).text
    total = errors = 0
    for _, route, status, value in _REQUESTS.findall(text):
        if route == "/metrics":
            continue
        total += int(float(value))
        errors += int(float(value)) if status.startswith("5") else 0
    return total, errors


def fuzz(server: Server, examples: int, seed: int, key: bool, report: Path) -> FuzzRun:
    before, errors_before = request_counts(server)
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        server.url + "/openapi.json",
        *CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(examples),
        "--seed",
        str(seed),
        "--request-timeout",
        REQUEST_TIMEOUT_S,
        "--workers",
        "1",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
    ]
    if key:
        command += ["--header", f"X-API-Key: {WRITE_KEY}"]
    done = subprocess.run(command, capture_output=True, text=True)
    after, errors_after = request_counts(server)
    summary = (
        done.stdout[done.stdout.rfind("SUMMARY") :] if "SUMMARY" in done.stdout else done.stdout
    )
    return FuzzRun(key, after - before, errors_after - errors_before, done.returncode, summary)


def server_env(tmp: Path, model: Path, library: Path) -> dict[str, str]:
    return {
        "XRDID_MODEL_PATH": str(model),
        "XRDID_LIBRARY_PATH": str(library),
        "XRDID_DEFAULT_LIBRARY_PATH": str(tmp / "none.sqlite"),
        "XRDID_WRITE_API_KEYS": WRITE_KEY,
        "XRDID_DEVICE": "cpu",
        "XRDID_LOG_LEVEL": "warning",
        "XRDID_MAX_UPLOAD_BYTES": str(2 * 1024 * 1024),
    }


def _error_lines(log: Path, context: int = 30) -> list[str]:
    """The lines of ``log`` from each ERROR or traceback on (a few lines each)."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
    starts = [i for i, line in enumerate(lines) if "ERROR" in line or "Traceback" in line]
    kept: list[str] = []
    for start in starts[:5]:
        kept += [*lines[start : start + context], "..."]
    return kept


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=400, help="per operation and phase")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        model = model_path(tmp)
        library = tmp / "library.sqlite"
        build_library(library, model, prepare_small_library())
        server = Server(server_env(tmp, model, library), tmp / "server.log").start()
        try:
            runs = [
                fuzz(server, args.examples, args.seed, key, tmp / f"junit-{key}.xml")
                for key in (False, True)
            ]
        finally:
            server.stop()
        # A 5xx's traceback is in the server's log, gone with the folder: keep its errors.
        errors_logged = _error_lines(tmp / "server.log")
    for run in runs:
        print(
            f"--- {'with' if run.key else 'without'} a key: {run.requests} requests, "
            f"{run.server_errors} 5xx, schemathesis exit {run.schemathesis_exit}"
        )
        print(run.summary.strip())
    total = sum(run.requests for run in runs)
    errors = sum(run.server_errors for run in runs)
    print(f"=== {total} requests, {errors} 5xx")
    if errors:
        print("--- the server's log around its errors:", *errors_logged, sep="\n")
    return 0 if errors == 0 and all(run.schemathesis_exit == 0 for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
