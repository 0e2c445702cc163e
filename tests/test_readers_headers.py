"""What a column file's header states: its radiation, and what its first column is."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.files import make_pattern_files as make
from xrdid.errors import PatternReadError
from xrdid.pattern import CONVERTED_AXIS
from xrdid.readers import read_pattern

FILES_DIR = Path(__file__).resolve().parent / "files" / "patterns"
X = np.arange(10.0, 80.0, 0.02)
Y = 100.0 + 900.0 * np.exp(-((X - 26.6) ** 2) / 0.01) + 400.0 * np.exp(-((X - 50.1) ** 2) / 0.01)


def _file(header: list[str], x: np.ndarray = X, column_line: str | None = None) -> bytes:
    lines = [*header, *([column_line] if column_line else [])]
    lines += [f"{a:.10f} {b:.3f}" for a, b in zip(x, Y, strict=True)]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(
    ("header", "kalpha1", "kalpha2", "anode"),
    [
        (["# Wavelength: 1.5406e-10 m"], 1.5406, 1.54439, "Cu"),  # pyFAI, metres
        (["# Anode: Mo"], 0.70930, 0.71359, "Mo"),
        (["Target = Co", "Tube current: 40 mA"], 1.78896, 1.79285, "Co"),
        (["# Energy: 30 keV"], 12.398419843320026 / 30, None, None),  # a beamline
        (["wavelength_nm = 0.0709300"], 0.7093, 0.71359, "Mo"),
        (["! Wavelength (A): 0.4133"], 0.4133, None, None),
        (
            ["K-Alpha1 [Å] 1.540598", "K-Alpha2 [Å] 1.544426", "Kα2/Kα1 ratio: 0.5"],
            1.540598,
            1.544426,
            None,
        ),
        (
            ["Anode: Cu", "Wavelength: 1.5418"],
            1.54056,
            1.54439,
            "Cu",
        ),  # the Kα mean beside its tube
        (["Wavelength: 1.0332 Å", "Tube: Cu"], 1.0332, None, None),  # a number that is no tube's
        (["# Kalpha1 = 1.5406, Kalpha2 = 1.5444, ratio = 0.5"], 1.5406, 1.54439, "Cu"),
        # Numbered wavelengths are the Kα lines (the "1" is no wavelength of 1 Å).
        (
            ["#lambda1: 1.540598", "#lambda2: 1.544426", "#x_units: 2theta"],
            1.540598,
            1.544426,
            None,
        ),
        (["Lam1: 0.70932", "Lam2: 0.71361"], 0.70932, 0.71361, None),
        (["# Radiation: CuKa"], 1.54056, 1.54439, "Cu"),
        (["# Radiation: Co K-alpha1"], 1.78896, 1.79285, "Co"),
        (["# Energy (keV): 30"], 12.398419843320026 / 30, None, None),
        (["# Energy: 30000 eV"], 12.398419843320026 / 30, None, None),
        # Decimal commas: "1,5406" is no wavelength of 1 Å.
        (["# Wavelength: 1,5406"], 1.5406, 1.54439, "Cu"),
        (["K-Alpha1 wavelength;1,78897", "K-Alpha2 wavelength;1,79285"], 1.78897, 1.79285, None),
        (["# Energy: 30,0 keV"], 12.398419843320026 / 30, None, None),
        # HighScore's CSV export of an .xrdml.
        (
            [
                "[Measurement conditions]",
                "Anode material,Cu",
                "K-Alpha1 wavelength,1.5405980",
                "K-Alpha2 wavelength,1.5444260",
                "Ratio K-Alpha2/K-Alpha1,0.5000",
                "Tube current,40",
                "[Scan points]",
            ],
            1.540598,
            1.544426,
            "Cu",
        ),
    ],
)
def test_a_header_that_states_the_radiation_sets_the_wavelength(
    header: list[str], kalpha1: float, kalpha2: float | None, anode: str | None
) -> None:
    pattern = read_pattern(_file(header), "scan.xy")
    assert pattern.wavelength is not None
    assert pattern.wavelength.kalpha1_angstrom == pytest.approx(kalpha1, abs=1e-6)
    assert pattern.wavelength.kalpha2_angstrom == (
        None if kalpha2 is None else pytest.approx(kalpha2, abs=1e-6)
    )
    assert pattern.wavelength.anode == anode


@pytest.mark.parametrize(
    "header",
    [
        [],
        ["# sample: quartz 12", "# operator: me"],
        ["Kα2/Kα1 ratio: 0.5"],
        ["Tube current: 40 mA", "Tube voltage: 45 kV"],
        ["Wavelength: 15.406"],  # nm written as Å: not a wavelength to guess at
        ["# Radiation: synchrotron", "# Source: Kapton window"],
        ["# Energy: 12 kV"],  # the tube's voltage, not the beam's energy
    ],
)
def test_a_header_that_states_no_usable_radiation_leaves_it_unknown(header: list[str]) -> None:
    pattern = read_pattern(_file(header), "scan.xy")
    assert pattern.wavelength is None
    if header == ["Wavelength: 15.406"]:
        assert "header wavelength ignored" in pattern.metadata["wavelength_note"]


@pytest.mark.parametrize(
    ("column", "x"),
    [
        ("q_nm^-1", lambda t, lam: 40 * math.pi * np.sin(np.radians(t) / 2) / lam),
        ("q_A^-1", lambda t, lam: 4 * math.pi * np.sin(np.radians(t) / 2) / lam),
        ("d_A", lambda t, lam: lam / (2 * np.sin(np.radians(t) / 2))),
        ("2th_rad", lambda t, lam: np.radians(t)),
    ],
)
def test_a_q_d_or_radian_axis_is_read_as_2theta(column: str, x) -> None:
    """At the stated wavelength, the 2θ the axis was computed from comes back."""
    header = ["# Wavelength: 0.7093e-10 m"]
    pattern = read_pattern(_file(header, x(X, 0.7093), f"#  {column}  I"), "scan.dat")
    np.testing.assert_allclose(pattern.two_theta_deg, X, atol=1e-7)
    np.testing.assert_allclose(pattern.intensity, Y, atol=1e-3)
    converted = column != "2th_rad"
    assert (CONVERTED_AXIS in pattern.metadata) is converted
    assert (
        "converted to 2θ at 0.7093 Å" in pattern.metadata.get("reader_warning", "")
    ) is converted


def test_a_q_axis_without_a_wavelength_is_converted_at_cu_kalpha1() -> None:
    """q needs no radiation: any gives the same d-spacings, and the pattern
    carries the one used (monochromatic)."""
    q = 4 * math.pi * np.sin(np.radians(X) / 2) / 1.54056
    pattern = read_pattern(_file([], q, "Q(1/A) Intensity"), "scan.csv")
    np.testing.assert_allclose(pattern.two_theta_deg, X, atol=1e-7)
    assert pattern.wavelength is not None and pattern.wavelength.kalpha1_angstrom == 1.54056
    assert pattern.wavelength.kalpha2_angstrom is None
    assert "the file states no wavelength" in pattern.metadata["reader_warning"]


def test_q_beyond_the_radiations_reach_is_left_out_and_said() -> None:
    """At Cu Kα1, q reaches 4π/λ = 8.16 Å⁻¹; a synchrotron's q axis runs past it."""
    q = np.linspace(0.5, 12.0, 4000)
    lines = ["#  q_A^-1  I"] + [f"{a:.6f} {1 + (i % 7)}" for i, a in enumerate(q)]
    pattern = read_pattern(("\n".join(lines) + "\n").encode(), "scan.dat")
    reach = 4 * math.pi / 1.54056
    assert pattern.n_points == int(np.sum(q < reach))
    assert (
        f"{int(np.sum(q >= reach))} points beyond that radiation's reach left out"
        in (pattern.metadata["reader_warning"])
    )


@pytest.mark.parametrize(
    "last_line", ["# data collected overnight", "# Q-range 0.5", "# Q-range: full", "# date 2024"]
)
def test_a_last_header_line_that_names_no_column_leaves_2theta(last_line: str) -> None:
    """Only a column line (a word, and no number, per column) names the
    axis; prose that starts like "d" or "q" does not."""
    pattern = read_pattern(_file([last_line]), "scan.xy")
    np.testing.assert_allclose(pattern.two_theta_deg, X)
    assert CONVERTED_AXIS not in pattern.metadata


def test_the_pyfai_export_reads_as_the_scan_it_was_integrated_to() -> None:
    q_file = read_pattern(FILES_DIR / "d5000_1_pyfai_q.dat")
    uxd = read_pattern(FILES_DIR / "d5000_1.uxd")
    np.testing.assert_allclose(q_file.two_theta_deg, uxd.two_theta_deg, atol=1e-6)
    assert q_file.wavelength == uxd.wavelength
    assert q_file.wavelength is not None and q_file.wavelength.anode == make.ANODE


@pytest.mark.parametrize(
    ("label", "to_axis"),
    [
        ("Q (Inverse Nanometres)", lambda d: 20.0 * math.pi / d),
        ("q_A^-1", lambda d: 2.0 * math.pi / d),
        ("D-spacing (Angstroms)", lambda d: d),
    ],
)
def test_a_fit2d_chi_file_in_q_or_d_reads_as_its_2theta_scan(label: str, to_axis) -> None:  # type: ignore[no-untyped-def]
    scan = make.load_source_scan()
    two_theta = read_pattern(FILES_DIR / "d5000_1_fit2d.chi").two_theta_deg
    d = make.KALPHA1 / (2.0 * np.sin(np.radians(two_theta) / 2.0))
    rows = "".join(f"{float(x)!r} {y}\n" for x, y in zip(to_axis(d), scan.intensity, strict=True))
    data = f"D5000_1.tif\n{label}\nIntensity\n{d.size} 1\n{rows}".encode()
    pattern = read_pattern(data, "scan.chi")
    assert pattern.metadata["format"] == "chiplot"
    assert pattern.metadata[CONVERTED_AXIS] in ("q (nm⁻¹)", "q (Å⁻¹)", "d (Å)")
    # Converted at Cu Kα1 (a χPLOT file states no wavelength): the same d-spacings.
    assert pattern.wavelength is not None and pattern.wavelength.anode == "Cu"
    np.testing.assert_allclose(
        pattern.wavelength.kalpha1_angstrom
        / (2.0 * np.sin(np.radians(pattern.two_theta_deg) / 2.0)),
        d,
        rtol=1e-9,
    )


def test_uxd_ranges_after_the_first_are_said_not_read() -> None:
    """Said to the user too: the answer's warnings carry the reader's."""
    data = make.uxd_counts(make.load_source_scan())
    second = data.split(b"; (Data for Range number 1)")[1].replace(
        b"_START=2.000000", b"_START=80.0"
    )
    pattern = read_pattern(data + b"; (Data for Range number 2)" + second, "two.uxd")
    assert pattern.metadata["scans"] == "first of 2 ranges read"
    assert "the file holds 2 ranges; only the first was read" in pattern.metadata["reader_warning"]
    assert pattern.two_theta_range_deg == pytest.approx((2.0, 75.0))


def test_rigaku_asc_groups_after_the_first_are_said_not_read() -> None:
    data = make.rigaku_asc(make.load_source_scan()).replace(
        b"*EOF",
        b"*BEGIN\r\n*GROUP = 1\r\n*START = 80\r\n*STEP = 0.02\r\n*COUNT = 4\r\n"
        b" 1, 2, 3, 4\r\n*END\r\n*EOF",
    )
    pattern = read_pattern(data, "two.asc")
    assert "the file holds 2 groups; only the first was read" in pattern.metadata["reader_warning"]
    assert pattern.two_theta_range_deg == pytest.approx((2.0, 75.0))
    assert pattern.wavelength is not None and pattern.wavelength.anode == "Co"  # *TARGET = 27


def test_a_header_count_or_end_the_counts_do_not_match_is_said() -> None:
    scan = make.load_source_scan()
    cases = [
        (make.rigaku_asc(scan).replace(b"=  3651", b"=  3600"), "a.asc", "*COUNT states 3600"),
        (make.fit2d_chi(scan).replace(b"    3651\n", b"    3000\n"), "a.chi", "line 4 states 3000"),
        (
            make.philips_udf(scan).replace(b"75.0000,/", b"80.0000,/"),
            "a.udf",
            "DataAngleRange says the scan ends at 80°, but its 3651 counts end at 75°",
        ),
        (
            make.sietronics_cpi(scan).replace(b"\r\n75,00\r\n", b"\r\n80,00\r\n"),
            "a.cpi",
            "line 3 says the scan ends at 80°",
        ),
        (make.philips_rd(scan) + bytes(4), "a.rd", "4 bytes after the 3651 counts ignored"),
    ]
    for data, name, phrase in cases:
        pattern = read_pattern(data, name)
        assert phrase in pattern.metadata["reader_warning"], name
        assert pattern.n_points == 3651


def test_a_uxd_range_without_data_says_so() -> None:
    with pytest.raises(PatternReadError, match="only 0 data points"):
        read_pattern(b"_FILEVERSION=1\n_START=10\n_STEPSIZE=0.02\n_COUNTS\n", "empty.uxd")


def test_uxd_lines_in_nanometres_are_read_in_angstrom() -> None:
    data = make.uxd_counts(make.load_source_scan())
    data = data.replace(b"_WL1=1.788970", b"_WL_UNIT='nm'\r\n_WL1=0.1788970")
    data = data.replace(b"_WL2=1.792850", b"_WL2=0.1792850")
    wavelength = read_pattern(data, "nm.uxd").wavelength
    assert wavelength is not None
    assert wavelength.kalpha1_angstrom == pytest.approx(make.KALPHA1)
    assert wavelength.kalpha2_angstrom == pytest.approx(make.KALPHA2)
