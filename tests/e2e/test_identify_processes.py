"""End to end: POST /identify computed in processes (XRDID_IDENTIFY_PROCESSES)
answers exactly as on the service's threads, searches a reference as soon as
it is added, and a process killed mid-request costs that request only."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.conftest import WRITE_KEY
from tests.e2e.support import NEW_STRUCTURE, Server, copy_library, rendered_query, running
from tests.test_jobs_api import CALCITE, rruff, same_answer
from xrdid.data_paths import shared_data_dir
from xrdid.references import prepare_structure

pytestmark = pytest.mark.slow

PROCESSES = {"XRDID_IDENTIFY_PROCESSES": "true", "XRDID_COMPUTE_THREADS": "2"}


def real_xrdml() -> Path:
    folder = shared_data_dir() / "patterns" / "dara" / "precursor_mixtures"
    return sorted(folder.glob("*.xrdml"))[0]


def identify(client: httpx.Client, name: str, data: bytes, **form: str) -> httpx.Response:
    return client.post("/identify", files={"file": (name, data)}, data=form)


def identify_processes(server: Server) -> list[psutil.Process]:
    """The server's /identify processes: its spawned children at normal
    priority (job and write workers run at nice 10, once started: a write
    worker is at nice 0 for its first moments, before the service is ready)."""
    assert server.process is not None
    children = psutil.Process(server.process.pid).children()
    return [p for p in children if "spawn_main" in " ".join(p.cmdline()) and p.nice() == 0]


def wait_for_identify_processes(server: Server, count: int, timeout_s: float = 60.0) -> None:
    """The processes start once the service has loaded (after /ready says so)
    and take /identify over once they have loaded (the metric says so)."""
    deadline = time.monotonic() + timeout_s
    serving = f"xrdid_identify_processes {float(count)}"
    while serving not in httpx.get(server.url + "/metrics").text:
        assert time.monotonic() < deadline, "the /identify processes did not take over"
        time.sleep(0.1)
    assert len(identify_processes(server)) == count


def test_identify_in_processes_answers_as_on_threads(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    threads_library = copy_library(
        Path(server_env["XRDID_LIBRARY_PATH"]), tmp_path / "threads" / "library.sqlite"
    )
    threads_env = {**server_env, "XRDID_LIBRARY_PATH": str(threads_library)}
    scan = real_xrdml()
    cases = [
        (scan.name, scan.read_bytes(), {"top_k": "3", "include": "profiles"}),
        (CALCITE, rruff(CALCITE), {"top_k": "3"}),
        ("bad.xy", b"1 2 3 x\n", {}),
    ]
    with (
        running({**server_env, **PROCESSES}, tmp_path / "processes.log") as processes,
        running(threads_env, tmp_path / "threads.log") as threads,
        processes.client() as in_processes,
        threads.client() as on_threads,
    ):
        wait_for_identify_processes(processes, 2)
        assert "xrdid_identify_processes 0.0" in on_threads.get("/metrics").text
        for name, data, form in cases:
            got = identify(in_processes, name, data, **form)
            expected = identify(on_threads, name, data, **form)
            assert got.status_code == expected.status_code, (name, got.text)
            assert got.headers["content-type"] == expected.headers["content-type"]
            same_answer(got.json(), expected.json(), name)
        picture = identify(in_processes, scan.name, scan.read_bytes(), plot="true")
        assert picture.status_code == 200, picture.text
        assert picture.headers["content-type"] == "image/png"
        assert picture.content.startswith(b"\x89PNG")

        # Added through the service, searched by the processes at once.
        cif = shared_data_dir() / "structures" / NEW_STRUCTURE
        query = rendered_query(prepare_structure(cif.read_bytes(), cif.name).pattern)  # type: ignore[arg-type]
        created = in_processes.post(
            "/references",
            files={"file": (cif.name, cif.read_bytes())},
            data={"source": "cod", "source_id": "copper-e2e"},
            headers={"X-API-Key": WRITE_KEY},
        )
        assert created.status_code == 201, created.text
        for _ in range(2):  # each process, whichever takes the request
            best = identify(in_processes, "cu.xy", query).json()["candidates"][0]
            assert best["reference_id"] == created.json()["id"], best


def test_an_identify_process_killed_mid_request_costs_that_request_only(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**server_env, **PROCESSES, "XRDID_COMPUTE_THREADS": "1"}
    data = real_xrdml().read_bytes()
    with running(env, tmp_path / "server.log") as server, server.client() as client:
        wait_for_identify_processes(server, 1)
        assert identify(client, "scan.xrdml", data).status_code == 200  # warm
        (process,) = identify_processes(server)
        answers: list[httpx.Response] = []
        request = threading.Thread(
            target=lambda: answers.append(identify(client, "scan.xrdml", data))
        )
        idle = sum(process.cpu_times()[:2])
        request.start()
        deadline = time.monotonic() + 10
        # It is computing the request (which takes about 50 ms of CPU here:
        # killed after 20, it is still in flight).
        while sum(process.cpu_times()[:2]) < idle + 0.02:
            assert time.monotonic() < deadline, "the request never reached the process"
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
        request.join(timeout=30)
        (killed,) = answers
        assert killed.status_code == 500, killed.text
        assert killed.headers["content-type"] == "application/problem+json"
        assert "process identifying this file stopped" in killed.json()["detail"]
        after = identify(client, "scan.xrdml", data)  # on the process pebble started again
        assert after.status_code == 200, after.text
        assert [p.pid for p in identify_processes(server)] != [process.pid]
        metrics = client.get("/metrics").text
        assert 'xrdid_compute_process_deaths_total{pool="identify"} 1.0' in metrics
