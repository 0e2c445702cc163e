"""What the model sees of a stored reference (its embedding and profile are made from it)."""

from __future__ import annotations

from typing import TypeAlias

from xrdid.augment import reference_input
from xrdid.library.codecs import decode_pattern
from xrdid.library.records import RamanProfile, ReferencePattern
from xrdid.pattern import make_pattern
from xrdid.preprocess import PreprocessedPattern, preprocess
from xrdid.raman.preprocess import PreprocessedSpectrum, preprocess_spectrum
from xrdid.raman.spectrum import RamanSpectrum
from xrdid.sticks import StickPattern

__all__ = ["ModelView", "model_view", "view_of_blob"]

# What a model embeds: an XRD pattern or a Raman spectrum, preprocessed.
ModelView: TypeAlias = PreprocessedPattern | PreprocessedSpectrum


def model_view(pattern: ReferencePattern) -> ModelView:
    """A clean Cu Kα scan on the model grid for sticks, the preprocessed
    measurement for a measured profile or Raman spectrum."""
    if isinstance(pattern, StickPattern):
        return reference_input(pattern)
    if isinstance(pattern, RamanProfile):
        spectrum = RamanSpectrum(pattern.shift_cm1, pattern.intensity, pattern.laser_wavelength_nm)
        return preprocess_spectrum(spectrum, method=pattern.baseline, despike=not pattern.despiked)
    measured = make_pattern(pattern.two_theta_deg, pattern.intensity, wavelength=pattern.wavelength)
    return preprocess(measured, wavelength=pattern.wavelength, method=pattern.baseline)


def view_of_blob(blob: bytes) -> ModelView:
    """:func:`model_view` of a stored pattern (a picklable job for worker processes)."""
    return model_view(decode_pattern(blob))
