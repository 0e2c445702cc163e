"""An identification as a picture: the scan, each phase's fitted profile in
colour with its reflections as ticks, and the residual underneath, on 2θ
(Cu Kα1, the model grid) with d-spacings along the top.

matplotlib's object API with the Agg canvas (no display, and no pyplot
state shared between the service's threads): the project plots with it
already, and it writes a PNG in tens of milliseconds.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from xrdid.grid import MODEL_GRID, d_to_two_theta, two_theta_to_d
from xrdid.results import Identification

__all__ = ["overlay_png"]

# Colour-blind-safe qualitative colours (Okabe & Ito).
_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")
# Round d-spacings (Å) offered as ticks, large to small; d falls as 1/sin θ,
# so evenly spaced d values crowd at low angle.
_D_TICKS = (30, 20, 15, 10, 8, 6, 5, 4, 3.5, 3, 2.5, 2.2, 2, 1.8, 1.6, 1.5, 1.4, 1.3, 1.2, 1.1, 1)
# The least gap between two d ticks, as a share of the 2θ axis.
_D_TICK_GAP = 0.045


def d_ticks(lo_deg: float, hi_deg: float, wavelength: float) -> list[float]:
    """The round d-spacings to label along a 2θ axis from ``lo_deg`` to
    ``hi_deg``: those within it, each at least ``_D_TICK_GAP`` of the axis
    past the last one kept, from low angle up."""
    kept: list[float] = []
    last = -np.inf
    for d in _D_TICKS:
        if d <= wavelength / 2.0:
            break
        angle = float(d_to_two_theta(d, wavelength))
        if lo_deg <= angle <= hi_deg and angle - last >= _D_TICK_GAP * (hi_deg - lo_deg):
            kept.append(d)
            last = angle
    return kept


def overlay_png(result: Identification, title: str | None = None) -> bytes:
    """A PNG (1200 × 700 px) of ``result``'s overlay; it needs its evidence
    (identify with ``include_profiles``)."""
    evidence = result.evidence
    if evidence is None:
        raise ValueError("the identification has no overlay arrays (include_profiles)")
    figure = Figure(figsize=(12, 7), dpi=100)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [4, 1]})
    x = evidence.two_theta_deg
    top.plot(x, evidence.scan, color="black", linewidth=0.9, label="scan")
    amounts = {p.match.entry.id: p.weight_percent for p in result.phases}
    tick_base = -0.04
    for i, phase in enumerate(evidence.phases):
        colour = _COLOURS[i % len(_COLOURS)]
        percent = amounts.get(phase.reference_id)
        label = phase.name + (f" ({percent:.1f} wt%)" if percent is not None else "")
        top.plot(x, phase.profile, color=colour, linewidth=1.1, alpha=0.9, label=label)
        if phase.reflections:
            positions = [r.two_theta_deg for r in phase.reflections]
            level = tick_base - 0.05 * i
            top.vlines(positions, level - 0.02, level + 0.02, color=colour, linewidth=1.0)
    top.set_ylabel("intensity (scan max = 1)")
    top.legend(loc="upper right", fontsize=9, frameon=False)
    names = ", ".join(p.match.entry.info.name for p in result.phases)
    top.set_title(title or f"{result.verdict}: {names}")
    bottom.plot(x, evidence.residual, color="#555555", linewidth=0.8)
    bottom.axhline(0.0, color="black", linewidth=0.5)
    bottom.set_ylabel("residual")
    bottom.set_xlabel(f"2θ (°, Cu Kα1 {MODEL_GRID.wavelength_angstrom} Å)")
    wavelength = MODEL_GRID.wavelength_angstrom
    secondary = top.secondary_xaxis(
        "top",
        functions=(
            lambda t: two_theta_to_d(np.clip(t, 1e-3, 179.0), wavelength),
            lambda d: d_to_two_theta(np.clip(d, wavelength / 2.0 + 1e-6, None), wavelength),
        ),
    )
    secondary.set_xlabel("d (Å)")
    if x.size:
        top.set_xlim(float(x[0]), float(x[-1]))
        ticks = d_ticks(float(x[0]), float(x[-1]), wavelength)
        secondary.set_xticks(ticks, [f"{d:g}" for d in ticks])
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
