"""Files → references ready to store in the library.

Two kinds of reference:

- **calculated**: a crystal structure (CIF, BGMN .str) is read, its stick
  pattern simulated (:func:`xrdid.sticks.simulate_sticks`), and the model sees
  it as a clean Cu Kα scan on the grid (:func:`xrdid.augment.reference_input`);
- **measured**: a measured pattern of a known material (any format
  :func:`xrdid.readers.read_pattern` reads) is kept as measured and
  preprocessed exactly like an upload. It needs a name (the file cannot say
  what it is); a formula, when given, gives its elements for filters.
  A Raman spectrum (any format :func:`xrdid.readers.read_measurement`
  reads as one) is a measured reference of the Raman library, the same way.

Preparing (read, simulate, preprocess) and embedding are separate steps so
that the indexer can prepare in worker processes and embed in batches.
Pure functions: bytes in, :class:`~xrdid.library.NewReference` out; nothing
is stored here.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from pymatgen.core import Composition

from xrdid.errors import InputError, StructureReadError, XrdidError
from xrdid.identify import preprocess_guard
from xrdid.library import (
    ELEMENT_SYMBOLS,
    MeasuredProfile,
    ModelView,
    NewReference,
    PatternEmbedder,
    RamanProfile,
    ReferenceInfo,
    ReferenceKind,
    ReferencePattern,
    Technique,
    decode_pattern,
    encode_pattern,
    model_view,
    technique_of,
)
from xrdid.pattern import Pattern
from xrdid.preprocess import BaselineMethod
from xrdid.raman.preprocess import RamanBaseline, compact_spectrum
from xrdid.raman.spectrum import RamanSpectrum
from xrdid.readers import DEFAULT_MAX_BYTES, read_measurement, read_pattern
from xrdid.rir import calculated_rir
from xrdid.sticks import SimulationLimits, simulate
from xrdid.structures import read_structure
from xrdid.wavelengths import CU_KALPHA, Wavelength

__all__ = [
    "DEFAULT_SOURCE",
    "PreparedReference",
    "content_hash",
    "embed_references",
    "is_structure_file",
    "parse_formula",
    "prepare_measured",
    "prepare_raman",
    "prepare_reference",
    "raman_reference",
    "prepare_structure",
    "source_key",
]

logger = logging.getLogger(__name__)

# Source of references added without one (uploads through the API); their
# source id defaults to the content hash, so the same file is not added twice.
DEFAULT_SOURCE = "upload"

# Longest name/notes stored: keeps listings readable and rows small.
MAX_NAME_CHARS = 200
MAX_NOTES_CHARS = 2000

# Powder-data tags: a .cif holding these is a measured pattern (pdCIF), not a structure.
_POWDER_CIF = re.compile(rb"_pd_(meas|proc|calc)_", re.IGNORECASE)
_ATOM_SITES = re.compile(rb"_atom_site_(fract|cartn)_", re.IGNORECASE)
_STRUCTURE_SUFFIXES = (".str",)
_CIF_SUFFIXES = (".cif", ".mcif")


@dataclass(frozen=True)
class PreparedReference:
    """A reference read and preprocessed, waiting for its embedding."""

    info: ReferenceInfo
    pattern: ReferencePattern  # exactly as it will be stored (float32-rounded)
    view: ModelView  # what the model sees of ``pattern``
    content_hash: str | None
    warnings: tuple[str, ...]

    @property
    def kind(self) -> ReferenceKind:
        return (
            ReferenceKind.MEASURED
            if isinstance(self.pattern, MeasuredProfile | RamanProfile)
            else ReferenceKind.CALCULATED
        )

    @property
    def technique(self) -> Technique:
        return technique_of(self.pattern)


def content_hash(data: bytes) -> str:
    """SHA-256 of a file's bytes (hex): the same file gives the same reference."""
    return hashlib.sha256(data).hexdigest()


def _default_source_id(data: bytes) -> str:
    return "sha256:" + content_hash(data)[:16]


def source_key(data: bytes, source: str | None, source_id: str | None) -> tuple[str, str]:
    """(source, source id) of a file: defaults ``upload`` and a hash of its bytes."""
    return (
        (source or "").strip() or DEFAULT_SOURCE,
        (source_id or "").strip() or _default_source_id(data),
    )


def is_structure_file(data: bytes, filename: str | None) -> bool:
    """True for a crystal-structure file (CIF, .str), False for a measured pattern.

    A CIF with atom sites is a structure; one with powder data
    (``_pd_meas_…``/``_pd_proc_…``) and no atoms is a pattern (pdCIF).
    Without a telling suffix, content decides the same way for ``data_``
    blocks; BGMN keywords mean a structure.
    """
    suffix = Path(filename or "").suffix.lower()
    if suffix in _STRUCTURE_SUFFIXES:
        return True
    head = data[:2_000_000]
    if suffix in _CIF_SUFFIXES:
        # Rietveld CIFs hold both atoms and the powder data: the structure wins.
        return _ATOM_SITES.search(head) is not None or _POWDER_CIF.search(head) is None
    if suffix:
        return False
    if re.search(rb"^\s*data_", head, flags=re.MULTILINE):
        return _ATOM_SITES.search(head) is not None or _POWDER_CIF.search(head) is None
    return bool(re.search(rb"(SpacegroupNo|HermannMauguin)\s*=", head))


def parse_formula(formula: str) -> tuple[str, tuple[str, ...]]:
    """(reduced formula, sorted element symbols) of a user-given formula."""
    text = formula.strip()
    try:
        composition = Composition(text)
        if not len(composition) or composition.num_atoms <= 0:
            raise ValueError("no atoms")
        elements = tuple(sorted(el.symbol for el in composition.elements))
        unknown = [e for e in elements if e not in ELEMENT_SYMBOLS]
        if unknown:
            raise ValueError(f"{', '.join(unknown)} is not an element")
        reduced = composition.reduced_formula
    except Exception as exc:  # pymatgen raises ValueError/KeyError/… on odd text
        raise InputError(
            f"formula {formula!r} is not a chemical formula (e.g. 'SiO2', 'CaCO3', "
            f"'KAl2(AlSi3O10)(OH)2'): {exc}"
        ) from exc
    return reduced, elements


def _clean_text(value: str | None, what: str, limit: int) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if len(text) > limit:
        raise InputError(f"{what} is {len(text)} characters long; at most {limit} are kept")
    return text or None


@contextmanager
def _guard(label: str) -> Iterator[None]:
    """A structure file must never crash the caller: an unexpected exception
    (a reader bug met on odd input) is logged and reported as unreadable."""
    try:
        yield
    except (XrdidError, MemoryError):
        raise
    except Exception as exc:
        logger.exception("internal error preparing %s", label)
        raise StructureReadError(
            f"{label}: internal error while reading the structure; the file is probably "
            "malformed — please report it with the file attached"
        ) from exc


def _stored(pattern: ReferencePattern) -> ReferencePattern:
    """The pattern as the library will give it back (float32-rounded), so the
    embedding computed now equals the one a re-embedding would compute."""
    return decode_pattern(encode_pattern(pattern))


def prepare_structure(
    data: bytes,
    filename: str | None = None,
    *,
    source: str = DEFAULT_SOURCE,
    source_id: str | None = None,
    name: str | None = None,
    notes: str | None = None,
    rir: float | None = None,
    simulation_limits: SimulationLimits | None = None,
) -> PreparedReference:
    """Read a structure file, simulate its sticks and the model's view of them.

    The name defaults to the file's (mineral name, title or formula); the
    formula, elements and space group come from the structure, and so does
    the reference intensity ratio unless ``rir`` gives a measured one. With
    ``simulation_limits``, a structure too large to simulate within them is
    refused before simulating.

    Raises StructureReadError (unreadable file) or SimulationError (no usable
    pattern; SimulationTooLargeError over the limits).
    """
    label = filename or "structure.cif"
    with _guard(label):
        structure = read_structure(data, label, simulation_limits=simulation_limits)
        simulated, scale = simulate(structure.structure)
        sticks = _stored(simulated)
        if rir is None:
            rir = calculated_rir(simulated, scale, structure.structure)
    info = ReferenceInfo(
        name=_clean_text(name, "name", MAX_NAME_CHARS) or structure.name[:MAX_NAME_CHARS],
        source=source,
        source_id=source_id or _default_source_id(data),
        formula=structure.formula,
        elements=structure.elements,
        space_group_symbol=structure.space_group_symbol,
        space_group_number=structure.space_group_number,
        crystal_system=structure.crystal_system,
        notes=_clean_text(notes, "notes", MAX_NOTES_CHARS),
        rir=rir,
    )
    with _guard(label):
        view = model_view(sticks)
    return PreparedReference(
        info=info,
        pattern=sticks,
        view=view,
        content_hash=content_hash(data),
        warnings=tuple(structure.warnings) + view.warnings,
    )


def _measured_name(name: str | None) -> str:
    clean_name = _clean_text(name, "name", MAX_NAME_CHARS)
    if not clean_name:
        raise InputError(
            "a measured reference needs a name (what material it is): give the form field "
            "'name' (only structure files carry their own name)"
        )
    return clean_name


def _formula(formula: str | None) -> tuple[str | None, tuple[str, ...]]:
    return parse_formula(formula) if formula and formula.strip() else (None, ())


def prepare_measured(
    source_data: bytes | Pattern,
    filename: str | None = None,
    *,
    name: str | None,
    source: str = DEFAULT_SOURCE,
    source_id: str | None = None,
    formula: str | None = None,
    wavelength: Wavelength | None = None,
    baseline: BaselineMethod = BaselineMethod.BEADS,
    notes: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    rir: float | None = None,
    digest: str | None = None,
) -> PreparedReference:
    """Read a measured pattern of a known material and preprocess it.

    ``source_data`` is a file's bytes, or an already-read Pattern (a column of
    a table, or a file read already: then ``digest`` is its content hash;
    ``source_id`` is required). The radiation is, in order: the one given,
    the file's, Cu Kα (with a warning).

    Raises PatternReadError (unreadable file), InputError (no name, bad
    formula, scan outside the grid).
    """
    clean_name = _measured_name(name)
    if isinstance(source_data, Pattern):
        if source_id is None:
            raise InputError("a pattern given as arrays needs a source id")
        pattern = source_data
    else:
        pattern = read_pattern(source_data, filename, max_bytes=max_bytes)
        digest = content_hash(source_data)
        source_id = source_id or _default_source_id(source_data)
    reduced, elements = _formula(formula)
    radiation = wavelength or pattern.wavelength or CU_KALPHA
    with preprocess_guard(pattern):
        profile = _stored(
            MeasuredProfile(
                two_theta_deg=pattern.two_theta_deg,
                intensity=pattern.intensity,
                wavelength=radiation,
                baseline=baseline,
            )
        )
        view = model_view(profile)
    warnings = list(view.warnings)
    if wavelength is None and pattern.wavelength is None:
        warnings.insert(0, "the file states no wavelength; Cu Kα assumed")
    info = ReferenceInfo(
        name=clean_name,
        source=source,
        source_id=source_id,
        formula=reduced,
        elements=elements,
        notes=_clean_text(notes, "notes", MAX_NOTES_CHARS),
        rir=rir,
    )
    return PreparedReference(
        info=info,
        pattern=profile,
        view=view,
        content_hash=digest,
        warnings=tuple(dict.fromkeys(warnings)),
    )


def raman_reference(
    spectrum: RamanSpectrum,
    info: ReferenceInfo,
    *,
    baseline: RamanBaseline = RamanBaseline.BEADS,
    compact: bool = False,
    digest: str | None = None,
) -> PreparedReference:
    """A Raman spectrum of a known mineral as a reference: kept as measured
    (``compact``: despiked and binned to 1 cm⁻¹, as the default library keeps
    RRUFF's, :func:`xrdid.raman.preprocess.compact_spectrum`) and preprocessed
    exactly like an upload."""
    with preprocess_guard(spectrum):
        kept = compact_spectrum(spectrum) if compact else spectrum
        profile = _stored(
            RamanProfile(
                shift_cm1=kept.shift_cm1,
                intensity=kept.intensity,
                laser_wavelength_nm=spectrum.laser_wavelength_nm,
                baseline=baseline,
                despiked=compact,
            )
        )
        view = model_view(profile)
    return PreparedReference(
        info=info,
        pattern=profile,
        view=view,
        content_hash=digest,
        warnings=tuple(dict.fromkeys(view.warnings)),
    )


def prepare_raman(
    spectrum: RamanSpectrum,
    *,
    name: str | None,
    source: str,
    source_id: str,
    formula: str | None = None,
    baseline: BaselineMethod = BaselineMethod.BEADS,
    notes: str | None = None,
    digest: str | None = None,
) -> PreparedReference:
    """A Raman spectrum read from an upload as a reference of the Raman
    library; ``name`` is required, ``formula`` gives its elements for filters
    and for the element prediction."""
    reduced, elements = _formula(formula)
    info = ReferenceInfo(
        name=_measured_name(name),
        source=source,
        source_id=source_id,
        formula=reduced,
        elements=elements,
        notes=_clean_text(notes, "notes", MAX_NOTES_CHARS),
    )
    prepared = raman_reference(
        spectrum, info, baseline=RamanBaseline(baseline.value), digest=digest
    )
    if not elements:
        note = "no formula given: the reference matches no element filter and adds nothing to the element prediction"
        prepared = replace(prepared, warnings=(*prepared.warnings, note))
    return prepared


def prepare_reference(
    data: bytes,
    filename: str | None = None,
    *,
    kind: ReferenceKind | None = None,
    name: str | None = None,
    source: str | None = None,
    source_id: str | None = None,
    formula: str | None = None,
    wavelength: Wavelength | None = None,
    baseline: BaselineMethod = BaselineMethod.BEADS,
    notes: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    rir: float | None = None,
    simulation_limits: SimulationLimits | None = None,
    technique: Technique | None = None,
    laser_wavelength_nm: float | None = None,
) -> PreparedReference:
    """Prepare any reference file; ``kind`` None decides by suffix and content
    (:func:`is_structure_file`), and a measured file's ``technique`` (None:
    from the content, :func:`xrdid.readers.read_measurement`) whether it is
    an XRD pattern or a Raman spectrum. ``rir``: a measured reference
    intensity ratio (a structure's is calculated when none is given)."""
    source, source_id = source_key(data, source, source_id)
    if kind is None:
        structure = technique is not Technique.RAMAN and is_structure_file(data, filename)
        kind = ReferenceKind.CALCULATED if structure else ReferenceKind.MEASURED
    if kind is ReferenceKind.CALCULATED:
        if technique is Technique.RAMAN:
            raise InputError("a structure file is an XRD reference; leave technique as xrd or auto")
        prepared = prepare_structure(
            data,
            filename,
            source=source,
            source_id=source_id,
            name=name,
            notes=notes,
            rir=rir,
            simulation_limits=simulation_limits,
        )
        if formula and formula.strip() and parse_formula(formula)[0] != prepared.info.formula:
            raise InputError(
                f"formula {formula!r} does not match the structure's composition "
                f"{prepared.info.formula}; leave 'formula' empty for structure files"
            )
        return prepared
    _measured_name(name)  # before reading: the commonest mistake, said first
    measurement = read_measurement(
        data,
        filename,
        technique=technique,
        laser_wavelength_nm=laser_wavelength_nm,
        max_bytes=max_bytes,
    )
    digest = content_hash(data)
    if isinstance(measurement, RamanSpectrum):
        if wavelength is not None or rir is not None:
            given = "wavelength" if wavelength is not None else "rir"
            raise InputError(
                f"{given} applies to XRD patterns; this file is a Raman spectrum (its laser "
                "is laser_wavelength_nm)"
            )
        return prepare_raman(
            measurement,
            name=name,
            source=source,
            source_id=source_id,
            formula=formula,
            baseline=baseline,
            notes=notes,
            digest=digest,
        )
    return prepare_measured(
        measurement,
        filename,
        name=name,
        source=source,
        source_id=source_id,
        formula=formula,
        wavelength=wavelength,
        baseline=baseline,
        notes=notes,
        max_bytes=max_bytes,
        rir=rir,
        digest=digest,
    )


def embed_references(
    prepared: Sequence[PreparedReference], embedder: PatternEmbedder
) -> list[NewReference]:
    """Embed prepared references in one batch."""
    vectors = embedder.embed([p.view for p in prepared])
    return [
        NewReference(
            info=p.info,
            pattern=p.pattern,
            embedding=np.asarray(vectors[i], dtype=np.float32),
            model_version=embedder.version,
            content_hash=p.content_hash,
            profile=p.view.intensity,
        )
        for i, p in enumerate(prepared)
    ]
