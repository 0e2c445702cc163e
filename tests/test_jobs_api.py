"""Batch jobs, idempotency keys, the audit log and request ids in-process:
the refusals (queue full, callbacks, zips, keys) and a fuzz that none of
the new endpoints answers 5xx."""

from __future__ import annotations

import base64
import csv
import io
import time
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.main import create_app
from tests.test_app import (
    READ_KEY,
    WRITE_KEY,
    make_settings,
    scan,
    small_library,  # noqa: F401 - a fixture
    wait_ready,
)
from xrdid.raman.archive import unpacked_archive

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PROBLEM = "application/problem+json"
# Real RRUFF spectra of held-out samples (never in the Raman library).
CALCITE = "Calcite__R050130__Raman__532__0__unoriented__Raman_Data_Processed__27273.txt"
ANATASE = "Anatase__R120064__Raman__532__0__unoriented__Raman_Data_Processed__36494.txt"
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory,
    small_library: tuple[Path, Path],  # noqa: F811
) -> Iterator[TestClient]:
    model, library = small_library
    app = create_app(
        make_settings(
            tmp_path_factory.mktemp("jobs"),
            model,
            library,
            job_queue_max_files=5,
            job_max_files=4,
            job_processes=False,  # the compute threads (the e2e tests run job processes)
            webhook_secret=SECRET,
            webhook_allowed_hosts="lims.example.org",
        )
    )
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client


def rruff(name: str) -> bytes:
    return (unpacked_archive() / name).read_bytes()


def problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == PROBLEM  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    return body


def zipped(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def wait_done(client: TestClient, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, object] = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("completed", "cancelled"):
            return job
        time.sleep(0.05)
    raise TimeoutError(job_id)


def test_job_runs_and_reports_per_file(client: TestClient) -> None:
    response = client.post(
        "/jobs",
        files=[("files", ("a.xy", scan(1))), ("files", ("bad.xy", b"1 2 3 x\n"))],
        data={"top_k": "2"},
    )
    assert response.status_code == 202, response.text
    job = wait_done(client, response.json()["id"])
    assert job["options"]["top_k"] == 2  # type: ignore[index]
    files = job["files"]
    assert [f["status"] for f in files] == ["succeeded", "failed"]  # type: ignore[union-attr,index]
    assert len(files[0]["result"]["candidates"]) == 2  # type: ignore[index]
    assert files[1]["error"]["type"] == "urn:xrdid:problem:unreadable-pattern"  # type: ignore[index]
    summary = client.get(f"/jobs/{job['id']}", params={"results": "false"}).json()
    assert summary["files"] is None and summary["progress"]["succeeded"] == 1
    assert client.delete(f"/jobs/{job['id']}").status_code == 409  # completed


def same_answer(got: object, expected: object, path: str = "") -> None:
    """Two /identify answers agree: every value equal, numbers to 1e-5 (a
    batch's forward pass may differ from one file's in the last float bits),
    wall-clock timings aside."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), path
        for key in expected:
            if key != "timings_ms":
                same_answer(got[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), path
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            same_answer(g, e, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, abs=1e-5), path
    else:
        assert got == expected, path


def test_raman_spectra_in_a_job_are_answered_as_identify_answers_them(
    client: TestClient,
) -> None:
    """A mixed job: each file is read as /identify reads it (two real RRUFF
    spectra of held-out samples, an XRD scan, a file that is neither) and its
    result is what /identify answers for it, in JSON and in CSV."""
    files = [
        (CALCITE, rruff(CALCITE)),
        ("scan.xy", scan(1)),
        (ANATASE, rruff(ANATASE)),
        ("notes.txt", b"sample notes, no numbers\n"),
    ]
    options = {"top_k": "3", "include": "profiles", "sample_id": "rack-9"}
    response = client.post("/jobs", files=[("files", f) for f in files], data=options)
    assert response.status_code == 202, response.text
    job = wait_done(client, response.json()["id"])
    items: list[dict[str, Any]] = job["files"]  # type: ignore[assignment]
    assert [f["status"] for f in items] == ["succeeded", "succeeded", "succeeded", "failed"]
    for (name, data), item in zip(files, items, strict=True):
        single = client.post("/identify", files={"file": (name, data)}, data=options)
        if single.status_code != 200:
            assert item["error"]["type"] == single.json()["type"]
            assert item["error"]["detail"] == single.json()["detail"]
            continue
        same_answer(item["result"], single.json(), name)
    calcite, xrd, anatase = (item["result"] for item in items[:3])
    assert [r["technique"] for r in (calcite, xrd, anatase)] == ["raman", "xrd", "raman"]
    assert calcite["candidates"][0]["name"] == "Calcite"
    assert anatase["candidates"][0]["name"] == "Anatase"
    assert xrd["elements"] is None and calcite["elements"][0]["probability"] > 0.5
    # The overlay's arrays: the spectrum and every candidate's reference spectrum.
    profiles = calcite["profiles"]
    assert [r["reference_id"] for r in profiles["references"]] == [
        c["reference_id"] for c in calcite["candidates"]
    ]
    assert len(profiles["shift_cm1"]) == len(profiles["references"][2]["profile"]) > 1000
    assert items[3]["error"]["type"].endswith("unreadable-pattern")

    table = client.get(f"/jobs/{job['id']}", headers={"Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert [(r["index"], r["technique"], r["rank"]) for r in rows] == [
        ("0", "raman", "1"), ("0", "raman", "2"), ("0", "raman", "3"),
        ("1", "xrd", "1"), ("1", "xrd", "2"), ("1", "xrd", "3"),
        ("2", "raman", "1"), ("2", "raman", "2"), ("2", "raman", "3"),
        ("3", "", ""),
    ]  # fmt: skip
    first = rows[0]
    assert first["name"] == "Calcite" and first["source"] == "rruff"
    assert "__R" in first["source_id"] and float(first["confidence"]) > 0.5
    likely = [e for e in calcite["elements"] if e["probability"] >= 0.5]
    assert likely and first["elements"] == "; ".join(
        f"{e['symbol']} {e['probability']:.2f}" for e in likely
    )
    assert all(r["elements"] == "" for r in rows if r["technique"] == "xrd")
    assert rows[-1]["status"] == "failed" and "no numeric data" in rows[-1]["error"]


@pytest.mark.parametrize(
    ("options", "failed", "words"),
    [
        ({"technique": "xrd"}, CALCITE, "technique='xrd' was asked for"),
        ({"laser_wavelength_nm": "532"}, "scan.xy", "laser_wavelength_nm applies to Raman"),
    ],
)
def test_a_job_reads_files_with_the_technique_and_laser_it_is_given(
    client: TestClient, options: dict[str, str], failed: str, words: str
) -> None:
    """``technique`` and ``laser_wavelength_nm`` apply to each file of a job as
    to /identify's file: a file of the other technique, or an XRD file sent
    with a laser, fails alone, with /identify's problem."""
    files = [(CALCITE, rruff(CALCITE)), ("scan.xy", scan(2))]
    response = client.post("/jobs", files=[("files", f) for f in files], data=options)
    assert response.status_code == 202, response.text
    job = wait_done(client, response.json()["id"])
    items: list[dict[str, Any]] = job["files"]  # type: ignore[assignment]
    for (name, data), item in zip(files, items, strict=True):
        single = client.post("/identify", files={"file": (name, data)}, data=options)
        if name != failed:
            assert item["status"] == "succeeded" and single.status_code == 200, single.text
            continue
        assert item["status"] == "failed" and single.status_code == 422
        assert item["error"]["detail"] == single.json()["detail"]
        assert words in item["error"]["detail"]


def test_without_a_raman_model_the_spectra_fail_and_the_patterns_run(
    tmp_path: Path,
    small_library: tuple[Path, Path],  # noqa: F811
) -> None:
    model, library = small_library
    settings_ = make_settings(tmp_path, model, library, raman_model_path=tmp_path / "none.pt")
    with TestClient(create_app(settings_)) as xrd_only:
        wait_ready(xrd_only)
        files = [("files", (CALCITE, rruff(CALCITE))), ("files", ("scan.xy", scan(4)))]
        response = xrd_only.post("/jobs", files=files, data={"phases": "false"})
        assert response.status_code == 202, response.text
        spectrum, pattern = wait_done(xrd_only, response.json()["id"])["files"]  # type: ignore[misc]
        single = xrd_only.post("/identify", files={"file": (CALCITE, rruff(CALCITE))})
    assert spectrum["status"] == "failed" and pattern["status"] == "succeeded"
    assert spectrum["error"]["type"].endswith("technique-unavailable")
    assert spectrum["error"]["detail"] == single.json()["detail"]
    assert "XRDID_RAMAN_MODEL_PATH" in spectrum["error"]["detail"]


def test_too_many_files_in_one_job(client: TestClient) -> None:
    body = problem(client.post("/jobs", files=[("files", ("a.xy", scan()))] * 6), 422)
    assert "more than 4 files" in str(body["detail"])


def test_an_empty_or_oversize_scan_refuses_the_job(client: TestClient) -> None:
    """Each scan of a job is bounded as POST /identify bounds its file: the
    job is refused before anything is queued."""
    store = client.app.state.service.background.store  # type: ignore[attr-defined]
    before = len(store.audit_page(after=0, limit=100_000))
    huge = b"10 1\n" * 50_000  # 250 kB > max_upload_bytes (200 kB)
    files = [("files", ("ok.xy", scan())), ("files", ("huge.xy", huge))]
    body = problem(client.post("/jobs", files=files), 413)
    assert "huge.xy" in str(body["detail"]) and "XRDID_MAX_UPLOAD_BYTES" in str(body["detail"])
    empty = [("files", ("ok.xy", scan())), ("files", ("empty.xy", b""))]
    body = problem(client.post("/jobs", files=empty), 422)  # the schema's minLength: 1
    assert "empty.xy is empty" in str(body["detail"])
    assert len(store.audit_page(after=0, limit=100_000)) == before  # no job submitted


def test_job_fields_once_files_many_with_sane_names(client: TestClient) -> None:
    """The form checks of /identify (each field once, file names of sane
    length) hold for jobs too; only ``files`` repeats."""
    twice = [("files", ("a.xy", scan())), ("files", ("b.xy", scan(1)))]
    body = problem(client.post("/jobs", files=twice, data={"top_k": ["2", "3"]}), 422)
    assert "'top_k'" in str(body["detail"]) and "'files'" in str(body["detail"])
    long_name = [("files", ("a" * 300 + ".xy", scan()))]
    body = problem(client.post("/jobs", files=long_name), 422)
    assert "XRDID_MAX_FILENAME_CHARS" in str(body["detail"])


def test_job_submissions_are_admitted_like_uploads(client: TestClient) -> None:
    """POST /jobs holds its scans in memory: beyond XRDID_JOB_SUBMISSIONS at
    once it is answered 503 with Retry-After before its body is read."""
    service = client.app.state.service  # type: ignore[attr-defined]
    gate = service.job_gate
    taken, gate.inside = gate.inside, gate.capacity
    try:
        busy = client.post("/jobs", files=[("files", ("a.xy", scan()))])
    finally:
        gate.inside = taken
    assert "job submissions" in str(problem(busy, 503)["detail"])
    assert int(busy.headers["retry-after"]) >= 1
    assert service.settings.job_worker_count <= service.settings.compute_threads


def test_queue_full_is_429_with_retry_after(
    tmp_path: Path,
    small_library: tuple[Path, Path],  # noqa: F811
) -> None:
    """A service whose model failed to load takes jobs but runs none: the
    queue fills deterministically."""
    _, library = small_library
    settings_ = make_settings(tmp_path, tmp_path / "no-model.pt", library, job_queue_max_files=5)
    with TestClient(create_app(settings_)) as stalled:
        first = stalled.post("/jobs", files=[("files", (f"{i}.xy", scan(i))) for i in range(4)])
        assert first.status_code == 202, first.text
        second = stalled.post("/jobs", files=[("files", (f"{i}.xy", scan(i))) for i in range(2)])
        body = problem(second, 429)
        assert int(second.headers["retry-after"]) >= 1
        assert "XRDID_JOB_QUEUE_MAX_FILES" in str(body["detail"])
        assert stalled.delete(f"/jobs/{first.json()['id']}").status_code == 200
        again = stalled.post("/jobs", files=[("files", (f"{i}.xy", scan(i))) for i in range(2)])
        assert again.status_code == 202  # cancelling freed the queue


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://lims.example.org.evil.test/hook", "not allowed on this server"),
        ("http://10.0.0.5/hook", "not allowed on this server"),
        ("gopher://lims.example.org/", "http:// or https://"),
        ("https:///nohost", "names no host"),
        ("https://lims.example.org:99999/", "not a valid URL"),
    ],
)
def test_callback_urls_are_checked(client: TestClient, url: str, message: str) -> None:
    response = client.post("/jobs", files=[("files", ("a.xy", scan()))], data={"callback_url": url})
    assert message in str(problem(response, 422)["detail"])


def test_callbacks_need_a_webhook_secret(
    tmp_path: Path,
    small_library: tuple[Path, Path],  # noqa: F811
) -> None:
    app = create_app(make_settings(tmp_path, *small_library))
    with TestClient(app) as plain:
        response = plain.post(
            "/jobs",
            files=[("files", ("a.xy", scan()))],
            data={"callback_url": "https://lims.example.org/hook"},
        )
        assert "XRDID_WEBHOOK_SECRET" in str(problem(response, 422)["detail"])


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("../escape.xy", b"1 2\n")], "climbs out of its folder"),
        ([("/abs.xy", b"1 2\n")], "absolute path"),
        ([(f"{i}.xy", b"1 2\n") for i in range(5)], "more than the 4"),
        ([("__MACOSX/._a.xy", b"x"), ("dir/", b"")], "holds no files"),
        ([("bomb.xy", b"0" * 1_000_000)], "zip bomb"),
    ],
)
def test_unsafe_zips_refuse_the_job(
    client: TestClient, entries: list[tuple[str, bytes]], message: str
) -> None:
    response = client.post("/jobs", files=[("files", ("batch.zip", zipped(entries)))])
    assert message in str(problem(response, 422)["detail"])


def test_brml_is_a_scan_not_an_archive(client: TestClient) -> None:
    brml = (Path(__file__).parent / "files" / "patterns" / "d5000_1.brml").read_bytes()
    response = client.post("/jobs", files=[("files", ("d5000_1.brml", brml))])
    assert response.status_code == 202 and response.json()["progress"]["total"] == 1
    client.delete(f"/jobs/{response.json()['id']}")


def test_unknown_and_malformed_job_ids(client: TestClient) -> None:
    assert "kept for" in str(problem(client.get("/jobs/" + "a" * 32), 404)["detail"])
    problem(client.get("/jobs/not-a-job"), 422)
    problem(client.delete("/jobs/" + "b" * 32), 404)


@pytest.mark.parametrize("key", ["", "  ", '"', "a\\b", "tab\tkey", "x" * 256])
def test_invalid_idempotency_keys_are_400(client: TestClient, key: str) -> None:
    response = client.post(
        "/jobs", files=[("files", ("a.xy", scan()))], headers={"Idempotency-Key": key}
    )
    assert "Idempotency-Key" in str(problem(response, 400)["detail"])


def test_two_idempotency_keys_are_400(client: TestClient) -> None:
    """As with X-API-Key: several keys are refused, never one of them guessed."""
    keys = [("Idempotency-Key", "first-key"), ("Idempotency-Key", "second-key")]
    response = client.post("/jobs", files=[("files", ("a.xy", scan()))], headers=keys)
    assert "2 Idempotency-Key headers" in str(problem(response, 400)["detail"])


def test_a_failed_request_frees_its_idempotency_key(client: TestClient) -> None:
    key = {"Idempotency-Key": "retry-after-fixing-the-zip"}
    bad = client.post(
        "/jobs", files=[("files", ("b.zip", zipped([("../x.xy", b"1")])))], headers=key
    )
    problem(bad, 422)
    good = client.post("/jobs", files=[("files", ("a.xy", scan()))], headers=key)
    assert good.status_code == 202  # the key was not kept for the failed request
    client.delete(f"/jobs/{good.json()['id']}")


def test_audit_needs_a_write_key_and_pages(client: TestClient) -> None:
    problem(client.get("/audit"), 401)
    problem(client.get("/audit", headers={"X-API-Key": READ_KEY}), 403)
    for _ in range(3):
        job = client.post("/jobs", files=[("files", ("a.xy", scan()))]).json()
        client.delete(f"/jobs/{job['id']}")
    auth = {"X-API-Key": WRITE_KEY}
    first = client.get("/audit", params={"limit": 2}, headers=auth).json()
    assert len(first["items"]) == 2 and first["next_after"] == first["items"][-1]["id"]
    rest = client.get("/audit", params={"after": first["next_after"]}, headers=auth).json()
    ids = [e["id"] for e in first["items"] + rest["items"]]
    assert ids == sorted(set(ids)) and rest["next_after"] is None
    assert {"job.submit", "job.cancel"} <= {e["action"] for e in rest["items"]}
    # Beyond SQLite's integers: a 422 naming the field, not a 500 (schemathesis found it).
    problem(client.get("/audit", params={"after": 2**63}, headers=auth), 422)


def test_request_ids(client: TestClient) -> None:
    echoed = client.get("/health", headers={"X-Request-ID": "LIMS:run/42"})
    assert echoed.headers["x-request-id"] == "LIMS:run/42"
    replaced = client.get("/health", headers={"X-Request-ID": "x" * 300})
    assert replaced.headers["x-request-id"] != "x" * 300
    assert client.get("/nowhere").headers["x-request-id"]  # problems too


# --------------------------------------------------------------------------- fuzz: never a 5xx

FUZZ = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TEXT = st.text(max_size=40)
FORM_FIELDS = (
    "top_k",
    "wavelength",
    "baseline",
    "elements_all",
    "elements_only",
    "sample_id",
    "technique",
    "laser_wavelength_nm",
)


def no_5xx(response: object) -> None:
    status = response.status_code  # type: ignore[attr-defined]
    assert status < 500, (status, response.text[:500])  # type: ignore[attr-defined]
    if status >= 400:
        assert response.headers["content-type"] == PROBLEM  # type: ignore[attr-defined]


@FUZZ
@given(
    files=st.lists(st.tuples(TEXT, st.binary(max_size=600)), min_size=0, max_size=3),
    fields=st.dictionaries(st.sampled_from(FORM_FIELDS), TEXT, max_size=4),
    callback=st.one_of(st.none(), TEXT, st.just("https://lims.example.org/h")),
    key=st.one_of(st.none(), st.text(alphabet=st.characters(max_codepoint=126), max_size=20)),
)
def test_fuzz_submit_never_5xx(
    client: TestClient,
    files: list[tuple[str, bytes]],
    fields: dict[str, str],
    callback: str | None,
    key: str | None,
) -> None:
    data = dict(fields)
    if callback is not None:
        data["callback_url"] = callback
    headers = {"Idempotency-Key": key} if key is not None else {}
    response = client.post(
        "/jobs",
        files=[("files", (name or "f", content)) for name, content in files] or None,
        data=data,
        headers=headers,
    )
    no_5xx(response)
    if response.status_code == 202:
        client.delete(f"/jobs/{response.json()['id']}")


@FUZZ
@given(
    job_id=st.from_regex(r"[A-Za-z0-9._~-]{0,40}", fullmatch=True),
    results=TEXT,
    accept=TEXT,
    after=TEXT,
    limit=TEXT,
    request_id=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200),
)
def test_fuzz_reads_never_5xx(
    client: TestClient,
    job_id: str,
    results: str,
    accept: str,
    after: str,
    limit: str,
    request_id: str,
) -> None:
    headers = {"Accept": accept.encode("ascii", "ignore").decode(), "X-Request-ID": request_id}
    path = "/jobs/" + job_id
    no_5xx(client.get(path, params={"results": results}, headers=headers))
    no_5xx(client.delete(path, headers=headers))
    no_5xx(
        client.get(
            "/audit", params={"after": after, "limit": limit}, headers={"X-API-Key": WRITE_KEY}
        )
    )
