"""Stateless replicas: two uvicorn processes on one real PostgreSQL database
(the small e2e library, and a small Raman library, copied into it with
``indexer migrate-to-postgres``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from indexer.build_raman import build
from indexer.migrate_to_postgres import migrate_library
from tests.e2e.conftest import WRITE_KEY
from tests.e2e.support import NEW_STRUCTURE, Server, copy_library, rendered_query
from tests.e2e.test_raman import FORSTERITE_QUERY, MINERALS, MODEL_STORE, add_forsterite, spectrum
from tests.postgres import PostgresServer
from xrdid.data_paths import shared_data_dir
from xrdid.library import RAMAN_FIRST_ID
from xrdid.references import prepare_structure

pytestmark = pytest.mark.slow

AUTH = {"X-API-Key": WRITE_KEY}
# The target: an add on one replica is searchable on every replica within 1 s.
FOLLOW_WITHIN_S = 1.0


@contextmanager
def _two_replicas(
    server_env: dict[str, str], database_url: str, libraries: list[Path], tmp_path: Path
) -> Iterator[tuple[Server, Server]]:
    """Two replicas on ``database_url`` after ``libraries`` are copied into it."""
    for library in libraries:
        copied, present = migrate_library(library, database_url, progress=False)
        assert copied == present > 0
    env = server_env | {"XRDID_DATABASE_URL": database_url, "XRDID_SYNC_INTERVAL_S": "1"}
    one = Server(env, tmp_path / "replica-1.log").start()
    two = Server(env, tmp_path / "replica-2.log")
    try:
        two.start()
        yield one, two
    finally:
        one.stop()
        two.stop()


@pytest.fixture()
def replicas(
    server_env: dict[str, str], database_url: str, e2e_library: Path, tmp_path: Path
) -> Iterator[tuple[Server, Server]]:
    library = copy_library(e2e_library, tmp_path / "copy" / "library.sqlite")
    with _two_replicas(server_env, database_url, [library], tmp_path) as servers:
        yield servers


@pytest.fixture(scope="module")
def small_raman_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The e2e Raman library (six minerals of the split), built by the indexer job."""
    path = tmp_path_factory.mktemp("raman-replicas") / "raman_library.sqlite"
    build(
        path,
        MODEL_STORE / "raman_regnet1d.pt",
        MODEL_STORE / "raman_split.json",
        MINERALS,
        split_only=True,
    )
    return path


@pytest.fixture()
def raman_replicas(
    server_env: dict[str, str],
    database_url: str,
    e2e_library: Path,
    small_raman_library: Path,
    tmp_path: Path,
) -> Iterator[tuple[Server, Server]]:
    """Replicas whose XRD and Raman libraries are both in the database."""
    library = copy_library(e2e_library, tmp_path / "copy" / "library.sqlite")
    raman = copy_library(small_raman_library, tmp_path / "copy" / "raman_library.sqlite")
    with _two_replicas(server_env, database_url, [library, raman], tmp_path) as servers:
        yield servers


def _best_id(client: httpx.Client, query: bytes) -> int:
    response = client.post("/identify", files={"file": ("cu.xy", query)}, data={"phases": "false"})
    assert response.status_code == 200, response.text
    return int(response.json()["candidates"][0]["reference_id"])


def _size(client: httpx.Client) -> int:
    return int(client.get("/ready").json()["library_size"])


def _wait_for_size(
    client: httpx.Client,
    size: int,
    timeout_s: float,
    size_of: Callable[[httpx.Client], int] = _size,
) -> float:
    """Seconds until the replica's index (XRD, or the one ``size_of`` reads) holds ``size``."""
    start = time.monotonic()
    while size_of(client) != size:
        assert time.monotonic() - start < timeout_s, f"not {size} references after {timeout_s} s"
        time.sleep(0.01)
    return time.monotonic() - start


def test_an_add_on_one_replica_is_found_on_the_other_and_a_delete_too(
    replicas: tuple[Server, Server],
) -> None:
    one, two = replicas
    cif = shared_data_dir() / "structures" / NEW_STRUCTURE
    query = rendered_query(prepare_structure(cif.read_bytes(), cif.name).pattern)  # type: ignore[arg-type]
    with one.client() as first, two.client() as second:
        size = _size(first)
        assert _size(second) == size
        created = first.post(
            "/references",
            files={"file": (cif.name, cif.read_bytes())},
            data={"source": "cod", "source_id": "copper-replicas"},
            headers=AUTH,
        )
        assert created.status_code == 201, created.text
        rid = created.json()["id"]
        assert _wait_for_size(second, size + 1, 10.0) <= FOLLOW_WITHIN_S
        assert _best_id(second, query) == rid
        assert second.get(f"/references/{rid}").json()["formula"] == "Cu"
        # The same (source, source id) on the other replica: one database, one answer.
        again = second.post(
            "/references",
            files={"file": (cif.name, cif.read_bytes())},
            data={"source": "cod", "source_id": "copper-replicas"},
            headers=AUTH,
        )
        assert again.status_code == 409 and again.json()["existing_id"] == rid
        assert second.delete(f"/references/{rid}", headers=AUTH).status_code == 204
        assert _wait_for_size(first, size, 10.0) <= FOLLOW_WITHIN_S
        assert _best_id(first, query) != rid
        assert first.get(f"/references/{rid}").status_code == 404


def test_a_database_restart_under_load_gives_503_then_recovers(
    replicas: tuple[Server, Server], postgres_server: PostgresServer
) -> None:
    one, two = replicas
    cif = shared_data_dir() / "structures" / NEW_STRUCTURE
    query = rendered_query(prepare_structure(cif.read_bytes(), cif.name).pattern)  # type: ignore[arg-type]
    statuses: list[tuple[float, int, str | None]] = []
    unavailable: list[str] = []  # problem details of the 503s
    stop = threading.Event()

    def load(server: Server) -> None:
        with server.client(timeout=30) as client:
            while not stop.is_set():
                response = client.post(
                    "/identify", files={"file": ("cu.xy", query)}, data={"phases": "false"}
                )
                statuses.append(
                    (time.monotonic(), response.status_code, response.headers.get("retry-after"))
                )
                if response.status_code == 503:
                    unavailable.append(response.json()["detail"])

    threads = [threading.Thread(target=load, args=(s,)) for s in (one, two)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        postgres_server.stop("fast")
        down_at = time.monotonic()
        time.sleep(4.0)
        postgres_server.start()
        up_at = time.monotonic()
        # Both replicas answer again by themselves (no restart of theirs).
        deadline = up_at + 30
        for server in (one, two):
            with server.client() as client:
                while _best_status(client, query) != 200:
                    assert time.monotonic() < deadline, server.logs()
                    time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert {code for _, code, _ in statuses} <= {200, 503}, statuses
    during = [(code, retry) for at, code, retry in statuses if down_at + 0.5 < at < up_at]
    assert during and all(code == 503 and retry for code, retry in during), during
    # Clients are told to retry, not where the database is.
    assert not any(str(postgres_server.port) in detail for detail in unavailable), unavailable
    assert any(code == 200 and at > up_at for at, code, _ in statuses)
    # Writes and following work again: an add on one is searchable on the other.
    with one.client() as first, two.client() as second:
        size = _size(second)
        created = first.post(
            "/references",
            files={"file": (cif.name, cif.read_bytes())},
            data={"source": "cod", "source_id": "copper-after-restart"},
            headers=AUTH,
        )
        assert created.status_code == 201, created.text
        _wait_for_size(second, size + 1, 10.0)
        assert _best_id(second, query) == created.json()["id"]


def _best_status(client: httpx.Client, query: bytes) -> int:
    response = client.post("/identify", files={"file": ("cu.xy", query)}, data={"phases": "false"})
    return response.status_code


def _raman_size(client: httpx.Client, timeout_s: float = 120.0) -> int:
    """The replica's Raman library size, once its Raman model and library are loaded."""
    deadline = time.monotonic() + timeout_s
    while (ready := client.get("/ready").json())["raman_status"] == "loading":
        assert time.monotonic() < deadline, "the Raman library did not load"
        time.sleep(0.1)
    assert ready["raman_status"] == "ready", ready
    return int(ready["raman_library_size"])


def test_a_raman_reference_added_on_one_replica_is_found_on_the_other(
    raman_replicas: tuple[Server, Server], server_env: dict[str, str]
) -> None:
    """The Raman library is in the database too (its own schema), not in a
    file per replica: an add on one replica is identified on the other, and
    a delete on the other is gone from the first."""
    one, two = raman_replicas
    query = spectrum(FORSTERITE_QUERY)
    with one.client() as first, two.client() as second:
        size = _raman_size(first)
        assert _raman_size(second) == size > 0
        before = second.post("/identify", files={"file": (FORSTERITE_QUERY, query)}).json()
        assert before["technique"] == "raman"
        assert "Forsterite" not in [c["name"] for c in before["candidates"]]
        added = add_forsterite(first, "fo-replicas")
        assert added.status_code == 201, added.text
        rid = added.json()["id"]
        assert rid > RAMAN_FIRST_ID and added.json()["technique"] == "raman"
        assert _wait_for_size(second, size + 1, 10.0, _raman_size) <= FOLLOW_WITHIN_S
        found = second.post("/identify", files={"file": (FORSTERITE_QUERY, query)}).json()
        assert found["candidates"][0]["reference_id"] == rid
        assert second.get(f"/references/{rid}").json()["technique"] == "raman"
        listed = second.get("/references", params={"technique": "raman", "name": "Forsterite"})
        assert [item["id"] for item in listed.json()["items"]] == [rid]
        assert second.delete(f"/references/{rid}", headers=AUTH).status_code == 204
        assert _wait_for_size(first, size, 10.0, _raman_size) <= FOLLOW_WITHIN_S
        assert first.get(f"/references/{rid}").status_code == 404
    # No Raman library file beside the (unused) SQLite library path of the replicas.
    work = Path(server_env["XRDID_LIBRARY_PATH"]).parent
    assert not list(work.glob("raman_library.sqlite*"))
