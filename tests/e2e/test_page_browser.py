"""The page at / in a real browser: Debian's Chromium driven by Playwright,
against the service as a real uvicorn process on a private small library.

Every page is served with a strict Content-Security-Policy (same origin only,
no inline code), and a test fails on any page error or CSP violation.
Screenshots go to tests/artifacts/page/ (or $XRDID_TEST_ARTIFACTS).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.browser import (
    LAPTOP,
    caption_range,
    chromium_path,
    hover_stick,
    hover_tick,
    launch,
    strongest_reflection,
)
from tests.e2e.conftest import WRITE_KEY
from tests.e2e.support import NEW_STRUCTURE, Server, copy_library, running
from xrdid.data_paths import PROJECT_ROOT, shared_data_dir
from xrdid.raman.archive import unpacked_archive

pytestmark = pytest.mark.slow

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
ARTIFACTS = Path(
    os.environ.get("XRDID_TEST_ARTIFACTS", PROJECT_ROOT / "tests" / "artifacts" / "page")
)
# A real scan of a precursor mixture with NiO and TiO2 (the small library has
# NiO as a structure and anatase as a measured pattern).
MIXTURE = "patterns/dara/precursor_mixtures/NiO_0p2030-Li2CO3_0p2999-TiO2_0p5025--2min.xrdml"
SECOND_SCANS = [
    "patterns/dara/precursor_mixtures/NiO_0p6007-Bi2O3_0p4008--2min.xrdml",
    "patterns/xrd_autoanalyzer/TiO2+MnO.xy",
]
# The colours overlay.js gives the first and second phase (Okabe–Ito).
PHASE_RGB = [(0x00, 0x72, 0xB2), (0xD5, 0x5E, 0x00)]


@pytest.fixture(scope="module")
def chromium() -> Path:
    path = chromium_path()
    if path is None:
        pytest.skip(
            "no Chromium: install Debian's package (apt-get install chromium; .ci/run does) "
            "or set XRDID_CHROMIUM to a Chromium binary"
        )
    return path


@pytest.fixture(scope="module")
def server(
    chromium: Path, tmp_path_factory: pytest.TempPathFactory, e2e_model: Path, e2e_library: Path
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("page-server")
    env = {
        "XRDID_MODEL_PATH": str(e2e_model),
        "XRDID_LIBRARY_PATH": str(copy_library(e2e_library, tmp / "library.sqlite")),
        "XRDID_DEFAULT_LIBRARY_PATH": str(tmp / "none.sqlite"),
        "XRDID_WRITE_API_KEYS": WRITE_KEY,
        "XRDID_DEVICE": "cpu",
        "XRDID_LOG_LEVEL": "warning",
    }
    with running(env, tmp / "server.log") as process:
        yield process


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = launch(playwright, chromium)
        yield launched
        launched.close()


class Watch:
    """Page errors and CSP violations seen while a test ran."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def console(self, message: Any) -> None:
        # Chromium logs every non-2xx fetch; the tests provoke 401/403/409/422 on purpose.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)


@pytest.fixture()
def page(browser: Any, server: Server, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh tab at a laptop's size on the page, served with a strict CSP."""
    context = browser.new_context(viewport=LAPTOP, accept_downloads=True)
    tab = context.new_page()
    watch = Watch()
    tab.on("console", watch.console)
    tab.on("pageerror", lambda error: watch.errors.append(f"page error: {error}"))

    def with_csp(route: Any) -> None:
        response = route.fetch()
        route.fulfill(
            response=response, headers={**response.headers, "content-security-policy": CSP}
        )

    tab.route(server.url + "/", with_csp)
    tab.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))"
    )
    tab.goto(server.url + "/")
    tab.wait_for_selector("#server-status.ok")
    yield tab
    context.close()
    assert watch.errors == [], f"{request.node.name}: {watch.errors}"


def screenshot(tab: Any, name: str, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")
    return path


def identify_mixture(tab: Any) -> None:
    tab.set_input_files("#files", str(shared_data_dir() / MIXTURE))
    tab.wait_for_selector(".queue-item[data-status=done]", timeout=60_000)
    tab.wait_for_selector(".overlay canvas")
    tab.locator(".overlay .plot-caption", has_text="Showing").wait_for()


def colour_pixels(tab: Any, rgb: tuple[int, int, int], tolerance: int = 40) -> int:
    """Pixels of the overlay's canvas within ``tolerance`` of a colour."""
    return int(
        tab.evaluate(
            """([r, g, b, tol]) => {
                const canvas = document.querySelector('.overlay canvas');
                const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                let n = 0;
                for (let i = 0; i < data.length; i += 4) {
                  if (data[i + 3] > 200 && Math.abs(data[i] - r) <= tol && Math.abs(data[i + 1] - g) <= tol
                      && Math.abs(data[i + 2] - b) <= tol) n++;
                }
                return n;
            }""",
            [*rgb, tolerance],
        )
    )


# --------------------------------------------------------------------------- identify


def test_a_real_xrdml_shows_verdict_tables_and_overlay(page: Any) -> None:
    identify_mixture(page)
    verdict = page.locator(".verdict").inner_text()
    assert verdict.startswith("Mixture"), verdict
    phases = page.locator(".phases-table tbody tr").all_inner_texts()
    names = " ".join(phases)
    # The sample holds NiO and TiO2; the library has NiO (structure) and anatase.
    assert "NiO" in names and "Anatase" in names, phases
    assert page.locator(".phase-bar .segment").count() >= 2
    assert page.locator(".materials-table tbody tr:not(.detail-row)").count() == 5
    # The file's own wavelength was used, and said so.
    assert "from the file" in page.locator(".meta").first.inner_text()
    # The overlay is drawn: the scan (near-black) and the first two phases.
    assert colour_pixels(page, (0x1D, 0x1D, 0x1F), tolerance=30) > 500
    for rgb in PHASE_RGB:
        assert colour_pixels(page, rgb) > 100
    assert page.locator(".queue-status").first.inner_text().startswith("mixture: ")
    screenshot(page, "identify-overlay")
    # A material's details expand: alternatives, family or why there are none.
    expand = page.locator(".materials-table .expand").first
    expand.click()
    assert expand.get_attribute("aria-expanded") == "true"
    assert page.locator(".detail-row:not([hidden])").count() == 1
    screenshot(page, "identify-full", full_page=True)


def test_a_reflection_tick_names_its_hkl_on_hover(page: Any) -> None:
    identify_mixture(page)
    # NiO's strongest reflection, from the (keyboard-readable) reflection table.
    assert "NiO" in str(page.locator(".reflection-tables caption").first.text_content())
    two_theta = strongest_reflection(page, 0)
    text = hover_tick(page, two_theta)
    assert text is not None, "no tooltip over NiO's tick"
    assert re.match(r"NiO\S* \([\d\u0305 ]+\)\s", text), text
    assert f"2θ {two_theta:.2f}°" in text
    screenshot(page, "tick-hover")


def test_a_phase_is_toggled_off_and_on(page: Any) -> None:
    identify_mixture(page)
    second = page.locator(".series-toggles input[type=checkbox]").nth(
        3
    )  # scan, fit, phase 1, phase 2
    drawn = colour_pixels(page, PHASE_RGB[1])
    assert drawn > 100
    second.uncheck()
    page.wait_for_timeout(100)
    assert colour_pixels(page, PHASE_RGB[1]) < drawn / 20
    assert colour_pixels(page, PHASE_RGB[0]) > 100  # the other phase stays
    screenshot(page, "phase-toggled-off")
    second.check()
    page.wait_for_timeout(100)
    assert colour_pixels(page, PHASE_RGB[1]) > drawn / 2


def test_the_axis_switches_between_two_theta_and_d_keeping_the_zoom(page: Any) -> None:
    identify_mixture(page)
    plot = page.locator(".overlay .plot")
    full = caption_range(page)
    plot.focus()
    page.keyboard.press("+")  # zoom in by 2, around the centre
    page.keyboard.press("ArrowRight")  # pan by a quarter of the view
    low, high = caption_range(page)
    assert high - low == pytest.approx((full[1] - full[0]) / 2, rel=0.01)
    assert low > full[0]
    page.get_by_role("radio", name="d (Å)").check()
    assert plot.get_attribute("data-axis") == "d"
    expect(page.locator(".plot-caption")).to_have_text(re.compile(r"Showing d [\d.]+–[\d.]+ Å\.$"))
    caption = page.locator(".plot-caption").inner_text()
    match = re.match(r"Showing d ([\d.]+)–([\d.]+) Å", caption)
    assert match, caption
    d_low_angle, d_high_angle = (float(v) for v in match.groups())
    # The same 2θ range, seen as d (Bragg's law at Cu Kα1): large d on the left.
    assert d_low_angle == pytest.approx(bragg_d(low), rel=1e-3)
    assert d_high_angle == pytest.approx(bragg_d(high), rel=1e-3)
    screenshot(page, "axis-d")
    page.get_by_role("radio", name="2θ").check()
    expect(page.locator(".plot-caption")).to_have_text(re.compile(r"Showing 2θ [\d.]+–[\d.]+°\.$"))
    assert caption_range(page) == pytest.approx((low, high), rel=1e-6)
    page.get_by_role("button", name="Show the whole scan").click()
    assert caption_range(page) == pytest.approx(full)


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def bragg_d(two_theta_deg: float, wavelength: float = 1.54056) -> float:
    import math

    return wavelength / (2 * math.sin(math.radians(two_theta_deg / 2)))


def test_results_download_as_csv_and_json(page: Any) -> None:
    identify_mixture(page)
    with page.expect_download() as csv_download:
        page.get_by_role("button", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(csv_download.value.path()).read_text())))
    phases = [r for r in rows if r["row"] == "phase"]
    materials = [r for r in rows if r["row"] == "material"]
    assert len(phases) == page.locator(".phases-table tbody tr").count() >= 2
    assert len(materials) == 5 and [r["rank"] for r in materials] == ["1", "2", "3", "4", "5"]
    assert all(r["file"].endswith(".xrdml") and r["verdict"] == "mixture" for r in rows)
    with page.expect_download() as json_download:
        page.get_by_role("button", name="Download JSON").click()
    body = json.loads(Path(json_download.value.path()).read_text())
    assert body["verdict"] == "mixture"
    assert [p["reference"]["name"] for p in body["phases"]] == [r["name"] for r in phases]
    # The small library holds NiO in two cells, cubic and rhombohedral, that the scan cannot
    # tell apart: the NiO phase lists the other as its look-alike, on the page and in the CSV.
    nio = next(i for i, p in enumerate(body["phases"]) if p["reference"]["formula"] == "NiO")
    lookalikes = body["phases"][nio]["lookalikes"]
    assert [a["reference"]["formula"] for a in lookalikes] == ["NiO"], body["phases"][nio]
    name = lookalikes[0]["reference"]["name"]
    row = page.locator(".phases-table tbody tr").nth(nio)
    assert row.locator(".lookalikes").inner_text().startswith(f"or {name} NiO (misfit ×")
    assert phases[nio]["alternatives"].startswith(f"{name} (")
    assert len(body["profiles"]["two_theta_deg"]) == len(body["profiles"]["scan"]) > 1000
    # Several files, identified in turn, download as one CSV.
    page.set_input_files("#files", [str(shared_data_dir() / p) for p in SECOND_SCANS])
    page.locator(".queue-item[data-status=done]").nth(2).wait_for(timeout=60_000)
    with page.expect_download() as all_download:
        page.get_by_role("button", name="All as CSV").click()
    text = Path(all_download.value.path()).read_text()
    files = {r["file"] for r in csv.DictReader(io.StringIO(text))}
    assert files == {Path(MIXTURE).name, *(Path(p).name for p in SECOND_SCANS)}


def test_controls_are_labelled_and_reachable_by_keyboard(page: Any) -> None:
    identify_mixture(page)
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('button, input, select, textarea, [tabindex="0"]')]
            .filter(el => el.type !== 'hidden' && !el.closest('[hidden], dialog:not([open])'))
            .filter(el => !((el.labels && el.labels.length) || el.getAttribute('aria-label')
                || el.getAttribute('aria-labelledby') || el.textContent.trim()))
            .map(el => el.outerHTML.slice(0, 80))"""
    )
    assert unlabelled == []
    # The tabs follow the ARIA pattern: arrows move, the panel follows.
    page.get_by_role("tab", name="Identify").focus()
    page.keyboard.press("ArrowRight")
    assert page.get_by_role("tab", name="Library").get_attribute("aria-selected") == "true"
    assert page.locator("#panel-library").is_visible()
    assert not page.locator("#panel-identify").is_visible()
    page.keyboard.press("ArrowLeft")
    # A material's details open from the keyboard.
    expand = page.locator(".materials-table .expand").first
    expand.focus()
    page.keyboard.press("Enter")
    assert expand.get_attribute("aria-expanded") == "true"


# --------------------------------------------------------------------------- errors


def drop_file(tab: Any, name: str, text: str) -> None:
    """Drop a file on the drop zone, as a person dragging it from their desktop."""
    transfer = tab.evaluate_handle(
        """([name, text]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([text], name, { type: "text/plain" }));
            return transfer;
        }""",
        [name, text],
    )
    for event in ("dragenter", "dragover", "drop"):
        tab.dispatch_event("#dropzone", event, {"dataTransfer": transfer})


def test_a_bad_file_and_a_bad_option_say_what_is_wrong(page: Any) -> None:
    drop_file(page, "notes.xy", "sample notes\nno numbers here\n")
    item = page.locator(".queue-item[data-status=error]")
    item.wait_for(timeout=30_000)
    status = item.locator(".queue-status").inner_text()
    assert status.startswith(
        "The pattern file could not be read. notes.xy: no numeric data rows"
    ), status
    problem = page.locator("#result .problem")
    assert problem.locator(".problem-title").inner_text() == "The pattern file could not be read."
    assert "{" not in problem.inner_text() and "urn:" not in problem.inner_text()
    screenshot(page, "bad-file")
    # An option the server refuses: its sentence, per file.
    page.fill("#id-elements-all", "Xx")
    page.set_input_files("#files", str(shared_data_dir() / MIXTURE))
    page.locator(".queue-item[data-status=error]").nth(1).wait_for(timeout=30_000)
    status = page.locator(".queue-item .queue-status").nth(1).inner_text()
    assert "Invalid request parameters." in status and "'Xx' is not an element symbol" in status


# --------------------------------------------------------------------------- library


def test_add_a_reference_with_the_key_and_be_refused_without(page: Any, server: Server) -> None:
    cif = shared_data_dir() / "structures" / NEW_STRUCTURE
    page.get_by_role("tab", name="Add reference").click()
    page.set_input_files("#add-file", str(cif))
    submit = page.get_by_role("button", name="Add reference", exact=True)
    outcome = page.locator("#add-outcome")

    submit.click()  # no key
    outcome.locator(".problem").wait_for()
    assert outcome.locator(".problem-title").inner_text() == "An API key is required."
    assert "Changing the library needs an API key" in outcome.inner_text()
    assert "{" not in outcome.inner_text()
    screenshot(page, "add-refused")

    page.fill("#add-key", "not-the-key-0123456789")
    submit.click()
    outcome.locator(".problem-title", has_text="does not allow").wait_for()
    assert "The API key does not allow changing the library." in outcome.inner_text()

    page.fill("#add-key", WRITE_KEY)
    submit.click()
    outcome.locator(".success").wait_for(timeout=60_000)
    assert re.search(r"Added “Copper” as reference \d+ \(calculated, Fm-3m\)", outcome.inner_text())
    stored = httpx.get(server.url + "/references", params={"name": "Copper"}).json()
    assert stored["total"] == 1  # really in the library
    screenshot(page, "add-done")

    submit.click()  # the same file again
    outcome.locator(".problem-title", has_text="already exists").wait_for()
    assert outcome.get_by_role(
        "button", name=re.compile(r"View the existing reference")
    ).is_visible()

    outcome.get_by_role("button", name=re.compile(r"View the existing reference")).click()
    page.locator("#reference-title").wait_for()
    assert page.locator("#reference-title").inner_text().startswith("Copper")
    page.locator(".reference .plot canvas").wait_for()


def test_library_search_with_the_periodic_table_and_a_pattern(page: Any) -> None:
    page.get_by_role("tab", name="Library").click()
    page.get_by_role("button", name="Periodic table…").click()
    dialog = page.locator("dialog.picker")
    assert dialog.is_visible()
    page.get_by_role("radio", name="Must contain").check()
    page.get_by_role("button", name="Titanium (Ti)").click()
    # Keyboard: from Ti, → moves to V; Enter adds it to "must not contain".
    page.get_by_role("radio", name="Must not contain").check()
    page.get_by_role("button", name="Titanium (Ti): must contain").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    assert page.get_by_role("button", name="Vanadium (V): must not contain").is_visible()
    screenshot(page, "periodic-table")
    page.get_by_role("button", name="Apply").click()
    assert page.input_value("#lib-elements-all") == "Ti"
    assert page.input_value("#lib-elements-none") == "V"
    page.get_by_role("button", name="Search").click()
    page.locator(".library-table").wait_for()
    names = page.locator(".library-table tbody th").all_inner_texts()
    # Of the small library, only BaTiO3 holds Ti (rutile and anatase are
    # measured patterns of unknown composition, which filters never match).
    assert len(names) == 1 and "BaTiO3" in names[0].replace(" ", ""), names
    page.locator(".library-table button.link").first.click()
    page.locator(".reference .plot canvas").wait_for()
    text = hover_stick(page)
    assert text is not None and re.match(r"\([\d\u0305 ]+\) · 2θ [\d.]+° · d [\d.]+ Å", text), text
    screenshot(page, "library")


def test_the_raman_library_lists_minerals_and_draws_a_spectrum(page: Any) -> None:
    page.locator("#server-status", has_text="Raman spectra").wait_for(timeout=60_000)
    page.get_by_role("tab", name="Library").click()
    page.select_option("#lib-technique", "raman")
    page.fill("#lib-name", "calcite")
    page.get_by_role("button", name="Search").click()
    page.locator(".library-table").wait_for()
    columns = page.locator(".library-table thead th").all_inner_texts()
    assert columns == ["Id", "Name", "Formula", "Source", "Kind"], columns
    names = page.locator(".library-table tbody th").all_inner_texts()
    assert names and all("calcite" in name.lower() for name in names), names
    sources = page.locator(".library-table tbody td.wrap").all_inner_texts()
    assert all(re.fullmatch(r"R\d{6}", source) for source in sources), sources  # RRUFF ids
    page.locator(".library-table button.link").first.click()
    page.locator(".reference .plot canvas").wait_for()
    facts = page.locator(".reference dl").inner_text()
    assert "measured spectrum" in facts and "RRUFF" in facts.upper(), facts
    assert "nm laser" in page.locator(".reference .plot-caption").inner_text()
    over = page.locator(".reference .u-over")
    box = over.bounding_box()
    over.hover(position={"x": box["width"] / 2, "y": box["height"] / 2})
    readout = page.locator(".reference .readout").inner_text()
    assert re.match(r"Raman shift \d+ cm⁻¹ · intensity [\d.]+ %", readout), readout
    screenshot(page, "library-raman")


# --------------------------------------------------------------------------- Raman

# A real RRUFF spectrum (in the default Raman library, which holds every archive spectrum).
RAMAN_SPECTRUM = "Calcite__R050130__Raman__532__0__unoriented__Raman_Data_Processed__27273.txt"
SPECTRUM_RGB = (0x1D, 0x1D, 0x1F)


def identify_spectrum(tab: Any) -> None:
    # The header says when the Raman model and library are loaded (after XRD's).
    tab.locator("#server-status", has_text="Raman spectra").wait_for(timeout=60_000)
    tab.set_input_files("#files", str(unpacked_archive() / RAMAN_SPECTRUM))
    tab.wait_for_selector(".queue-item[data-status=done]", timeout=60_000)
    tab.locator(".raman-overlay .plot-caption", has_text="Showing").wait_for()


def test_a_raman_spectrum_shows_minerals_elements_and_overlay(page: Any) -> None:
    identify_spectrum(page)
    assert page.locator(".verdict").inner_text() == "Match Calcite"
    assert page.locator(".queue-status").first.inner_text() == "Raman · match: Calcite"
    assert "532 nm laser" in page.locator(".meta").first.inner_text()
    # The minerals: name, the RRUFF id of the library spectrum that fits, confidence.
    rows = page.locator(".minerals-table tbody tr")
    assert rows.count() == 5
    cells = rows.first.locator("th, td").all_inner_texts()
    assert cells[0] == "1" and cells[1].startswith("Calcite")
    assert re.fullmatch(r"R\d{6}", cells[2]) and re.fullmatch(r"\d+ %", cells[3].strip())
    assert page.locator(".phases-table, .materials-table").count() == 0  # no XRD tables
    # The elements: the likeliest first, in bold when more likely than not.
    elements = page.locator(".elements-table tbody tr")
    assert elements.count() >= 5
    assert elements.first.locator(".symbol").inner_text() == "O"
    assert page.locator(".elements-table tr.likely .symbol").all_inner_texts()[:2] == ["O", "C"]
    assert elements.first.locator("[role=img]").get_attribute("aria-label").startswith("Oxygen:")
    # The overlay over Raman shift (no 2θ/d switch): the spectrum and the best
    # candidate's reference, the others a tick away.
    expect(page.locator(".plot-caption")).to_have_text(
        re.compile(r"Showing \d+–\d+ cm⁻¹ \(the whole spectrum\)\.")
    )
    assert page.get_by_role("radio", name="d (Å)").count() == 0
    assert colour_pixels(page, SPECTRUM_RGB, tolerance=30) > 300
    assert colour_pixels(page, PHASE_RGB[0]) > 100
    assert colour_pixels(page, PHASE_RGB[1]) < 20
    screenshot(page, "raman-overlay")
    screenshot(page, "raman-full", full_page=True)


def test_raman_candidates_toggle_and_the_plot_zooms(page: Any) -> None:
    identify_spectrum(page)
    toggles = page.locator(".raman-overlay .series-toggles input[type=checkbox]")
    assert toggles.count() == 6  # the spectrum and five minerals
    best, second = toggles.nth(1), toggles.nth(2)
    assert best.is_checked() and not second.is_checked()
    second.check()
    page.wait_for_timeout(100)
    drawn = colour_pixels(page, PHASE_RGB[1])
    assert drawn > 100
    screenshot(page, "raman-second-candidate")
    best.uncheck()
    page.wait_for_timeout(100)
    assert colour_pixels(page, PHASE_RGB[0]) < 20
    assert colour_pixels(page, PHASE_RGB[1]) > drawn / 2  # the other stays
    second.uncheck()
    page.wait_for_timeout(100)
    assert colour_pixels(page, PHASE_RGB[1]) < 20
    # Zoom from the keyboard, and back.
    full = caption_range(page)
    page.locator(".raman-overlay .plot").focus()
    page.keyboard.press("+")
    low, high = caption_range(page)
    assert high - low == pytest.approx((full[1] - full[0]) / 2, rel=0.01)
    page.get_by_role("button", name="Show the whole spectrum").click()
    assert caption_range(page) == pytest.approx(full)
    # The CSV has the technique and the likely elements.
    with page.expect_download() as csv_download:
        page.get_by_role("button", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(csv_download.value.path()).read_text())))
    assert [r["row"] for r in rows] == ["material"] * 5
    assert rows[0]["name"] == "Calcite" and rows[0]["technique"] == "raman"
    assert rows[0]["elements"].startswith("O ") and rows[0]["source"] == "rruff"


def test_the_technique_and_the_laser_are_chosen_on_the_form(page: Any) -> None:
    page.select_option("#technique", "raman")
    assert page.locator("#xrd-options").get_attribute("disabled") is not None
    assert page.locator("#radiation").is_disabled() and page.locator("#phases").is_disabled()
    page.fill("#laser", "785")
    identify_spectrum(page)
    assert "785 nm laser" in page.locator(".meta").first.inner_text()  # overrides the file's
    page.select_option("#technique", "xrd")
    assert not page.locator("#laser").is_visible()
    assert page.locator("#radiation").is_enabled()
    page.set_input_files("#files", str(unpacked_archive() / RAMAN_SPECTRUM))
    failed = page.locator(".queue-item[data-status=error]")
    failed.wait_for(timeout=30_000)
    assert "technique='xrd' was asked for" in failed.locator(".queue-status").inner_text()
