"""The column text reader: dialects, headers, σ, tables, and properties."""

from __future__ import annotations

import codecs

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from xrdid.data_paths import shared_data_dir
from xrdid.errors import PatternReadError, UnsupportedFormatError
from xrdid.readers import _columns, _numbers, read_pattern, read_pattern_table
from xrdid.readers._columns import parse_columns
from xrdid.readers._textdecode import decode_text

N = 60
X = np.round(10.0 + 0.05 * np.arange(N), 4)
Y = np.round(1000.0 + 800.0 * np.exp(-((X - 11.5) ** 2) / 0.02) + 10 * np.sin(X), 1)


def table(
    separator: str = " ",
    decimal: str = ".",
    header: str | None = None,
    comments: tuple[str, ...] = (),
    newline: str = "\n",
    sigma: np.ndarray | None = None,
) -> str:
    lines = list(comments)
    if header is not None:
        lines.append(header)
    for index in range(N):
        values = [repr(float(X[index])), repr(float(Y[index]))]
        if sigma is not None:
            values.append(repr(float(sigma[index])))
        if decimal == ",":
            values = [value.replace(".", ",") for value in values]
        lines.append(separator.join(values))
    return newline.join(lines) + newline


def assert_reads_back(pattern, sigma: np.ndarray | None = None) -> None:  # type: ignore[no-untyped-def]
    np.testing.assert_array_equal(pattern.two_theta_deg, X)
    np.testing.assert_array_equal(pattern.intensity, Y)
    if sigma is None:
        assert pattern.sigma is None
    else:
        np.testing.assert_array_equal(pattern.sigma, sigma)


@pytest.mark.parametrize(
    ("content", "layout"),
    [
        (table(" "), "whitespace-separated, decimal '.'"),
        (table("\t"), "whitespace-separated, decimal '.'"),
        (table("   "), "whitespace-separated, decimal '.'"),
        (table(","), "comma-separated, decimal '.'"),
        (table(", "), "comma-separated, decimal '.'"),
        (table(";"), "semicolon-separated, decimal '.'"),
        (table(";", ","), "semicolon-separated, decimal ','"),
        (table(" ", ","), "whitespace-separated, decimal ','"),
        (table("\t", ","), "whitespace-separated, decimal ','"),
        (table(",", header="tth,counts"), "comma-separated, decimal '.'"),
        (table(" ", header="2Theta Intensity"), "whitespace-separated, decimal '.'"),
        (table(" ", header="2 Theta   Counts"), "whitespace-separated, decimal '.'"),
        (table(";", ",", header="2θ;Intensität"), "semicolon-separated, decimal ','"),
    ],
)
def test_separators_decimal_marks_and_headers(content: str, layout: str) -> None:
    pattern = read_pattern(content.encode(), "scan.txt")
    assert_reads_back(pattern)
    assert pattern.metadata["layout"] == layout


def test_the_three_comma_readings_are_told_apart() -> None:
    assert read_pattern(table(",").encode()).metadata["layout"].startswith("comma")
    assert read_pattern(table(";", ",").encode()).metadata["layout"].startswith("semicolon")
    assert read_pattern(table(" ", ",").encode()).metadata["layout"].endswith("','")
    # "10,02;2001" and "10,02 2001" are decimal commas; "10.0,2001" is a delimiter.
    for line, expected in (("10,02;2001", 10.02), ("10,02 2001", 10.02), ("10.0,2001", 10.0)):
        rows = "\n".join(
            line.replace("10", str(10 + k), 1).replace("2001", str(2001 + k % 7)) for k in range(N)
        )
        assert read_pattern(rows.encode()).two_theta_deg[0] == pytest.approx(expected)


@pytest.mark.parametrize("prefix", ["#", "!", ";", "//", "%", "*", "@"])
def test_comment_styles(prefix: str) -> None:
    content = table(comments=(f"{prefix} sample 7", f"{prefix} λ = 1.5406 Å"))
    content = content.replace("\n", f"\n{prefix} a comment between rows\n", 3)
    assert_reads_back(read_pattern(content.encode()))


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("utf-8"),
        lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
        lambda text: text.encode("latin-1"),
        lambda text: text.encode("utf-16"),  # with BOM
        lambda text: text.encode("utf-16-le"),  # no BOM
        lambda text: text.encode("utf-16-be"),
        lambda text: text.replace("\n", "\r\n").encode(),
        lambda text: text.replace("\n", "\r").encode(),
        lambda text: (text + "\x1a").encode(),  # DOS end-of-file mark
    ],
    ids=["utf8", "utf8-bom", "latin1", "utf16", "utf16le", "utf16be", "crlf", "cr", "ctrl-z"],
)
def test_encodings_and_line_endings(encode) -> None:  # type: ignore[no-untyped-def]
    content = table("\t", header="2Theta (°)\tcounts", comments=("# Messung: Quarz, 25 °C",))
    assert_reads_back(read_pattern(encode(content), "scan.xy"))


def test_quoted_csv_trailing_delimiters_inline_comments_and_blank_lines() -> None:
    lines = ['"tth","counts"']
    for index in range(N):
        lines.append(f'"{float(X[index])!r}","{float(Y[index])!r}",  # point {index}')
        if index % 10 == 0:
            lines.append("")
    assert_reads_back(read_pattern("\n".join(lines).encode(), "export.csv"))


def test_a_number_sign_in_column_names_is_no_comment_but_a_trailing_comment_is() -> None:
    names = read_pattern(("2Theta;Counts #1\n" + table(";")).encode(), "scan.csv")
    assert names.metadata["intensity_column"] == "Counts #1"
    commented = read_pattern(("2theta intensity # as measured\n" + table()).encode(), "scan.xy")
    assert commented.metadata["intensity_column"] == "intensity"
    assert_reads_back(commented)


def test_third_column_is_sigma_when_plausible_or_named() -> None:
    sigma = np.round(np.sqrt(Y), 3)
    assert_reads_back(read_pattern(table(sigma=sigma).encode(), "scan.xye"), sigma)
    named = table(header="2theta I esd", sigma=Y * 0.9)  # implausible but named: trusted
    assert_reads_back(read_pattern(named.encode()), Y * 0.9)


@pytest.mark.parametrize(
    ("header", "third", "phrase"),
    [
        (None, Y * 0.95, "column 3 ignored: it is not an uncertainty"),
        (None, -np.sqrt(Y), "column 3 ignored: it is not an uncertainty"),
        (
            "tth obs background",
            np.sqrt(Y),
            "background ignored: obs read as the measured intensity",
        ),
    ],
)
def test_second_intensity_column_is_ignored_with_a_warning_or_read_as_table(
    header: str | None, third: np.ndarray, phrase: str
) -> None:
    content = table(header=header, sigma=third).encode()
    pattern = read_pattern(content)
    assert phrase in pattern.metadata["reader_warning"]
    assert pattern.sigma is None
    np.testing.assert_array_equal(pattern.intensity, Y)
    patterns = read_pattern_table(content)
    assert len(patterns) == 2
    np.testing.assert_array_equal(list(patterns.values())[1].intensity, third)


def _rows(*columns: np.ndarray, separator: str = ",") -> list[str]:
    return [separator.join(repr(float(v)) for v in values) for values in zip(*columns, strict=True)]


ROW_NUMBERS = np.arange(1.0, N + 1)


@pytest.mark.parametrize(
    ("lines", "phrase"),
    [
        # An export that numbers its rows before the axis, named or not.
        (["No.,2Theta,Intensity", *_rows(ROW_NUMBERS, X, Y)], "'No.' numbers the rows"),
        (_rows(ROW_NUMBERS - 1, X, Y, separator=" "), "column 1 numbers the rows"),
        # The axis named, though not first.
        (["Intensity,2Theta", *_rows(Y, X)], "'2Theta' read as 2θ, not the first column"),
        (
            ["No.;Time;Angle;Counts", *_rows(ROW_NUMBERS, 0.5 * ROW_NUMBERS, X, Y, separator=";")],
            "'Angle' read as 2θ, not the first column 'Time'; Time ignored: Counts read",
        ),
        (["2Theta,Background,Counts", *_rows(X, 0.1 * Y, Y)], "Background ignored: Counts read"),
    ],
)
def test_the_axis_and_intensity_columns_are_found_by_name_or_row_numbers(
    lines: list[str], phrase: str
) -> None:
    pattern = read_pattern("\n".join(lines).encode(), "export.csv")
    assert_reads_back(pattern)
    assert phrase in pattern.metadata["reader_warning"]


def test_row_numbers_are_an_axis_only_when_nothing_else_can_be() -> None:
    # Row numbers and one column: no axis at all.
    content = "\n".join(["Point,Intensity", *_rows(ROW_NUMBERS, Y)]).encode()
    with pytest.raises(PatternReadError, match="numbers the rows.*holds no axis"):
        read_pattern(content)
    # Unnamed whole-degree steps from 1° beside an intensity are a (coarse) 2θ axis.
    coarse = read_pattern("\n".join(_rows(ROW_NUMBERS, Y, separator=" ")).encode())
    np.testing.assert_array_equal(coarse.two_theta_deg, ROW_NUMBERS)
    assert "reader_warning" not in coarse.metadata


def test_wide_table_names_and_duplicates() -> None:
    header = "tth,a,b,a"
    rows = [f"{x},{y},{2 * y},{3 * y}" for x, y in zip(X.tolist(), Y.tolist(), strict=True)]
    content = "\n".join([header, *rows]).encode()
    with pytest.raises(PatternReadError, match=r"3 intensity columns \(a, b, a\)"):
        read_pattern(content, "library.csv")
    patterns = read_pattern_table(content, "library.csv")
    assert list(patterns) == ["a", "b", "a (2)"]
    np.testing.assert_array_equal(patterns["a (2)"].intensity, 3 * Y)


def test_table_column_that_is_not_a_pattern() -> None:
    rows = [f"{x} {y} 5" for x, y in zip(X.tolist(), Y.tolist(), strict=True)]
    content = "\n".join(["tth q flat", *rows]).encode()
    with pytest.raises(PatternReadError, match="'flat'.*constant.*skip_invalid"):
        read_pattern_table(content)
    assert list(read_pattern_table(content, skip_invalid=True)) == ["q"]


def test_table_reader_refuses_single_pattern_formats() -> None:
    from tests.files.make_pattern_files import Scan, xrdml

    content = xrdml(Scan(10.0, 0.05, Y.copy()))
    with pytest.raises(PatternReadError, match="use read_pattern"):
        read_pattern_table(content, "scan.xrdml")


def test_reversed_file_comes_out_increasing() -> None:
    lines = table().splitlines()[::-1]
    pattern = read_pattern("\n".join(lines).encode())
    assert_reads_back(pattern)


def test_metadata_keeps_the_header() -> None:
    pattern = read_pattern(table(header="tth counts", comments=("# sample: quartz",)).encode())
    assert pattern.metadata["format"] == "text"
    assert "sample: quartz" in pattern.metadata["header"]
    assert pattern.metadata["intensity_column"] == "counts"
    assert pattern.wavelength is None


_SHARED_TEXT_FILES = (
    sorted(
        path
        for path in (shared_data_dir() / "patterns").rglob("*")
        if path.suffix.lower() in {".xy", ".csv", ".txt", ".dat"}
    )
    if (shared_data_dir() / "patterns").is_dir()
    else []
)


@pytest.mark.skipif(not _SHARED_TEXT_FILES, reason="../shared/data/patterns not found")
def test_whole_block_reading_matches_line_by_line_on_every_real_text_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """numpy's whole-block parse (plain exports) reads exactly what the line
    readers read, on every real text file, and takes most of them."""
    block_read = 0
    for path in _SHARED_TEXT_FILES:
        text = decode_text(path.read_bytes(), path.name)
        try:
            fast = parse_columns(text, path.name)
        except PatternReadError:
            continue
        with monkeypatch.context() as patch:
            patch.setattr(_columns, "_block_columns", lambda *args: None)
            slow = parse_columns(text, path.name)
        for a, b in zip(fast.columns, slow.columns, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=str(path))
        assert (fast.names, fast.dialect, fast.first_data_line, fast.header) == (
            slow.names,
            slow.dialect,
            slow.first_data_line,
            slow.header,
        )
        skip = fast.first_data_line - 1
        block_read += _columns._block_columns(text, skip, fast.dialect, fast.n_columns) is not None
    assert block_read >= len(_SHARED_TEXT_FILES) // 2


def test_a_bad_row_far_into_a_plain_block_is_still_named_by_line() -> None:
    rows = [f"{10 + 0.01 * i:.2f} {100 + i}" for i in range(600)]
    for bad, message in (
        ("15.00 nan", "holds 'nan'"),
        ("15.00", "1 value where"),
        ("15.00 1e999", "too large"),
    ):
        lines = rows.copy()
        lines[449] = bad
        with pytest.raises(PatternReadError, match=message) as caught:
            read_pattern("\n".join(lines).encode(), "scan.xy")
        assert caught.value.line == 450


def _fixed_width(rows: dict[int, str]) -> bytes:
    """60 rows of an evenly stepped (0.0496°) fixed-width export, some replaced."""
    lines = [f"{10 + 0.0496 * i:.4f} {100 + i:4d}" for i in range(60)]
    for index, row in rows.items():
        lines[index] = row
    return "\n".join(lines).encode()


def test_run_together_rows_are_split_where_the_step_puts_the_next_angle() -> None:
    # Row 41 is 11.9840°: a 5-digit count fills its field; row 46 is
    # 12.2320° written without its trailing zero, the count 9 touching it.
    pattern = read_pattern(_fixed_width({40: "11.984010228", 45: " 12.2329"}), "film.xy")
    assert pattern.two_theta_deg[40] == pytest.approx(11.984)
    assert pattern.intensity[40] == 10228
    assert pattern.two_theta_deg[45] == pytest.approx(12.232)
    assert pattern.intensity[45] == 9
    assert pattern.metadata["reader_warning"].startswith("lines 41, 46: the axis value")


@pytest.mark.parametrize(
    ("rows", "line"),
    [
        ({40: "11.98"}, 41),  # a row cut off: no split lands on 11.9840
        ({45: "12.2320"}, 46),  # cut off after a 0: 12.232 and "0", or 12.23 and "20"?
        ({40: "12.0336140"}, 41),  # a step on: not this row's angle
        ({1: "10.04961234"}, 2),  # no step known yet
    ],
)
def test_rows_no_split_explains_are_still_refused(rows: dict[int, str], line: int) -> None:
    with pytest.raises(PatternReadError, match="1 value where the data has 2 columns") as caught:
        read_pattern(_fixed_width(rows), "film.xy")
    assert caught.value.line == line


def test_run_together_rows_are_only_split_in_two_column_files() -> None:
    lines = [f"{10 + 0.05 * i:.2f} {100 + i} {10 + i}" for i in range(60)]
    lines[40] = "12.00140 52"
    with pytest.raises(PatternReadError, match="2 values where the data has 3 columns"):
        read_pattern("\n".join(lines).encode(), "scan.xye")


# ----------------------------------------------------------- properties

_SEPARATORS = st.sampled_from([" ", "  ", "\t", ",", ", ", ";", " ; "])
_NEWLINES = st.sampled_from(["\n", "\r\n", "\r"])
_COMMENTS = st.lists(
    st.tuples(
        st.sampled_from(["#", "!", ";", "//", "%"]),
        st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20),
    ),
    max_size=3,
)


@st.composite
def column_tables(draw: st.DrawFn) -> tuple[str, np.ndarray, np.ndarray, np.ndarray | None]:
    n = draw(st.integers(50, 90))
    start = draw(st.floats(0.5, 60.0))
    steps = draw(st.lists(st.floats(0.001, 1.0), min_size=n - 1, max_size=n - 1))
    x = start + np.concatenate([[0.0], np.cumsum(steps)])
    assume(np.all(np.diff(x) > 0) and x[-1] < 179.0)
    y = np.array(draw(st.lists(st.floats(1.0, 1e6), min_size=n, max_size=n)))
    assume(np.ptp(y) > 0)
    with_sigma = draw(st.booleans())
    sigma = y * np.array(draw(st.lists(st.floats(0.0, 0.4), min_size=n, max_size=n)))
    separator = draw(_SEPARATORS)
    decimal = draw(st.sampled_from([".", ","]) if "," not in separator else st.just("."))
    header = draw(st.sampled_from([None, "2theta intensity", "tth I", "2 Theta Counts"]))
    if header and with_sigma:
        header += " esd"
    lines = [
        f"{mark} {text}".replace("\r", " ").replace("\n", " ") for mark, text in draw(_COMMENTS)
    ]
    if header:
        lines.append(header.replace(" ", separator.strip() or " "))
    for index in range(n):
        values = [repr(float(x[index])), repr(float(y[index]))]
        if with_sigma:
            values.append(repr(float(sigma[index])))
        if decimal == ",":
            values = [value.replace(".", ",") for value in values]
        lines.append(separator.join(values))
    newline = draw(_NEWLINES)
    return newline.join(lines) + newline, x, y, (sigma if with_sigma else None)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(column_tables(), st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]))
def test_any_valid_table_reads_back_exactly(
    case: tuple[str, np.ndarray, np.ndarray, np.ndarray | None], encoding: str
) -> None:
    content, x, y, sigma = case
    try:
        data = content.encode(encoding)
    except UnicodeEncodeError:
        data = content.encode("utf-8")
    pattern = read_pattern(data, "generated.xy")
    np.testing.assert_array_equal(pattern.two_theta_deg, x)
    np.testing.assert_array_equal(pattern.intensity, y)
    if sigma is None:
        assert pattern.sigma is None
    else:
        np.testing.assert_array_equal(pattern.sigma, sigma)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from([None, "x.xy", "x.csv", "x.raw", "x.xrdml"]))
def test_random_bytes_only_ever_raise_pattern_read_error(data: bytes, name: str | None) -> None:
    try:
        read_pattern(data, name)
    except PatternReadError as exc:
        assert "internal error" not in str(exc)


_TEXTISH = st.text(
    alphabet=st.sampled_from(list("0123456789.,;:-+eE \t\n\r#!*/\"'abcnaifNAIF()_<>?")),
    max_size=2000,
)


@settings(max_examples=150, deadline=None)
@given(_TEXTISH)
def test_random_text_only_ever_raises_pattern_read_error(text: str) -> None:
    try:
        read_pattern(text.encode(), "fuzz.txt")
    except PatternReadError as exc:
        assert "internal error" not in str(exc)


def test_binary_garbage_is_unsupported() -> None:
    with pytest.raises(UnsupportedFormatError, match="binary"):
        read_pattern(bytes(range(256)) * 4, "scan.xy")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.from_regex(_numbers.FLOAT, fullmatch=True),
            st.sampled_from(["nan", "-inf", "1e999", "1_000", "0x10", "1.5.2", "−1"]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_many_numbers_at_once_read_as_one_at_a_time(tokens: list[str]) -> None:
    one_by_one = [_numbers.parse_float(token) for token in tokens]
    at_once = _numbers.parse_floats(tokens)
    if any(value is None for value in one_by_one):
        assert at_once is None
    else:
        assert at_once is not None
        np.testing.assert_array_equal(at_once, np.array(one_by_one, dtype=np.float64))


OBS_X = np.arange(10.0, 80.0, 0.02)
OBS_Y = 100.0 + 900.0 * np.exp(-((OBS_X - 26.6) ** 2) / 0.01)


@pytest.mark.parametrize(
    ("header", "row", "read", "ignored"),
    [
        (  # GSAS-II's CSV export of a refinement
            "x,y_obs,weight,y_calc,y_bkg,Q",
            lambda x, y: f"{x:.4f},{y:.2f},{1 / y:.6f},{0.98 * y:.2f},100.0,{x / 10:.4f}",
            "y_obs",
            "weight, y_calc, y_bkg, Q",
        ),
        (  # HighScore's profile export
            "Pos. [°2Th.]\tIobs [cts]\tIcalc [cts]\tIback [cts]",
            lambda x, y: f"{x:.4f}\t{y:.2f}\t{0.98 * y:.2f}\t100.0",
            "Iobs [cts]",
            "Icalc [cts], Iback [cts]",
        ),
        (
            "2Theta;Counts;Background;Net",
            lambda x, y: f"{x:.4f};{y:.2f};100.0;{y - 100:.2f}",
            "Counts",
            "Background, Net",
        ),
    ],
)
def test_the_observed_intensity_is_read_beside_fitted_and_derived_columns(
    header: str, row, read: str, ignored: str
) -> None:
    lines = [header] + [row(x, y) for x, y in zip(OBS_X, OBS_Y, strict=True)]
    pattern = read_pattern(("\n".join(lines) + "\n").encode(), "export.csv")
    assert pattern.metadata["intensity_column"] == read
    np.testing.assert_allclose(pattern.intensity, OBS_Y, atol=0.01)
    assert (
        f"{ignored} ignored: {read} read as the measured intensity"
        in (pattern.metadata["reader_warning"])
    )


@pytest.mark.parametrize("header", ["2theta,counts_1,counts_2,counts_3", "2theta,a,b,c"])
def test_columns_no_name_singles_out_stay_a_table(header: str) -> None:
    lines = [header] + [
        f"{x:.4f},{y:.1f},{y:.1f},{y:.1f}" for x, y in zip(OBS_X, OBS_Y, strict=True)
    ]
    with pytest.raises(PatternReadError, match="table of patterns"):
        read_pattern(("\n".join(lines) + "\n").encode(), "table.csv")
