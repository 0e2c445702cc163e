"""End to end, as a LIMS uses the service: batch jobs (results equal to
/identify's, CSV, zips, cancel), a kill -9 in the middle of a job, signed
webhooks to a real receiver that fails three times, idempotent writes, the
audit log, request ids, the command-line client and a client generated
from the live OpenAPI schema by openapi-python-client."""

from __future__ import annotations

import base64
import importlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import WRITE_KEY
from tests.e2e.receiver import WebhookReceiver
from tests.e2e.support import (
    NEW_STRUCTURE,
    Server,
    copy_library,
    rockjock_column_xy,
    running,
)
from xrdid.data_paths import PROJECT_ROOT, shared_data_dir

pytestmark = pytest.mark.slow

AUTH = {"X-API-Key": WRITE_KEY}
SECRET = "whsec_" + base64.b64encode(b"e2e webhook secret, 32 bytes!!!!").decode()
PROBLEM = "application/problem+json"
COLUMNS = ("QUARTZ", "CALCITE", "HEMATITE", "RUTILE")


def scans() -> list[tuple[str, bytes]]:
    """RockJock columns as .xy, a real .xrdml, and a file that is no pattern."""
    xrdml = sorted(
        (shared_data_dir() / "patterns" / "dara" / "precursor_mixtures").glob("*.xrdml")
    )[0]
    return [
        *((f"{c.lower()}.xy", rockjock_column_xy(c)) for c in COLUMNS),
        (xrdml.name, xrdml.read_bytes()),
        ("notes.txt", b"this is not a pattern\n"),
    ]


def wait_for_job(client: httpx.Client, job_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("completed", "cancelled"):
            return dict(job)
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} did not finish: {job['progress']}")


def submit(client: httpx.Client, files: list[tuple[str, bytes]], **data: str) -> httpx.Response:
    return client.post("/jobs", files=[("files", f) for f in files], data=data)


def columns_job(repeats: int) -> list[tuple[str, bytes]]:
    """The RockJock columns as .xy scans, ``repeats`` times."""
    return [(f"{c.lower()}-{i}.xy", rockjock_column_xy(c)) for i in range(repeats) for c in COLUMNS]


def wait_for_second_batch(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job once a batch of two is written and the next is claimed (computing)."""
    deadline = time.monotonic() + 60
    while True:
        job: dict[str, Any] = client.get(f"/jobs/{job_id}").json()
        if job["progress"]["succeeded"] >= 2 and job["progress"]["running"] >= 1:
            return job
        assert time.monotonic() < deadline, job["progress"]
        time.sleep(0.01)


def assert_columns_found(job: dict[str, Any], files: list[tuple[str, bytes]]) -> None:
    """Each scan of :func:`columns_job` answered by its own RockJock column."""
    for item, (name, _) in zip(job["files"], files, strict=True):
        best = item["result"]["candidates"][0]
        assert best["source_id"] == f"rockjock_xrd#{name.split('-')[0].upper()}"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, e2e_model: Path, e2e_library: Path
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("lims-server")
    env = {
        "XRDID_MODEL_PATH": str(e2e_model),
        "XRDID_LIBRARY_PATH": str(copy_library(e2e_library, tmp / "library.sqlite")),
        "XRDID_DEFAULT_LIBRARY_PATH": str(tmp / "none.sqlite"),
        "XRDID_WRITE_API_KEYS": WRITE_KEY,
        "XRDID_DEVICE": "cpu",
        "XRDID_LOG_LEVEL": "info",
        "XRDID_WEBHOOK_SECRET": SECRET,
        "XRDID_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "XRDID_WEBHOOK_RETRY_BASE_S": "0.2",
        "XRDID_JOB_BATCH_SIZE": "4",
    }
    with running(env, tmp / "server.log") as process:
        yield process


# --------------------------------------------------------------------------- jobs


def test_batch_job_gives_what_identify_gives(server: Server) -> None:
    files = scans()
    with server.client() as client:
        response = submit(client, files, top_k="3", sample_id="rack-7")
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        assert response.headers["location"] == f"/jobs/{job_id}"
        assert response.json()["status"] == "queued"
        job = wait_for_job(client, job_id)
        assert job["status"] == "completed"
        assert job["progress"] == {
            "total": 6, "queued": 0, "running": 0, "succeeded": 5, "failed": 1, "cancelled": 0,
        }  # fmt: skip
        by_index = {f["index"]: f for f in job["files"]}
        assert [by_index[i]["filename"] for i in range(6)] == [name for name, _ in files]
        for i, (name, data) in enumerate(files):
            form = {"top_k": "3", "sample_id": "rack-7"}
            single = client.post("/identify", files={"file": (name, data)}, data=form)
            item = by_index[i]
            if single.status_code != 200:
                assert item["status"] == "failed" and item["result"] is None
                assert item["error"]["type"] == single.json()["type"]
                assert item["error"]["detail"] == single.json()["detail"]
                continue
            expected, got = single.json(), item["result"]
            assert_same_answer(got["candidates"], expected["candidates"], name)
            assert got["query"] == expected["query"] and got["sample_id"] == "rack-7"
            assert got["verdict"] == expected["verdict"], name
            assert_same_answer(without_timings(got), without_timings(expected), name)
        results = [f["result"] for f in job["files"] if f["result"]]
        assert any(r["phases"] for r in results)  # the phase analysis ran (on by default)
        quartz = by_index[0]["result"]["candidates"][0]
        assert quartz["source_id"] == "rockjock_xrd#QUARTZ"
        table = client.get(f"/jobs/{job_id}", headers={"Accept": "text/csv"})
        assert table.headers["content-type"].startswith("text/csv")
        lines = table.text.splitlines()
        assert lines[0].startswith("index,filename,status")
        assert len(lines) == 1 + 5 * 3 + 1  # a row per candidate, one for the failed file
        assert lines[1].startswith("0,quartz.xy,succeeded,rack-7,1,")
        assert lines[-1].startswith("5,notes.txt,failed,")


def assert_same_answer(got: Any, expected: Any, where: str) -> None:
    """The same answer: equal but for the last float32 digits of its numbers.
    A batch's forward pass rounds differently from one scan's (~1e-7 in the
    embeddings), which can move a number's sixth decimal."""
    if isinstance(expected, float) or isinstance(got, float):
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-6), where
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), where
        for key in expected:
            assert_same_answer(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert_same_answer(g, e, f"{where}[{i}]")
    else:
        assert got == expected, where


def without_timings(answer: dict[str, Any]) -> dict[str, Any]:
    """An /identify answer without its wall-clock timings (they differ run to run)."""
    return {k: v for k, v in answer.items() if k != "timings_ms"}


def test_job_options_are_identify_options(server: Server) -> None:
    """A job takes /identify's phase-analysis options and answers as /identify
    does with them."""
    calcite = [("calcite.xy", rockjock_column_xy("CALCITE"))]
    cases = ({"phases": "false"}, {"include": "profiles", "top_k": "2"})
    with server.client() as client:
        for options in cases:
            response = submit(client, calcite, **options)
            assert response.status_code == 202, response.text
            job = wait_for_job(client, response.json()["id"])
            (item,) = job["files"]
            single = client.post("/identify", files={"file": calcite[0]}, data=options)
            assert single.status_code == 200, single.text
            assert without_timings(item["result"]) == without_timings(single.json()), options
        no_phases, profiles = (
            client.post("/identify", files={"file": calcite[0]}, data=options).json()
            for options in cases
        )
        assert no_phases["phases"] == [] and profiles["profiles"]["scan"]


def test_a_zip_of_scans_is_one_job_and_cancel_keeps_what_was_done(server: Server) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in scans()[:4] * 3:
            zipped.writestr(f"run-12/{uuid.uuid4().hex[:6]}-{name}", data)
    with server.client() as client:
        response = submit(client, [("run-12.zip", archive.getvalue())])
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        assert response.json()["progress"]["total"] == 12
        cancelled = client.delete(f"/jobs/{job_id}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        job = wait_for_job(client, job_id)
        progress = job["progress"]
        assert progress["cancelled"] >= 1 and progress["queued"] == progress["running"] == 0
        assert progress["succeeded"] + progress["cancelled"] == 12
        assert all(f["filename"].startswith("run-12/") for f in job["files"])
        assert client.delete(f"/jobs/{job_id}").json()["status"] == "cancelled"


def test_kill_9_during_a_job_then_every_file_gets_one_result(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **server_env,
        "XRDID_JOB_BATCH_SIZE": "2",
        "XRDID_JOB_WORKERS": "1",
        "XRDID_JOB_LEASE_S": "1",
    }
    files = columns_job(2)
    server = Server(env, tmp_path / "server.log").start()
    try:
        with server.client() as client:
            job_id = submit(client, files, top_k="2").json()["id"]
            job = wait_for_second_batch(client, job_id)
        server.kill()  # SIGKILL: no shutdown code runs, a batch is in flight
        done_before = {f["index"]: f["result"] for f in job["files"] if f["status"] == "succeeded"}
        assert 2 <= len(done_before) < len(files), job["progress"]
        server.start()
        with server.client() as client:
            job = wait_for_job(client, job_id)
            ready = client.get("/ready").json()
        assert job["status"] == "completed"
        assert job["progress"]["succeeded"] == len(files)
        assert sorted(f["index"] for f in job["files"]) == list(range(len(files)))
        for index, result in done_before.items():  # written once, never recomputed
            assert job["files"][index]["result"] == result
        assert_columns_found(job, files)
        assert ready["status"] == "ready"
    finally:
        server.stop()


def spawned_workers(server: Server) -> list[int]:
    """The server's worker processes (job and write workers, multiprocessing spawns)."""
    assert server.process is not None
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = stat.with_name("cmdline").read_bytes()
        except OSError:  # exited meanwhile
            continue
        if parent == server.process.pid and b"spawn_main" in command:
            found.append(int(stat.parent.name))
    return found


def test_a_job_process_killed_mid_batch_costs_no_result(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**server_env, "XRDID_JOB_BATCH_SIZE": "2", "XRDID_JOB_WORKERS": "1"}
    files = columns_job(2)
    server = Server(env, tmp_path / "server.log").start()
    try:
        with server.client() as client:
            job_id = submit(client, files, top_k="2").json()["id"]
            wait_for_second_batch(client, job_id)
            workers = spawned_workers(server)
            assert workers, "no worker processes"
            for pid in workers:  # the write workers too: pebble restarts both
                os.kill(pid, signal.SIGKILL)
            job = wait_for_job(client, job_id)
        assert job["status"] == "completed"
        assert job["progress"]["succeeded"] == len(files), job["progress"]
        assert sorted(f["index"] for f in job["files"]) == list(range(len(files)))
        assert_columns_found(job, files)
        assert "computing its 2 files one by one" in server.logs()
        with server.client() as client:
            metrics = client.get("/metrics").text
        (deaths,) = [
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith('xrdid_compute_process_deaths_total{pool="jobs"}')
        ]
        assert deaths >= 1
    finally:
        server.stop()


# --------------------------------------------------------------------------- webhooks


def test_webhook_is_signed_retried_and_logged(server: Server) -> None:
    with WebhookReceiver(SECRET, fail_first=3) as receiver, server.client() as client:
        response = submit(client, scans()[:2], callback_url=receiver.url)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        wait_for_job(client, job_id)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            (delivery,) = client.get(f"/jobs/{job_id}", params={"results": "false"}).json()[
                "webhook"
            ]["deliveries"]
            if delivery["status"] != "pending":
                break
            time.sleep(0.1)
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 500, 204]
    assert [a["error"] is None for a in delivery["attempts"]] == [False, False, False, True]
    assert len(receiver.received) == 4
    assert all(r.verified_by_library and r.verified_by_spec for r in receiver.received)
    assert {r.headers["webhook-id"] for r in receiver.received} == {delivery["id"]}
    event = receiver.received[-1].event
    assert event["type"] == "job.completed" and event["data"]["job_id"] == job_id
    assert event["data"]["succeeded"] == 2 and event["data"]["url"] == f"/jobs/{job_id}"


def test_callbacks_outside_the_allow_list_are_refused(server: Server) -> None:
    with server.client() as client:
        for url, reason in (
            ("http://169.254.169.254/latest/meta-data", "not allowed"),
            ("http://localhost:9/hook", "not allowed"),
            ("file:///etc/passwd", "http:// or https://"),
            ("http://user:pw@127.0.0.1/hook", "user or password"),
        ):
            response = submit(client, scans()[:1], callback_url=url)
            assert response.status_code == 422, (url, response.text)
            assert response.headers["content-type"] == PROBLEM
            assert reason in response.json()["detail"], response.json()["detail"]


# --------------------------------------------------------------------------- idempotency, audit


def add_copper(client: httpx.Client, key: str, **extra: str) -> httpx.Response:
    path = shared_data_dir() / "structures" / NEW_STRUCTURE
    return client.post(
        "/references",
        files={"file": (path.name, path.read_bytes())},
        data={"source": "e2e-idem", "source_id": "cu", **extra},
        headers={**AUTH, "Idempotency-Key": key, "X-Request-ID": f"lims-{key}"},
    )


def test_idempotent_add_is_replayed_and_audited(server: Server) -> None:
    key = str(uuid.uuid4())
    with server.client() as client:
        results: list[httpx.Response] = []
        threads = [
            threading.Thread(target=lambda: results.append(add_copper(client, key)))
            for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(r.status_code for r in results)
        assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}, statuses
        for conflict in (r for r in results if r.status_code == 409):
            assert conflict.json()["type"] == "urn:xrdid:problem:idempotency-key-in-use"
            assert conflict.headers["retry-after"]
        first = next(r for r in results if r.status_code == 201)
        again = add_copper(client, key)
        assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
        assert again.headers["location"] == first.headers["location"]
        listed = client.get("/references", params={"name": "copper", "limit": 100}).json()
        assert [i["source"] for i in listed["items"]].count("e2e-idem") == 1
        other = add_copper(client, key, notes="a different request")
        assert other.status_code == 422 and other.headers["content-type"] == PROBLEM
        assert other.json()["type"] == "urn:xrdid:problem:idempotency-key-reused"
        reference_id = first.json()["id"]
        assert client.delete(f"/references/{reference_id}", headers=AUTH).status_code == 204
        audit = client.get("/audit", params={"limit": 500}, headers=AUTH)
        assert client.get("/audit").status_code == 401
    entries = audit.json()["items"]
    added = [e for e in entries if e["target"] == f"/references/{reference_id}"]
    assert [e["action"] for e in added] == ["reference.create", "reference.delete"]
    assert added[0]["request_id"] == f"lims-{key}" and added[0]["client"] == "127.0.0.1"
    assert added[0]["key_id"].startswith("key_") and WRITE_KEY not in json.dumps(entries)
    assert added[0]["details"]["source"] == "e2e-idem"
    assert any(e["action"] == "job.submit" for e in entries)


def test_job_submission_is_idempotent(server: Server) -> None:
    key = str(uuid.uuid4())
    with server.client() as client:
        first = client.post(
            "/jobs", files=[("files", scans()[0])], headers={"Idempotency-Key": f'"{key}"'}
        )
        again = client.post(
            "/jobs", files=[("files", scans()[0])], headers={"Idempotency-Key": key}
        )
        other = client.post(
            "/jobs", files=[("files", scans()[1])], headers={"Idempotency-Key": key}
        )
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 422


def test_every_response_has_a_request_id_and_every_log_line_too(server: Server) -> None:
    with server.client() as client:
        given = client.get("/health", headers={"X-Request-ID": "lims-run-42"})
        fresh = client.get("/ready")
        bad = client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
        problem = client.get("/jobs/" + "0" * 32)
    assert given.headers["x-request-id"] == "lims-run-42"
    assert len(fresh.headers["x-request-id"]) == 32
    assert bad.headers["x-request-id"] != "bad id with spaces"
    assert problem.status_code == 404 and problem.headers["x-request-id"]
    time.sleep(0.3)
    log = server.log_path.read_text(errors="replace")
    assert "[lims-run-42]" in log and '"GET /health HTTP/1.1" 200' in log


# --------------------------------------------------------------------------- clients


def test_command_line_client_remote_and_local_agree(
    server: Server, e2e_model: Path, e2e_library: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    for name, data in scans()[:3]:
        (folder / name).write_bytes(data)
    library = copy_library(e2e_library, tmp_path / "cli-library.sqlite")
    common = [
        sys.executable,
        "-m",
        "app.cli",
        "identify",
        str(folder),
        "--format",
        "json",
        "--top-k",
        "2",
    ]
    remote = subprocess.run(
        [*common, "--url", server.url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )
    local = subprocess.run(
        [*common, "--library", str(library), "--model", str(e2e_model)],
        capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert remote.returncode == 0, remote.stderr
    assert local.returncode == 0, local.stderr
    remote_items, local_items = json.loads(remote.stdout), json.loads(local.stdout)
    assert [i["filename"] for i in remote_items] == [i["filename"] for i in local_items]
    for r, lo in zip(remote_items, local_items, strict=True):
        assert [c["reference_id"] for c in r["result"]["candidates"]] == [
            c["reference_id"] for c in lo["result"]["candidates"]
        ]
    assert "100%" in remote.stderr  # the progress bar
    table = subprocess.run(
        [*common[:-4], "--url", server.url, "--no-progress"],
        capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:3] == ["file", "status", "best"]
    assert table.stdout.count("succeeded") == 3


def test_a_generated_client_uploads_adds_and_runs_a_job(server: Server, tmp_path: Path) -> None:
    """openapi-python-client builds a client from the live schema, as a LIMS
    developer would; it identifies a real file, adds a reference with a key
    and submits and polls a job."""
    schema = tmp_path / "openapi.json"
    schema.write_text(httpx.get(server.url + "/openapi.json").text)
    tool = Path(sys.executable).with_name("openapi-python-client")
    env = {**os.environ, "PATH": f"{tool.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    generated = subprocess.run(
        [str(tool), "generate", "--path", str(schema), "--output-path", str(tmp_path / "gen")],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stdout + generated.stderr
    sys.path.insert(0, str(tmp_path / "gen"))
    try:
        run_generated_client(server, importlib.import_module("xrdid_client"))
    finally:
        sys.path.remove(str(tmp_path / "gen"))
        for name in [m for m in sys.modules if m.startswith("xrdid_client")]:
            del sys.modules[name]


def run_generated_client(server: Server, generated: Any) -> None:
    api = importlib.import_module("xrdid_client.api")
    models = importlib.import_module("xrdid_client.models")
    types = importlib.import_module("xrdid_client.types")
    identify = importlib.import_module("xrdid_client.api.identify.identify")
    add = importlib.import_module("xrdid_client.api.references.create_reference")
    submit_job = importlib.import_module("xrdid_client.api.jobs.submit_job")
    get_job = importlib.import_module("xrdid_client.api.jobs.get_job")
    del api
    client = generated.Client(base_url=server.url, raise_on_unexpected_status=True)
    writer = generated.AuthenticatedClient(
        base_url=server.url, token=WRITE_KEY, prefix="", auth_header_name="X-API-Key"
    )
    xy = rockjock_column_xy("CALCITE")
    answer = identify.sync(
        client=client,
        body=models.IdentifyUpload(
            file=types.File(payload=io.BytesIO(xy), file_name="calcite.xy"), top_k=3
        ),
    )
    assert isinstance(answer, models.IdentifyResponse), answer
    assert answer.candidates[0].source_id == "rockjock_xrd#CALCITE"
    structure = shared_data_dir() / "structures" / "bgmn" / "Minerals" / "Periclase.str"
    created = add.sync(
        client=writer,
        body=models.ReferenceUpload(
            file=types.File(payload=io.BytesIO(structure.read_bytes()), file_name="p.str"),
            source="generated-client",
            source_id="periclase",
        ),
        idempotency_key=str(uuid.uuid4()),
    )
    assert isinstance(created, models.ReferenceCreated), created
    assert created.source == "generated-client"
    job = submit_job.sync(
        client=client,
        body=models.JobForm(
            files=[types.File(payload=io.BytesIO(xy), file_name="calcite.xy")], top_k=2
        ),
    )
    assert isinstance(job, models.Job), job
    deadline = time.monotonic() + 60
    while job.status.value not in ("completed", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = get_job.sync(client=client, job_id=job.id)
    assert job.status.value == "completed"
    assert job.files[0].result.candidates[0].source_id == "rockjock_xrd#CALCITE"
