"""The measuring techniques xrdid identifies from."""

from __future__ import annotations

from enum import StrEnum


class Technique(StrEnum):
    XRD = "xrd"  # X-ray powder diffraction: intensity over 2θ
    RAMAN = "raman"  # Raman spectroscopy: intensity over Raman shift (cm⁻¹)

    @property
    def label(self) -> str:
        """How messages name it: "XRD" or "Raman"."""
        return "XRD" if self is Technique.XRD else "Raman"

    @property
    def a_label(self) -> str:
        """The label with its article: "an XRD", "a Raman"."""
        return "an XRD" if self is Technique.XRD else "a Raman"
