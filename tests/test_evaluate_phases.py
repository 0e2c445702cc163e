"""The evaluation's single-phase counts: one phase, exactly its phase, a
spurious second one, its material first."""

from __future__ import annotations

from types import SimpleNamespace

from indexer.evaluate_phases import _count_single


def _result(phases: list[str], first: str | None):
    def named(name: str) -> SimpleNamespace:
        return SimpleNamespace(match=SimpleNamespace(entry=name))

    return SimpleNamespace(
        phases=[named(n) for n in phases], materials=[named(first)] if first else []
    )


def test_single_phase_counts() -> None:
    count = [0, 0, 0, 0]
    is_quartz = "quartz".__eq__
    _count_single(count, _result(["quartz"], "quartz"), is_quartz)  # right
    _count_single(count, _result(["cristobalite"], "quartz"), is_quartz)  # one, a look-alike
    _count_single(count, _result(["quartz", "calcite"], "quartz"), is_quartz)  # spurious
    _count_single(count, _result([], None), is_quartz)  # none
    assert count == [1, 1, 3, 2]  # exactly its phase, spurious, its material first, one phase
