"""The HTTP layer in-process: settings, API keys, body limits, problem+json,
and a fuzz that no input yields a 500."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.core.config import Settings
from app.core.errors import XRDID_PROBLEMS, xrdid_problem
from app.main import create_app
from app.models import IDENTIFY_EXAMPLE, IdentifyResponse
from tests.e2e.support import build_library, model_path, xy_bytes
from xrdid.data_paths import PROJECT_ROOT
from xrdid.errors import PatternReadError, UnsupportedFormatError
from xrdid.library import DuplicateReferenceError
from xrdid.ranking import SERVED
from xrdid.readers import SUPPORTED_FORMATS
from xrdid.references import prepare_structure

with warnings.catch_warnings():  # starlette's TestClient warns about httpx on import
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

READ_KEY = "read-key-0123456789abcdef"
WRITE_KEY = "write-key-0123456789abcdef"
PROBLEM = "application/problem+json"
TEST_PATTERNS = PROJECT_ROOT / "tests" / "files" / "patterns"


@pytest.fixture(scope="module")
def small_library(
    tmp_path_factory: pytest.TempPathFactory, structures_dir: Path
) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("app")
    model = model_path(tmp)
    library = tmp / "library.sqlite"
    prepared = [
        prepare_structure(
            (structures_dir / "elements" / name).read_bytes(),
            name,
            source="elements",
            source_id=name,
        )
        for name in ("Si.cif", "Al.cif", "Fe.cif")
    ]
    build_library(library, model, prepared)
    return model, library


def make_settings(tmp_path: Path, model: Path, library: Path, **overrides: object) -> Settings:
    work = tmp_path / "work.sqlite"
    if not work.exists():
        work.write_bytes(library.read_bytes())
    values: dict[str, object] = {
        "model_path": model,
        "library_path": work,
        "default_library_path": tmp_path / "none.sqlite",
        "write_api_keys": WRITE_KEY,
        "read_api_keys": READ_KEY,
        "device": "cpu",
        "max_upload_bytes": 200_000,
        "log_level": "warning",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if client.get("/ready").status_code == 200:
            return
        time.sleep(0.05)
    raise TimeoutError(client.get("/ready").text)


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, small_library: tuple[Path, Path]
) -> Iterator[TestClient]:
    model, library = small_library
    app = create_app(make_settings(tmp_path_factory.mktemp("client"), model, library))
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client


def scan(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    x = np.arange(10.0, 80.0, 0.02)
    y = 100 + sum(
        rng.uniform(100, 1000) * np.exp(-0.5 * ((x - c) / 0.1) ** 2) for c in rng.uniform(12, 78, 8)
    )
    return xy_bytes(x, y)


def assert_problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == PROBLEM  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status and str(body["type"]).startswith("urn:xrdid:problem:")
    assert body["detail"]
    return body


# --------------------------------------------------------------------------- settings


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XRDID_WRITE_API_KEYS", " a-long-enough-key-1 , a-long-enough-key-2 ")
    monkeypatch.setenv("XRDID_MAX_UPLOAD_BYTES", "123456")
    monkeypatch.setenv("XRDID_DEVICE", "")
    loaded = Settings()
    assert [k.get_secret_value() for k in loaded.write_api_keys] == [
        "a-long-enough-key-1",
        "a-long-enough-key-2",
    ]
    assert loaded.max_upload_bytes == 123456 and loaded.device is None
    assert loaded.key_allows("a-long-enough-key-2", write=True)
    assert not loaded.key_allows("a-long-enough-key", write=True)


def test_search_is_approximate_from_200k_references_unless_asked_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Approximate search kept exact search's top-5 at 200,000 and a million
    references (docs/scale-out.md): it is the default from 200,000 on."""
    from xrdid.library import SearchSettings

    monkeypatch.delenv("XRDID_SEARCH_MODE", raising=False)
    assert Settings().search_mode == "auto"
    assert not SearchSettings().approximate_for(199_999)
    assert SearchSettings().approximate_for(200_000)
    monkeypatch.setenv("XRDID_SEARCH_MODE", "exact")
    assert Settings().search_mode == "exact"
    assert not SearchSettings(mode="exact").approximate_for(10_000_000)


def test_worker_role_needs_the_shared_queue_and_serves_no_api() -> None:
    from app.main import create_app

    with pytest.raises(ValidationError, match="XRDID_DATABASE_URL"):
        Settings(role="worker")  # type: ignore[arg-type]
    worker = Settings(role="worker", database_url="postgresql://x@db/x")  # type: ignore[arg-type]
    client = TestClient(create_app(worker))  # no lifespan: nothing loads
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 200
    for method, path in [("POST", "/identify"), ("POST", "/jobs"), ("GET", "/references"),
                         ("GET", "/audit"), ("GET", "/")]:  # fmt: skip
        assert client.request(method, path).status_code == 404, path


# In a process of its own: OpenBLAS takes a thread count set in the main
# thread over any set later in another (the test client starts the service
# in a thread of its own; uvicorn starts it in the main thread).
THREADS_AT_STARTUP = """
import json, time
import torch
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_info
from app.core.config import Settings
from app.core.state import configure_threads
from app.main import create_app

def blas_threads():
    # numpy's and scipy's OpenBLAS; FAISS's runs on OpenMP, set per thread where it searches.
    return [p["num_threads"] for p in threadpool_info()
            if p["user_api"] == "blas" and p.get("threading_layer") != "openmp"]

before = blas_threads()
with TestClient(create_app()) as client:
    while client.get("/ready").status_code != 200:
        time.sleep(0.05)
    after = blas_threads()
configure_threads(Settings(blas_threads=3))
print(json.dumps({"before": before, "after": after, "torch": torch.get_num_threads(),
                  "set_to_3": blas_threads()}))
"""


def test_startup_sets_the_threads_per_torch_and_blas_call(
    small_library: tuple[Path, Path], tmp_path: Path
) -> None:
    """numpy's and scipy's OpenBLAS start a thread per core; each compute
    thread's products then wait for a free core and spin (docs/scale-out.md:
    about twice the CPU time per scan). The service sets them to
    XRDID_BLAS_THREADS (default 1) at startup."""
    import json
    import os
    import subprocess
    import sys

    model, library = small_library
    work = tmp_path / "work.sqlite"
    work.write_bytes(library.read_bytes())
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "2",  # as on 2 cores, whatever this machine has
        "XRDID_MODEL_PATH": str(model),
        "XRDID_LIBRARY_PATH": str(work),
        "XRDID_DEFAULT_LIBRARY_PATH": str(tmp_path / "none.sqlite"),
        "XRDID_DEVICE": "cpu",
        "XRDID_LOG_LEVEL": "warning",
    }
    run = subprocess.run(
        [sys.executable, "-c", THREADS_AT_STARTUP],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    threads = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(threads["before"]) >= 2 and set(threads["before"]) == {2}  # numpy's, scipy's
    assert threads["after"] == [1] * len(threads["before"])
    assert threads["torch"] == 1
    assert threads["set_to_3"] == [3] * len(threads["before"])


def test_settings_database_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Unset or empty: the SQLite file; a postgresql:// URL: the database; else refused."""
    monkeypatch.setenv("XRDID_LIBRARY_PATH", str(tmp_path / "library.sqlite"))
    monkeypatch.setenv("XRDID_DATABASE_URL", "")
    assert Settings().library_location == tmp_path / "library.sqlite"
    url = "postgresql://xrdid:pw-S3cr3t-9@db:5432/xrdid"
    monkeypatch.setenv("XRDID_DATABASE_URL", url)
    loaded = Settings()
    assert loaded.library_location == url and "pw-S3cr3t-9" not in repr(loaded)
    monkeypatch.setenv("XRDID_DATABASE_URL", "mysql://db/xrdid")
    with pytest.raises(ValidationError, match="must be a postgresql:// URL"):
        Settings()


def test_settings_refuse_weak_keys_in_production() -> None:
    with pytest.raises(ValidationError, match="placeholder or shorter"):
        Settings(environment="production", write_api_keys="changethis")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="no XRDID_READ_API_KEYS"):
        Settings(require_read_key=True)
    with pytest.raises(ValidationError):
        Settings(default_top_k=0)


def test_every_error_class_has_a_status() -> None:
    statuses = {cls.__name__: status for cls, status, _, _ in XRDID_PROBLEMS}
    assert statuses["UnsupportedFormatError"] == 415 and statuses["PatternReadError"] == 422
    response = xrdid_problem(
        PatternReadError("bad number", source="a.xy", line=12, field="intensity")
    )
    assert response.status_code == 422
    assert b'"line":12' in response.body and b'"field":"intensity"' in response.body
    assert xrdid_problem(UnsupportedFormatError("?")).status_code == 415
    assert xrdid_problem(DuplicateReferenceError("s", "i", 3)).status_code == 409


# --------------------------------------------------------------------------- HTTP behaviour


def test_identify_in_process(client: TestClient) -> None:
    response = client.post(
        "/identify", files={"file": ("scan.xy", scan())}, data={"top_k": "2", "elements_all": "si"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [c["formula"] for c in body["candidates"]] == ["Si"]  # the only Si reference
    assert body["query"]["points"] == 3500


def test_writes_need_a_write_key(client: TestClient, structures_dir: Path) -> None:
    cif = (structures_dir / "elements" / "Cu.cif").read_bytes()
    files = {"file": ("Cu.cif", cif)}
    assert_problem(client.post("/references", files=files), 401)
    body = assert_problem(
        client.post("/references", files=files, headers={"X-API-Key": READ_KEY}), 403
    )
    assert "does not allow" in str(body["detail"])
    created = client.post("/references", files=files, headers={"X-API-Key": WRITE_KEY})
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    assert created.headers["location"] == f"/references/{rid}"
    conflict = assert_problem(
        client.post("/references", files=files, headers={"X-API-Key": WRITE_KEY}), 409
    )
    assert conflict["existing_id"] == rid
    assert client.delete(f"/references/{rid}", headers={"X-API-Key": WRITE_KEY}).status_code == 204


def test_reads_can_require_a_key(tmp_path: Path, small_library: tuple[Path, Path]) -> None:
    model, library = small_library
    app = create_app(make_settings(tmp_path, model, library, require_read_key=True))
    with TestClient(app) as test_client:
        wait_ready(test_client)
        assert_problem(test_client.get("/references"), 401)
        assert_problem(test_client.get("/references", headers={"X-API-Key": "nope"}), 403)
        for key in (READ_KEY, WRITE_KEY):
            assert test_client.get("/references", headers={"X-API-Key": key}).status_code == 200
        assert test_client.get("/health").status_code == 200  # operations stay open
        spec = test_client.get("/openapi.json").json()  # says that reads need the key here
        for path, method in (("/references", "get"), ("/identify", "post"), ("/jobs", "post")):
            assert spec["paths"][path][method]["security"] == [{"APIKeyHeader": []}]


def test_writes_disabled_without_configured_keys(
    tmp_path: Path, small_library: tuple[Path, Path]
) -> None:
    model, library = small_library
    app = create_app(make_settings(tmp_path, model, library, write_api_keys=""))
    with TestClient(app) as test_client:
        wait_ready(test_client)
        body = assert_problem(
            test_client.delete("/references/1", headers={"X-API-Key": "anything"}), 403
        )
        assert "writes are disabled" in str(body["detail"])


def test_upload_limit_declared_and_streamed(client: TestClient) -> None:
    big = b"10.00 1\n" * 40_000  # 320 kB > 200 kB + form allowance
    body = assert_problem(client.post("/identify", files={"file": ("big.xy", big)}), 413)
    assert "exceeds the limit" in str(body["detail"])

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(40):
            yield b"x" * 10_000

    streamed = client.post(
        "/identify", content=chunks(), headers={"content-type": "multipart/form-data; boundary=zz"}
    )
    assert_problem(streamed, 413)


def test_not_ready_until_loaded_and_failure_reported(
    tmp_path: Path, small_library: tuple[Path, Path]
) -> None:
    _, library = small_library
    app = create_app(make_settings(tmp_path, tmp_path / "missing.pt", library))
    with TestClient(app) as test_client:
        assert test_client.get("/health").json() == {"status": "alive"}
        deadline = time.monotonic() + 30
        while "failed" not in test_client.get("/ready").text and time.monotonic() < deadline:
            time.sleep(0.05)
        body = assert_problem(test_client.get("/ready"), 503)
        assert "no model checkpoint" in str(body["detail"])
        assert_problem(test_client.post("/identify", files={"file": ("a.xy", scan())}), 503)
        assert "xrdid_ready 0.0" in test_client.get("/metrics").text


def test_openapi_documents_forms_examples_problems_and_keys(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    identify = spec["paths"]["/identify"]["post"]
    assert {"415", "422", "413", "503"} <= set(identify["responses"])
    assert "application/problem+json" in identify["responses"]["422"]["content"]
    schemas = spec["components"]["schemas"]
    answer = schemas["IdentifyResponse"]["examples"][0]
    # The example is a valid answer (FastAPI's schema leaves out its nulls).
    IdentifyResponse.model_validate(IDENTIFY_EXAMPLE)
    assert answer["phases"] == _without_nulls(IDENTIFY_EXAMPLE["phases"])
    assert answer["verdict"] == "mixture" and len(answer["phases"]) == 3
    example = answer["candidates"][0]
    assert example["score"] == pytest.approx(
        example["similarity"] + SERVED.profile_weight * example["profile_correlation"], abs=1e-4
    )
    candidate = schemas["CandidatePublic"]["properties"]
    assert f"+ {SERVED.profile_weight} ×" in candidate["score"]["description"]
    form = schemas["IdentifyUpload"]["properties"]  # one flat body: the file beside the options
    assert form["wavelength"]["examples"] == ["Cu"] and "'maximum': 100" in str(form["top_k"])
    assert form["file"]["format"] == "binary" and "allOf" not in schemas["IdentifyUpload"]
    assert "APIKeyHeader" in spec["components"]["securitySchemes"]
    assert client.get("/docs").status_code == 200


# --------------------------------------------------------------------------- fuzz: never a 500

EXTENSIONS = [*SUPPORTED_FORMATS, "", ".bin", ".str", ".CIF"]
ACCEPTED = {200, 415, 422}


def check_never_500(response: object) -> None:
    status = response.status_code  # type: ignore[attr-defined]
    assert status in ACCEPTED, (status, response.text[:500])  # type: ignore[attr-defined]
    if status != 200:
        assert response.headers["content-type"] == PROBLEM  # type: ignore[attr-defined]


FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(data=st.binary(max_size=4000), extension=st.sampled_from(EXTENSIONS))
def test_fuzz_random_bytes(client: TestClient, data: bytes, extension: str) -> None:
    check_never_500(client.post("/identify", files={"file": (f"f{extension}", data)}))


def _format_samples() -> list[Path]:
    samples = sorted(p for p in TEST_PATTERNS.glob("*") if p.is_file())
    return samples or [PROJECT_ROOT / "tests" / "test_app.py"]


@FUZZ
@given(
    sample=st.sampled_from(_format_samples()),
    cut=st.floats(min_value=0.0, max_value=1.0),
    flip=st.integers(min_value=0, max_value=2**31),
)
def test_fuzz_truncated_and_corrupted_files_of_every_format(
    client: TestClient, sample: Path, cut: float, flip: int
) -> None:
    data = bytearray(sample.read_bytes())
    data = data[: int(len(data) * cut)]
    if data and flip % 3 == 0:  # also flip one byte
        data[flip % len(data)] ^= 0xFF
    check_never_500(client.post("/identify", files={"file": (sample.name, bytes(data))}))


number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -1.0, 1e308, -1e308, 1e-308, 180.0, 90.0, 5.0]),
)


@FUZZ
@given(values=st.lists(st.tuples(number, number), min_size=0, max_size=120), sort=st.booleans())
def test_fuzz_numeric_columns(
    client: TestClient, values: list[tuple[float, float]], sort: bool
) -> None:
    if sort:
        values = sorted(values, key=lambda v: (np.nan_to_num(v[0]), v[1]))
    text = "".join(f"{a!r} {b!r}\n" for a, b in values).encode()
    check_never_500(client.post("/identify", files={"file": ("n.xy", text)}))


text_field = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.sampled_from(["0.154", "154", "Cu", "mo", "1.5406", "-1", "nan", "inf", "1e400"]),
)


@FUZZ
@given(
    top_k=st.one_of(st.none(), st.integers(-5, 200).map(str), st.text(max_size=5)),
    wavelength=text_field,
    elements=text_field,
    baseline=st.one_of(st.none(), st.sampled_from(["beads", "snip", "none", "BEADS", "x"])),
)
def test_fuzz_form_values(
    client: TestClient,
    top_k: str | None,
    wavelength: str | None,
    elements: str | None,
    baseline: str | None,
) -> None:
    form = {
        k: v
        for k, v in {
            "top_k": top_k,
            "wavelength": wavelength,
            "elements_only": elements,
            "baseline": baseline,
        }.items()
        if v is not None
    }
    check_never_500(client.post("/identify", files={"file": ("s.xy", scan(1))}, data=form))


def _structure_samples() -> list[Path]:
    from xrdid.data_paths import shared_data_dir

    root = shared_data_dir() / "structures"
    return [
        root / "elements" / "Si.cif",
        root / "cod" / "9006041.cif",
        root / "bgmn" / "BGMN" / "Huebnerite.str",
        root / "bgmn" / "Minerals" / "Periclase.str",
    ]


@FUZZ
@given(
    sample=st.sampled_from(_structure_samples()),
    cut=st.floats(min_value=0.0, max_value=1.0),
    flip=st.integers(min_value=0, max_value=2**31),
)
def test_fuzz_truncated_and_corrupted_structures(
    client: TestClient, sample: Path, cut: float, flip: int
) -> None:
    data = bytearray(sample.read_bytes())
    data = data[: int(len(data) * cut)]
    if data and flip % 2 == 0:
        data[flip % len(data)] = (data[flip % len(data)] + 1 + flip % 200) % 256
    response = client.post(
        "/references",
        files={"file": (sample.name, bytes(data))},
        data={"source": "fuzz", "source_id": f"{sample.name}-{len(data)}-{flip}"},
        headers={"X-API-Key": WRITE_KEY},
    )
    assert response.status_code in {201, 409, 415, 422}, (response.status_code, response.text[:500])
    if response.status_code == 201:
        client.delete(f"/references/{response.json()['id']}", headers={"X-API-Key": WRITE_KEY})


def _without_nulls(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
