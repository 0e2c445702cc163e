"""Powder CIF (pdCIF, IUCr powder dictionary) measured patterns.

2θ comes from a loop (``_pd_meas_2theta_scan``, ``_pd_proc_2theta_corrected``)
or from ``_pd_meas_2theta_range_min/max/inc``; intensity from the first of
``_pd_meas_counts_total``, ``_pd_meas_intensity_total``,
``_pd_proc_intensity_total``, ``_pd_proc_intensity_net``. σ is the
parenthesised uncertainty (``123(4)``) when every point has one, else
``1/√w`` from ``_pd_proc_ls_weight``. Calculated intensities
(``_pd_calc_*``) are never read as a measurement.

Journal pdCIFs mark the points a refinement left out with a weight of 0 or
``.`` (their calculated and background columns then hold ``.``). Those points
were still measured, so they are kept; ``metadata["excluded_points"]`` counts
them.
"""

from __future__ import annotations

import re

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import PatternReadError, UnsupportedFormatError
from xrdid.pattern import Pattern, make_pattern
from xrdid.readers._cif import CifBlock, CifValue, parse_cif
from xrdid.readers._common import build_wavelength, first_of, regular_grid
from xrdid.readers._numbers import is_not_finite, parse_float_with_esd
from xrdid.readers._textdecode import decode_text
from xrdid.wavelengths import ANODE_LINES_ANGSTROM, Wavelength

INTENSITY_TAGS = (
    "_pd_meas_counts_total",
    "_pd_meas_intensity_total",
    "_pd_proc_intensity_total",
    "_pd_proc_intensity_net",
    "_pd_meas_intensity_net",
)
TWO_THETA_TAGS = ("_pd_meas_2theta_scan", "_pd_proc_2theta_corrected", "_pd_meas_angle_2theta")
_RANGE_PREFIXES = ("_pd_meas_2theta_range_", "_pd_proc_2theta_range_")

# A stated range end may differ from min + (n−1)·inc by rounding; more than
# half a step means the point count and the range disagree.
_RANGE_TOLERANCE_STEPS = 0.5

_ANODE_WORD = re.compile(r"[A-Z][a-z]?")


def read_pdcif(data: bytes, source: str | None = None) -> Pattern:
    """Read the first data block of a powder CIF that holds a measured pattern."""
    blocks = parse_cif(decode_text(data, source), source)
    with_data = [
        (block, found) for block in blocks if (found := block.first(*INTENSITY_TAGS)) is not None
    ]
    if not with_data:
        raise _no_pattern(blocks, source)
    block, (intensity_tag, intensity_values) = with_data[0]
    metadata: dict[str, str] = {"format": "pdcif", "data_block": block.name}
    if len(with_data) > 1:
        first_of(metadata, "blocks", len(with_data), "data blocks")
    metadata["intensity_tag"] = intensity_tag
    intensity, esd = _numbers(intensity_values, intensity_tag, source)
    two_theta = _two_theta(block, intensity.size, source)
    weights = _weights(block, intensity.size, source)
    sigma = esd
    if weights is not None:
        excluded = int(np.count_nonzero(~(weights > 0)))
        if excluded:
            metadata["excluded_points"] = str(excluded)
        elif sigma is None:
            sigma = 1.0 / np.sqrt(weights)
    wavelength = _wavelength(block, metadata, source)
    return make_pattern(
        two_theta, intensity, sigma, wavelength=wavelength, metadata=metadata, source=source
    )


def _two_theta(block: CifBlock, n_points: int, source: str | None) -> NDArray[np.float64]:
    listed = block.first(*TWO_THETA_TAGS)
    if listed is not None:
        tag, values = listed
        two_theta, _ = _numbers(values, tag, source)
        if two_theta.size != n_points:
            raise PatternReadError(
                f"{two_theta.size} values of {tag} for {n_points} intensities",
                source=source,
                field=tag,
            )
        return two_theta
    for prefix in _RANGE_PREFIXES:
        low_values = block.get(prefix + "min")
        high_values = block.get(prefix + "max")
        step_values = block.get(prefix + "inc")
        if low_values and high_values and step_values:
            low = _scalar(low_values, prefix + "min", source)
            high = _scalar(high_values, prefix + "max", source)
            step = _scalar(step_values, prefix + "inc", source)
            if step == 0:
                raise PatternReadError("2θ step is zero", source=source, field=prefix + "inc")
            expected_high = low + (n_points - 1) * step
            if abs(expected_high - high) > _RANGE_TOLERANCE_STEPS * abs(step):
                raise PatternReadError(
                    f"{n_points} points from {low:g}° in steps of {step:g}° end at "
                    f"{expected_high:g}°, but the file says {high:g}°; the point count "
                    "and the 2θ range disagree",
                    source=source,
                    field=prefix + "max",
                )
            return regular_grid(low, step, n_points, source, prefix + "min")
    if block.get("_pd_meas_time_of_flight") is not None:
        raise PatternReadError(
            "the pattern is time-of-flight (neutron) data, not 2θ", source=source
        )
    raise PatternReadError(
        "no 2θ values: the block has neither a 2θ loop (_pd_meas_2theta_scan, "
        "_pd_proc_2theta_corrected) nor _pd_meas_2theta_range_min/max/inc",
        source=source,
    )


def _numbers(
    values: list[CifValue], tag: str, source: str | None
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Values and their esds (None unless every value has one)."""
    numbers = np.empty(len(values), dtype=np.float64)
    esds = np.empty(len(values), dtype=np.float64)
    all_esd = True
    for index, value in enumerate(values):
        parsed = parse_float_with_esd(value.text)
        if parsed is None:
            kind = (
                "not a finite number"
                if is_not_finite(value.text)
                else "missing ('?' or '.')"
                if value.text in ("?", ".")
                else "not a number"
            )
            raise PatternReadError(
                f"point {index + 1} of {tag} is {value.text[:30]!r}, {kind}",
                source=source,
                line=value.line,
                field=tag,
            )
        numbers[index], esd = parsed
        if esd is None:
            all_esd = False
        else:
            esds[index] = esd
    return numbers, (esds if all_esd and len(values) else None)


def _scalar(values: list[CifValue], tag: str, source: str | None) -> float:
    numbers, _ = _numbers(values[:1], tag, source)
    return float(numbers[0])


def _weights(block: CifBlock, n_points: int, source: str | None) -> NDArray[np.float64] | None:
    """``_pd_proc_ls_weight`` per point, NaN where it is ``.`` or ``?`` (a point
    the refinement excluded); None when the block has no weight per point."""
    values = block.get("_pd_proc_ls_weight")
    if values is None or len(values) != n_points:
        return None
    excluded = [value.text in ("?", ".") and not value.quoted for value in values]
    present = [value for value, out in zip(values, excluded, strict=True) if not out]
    weights = np.full(n_points, np.nan)
    weights[~np.array(excluded, dtype=bool)], _ = _numbers(present, "_pd_proc_ls_weight", source)
    return weights


def _wavelength(block: CifBlock, metadata: dict[str, str], source: str | None) -> Wavelength | None:
    anode = None
    radiation = block.get("_diffrn_radiation_type")
    if radiation:
        metadata["radiation"] = radiation[0].text
        match = _ANODE_WORD.match(radiation[0].text.strip())
        if match and match.group() in ANODE_LINES_ANGSTROM:
            anode = match.group()
    values = block.get("_diffrn_radiation_wavelength")
    if not values:
        return None
    lengths = [parse_float_with_esd(value.text) for value in values]
    if any(length is None for length in lengths):
        return None
    wavelengths = [length[0] for length in lengths if length is not None]
    weights_values = block.get("_diffrn_radiation_wavelength_wt")
    weights = (
        [parsed[0] if (parsed := parse_float_with_esd(v.text)) else 1.0 for v in weights_values]
        if weights_values and len(weights_values) == len(wavelengths)
        else [1.0] * len(wavelengths)
    )
    if len(wavelengths) >= 2 and weights[0] > 0:
        return build_wavelength(
            wavelengths[0], wavelengths[1], weights[1] / weights[0], anode, metadata=metadata
        )
    return build_wavelength(wavelengths[0], None, None, anode, metadata=metadata)


def _no_pattern(blocks: list[CifBlock], source: str | None) -> PatternReadError:
    if not blocks:
        return UnsupportedFormatError("no data_ block: this is not a CIF file", source=source)
    if any(block.get("_pd_calc_intensity_total") is not None for block in blocks):
        return PatternReadError(
            "the CIF holds only calculated intensities (_pd_calc_intensity_total), no "
            "measured pattern",
            source=source,
        )
    if any(
        block.get("_cell_length_a") is not None or block.get("_atom_site_label") is not None
        for block in blocks
    ):
        return UnsupportedFormatError(
            "this CIF describes a crystal structure, not a measured pattern (no "
            "_pd_meas_*/_pd_proc_* intensity loop); upload it as a reference structure",
            source=source,
        )
    return PatternReadError(
        f"no powder data in the CIF: none of {', '.join(INTENSITY_TAGS)} is present",
        source=source,
    )
