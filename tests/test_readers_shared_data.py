"""Every real file under shared/data/patterns: read, or refused for a stated reason."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from xrdid.data_paths import shared_data_dir
from xrdid.errors import PatternReadError
from xrdid.readers import read_pattern, read_pattern_table
from xrdid.readers.survey import main as survey_main
from xrdid.readers.survey import survey

_PATTERNS = shared_data_dir() / "patterns"
ALL_FILES = (
    sorted(str(path.relative_to(_PATTERNS)) for path in _PATTERNS.rglob("*") if path.is_file())
    if _PATTERNS.is_dir()
    else []
)

# Files that must NOT read as one pattern, and a phrase of the reason.
TABLES = {
    "rockjock/rockjock_xrd.csv": "168 intensity columns",
    "powdr_minerals/minerals_xrd.csv": "14 intensity columns",
    "soils_afsis/afsis_xrd.csv": "21 intensity columns",
}
# Column 3 is a smooth background (≈ the intensity), not σ: read column 2, warn.
THIRD_COLUMN_IGNORED = (
    "xrd_autoanalyzer/Li2MnO3+MnO+TiO2.xy",
    "xrd_autoanalyzer/Mn2O3+LiF.xy",
    "xrd_autoanalyzer/MnO2.xy",
)
NOT_PATTERNS = {
    name: "no numeric data rows"
    for name in (
        "rockjock/rockjock_phases.csv",
        "rockjock/rockjock_regroup.csv",
        "powdr_minerals/minerals_phases.csv",
        "powdr_minerals/minerals_regroup.csv",
        "soils_afsis/afsis_codes.csv",
        "soils_afsis/afsis_phases.csv",
        "soils_afsis/afsis_regroup.csv",
    )
}
# Fixed-width exports where 2θ and a count touch ("14.11852709"), and how
# many such rows each has.
RUN_TOGETHER = {
    f"thinfilm_perovskite/I4Imcm/{share} SnPerovskite at 0.5M 4to1 dmftodmso.xy": rows
    for share, rows in (("15%", 1), ("50%", 5), ("85%", 419), ("100%", 407))
}
EXPECTED_REJECTIONS = {**TABLES, **NOT_PATTERNS}


def test_expected_rejections_exist(patterns_dir: Path) -> None:
    missing = [name for name in EXPECTED_REJECTIONS if not (patterns_dir / name).is_file()]
    assert not missing


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_shared_file_reads_or_is_refused_clearly(patterns_dir: Path, name: str) -> None:
    path = patterns_dir / name
    if name in EXPECTED_REJECTIONS:
        with pytest.raises(PatternReadError) as error:
            read_pattern(path)
        assert EXPECTED_REJECTIONS[name] in str(error.value)
        assert path.name in str(error.value)
        return
    pattern = read_pattern(path)
    if name not in RUN_TOGETHER:
        assert "ran together" not in pattern.metadata.get("reader_warning", "")
    low, high = pattern.two_theta_range_deg
    assert pattern.n_points >= 50
    assert 0.0 < low < high < 180.0
    assert high - low > 0.5
    assert np.all(np.diff(pattern.two_theta_deg) > 0)
    assert np.all(np.isfinite(pattern.intensity))
    assert np.ptp(pattern.intensity) > 0
    if path.suffix in (".xrdml", ".RAW"):
        assert pattern.wavelength is not None
        assert pattern.wavelength.anode in ("Cu", "Co")


@pytest.mark.parametrize(("name", "rows"), RUN_TOGETHER.items())
def test_run_together_rows_are_split_on_the_scans_step(
    patterns_dir: Path, name: str, rows: int
) -> None:
    pattern = read_pattern(patterns_dir / name)
    warning = pattern.metadata["reader_warning"]
    assert "ran together" in warning
    named = warning.split(":")[0]
    more = int(named.split(" and ")[1].split()[0]) if " and " in named else 0
    assert len(named.split(",")) + more == rows
    # Every 2θ, split ones included, continues the scan's even step.
    steps = np.diff(pattern.two_theta_deg)
    assert pattern.n_points == 1412
    np.testing.assert_allclose(steps, np.median(steps), atol=2e-4)
    assert pattern.intensity.min() > 0


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5])
def test_bruker_raw_equals_its_xy_export(patterns_dir: Path, number: int) -> None:
    raw = read_pattern(patterns_dir / f"bruker_d5000/RAW/D5000_{number}.RAW")
    xy = read_pattern(patterns_dir / f"bruker_d5000/xy/D5000_{number}.xy")
    np.testing.assert_allclose(raw.two_theta_deg, xy.two_theta_deg, rtol=0, atol=1e-9)
    np.testing.assert_allclose(raw.intensity, xy.intensity, rtol=0, atol=1e-9)
    assert raw.wavelength is not None
    assert raw.wavelength.kalpha1_angstrom == pytest.approx(1.78897)
    assert raw.wavelength.kalpha2_angstrom == pytest.approx(1.79285)
    assert raw.wavelength.kalpha2_ratio == pytest.approx(0.5)
    assert raw.metadata["raw_version"].startswith("3")


def _phase_ids(path: Path) -> list[str]:
    with path.open(newline="") as handle:
        return [row["phase_id"] for row in csv.DictReader(handle)]


@pytest.mark.parametrize(
    ("table", "phases"),
    [
        ("powdr_minerals/minerals_xrd.csv", "powdr_minerals/minerals_phases.csv"),
        ("soils_afsis/afsis_xrd.csv", "soils_afsis/afsis_phases.csv"),
    ],
)
def test_wide_tables_read_one_pattern_per_phase(
    patterns_dir: Path, table: str, phases: str
) -> None:
    patterns = read_pattern_table(patterns_dir / table)
    assert list(patterns) == _phase_ids(patterns_dir / phases)
    first = next(iter(patterns.values()))
    assert all(p.n_points == first.n_points for p in patterns.values())
    assert all(np.array_equal(p.two_theta_deg, first.two_theta_deg) for p in patterns.values())


def test_rockjock_table_matches_its_phase_list(patterns_dir: Path) -> None:
    phase_ids = _phase_ids(patterns_dir / "rockjock/rockjock_phases.csv")
    assert len(phase_ids) == 168
    # Two background "phases" are flat lines, which no Pattern may be.
    with pytest.raises(PatternReadError, match="BACK_POS.*constant"):
        read_pattern_table(patterns_dir / "rockjock/rockjock_xrd.csv")
    patterns = read_pattern_table(patterns_dir / "rockjock/rockjock_xrd.csv", skip_invalid=True)
    assert list(patterns) == [p for p in phase_ids if p not in ("BACK_POS", "BACK_NEG")]
    assert next(iter(patterns.values())).two_theta_range_deg == (5.0, 65.0)


@pytest.mark.parametrize("rock", ["granite", "limestone", "sandstone"])
def test_soil_csvs_read_as_pattern_and_as_one_column_table(patterns_dir: Path, rock: str) -> None:
    path = patterns_dir / f"soils_afsis/soils_{rock}.csv"
    table = read_pattern_table(path)
    assert list(table) == ["counts"]
    np.testing.assert_array_equal(table["counts"].intensity, read_pattern(path).intensity)


@pytest.mark.parametrize("name", THIRD_COLUMN_IGNORED)
def test_two_intensity_column_files_read_column_two_with_a_warning(
    patterns_dir: Path, name: str
) -> None:
    pattern = read_pattern(patterns_dir / name)
    assert "column 3 ignored" in pattern.metadata["reader_warning"]
    patterns = read_pattern_table(patterns_dir / name)
    assert list(patterns) == ["column 2", "column 3"]
    np.testing.assert_array_equal(patterns["column 2"].intensity, pattern.intensity)


def test_survey_counts_add_up(patterns_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcomes = survey(patterns_dir)
    assert len(outcomes) == len(ALL_FILES)
    by_kind = {kind: [o for o in outcomes if o.outcome == kind] for kind in ("table", "rejected")}
    assert {str(o.path.relative_to(patterns_dir)) for o in by_kind["table"]} == set(TABLES)
    rejected = {str(o.path.relative_to(patterns_dir)) for o in by_kind["rejected"]}
    assert rejected == set(NOT_PATTERNS)

    assert survey_main([str(patterns_dir / "bruker_d5000")]) == 0
    assert capsys.readouterr().out.startswith("10 files: 10 read as a pattern, 0 as a table")
