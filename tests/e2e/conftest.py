"""Fixtures of the end-to-end tests: a small library built once per session
and the model it was built with."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.support import build_library, model_path, prepare_small_library

WRITE_KEY = "e2e-write-key-0123456789"


@pytest.fixture(scope="session")
def e2e_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_path(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def e2e_library(tmp_path_factory: pytest.TempPathFactory, e2e_model: Path) -> Path:
    """A closed library of 11 structures and 8 RockJock patterns."""
    path = tmp_path_factory.mktemp("library") / "library.sqlite"
    build_library(path, e2e_model, prepare_small_library())
    return path


@pytest.fixture()
def server_env(tmp_path: Path, e2e_model: Path, e2e_library: Path) -> dict[str, str]:
    """Environment of a server on a private copy of the small library."""
    from tests.e2e.support import copy_library

    library = copy_library(e2e_library, tmp_path / "work" / "library.sqlite")
    return {
        "XRDID_MODEL_PATH": str(e2e_model),
        "XRDID_LIBRARY_PATH": str(library),
        "XRDID_DEFAULT_LIBRARY_PATH": str(tmp_path / "no-default.sqlite"),
        "XRDID_WRITE_API_KEYS": WRITE_KEY,
        "XRDID_DEVICE": "cpu",
        "XRDID_LOG_LEVEL": "warning",
        "XRDID_INDEX_SAVE_INTERVAL_S": "2",
        "XRDID_MAX_UPLOAD_BYTES": str(2 * 1024 * 1024),
    }
