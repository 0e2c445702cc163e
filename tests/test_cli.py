"""The command-line client's arguments, inputs and output formats, and its
local mode on Raman spectra (its remote runs, and local against remote, are
end-to-end tests: tests/e2e/test_lims.py, tests/e2e/test_raman.py)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from app.cli import _scans, main, render
from tests.test_app import scan, small_library  # noqa: F401 - a fixture
from xrdid.data_paths import PROJECT_ROOT
from xrdid.raman.archive import unpacked_archive

ITEMS = [
    {
        "index": 0,
        "filename": "quartz.xy",
        "status": "succeeded",
        "error": None,
        "result": {
            "sample_id": None,
            "verdict": "mixture",
            "phases": [
                {"reference": {"name": "Quartz"}, "weight_percent": 61.23},
                {"reference": {"name": "Illite"}, "weight_percent": None},
            ],
            "candidates": [
                {"rank": 1, "reference_id": 7, "name": "Quartz", "formula": "SiO2", "score": 2.5},
                {
                    "rank": 2,
                    "reference_id": 9,
                    "name": "Cristobalite",
                    "formula": "SiO2",
                    "score": 1.1,
                },
            ],
        },
    },
    {
        "index": 1,
        "filename": "notes.txt",
        "status": "failed",
        "result": None,
        "error": {"status": 422, "detail": "notes.txt: no numeric data rows"},
    },
]


def test_formats() -> None:
    table = render(ITEMS, "table").splitlines()
    assert table[0].split()[:3] == ["file", "status", "best"]
    assert "Quartz" in table[1] and "2.500" in table[1]
    assert "failed" in table[2] and "no numeric data rows" in table[2]
    rows = list(csv.DictReader(io.StringIO(render(ITEMS, "csv"))))
    assert [(r["filename"], r["rank"], r["name"]) for r in rows] == [
        ("quartz.xy", "1", "Quartz"), ("quartz.xy", "2", "Cristobalite"), ("notes.txt", "", ""),
    ]  # fmt: skip
    assert rows[2]["error"] == "notes.txt: no numeric data rows"
    assert {(r["verdict"], r["phases"]) for r in rows[:2]} == {
        ("mixture", "Quartz 61.2 wt%; Illite")
    }
    assert rows[2]["verdict"] == rows[2]["phases"] == ""
    assert json.loads(render(ITEMS, "json")) == ITEMS


def test_inputs_are_files_folders_and_zips(tmp_path: Path) -> None:
    (tmp_path / "scans" / "deep").mkdir(parents=True)
    (tmp_path / "scans" / "a.xy").write_bytes(b"1 2\n")
    (tmp_path / "scans" / "deep" / "b.xrdml").write_bytes(b"<x/>")
    (tmp_path / "scans" / "readme.md").write_bytes(b"not a scan")
    with zipfile.ZipFile(tmp_path / "batch.zip", "w") as archive:
        archive.writestr("c.xy", b"3 4\n")
    found = _scans([str(tmp_path / "scans"), str(tmp_path / "batch.zip")])
    assert [Path(name).name for name, _ in found] == ["a.xy", "b.xrdml", "batch.zip:c.xy"]


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["identify", str(tmp_path / "missing.xy"), "--library", "x.sqlite"]) == 2
    assert "no such file" in capsys.readouterr().err
    scan = tmp_path / "a.xy"
    scan.write_bytes(b"1 2\n")
    assert main(["identify", str(scan), "--library", str(tmp_path / "none.sqlite")]) == 2
    assert "no library file" in capsys.readouterr().err
    assert main(["identify", str(scan), "--url", "http://127.0.0.1:9", "--no-progress"]) == 2
    assert "cannot reach" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["identify", str(scan)])  # neither --url nor --library


CALCITE = "Calcite__R050130__Raman__532__0__unoriented__Raman_Data_Processed__27273.txt"


def test_local_mode_identifies_raman_spectra_and_xrd_patterns(
    tmp_path: Path,
    small_library: tuple[Path, Path],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A real RRUFF spectrum and an XRD scan in one local run: each read as
    the service reads it, the spectrum searched in the Raman library (a copy
    of the default one)."""
    model, library = small_library
    spectrum = tmp_path / CALCITE
    spectrum.write_bytes((unpacked_archive() / CALCITE).read_bytes())
    pattern = tmp_path / "scan.xy"
    pattern.write_bytes(scan(3))
    raman_library = tmp_path / "raman_library.sqlite"
    shutil.copyfile(PROJECT_ROOT / "model_store" / "raman_library.sqlite", raman_library)
    common = ["identify", str(spectrum), str(pattern), "--library", str(library)]
    common += ["--model", str(model), "--raman-library", str(raman_library), "--no-progress"]
    assert main([*common, "--format", "json", "--top-k", "3", "--no-phases"]) == 0
    calcite, xrd = json.loads(capsys.readouterr().out)
    assert calcite["result"]["technique"] == "raman" and xrd["result"]["technique"] == "xrd"
    assert calcite["result"]["candidates"][0]["name"] == "Calcite"
    assert calcite["result"]["elements"][0]["probability"] > 0.5
    assert main([*common, "--format", "csv", "--top-k", "1", "--no-phases"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["technique"], r["name"]) for r in rows][0] == ("raman", "Calcite")
    assert rows[0]["elements"] and rows[1]["technique"] == "xrd"
    # Insisting on XRD fails the spectrum alone, with the service's words.
    assert main([*common, "--format", "json", "--technique", "xrd", "--no-phases"]) == 1
    calcite, xrd = json.loads(capsys.readouterr().out)
    assert calcite["status"] == "failed" and "technique='xrd'" in calcite["error"]["detail"]
    assert xrd["status"] == "succeeded"
    # Without a Raman library the spectrum fails, saying why; XRD still runs.
    missing = [*common[:-3], "--raman-library", str(tmp_path / "none.sqlite"), "--no-progress"]
    assert main([*missing, "--format", "json", "--no-phases"]) == 1
    calcite, xrd = json.loads(capsys.readouterr().out)
    assert calcite["error"]["type"].endswith("technique-unavailable")
    assert "--raman-library" in calcite["error"]["detail"] and xrd["status"] == "succeeded"
