"""Raman readers: RRUFF, column text, JCAMP-DX, SPC and WDF, and technique detection."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from xrdid.errors import PatternReadError, UnsupportedFormatError
from xrdid.pattern import Pattern
from xrdid.raman.spectrum import RamanSpectrum
from xrdid.readers import read_measurement, read_pattern

FILES = Path(__file__).resolve().parent / "files" / "raman"

RRUFF_HEADER = (
    "##NAMES=Calcite\n##RRUFFID=R040070\n##IDEAL CHEMISTRY=CaCO_3_\n"
    "##LOCALITY=Somewhere\n##OWNER=RRUFF\n"
)


def rows(x: np.ndarray, y: np.ndarray, sep: str = ", ") -> str:
    return "".join(f"{a:.4f}{sep}{b:.3f}\n" for a, b in zip(x.tolist(), y.tolist(), strict=True))


SHIFT = np.linspace(150.0, 1300.0, 600)
BANDS = 10.0 + 1000.0 * np.exp(-0.5 * ((SHIFT - 1086.0) / 4.0) ** 2)


def test_every_archive_spectrum_reads(rruff_records) -> None:
    assert len(rruff_records) == 4554
    minerals = Counter(r.mineral for r in rruff_records)
    assert len(minerals) == 1609
    assert minerals["Calcite"] == 26
    assert {r.laser_nm for r in rruff_records} == {514.0, 532.0, 780.0, 785.0}
    for record in rruff_records:
        assert isinstance(record.spectrum, RamanSpectrum)
        assert record.spectrum.metadata["format"] == "rruff"
        assert np.all(np.diff(record.spectrum.shift_cm1) > 0)


def test_rruff_file_labels_and_values(rruff_records) -> None:
    eskebornite = next(r for r in rruff_records if r.rruff_id == "R060791" and r.laser_nm == 532)
    assert eskebornite.mineral == "Eskebornite"
    assert eskebornite.ideal_chemistry == "CuFeSe_2_"
    assert eskebornite.elements == ("Fe", "Cu", "Se")
    spectrum = eskebornite.spectrum
    assert spectrum.shift_range_cm1 == pytest.approx((154.789, 1282.941))
    assert spectrum.intensity[1] == pytest.approx(4.539612)
    assert spectrum.metadata["locality"] == "Slavkovice Morava, Czech Republic"


def test_rruff_text_in_memory_without_a_name_has_no_laser() -> None:
    data = (RRUFF_HEADER + rows(SHIFT, BANDS) + "##END=\n").encode("latin-1")
    spectrum = read_measurement(data)
    assert isinstance(spectrum, RamanSpectrum)
    assert spectrum.laser_wavelength_nm is None
    assert spectrum.metadata["mineral"] == "Calcite"
    assert read_measurement(data, laser_wavelength_nm=785).laser_wavelength_nm == 785.0


def test_wdf_and_its_spc_export_hold_the_same_spectrum() -> None:
    wdf = read_measurement(FILES / "Spectrum_532nm_wdf.wdf")
    spc = read_measurement(FILES / "Spectrum_532nm_wdf_spc.spc")
    assert isinstance(wdf, RamanSpectrum) and isinstance(spc, RamanSpectrum)
    assert wdf.n_points == spc.n_points == 1900
    assert wdf.laser_wavelength_nm == pytest.approx(532.297, abs=1e-3)
    assert wdf.shift_range_cm1 == pytest.approx((202.1015625, 3203.76171875))
    # WiRE exports SPC on an evenly spaced axis (no x values, flag byte 0)
    # between the WDF's end points, the intensities interpolated onto it.
    assert spc.shift_range_cm1 == pytest.approx(wdf.shift_range_cm1, abs=0.01)
    np.testing.assert_allclose(np.diff(spc.shift_cm1), np.diff(spc.shift_cm1)[0], rtol=1e-6)
    on_spc_axis = np.interp(spc.shift_cm1, wdf.shift_cm1, wdf.intensity)
    np.testing.assert_allclose(spc.intensity, on_spc_axis, rtol=5e-4)
    assert spc.metadata["x_type"] == "XRAMANS"


def test_jcamp_raman_spectrum() -> None:
    spectrum = read_measurement(FILES / "tannic_acid.jdx")
    assert isinstance(spectrum, RamanSpectrum)
    assert spectrum.n_points == 1949
    assert spectrum.shift_range_cm1 == pytest.approx((100.595, 2854.713))
    assert spectrum.intensity[0] == pytest.approx(42.644)
    assert spectrum.metadata["title"] == "tannic acid"


def test_jcamp_compressed_form_and_laser_label() -> None:
    """(X++(Y..Y)) data with the laser under a vendor label."""
    text = (
        "##TITLE=calcite\n##JCAMP-DX=5.01\n##DATA TYPE=RAMAN SPECTRUM\n##XUNITS=1/CM\n"
        "##YUNITS=COUNTS\n##$LASER WAVELENGTH=785 nm\n##FIRSTX=150\n##LASTX=1299\n"
        "##NPOINTS=1150\n##XFACTOR=1\n##YFACTOR=1\n##XYDATA=(X++(Y..Y))\n"
    )
    x = np.arange(150.0, 1300.0)
    y = np.round(10 + 1000 * np.exp(-0.5 * ((x - 1086) / 4) ** 2))
    for start in range(0, x.size, 10):
        text += f"{x[start]:.0f} " + " ".join(f"{v:.0f}" for v in y[start : start + 10]) + "\n"
    spectrum = read_measurement((text + "##END=\n").encode())
    assert isinstance(spectrum, RamanSpectrum)
    assert spectrum.laser_wavelength_nm == 785.0
    np.testing.assert_array_equal(spectrum.intensity, y)
    assert spectrum.shift_cm1[np.argmax(spectrum.intensity)] == 1086.0


@pytest.mark.parametrize(
    ("header", "axis", "laser"),
    [
        ("Raman shift (cm-1),Intensity", lambda s, laser: s, None),
        ("Wavenumber (absolute, cm-1),Counts", lambda s, laser: 1e7 / laser - s, 532.0),
        ("Wavelength (nm),Counts", lambda s, laser: 1e7 / (1e7 / laser - s), 785.0),
    ],
)
def test_column_text_axes_convert_to_shift(header, axis, laser) -> None:
    data = (header + "\n" + rows(axis(SHIFT, laser), BANDS, ",")).encode()
    spectrum = read_measurement(data, "s.csv", laser_wavelength_nm=laser)
    assert isinstance(spectrum, RamanSpectrum)
    np.testing.assert_allclose(spectrum.shift_cm1, SHIFT, atol=1e-2)
    assert spectrum.shift_cm1[np.argmax(spectrum.intensity)] == pytest.approx(1086.0, abs=1.5)


def test_a_fixed_width_raman_export_with_rows_run_together_reads_with_a_warning() -> None:
    lines = ["Raman shift (cm-1) Intensity"] + [
        f"{150 + 1.25 * i:.2f} {200 + i:5d}" for i in range(1200)
    ]
    lines[501] = "775.00123456"  # 150 + 1.25 × 500 and a count that filled its field
    spectrum = read_measurement("\n".join(lines).encode(), "s.txt")
    assert isinstance(spectrum, RamanSpectrum)
    assert spectrum.shift_cm1[500] == pytest.approx(775.0)
    assert spectrum.intensity[500] == 123456
    assert spectrum.metadata["reader_warning"].startswith("line 502: the axis value")


def test_row_numbers_before_the_axis_do_not_decide_the_technique() -> None:
    """Column 1 counting 1…600 passes 180 as a Raman axis would; the axis
    after it decides."""
    numbers = np.arange(1, SHIFT.size + 1)
    spectrum = read_measurement(
        "".join(
            f"{n} {x:.4f} {y:.3f}\n" for n, x, y in zip(numbers, SHIFT, BANDS, strict=True)
        ).encode(),
        "s.txt",
    )
    assert isinstance(spectrum, RamanSpectrum)
    assert spectrum.shift_cm1[np.argmax(spectrum.intensity)] == pytest.approx(1086.0, abs=1.5)
    assert "numbers the rows" in spectrum.metadata["reader_warning"]
    two_theta = np.linspace(10.0, 80.0, SHIFT.size)
    pattern = read_measurement(
        "".join(
            f"{n} {x:.4f} {y:.3f}\n" for n, x, y in zip(numbers, two_theta, BANDS, strict=True)
        ).encode(),
        "p.txt",
    )
    assert isinstance(pattern, Pattern)
    np.testing.assert_allclose(pattern.two_theta_deg, two_theta, atol=1e-4)


def _bwtek_export(laser_nm: float = 785.022475277658) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A B&W Tek BWSpec export as its software writes one: ``key;value``
    lines, then a column per stage of the processing, decimal commas."""
    wavelength = np.linspace(782.83, 1060.0, 1024)
    shift = 1e7 / laser_nm - 1e7 / wavelength
    dark = np.full(shift.size, 1090.0)
    spectrum = 200.0 + 3000.0 * np.exp(-0.5 * ((shift - 1086.0) / 4.0) ** 2)
    lines = [
        "File Version;BWRam4.15_10",
        "Date;2025-02-19 12:06:04",
        "model;BTC665N-785S-SYS",
        f"laser_wavelength;{laser_nm!r}".replace(".", ","),
        "intigration times(us);500000",
        "Pixel;Wavelength;Wavenumber;Raman Shift;Dark;Reference;Raw data #1;"
        "Dark Subtracted #1;%TR #1;Absorbance #1;",
    ]
    for pixel in range(shift.size):
        values = (pixel, wavelength[pixel], 1e7 / wavelength[pixel], shift[pixel], dark[pixel])
        values += (65535, dark[pixel] + spectrum[pixel], spectrum[pixel], 0, 0)
        lines.append(";".join(f"{value:.4f}".replace(".", ",") for value in values) + ";")
    return "\r\n".join(lines).encode("latin-1"), np.round(shift, 4), np.round(spectrum, 4)


def test_a_bw_tek_export_reads_its_raman_shift_and_dark_subtracted_columns() -> None:
    """Of its ten columns, the one named as the shift and the one named as
    the dark-subtracted spectrum; the laser from its header's decimal comma."""
    data, shift, spectrum = _bwtek_export()
    read = read_measurement(data, "sample.txt")
    assert isinstance(read, RamanSpectrum)
    assert read.laser_wavelength_nm == pytest.approx(785.022475, abs=1e-5)
    assert read.metadata["axis"] == "shift"
    assert "'Dark Subtracted #1' as the spectrum" in read.metadata["reader_warning"]
    assert "Raw data #1, %TR #1" in read.metadata["reader_warning"]
    np.testing.assert_allclose(np.sort(read.shift_cm1), np.sort(shift))
    assert read.shift_cm1[np.argmax(read.intensity)] == pytest.approx(1086.0, abs=2.0)
    assert read.intensity.max() == pytest.approx(spectrum.max())


def test_absolute_wavenumbers_without_a_header_are_recognised() -> None:
    data = rows(1e7 / 532.0 - SHIFT, BANDS, " ").encode()
    with pytest.raises(PatternReadError, match="states no laser wavelength"):
        read_measurement(data, "s.txt")
    spectrum = read_measurement(data, "s.txt", laser_wavelength_nm=532)
    np.testing.assert_allclose(spectrum.shift_cm1, SHIFT, atol=1e-2)  # type: ignore[union-attr]


def test_technique_from_header_axis_or_option(patterns_dir: Path) -> None:
    xy = patterns_dir / "xrd_autoanalyzer" / "Mn2O3+LiF.xy"
    assert isinstance(read_measurement(xy), Pattern)
    assert isinstance(read_measurement(FILES / "tannic_acid.jdx"), RamanSpectrum)
    # No header, axis beyond 180: Raman. The same numbers under a Raman header
    # but inside 0–180 still read as Raman because the header says so.
    assert isinstance(read_measurement(rows(SHIFT, BANDS, " ").encode()), RamanSpectrum)
    low = np.linspace(20.0, 170.0, 300)
    peak = 10.0 + 1000.0 * np.exp(-0.5 * ((low - 60.0) / 2.0) ** 2)
    with_header = ("Raman shift / cm-1  Intensity\n" + rows(low, peak, " ")).encode()
    assert isinstance(read_measurement(with_header), RamanSpectrum)
    assert isinstance(read_measurement(rows(low, peak, " ").encode()), Pattern)
    forced = read_measurement(rows(low, peak, " ").encode(), technique="raman")
    assert isinstance(forced, RamanSpectrum)


def test_the_wrong_technique_is_refused_by_name(patterns_dir: Path) -> None:
    xrdml = next((patterns_dir / "dara" / "precursor_mixtures").glob("*.xrdml"))
    with pytest.raises(PatternReadError, match="XRD measurement .*technique='raman'"):
        read_measurement(xrdml, technique="raman")
    with pytest.raises(PatternReadError, match="RAMAN measurement .*technique='xrd'"):
        read_measurement(FILES / "Spectrum_532nm_wdf.wdf", technique="xrd")
    with pytest.raises(PatternReadError, match="unknown technique 'ir'"):
        read_measurement(FILES / "tannic_acid.jdx", technique="ir")
    with pytest.raises(PatternReadError, match="Raman spectrum .* read_measurement"):
        read_pattern(FILES / "tannic_acid.jdx")


def test_infrared_jcamp_is_not_read_as_raman() -> None:
    text = (
        "##TITLE=x\n##JCAMP-DX=4.24\n##DATA TYPE=INFRARED SPECTRUM\n##XUNITS=1/CM\n"
        "##XYDATA=(XY..XY)\n" + rows(SHIFT, BANDS, ", ") + "##END=\n"
    )
    with pytest.raises(UnsupportedFormatError, match="infrared spectrum, not a Raman"):
        read_measurement(text.encode(), "x.jdx")


@pytest.mark.parametrize(
    ("header", "laser"),
    [
        ("#Laser (nm)=\t532.17", 532.17),  # LabSpec
        ("laser_wavelength;785.26", 785.26),  # B&W Tek
        ("# Excitation wavelength 632.8 nm", 632.8),
        ("# Laser power (mW): 500\n# Laser wavelength: 785 nm", 785.0),
        ("# Laser: 18796.99 cm-1", 532.0),  # stated as a wavenumber
        ("Excitation wavelength (nm),785", 785.0),  # a CSV header: the comma separates
    ],
)
def test_a_header_that_states_the_laser_converts_an_absolute_axis(
    header: str, laser: float
) -> None:
    data = (header + "\n" + rows(1e7 / laser - SHIFT, BANDS, " ")).encode()
    spectrum = read_measurement(data, "s.txt")
    assert isinstance(spectrum, RamanSpectrum)
    assert spectrum.laser_wavelength_nm == pytest.approx(laser, abs=0.01)
    assert spectrum.metadata["laser_from"] == "header"
    np.testing.assert_allclose(spectrum.shift_cm1, SHIFT, atol=0.05)
    sent = read_measurement(data, "s.txt", laser_wavelength_nm=laser + 1.0)
    assert sent.laser_wavelength_nm == laser + 1.0  # the request's wins


@pytest.mark.parametrize(
    "header", ["# Laser power (mW): 500", "# Laser on time 532 s", "# Excitation filter 785"]
)
def test_a_laser_field_that_is_not_its_wavelength_is_not_read(header: str) -> None:
    data = (header + "\n" + rows(1e7 / 532.0 - SHIFT, BANDS, " ")).encode()
    with pytest.raises(PatternReadError, match="states no laser wavelength"):
        read_measurement(data, "s.txt")
