"""Bad, broken and hostile files: each fails with PatternReadError saying why."""

from __future__ import annotations

import io
import re
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.files import make_pattern_files as make
from xrdid.errors import PatternReadError, UnsupportedFormatError
from xrdid.readers import read_measurement, read_pattern

N = 80
X = 10.0 + 0.05 * np.arange(N)
Y = 500.0 + 300.0 * np.exp(-((X - 11.0) ** 2) / 0.01)
SCAN = make.Scan(10.0, 0.05, Y)


def rows(x: np.ndarray = X, y: np.ndarray = Y) -> list[str]:
    return [f"{a:.4f} {b:.1f}" for a, b in zip(x.tolist(), y.tolist(), strict=True)]


def text(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def with_line(number: int, line: str) -> bytes:
    lines = rows()
    lines[number - 1] = line
    return text(lines)


def billion_laughs() -> bytes:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    return (
        f'<?xml version="1.0"?><!DOCTYPE xrdMeasurements [{entities}]>'
        "<xrdMeasurements><sample><id>&lol9;</id></sample></xrdMeasurements>"
    ).encode()


def external_entity() -> bytes:
    return (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<xrdMeasurements><sample><id>&xxe;</id></sample></xrdMeasurements>"
    )


def zip_bomb(member: str, size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, b"0" * size, compresslevel=9)
    return buffer.getvalue()


def forged_size_zip(member: str, size: int, claimed: int) -> bytes:
    """A zip whose headers understate the member's inflated size."""
    data = bytearray(zip_bomb(member, size))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(signature)
        struct.pack_into("<I", data, at + offset, claimed)
    return bytes(data)


def many_members() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(2500):
            archive.writestr(f"Data0/Profile{index}.txt", b"")
    return buffer.getvalue()


def real_raw(patterns_dir: Path) -> bytes:
    return (patterns_dir / "bruker_d5000/RAW/D5000_1.RAW").read_bytes()


# (id, builder, filename, error type, phrase in the message)
BAD_FILES: list[tuple[str, Callable[[], bytes], str | None, type[Exception], str]] = [
    ("empty", lambda: b"", "a.xy", PatternReadError, "the file is empty"),
    ("blank", lambda: b"\n \r\n\t\n", "a.xy", PatternReadError, "the file is empty"),
    ("only comments", lambda: b"# a\n! b\n; c\n", "a.xy", PatternReadError, "only comment"),
    (
        "only text",
        lambda: b"sample quartz\noperator me\n",
        "a.txt",
        PatternReadError,
        "no numeric data",
    ),
    (
        "one column",
        lambda: text([f"{v:.1f}" for v in Y]),
        "a.xy",
        PatternReadError,
        "single column",
    ),
    (
        "UXD rocking curve",
        lambda: make.uxd_counts(SCAN).replace(b"_DRIVE='COUPLED'", b"_DRIVE='THETA'"),
        "a.uxd",
        PatternReadError,
        "the scan drive is 'THETA', not 2θ",
    ),
    (
        "UXD intensities without a start",
        lambda: re.sub(rb"_START=[^\r]*\r\n", b"", make.uxd_counts(SCAN)).replace(
            b"_2THETA=", b"_2THETAX="
        ),
        "a.uxd",
        PatternReadError,
        "no _START: its 2θ cannot be known",
    ),
    (
        "UXD NaN count",
        lambda: make.uxd_counts(SCAN).replace(b"_COUNTS\r\n", b"_COUNTS\r\n      nan", 1),
        "a.uxd",
        PatternReadError,
        "'nan' is NaN or infinite",
    ),
    (
        "pyFAI detector radius",
        lambda: make.pyfai_q(SCAN).replace(b"q_nm^-1", b"r_mm"),
        "a.dat",
        PatternReadError,
        "the first column is 'r_mm', not 2θ, q or d-spacing",
    ),
    (
        "Sietronics CPI without SCANDATA",
        lambda: make.sietronics_cpi(SCAN).replace(b"SCANDATA", b"DATA"),
        "a.cpi",
        PatternReadError,
        "no SCANDATA line after the 2θ start",
    ),
    (
        "Sietronics CPI step not a number",
        lambda: make.sietronics_cpi(SCAN).replace(b"0,050", b"0,O5", 1),
        "a.cpi",
        PatternReadError,
        "line 4, the 2θ step, is '0,O5', not a number",
    ),
    (
        "Philips UDF without RawScan",
        lambda: make.philips_udf(SCAN).split(b"RawScan")[0],
        "a.udf",
        PatternReadError,
        "no RawScan line",
    ),
    (
        "Philips UDF with no counts",
        lambda: make.philips_udf(SCAN).split(b"RawScan")[0] + b"RawScan\r\n/\r\n",
        "a.udf",
        PatternReadError,
        "RawScan is followed by no counts",
    ),
    (
        "Philips UDF without its angle range",
        lambda: re.sub(rb"DataAngleRange[^\r]*\r\n", b"", make.philips_udf(SCAN)),
        "a.udf",
        PatternReadError,
        "no DataAngleRange and ScanStepSize",
    ),
    (
        "Philips UDF letter in the counts",
        lambda: make.philips_udf(SCAN).replace(b"     500,", b"     5O0,", 1),
        "a.udf",
        PatternReadError,
        "'5O0' is not a number",
    ),
    (
        "Rigaku ASC rocking curve",
        lambda: make.rigaku_asc(SCAN).replace(b"2theta/theta", b"omega"),
        "a.asc",
        PatternReadError,
        "the scan axis is 'omega', not 2θ",
    ),
    (
        "Rigaku ASC without *START",
        lambda: re.sub(rb"\*START[^\r]*\r\n", b"", make.rigaku_asc(SCAN)),
        "a.asc",
        PatternReadError,
        "the group has no *START",
    ),
    (
        "Rigaku ASC NaN count",
        lambda: make.rigaku_asc(SCAN).replace(b"\r\n 500, ", b"\r\n nan, ", 1),
        "a.asc",
        PatternReadError,
        "'nan' is NaN or infinite",
    ),
    (
        "Rigaku ASC in radians",
        lambda: make.rigaku_asc(SCAN).replace(b"deg.", b"rad"),
        "a.asc",
        PatternReadError,
        "the scan axis is in 'rad', not degrees",
    ),
    (
        "Rigaku ASC without counts",
        lambda: make.rigaku_asc(SCAN).split(b"*COUNT")[0],
        "a.asc",
        PatternReadError,
        "no *BEGIN group with a *COUNT line",
    ),
    (
        "χPLOT detector radius",
        lambda: make.fit2d_chi(SCAN).replace(b"2-Theta Angle (Degrees)", b"Radial Distance (mm)"),
        "a.chi",
        PatternReadError,
        "the x axis is 'Radial Distance (mm)', a distance on the detector",
    ),
    (
        "χPLOT row cut short",
        lambda: make.fit2d_chi(SCAN).replace(b"1.0050000E+01   5.0000000E+02", b"1.0050000E+01", 1),
        "a.chi",
        PatternReadError,
        "line 6",
    ),
    (
        "q with no unit",
        lambda: make.pyfai_q(SCAN).replace(b"q_nm^-1", b"q"),
        "a.dat",
        PatternReadError,
        "the first column is q ('q') with no unit",
    ),
    (
        "non-numeric cell",
        lambda: with_line(57, "12.8000 12O4.0"),
        "a.xy",
        PatternReadError,
        "line 57: column 2 holds '12O4.0'",
    ),
    (
        "NaN",
        lambda: with_line(12, "10.5500 nan"),
        "a.xy",
        PatternReadError,
        "line 12: column 2 holds 'nan', not a finite number",
    ),
    (
        "inf",
        lambda: with_line(30, "11.4500 -Inf"),
        "a.xy",
        PatternReadError,
        "line 30: column 2 holds '-Inf'",
    ),
    (
        "NaN 2θ",
        lambda: with_line(1, "NaN 500.0"),
        "a.xy",
        PatternReadError,
        "line 1: column 1 holds 'NaN'",
    ),
    (
        "overflow",
        lambda: with_line(33, "11.6000 1e999"),
        "a.xy",
        PatternReadError,
        "line 33: column 2 holds a value too large",
    ),
    (
        "short line",
        lambda: with_line(40, "11.9500"),
        "a.xy",
        PatternReadError,
        "line 40: 1 value where the data has 2 columns",
    ),
    (
        "long line",
        lambda: with_line(40, "11.9500 1 2"),
        "a.xy",
        PatternReadError,
        "line 40: 3 values",
    ),
    (
        "text after data",
        lambda: text([*rows(), "END OF DATA"]),
        "a.xy",
        PatternReadError,
        f"line {N + 1}: column 1 holds 'END'",
    ),
    (
        "thousands separator",
        lambda: text([r.replace(".", ",") for r in rows()[:-1]] + ["13,9500 1.500,0"]),
        "a.csv",
        PatternReadError,
        "thousands separator",
    ),
    (
        "shuffled",
        lambda: text([rows()[i] for i in np.random.default_rng(1).permutation(N)]),
        "a.xy",
        PatternReadError,
        "not monotonic",
    ),
    (
        "duplicate 2θ",
        lambda: text(rows()[:20] + rows()[19:]),
        "a.xy",
        PatternReadError,
        "duplicate 2θ value",
    ),
    ("too few points", lambda: text(rows()[:20]), "a.xy", PatternReadError, "only 20 data points"),
    ("2θ ≥ 180", lambda: text(rows(X + 170.0)), "a.xy", PatternReadError, "outside (0°, 180°)"),
    ("2θ ≤ 0", lambda: text(rows(X - 12.0)), "a.xy", PatternReadError, "outside (0°, 180°)"),
    ("radians", lambda: text(rows(np.radians(X) - 0.2)), "a.xy", PatternReadError, "not radians"),
    ("constant", lambda: text(rows(X, np.full(N, 7.0))), "a.xy", PatternReadError, "constant"),
    (
        "binary garbage",
        lambda: bytes(np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8)),
        "a.xy",
        UnsupportedFormatError,
        "binary",
    ),
    (
        "NUL in text",
        lambda: text(rows())[:100] + b"\x00" + text(rows())[100:],
        "a.xy",
        UnsupportedFormatError,
        "binary",
    ),
    (
        "pdf",
        lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\x00\x01",
        "a.pdf",
        UnsupportedFormatError,
        "the file is a PDF document, not a pattern",
    ),
    ("long line", lambda: b"1 " * 600_000, "a.xy", PatternReadError, "characters long"),
    ("billion laughs", billion_laughs, "a.xrdml", PatternReadError, "DTD"),
    ("external entity", external_entity, "a.xrdml", PatternReadError, "DTD"),
    (
        "deep XML",
        lambda: b"<xrdMeasurements>" + b"<a>" * 50_000 + b"</a>" * 50_000 + b"</xrdMeasurements>",
        "a.xrdml",
        PatternReadError,
        "nests elements more than",
    ),
    ("broken XML", lambda: make.xrdml(SCAN)[:-300], "a.xrdml", PatternReadError, "not well-formed"),
    (
        "XRDML without scan",
        lambda: b"<xrdMeasurements><sample/></xrdMeasurements>",
        "a.xrdml",
        PatternReadError,
        "no <scan>",
    ),
    (
        "XRDML list length",
        lambda: make.xrdml(SCAN).replace(b"<listPositions>", b"<listPositions>9.95 ", 1),
        "a.xrdml",
        PatternReadError,
        "81 listed 2θ positions for 80",
    ),
    (
        "XRDML bad count",
        lambda: make.xrdml(SCAN).replace(
            b'<intensities unit="counts">', b'<intensities unit="counts">x', 1
        ),
        "a.xrdml",
        PatternReadError,
        "not a number",
    ),
    (
        "other XML",
        lambda: b"<?xml version='1.0'?><svg><rect/></svg>",
        "a.xml",
        UnsupportedFormatError,
        "root <svg>",
    ),
    (
        "bare brml member",
        lambda: make.brml_raw_data(SCAN),
        "RawData0.xml",
        UnsupportedFormatError,
        "upload the whole .brml",
    ),
    (
        "brml zip bomb",
        lambda: zip_bomb("Experiment0/RawData0.xml", 60 * 1024 * 1024),
        "a.brml",
        PatternReadError,
        "over the 52,428,800-byte limit (or a zip bomb)",
    ),
    (
        "rasx zip bomb",
        lambda: zip_bomb("Data0/Profile0.txt", 60 * 1024 * 1024),
        "a.rasx",
        PatternReadError,
        "zip bomb",
    ),
    (
        "forged zip size",
        lambda: forged_size_zip("Data0/Profile0.txt", 1_000_000, 2000),
        "a.rasx",
        PatternReadError,
        "corrupt",
    ),
    ("too many members", many_members, "a.rasx", PatternReadError, "2500 members"),
    (
        "truncated zip",
        lambda: make.brml(SCAN)[:-200],
        "a.brml",
        PatternReadError,
        "cannot be opened",
    ),
    (
        "excel",
        lambda: make.zip_bytes({"xl/workbook.xml": b"<workbook/>"}),
        "a.xlsx",
        UnsupportedFormatError,
        "Excel workbook",
    ),
    ("empty zip", lambda: make.zip_bytes({}), "a.rasx", UnsupportedFormatError, "members: none"),
    (
        "brml bad datum",
        lambda: make.brml(
            SCAN, raw_data=make.brml_raw_data(SCAN).replace(b"<Datum>2,1,", b"<Datum>2,", 1)
        ),
        "a.brml",
        PatternReadError,
        "Datum row 2 has 5 values, the first has 4",
    ),
    (
        "RAW v4 rocking curve",
        lambda: make.raw_v4(SCAN, scan_type="Rocking Curve"),
        "a.raw",
        PatternReadError,
        "not a 2θ scan",
    ),
    (
        "RAW v4 lying count",
        lambda: make.raw_v4(SCAN, n_points=10_000),
        "a.raw",
        PatternReadError,
        "declares 10,000 points",
    ),
    ("RAW v4 truncated", lambda: make.raw_v4(SCAN)[:300], "a.raw", PatternReadError, "truncated"),
    (
        "RAW v3 count too high",
        lambda: make.raw_v3(SCAN, n_points=81),
        "a.raw",
        PatternReadError,
        "range 1 declares 81 points",
    ),
    (
        "RAW v3 count too low",
        lambda: make.raw_v3(SCAN, n_points=70),
        "a.raw",
        PatternReadError,
        "40 bytes of data follow the 70 points",
    ),
    (
        "RAW v3 huge count",
        lambda: make.raw_v3(SCAN, n_points=2**32 - 1),
        "a.raw",
        PatternReadError,
        "claims 4,294,967,295 points",
    ),
    (
        "RAW header only",
        lambda: b"RAW1.01\x00" + b"\x00" * 100,
        "a.raw",
        PatternReadError,
        "declares no ranges",
    ),
    ("RAW v2 cut", lambda: make.raw_v2(SCAN)[:200], "a.raw", PatternReadError, "truncated"),
    (
        "Philips raw",
        lambda: b"V3" + bytes(range(256)) * 8,
        "a.raw",
        UnsupportedFormatError,
        "name says .raw",
    ),
    (
        "GSAS truncated",
        lambda: make.gsas_std(SCAN)[:-200],
        "a.gsa",
        PatternReadError,
        "the file is truncated",
    ),
    (
        "GSAS TOF",
        lambda: b"title\nBANK 1 100 10 SLOG 1000 20000 0.0005 0 FXYE\n",
        "a.gsa",
        PatternReadError,
        "time-of-flight",
    ),
    (
        "GSAS bad value",
        lambda: make.fxye(SCAN).replace(b"1005.0000", b"1005.00x0", 1),
        "a.fxye",
        PatternReadError,
        "line 5: '1005.00x0' is not a number",
    ),
    (
        "CIF ragged loop",
        lambda: make.pdcif_scan(SCAN).rstrip() + b" 99.0\n",
        "a.cif",
        PatternReadError,
        "a row is incomplete",
    ),
    (
        "CIF missing value",
        lambda: make.pdcif_range(SCAN).replace(b"  500(22)", b"  ?", 1),
        "a.cif",
        PatternReadError,
        "missing ('?' or '.')",
    ),
    (
        "CIF range mismatch",
        lambda: make.pdcif_range(SCAN).replace(
            b"_pd_meas_2theta_range_max   13.95", b"_pd_meas_2theta_range_max   20.00"
        ),
        "a.cif",
        PatternReadError,
        "disagree",
    ),
    (
        "CIF open text field",
        lambda: b"data_x\n_pd_meas_counts_total\n;\nnever closed\n",
        "a.cif",
        PatternReadError,
        "never closed",
    ),
    (
        "structure CIF",
        lambda: b"data_NaCl\n_cell_length_a 5.64\nloop_\n_atom_site_label\nNa1\n",
        "a.cif",
        UnsupportedFormatError,
        "crystal structure",
    ),
    (
        "calc-only CIF",
        lambda: b"data_x\n_pd_meas_2theta_range_min 1\nloop_\n_pd_calc_intensity_total\n1\n2\n",
        "a.cif",
        PatternReadError,
        "only calculated",
    ),
    (
        "RAS without end",
        lambda: make.ras(SCAN).replace(b"*RAS_INT_END", b""),
        "a.ras",
        PatternReadError,
        "no *RAS_INT_END",
    ),
    (
        "RAS bad row",
        lambda: make.ras(SCAN).replace(b"10.0500 ", b"10.0500 x", 1),
        "a.ras",
        PatternReadError,
        "line 22: column 2 holds 'x500.0000'",
    ),
]


def test_a_reversed_scan_reads_increasing() -> None:
    pattern = read_pattern(text(rows()[::-1]))
    np.testing.assert_allclose(pattern.two_theta_deg, X)
    np.testing.assert_allclose(pattern.intensity, Y, atol=0.05)


def test_size_cap_applies_to_every_kind_of_source(tmp_path: Path) -> None:
    data = text(rows())
    path = tmp_path / "scan.xy"
    path.write_bytes(data)
    for source in (data, path, str(path), io.BytesIO(data)):
        with pytest.raises(PatternReadError, match="more than the 100-byte limit"):
            read_pattern(source, max_bytes=100)  # type: ignore[arg-type]
    assert read_pattern(path, max_bytes=len(data)).n_points == N


def test_zip_member_cap_follows_max_bytes(data_dir: Path) -> None:
    data = make.rasx(make.load_source_scan(data_dir))  # 17 kB holding a 70 kB profile
    assert read_pattern(data).n_points == 3651
    with pytest.raises(PatternReadError, match="over the 30,000-byte limit"):
        read_pattern(data, max_bytes=30_000)


def test_unreadable_sources(tmp_path: Path) -> None:
    with pytest.raises(PatternReadError, match="cannot open the file"):
        read_pattern(tmp_path / "missing.xy")
    with pytest.raises(PatternReadError, match="cannot open the file"):
        read_pattern(tmp_path)
    with pytest.raises(PatternReadError, match="binary mode"):
        read_pattern(io.StringIO("10 1\n"))  # type: ignore[arg-type]
    with pytest.raises(PatternReadError, match="cannot read a pattern from a int"):
        read_pattern(42)  # type: ignore[arg-type]


def test_truncated_real_raw(patterns_dir: Path) -> None:
    data = real_raw(patterns_dir)
    for cut in (8, 100, 711, 900, 1016, 5000, len(data) - 1):
        with pytest.raises(PatternReadError) as caught:
            read_pattern(data[:cut], "D5000_1.RAW")
        assert "truncated" in str(caught.value) or "declares" in str(caught.value)


def test_real_raw_with_a_lying_point_count(patterns_dir: Path) -> None:
    data = bytearray(real_raw(patterns_dir))
    struct.pack_into("<I", data, 712 + 4, 3652)
    with pytest.raises(PatternReadError, match="declares 3,652 points"):
        read_pattern(bytes(data), "D5000_1.RAW")
    struct.pack_into("<I", data, 712 + 4, 3000)
    with pytest.raises(PatternReadError, match="point count is wrong"):
        read_pattern(bytes(data), "D5000_1.RAW")
    struct.pack_into("<I", data, 712, 0xFFFFFFF0)  # header length past the end
    with pytest.raises(PatternReadError, match="point count"):
        read_pattern(bytes(data), "D5000_1.RAW")


# ------------------------------------------------- mutation fuzzing

SMALL_FILES = {
    "raw_v1": make.raw_v1(SCAN),
    "raw_v2": make.raw_v2(SCAN),
    "raw_v3": make.raw_v3(SCAN),
    "raw_v4": make.raw_v4(SCAN),
    "xrdml": make.xrdml(SCAN),
    "brml": make.brml(SCAN),
    "ras": make.ras(SCAN),
    "rasx": make.rasx(SCAN),
    "gsas_std": make.gsas_std(SCAN),
    "gsas_esd": make.gsas_esd(SCAN),
    "fxye": make.fxye(SCAN),
    "cif_range": make.pdcif_range(SCAN),
    "cif_scan": make.pdcif_scan(SCAN),
    "csv": make.text_excel_german(SCAN),
    "utf16": make.text_utf16(SCAN),
    "uxd": make.uxd_counts(SCAN),
    "uxd_pairs": make.uxd_pairs(SCAN),
    "pyfai_q": make.pyfai_q(SCAN),
    "chi": make.fit2d_chi(SCAN),
    "asc": make.rigaku_asc(SCAN),
    "udf": make.philips_udf(SCAN),
    "rd": make.philips_rd(SCAN),
    "cpi": make.sietronics_cpi(SCAN),
}


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SMALL_FILES[draw(st.sampled_from(sorted(SMALL_FILES)))])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete", "splice"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            data[at:at] = data[: draw(st.integers(0, 64))]
    return bytes(data)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.sampled_from([None, "f.xy", "f.raw", "f.xrdml", "f.brml", "f.cif"]))
def test_damaged_files_of_every_format_only_raise_pattern_read_error(
    data: bytes, filename: str | None
) -> None:
    try:
        pattern = read_pattern(data, filename)
    except PatternReadError as exc:
        assert "internal error" not in str(exc), str(exc)
    else:
        assert pattern.n_points >= 50
        assert np.all(np.diff(pattern.two_theta_deg) > 0)


# ------------------------------------------------- Raman files

RAMAN_DIR = Path(__file__).resolve().parent / "files" / "raman"
WDF = (RAMAN_DIR / "Spectrum_532nm_wdf.wdf").read_bytes()
SPC = (RAMAN_DIR / "Spectrum_532nm_wdf_spc.spc").read_bytes()
JCAMP = (RAMAN_DIR / "tannic_acid.jdx").read_bytes()
RAMAN_SHIFT = np.linspace(150.0, 1300.0, 400)
RRUFF = (
    "##NAMES=Calcite\n##RRUFFID=R040070\n##IDEAL CHEMISTRY=CaCO_3_\n"
    + "".join(f"{x:.3f}, {10 + 900 * np.exp(-(((x - 1086) / 4) ** 2)):.2f}\n" for x in RAMAN_SHIFT)
    + "##END=\n"
).encode()


def wdf_with(offset: int, fmt: str, value: int) -> bytes:
    data = bytearray(WDF)
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


RAMAN_BAD_FILES: list[tuple[str, Callable[[], bytes], str | None, type[Exception], str]] = [
    ("WDF header cut", lambda: WDF[:60], "a.wdf", PatternReadError, "truncated inside its header"),
    ("WDF truncated", lambda: WDF[:3000], "a.wdf", PatternReadError, "cannot hold"),
    (
        "WDF zero-size block",  # renishawWiRE would loop for ever on it
        lambda: wdf_with(WDF.index(b"DATA") + 8, "<Q", 0),
        "a.wdf",
        PatternReadError,
        "less than its own header",
    ),
    (
        "WDF impossible count",
        lambda: wdf_with(0x3C + 12, "<Q", 10**9),
        "a.wdf",
        PatternReadError,
        "cannot hold",
    ),
    ("SPC header only", lambda: SPC[:520], "a.spc", PatternReadError, "not a readable"),
    (
        "JCAMP without NPOINTS",
        lambda: (
            b"##TITLE=x\n##JCAMP-DX=5.01\n##DATA TYPE=RAMAN SPECTRUM\n##XUNITS=1/CM\n"
            b"##FIRSTX=100\n##LASTX=200\n##XYDATA=(X++(Y..Y))\n100 1 2 3\n##END=\n"
        ),
        "a.jdx",
        PatternReadError,
        "lacks ##NPOINTS",
    ),
    (
        "JCAMP without data",
        lambda: JCAMP.split(b"##XYDATA")[0] + b"##END=\n",
        "a.jdx",
        PatternReadError,
        "0 x and 0 y values",
    ),
    (
        "JCAMP in micrometres of something else",
        lambda: JCAMP.replace(b"##XUNITS=1/CM", b"##XUNITS=SECONDS"),
        "a.jdx",
        PatternReadError,
        "'SECONDS'",
    ),
    (
        "RRUFF bad row",
        lambda: b"\n".join(
            b"15o.0, 3" if number == 10 else line for number, line in enumerate(RRUFF.split(b"\n"))
        ),
        "a.txt",
        PatternReadError,
        "not a number",
    ),
    (
        "RRUFF duplicate shift",
        lambda: RRUFF.replace(b"##END=\n", b"1300.000, 5\n##END=\n"),
        "a.txt",
        PatternReadError,
        "duplicate Raman shift 1300",
    ),
    (
        "Raman text in absolute wavenumbers, no laser",
        lambda: "".join(f"{18797 - x:.2f} {x:.1f}\n" for x in RAMAN_SHIFT).encode(),
        "a.txt",
        PatternReadError,
        "states no laser wavelength",
    ),
]


# Files that are no pattern, by their first bytes: what each is said to be.
NOT_PATTERNS = {
    "little-endian TIFF": (b"II*\x00", "a TIFF image"),
    "big-endian TIFF (its second byte is an SPC version)": (b"MM\x00*", "a TIFF image"),
    "CBF": (b"###CBF: VERSION 1.5\n", "a CBF detector image"),
    "EDF": (b"{\nHeaderID = EH:000001:000000:000000 ;\nImage = 1 ;\n}\n", "an ESRF EDF"),
    "sfrm": (b"FORMAT :        100" + b" " * 62 + b"HDRBLKS:        15", "a Bruker area-detector"),
    "HDF5": (b"\x89HDF\r\n\x1a\n", "an HDF5/NeXus container"),
    "PNG": (b"\x89PNG\r\n\x1a\n", "a PNG picture"),
    "PDF": (b"%PDF-1.7\n", "a PDF document"),
    "xls": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "save the sheet of 2θ and intensity as CSV"),
    "STOE raw": (b"RAW_1.06Powdat\x00\x00", "export the scan from WinXPOW as .xy text"),
}


@pytest.mark.parametrize("read", [read_pattern, read_measurement])
@pytest.mark.parametrize("kind", sorted(NOT_PATTERNS))
def test_a_detector_image_picture_or_document_is_named_for_what_it_is(
    read: Callable[[bytes, str | None], object], kind: str
) -> None:
    magic, phrase = NOT_PATTERNS[kind]
    with pytest.raises(UnsupportedFormatError, match="the file is ") as caught:
        read(magic + bytes(range(256)) * 8, "upload.bin")
    assert phrase in str(caught.value)


@pytest.mark.parametrize(
    ("read", "build", "filename", "error", "phrase"),
    [pytest.param(read_pattern, *case[1:], id=case[0]) for case in BAD_FILES]
    + [pytest.param(read_measurement, *case[1:], id=case[0]) for case in RAMAN_BAD_FILES],
)
def test_bad_files_fail_with_a_clear_message(
    read: Callable[[bytes, str | None], object],
    build: Callable[[], bytes],
    filename: str | None,
    error: type[Exception],
    phrase: str,
) -> None:
    """XRD patterns through read_pattern; Raman spectra as /identify reads them."""
    with pytest.raises(error) as caught:
        read(build(), filename)
    assert phrase in str(caught.value)
    assert filename is None or str(caught.value).startswith(filename)
    assert "internal error" not in str(caught.value)


def test_implausible_laser_is_refused() -> None:
    with pytest.raises(PatternReadError, match="laser wavelength 5320 nm is outside"):
        read_measurement(RRUFF, "a.txt", laser_wavelength_nm=5320)


RAMAN_FILES = {"wdf": WDF, "spc": SPC, "jcamp": JCAMP, "rruff": RRUFF}


@st.composite
def mutated_raman(draw: st.DrawFn) -> bytes:
    data = bytearray(RAMAN_FILES[draw(st.sampled_from(sorted(RAMAN_FILES)))])
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_raman(), st.sampled_from([None, "f.wdf", "f.spc", "f.jdx", "f.txt"]))
def test_damaged_raman_files_only_raise_pattern_read_error(
    data: bytes, filename: str | None
) -> None:
    try:
        measurement = read_measurement(data, filename)
    except PatternReadError as exc:
        assert "internal error" not in str(exc), str(exc)
    else:
        assert measurement.n_points >= 50
