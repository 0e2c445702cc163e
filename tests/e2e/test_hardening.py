"""The hostile-but-fair review of issue 17, kept as tests against a real
uvicorn process (``python -m app``) on a private small library: bounded work
per upload, bounded metrics, slow senders, load shedding, integer bounds,
Allow headers, offline docs, security headers, shutdown and disconnects.

Times are budgets with room for a shared 2-core machine; the targets
themselves are measured by ``benchmarks/hardening.py``.
"""

from __future__ import annotations

import random
import re
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.e2e.conftest import WRITE_KEY
from tests.e2e.support import (
    Server,
    copy_library,
    rendered_query,
    rockjock_column_xy,
    running,
)
from xrdid.data_paths import shared_data_dir
from xrdid.references import prepare_structure

pytestmark = pytest.mark.slow

AUTH = {"X-API-Key": WRITE_KEY}
PROBLEM = "application/problem+json"
HEADER_TIMEOUT_S = 2.0
BODY_TIMEOUT_S = 3.0
# A real structure inside the simulation limits that takes seconds (73,000
# reflections × 1,220 atoms: ~4.5 s on 2 idle cores).
HEAVY_CIF = "cod/4300013.cif"
MEDIUM_CIF = "cod/1004001.cif"  # ~2.8 s


def hardening_env(tmp: Path, model: Path, library: Path) -> dict[str, str]:
    return {
        "XRDID_MODEL_PATH": str(model),
        "XRDID_LIBRARY_PATH": str(copy_library(library, tmp / "library.sqlite")),
        "XRDID_DEFAULT_LIBRARY_PATH": str(tmp / "none.sqlite"),
        "XRDID_WRITE_API_KEYS": WRITE_KEY,
        "XRDID_DEVICE": "cpu",
        "XRDID_LOG_LEVEL": "warning",
        "XRDID_MAX_UPLOAD_BYTES": str(2 * 1024 * 1024),
        "XRDID_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "XRDID_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "XRDID_KEEP_ALIVE_TIMEOUT_S": "2",
        "XRDID_COMPUTE_THREADS": "2",
        "XRDID_IDENTIFY_QUEUE": "2",
        "XRDID_SHUTDOWN_TIMEOUT_S": "2",
    }


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, e2e_model: Path, e2e_library: Path
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("hardening")
    with running(hardening_env(tmp, e2e_model, e2e_library), tmp / "server.log") as process:
        warm_up_writes(process)
        yield process


def warm_up_writes(server: Server) -> None:
    """One upload, so the write worker has done its imports (seconds) before the timing."""
    with server.client() as client:
        created = upload(client, "warm.cif", HALITE.encode(), source="warm-up")
        assert created.status_code == 201, created.text
        client.delete(f"/references/{created.json()['id']}", headers=AUTH)


def structure(relative: str) -> bytes:
    return (shared_data_dir() / "structures" / relative).read_bytes()


def upload(client: httpx.Client, name: str, data: bytes, **form: str) -> httpx.Response:
    return client.post("/references", files={"file": (name, data)}, data=form, headers=AUTH)


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def cif(cell: str, rows: list[str], symmetry: str = "") -> bytes:
    loop = "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
    return f"data_x\n{cell}{symmetry}{loop}{''.join(rows)}".encode()


def cubic(a: float) -> str:
    return (
        f"_cell_length_a {a}\n_cell_length_b {a}\n_cell_length_c {a}\n"
        "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
    )


def grid_rows(element: str, n: int) -> list[str]:
    """``n`` atoms on a grid of the cell (never overlapping)."""
    side = int(np.ceil(n ** (1 / 3)))
    return [
        f"{element}{i} {(i % side) / side:.5f} {(i // side % side) / side:.5f} "
        f"{(i // side // side) / side:.5f}\n"
        for i in range(n)
    ]


HALITE = (
    "data_halite\n" + cubic(5.64) + "_symmetry_space_group_name_H-M 'F m -3 m'\n"
    "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n"
    "_atom_site_fract_z\nNa1 Na 0 0 0\nCl1 Cl 0.5 0.5 0.5\n"
)

# (case, file name, content, status, seconds, text in the detail)
HOSTILE_STRUCTURES: list[tuple[str, str, bytes, int, float, str]] = [
    (
        "negative cell length",
        "neg.cif",
        cif(cubic(5).replace("_cell_length_a 5", "_cell_length_a -5"), ["Na1 0 0 0\n"]),
        422,
        5,
        "must be positive",
    ),
    (
        "NaN cell length",
        "nan.cif",
        cif(cubic(5).replace("_cell_length_c 5", "_cell_length_c NaN"), ["Na1 0 0 0\n"]),
        422,
        5,
        "_cell_length_c",
    ),
    (
        "angles that give no cell",
        "angles.cif",
        cif(
            cubic(5)
            .replace("_cell_angle_alpha 90", "_cell_angle_alpha 170")
            .replace("_cell_angle_beta 90", "_cell_angle_beta 170"),
            ["Na1 0 0 0\n"],
        ),
        422,
        5,
        "cannot meet",
    ),
    ("unknown element", "xx.cif", cif(cubic(5), ["Xx1 0 0 0\n"]), 422, 5, ""),
    (
        "60 U atoms in a 30 Å cell (the 2.3 kB file)",
        "u60.cif",
        cif(cubic(30), grid_rows("U", 60)),
        413,
        5,
        "XRDID_MAX_SIMULATION_REFLECTIONS",
    ),
    (
        "1,999 atoms in a 60 Å cell (the 75 kB file)",
        "big.cif",
        cif(cubic(60), grid_rows("C", 1999)),
        413,
        10,
        "reflections in range",
    ),
    (
        "50,000 atoms",
        "huge.cif",
        cif(cubic(200), grid_rows("C", 50_000)),
        422,
        10,
        "more than the 2000",
    ),
    (
        "3,000 unusable data blocks",
        "blocks.cif",
        "".join(f"data_b{i}\n{cubic(5)}\n" for i in range(3000)).encode(),
        422,
        10,
        "none of the first 20 data blocks",
    ),
    (
        "3,000 data blocks after a usable one",
        "many.cif",
        (HALITE + "".join(f"data_b{i}\n{cubic(5)}\n" for i in range(3000))).encode(),
        201,
        10,
        "",
    ),
    ("empty file", "empty.cif", b"", 422, 5, "empty"),
    ("binary content", "bin.cif", bytes(range(256)) * 40, 422, 5, ""),
]


@pytest.mark.parametrize(
    ("name", "content", "status", "budget_s", "text"),
    [case[1:] for case in HOSTILE_STRUCTURES],
    ids=[case[0] for case in HOSTILE_STRUCTURES],
)
def test_hostile_structures_get_a_clear_answer_within_budget(
    server: Server, name: str, content: bytes, status: int, budget_s: float, text: str
) -> None:
    with server.client() as client:
        response, seconds = timed(lambda: upload(client, name, content, source="hostile"))
        assert response.status_code == status, response.text
        assert seconds < budget_s, f"{seconds:.1f} s"
        if status == 201:
            client.delete(f"/references/{response.json()['id']}", headers=AUTH)
            return
        problem = response.json()
        assert response.headers["content-type"] == PROBLEM
        assert text in problem["detail"], problem["detail"]
        assert not re.search(r"\b[A-Z]\w*(Error|Exception)\b", problem["detail"]), problem
    if status == 413:
        assert problem["limit"] < problem["value"] and problem["setting"].startswith("XRDID_")


HOSTILE_PATTERNS: list[tuple[str, str, bytes, int]] = [
    ("NaN and inf", "nan.xy", b"".join(b"%d nan\n%d inf\n" % (i, i) for i in range(10, 90)), 422),
    ("a million lines", "big.xy", b"10.0 1\n" * 1_000_000, 413),
    ("empty", "e.xy", b"", 422),
    ("binary", "b.bin", bytes(range(256)) * 20, 415),
]


@pytest.mark.parametrize(
    ("name", "content", "status"),
    [case[1:] for case in HOSTILE_PATTERNS],
    ids=[case[0] for case in HOSTILE_PATTERNS],
)
def test_hostile_patterns_are_refused_quickly(
    server: Server, name: str, content: bytes, status: int
) -> None:
    with server.client() as client:
        response, seconds = timed(lambda: client.post("/identify", files={"file": (name, content)}))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM and seconds < 5


# --------------------------------------------------------------------------- writes


def worker_pids(server: Server) -> list[int]:
    assert server.process is not None
    out = subprocess.run(
        ["pgrep", "-P", str(server.process.pid), "-f", "spawn_main"],
        capture_output=True,
        text=True,
    ).stdout
    return [int(pid) for pid in out.split()]


def test_write_workers_run_capped_and_at_low_priority(server: Server) -> None:
    deadline = time.monotonic() + 30
    while not worker_pids(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    (pid,) = worker_pids(server)  # one worker by default
    limits = Path(f"/proc/{pid}/limits").read_text()
    (cap,) = re.findall(r"Max address space\s+(\d+)", limits)
    assert int(cap) == 1024 * 2**20
    assert server.process is not None
    # os.nice is relative: 10 above the server's (which a `nice make test` raises).
    assert niceness(pid) == min(19, niceness(server.process.pid) + 10)


def niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_upload_past_its_time_budget_is_stopped(
    tmp_path: Path, e2e_model: Path, e2e_library: Path
) -> None:
    env = hardening_env(tmp_path, e2e_model, e2e_library) | {"XRDID_WRITE_TIMEOUT_S": "1"}
    with running(env, tmp_path / "server.log") as slow, slow.client() as client:
        warm_up_writes(slow)
        response, seconds = timed(lambda: upload(client, "medium.cif", structure(MEDIUM_CIF)))
        assert response.status_code == 413, response.text
        assert "XRDID_WRITE_TIMEOUT_S" in response.json()["detail"] and seconds < 6
        # The killed worker is replaced; the next upload is served.
        cu = structure("elements/Cu.cif")
        assert upload(client, "Cu.cif", cu).status_code == 201
        listed = client.get("/references", params={"name": "1004001"}).json()
        assert listed["total"] == 0


def test_abandoned_upload_is_stopped_and_never_stored(server: Server) -> None:
    (worker,) = worker_pids(server)
    with server.client(timeout=1.0) as client, pytest.raises(httpx.ReadTimeout):
        upload(client, "heavy.cif", structure(HEAVY_CIF), source="abandoned")
    # The client left after 1 s of a ~5 s upload: its worker is killed (and replaced).
    deadline = time.monotonic() + 3
    while worker in worker_pids(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert worker not in worker_pids(server)
    with server.client() as client:
        cu = structure("elements/Cu.cif")
        assert upload(client, "Cu.cif", cu, source="after").status_code in (201, 409)
        time.sleep(6)  # longer than the heavy upload would have taken
        items = client.get("/references", params={"limit": 500}).json()["items"]
        assert not [item for item in items if item["source"] == "abandoned"]


def test_identify_keeps_its_latency_while_heavy_writes_run(server: Server) -> None:
    query = rockjock_column_xy("QUARTZ")

    def latencies(n: int) -> list[float]:
        with server.client() as client:
            return [
                timed(lambda: client.post("/identify", files={"file": ("q.xy", query)}))[1]
                for _ in range(n)
            ]

    latencies(2)
    idle = statistics.median(latencies(8))
    heavy = structure(HEAVY_CIF)
    writers = [
        threading.Thread(
            target=lambda i=i: upload(
                httpx.Client(base_url=server.url, timeout=60), "h.cif", heavy, source=f"w{i}"
            )
        )
        for i in range(2)
    ]
    for writer in writers:
        writer.start()
    time.sleep(0.5)
    busy = latencies(10)
    for writer in writers:
        writer.join()
    # Generous: the benchmark measures the 2× target; here writes must not stall reads.
    assert float(np.percentile(busy, 95)) < 4 * idle + 0.5, (idle, busy)


def test_sigterm_does_not_wait_for_an_upload(
    tmp_path: Path, e2e_model: Path, e2e_library: Path
) -> None:
    # The heavy structure takes about 2.6 s to simulate on a fast core: the
    # stop (0.5 s into it, then a grace of 1 s) comes well before it is done.
    env = {**hardening_env(tmp_path, e2e_model, e2e_library), "XRDID_SHUTDOWN_TIMEOUT_S": "1"}
    server = Server(env, tmp_path / "server.log").start()
    statuses: list[object] = []

    def heavy_upload() -> None:
        try:
            with server.client() as client:
                statuses.append(
                    upload(client, "h.cif", structure(HEAVY_CIF), source="term").status_code
                )
        except httpx.HTTPError as exc:
            statuses.append(type(exc).__name__)

    thread = threading.Thread(target=heavy_upload)
    thread.start()
    time.sleep(0.5)
    assert server.process is not None
    started = time.perf_counter()
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=30)
    stopped_in = time.perf_counter() - started
    thread.join()
    assert stopped_in < 1 + 4, stopped_in  # XRDID_SHUTDOWN_TIMEOUT_S=1, plus the stop itself
    assert statuses and statuses[0] != 201
    server.process = None
    server.start()
    try:
        with server.client() as client:
            listed = client.get("/references", params={"name": "4300013", "limit": 10}).json()
            assert listed["total"] == 0  # abandoned, not committed
    finally:
        server.stop()


# --------------------------------------------------------------------------- overload


def test_overload_burst_is_refused_at_once_with_retry_after(server: Server) -> None:
    query = rockjock_column_xy("CALCITE")
    barrier = threading.Barrier(20)
    results: list[tuple[int, float, str | None]] = []
    lock = threading.Lock()

    def client_thread() -> None:
        with server.client() as client:
            barrier.wait()
            response, seconds = timed(
                lambda: client.post("/identify", files={"file": ("c.xy", query)})
            )
            with lock:
                results.append((response.status_code, seconds, response.headers.get("retry-after")))

    threads = [threading.Thread(target=client_thread) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = [status for status, _, _ in results]
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 4, statuses
    refused = [(seconds, retry) for status, seconds, retry in results if status == 503]
    assert refused, statuses
    assert all(retry == "2" for _, retry in refused)
    assert max(seconds for seconds, _ in refused) < 2.0, refused


# --------------------------------------------------------------------------- slow senders


def open_socket(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return sock


def closed_after(
    sock: socket.socket, trickle: bytes, every_s: float, limit_s: float
) -> tuple[float, bytes]:
    """Send ``trickle`` a few bytes at a time until the server answers or closes."""
    started = time.perf_counter()
    sock.settimeout(every_s)
    received = b""
    position = 0
    while time.perf_counter() - started < limit_s:
        if position < len(trickle):
            try:
                sock.sendall(trickle[position : position + 7])
            except OSError:
                break
            position += 7
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            break
        if not chunk:
            break
        received += chunk
    return time.perf_counter() - started, received


def test_slow_request_head_is_closed_within_the_header_timeout(server: Server) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 2000 + b"\r\n\r\n"
    with open_socket(server) as sock:
        seconds, answer = closed_after(sock, head, 0.5, 30)
    assert seconds < HEADER_TIMEOUT_S + 2, seconds
    assert answer.startswith(b"HTTP/1.1 408")


def test_slow_body_is_closed_within_the_body_timeout(server: Server) -> None:
    body = b"--zz\r\n" + b"x" * 5000
    head = (
        b"POST /identify HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=zz\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    with open_socket(server) as sock:
        sock.sendall(head)
        seconds, answer = closed_after(sock, body, 0.5, 30)
    assert seconds < BODY_TIMEOUT_S + 2, seconds
    assert answer.startswith(b"HTTP/1.1 408") and b"XRDID_BODY_TIMEOUT_S" in answer


def test_many_slow_connections_are_all_closed_and_health_answers(server: Server) -> None:
    # 150: under XRDID_MAX_CONNECTIONS (200), beyond which uvicorn answers 503.
    sockets = [open_socket(server) for _ in range(150)]
    try:
        for sock in sockets:
            sock.sendall(b"GET /health HTTP/1.1\r\n")
        with server.client(timeout=5) as client:
            assert client.get("/health").status_code == 200
        time.sleep(HEADER_TIMEOUT_S + 1.5)
        closed = 0
        for sock in sockets:
            sock.settimeout(2)
            try:
                data = sock.recv(4096)
                closed += data.startswith(b"HTTP/1.1 408") or data == b""
            except OSError:
                closed += 1
        assert closed == len(sockets)
    finally:
        for sock in sockets:
            sock.close()


# --------------------------------------------------------------------------- metrics


def server_rss_kb(server: Server) -> int:
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


def flood(server: Server, requests: int, seed: int) -> None:
    """``requests`` pipelined requests with made-up methods and paths."""
    rng = random.Random(seed)
    batch = 250
    for start in range(0, requests, batch):
        lines = []
        for i in range(start, min(start + batch, requests)):
            method = rng.choice(["GET", "POST", f"M{i}", f"PURGE{rng.randrange(10**6)}"])
            path = rng.choice(["/health", f"/x/{i}", f"/references/{i}/y", "/identify"])
            lines.append(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        with open_socket(server) as sock:
            sock.sendall("".join(lines).encode())
            sock.settimeout(10)
            received = b""
            while received.count(b"HTTP/1.1 ") < len(lines):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                received += chunk
            assert received.count(b"HTTP/1.1 ") == len(lines)
            assert b"HTTP/1.1 5" not in received


def test_made_up_methods_and_paths_do_not_grow_metrics_or_memory(server: Server) -> None:
    flood(server, 2000, seed=1)  # warm up the allocator and the label sets
    with server.client() as client:
        before_kb = server_rss_kb(server)
        flood(server, 20_000, seed=2)
        after_kb = server_rss_kb(server)
        metrics = client.get("/metrics")
    assert len(metrics.content) < 100_000, len(metrics.content)
    assert 'method="other"' in metrics.text and 'route="unmatched"' in metrics.text
    assert "M123" not in metrics.text
    # The unbounded labels cost 7.6 kB per request (150 MB here).
    assert after_kb - before_kb < 20_000, (before_kb, after_kb)


# --------------------------------------------------------------------------- HTTP edge


BIG = 2**63


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("GET", f"/references/{BIG}", 422),
        ("GET", f"/references/{-BIG - 1}", 422),
        ("GET", "/references/0", 422),
        ("GET", f"/references/{BIG - 1}", 404),
        ("DELETE", f"/references/{BIG}", 422),
        ("DELETE", f"/references/{BIG - 1}", 404),
        ("GET", f"/references?after={BIG}", 422),
        ("GET", f"/references?after={-BIG - 1}", 422),
        ("GET", "/references?after=-1", 422),
        ("GET", f"/references?after={BIG - 1}", 200),
        ("GET", f"/references?limit={BIG}", 422),
    ],
)
def test_integer_bounds_on_every_id_and_cursor(
    server: Server, method: str, url: str, status: int
) -> None:
    with server.client() as client:
        response = client.request(method, url, headers=AUTH)
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/references/1", "GET, DELETE"),
        ("PUT", "/references", "GET, POST"),
        ("GET", "/identify", "POST"),
        ("M123", "/health", "GET"),
        ("POST", "/docs", "GET"),
    ],
)
def test_405_names_every_method_of_the_path(
    server: Server, method: str, path: str, allow: str
) -> None:
    with server.client() as client:
        response = client.request(method, path)
    assert response.status_code == 405 and response.headers["allow"] == allow
    assert allow in response.json()["detail"]


def test_docs_work_offline_under_the_security_headers(server: Server) -> None:
    with server.client() as client:
        page = client.get("/docs")
        assert page.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources and all(s.startswith("/docs/") for s in sources), sources
        for source in sources:
            asset = client.get(source)
            assert asset.status_code == 200 and len(asset.content) > 100, source
        assert "SwaggerUIBundle" in client.get("/docs/swagger-ui-bundle.js").text
        assert '"/openapi.json"' in client.get("/docs/init.js").text
        headers = page.headers
        assert "server" not in headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "<script>" not in page.text  # no inline script: the CSP forbids it
        assert client.get("/redoc").status_code == 404  # would need a CDN


def test_form_and_key_misuse_is_refused_naming_the_limit(server: Server) -> None:
    scan = rendered_query(prepare_structure(structure("elements/Si.cif"), "Si.cif").pattern)  # type: ignore[arg-type]
    with server.client() as client:
        two_files = client.post(
            "/identify", files=[("file", ("a.xy", scan)), ("file", ("b.xy", scan))]
        )
        assert two_files.status_code == 422 and "Maximum number of files is 1" in two_files.text
        repeated = client.post(
            "/identify", files={"file": ("a.xy", scan)}, data={"top_k": ["3", "4"]}
        )
        assert repeated.status_code == 422 and "'top_k' appear more than once" in repeated.text
        fields = client.post(
            "/identify", files={"file": ("a.xy", scan)}, data={f"f{i}": "x" for i in range(5000)}
        )
        assert fields.status_code == 422 and "XRDID_MAX_FORM_FIELDS" in fields.text
        big_field = client.post(
            "/identify", files={"file": ("a.xy", scan)}, data={"sample_id": "s" * 1_000_000}
        )
        assert big_field.status_code == 413 and "XRDID_MAX_FORM_FIELD_BYTES" in big_field.text
        for length, text in ((1000, "XRDID_MAX_FILENAME_CHARS"), (10_000, "file names may have")):
            named = client.post("/identify", files={"file": ("a" * length + ".xy", scan)})
            assert named.status_code == 422 and text in named.text, named.text
        keys = client.delete(
            "/references/1", headers=[("X-API-Key", WRITE_KEY), ("X-API-Key", "other")]
        )
        assert keys.status_code == 400 and "2 X-API-Key headers" in keys.text
        in_url = client.delete("/references/1", params={"api_key": WRITE_KEY})
        assert in_url.status_code == 401 and "not in the URL" in in_url.text


def test_ready_shows_no_paths_and_openapi_matches_the_server(server: Server) -> None:
    with server.client() as client:
        ready = client.get("/ready").text
        assert "/" not in ready.replace('"/', "")  # no file path
        spec = client.get("/openapi.json").json()
    identify = spec["paths"]["/identify"]["post"]
    assert "security" not in identify  # reads need no key here (generated clients: no auth)
    assert spec["paths"]["/references"]["post"]["security"] == [{"APIKeyHeader": []}]
    form = spec["components"]["schemas"]["IdentifyUpload"]["properties"]
    assert form["file"]["minLength"] == 1
    assert form["wavelength"]["type"] == "string" and "anyOf" not in form["wavelength"]
