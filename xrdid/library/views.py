"""What the model sees of a stored reference (its embedding and profile are made from it)."""

from __future__ import annotations

from xrdid.augment import reference_input
from xrdid.library.codecs import decode_pattern
from xrdid.library.records import ReferencePattern
from xrdid.pattern import make_pattern
from xrdid.preprocess import PreprocessedPattern, preprocess
from xrdid.sticks import StickPattern

__all__ = ["model_view", "view_of_blob"]


def model_view(pattern: ReferencePattern) -> PreprocessedPattern:
    """A clean Cu Kα scan on the model grid for sticks, the preprocessed
    measurement for a measured profile."""
    if isinstance(pattern, StickPattern):
        return reference_input(pattern)
    measured = make_pattern(pattern.two_theta_deg, pattern.intensity, wavelength=pattern.wavelength)
    return preprocess(measured, wavelength=pattern.wavelength, method=pattern.baseline)


def view_of_blob(blob: bytes) -> PreprocessedPattern:
    """:func:`model_view` of a stored pattern (a picklable job for worker processes)."""
    return model_view(decode_pattern(blob))
