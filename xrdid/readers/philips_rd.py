"""Philips PC-APD binary scans: ``.rd`` (version 3) and ``.sd`` (version 5).

No published description: the layout is the one xylib and PyXRD read, and
what real files show (``V3RD``/``V5RD`` first; little-endian):

=======  ===========================================================
offset   field
=======  ===========================================================
85       the anode: 0 Cu, 1 Mo, 2 Fe, 3 Cr, 4 another
94       Kα1, Kα2 (Å) and their ratio, float64 each
146      the sample's name (16 bytes)
214      the 2θ step, start and end, float64 each
250      (version 3; 810 for version 5) the counts, uint16 each
=======  ===========================================================

Each stored value is 10·√counts (its spread is Poisson's on that scale,
about 5 whatever the level, in a real file), so counts are value² / 100.
A continuous scan holds (end − start) / step counts, each over a step of
2θ and read at its middle; a step scan one more, at start + i·step. What
the file holds decides which.
"""

from __future__ import annotations

import numpy as np

from xrdid.errors import PatternReadError
from xrdid.pattern import MAX_POINTS, Pattern, make_pattern
from xrdid.readers._binary import BinaryView
from xrdid.readers._common import add_warning, build_wavelength, regular_grid

SIGNATURES = (b"V3RD", b"V5RD")

_COUNTS_AT = {b"V3": 250, b"V5": 810}
_ANODES = {0: "Cu", 1: "Mo", 2: "Fe", 3: "Cr"}


def read_philips_rd(data: bytes, source: str | None = None) -> Pattern:
    """Read a Philips .rd or .sd scan."""
    view = BinaryView(data, source)
    offset = _COUNTS_AT.get(data[:2])
    if offset is None or not data.startswith(SIGNATURES):
        raise PatternReadError("not a Philips RD/SD scan (no V3RD or V5RD mark)", source=source)
    view.require(0, offset, "header")
    step = view.f64(214, "2θ step")
    start = view.f64(222, "2θ start")
    end = view.f64(230, "2θ end")
    if (
        not (np.isfinite(step) and np.isfinite(start) and np.isfinite(end))
        or step <= 0
        or end <= start
    ):
        raise PatternReadError(
            f"the 2θ range {start!r}–{end!r} in steps of {step!r} is not a scan",
            source=source,
            field="2θ range",
        )
    span = (end - start) / step
    if not np.isfinite(span) or span > MAX_POINTS:
        raise PatternReadError(
            f"the 2θ range {start!r}–{end!r} in steps of {step!r} is more than the "
            f"{MAX_POINTS} points a scan can have",
            source=source,
            field="2θ range",
        )
    held = (len(data) - offset) // 2
    steps = int(round(span))
    metadata = {"format": "philips_rd", "version": data[:2].decode()}
    if held == steps:  # a continuous scan: counts over steps, read at their middles
        first = start + step / 2.0
    elif held >= steps + 1:
        first = start
        if held > steps + 1:
            add_warning(
                metadata, f"{2 * (held - steps - 1)} bytes after the {steps + 1} counts ignored"
            )
        held = steps + 1
    else:
        raise PatternReadError(
            f"the file holds {held} of the {steps} counts its 2θ range announces; it is truncated",
            source=source,
            field="counts",
        )
    stored = np.frombuffer(data, dtype="<u2", count=held, offset=offset).astype(np.float64)
    intensity = stored * stored / 100.0
    sample = view.text(146, 16, "sample")
    if sample:
        metadata["sample_id"] = sample
    wavelength = build_wavelength(
        view.f64(94, "Kα1"),
        view.f64(102, "Kα2"),
        view.f64(110, "Kα2/Kα1 ratio"),
        _ANODES.get(data[85]),
        metadata=metadata,
    )
    two_theta = regular_grid(first, step, held, source, "2θ start")
    return make_pattern(
        two_theta, intensity, wavelength=wavelength, metadata=metadata, source=source
    )
