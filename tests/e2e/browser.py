"""Driving the page in Debian's Chromium (Playwright for Python with the
system browser; Playwright's own download is unreachable): shared by the
browser tests and the README's screenshots."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAPTOP = {"width": 1366, "height": 768}


def chromium_path() -> Path | None:
    """$XRDID_CHROMIUM, /usr/bin/chromium, or chromium on the PATH; None if absent."""
    configured = os.environ.get("XRDID_CHROMIUM")
    if configured:
        return Path(configured) if Path(configured).is_file() else None
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None
    )
    return Path(found) if found else None


def launch(playwright: Any, executable: Path) -> Any:
    return playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)


def caption_range(tab: Any, scope: str = ".overlay") -> tuple[float, float]:
    """The x range the overlay shows (its caption's data attributes)."""
    caption = tab.locator(f"{scope} .plot-caption")
    return float(caption.get_attribute("data-min")), float(caption.get_attribute("data-max"))


def strongest_reflection(tab: Any, phase_table: int) -> float:
    """2θ of the strongest reflection in the overlay's n-th reflection table."""
    rows = (
        tab.locator(".reflection-tables table")
        .nth(phase_table)
        .evaluate("t => [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent))")
    )
    return float(max(rows, key=lambda r: float(r[3]))[1])


def hover_tick(tab: Any, two_theta: float) -> str | None:
    """Point at the tick rows at ``two_theta`` (2θ axis); the tooltip's text, if one shows."""
    over = tab.locator(".overlay .u-over").bounding_box()
    low, high = caption_range(tab)
    x = over["x"] + (two_theta - low) / (high - low) * over["width"]
    tip = tab.locator(".overlay .plot-tip")
    # The rows sit above the residual band at the bottom of the plot.
    for offset in range(62, 110, 2):
        tab.mouse.move(x, over["y"] + over["height"] - offset)
        if tip.is_visible():
            return str(tip.inner_text())
    return None


def hover_stick(tab: Any) -> str | None:
    """Sweep across a reference's stick plot until a stick's tooltip shows."""
    over = tab.locator(".reference .u-over").bounding_box()
    tip = tab.locator(".reference .plot-tip")
    for step in range(0, int(over["width"]), 2):
        tab.mouse.move(over["x"] + step, over["y"] + over["height"] - 10)
        if tip.is_visible():
            return str(tip.inner_text())
    return None
