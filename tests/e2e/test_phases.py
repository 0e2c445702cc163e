"""The answer over HTTP: phases with weight percents on real weighed
mixtures (dara precursor mixtures), the overlay's arrays and picture, and
the phase analysis switched off, against a real uvicorn process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.support import (
    LIBRARY_STRUCTURES,
    build_library,
    copy_library,
    prepare_small_library,
    running,
)
from xrdid.data_paths import shared_data_dir
from xrdid.references import prepare_structure

pytestmark = pytest.mark.slow

# The dara mixtures' phases, added to the small library's 19 references.
MIXTURE_PHASES = (
    "xrd_autoanalyzer/pdf_example/Li2CO3_15.cif",
    "bgmn/Alumina-Titania-Zirconia-Yttria/ZrO2-m.str",
    "bgmn/Alumina-Titania-Zirconia-Yttria/TiO2-Anatase.str",
    "bgmn/Minerals/Zincite.str",
    "bgmn/Minerals/Corundum.str",
)
DARA = Path("patterns/dara/precursor_mixtures")


@pytest.fixture(scope="module")
def mixture_library(tmp_path_factory: pytest.TempPathFactory, e2e_model: Path) -> Path:
    data = shared_data_dir() / "structures"
    prepared = prepare_small_library() + [
        prepare_structure((data / p).read_bytes(), Path(p).name, source="e2e", source_id=p)
        for p in MIXTURE_PHASES
        if p not in LIBRARY_STRUCTURES
    ]
    path = tmp_path_factory.mktemp("mixtures") / "library.sqlite"
    build_library(path, e2e_model, prepared)
    return path


@pytest.fixture()
def server(server_env: dict[str, str], mixture_library: Path, tmp_path: Path):
    env = dict(server_env)
    env["XRDID_LIBRARY_PATH"] = str(
        copy_library(mixture_library, tmp_path / "lib" / "library.sqlite")
    )
    with running(env, tmp_path / "server.log") as started:
        yield started


def _post(client: httpx.Client, name: str, **form: str) -> httpx.Response:
    path = shared_data_dir() / DARA / name
    return client.post("/identify", files={"file": (name, path.read_bytes())}, data=form)


@pytest.mark.parametrize(
    ("scan", "truth"),
    [
        ("Li2CO3_0p9001-ZrO2_0p1000--8min.xrdml", {"Li2CO3": 90.0, "ZrO2": 10.0}),
        ("TiO2_0p4009-ZnO_0p6010--8min.xrdml", {"TiO2": 40.1, "ZnO": 60.1}),
    ],
)
def test_weighed_mixtures_get_their_phases_and_weight_percents(server, scan, truth) -> None:
    with server.client() as client:
        response = _post(client, scan)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["verdict"] == "mixture"
    found = {p["reference"]["formula"]: p for p in body["phases"]}
    assert set(found) == set(truth)
    for formula, percent in truth.items():
        assert found[formula]["weight_percent"] == pytest.approx(percent, abs=3.0)
        assert found[formula]["weight_percent_sd"] is not None
        assert found[formula]["cell"]["a"] > 0
    assert 0 < body["fit"]["rwp"] < 0.3
    # One answer per material: the materials list never repeats one.
    keys = [
        (m["formula"], m["space_group"]) if m["formula"] else m["name"] for m in body["materials"]
    ]
    assert len(keys) == len(set(keys))
    assert body["candidates"] and body["timings_ms"]["phases_ms"] > 0


def test_overlay_arrays_picture_and_phases_off(server) -> None:
    scan = "Li2CO3_0p9001-ZrO2_0p1000--8min.xrdml"
    with server.client() as client:
        profiles = _post(client, scan, include="profiles").json()["profiles"]
        picture = client.post(
            "/identify",
            files={"file": (scan, (shared_data_dir() / DARA / scan).read_bytes())},
            headers={"Accept": "image/png"},
        )
        flat = _post(client, scan, phases="false").json()
        bad = _post(client, scan, internal_standard="corundum twenty")
        off_with_standard = _post(client, scan, phases="false", internal_standard="Corundum:20")
    n = len(profiles["two_theta_deg"])
    assert (
        n > 1000
        and len(profiles["scan"]) == len(profiles["residual"]) == len(profiles["d_angstrom"]) == n
    )
    assert all(len(p["profile"]) == n for p in profiles["phases"])
    reflections = [r for p in profiles["phases"] for r in p["reflections"]]
    assert reflections and all(len(r["hkl"]) == 3 for r in reflections)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert picture.content[:8] == b"\x89PNG\r\n\x1a\n" and len(picture.content) > 20_000
    assert flat["phases"] == [] and flat["fit"] is None and flat["candidates"]
    assert bad.status_code == 422 and "NAME:PERCENT" in bad.text
    assert off_with_standard.status_code == 422 and "leave phases on" in off_with_standard.text
