"""The scale-out stack check's verdict (benchmarks/compose_scale.py; the
check itself needs Docker): what it measured on the stack, and what fails it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

from benchmarks.compose_scale import failures
from xrdid.data_paths import PROJECT_ROOT

MEASURED = json.loads((PROJECT_ROOT / "benchmarks" / "results" / "compose_scale.json").read_text())


def test_the_measured_stack_met_the_targets() -> None:
    assert failures(MEASURED) == []


def test_each_missed_target_fails_the_check() -> None:
    def broken(change: Callable[[dict], object]) -> list[str]:
        results = copy.deepcopy(MEASURED)
        change(results)
        return failures(results)

    assert broken(lambda r: r["follow"]["found_after_s"].update(x=1.5))
    assert broken(lambda r: r["worker_kill"].update(succeeded=r["worker_kill"]["files"] - 1))
    assert broken(lambda r: r["worker_kill"].update(others_with_more_than_one_attempt=[3]))
    assert broken(lambda r: r["database_restart"]["status_codes"].update({"500": 1}))
    assert broken(
        lambda r: r["database_restart"]["sent_while_down"].update({"503 retry-after=None": 1})
    )
