"""Identify measurement files of either technique: read each file as an XRD
pattern or a Raman spectrum (told from its content, or as asked), then
identify each technique's files together through its own pipeline: XRD
patterns with the XRD model and library (:func:`xrdid.identify.identify_patterns`),
Raman spectra with the Raman model and library
(:func:`xrdid.raman.answer.identify_spectra`), one forward pass each.

POST /identify (one file), batch jobs and the command-line client all
identify through :func:`identify_files`, so a file gets the same answer
whichever way it is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xrdid.errors import XrdidError
from xrdid.identify import Identification, IdentifyOptions, identify_patterns
from xrdid.library import Library, PatternEmbedder
from xrdid.pattern import Pattern
from xrdid.raman.answer import RamanOptions, RamanResult, identify_spectra
from xrdid.raman.search import RamanSearch
from xrdid.raman.spectrum import RamanSpectrum
from xrdid.ranking.confidence import Calibration
from xrdid.readers import DEFAULT_MAX_BYTES, Measurement, read_measurement
from xrdid.technique import Technique

__all__ = [
    "FileResult",
    "Pipelines",
    "Reading",
    "XrdModel",
    "identify_files",
    "read_file",
]

# A file's answer, or why it has none.
FileResult = Identification | RamanResult | Exception


@dataclass(frozen=True)
class Reading:
    """How to read the files: ``technique`` None tells it from each file;
    ``laser_wavelength_nm`` overrides a Raman file's laser."""

    technique: Technique | None = None
    laser_wavelength_nm: float | None = None
    max_bytes: int = DEFAULT_MAX_BYTES


@dataclass(frozen=True)
class XrdModel:
    """What identifies XRD patterns: the model, the library, the calibration."""

    embedder: PatternEmbedder
    library: Library
    calibration: Calibration | None = None


@dataclass(frozen=True)
class Pipelines:
    """Each technique's model and options, asked for only when a file of that
    technique is met (an XRD file never waits for the Raman model). A
    callable that raises (options that do not apply to the technique, a
    model that is not loaded) makes its exception the error of each file of
    that technique; the other files are not affected."""

    xrd: Callable[[], tuple[XrdModel, IdentifyOptions]]
    raman: Callable[[], tuple[RamanSearch, RamanOptions]]


def read_file(data: bytes, filename: str | None, reading: Reading) -> tuple[Measurement, float]:
    """The file as an XRD pattern or a Raman spectrum, and the milliseconds it took."""
    start = time.perf_counter()
    measurement = read_measurement(
        data,
        filename,
        technique=reading.technique,
        laser_wavelength_nm=reading.laser_wavelength_nm,
        max_bytes=reading.max_bytes,
    )
    return measurement, (time.perf_counter() - start) * 1000.0


def identify_files(
    files: Sequence[tuple[bytes, str | None]], reading: Reading, pipelines: Pipelines
) -> list[FileResult]:
    """Each file's answer or error, in order: every file read, then each
    technique's files identified together. A file that cannot be read or
    preprocessed gets its error in its place; the others are not affected."""
    out: list[FileResult | None] = [None] * len(files)
    patterns: list[tuple[int, tuple[Pattern, str | None, float]]] = []
    spectra: list[tuple[int, tuple[RamanSpectrum, str | None, float]]] = []
    for i, (data, filename) in enumerate(files):
        try:
            measurement, read_ms = read_file(data, filename, reading)
        except XrdidError as exc:
            out[i] = exc
            continue
        if isinstance(measurement, RamanSpectrum):
            spectra.append((i, (measurement, filename, read_ms)))
        else:
            patterns.append((i, (measurement, filename, read_ms)))
    if patterns:
        xrd_results: Sequence[FileResult]
        try:
            model, xrd_options = pipelines.xrd()
        except Exception as exc:  # why XRD files cannot be identified: each one's error
            xrd_results = [exc] * len(patterns)
        else:
            xrd_results = identify_patterns(
                [item for _, item in patterns],
                model.embedder,
                model.library,
                xrd_options,
                calibration=model.calibration,
            )
        for (i, _), result in zip(patterns, xrd_results, strict=True):
            out[i] = result
    if spectra:
        raman_results: Sequence[FileResult]
        try:
            search, raman_options = pipelines.raman()
        except Exception as exc:  # why Raman spectra cannot be identified: each one's error
            raman_results = [exc] * len(spectra)
        else:
            raman_results = identify_spectra([item for _, item in spectra], search, raman_options)
        for (i, _), result in zip(spectra, raman_results, strict=True):
            out[i] = result
    return [r for r in out if r is not None]
