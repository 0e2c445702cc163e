"""``python -m indexer build``: parallel build, bad files reported, no
duplicates on re-runs, interrupted runs resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import indexer.build as build_module
from indexer.__main__ import COMMANDS
from indexer.__main__ import main as indexer_main
from indexer.build import main as build_main
from indexer.build import source_key
from tests.e2e.support import model_path, xy_bytes
from xrdid.embedder import Embedder
from xrdid.library import Library, ReferenceKind

STRUCTURES = ("elements/Si.cif", "elements/Al.cif", "bgmn/Minerals/Periclase.str")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_path(tmp_path_factory.mktemp("model"))


@pytest.fixture()
def sources(tmp_path: Path, structures_dir: Path) -> Path:
    """A source folder: links to shared structures, a table, a scan and bad files."""
    root = tmp_path / "sources"
    for relative in STRUCTURES:
        link = root / "shared" / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(structures_dir / relative)
    # The same bytes under another name: skipped as duplicate content.
    (root / "shared" / "elements" / "Si_copy.cif").write_bytes(
        (structures_dir / STRUCTURES[0]).read_bytes()
    )
    measured = root / "measured"
    measured.mkdir()
    x = np.arange(10.0, 70.0, 0.02)
    peaks = [np.exp(-0.5 * ((x - c) / 0.1) ** 2) for c in (26.6, 29.4, 33.1)]
    (measured / "quartz-scan.xy").write_bytes(xy_bytes(x, 50 + 1000 * peaks[0]))
    table = ["tth,QTZ,CAL,FLAT"] + [
        f"{a:.2f},{50 + 900 * p:.3f},{40 + 700 * q:.3f},5"
        for a, p, q in zip(x, peaks[0], peaks[1], strict=True)
    ]
    (measured / "table.csv").write_text("\n".join(table) + "\n")
    (tmp_path / "names.csv").write_text("phase_id,phase_name\nQTZ,Quartz\nCAL,Calcite\n")
    bad = root / "bad"
    bad.mkdir()
    (bad / "broken.cif").write_text("data_broken\n_cell_length_a 5.0\n")
    (bad / "junk.xy").write_bytes(bytes(range(256)) * 8)
    (bad / "notes.txt").write_text("just some notes\n" * 5)
    return root


def run_build(
    tmp_path: Path, checkpoint: Path, sources: Path, *extra: str
) -> tuple[int, dict[str, object]]:
    library = tmp_path / "lib" / "library.sqlite"
    code = build_main(
        [
            "--library",
            str(library),
            "--model",
            str(checkpoint),
            "--names",
            str(tmp_path / "names.csv"),
            "--quiet",
            *extra,
            str(sources),
        ]
    )
    report = json.loads((library.parent / "library.build-report.json").read_text())
    return code, report


def open_library(tmp_path: Path, checkpoint: Path) -> Library:
    return Library.open(
        tmp_path / "lib" / "library.sqlite", Embedder.load(checkpoint, device="cpu")
    )


def test_build_reports_bad_files_and_skips_duplicates(
    tmp_path: Path, checkpoint: Path, sources: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_build(tmp_path, checkpoint, sources, "--workers", "2")
    assert code == 0
    # 3 structures + 1 scan + 2 table columns (FLAT is constant)
    assert report["added"] == 6
    failed = {(Path(str(f["path"])).name, f["item"]) for f in report["failed"]}  # type: ignore[union-attr]
    assert failed == {
        ("broken.cif", None),
        ("junk.xy", None),
        ("notes.txt", None),
        ("table.csv", "FLAT"),
    }
    reasons = " ".join(str(f["reason"]) for f in report["failed"])  # type: ignore[union-attr]
    assert "binary" in reasons
    assert [Path(d["path"]).name for d in report["duplicates"]] == ["Si_copy.cif"]  # type: ignore[union-attr,index]
    out = capsys.readouterr().out
    assert "added 6, already present 0, duplicate content 1, failed 4" in out
    assert "FAILED" in out and "junk.xy" in out
    with open_library(tmp_path, checkpoint) as library:
        page = library.page(limit=50)
        by_key = {(e.info.source, e.info.source_id): e for e in page.entries}
        assert by_key[("shared", "elements/Si")].kind is ReferenceKind.CALCULATED
        assert by_key[("shared", "bgmn/Minerals/Periclase")].info.formula == "MgO"
        assert by_key[("measured", "table#QTZ")].info.name == "Quartz"
        assert by_key[("measured", "table#CAL")].info.name == "Calcite"
        assert by_key[("measured", "quartz-scan")].kind is ReferenceKind.MEASURED
        missing, extra = library.verify()
        assert missing.size == 0 and extra.size == 0


def test_rerun_adds_nothing_twice(tmp_path: Path, checkpoint: Path, sources: Path) -> None:
    run_build(tmp_path, checkpoint, sources, "--workers", "0")
    code, report = run_build(tmp_path, checkpoint, sources, "--workers", "0")
    assert code == 0
    assert report["added"] == 0 and report["already_present"] == 6
    assert report["library_size"] == 6


def test_interrupted_build_resumes(
    tmp_path: Path, checkpoint: Path, sources: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_add_many = Library.add_many
    calls = {"n": 0}

    def add_then_interrupt(self: Library, *args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_add_many(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Library, "add_many", add_then_interrupt)
    code, report = run_build(tmp_path, checkpoint, sources, "--workers", "0", "--batch-size", "1")
    assert code == 130 and report["interrupted"] is True
    # Two batches were committed before the interruption: the scan, then the
    # table's two columns (one file's references go together).
    assert report["added"] == 3
    monkeypatch.setattr(Library, "add_many", real_add_many)
    code, report = run_build(tmp_path, checkpoint, sources, "--workers", "0")
    assert code == 0 and report["added"] == 3 and report["library_size"] == 6


def test_rebuild_replaces_the_library(tmp_path: Path, checkpoint: Path, sources: Path) -> None:
    run_build(tmp_path, checkpoint, sources, "--workers", "0")
    code, report = run_build(tmp_path, checkpoint, sources, "--workers", "0", "--rebuild")
    assert code == 0 and report["added"] == 6
    assert not list((tmp_path / "lib").glob("*.building*"))
    with open_library(tmp_path, checkpoint) as library:
        assert library.status().size == 6


def test_a_tables_internal_standard_residue_is_removed_from_its_other_columns(
    tmp_path: Path, checkpoint: Path
) -> None:
    """``--standard STD``: a column holding 5% of the standard's peaks is
    stored without them, the build report says by how much; a clean column
    and the standard itself are stored as they are."""
    x = np.arange(10.0, 70.0, 0.02)

    def peaks(lines: tuple[tuple[float, float], ...]) -> np.ndarray:
        return sum(h * np.exp(-0.5 * ((x - c) / 0.06) ** 2) for c, h in lines)

    standard = 50 + 10_000 * peaks(
        ((43.4, 1.0), (35.2, 0.96), (57.56, 0.8), (25.62, 0.69), (52.6, 0.42), (37.82, 0.41))
    )
    mineral = 80 + 8_000 * peaks(((18.6, 1.0), (38.0, 0.8), (50.8, 0.3), (58.6, 0.2)))
    other = 60 + 9_000 * peaks(((26.6, 1.0), (20.9, 0.2), (50.1, 0.15)))
    table = ["tth,STD,MIN,OTHER"] + [
        f"{a:.2f},{s:.3f},{m + 0.05 * (s - 50):.3f},{o:.3f}"
        for a, s, m, o in zip(x, standard, mineral, other, strict=True)
    ]
    folder = tmp_path / "sources" / "lab"
    folder.mkdir(parents=True)
    (folder / "table.csv").write_text("\n".join(table) + "\n")
    (tmp_path / "names.csv").write_text("phase_id,phase_name\nSTD,Corundum\nMIN,Brucite\n")
    code, report = run_build(
        tmp_path, checkpoint, tmp_path / "sources", "--workers", "0", "--standard", "STD"
    )
    assert code == 0 and report["added"] == 3
    residues = report["standard_residues"]
    assert list(residues) == [f"{folder / 'table.csv'}#MIN"]  # type: ignore[call-overload]
    assert residues[f"{folder / 'table.csv'}#MIN"] == pytest.approx(500 / 8_000, rel=0.3)  # type: ignore[index]
    with open_library(tmp_path, checkpoint) as library:
        by_id = {e.info.source_id: e.id for e in library.page(limit=10).entries}
        stored = library.get_pattern(by_id["table#MIN"])
        near = np.abs(stored.two_theta_deg - 43.4) <= 0.06
        assert stored.intensity[near].max() < 80 + 150  # no corundum peak left
        assert library.get_pattern(by_id["table#STD"]).intensity.max() == pytest.approx(
            standard.max(), rel=1e-6
        )


def test_a_standard_column_the_table_lacks_is_reported_not_ignored(
    tmp_path: Path, checkpoint: Path, sources: Path
) -> None:
    """``--standard`` naming no column of a table: its references are stored
    as they are, and the report names the table."""
    code, report = run_build(tmp_path, checkpoint, sources, "--workers", "0", "--standard", "STD")
    assert code == 0 and report["added"] == 6 and report["standard_residues"] == {}
    assert report["standard_missing"] == [str(sources / "measured" / "table.csv")]


def test_source_keys(tmp_path: Path) -> None:
    root = tmp_path / "structures"
    (root / "cod").mkdir(parents=True)
    (root / "cod" / "1000041.cif").touch()
    (root / "top.cif").touch()
    assert source_key(root, root / "cod" / "1000041.cif") == ("cod", "1000041")
    assert source_key(root, root / "top.cif") == ("structures", "top")
    assert source_key(root / "top.cif", root / "top.cif") == ("structures", "top")
    assert source_key(root, root / "cod" / "1000041.cif", "mine") == ("mine", "cod/1000041")


def test_dispatcher(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        indexer_main(["no-such-command"])
    assert exit_info.value.code == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        indexer_main(["--help"])  # every command's summary formats
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    assert all(name in usage for name in COMMANDS)
    with pytest.raises(SystemExit):
        indexer_main(["build", "--help"])
    assert "--library" in capsys.readouterr().out
    assert (
        indexer_main(["build", "--library", str(tmp_path / "x.sqlite"), str(tmp_path / "missing")])
        == 2
    )


def test_module_constants_cover_every_pattern_format() -> None:
    assert ".xrdml" in build_module.PATTERN_SUFFIXES and ".str" in build_module.STRUCTURE_SUFFIXES
