"""The measuring techniques xrdid identifies from."""

from __future__ import annotations

from enum import StrEnum


class Technique(StrEnum):
    XRD = "xrd"  # X-ray powder diffraction: intensity over 2θ
    RAMAN = "raman"  # Raman spectroscopy: intensity over Raman shift (cm⁻¹)
