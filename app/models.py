"""Request and response models of the HTTP API (pydantic, only at this edge).

Request forms validate and normalise user input once (element symbols,
wavelengths with unit hints); response models are built from the science
layer's dataclasses by their ``from_*`` constructors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.answer_models import (
    MATERIAL_CONFIDENCE_HELP,
    ElementProbabilityPublic,
    FitPublic,
    MaterialPublic,
    PhasePublic,
    ProfilesPublic,
    RamanProfilesPublic,
    Verdict,
    reference_fields,
)
from xrdid.errors import InputError
from xrdid.identify import MAX_TOP_K, Identification, IdentifyOptions, InternalStandard
from xrdid.identify_files import Pipelines, Reading, XrdModel
from xrdid.library import (
    ElementFilter,
    Match,
    MeasuredProfile,
    RamanProfile,
    ReferenceEntry,
    ReferenceKind,
    ReferencePage,
    ReferencePattern,
    parse_elements,
)
from xrdid.preprocess import BaselineMethod
from xrdid.raman.answer import RamanOptions, RamanResult
from xrdid.raman.preprocess import RamanBaseline
from xrdid.raman.search import RamanSearch
from xrdid.raman.spectrum import MAX_LASER_NM, MIN_LASER_NM
from xrdid.ranking import SERVED
from xrdid.results import MaterialMatch, StageTimings
from xrdid.sticks import STICK_WAVELENGTH_ANGSTROM
from xrdid.technique import Technique
from xrdid.wavelengths import Wavelength, parse_wavelength

# What `include` may ask for.
INCLUDE_EXTRAS = {"profiles"}
IDENTIFY_EXAMPLE = json.loads(
    (Path(__file__).parent / "examples" / "identify_mixture.json").read_text(encoding="utf-8")
)
# Ids and cursors are SQLite integers: signed 64-bit.
MAX_ID = 2**63 - 1

TECHNIQUE_HELP = (
    "What the file is: xrd (an X-ray powder pattern), raman (a Raman spectrum), or auto: "
    "from the file (its format, then a text file's header words, then its axis: 2θ never "
    "exceeds 180°)"
)
LASER_HELP = (
    "Raman: the excitation laser in nm, overriding the file's; needed for a spectrum whose "
    "axis is absolute wavenumber or wavelength"
)

ELEMENTS_HELP = (
    "comma-separated element symbols (e.g. 'Fe,O'); references of unknown composition "
    "never match an element filter"
)


def never_null(schema: dict[str, Any]) -> None:
    """JSON schema of an optional form or query field: a string, never null
    (leaving it out is how to omit it; "null" would be read as text)."""
    options = schema.pop("anyOf", None)
    if options is None:
        return
    kept = [option for option in options if option != {"type": "null"}]
    if len(kept) == 1:
        schema.update(kept[0])
    else:
        schema["anyOf"] = kept
    if schema.get("default", 0) is None:
        del schema["default"]


def _blank_to_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


def _check_wavelength(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_wavelength(value)
    except InputError as exc:
        raise ValueError(str(exc)) from exc
    return value.strip()


def _check_elements(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        symbols = parse_elements(value, "")  # the error names the field already
    except InputError as exc:
        raise ValueError(str(exc)) from exc
    return ",".join(sorted(symbols)) or None


class ElementFilterFields(BaseModel):
    """Element constraints shared by /identify and GET /references."""

    elements_all: str | None = Field(
        default=None,
        json_schema_extra=never_null,
        description=f"References must contain all of these: {ELEMENTS_HELP}",
        examples=["Si,O"],
    )
    elements_none: str | None = Field(
        default=None,
        json_schema_extra=never_null,
        description=f"References must contain none of these: {ELEMENTS_HELP}",
        examples=["Fe"],
    )
    elements_only: str | None = Field(
        default=None,
        json_schema_extra=never_null,
        description=f"References may contain only these elements: {ELEMENTS_HELP}",
        examples=["Si,Al,O,Na,K,Ca,H"],
    )

    @field_validator("elements_all", "elements_none", "elements_only", mode="before")
    @classmethod
    def _blank(cls, value: object) -> object:
        return _blank_to_none(value)

    @field_validator("elements_all", "elements_none", "elements_only")
    @classmethod
    def _symbols(cls, value: str | None) -> str | None:
        return _check_elements(value)

    @model_validator(mode="after")
    def _consistent(self) -> ElementFilterFields:
        try:
            self.element_filter()
        except InputError as exc:
            raise ValueError(str(exc)) from exc
        return self

    def element_filter(self) -> ElementFilter:
        return ElementFilter.parse(self.elements_all, self.elements_none, self.elements_only)


# --------------------------------------------------------------------------- identify


class IdentifyForm(ElementFilterFields):
    """Options of an identification (multipart form fields next to the file
    of POST /identify, or the files of POST /jobs)."""

    top_k: int | None = Field(
        default=None,
        json_schema_extra=never_null,
        ge=1,
        le=MAX_TOP_K,
        description="How many candidates to return (default 5)",
        examples=[5],
    )
    wavelength: str | None = Field(
        default=None,
        json_schema_extra=never_null,
        description=(
            "Radiation of the scan: a wavelength in Å (e.g. 1.5406) or an anode symbol "
            "(Cu, Mo, Co, Cr, Fe, Ag; 'CuKa1' for Kα1 only). Default: the file's (a text "
            "header's included), else Cu Kα. Not used for a file whose axis is q or "
            "d-spacing, which needs none (the answer's warnings say so)"
        ),
        examples=["Cu"],
    )
    baseline: BaselineMethod = Field(
        default=BaselineMethod.BEADS,
        description="Background removal: beads (default), snip, or none (already subtracted)",
    )
    sample_id: str | None = Field(
        default=None,
        json_schema_extra=never_null,
        max_length=200,
        description="Your sample id, echoed back",
        examples=["S-2024-017"],
    )
    phases: bool = Field(
        default=True,
        description="Analyse the phases (which materials, how much of each); false: the "
        "ranked lists only (faster)",
    )
    include: str | None = Field(
        default=None,
        json_schema_extra=never_null,
        description="Comma-separated extras: 'profiles' adds the arrays of an overlay (XRD: "
        "the scan, each phase's fitted profile, the residual, reflections with hkl; Raman: "
        "the preprocessed spectrum and each candidate's reference spectrum, over Raman shift)",
        examples=["profiles"],
    )
    internal_standard: str | None = Field(
        default=None,
        json_schema_extra=never_null,
        max_length=120,
        description="A phase added at a known weight percent, NAME:PERCENT (e.g. "
        "'Corundum:20'): weight percents become absolute and the rest is reported as "
        "amorphous or unidentified",
        examples=["Corundum:20"],
    )
    technique: Literal["auto", "xrd", "raman"] = Field(default="auto", description=TECHNIQUE_HELP)
    laser_wavelength_nm: float | None = Field(
        default=None,
        json_schema_extra=never_null,
        ge=MIN_LASER_NM,
        le=MAX_LASER_NM,
        description=LASER_HELP,
        examples=[532],
    )

    @field_validator(
        "wavelength",
        "sample_id",
        "top_k",
        "include",
        "internal_standard",
        "laser_wavelength_nm",
        mode="before",
    )
    @classmethod
    def _blank_fields(cls, value: object) -> object:
        return _blank_to_none(value)

    @field_validator("wavelength")
    @classmethod
    def _radiation(cls, value: str | None) -> str | None:
        return _check_wavelength(value)

    @field_validator("include")
    @classmethod
    def _extras(cls, value: str | None) -> str | None:
        if value is None:
            return None
        extras = {part.strip().lower() for part in value.split(",") if part.strip()}
        unknown = extras - INCLUDE_EXTRAS
        if unknown:
            raise ValueError(
                f"unknown include value(s) {', '.join(sorted(unknown))}; give "
                f"{', '.join(sorted(INCLUDE_EXTRAS))}"
            )
        return ",".join(sorted(extras)) or None

    @field_validator("internal_standard")
    @classmethod
    def _standard(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            InternalStandard.parse(value)
        except InputError as exc:
            raise ValueError(str(exc)) from exc
        return value.strip()

    @model_validator(mode="after")
    def _standard_needs_phases(self) -> IdentifyForm:
        if self.internal_standard and not self.phases:
            raise ValueError("an internal standard needs the phase analysis: leave phases on")
        return self

    @property
    def asked_technique(self) -> Technique | None:
        return None if self.technique == "auto" else Technique(self.technique)

    def raman_options(self, default_top_k: int, picture: bool) -> RamanOptions:
        """The options of a Raman identification; XRD-only fields are refused."""
        given = [
            name
            for name, value in (
                ("wavelength", self.wavelength),
                ("internal_standard", self.internal_standard),
            )
            if value is not None
        ]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise InputError(
                f"{' and '.join(given)} {verb} to XRD patterns; this file is a Raman spectrum "
                "(leave them out, or send technique=xrd if the file is an XRD pattern)"
            )
        if picture:
            raise InputError(
                "the PNG overlay is drawn for XRD patterns; for a Raman spectrum ask for JSON "
                "with include=profiles (the spectrum and its candidates' spectra)"
            )
        return RamanOptions(
            top_k=self.top_k or default_top_k,
            baseline=RamanBaseline(self.baseline.value),
            elements=self.element_filter(),
            include_profiles="profiles" in (self.include or "").split(","),
        )

    def options(self, default_top_k: int, picture: bool = False) -> IdentifyOptions:
        """The options of an XRD identification (a picture needs the phases
        and their profiles); the Raman-only field is refused."""
        if self.laser_wavelength_nm is not None:
            raise InputError(
                "laser_wavelength_nm applies to Raman spectra; this file is an XRD pattern "
                "(leave it out, or send technique=raman if the file is a Raman spectrum)"
            )
        return IdentifyOptions(
            top_k=self.top_k or default_top_k,
            wavelength=parse_wavelength(self.wavelength) if self.wavelength else None,
            baseline=self.baseline,
            elements=self.element_filter(),
            phases=self.phases or picture,
            include_profiles=picture or "profiles" in (self.include or "").split(","),
            internal_standard=(
                InternalStandard.parse(self.internal_standard) if self.internal_standard else None
            ),
        )

    def reading(self, max_bytes: int) -> Reading:
        """How to read the file(s): the technique asked for and the laser."""
        return Reading(self.asked_technique, self.laser_wavelength_nm, max_bytes)

    def pipelines(
        self,
        xrd_model: Callable[[], XrdModel],
        raman_search: Callable[[], RamanSearch],
        default_top_k: int,
        picture: bool = False,
    ) -> Pipelines:
        """Each technique's model and these options for it, checked when a
        file of that technique is met (options first: a refused option is
        the answer even while a model loads)."""

        def xrd() -> tuple[XrdModel, IdentifyOptions]:
            options = self.options(default_top_k, picture)
            return xrd_model(), options

        def raman() -> tuple[RamanSearch, RamanOptions]:
            options = self.raman_options(default_top_k, picture)
            return raman_search(), options

        return Pipelines(xrd=xrd, raman=raman)


class CandidatePublic(BaseModel):
    rank: int = Field(description="1 = most similar")
    reference_id: int
    name: str
    formula: str | None
    elements: list[str]
    space_group: str | None = Field(description="Hermann–Mauguin short symbol")
    space_group_number: int | None
    crystal_system: str | None
    source: str
    source_id: str
    kind: ReferenceKind
    score: float = Field(
        description=f"What candidates are ranked by: similarity + {SERVED.profile_weight} × "
        f"profile_correlation, over the embedding's {SERVED.rerank_candidates} nearest "
        f"references and the {SERVED.profile_search_candidates} whose profiles correlate best "
        "with the query's. Raman: similarity + the tuned weight × profile_correlation over "
        "the nearest minerals (docs/raman.md)"
    )
    similarity: float = Field(description="Cosine similarity of the embeddings, −1…1")
    profile_correlation: float | None = Field(
        description="Best Pearson r of the square roots of the query's and the reference's "
        f"profiles over 2θ shifts of ±0.3° and isotropic lattice strains of "
        f"±{100 * SERVED.strain_max:g}% (each strain ε's r lowered by "
        f"{SERVED.strain_penalty:g}·|ε|), on the part of the grid the query covers; for "
        f"the {SERVED.strain_fit_candidates} best calculated references, the better of that "
        "and the r with a strain tensor fitted (each reflection its own strain; its departure "
        f"from the mean strain costs {SERVED.anisotropic_penalty:g} × its sum over the six "
        "components). Raman: the best Pearson r of the square roots of the preprocessed "
        "spectra over shifts of ±10 cm⁻¹"
    )

    confidence: float | None = Field(
        default=None, description=f"Of its material: {MATERIAL_CONFIDENCE_HELP}"
    )

    @classmethod
    def from_match(cls, match: Match) -> CandidatePublic:
        return cls(
            rank=match.rank,
            reference_id=match.entry.id,
            **reference_fields(match.entry),
            crystal_system=match.entry.info.crystal_system,
            kind=match.entry.kind,
            score=round(match.score, 6),
            similarity=round(match.similarity, 6),
            profile_correlation=(
                None if match.profile_correlation is None else round(match.profile_correlation, 6)
            ),
            confidence=None if match.confidence is None else round(match.confidence, 4),
        )


class WavelengthPublic(BaseModel):
    label: str
    kalpha1_angstrom: float
    kalpha2_angstrom: float | None
    origin: Literal["request", "file", "default"] = Field(
        description="Where it came from: the request, the file, or the Cu Kα default"
    )

    @classmethod
    def from_wavelength(cls, wavelength: Wavelength, origin: str) -> WavelengthPublic:
        return cls(
            label=wavelength.label,
            kalpha1_angstrom=wavelength.kalpha1_angstrom,
            kalpha2_angstrom=wavelength.kalpha2_angstrom,
            origin=origin,  # type: ignore[arg-type]
        )


class QueryPublic(BaseModel):
    filename: str | None
    points: int = Field(description="Data points in the file")
    two_theta_range_deg: tuple[float, float] | None = Field(
        description="2θ range of the file, as measured (XRD)"
    )
    covered_two_theta_deg: tuple[float, float] | None = Field(
        description="Part of the model grid (Cu Kα1, 5–90° 2θ) the scan covers: what was "
        "compared (XRD)"
    )
    wavelength: WavelengthPublic | None = Field(description="The X-ray radiation (XRD)")
    shift_range_cm1: tuple[float, float] | None = Field(
        default=None, description="Raman shift range of the file, as measured (Raman)"
    )
    covered_shift_cm1: tuple[float, float] | None = Field(
        default=None,
        description="Part of the Raman grid (100–1,800 cm⁻¹) the spectrum covers: what was "
        "compared (Raman)",
    )
    laser_wavelength_nm: float | None = Field(
        default=None,
        description="The excitation laser, when the file or the request gives it (Raman)",
    )
    spikes_removed: int | None = Field(
        default=None, description="Cosmic-ray spikes taken out of the spectrum (Raman)"
    )
    baseline: BaselineMethod
    warnings: list[str]


class LibraryPublic(BaseModel):
    size: int = Field(description="References searched")
    version: str = Field(description="Changes whenever references are added or deleted")


class TimingsPublic(BaseModel):
    read_ms: float
    preprocess_ms: float
    embed_ms: float
    search_ms: float
    phases_ms: float = Field(default=0.0, description="Phase analysis and grouping")
    total_ms: float = Field(description="Sum of the stages (the upload itself excluded)")

    @classmethod
    def of(cls, t: StageTimings) -> TimingsPublic:
        return cls(
            read_ms=round(t.read_ms, 3),
            preprocess_ms=round(t.preprocess_ms, 3),
            embed_ms=round(t.embed_ms, 3),
            search_ms=round(t.search_ms, 3),
            phases_ms=round(t.phases_ms, 3),
            total_ms=round(t.total_ms, 3),
        )


class IdentifyResponse(BaseModel):
    # A real answer: a weighed three-phase mixture from the shared data
    # (dara: 20.3 wt% NiO, 30.0 Li2CO3, 50.3 TiO2), lists shortened.
    model_config = ConfigDict(json_schema_extra={"examples": [IDENTIFY_EXAMPLE]})

    sample_id: str | None
    technique: Technique = Field(
        default=Technique.XRD,
        description="What the file was identified as: an XRD pattern or a Raman spectrum "
        "(each searched in its own library)",
    )
    verdict: Verdict = Field(
        description="match: one material; mixture: several phases; no_match: nothing in the "
        "library is credible (e.g. the material is not in it)"
    )
    candidates: list[CandidatePublic] = Field(
        description="The ranked references, one per reference (several may be one material)"
    )
    materials: list[MaterialPublic] = Field(
        description="The same ranking as one answer per material or look-alike family"
    )
    phases: list[PhasePublic] = Field(
        description="The phases found by the phase analysis, strongest first (empty with "
        "phases=false or when none is credible)"
    )
    amorphous_percent: float | None = Field(
        description="With an internal standard: 100 − the phases' weight percents (amorphous "
        "or unidentified)"
    )
    fit: FitPublic | None = Field(description="How well the phases explain the scan")
    notes: list[str] = Field(
        description="What the answer could not do or is unsure of, in sentences"
    )
    profiles: ProfilesPublic | RamanProfilesPublic | None = Field(
        description="Overlay arrays (include=profiles): over 2θ (XRD) or Raman shift (Raman)"
    )
    elements: list[ElementProbabilityPublic] | None = Field(
        default=None,
        description="Raman: the probability that the sample contains each element, highest "
        "first (most useful with no_match); null for XRD",
    )
    query: QueryPublic
    model_version: str
    library: LibraryPublic
    timings_ms: TimingsPublic

    @classmethod
    def from_identification(cls, result: Identification, sample_id: str | None) -> IdentifyResponse:
        q, t = result.query, result.timings
        return cls(
            sample_id=sample_id,
            verdict=result.verdict,  # type: ignore[arg-type]
            candidates=[CandidatePublic.from_match(m) for m in result.matches],
            materials=[MaterialPublic.of(m) for m in result.materials],
            phases=[PhasePublic.of(p) for p in result.phases],
            amorphous_percent=(
                None if result.amorphous_percent is None else round(result.amorphous_percent, 3)
            ),
            fit=FitPublic.of(result.fit) if result.fit is not None else None,
            notes=list(result.notes),
            profiles=ProfilesPublic.of(result.evidence) if result.evidence is not None else None,
            query=QueryPublic(
                filename=q.filename,
                points=q.n_points,
                two_theta_range_deg=q.two_theta_range_deg,
                covered_two_theta_deg=q.covered_two_theta_deg,
                wavelength=WavelengthPublic.from_wavelength(q.wavelength, q.wavelength_origin),
                baseline=q.baseline,
                warnings=list(q.warnings),
            ),
            model_version=result.model_version,
            library=LibraryPublic(size=result.library.size, version=result.library.version),
            timings_ms=TimingsPublic.of(t),
        )

    @classmethod
    def from_raman(cls, result: RamanResult, sample_id: str | None) -> IdentifyResponse:
        """A Raman answer: one candidate (and material) per mineral, no phases."""
        q = result.query
        return cls(
            sample_id=sample_id,
            technique=Technique.RAMAN,
            verdict=result.verdict,  # type: ignore[arg-type]
            candidates=[CandidatePublic.from_match(m) for m in result.matches],
            materials=[
                MaterialPublic.of(MaterialMatch(m.rank, m, m.confidence, (), (), None))
                for m in result.matches
            ],
            phases=[],
            amorphous_percent=None,
            fit=None,
            notes=list(result.notes),
            profiles=RamanProfilesPublic.of(result.evidence) if result.evidence else None,
            elements=[
                ElementProbabilityPublic(symbol=symbol, probability=round(p, 4))
                for symbol, p in result.elements
            ],
            query=QueryPublic(
                filename=q.filename,
                points=q.n_points,
                two_theta_range_deg=None,
                covered_two_theta_deg=None,
                wavelength=None,
                shift_range_cm1=q.shift_range_cm1,
                covered_shift_cm1=q.covered_cm1,
                laser_wavelength_nm=q.laser_wavelength_nm,
                spikes_removed=q.spikes_removed,
                baseline=BaselineMethod(q.baseline.value),
                warnings=list(q.warnings),
            ),
            model_version=result.model_version,
            library=LibraryPublic(size=result.library.size, version=result.library.version),
            timings_ms=TimingsPublic.of(result.timings),
        )


# --------------------------------------------------------------------------- references


class ReferenceCreateForm(BaseModel):
    """Metadata of a new reference (multipart form fields next to ``file``)."""

    name: str | None = Field(
        default=None,
        json_schema_extra=never_null,
        max_length=200,
        description="What the material is; required for measured patterns (structures carry a name)",
        examples=["Quartz"],
    )
    formula: str | None = Field(
        default=None,
        json_schema_extra=never_null,
        max_length=200,
        description="Chemical formula of a measured reference (gives its elements for filters)",
        examples=["SiO2"],
    )
    source: str | None = Field(
        default=None,
        json_schema_extra=never_null,
        max_length=100,
        description="Where it comes from (default 'upload')",
        examples=["cod"],
    )
    source_id: str | None = Field(
        default=None,
        json_schema_extra=never_null,
        max_length=200,
        description="Its id in that source (default: a hash of the file); (source, source_id) is unique",
        examples=["9000775"],
    )
    notes: str | None = Field(
        default=None,
        json_schema_extra=never_null,
        max_length=2000,
        description="Free text kept with the reference",
    )
    kind: Literal["auto", "calculated", "measured"] = Field(
        default="auto",
        description="calculated: a structure file; measured: a pattern file; auto: decide from the file",
    )
    wavelength: str | None = Field(
        default=None,
        json_schema_extra=never_null,
        description="Radiation of a measured pattern (Å or anode); default: the file's, else Cu Kα",
    )
    baseline: BaselineMethod = Field(
        default=BaselineMethod.BEADS, description="Background removal for a measured pattern"
    )
    rir: float | None = Field(
        default=None,
        json_schema_extra=never_null,
        gt=0,
        le=100,
        description=(
            "Measured reference intensity ratio (I/I corundum, 50:50 by weight) used for "
            "weight fractions; default: calculated from the structure, none for a "
            "measured pattern (its phases then get no weight %)"
        ),
        examples=[3.4],
    )
    technique: Literal["auto", "xrd", "raman"] = Field(default="auto", description=TECHNIQUE_HELP)
    laser_wavelength_nm: float | None = Field(
        default=None,
        json_schema_extra=never_null,
        ge=MIN_LASER_NM,
        le=MAX_LASER_NM,
        description=LASER_HELP,
        examples=[532],
    )

    @field_validator(
        "name",
        "formula",
        "source",
        "source_id",
        "notes",
        "wavelength",
        "laser_wavelength_nm",
        mode="before",
    )
    @classmethod
    def _blank(cls, value: object) -> object:
        return _blank_to_none(value)

    @field_validator("wavelength")
    @classmethod
    def _radiation(cls, value: str | None) -> str | None:
        return _check_wavelength(value)

    def prepare_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`xrdid.references.prepare_reference`."""
        return {
            "kind": None if self.kind == "auto" else ReferenceKind(self.kind),
            "name": self.name,
            "source": self.source,
            "source_id": self.source_id,
            "formula": self.formula,
            "wavelength": parse_wavelength(self.wavelength) if self.wavelength else None,
            "baseline": self.baseline,
            "notes": self.notes,
            "rir": self.rir,
            "technique": None if self.technique == "auto" else Technique(self.technique),
            "laser_wavelength_nm": self.laser_wavelength_nm,
        }


class ReferencePublic(BaseModel):
    id: int
    name: str
    formula: str | None
    elements: list[str]
    space_group: str | None
    space_group_number: int | None
    crystal_system: str | None
    source: str
    source_id: str
    kind: ReferenceKind
    technique: Technique = Field(description="xrd or raman: the library it is searched in")
    notes: str | None
    model_version: str
    created_at: datetime

    @classmethod
    def fields_from(cls, entry: ReferenceEntry) -> dict[str, Any]:
        info = entry.info
        return {
            "id": entry.id,
            **reference_fields(entry),
            "crystal_system": info.crystal_system,
            "kind": entry.kind,
            "technique": entry.technique,
            "notes": info.notes,
            "model_version": entry.model_version,
            "created_at": entry.created_at,
        }

    @classmethod
    def from_entry(cls, entry: ReferenceEntry) -> ReferencePublic:
        return cls(**cls.fields_from(entry))


class ReferenceCreated(ReferencePublic):
    warnings: list[str] = Field(description="What was odd but tolerated in the file")


class SticksPublic(BaseModel):
    """A calculated reference: reflections placed at Cu Kα1."""

    type: Literal["sticks"] = "sticks"
    wavelength_angstrom: float = STICK_WAVELENGTH_ANGSTROM
    d_angstrom: list[float]
    two_theta_deg: list[float]
    relative_intensity: list[float] = Field(
        description="Integrated intensity at Cu Kα1, strongest = 100"
    )
    hkl: list[tuple[int, int, int]]


class ProfilePublic(BaseModel):
    """A measured reference: the pattern as it was added."""

    type: Literal["profile"] = "profile"
    wavelength_angstrom: float
    anode: str | None
    baseline: BaselineMethod
    two_theta_deg: list[float]
    intensity: list[float]


class RamanSpectrumPublic(BaseModel):
    """A Raman reference: the spectrum as stored (intensity to 16 bits of its range)."""

    type: Literal["raman"] = "raman"
    laser_wavelength_nm: float | None
    baseline: RamanBaseline
    shift_cm1: list[float]
    intensity: list[float]


def pattern_public(pattern: ReferencePattern) -> SticksPublic | ProfilePublic | RamanSpectrumPublic:
    if isinstance(pattern, RamanProfile):
        return RamanSpectrumPublic(
            laser_wavelength_nm=pattern.laser_wavelength_nm,
            baseline=pattern.baseline,
            shift_cm1=np.round(pattern.shift_cm1, 4).tolist(),
            intensity=np.round(pattern.intensity, 6).tolist(),
        )
    if isinstance(pattern, MeasuredProfile):
        return ProfilePublic(
            wavelength_angstrom=pattern.wavelength.kalpha1_angstrom,
            anode=pattern.wavelength.anode,
            baseline=pattern.baseline,
            two_theta_deg=np.round(pattern.two_theta_deg, 6).tolist(),
            intensity=np.round(pattern.intensity, 6).tolist(),
        )
    two_theta = pattern.two_theta_deg(STICK_WAVELENGTH_ANGSTROM)
    intensity = pattern.intensities(STICK_WAVELENGTH_ANGSTROM)
    keep = np.isfinite(two_theta)
    peak = float(intensity[keep].max()) if keep.any() else 1.0
    return SticksPublic(
        d_angstrom=np.round(pattern.d_angstrom[keep], 6).tolist(),
        two_theta_deg=np.round(two_theta[keep], 5).tolist(),
        relative_intensity=np.round(100.0 * intensity[keep] / max(peak, 1e-300), 4).tolist(),
        hkl=[(int(row[0]), int(row[1]), int(row[2])) for row in pattern.hkl[keep]],
    )


class ReferenceDetail(ReferencePublic):
    pattern: (
        Annotated[SticksPublic | ProfilePublic | RamanSpectrumPublic, Field(discriminator="type")]
        | None
    ) = None


class ReferenceList(BaseModel):
    items: list[ReferencePublic]
    total: int = Field(description="References matching the filters, over all pages")
    limit: int
    next_after: int | None = Field(
        description="Pass as 'after' for the next page; null on the last"
    )
    library_version: str

    @classmethod
    def from_page(cls, page: ReferencePage, limit: int, library_version: str) -> ReferenceList:
        return cls(
            items=[ReferencePublic.from_entry(e) for e in page.entries],
            total=page.total,
            limit=limit,
            next_after=page.next_after,
            library_version=library_version,
        )


class ReferenceQuery(ElementFilterFields):
    """Filters and paging of GET /references."""

    limit: int = Field(default=50, ge=1, le=500, description="References per page")
    after: int = Field(
        default=0,
        ge=0,
        le=MAX_ID,
        description="Return references with ids above this (the previous page's next_after)",
    )
    name: str | None = Field(
        default=None,
        json_schema_extra=never_null,
        max_length=200,
        description="Name contains this (case-insensitive)",
    )
    kind: ReferenceKind | None = Field(default=None, json_schema_extra=never_null)
    technique: Technique = Field(
        default=Technique.XRD,
        description="Which library to list: xrd (the default) or raman",
    )


# --------------------------------------------------------------------------- health


class HealthResponse(BaseModel):
    status: Literal["alive"] = "alive"


class ReadyResponse(BaseModel):
    status: Literal["ready"] = "ready"
    model_version: str
    device: str
    library_size: int = Field(description="References searched")
    library_version: str
    database_size: int = Field(description="References in the database")
    raman_status: Literal["loading", "ready", "disabled", "failed"] = Field(
        description="The Raman model and library: disabled when the server has no Raman model"
    )
    raman_model_version: str | None
    raman_library_size: int | None = Field(description="Raman references searched")
    raman_library_version: str | None
