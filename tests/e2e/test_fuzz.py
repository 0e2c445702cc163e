"""A short schemathesis run of every endpoint against a real server (the long
one is ``make fuzz``): no 5xx and no failed check, with and without a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.fuzz import fuzz, server_env
from tests.e2e.support import copy_library, running

pytestmark = pytest.mark.slow


def test_schemathesis_finds_no_server_error_and_no_failed_check(
    tmp_path: Path, e2e_model: Path, e2e_library: Path
) -> None:
    library = copy_library(e2e_library, tmp_path / "library.sqlite")
    env = server_env(tmp_path, e2e_model, library)
    with running(env, tmp_path / "server.log") as server:
        runs = [
            fuzz(server, 8, seed=7, key=key, report=tmp_path / f"{key}.xml")
            for key in (False, True)
        ]
    for run in runs:
        assert run.requests > 100, run
        assert run.server_errors == 0 and run.schemathesis_exit == 0, run.summary
