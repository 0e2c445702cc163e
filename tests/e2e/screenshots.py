"""The README's screenshots of the page, from a running server:

    python -m tests.e2e.screenshots --url http://127.0.0.1:8000 --out docs/images

Drives Debian's Chromium (as the browser tests do) at a laptop's size
(1366×768), and stores 256-colour PNGs (small enough for the README). The
Raman screenshot's calcite spectrum is in the shipped Raman library; serve
the evaluation's (``python -m indexer build-raman --split-only``, as
``XRDID_DEFAULT_RAMAN_LIBRARY_PATH``) to show a sample the library lacks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from tests.e2e.browser import (
    LAPTOP,
    chromium_path,
    hover_stick,
    hover_tick,
    launch,
    strongest_reflection,
)
from xrdid.data_paths import shared_data_dir
from xrdid.raman.archive import unpacked_archive

SCAN = "patterns/dara/precursor_mixtures/NiO_0p1031-La(OH)3_0p2025-TiO2_0p7014--2min.xrdml"
SPECTRUM = "Calcite__R050130__Raman__532__0__unoriented__Raman_Data_Processed__27273.txt"


def save(tab: object, path: Path) -> None:
    tab.screenshot(path=str(path))  # type: ignore[attr-defined]
    Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)
    print(f"{path}: {path.stat().st_size / 1024:.0f} kB")


def main(argv: list[str] | None = None) -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        executable = chromium_path()
        if executable is None:
            raise SystemExit("no Chromium: apt-get install chromium, or set XRDID_CHROMIUM")
        browser = launch(playwright, executable)
        tab = browser.new_page(viewport=LAPTOP)
        tab.goto(args.url + "/")
        tab.set_input_files("#files", str(shared_data_dir() / SCAN))
        tab.wait_for_selector(".queue-item[data-status=done]", timeout=120_000)
        tab.locator(".overlay .plot-caption", has_text="Showing").wait_for()
        # Point at the strongest reflection of the second phase.
        hover_tick(tab, strongest_reflection(tab, 1))
        save(tab, args.out / "page-identify.png")

        # A real RRUFF spectrum (see the docstring): the best two minerals drawn.
        tab.locator("#server-status", has_text="Raman spectra").wait_for(timeout=120_000)
        tab.set_input_files("#files", str(unpacked_archive() / SPECTRUM))
        tab.locator(".queue-item[data-status=done]").nth(1).wait_for(timeout=120_000)
        tab.locator(".raman-overlay .series-toggles input[type=checkbox]").nth(2).check()
        save(tab, args.out / "page-raman.png")

        tab.get_by_role("tab", name="Library").click()
        tab.fill("#lib-name", "quartz")
        tab.get_by_role("button", name="Search").click()
        tab.locator(".library-table button.link").first.click()
        tab.locator(".reference .plot canvas").wait_for()
        hover_stick(tab)
        save(tab, args.out / "page-library.png")
        browser.close()


if __name__ == "__main__":
    main()
