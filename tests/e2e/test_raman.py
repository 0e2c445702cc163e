"""End to end, Raman: a real uvicorn process identifies real RRUFF spectra
(held-out samples, never in the library) in a small Raman library built by
the indexer job, refuses the wrong technique, and finds a Raman reference
added through POST /references."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from indexer.build_raman import build
from tests.e2e.conftest import WRITE_KEY
from tests.e2e.support import Server, running
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
def server(tmp_path_factory: pytest.TempPathFactory, e2e_model: Path) -> Iterator[Server]:
    """A server with an empty XRD library and a small default Raman library."""
    tmp = tmp_path_factory.mktemp("raman-server")
    default = tmp / "raman_default.sqlite"
    report = build(
        default, MODEL_STORE / "raman_regnet1d.pt", MODEL_STORE / "raman_split.json", MINERALS
    )
    assert report["minerals"] == len(MINERALS)
    env = {
        "XRDID_MODEL_PATH": str(e2e_model),
        "XRDID_LIBRARY_PATH": str(tmp / "work" / "library.sqlite"),
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
