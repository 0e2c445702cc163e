"""Files → references: structures are simulated, measured patterns preprocessed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.test_library import FakeEmbedder
from tests.test_library_techniques import FakeRamanEmbedder
from xrdid.data_paths import PROJECT_ROOT
from xrdid.errors import InputError, PatternReadError, StructureReadError, UnsupportedFormatError
from xrdid.grid import MODEL_GRID
from xrdid.library import (
    MeasuredProfile,
    RamanProfile,
    ReferenceKind,
    decode_pattern,
    encode_pattern,
    model_view,
)
from xrdid.pattern import make_pattern
from xrdid.references import (
    DEFAULT_SOURCE,
    content_hash,
    embed_references,
    is_structure_file,
    parse_formula,
    prepare_measured,
    prepare_reference,
    prepare_structure,
    source_key,
)
from xrdid.sticks import StickPattern
from xrdid.technique import Technique
from xrdid.wavelengths import CU_KALPHA, anode


def scan_xy(center_deg: float = 28.4, start: float = 10.0, stop: float = 80.0) -> bytes:
    x = np.arange(start, stop, 0.02)
    y = (
        100
        + 1000 * np.exp(-0.5 * ((x - center_deg) / 0.08) ** 2)
        + 400 * np.exp(-0.5 * ((x - 47.3) / 0.09) ** 2)
    )
    return "".join(f"{a:.3f} {b:.3f}\n" for a, b in zip(x, y, strict=True)).encode()


@pytest.fixture(scope="module")
def silicon_cif(structures_dir: Path) -> bytes:
    return (structures_dir / "elements" / "Si.cif").read_bytes()


def test_structure_becomes_a_calculated_reference(silicon_cif: bytes) -> None:
    prepared = prepare_structure(silicon_cif, "Si.cif", source="elements", source_id="Si")
    assert prepared.kind is ReferenceKind.CALCULATED
    info = prepared.info
    assert (info.formula, info.elements, info.space_group_symbol) == ("Si", ("Si",), "Fd-3m")
    assert info.space_group_number == 227 and info.crystal_system == "cubic"
    assert (info.source, info.source_id) == ("elements", "Si")
    assert isinstance(prepared.pattern, StickPattern)
    assert prepared.view.intensity.shape == (MODEL_GRID.n_points,)
    assert prepared.content_hash == content_hash(silicon_cif)
    # Stored exactly as the library gives it back, so a re-embedding matches.
    again = decode_pattern(encode_pattern(prepared.pattern))
    np.testing.assert_array_equal(again.d_angstrom, prepared.pattern.d_angstrom)  # type: ignore[union-attr]
    np.testing.assert_array_equal(model_view(again).intensity, prepared.view.intensity)


def test_bgmn_structure(structures_dir: Path) -> None:
    path = structures_dir / "bgmn" / "Minerals" / "Periclase.str"
    prepared = prepare_reference(path.read_bytes(), path.name)
    assert prepared.kind is ReferenceKind.CALCULATED
    assert prepared.info.formula == "MgO" and prepared.info.name == "Periclase"
    assert prepared.info.source == DEFAULT_SOURCE
    assert prepared.info.source_id == "sha256:" + content_hash(path.read_bytes())[:16]


def test_structure_name_override_and_formula_check(silicon_cif: bytes) -> None:
    prepared = prepare_reference(silicon_cif, "Si.cif", name="my silicon", formula="Si")
    assert prepared.info.name == "my silicon"
    with pytest.raises(InputError, match="does not match the structure's composition Si"):
        prepare_reference(silicon_cif, "Si.cif", formula="SiO2")


def test_measured_pattern_needs_a_name_and_takes_a_formula() -> None:
    with pytest.raises(InputError, match="needs a name"):
        prepare_measured(scan_xy(), "scan.xy", name=None)
    prepared = prepare_measured(scan_xy(), "scan.xy", name=" Silicon ", formula="Si")
    assert prepared.kind is ReferenceKind.MEASURED
    assert prepared.info.name == "Silicon" and prepared.info.elements == ("Si",)
    assert isinstance(prepared.pattern, MeasuredProfile)
    assert prepared.pattern.wavelength == CU_KALPHA
    assert "the file states no wavelength; Cu Kα assumed" in prepared.warnings
    with pytest.raises(InputError, match="not a chemical formula"):
        prepare_measured(scan_xy(), "scan.xy", name="x", formula="Qz2")
    with pytest.raises(InputError, match="not a chemical formula"):
        prepare_measured(scan_xy(), "scan.xy", name="x", formula="(((")


def test_measured_wavelength_is_kept_for_reembedding() -> None:
    prepared = prepare_measured(
        scan_xy(center_deg=33.0), "scan.xy", name="x", wavelength=anode("Co")
    )
    assert isinstance(prepared.pattern, MeasuredProfile)
    assert prepared.pattern.wavelength == anode("Co")
    np.testing.assert_array_equal(model_view(prepared.pattern).intensity, prepared.view.intensity)


def test_measured_pattern_from_arrays_needs_a_source_id() -> None:
    x = np.arange(10.0, 60.0, 0.02)
    pattern = make_pattern(x, 10 + np.exp(-(((x - 30) / 0.1) ** 2)))
    with pytest.raises(InputError, match="source id"):
        prepare_measured(pattern, name="column")
    prepared = prepare_measured(pattern, name="column", source="table", source_id="t#c")
    assert prepared.content_hash is None and prepared.info.source_id == "t#c"


def test_bad_files_raise_their_reader_errors() -> None:
    with pytest.raises(StructureReadError):
        prepare_reference(b"data_x\n_cell_length_a 5\n", "bad.cif")
    with pytest.raises(UnsupportedFormatError):
        prepare_reference(bytes(range(256)) * 4, "scan.xy", name="x")
    with pytest.raises(PatternReadError, match="floating point"):
        huge = b"".join(b"%d %s\n" % (i, b"1e308" if i % 2 else b"-1e308") for i in range(10, 90))
        prepare_reference(huge, "huge.xy", name="x")


def test_kind_detection(silicon_cif: bytes, patterns_dir: Path) -> None:
    assert is_structure_file(silicon_cif, "Si.cif")
    assert is_structure_file(b"PHASE=Quartz SpacegroupNo=154", "q.str")
    assert is_structure_file(silicon_cif, None)
    assert not is_structure_file(scan_xy(), "scan.xy")
    pdcif = b"data_scan\nloop_\n_pd_meas_2theta_scan\n_pd_meas_intensity_total\n10 5\n"
    assert not is_structure_file(pdcif, "scan.cif")
    # A Rietveld CIF (atoms and powder data): the structure wins.
    assert is_structure_file(
        pdcif + b"loop_\n_atom_site_label\n_atom_site_fract_x\nSi 0\n", "r.cif"
    )


def test_source_key_defaults() -> None:
    assert source_key(b"abc", None, None) == ("upload", "sha256:" + content_hash(b"abc")[:16])
    assert source_key(b"abc", " cod ", " 9000 ") == ("cod", "9000")


def test_parse_formula() -> None:
    assert parse_formula("CaCO3") == ("CaCO3", ("C", "Ca", "O"))
    assert parse_formula("KAl2(AlSi3O10)(OH)2")[1] == ("Al", "H", "K", "O", "Si")


def test_embed_references_batches(silicon_cif: bytes) -> None:
    embedder = FakeEmbedder()
    prepared = [
        prepare_structure(silicon_cif, "Si.cif", source="a", source_id="1"),
        prepare_measured(scan_xy(), "scan.xy", name="scan"),
    ]
    new = embed_references(prepared, embedder)
    assert embedder.calls == 2
    assert [n.kind for n in new] == [ReferenceKind.CALCULATED, ReferenceKind.MEASURED]
    assert all(n.model_version == "fake-a" for n in new)
    np.testing.assert_allclose(
        np.linalg.norm(np.stack([n.embedding for n in new]), axis=1), 1.0, rtol=1e-5
    )


def test_structure_over_the_simulation_limits_is_refused_before_simulating(
    structures_dir: Path,
) -> None:
    from xrdid.errors import SimulationTooLargeError
    from xrdid.sticks import SimulationLimits

    data = (structures_dir / "elements" / "Si.cif").read_bytes()
    with pytest.raises(SimulationTooLargeError, match="more than the limit of 100"):
        prepare_reference(data, "Si.cif", simulation_limits=SimulationLimits(max_reflections=100))
    assert (
        prepare_reference(data, "Si.cif", simulation_limits=SimulationLimits()).info.formula == "Si"
    )


def test_pattern_read_errors_keep_line_and_field_across_processes() -> None:
    import pickle

    error = PatternReadError("bad number", source="a.xy", line=12, field="intensity")
    copied = pickle.loads(pickle.dumps(error))
    assert (str(copied), copied.line, copied.field) == (str(error), 12, "intensity")


def test_raman_spectrum_becomes_a_raman_reference(silicon_cif: bytes) -> None:
    wdf = (PROJECT_ROOT / "tests" / "files" / "raman" / "Spectrum_532nm_wdf.wdf").read_bytes()
    prepared = prepare_reference(wdf, "s.wdf", name="Sample", formula="CaCO3")
    assert prepared.technique is Technique.RAMAN and prepared.kind is ReferenceKind.MEASURED
    assert isinstance(prepared.pattern, RamanProfile)
    assert prepared.pattern.laser_wavelength_nm == pytest.approx(532.0, abs=1.0)
    assert prepared.info.elements == ("C", "Ca", "O")
    (new,) = embed_references([prepared], FakeRamanEmbedder())
    assert new.technique is Technique.RAMAN and new.profile is not None
    unnamed = prepare_reference(wdf, "s.wdf", name="Sample")
    assert any("no formula" in w for w in unnamed.warnings)
    with pytest.raises(InputError, match="needs a name"):
        prepare_reference(wdf, "s.wdf")
    with pytest.raises(InputError, match="wavelength applies to XRD"):
        prepare_reference(wdf, "s.wdf", name="Sample", wavelength=CU_KALPHA)
    with pytest.raises(PatternReadError, match="technique='xrd'"):
        prepare_reference(wdf, "s.wdf", name="Sample", technique=Technique.XRD)
    with pytest.raises(InputError, match="structure file is an XRD reference"):
        prepare_reference(
            silicon_cif, "Si.cif", kind=ReferenceKind.CALCULATED, technique=Technique.RAMAN
        )
