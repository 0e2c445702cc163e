"""Helpers for service tests: the model to test with, small libraries, a real
uvicorn process, pattern files.

The model: ``XRDID_TEST_MODEL_PATH`` if set, else the shipped
``model_store/regnet1d.pt``. Most rank-1 checks use queries whose
preprocessed input is identical to the reference's, so they test the
service, not the model; ``test_real_scan_is_identified`` tests both.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import numpy as np

from xrdid.data_paths import PROJECT_ROOT, shared_data_dir
from xrdid.embedder import Embedder
from xrdid.grid import MODEL_GRID
from xrdid.library import Library
from xrdid.profiles import render_sticks
from xrdid.readers import read_pattern_table
from xrdid.references import (
    PreparedReference,
    embed_references,
    prepare_measured,
    prepare_structure,
)
from xrdid.sticks import StickPattern
from xrdid.wavelengths import CU_KALPHA

SHIPPED_MODEL = PROJECT_ROOT / "model_store" / "regnet1d.pt"
SHIPPED_LIBRARY = PROJECT_ROOT / "model_store" / "library.sqlite"

# Structures and RockJock columns of the small test library: common phases,
# cheap to simulate.
LIBRARY_STRUCTURES = (
    "elements/Al.cif",
    "elements/Fe.cif",
    "elements/Si.cif",
    "elements/diamond.cif",
    "elements/GaAs.cif",
    "elements/SiC.cif",
    "elements/vo2-rutile.cif",
    "elements/BaTiO3_cubic.cif",
    "bgmn/BGMN/Magnesite.str",
    "bgmn/Minerals/Periclase.str",
    "bgmn/Ceramics/NiO_cubic.str",
    # NiO again, in its rhombohedral cell: a look-alike the scans cannot tell from the cubic.
    "bgmn/Ceramics/NiO.str",
)
LIBRARY_COLUMNS = (
    "QUARTZ",
    "CALCITE",
    "DOLOMITE",
    "HALITE",
    "GYPSUM",
    "HEMATITE",
    "RUTILE",
    "ANATASE",
)
# Not in the small library: added by the tests.
NEW_STRUCTURE = "elements/Cu.cif"

ROCKJOCK = Path("patterns/rockjock/rockjock_xrd.csv")
ROCKJOCK_NAMES = Path("patterns/rockjock/rockjock_phases.csv")


def model_path(tmp_dir: Path) -> Path:
    """The checkpoint tests run with (see the module docstring)."""
    configured = os.environ.get("XRDID_TEST_MODEL_PATH")
    path = Path(configured) if configured else SHIPPED_MODEL
    if not path.is_file():
        raise FileNotFoundError(f"no model checkpoint at {path}; train one with `make train`")
    return path


def untrained_checkpoint(path: Path, seed: int) -> Path:
    """An untrained RegNet1D checkpoint (a stand-in model with its own version)."""
    import torch

    from xrdid.embedder import save_checkpoint
    from xrdid.model import RegNet1D, RegNetConfig

    torch.manual_seed(seed)
    save_checkpoint(path, RegNet1D(RegNetConfig()), {"note": f"untrained test model, seed {seed}"})
    return path


def rockjock_names() -> dict[str, str]:
    import csv

    with open(shared_data_dir() / ROCKJOCK_NAMES, newline="") as handle:
        return {row[0]: row[1] for row in list(csv.reader(handle))[1:]}


def prepare_small_library() -> list[PreparedReference]:
    data = shared_data_dir()
    prepared = []
    for relative in LIBRARY_STRUCTURES:
        path = data / "structures" / relative
        source, _, rest = relative.partition("/")
        prepared.append(
            prepare_structure(
                path.read_bytes(),
                path.name,
                source=source,
                source_id=str(Path(rest).with_suffix("")),
            )
        )
    table = read_pattern_table(data / ROCKJOCK, skip_invalid=True)
    names = rockjock_names()
    for column in LIBRARY_COLUMNS:
        prepared.append(
            prepare_measured(
                table[column],
                name=names.get(column, column),
                source="rockjock",
                source_id=f"rockjock_xrd#{column}",
            )
        )
    return prepared


def build_library(path: Path, model: Path, prepared: Sequence[PreparedReference]) -> None:
    embedder = Embedder.load(model, device="cpu")
    with Library.open(path, embedder) as library:
        library.add_many(embed_references(prepared, embedder))


def copy_library(source: Path, target: Path) -> Path:
    """Copy a closed library (database and index) for one test."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())
    index = source.with_name(source.name + ".faiss")
    if index.exists():
        target.with_name(target.name + ".faiss").write_bytes(index.read_bytes())
    return target


def xy_bytes(two_theta_deg: np.ndarray, intensity: np.ndarray) -> bytes:
    lines = [f"{x:.6f} {y:.9g}" for x, y in zip(two_theta_deg, intensity, strict=True)]
    return ("\n".join(lines) + "\n").encode()


def rendered_query(sticks: StickPattern) -> bytes:
    """An .xy of the sticks as the library renders them (Cu Kα on the model
    grid): its preprocessed input equals the reference's, with any model."""
    profile = render_sticks(sticks, MODEL_GRID, wavelength=CU_KALPHA)
    return xy_bytes(MODEL_GRID.two_theta_deg, 1000.0 * profile / profile.max() + 1e-3)


def rockjock_column_xy(column: str) -> bytes:
    table = read_pattern_table(shared_data_dir() / ROCKJOCK, skip_invalid=True)
    pattern = table[column]
    return xy_bytes(pattern.two_theta_deg, pattern.intensity)


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """The service as a real uvicorn process on 127.0.0.1."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout_s: float = 120.0) -> Server:
        env = {**os.environ, **self.env, "XRDID_PORT": str(self.port), "XRDID_HOST": "127.0.0.1"}
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.wait_ready(ready_timeout_s)
        return self

    def wait_ready(self, timeout_s: float) -> dict[str, object]:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.logs()}")
            try:
                response = httpx.get(self.url + "/ready", timeout=2.0)
                if response.status_code == 200:
                    return dict(response.json())
                last = response.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout_s} s ({last}):\n{self.logs()}")

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM), as an orchestrator does."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def client(self, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)


@contextlib.contextmanager
def running(env: dict[str, str], log_path: Path) -> Iterator[Server]:
    server = Server(env, log_path)
    try:
        yield server.start()
    finally:
        server.stop()
