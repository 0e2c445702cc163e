"""Instrument formats: the committed files read back the scan they were made from."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.files import make_pattern_files as make
from xrdid.errors import PatternReadError
from xrdid.pattern import Pattern
from xrdid.readers import SUPPORTED_FORMATS, read_pattern

FILES_DIR = Path(__file__).resolve().parent / "files" / "patterns"
COMMITTED = sorted(make.FILES)

# Format each committed file is detected as.
FORMAT_OF = {
    ".raw": "bruker_raw",
    ".uxd": "bruker_uxd",
    ".chi": "chiplot",
    ".udf": "philips_udf",
    ".rd": "philips_rd",
    ".cpi": "sietronics_cpi",
    ".xrdml": "xrdml",
    ".brml": "brml",
    ".ras": "rigaku_ras",
    ".asc": "rigaku_asc",
    ".rasx": "rigaku_rasx",
    ".gsa": "gsas",
    ".fxye": "gsas",
    ".cif": "pdcif",
    ".csv": "text",
    ".dat": "text",
    ".txt": "text",
    ".xye": "text",
}


@pytest.fixture(scope="module")
def source_scan(data_dir: Path) -> make.Scan:
    return make.load_source_scan(data_dir)


@pytest.fixture(scope="module")
def source_pattern(patterns_dir: Path) -> Pattern:
    return read_pattern(patterns_dir / make.SOURCE_RELATIVE.relative_to("patterns"))


def _members(data: bytes) -> dict[str, bytes] | bytes:
    """A zip's members (deflate output differs between zlib builds), else the bytes."""
    if not data.startswith(b"PK"):
        return data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_committed_files_are_current_and_small(source_scan: make.Scan) -> None:
    for name, writer in make.FILES.items():
        path = FILES_DIR / name
        assert path.stat().st_size < 200_000, name
        current = _members(path.read_bytes())
        assert current == _members(writer(source_scan)), f"{name}: rerun make_pattern_files.py"


@pytest.mark.parametrize("name", COMMITTED)
def test_each_format_reads_back_the_source_scan(name: str, source_pattern: Pattern) -> None:
    pattern = read_pattern(FILES_DIR / name)
    assert pattern.metadata["format"] == FORMAT_OF[Path(name).suffix]
    np.testing.assert_allclose(pattern.two_theta_deg, source_pattern.two_theta_deg, atol=1e-6)
    if name.endswith(".rd"):
        # Stored as round(10·√count): within a tenth of the count's Poisson σ.
        error = np.abs(pattern.intensity - source_pattern.intensity)
        assert np.all(error <= 0.1 * np.sqrt(np.maximum(source_pattern.intensity, 1.0)))
    else:
        np.testing.assert_allclose(pattern.intensity, source_pattern.intensity, rtol=1e-9)


@pytest.mark.parametrize(
    "name",
    [n for n in COMMITTED if FORMAT_OF[Path(n).suffix] not in ("text", "gsas", "chiplot")],
)
def test_instrument_formats_carry_the_wavelength(name: str) -> None:
    wavelength = read_pattern(FILES_DIR / name).wavelength
    assert wavelength is not None
    assert wavelength.kalpha1_angstrom == pytest.approx(make.KALPHA1)
    if name != "d5000_1_scan.cif":  # states Kα1 only
        assert wavelength.kalpha2_angstrom == pytest.approx(make.KALPHA2)
        assert wavelength.kalpha2_ratio == pytest.approx(make.RATIO)
    if name not in ("d5000_1_v1.raw", "d5000_1.rd"):  # no anode field; Co is "another" anode
        assert wavelength.anode == "Co"


@pytest.mark.parametrize(
    ("name", "sigma"),
    [
        ("d5000_1_esd.gsa", "sqrt"),
        ("d5000_1.fxye", "sqrt"),
        ("d5000_1.xye", "sqrt"),
        ("d5000_1_range.cif", "rounded sqrt"),
        ("d5000_1_scan.cif", "sqrt"),
        ("d5000_1_std.gsa", None),
        ("d5000_1.xrdml", None),
    ],
)
def test_sigma_where_the_format_states_it(
    name: str, sigma: str | None, source_scan: make.Scan
) -> None:
    pattern = read_pattern(FILES_DIR / name)
    expected = np.sqrt(np.maximum(source_scan.intensity, 1.0))
    if sigma is None:
        assert pattern.sigma is None
    elif sigma == "rounded sqrt":
        np.testing.assert_array_equal(pattern.sigma, np.rint(expected))
    else:
        np.testing.assert_allclose(pattern.sigma, expected, rtol=2e-3)


# ------------------------------------------------------ detection


@pytest.mark.parametrize("name", COMMITTED)
@pytest.mark.parametrize("filename", [None, "upload", "scan.xy", "scan.xrdml", "a.raw"])
def test_content_decides_the_format_not_the_name(name: str, filename: str | None) -> None:
    data = (FILES_DIR / name).read_bytes()
    by_path = read_pattern(FILES_DIR / name)
    renamed = read_pattern(data, filename)
    assert renamed.metadata["format"] == by_path.metadata["format"]
    np.testing.assert_array_equal(renamed.intensity, by_path.intensity)


def test_sources_bytes_path_and_streams_agree() -> None:
    path = FILES_DIR / "d5000_1_v4.raw"
    data = path.read_bytes()
    expected = read_pattern(path).intensity
    for source in (data, bytearray(data), memoryview(data), str(path), io.BytesIO(data)):
        np.testing.assert_array_equal(read_pattern(source).intensity, expected)  # type: ignore[arg-type]
    with path.open("rb") as handle:
        np.testing.assert_array_equal(read_pattern(handle).intensity, expected)


def test_supported_formats_cover_every_committed_extension() -> None:
    assert {Path(name).suffix for name in COMMITTED} <= set(SUPPORTED_FORMATS)


# ------------------------------------------------------ format details


def test_xrdml_first_of_several_scans_and_start_end_positions(source_scan: make.Scan) -> None:
    pattern = read_pattern(FILES_DIR / "d5000_1.xrdml")
    assert pattern.metadata["scans"] == "first of 2 scans read"
    assert "the file holds 2 scans; only the first was read" in pattern.metadata["reader_warning"]
    assert pattern.metadata["sample_id"] == "D5000_1"
    assert pattern.metadata["schema"].endswith("/1.0")
    for version in ("1.5", "2.1", "2.3"):
        data = make.xrdml(
            source_scan,
            namespace=f"http://www.xrdml.com/XRDMeasurement/{version}",
            list_positions=False,
            second_scan=False,
        )
        again = read_pattern(data)
        assert "scans" not in again.metadata
        np.testing.assert_allclose(again.two_theta_deg, pattern.two_theta_deg, atol=1e-9)


def test_xrdml_counts_element_and_attenuation(source_scan: make.Scan) -> None:
    data = make.xrdml(source_scan, second_scan=False).decode()
    as_counts = data.replace("<intensities", "<counts").replace("</intensities>", "</counts>")
    np.testing.assert_array_equal(read_pattern(as_counts.encode()).intensity, source_scan.intensity)
    n = source_scan.intensity.size
    factors = " ".join(["2"] * n)
    attenuated = data.replace(
        "<commonCountingTime",
        f"<beamAttenuationFactors>{factors}</beamAttenuationFactors><commonCountingTime",
    )
    pattern = read_pattern(attenuated.encode())
    np.testing.assert_array_equal(pattern.intensity, 2 * source_scan.intensity)
    assert pattern.metadata["attenuation"] == "beamAttenuationFactors applied"


def test_xrdml_without_two_theta_positions_is_refused(source_scan: make.Scan) -> None:
    data = (
        make.xrdml(source_scan, second_scan=False).decode().replace('axis="2Theta"', 'axis="Chi"')
    )
    with pytest.raises(PatternReadError, match=r"no 2Theta positions \(axes: Chi, Omega\)"):
        read_pattern(data.encode())


def test_brml_columns_come_from_the_data_views(source_scan: make.Scan) -> None:
    raw_data = make.brml_raw_data(source_scan, trailing_columns=2)
    pattern = read_pattern(make.brml(source_scan, raw_data=raw_data))
    np.testing.assert_array_equal(pattern.intensity, source_scan.intensity)
    assert pattern.metadata["sample_id"] == "D5000_1"


def test_brml_without_views_falls_back_to_scan_axis(source_scan: make.Scan) -> None:
    text = make.brml_raw_data(source_scan).decode()
    text = (
        text[: text.index("<DataViews>")] + text[text.index("</DataViews>") + len("</DataViews>") :]
    )
    pattern = read_pattern(make.brml(source_scan, raw_data=text.encode()))
    assert pattern.metadata["two_theta_from"] == "ScanAxisInfo start/increment"
    np.testing.assert_allclose(pattern.two_theta_deg, source_scan.two_theta, atol=1e-9)
    np.testing.assert_array_equal(pattern.intensity, source_scan.intensity)


def test_brml_detector_frames_are_refused(source_scan: make.Scan) -> None:
    text = make.brml_raw_data(source_scan).decode()
    text = text.replace(
        'RecordedRawDataView" Start="4" Length="1"', 'RecordedRawDataView" Start="4" Length="256"'
    )
    with pytest.raises(PatternReadError, match="256 values per step"):
        read_pattern(make.brml(source_scan, raw_data=text.encode()))


def test_rigaku_attenuator_coefficients_are_applied() -> None:
    for name in ("d5000_1.ras", "d5000_1.rasx"):
        pattern = read_pattern(FILES_DIR / name)
        assert "attenuator coefficients" in pattern.metadata["attenuation"]
        assert pattern.intensity.max() > 5000


def test_ras_shift_jis_header_is_decoded() -> None:
    pattern = read_pattern(FILES_DIR / "d5000_1.ras")
    assert pattern.metadata["comment"].startswith("石英標準")
    assert pattern.metadata["scan_axis"] == "TwoThetaTheta"


def test_ras_omega_scan_is_refused(source_scan: make.Scan) -> None:
    data = make.ras(source_scan).replace(b'"TwoThetaTheta"', b'"Omega"')
    with pytest.raises(PatternReadError, match="scan axis is 'Omega'"):
        read_pattern(data)


def test_ras_kalpha1_only(source_scan: make.Scan) -> None:
    data = make.ras(source_scan).replace(b'WAVE_TYPE "Ka"', b'WAVE_TYPE "Ka1"')
    wavelength = read_pattern(data).wavelength
    assert wavelength is not None and wavelength.kalpha2_angstrom is None


def test_raw_versions_agree(source_scan: make.Scan) -> None:
    patterns = [
        read_pattern(writer(source_scan))
        for writer in (make.raw_v1, make.raw_v2, make.raw_v3, make.raw_v4)
    ]
    versions = [p.metadata["raw_version"][0] for p in patterns]
    assert versions == ["1", "2", "3", "4"]
    for pattern in patterns[1:]:
        np.testing.assert_allclose(pattern.two_theta_deg, patterns[0].two_theta_deg, atol=1e-9)
        np.testing.assert_array_equal(pattern.intensity, patterns[0].intensity)
    assert patterns[3].metadata["raw_SAMPLEID"] == "D5000_1"
    assert patterns[3].metadata["scan_type"] == "Locked Coupled"


def test_raw_v3_writer_matches_the_real_file(patterns_dir: Path, source_scan: make.Scan) -> None:
    real = read_pattern(patterns_dir / "bruker_d5000/RAW/D5000_1.RAW")
    written = read_pattern(make.raw_v3(source_scan))
    np.testing.assert_array_equal(real.two_theta_deg, written.two_theta_deg)
    np.testing.assert_array_equal(real.intensity, written.intensity)
    assert real.wavelength == written.wavelength


def test_gsas_first_bank_and_free_format(source_scan: make.Scan) -> None:
    two_banks = make.gsas_std(source_scan) + make.gsas_std(source_scan).split(b"\r\n", 2)[2]
    pattern = read_pattern(two_banks)
    assert pattern.metadata["banks"] == "first of 2 banks read"
    assert "the file holds 2 banks; only the first was read" in pattern.metadata["reader_warning"]
    free = make.gsas_esd(source_scan).decode().splitlines()
    free = free[:2] + [" ".join(line.split()) for line in free[2:]]
    np.testing.assert_array_equal(
        read_pattern("\n".join(free).encode()).intensity, source_scan.intensity
    )


def test_pdcif_ignores_calculated_intensities_and_powder_pattern_block_names() -> None:
    scan_cif = read_pattern(FILES_DIR / "d5000_1_scan.cif")
    assert scan_cif.metadata["intensity_tag"] == "_pd_proc_intensity_total"
    range_cif = read_pattern(FILES_DIR / "d5000_1_range.cif")
    # pymatgen's CIF parser drops blocks named like this one; ours must not.
    assert range_cif.metadata["data_block"] == "powder_pattern_D5000_1"


def test_journal_pdcifs_with_excluded_points_read(structures_dir: Path) -> None:
    """Real journal pdCIFs (COD 1516218, J. Phys. Chem. B; 1518592, Chem. Sci.)
    give points the refinement left out a weight of ``.``: every measured point
    is kept and the excluded ones are counted."""
    low_angle_cut = read_pattern(structures_dir / "cod" / "1516218.cif")
    assert low_angle_cut.n_points == 3955  # _pd_meas_number_of_points
    assert low_angle_cut.two_theta_range_deg == pytest.approx((3.0, 89.988))
    # 318 points of weight 0.0 at low angle and the last one with '.'.
    assert low_angle_cut.metadata["excluded_points"] == "319"
    assert low_angle_cut.sigma is None  # no weight for the excluded points
    last_point = read_pattern(structures_dir / "cod" / "1518592.cif")
    assert last_point.n_points == 5300
    assert last_point.metadata["excluded_points"] == "1"
    assert last_point.intensity[-1] == 2271.0


def test_every_shared_pdcif_with_weights_reads_or_is_refused_clearly(
    structures_dir: Path,
) -> None:
    """Every CIF in the shared data that holds a weighted powder pattern reads,
    but for time-of-flight ones (no 2θ), which are refused by name."""
    files = [
        path
        for path in sorted(structures_dir.rglob("*.cif"))
        if b"_pd_proc_ls_weight" in path.read_bytes()
    ]
    assert len(files) >= 4
    for path in files:
        try:
            pattern = read_pattern(path)
        except PatternReadError as exc:
            assert "time-of-flight" in str(exc), path
        else:
            assert pattern.n_points > 1000, path


def test_philips_rd_continuous_and_step_scans_and_version_5(source_scan: make.Scan) -> None:
    """A continuous scan's counts are read at the middles of their steps, a
    step scan's at start + i·step; version 5 keeps its counts further on."""
    step_scan = read_pattern(make.philips_rd(source_scan, version=b"V5"), "scan.sd")
    np.testing.assert_allclose(step_scan.two_theta_deg, source_scan.two_theta, atol=1e-9)
    continuous = read_pattern(make.philips_rd(source_scan, continuous=True), "scan.rd")
    middles = source_scan.two_theta[:-1] + source_scan.step_deg / 2.0
    np.testing.assert_allclose(continuous.two_theta_deg, middles, atol=1e-9)
    assert continuous.metadata["version"] == "V3" and step_scan.metadata["version"] == "V5"


def test_philips_rd_truncated_or_without_a_range_is_refused(source_scan: make.Scan) -> None:
    data = make.philips_rd(source_scan)
    with pytest.raises(PatternReadError, match="holds 3000 of the 3650 counts"):
        read_pattern(data[: 250 + 2 * 3000], "cut.rd")
    zero_step = bytearray(data)
    zero_step[214:222] = bytes(8)
    with pytest.raises(PatternReadError, match="is not a scan"):
        read_pattern(bytes(zero_step), "flat.rd")
    tiny_step = bytearray(data)
    struct.pack_into("<d", tiny_step, 214, 1e-320)  # a range of infinitely many steps
    with pytest.raises(PatternReadError, match="more than the .* points a scan can have"):
        read_pattern(bytes(tiny_step), "tiny.rd")
    with pytest.raises(PatternReadError, match="header needs bytes 0–250"):
        read_pattern(data[:220], "header.rd")
