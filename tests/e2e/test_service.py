"""End to end: the service as a real uvicorn process on 127.0.0.1, on a
private copy of a small library (11 structures, 8 RockJock patterns)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.e2e.conftest import WRITE_KEY
from tests.e2e.support import (
    LIBRARY_COLUMNS,
    LIBRARY_STRUCTURES,
    NEW_STRUCTURE,
    Server,
    copy_library,
    rendered_query,
    rockjock_column_xy,
    running,
    untrained_checkpoint,
    xy_bytes,
)
from xrdid.data_paths import PROJECT_ROOT, shared_data_dir
from xrdid.embedder import Embedder
from xrdid.ranking import SERVED
from xrdid.references import prepare_structure

pytestmark = pytest.mark.slow

AUTH = {"X-API-Key": WRITE_KEY}
LIBRARY_SIZE = len(LIBRARY_STRUCTURES) + len(LIBRARY_COLUMNS)
PROBLEM = "application/problem+json"


def synthetic_xy(seed: int) -> bytes:
    """A measured-looking scan (peaks on a sloping background) unique to ``seed``."""
    rng = np.random.default_rng(seed)
    x = np.arange(8.0, 80.0, 0.02)
    y = 200.0 + 300.0 * np.exp(-x / 30.0)
    for center in rng.uniform(10.0, 78.0, 12):
        y += rng.uniform(200, 5000) * np.exp(-0.5 * ((x - center) / rng.uniform(0.04, 0.12)) ** 2)
    return xy_bytes(x, rng.poisson(y).astype(float))


def identify(client: httpx.Client, name: str, data: bytes, **form: str) -> httpx.Response:
    return client.post("/identify", files={"file": (name, data)}, data=form)


def add_measured(client: httpx.Client, seed: int, source: str = "e2e") -> httpx.Response:
    return client.post(
        "/references",
        files={"file": (f"synthetic-{seed}.xy", synthetic_xy(seed))},
        data={
            "name": f"synthetic {seed}",
            "source": source,
            "source_id": str(seed),
            "formula": "SiO2",
        },
        headers=AUTH,
    )


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, e2e_model: Path, e2e_library: Path
) -> Iterator[Server]:
    """One server for the tests that do not restart it."""
    tmp = tmp_path_factory.mktemp("shared-server")
    library = copy_library(e2e_library, tmp / "library.sqlite")
    env = {
        "XRDID_MODEL_PATH": str(e2e_model),
        "XRDID_LIBRARY_PATH": str(library),
        "XRDID_DEFAULT_LIBRARY_PATH": str(tmp / "none.sqlite"),
        "XRDID_WRITE_API_KEYS": WRITE_KEY,
        "XRDID_DEVICE": "cpu",
        "XRDID_LOG_LEVEL": "warning",
        "XRDID_MAX_UPLOAD_BYTES": str(2 * 1024 * 1024),
    }
    with running(env, tmp / "server.log") as process:
        yield process


# --------------------------------------------------------------------------- identify


def test_identify_a_measured_rockjock_pattern(server: Server) -> None:
    """A RockJock column exported as .xy finds its own measured reference."""
    with server.client() as client:
        response = identify(
            client, "quartz.xy", rockjock_column_xy("QUARTZ"), top_k="3", sample_id="S-17"
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sample_id"] == "S-17"
    best = body["candidates"][0]
    assert best["source_id"] == "rockjock_xrd#QUARTZ" and best["kind"] == "measured"
    assert best["similarity"] == pytest.approx(1.0, abs=1e-3)
    # Its own profile: the re-rank's correlation is 1 and the score the sum.
    assert best["profile_correlation"] == pytest.approx(1.0, abs=1e-3)
    assert best["score"] == pytest.approx(
        best["similarity"] + SERVED.profile_weight * best["profile_correlation"], abs=1e-3
    )
    assert [c["rank"] for c in body["candidates"]] == [1, 2, 3]
    scores = [c["score"] for c in body["candidates"]]
    assert scores == sorted(scores, reverse=True)
    query = body["query"]
    assert query["points"] == 3001 and query["two_theta_range_deg"] == [5.0, 65.0]
    assert query["wavelength"]["origin"] == "default"
    assert any("Cu Kα assumed" in w for w in query["warnings"])
    assert any("covers only 5.0–65.0°" in w for w in query["warnings"])
    assert body["library"]["size"] >= LIBRARY_SIZE
    timings = body["timings_ms"]
    assert timings["total_ms"] == pytest.approx(
        sum(timings[k] for k in ("read_ms", "preprocess_ms", "embed_ms", "search_ms", "phases_ms")),
        abs=0.01,
    )


def test_identify_a_real_xrdml_with_its_own_wavelength(server: Server) -> None:
    path = sorted((shared_data_dir() / "patterns" / "dara" / "precursor_mixtures").glob("*.xrdml"))[
        0
    ]
    with server.client() as client:
        response = identify(client, path.name, path.read_bytes())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"]["wavelength"]["origin"] == "file"
    assert body["query"]["wavelength"]["kalpha1_angstrom"] == pytest.approx(1.5406, abs=1e-3)
    assert len(body["candidates"]) == 5


@pytest.mark.parametrize(
    ("name", "sent"),
    [
        ("d5000_1.uxd", None),
        ("d5000_1.asc", None),
        ("d5000_1.udf", None),
        ("d5000_1.rd", None),
        ("d5000_1.cpi", None),
        ("d5000_1_pyfai_q.dat", None),
        ("d5000_1_pyfai_q.dat", "Cu"),
    ],
)
def test_text_exports_are_read_at_the_radiation_they_state(
    server: Server, name: str, sent: str | None
) -> None:
    """A Bruker .uxd, a Rigaku .asc, a Philips .udf and .rd, a Sietronics
    .cpi and a pyFAI q-axis export of the same Co Kα scan: each answers at
    Co Kα from its header; a wavelength sent with the q axis is not used,
    and the answer says so."""
    data = (PROJECT_ROOT / "tests" / "files" / "patterns" / name).read_bytes()
    form = {"wavelength": sent} if sent else {}
    with server.client() as client:
        response = identify(client, name, data, **form)
    assert response.status_code == 200, response.text
    query = response.json()["query"]
    assert query["wavelength"]["origin"] == "file"
    assert query["wavelength"]["kalpha1_angstrom"] == pytest.approx(1.78897, abs=1e-5)
    assert any("the wavelength sent was not used" in w for w in query["warnings"]) is bool(sent)


def test_a_fit2d_chi_file_is_answered_as_its_scan(server: Server) -> None:
    """Fit2D's .chi of the Co Kα scan states no wavelength: sent as Co, it
    gets the answer the .uxd (which states it) gets."""
    patterns = PROJECT_ROOT / "tests" / "files" / "patterns"
    with server.client() as client:
        chi = identify(
            client, "scan.chi", (patterns / "d5000_1_fit2d.chi").read_bytes(), wavelength="Co"
        )
        uxd = identify(client, "scan.uxd", (patterns / "d5000_1.uxd").read_bytes())
    assert chi.status_code == 200, chi.text
    assert chi.json()["query"]["wavelength"]["origin"] == "request"

    def answer(response: httpx.Response) -> list[str]:
        return [p["reference"]["name"] for p in response.json()["phases"]]

    assert answer(chi) and answer(chi) == answer(uxd)


def test_element_filters_are_exact(server: Server) -> None:
    with server.client() as client:
        data = rockjock_column_xy("QUARTZ")
        only_si = identify(client, "q.xy", data, top_k="10", elements_all="Si").json()["candidates"]
        assert {c["source_id"] for c in only_si} >= {"Si", "SiC"}
        assert all("Si" in c["elements"] for c in only_si)
        no_si = identify(client, "q.xy", data, top_k="100", elements_none="Si").json()["candidates"]
        assert no_si and all("Si" not in c["elements"] and c["elements"] for c in no_si)
        only = identify(client, "q.xy", data, top_k="100", elements_only="C,Si").json()[
            "candidates"
        ]
        assert {c["source_id"] for c in only} == {"Si", "SiC", "diamond"}


# --------------------------------------------------------------------------- bad input

BAD_INPUTS = [
    # (description, filename, content, form, status, text in detail)
    ("binary junk", "scan.xy", bytes(range(256)) * 20, {}, 415, "binary"),
    ("empty file", "scan.xy", b"", {}, 422, "empty"),
    ("prose", "scan.txt", b"hello\nthis is not a pattern\n" * 10, {}, 422, ""),
    ("NaN values", "scan.xy", b"".join(b"%d nan\n" % i for i in range(10, 90)), {}, 422, "NaN"),
    ("too few points", "scan.xy", b"10 1\n20 5\n30 2\n", {}, 422, "at least 50"),
    (
        "2θ in radians",
        "scan.xy",
        xy_bytes(np.linspace(0.1, 1.5, 500), np.arange(500.0) % 7),
        {},
        422,
        "at least 5",
    ),
    (
        "huge values",
        "scan.xy",
        b"".join(b"%d %s\n" % (i, b"1e308" if i % 2 else b"-1e308") for i in range(10, 90)),
        {},
        422,
        "floating point",
    ),
    (
        "truncated xrdml",
        "scan.xrdml",
        b"<?xml version='1.0'?><xrdMeasurements><xrdMeasurement><scan>",
        {},
        422,
        "",
    ),
    ("wavelength in nm", "scan.xy", None, {"wavelength": "0.154"}, 422, "looks like nanometres"),
    ("wavelength in pm", "scan.xy", None, {"wavelength": "154"}, 422, "looks like picometres"),
    ("unknown anode", "scan.xy", None, {"wavelength": "Xx"}, 422, "unknown anode"),
    (
        "wrong anode for the scan",  # 60–80° at Mo maps beyond the Cu Kα grid
        "scan.xy",
        xy_bytes(np.arange(60.0, 80.0, 0.02), 100 + np.arange(1000.0) % 17),
        {"wavelength": "Mo"},
        422,
        "Check the wavelength",
    ),
    (
        "unknown element",
        "scan.xy",
        None,
        {"elements_all": "Fe,Xx"},
        422,
        "'Xx' is not an element symbol",
    ),
    (
        "contradictory elements",
        "scan.xy",
        None,
        {"elements_all": "Fe", "elements_none": "Fe"},
        422,
        "cannot be both",
    ),
    ("top_k 0", "scan.xy", None, {"top_k": "0"}, 422, "top_k"),
    ("top_k too big", "scan.xy", None, {"top_k": "1000"}, 422, "top_k"),
    ("top_k not a number", "scan.xy", None, {"top_k": "five"}, 422, "top_k"),
    ("unknown baseline", "scan.xy", None, {"baseline": "magic"}, 422, "baseline"),
]


@pytest.mark.parametrize(
    ("filename", "content", "form", "status", "text"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_identify_inputs(
    server: Server,
    filename: str,
    content: bytes | None,
    form: dict[str, str],
    status: int,
    text: str,
) -> None:
    data = synthetic_xy(1) if content is None else content
    with server.client() as client:
        response = identify(client, filename, data, **form)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status and problem["type"].startswith("urn:xrdid:problem:")
    assert text in problem["detail"], problem["detail"]


def test_other_bad_requests(server: Server) -> None:
    with server.client() as client:
        cases: list[tuple[httpx.Response, int, str]] = [
            (client.post("/identify", data={"top_k": "3"}), 422, "send the file"),
            (client.post("/identify", json={"file": "x"}), 422, "file"),
            (
                client.post("/identify", files={"file": ("big.xy", b"1 2\n" * 700_000)}),
                413,
                "exceeds the limit",
            ),
            (client.get("/references/abc"), 422, "reference_id"),
            (client.get("/references/99999999"), 404, "no reference with id 99999999"),
            (client.delete("/references/1"), 401, "X-API-Key"),
            (client.delete("/references/1", headers={"X-API-Key": "wrong"}), 403, "does not allow"),
            (
                client.post(
                    "/references",
                    files={"file": ("m.xy", synthetic_xy(3))},
                    headers=AUTH,
                ),
                422,
                "needs a name",
            ),
            (
                client.post(
                    "/references",
                    files={"file": ("bad.cif", b"data_x\n_cell_length_a 5\n")},
                    headers=AUTH,
                ),
                422,
                "",
            ),
            (
                client.post(
                    "/references",
                    files={"file": ("m.xy", synthetic_xy(3))},
                    data={"name": "x", "formula": "Qz2"},
                    headers=AUTH,
                ),
                422,
                "not a chemical formula",
            ),
            (client.put("/identify"), 405, "use POST"),
            (client.get("/nothing-here"), 404, "/docs"),
        ]
    for response, status, text in cases:
        assert response.status_code == status, (response.request.url, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert text in response.json()["detail"], response.json()
    assert cases[5][0].headers["www-authenticate"].startswith("ApiKey")


# --------------------------------------------------------------------------- references


def test_added_structure_is_found_survives_restart_and_deletes(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    cif = shared_data_dir() / "structures" / NEW_STRUCTURE
    # The query: the structure rendered as the library renders it.
    query = rendered_query(prepare_structure(cif.read_bytes(), cif.name).pattern)  # type: ignore[arg-type]
    server = Server(server_env, tmp_path / "server.log").start()
    try:
        with server.client() as client:
            created = client.post(
                "/references",
                files={"file": (cif.name, cif.read_bytes())},
                data={"source": "cod", "source_id": "copper-e2e", "notes": "added by the e2e test"},
                headers=AUTH,
            )
            assert created.status_code == 201, created.text
            reference = created.json()
            rid = reference["id"]
            assert created.headers["location"] == f"/references/{rid}"
            assert reference["kind"] == "calculated" and reference["formula"] == "Cu"
            assert reference["space_group"] == "Fm-3m" and reference["elements"] == ["Cu"]
            best = identify(client, "cu.xy", query).json()["candidates"][0]
            assert best["reference_id"] == rid and best["similarity"] == pytest.approx(
                1.0, abs=1e-3
            )
            again = client.post(
                "/references",
                files={"file": (cif.name, cif.read_bytes())},
                data={"source": "cod", "source_id": "copper-e2e"},
                headers=AUTH,
            )
            assert again.status_code == 409 and again.json()["existing_id"] == rid
        server.stop()
        server.start()
        with server.client() as client:
            best = identify(client, "cu.xy", query).json()["candidates"][0]
            assert best["reference_id"] == rid
            detail = client.get(f"/references/{rid}").json()
            assert detail["notes"] == "added by the e2e test"
            sticks = detail["pattern"]
            assert sticks["type"] == "sticks" and [1, 1, 1] in sticks["hkl"]
            assert max(sticks["relative_intensity"]) == pytest.approx(100.0)
            listed = client.get(
                "/references", params={"name": "copper", "elements_all": "Cu"}
            ).json()
            assert [item["id"] for item in listed["items"]] == [rid] or rid in [
                item["id"] for item in listed["items"]
            ]
            assert client.delete(f"/references/{rid}", headers=AUTH).status_code == 204
            assert client.get(f"/references/{rid}").status_code == 404
            assert client.delete(f"/references/{rid}", headers=AUTH).status_code == 404
            best = identify(client, "cu.xy", query).json()["candidates"][0]
            assert best["reference_id"] != rid
            ready = client.get("/ready").json()
            assert ready["library_size"] == ready["database_size"] == LIBRARY_SIZE
    finally:
        server.stop()


def test_parallel_identifies_and_adds(server: Server) -> None:
    """Identifications and additions from several threads at once: every
    request succeeds and every addition is stored and searchable."""
    statuses: list[int] = []
    added: dict[int, int] = {}
    lock = threading.Lock()
    query = rockjock_column_xy("CALCITE")

    def identifier() -> None:
        with server.client() as client:
            for _ in range(6):
                response = identify(client, "calcite.xy", query, top_k="3")
                with lock:
                    statuses.append(response.status_code)

    def adder(worker: int) -> None:
        with server.client() as client:
            for i in range(4):
                seed = 1000 + 10 * worker + i
                response = add_measured(client, seed, source="parallel")
                with lock:
                    statuses.append(response.status_code)
                    if response.status_code == 201:
                        added[seed] = response.json()["id"]

    threads = [threading.Thread(target=identifier) for _ in range(4)]
    threads += [threading.Thread(target=adder, args=(w,)) for w in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(statuses)) == [200, 201], statuses
    assert len(added) == 8
    with server.client() as client:
        listed = client.get("/references", params={"name": "synthetic", "limit": 100}).json()
        assert {item["id"] for item in listed["items"]} >= set(added.values())
        for seed, rid in list(added.items())[:3]:
            best = identify(client, "s.xy", synthetic_xy(seed)).json()["candidates"][0]
            assert best["reference_id"] == rid


# Trials of kill -9 while adds are in flight (issue 17 asked for 20).
KILL_TRIALS = 20


def adds_until_killed(server: Server, first_seed: int, at_least: int) -> dict[int, int]:
    """Add from three threads, SIGKILL the server once ``at_least`` adds are
    acknowledged; the acknowledged ones (seed -> id)."""
    acknowledged: dict[int, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def adder(worker: int) -> None:
        with server.client(timeout=10.0) as client:
            seed = first_seed + 300 * worker
            while not stop.is_set():
                try:
                    response = add_measured(client, seed, source="kill9")
                except httpx.HTTPError:
                    return  # the server died during this request: not acknowledged
                if response.status_code == 201:
                    with lock:
                        acknowledged[seed] = response.json()["id"]
                seed += 1

    threads = [threading.Thread(target=adder, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < at_least and time.monotonic() < deadline:
        time.sleep(0.02)
    server.kill()  # SIGKILL while adds are in flight
    stop.set()
    for thread in threads:
        thread.join()
    return acknowledged


def test_kill_9_during_adds_loses_no_acknowledged_reference(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    server = Server(server_env, tmp_path / "server.log")
    acknowledged: dict[int, int] = {}
    for trial in range(KILL_TRIALS):
        server.start()
        if trial:  # what the previous trials acknowledged is there, and the index agrees
            with server.client() as client:
                ready = client.get("/ready").json()
                assert ready["library_size"] == ready["database_size"]
                assert ready["database_size"] >= LIBRARY_SIZE + len(acknowledged)
        acknowledged |= adds_until_killed(server, 5000 + 1000 * trial, at_least=2)
    assert len(acknowledged) >= 2 * KILL_TRIALS
    try:
        server.start()
        with server.client() as client:
            for seed, rid in acknowledged.items():
                response = client.get(f"/references/{rid}", params={"pattern": "false"})
                assert response.status_code == 200, (seed, rid)
                assert response.json()["source_id"] == str(seed)
            ready = client.get("/ready").json()
            # The index agrees with the database (patched on start).
            assert (
                ready["library_size"] == ready["database_size"] >= LIBRARY_SIZE + len(acknowledged)
            )
            for seed, rid in list(acknowledged.items())[-3:]:
                best = identify(client, "s.xy", synthetic_xy(seed)).json()["candidates"][0]
                assert best["reference_id"] == rid
    finally:
        server.stop()


# --------------------------------------------------------------------------- startup


def test_first_start_copies_the_default_library(
    server_env: dict[str, str], e2e_library: Path, tmp_path: Path
) -> None:
    target = tmp_path / "fresh" / "library.sqlite"
    default_bytes = e2e_library.read_bytes()
    env = {
        **server_env,
        "XRDID_LIBRARY_PATH": str(target),
        "XRDID_DEFAULT_LIBRARY_PATH": str(e2e_library),
    }
    with running(env, tmp_path / "server.log") as server, server.client() as client:
        assert client.get("/ready").json()["library_size"] == LIBRARY_SIZE
        assert add_measured(client, 77).status_code == 201
    assert target.is_file()
    assert e2e_library.read_bytes() == default_bytes  # the shipped file is never written


def test_new_model_reembeds_the_library_on_start(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    other = untrained_checkpoint(tmp_path / "other-model.pt", seed=123)
    version = Embedder.load(other, device="cpu").version
    env = {**server_env, "XRDID_MODEL_PATH": str(other)}
    with running(env, tmp_path / "server.log") as server, server.client() as client:
        ready = client.get("/ready").json()
        assert ready["model_version"] == version
        assert ready["library_size"] == ready["database_size"] == LIBRARY_SIZE
        best = identify(client, "q.xy", rockjock_column_xy("DOLOMITE")).json()["candidates"][0]
        assert best["source_id"] == "rockjock_xrd#DOLOMITE"


def test_health_ready_metrics_and_docs(server: Server) -> None:
    with server.client() as client:
        assert client.get("/health").json() == {"status": "alive"}
        ready = client.get("/ready").json()
        assert ready["status"] == "ready" and ready["device"] == "cpu"
        identify(client, "q.xy", rockjock_column_xy("HALITE"))
        metrics = client.get("/metrics").text
        assert 'xrdid_http_requests_total{method="POST",route="/identify",status="200"}' in metrics
        assert 'xrdid_identify_stage_seconds_count{stage="preprocess"}' in metrics
        assert "xrdid_library_references " in metrics and "xrdid_ready 1.0" in metrics
        assert client.get("/docs").status_code == 200
        openapi = client.get("/openapi.json").json()
        assert "/identify" in openapi["paths"] and "/references/{reference_id}" in openapi["paths"]


SHIPPED_LIBRARY = PROJECT_ROOT / "model_store" / "library.sqlite"


@pytest.mark.parametrize(
    ("relative", "formula"),
    [
        ("powdr_minerals/quartz.xy", "SiO2"),
        ("xrd_autoanalyzer/TiO2.xy", "TiO2"),
    ],
)
def test_real_scan_is_identified_on_the_shipped_library(
    server_env: dict[str, str], tmp_path: Path, patterns_dir: Path, relative: str, formula: str
) -> None:
    """A fresh install (shipped model and default library) names the material
    of a real measured scan among its top 5."""
    env = {
        **server_env,
        "XRDID_LIBRARY_PATH": str(tmp_path / "fresh" / "library.sqlite"),
        "XRDID_DEFAULT_LIBRARY_PATH": str(SHIPPED_LIBRARY),
    }
    path = patterns_dir / relative
    with running(env, tmp_path / "server.log") as server, server.client() as client:
        reply = client.post("/identify", files={"file": (path.name, path.read_bytes())})
    assert reply.status_code == 200, reply.text
    formulas = [c["formula"] for c in reply.json()["candidates"]]
    assert formula in formulas, formulas


def test_a_real_mixture_gets_its_phases_amounts_and_symmetric_cells(
    server_env: dict[str, str], tmp_path: Path, patterns_dir: Path
) -> None:
    """A weighed three-phase dara mixture (anatase 50.25, Li2CO3 29.99, NiO
    20.30 wt%, in its name) on the shipped library: each phase once, its
    amount within 10 wt%, and each fitted cell as symmetric as its reference's
    space group (the fit's tensor strains a tetragonal cell's a and b alike)."""
    env = {
        **server_env,
        "XRDID_LIBRARY_PATH": str(tmp_path / "fresh" / "library.sqlite"),
        "XRDID_DEFAULT_LIBRARY_PATH": str(SHIPPED_LIBRARY),
    }
    mixture = "NiO_0p2030-Li2CO3_0p2999-TiO2_0p5025--8min.xrdml"
    path = patterns_dir / "dara" / "precursor_mixtures" / mixture
    with running(env, tmp_path / "server.log") as server, server.client() as client:
        reply = client.post("/identify", files={"file": (path.name, path.read_bytes())})
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["verdict"] == "mixture"
    amounts = {p["reference"]["formula"]: p["weight_percent"] for p in answer["phases"]}
    assert set(amounts) == {"TiO2", "Li2CO3", "NiO"}, amounts
    for formula, weighed in (("TiO2", 50.25), ("Li2CO3", 29.99), ("NiO", 20.30)):
        assert abs(amounts[formula] - weighed) <= 10.0, amounts
    for phase in answer["phases"]:
        cell = phase["cell"]
        assert cell is not None, phase["reference"]
        _assert_symmetric(cell, phase["reference"]["space_group_number"])


def _assert_symmetric(cell: dict[str, float], space_group: int | None) -> None:
    """The lattice constraints of the space group's crystal system."""
    assert space_group is not None, cell  # every calculated reference here has one
    a, b, c = cell["a"], cell["b"], cell["c"]
    angles = (cell["alpha"], cell["beta"], cell["gamma"])
    if space_group >= 195:  # cubic
        assert a == b == c and angles == (90, 90, 90), cell
    elif space_group >= 143:  # trigonal (hexagonal or rhombohedral axes), hexagonal
        assert (a == b and angles == (90, 90, 120)) or (
            a == b == c and angles[0] == angles[1] == angles[2]
        ), cell
    elif space_group >= 75:  # tetragonal
        assert a == b and angles == (90, 90, 90), cell
    elif space_group >= 16:  # orthorhombic
        assert angles == (90, 90, 90), cell
    elif space_group >= 3:  # monoclinic (unique axis b or c)
        assert sorted(angles).count(90) >= 2, cell
