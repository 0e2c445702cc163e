"""What Rigaku's .ras, .rasx and .asc share: profile columns, scan axis, wavelength."""

from __future__ import annotations

import re

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import PatternReadError
from xrdid.readers._columns import ColumnTable
from xrdid.readers._common import build_wavelength
from xrdid.readers._numbers import parse_float
from xrdid.wavelengths import Wavelength

# Scan axis names that move the detector in 2θ: "TwoThetaTheta",
# "2-Theta/Omega", "TwoThetaOmega", "TwoTheta", "2Theta"… (not "Omega", "Chi").
_TWO_THETA_AXIS = re.compile(r"(?i)^(?:two|2)[-_ ]?theta")


def is_two_theta_axis(name: str) -> bool:
    return _TWO_THETA_AXIS.match(name.strip()) is not None


def take_header(
    fields: dict[str, str],
    labels: dict[str, str],
    axis_key: str,
    metadata: dict[str, str],
    source: str | None,
    axis_field: str,
) -> None:
    """Copy labelled header fields into metadata and refuse non-2θ scans
    (shared by .ras, .rasx and .asc, which name the same things differently)."""
    for key, label in labels.items():
        if fields.get(key):
            metadata[label] = fields[key][:200]
    axis = fields.get(axis_key, "")
    if axis:
        metadata["scan_axis"] = axis
        if not is_two_theta_axis(axis):
            raise PatternReadError(
                f"the scan axis is {axis!r}, not 2θ; only 2θ scans are powder patterns",
                source=source,
                field=axis_field,
            )


def profile_arrays(
    table: ColumnTable, metadata: dict[str, str], source: str | None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """2θ and intensity from Rigaku profile columns (2θ, counts[, coefficient]).

    The third column is the attenuator coefficient; Rigaku's own software
    multiplies it into the counts, so it is applied here (it is 1 whenever no
    attenuator was inserted).
    """
    if table.n_columns not in (2, 3):
        raise PatternReadError(
            f"the profile has {table.n_columns} columns; Rigaku profiles hold 2θ, "
            "intensity and an optional attenuator coefficient",
            source=source,
        )
    two_theta, intensity = table.columns[0], table.columns[1]
    if table.n_columns == 3:
        coefficient = table.columns[2]
        if np.any(coefficient != 1.0):
            intensity = intensity * coefficient
            metadata["attenuation"] = "attenuator coefficients (column 3) applied"
    return two_theta, intensity


def rigaku_wavelength(
    target: str | None,
    kalpha1_text: str | None,
    kalpha2_text: str | None,
    kbeta_text: str | None,
    wave_type: str | None,
    metadata: dict[str, str],
) -> Wavelength | None:
    """Wavelength from the generator fields; ``wave_type`` "Ka1"/"Kb" picks one line."""
    kalpha1 = parse_float((kalpha1_text or "").strip())
    kalpha2 = parse_float((kalpha2_text or "").strip())
    kbeta = parse_float((kbeta_text or "").strip())
    kind = (wave_type or "").strip().lower().replace("α", "a").replace("β", "b")
    if wave_type:
        metadata["wave_type"] = wave_type
    if kind in ("ka1", "kalpha1"):
        return build_wavelength(kalpha1, None, None, target, metadata=metadata)
    if kind in ("kb", "kbeta"):
        return build_wavelength(kbeta, None, None, target, metadata=metadata)
    return build_wavelength(kalpha1, kalpha2, None, target, metadata=metadata)
