"""End to end, Raman: a real uvicorn process identifies real RRUFF spectra
(held-out samples, never in the library) in a small Raman library built by
the indexer job, refuses the wrong technique, finds a Raman reference
added through POST /references, and answers spectra in batch jobs (mixed
with XRD scans) and to the command-line client, remote and local."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from indexer.build_raman import build
from tests.e2e.conftest import WRITE_KEY
from tests.e2e.support import Server, copy_library, rockjock_column_xy, running
from xrdid.data_paths import PROJECT_ROOT
from xrdid.library import RAMAN_FIRST_ID
from xrdid.raman.archive import unpacked_archive

pytestmark = pytest.mark.slow

AUTH = {"X-API-Key": WRITE_KEY}
MODEL_STORE = PROJECT_ROOT / "model_store"
PROBLEM = "application/problem+json"
# The small library: the split's library spectra of these minerals
# (carbonates that share bands, two TiO2 polymorphs, corundum).
MINERALS = ("Calcite", "Aragonite", "Dolomite", "Rutile", "Anatase", "Corundum")
# Held-out samples (the split's test role): never in any library.
CALCITE = "Calcite__R050130__Raman__532__0__unoriented__Raman_Data_Processed__27273.txt"
# Forsterite is a mineral the split keeps out of the library and training
# (unseen): one sample is added as a reference, another is the query.
FORSTERITE_ADDED = "Forsterite__R040018__Raman__532__0__unoriented__Raman_Data_Processed__26073.txt"
FORSTERITE_QUERY = "Forsterite__R040052__Raman__532__0__unoriented__Raman_Data_Processed__15115.txt"
XRD_FILE = PROJECT_ROOT / "tests" / "files" / "patterns" / "d5000_1.xye"


def spectrum(name: str) -> bytes:
    return (unpacked_archive() / name).read_bytes()


def identify(client: httpx.Client, name: str, data: bytes, **form: str) -> httpx.Response:
    return client.post("/identify", files={"file": (name, data)}, data=form)


def add_forsterite(client: httpx.Client, source_id: str) -> httpx.Response:
    """POST /references: the forsterite sample kept out of the library."""
    return client.post(
        "/references",
        files={"file": (FORSTERITE_ADDED, spectrum(FORSTERITE_ADDED))},
        data={"name": "Forsterite", "formula": "Mg2SiO4", "source": "e2e", "source_id": source_id},
        headers=AUTH,
    )


@pytest.fixture(scope="module")
def raman_library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """The small Raman library, built by the indexer job, and its report."""
    default = tmp_path_factory.mktemp("raman-library") / "raman_default.sqlite"
    report = build(
        default,
        MODEL_STORE / "raman_regnet1d.pt",
        MODEL_STORE / "raman_split.json",
        MINERALS,
        split_only=True,
    )
    assert report["minerals"] == len(MINERALS)
    return default, report


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    e2e_model: Path,
    e2e_library: Path,
    raman_library: tuple[Path, dict[str, object]],
) -> Iterator[Server]:
    """A server with the small XRD library and the small Raman library."""
    tmp = tmp_path_factory.mktemp("raman-server")
    default, report = raman_library
    env = {
        "XRDID_MODEL_PATH": str(e2e_model),
        "XRDID_LIBRARY_PATH": str(copy_library(e2e_library, tmp / "work" / "library.sqlite")),
        "XRDID_DEFAULT_LIBRARY_PATH": str(tmp / "none.sqlite"),
        "XRDID_DEFAULT_RAMAN_LIBRARY_PATH": str(default),
        "XRDID_WRITE_API_KEYS": WRITE_KEY,
        "XRDID_DEVICE": "cpu",
        "XRDID_LOG_LEVEL": "warning",
    }
    with running(env, tmp / "server.log") as process:
        with process.client() as client:  # XRD is ready; wait for Raman too
            for _ in range(600):
                ready = client.get("/ready").json()
                if ready["raman_status"] != "loading":
                    break
                time.sleep(0.1)
        assert ready["raman_status"] == "ready", process.logs()
        assert ready["raman_library_size"] == report["references"]
        yield process


def test_a_held_out_rruff_spectrum_is_identified(server: Server) -> None:
    with server.client() as client:
        response = identify(client, CALCITE, spectrum(CALCITE), include="profiles", top_k="4")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["technique"] == "raman" and body["verdict"] == "match"
    best = body["candidates"][0]
    assert best["name"] == "Calcite" and best["source"] == "rruff"
    assert best["reference_id"] > RAMAN_FIRST_ID and best["kind"] == "measured"
    assert 0.5 < best["confidence"] <= 1.0
    names = [c["name"] for c in body["candidates"]]
    assert len(names) == 4 and len(set(names)) == 4  # one candidate per mineral
    scores = [c["score"] for c in body["candidates"]]
    assert scores == sorted(scores, reverse=True)
    assert [m["name"] for m in body["materials"]] == names and body["phases"] == []
    # The sample's chemistry: a carbonate of calcium.
    probabilities = [e["probability"] for e in body["elements"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert {e["symbol"] for e in body["elements"][:3]} == {"C", "O", "Ca"}
    query = body["query"]
    assert query["laser_wavelength_nm"] == 532.0 and query["wavelength"] is None
    low, high = query["shift_range_cm1"]
    assert query["covered_shift_cm1"] == pytest.approx([max(low, 100.0), min(high, 1800.0)])
    profiles = body["profiles"]
    assert len(profiles["shift_cm1"]) == len(profiles["spectrum"]) > 1000
    assert profiles["references"][0]["reference_id"] == best["reference_id"]
    assert body["timings_ms"]["total_ms"] > 0


def test_the_technique_is_told_from_the_file_or_refused(server: Server) -> None:
    with server.client() as client:
        xrd = identify(client, XRD_FILE.name, XRD_FILE.read_bytes(), phases="false")
        assert xrd.status_code == 200, xrd.text
        assert xrd.json()["technique"] == "xrd" and xrd.json()["elements"] is None
        cases = [
            (identify(client, CALCITE, spectrum(CALCITE), technique="xrd"), "technique='xrd'"),
            (identify(client, XRD_FILE.name, XRD_FILE.read_bytes(), technique="raman"), "Raman"),
            (identify(client, CALCITE, spectrum(CALCITE), wavelength="Cu"), "XRD patterns"),
            (identify(client, CALCITE, spectrum(CALCITE), plot="true"), "include=profiles"),
            (
                identify(client, XRD_FILE.name, XRD_FILE.read_bytes(), laser_wavelength_nm="532"),
                "Raman spectra",
            ),
        ]
    for response, words in cases:
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM
        assert words in response.json()["detail"]


def test_an_added_raman_reference_is_found(server: Server) -> None:
    query = spectrum(FORSTERITE_QUERY)
    with server.client() as client:
        before = identify(client, FORSTERITE_QUERY, query).json()
        assert "Forsterite" not in [c["name"] for c in before["candidates"]]
        added = add_forsterite(client, "fo-1")
        assert added.status_code == 201, added.text
        entry = added.json()
        rid = entry["id"]
        assert entry["technique"] == "raman" and rid > RAMAN_FIRST_ID
        assert entry["elements"] == ["Mg", "O", "Si"]
        assert added.headers["location"] == f"/references/{rid}"
        after = identify(client, FORSTERITE_QUERY, query).json()
        assert after["candidates"][0]["reference_id"] == rid
        assert after["library"]["size"] == before["library"]["size"] + 1
        # Filters work on Raman references as on XRD ones.
        no_mg = identify(client, FORSTERITE_QUERY, query, elements_none="Mg").json()
        assert rid not in [c["reference_id"] for c in no_mg["candidates"]]
        stored = client.get(f"/references/{rid}").json()
        assert (
            stored["pattern"]["type"] == "raman"
            and stored["pattern"]["laser_wavelength_nm"] == 532.0
        )
        listed = client.get("/references", params={"technique": "raman", "name": "Forsterite"})
        assert [item["id"] for item in listed.json()["items"]] == [rid]
        xrd = client.get("/references", params={"name": "Forsterite"}).json()
        assert xrd["total"] == 0  # the XRD library, listed by default
        again = add_forsterite(client, "fo-1")
        assert again.status_code == 409 and again.json()["existing_id"] == rid
        assert client.delete(f"/references/{rid}", headers=AUTH).status_code == 204
        gone = identify(client, FORSTERITE_QUERY, query).json()
        assert rid not in [c["reference_id"] for c in gone["candidates"]]
        assert client.get(f"/references/{rid}").status_code == 404


# --------------------------------------------------------------------------- jobs and clients

ANATASE = "Anatase__R120064__Raman__532__0__unoriented__Raman_Data_Processed__36494.txt"


def wait_for_job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("completed", "cancelled"):
            return job
        time.sleep(0.1)
    raise TimeoutError(job_id)


def test_a_mixed_job_answers_each_file_as_identify_does(server: Server) -> None:
    """Spectra and XRD scans in one job: each identified with its own model
    and library, as POST /identify identifies it; the CSV says which is which."""
    files = [
        (CALCITE, spectrum(CALCITE)),
        ("calcite.xy", rockjock_column_xy("CALCITE")),
        (ANATASE, spectrum(ANATASE)),
    ]
    with server.client() as client:
        response = client.post(
            "/jobs", files=[("files", f) for f in files], data={"top_k": "3", "phases": "false"}
        )
        assert response.status_code == 202, response.text
        job = wait_for_job(client, response.json()["id"])
        assert job["progress"]["succeeded"] == 3, job
        for (name, data), item in zip(files, job["files"], strict=True):
            single = identify(client, name, data, top_k="3", phases="false").json()
            got = item["result"]
            assert got["technique"] == single["technique"] and got["verdict"] == single["verdict"]
            assert [c["reference_id"] for c in got["candidates"]] == [
                c["reference_id"] for c in single["candidates"]
            ]
            assert [c["score"] for c in got["candidates"]] == pytest.approx(
                [c["score"] for c in single["candidates"]], abs=1e-5
            )
        table = client.get(f"/jobs/{job['id']}", headers={"Accept": "text/csv"}).text
    rows = list(csv.DictReader(io.StringIO(table)))
    best = {r["filename"]: r for r in rows if r["rank"] == "1"}
    assert (best[CALCITE]["technique"], best[CALCITE]["name"]) == ("raman", "Calcite")
    assert (best[ANATASE]["technique"], best[ANATASE]["name"]) == ("raman", "Anatase")
    assert best["calcite.xy"]["technique"] == "xrd" and best["calcite.xy"]["elements"] == ""
    # The likely elements (probability ≥ 0.5): calcite's are its own, C, O and Ca.
    assert {e.split()[0] for e in best[CALCITE]["elements"].split("; ")} == {"C", "O", "Ca"}


def test_the_command_line_client_identifies_spectra_remote_and_local(
    server: Server,
    e2e_model: Path,
    e2e_library: Path,
    raman_library: tuple[Path, dict[str, object]],
    tmp_path: Path,
) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / CALCITE).write_bytes(spectrum(CALCITE))
    (folder / "calcite.xy").write_bytes(rockjock_column_xy("CALCITE"))
    common = [sys.executable, "-m", "app.cli", "identify", str(folder), "--no-progress"]
    common += ["--format", "json", "--top-k", "3"]
    remote = subprocess.run(
        [*common, "--url", server.url], capture_output=True, text=True, timeout=120
    )
    local_raman = copy_library(raman_library[0], tmp_path / "raman.sqlite")
    local = subprocess.run(
        [
            *common,
            "--library", str(copy_library(e2e_library, tmp_path / "library.sqlite")),
            "--model", str(e2e_model),
            "--raman-library", str(local_raman),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert remote.returncode == 0, remote.stderr
    assert local.returncode == 0, local.stderr
    remote_items, local_items = json.loads(remote.stdout), json.loads(local.stdout)
    assert [Path(i["filename"]).name for i in remote_items] == [CALCITE, "calcite.xy"]
    for r, lo in zip(remote_items, local_items, strict=True):
        assert r["result"]["technique"] == lo["result"]["technique"]
        assert [c["reference_id"] for c in r["result"]["candidates"]] == [
            c["reference_id"] for c in lo["result"]["candidates"]
        ]
    assert remote_items[0]["result"]["technique"] == "raman"
    assert remote_items[0]["result"]["candidates"][0]["name"] == "Calcite"
