"""Response models of an identification's answer: materials and families,
phases with weight percents, the fit and the overlay arrays (pydantic, at
the HTTP edge only; built from :mod:`xrdid.results`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from xrdid.library import Match, ReferenceEntry
from xrdid.raman.answer import RamanEvidence
from xrdid.results import Cell, Evidence, FitSummary, MaterialMatch, PhaseMatch

Verdict = Literal["match", "mixture", "no_match"]

CONFIDENCE_HELP = (
    "Probability (0–1) that this is in the sample, calibrated on scans apart from the "
    "evaluation's (XRD: synthetic scans, a third of them single phases of materials the library "
    "lacks, so for a lab whose samples are all in the library it reads low); null when the "
    "server has no calibration for its model"
)
MATERIAL_CONFIDENCE_HELP = (
    f"{CONFIDENCE_HELP}. A material found as a phase: the phase's confidence times the "
    "probability that the scan's material is in the library at all (the one the verdict reads)"
)
PHASE_CONFIDENCE_HELP = (
    "Probability (0–1) that this phase is in the sample if the sample's materials are in the "
    "library (the verdict judges whether they are; its material's entry in `materials` carries "
    "this times that probability), calibrated on synthetic scans of the library's own "
    "references apart from the evaluation's; null when the server has no calibration for its "
    "model"
)


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


def reference_fields(entry: ReferenceEntry) -> dict[str, Any]:
    """What names a reference in every public model that shows one."""
    info = entry.info
    return {
        "name": info.name,
        "formula": info.formula,
        "elements": list(info.elements),
        "space_group": info.space_group_symbol,
        "space_group_number": info.space_group_number,
        "source": info.source,
        "source_id": info.source_id,
    }


class CellPublic(BaseModel):
    a: float = Field(description="Å")
    b: float = Field(description="Å")
    c: float = Field(description="Å")
    alpha: float = Field(description="degrees")
    beta: float = Field(description="degrees")
    gamma: float = Field(description="degrees")

    @classmethod
    def of(cls, cell: Cell | None) -> CellPublic | None:
        if cell is None:
            return None
        return cls(
            a=round(cell.a, 5),
            b=round(cell.b, 5),
            c=round(cell.c, 5),
            alpha=round(cell.alpha, 4),
            beta=round(cell.beta, 4),
            gamma=round(cell.gamma, 4),
        )


class AlternativePublic(BaseModel):
    """Another reference of the same material (another source or file)."""

    reference_id: int
    name: str
    source: str
    source_id: str
    score: float

    @classmethod
    def of(cls, match: Match) -> AlternativePublic:
        info = match.entry.info
        return cls(
            reference_id=match.entry.id,
            name=info.name,
            source=info.source,
            source_id=info.source_id,
            score=round(match.score, 6),
        )


class FamilyMemberPublic(BaseModel):
    """A look-alike material the scan cannot tell apart from the entry's."""

    reference_id: int
    name: str
    formula: str | None
    space_group: str | None
    profile_correlation: float | None = Field(
        description="Its fitted profile correlation with the scan"
    )
    fitted_cell: CellPublic | None = Field(
        description="Its cell strained to fit the scan (calculated references)"
    )


class FamilyPublic(BaseModel):
    """Materials of one space group whose patterns a strain and a shift turn
    into one another (a solid-solution series, cells within the strain range)."""

    name: str = Field(description="The space group and the members' names")
    members: list[FamilyMemberPublic] = Field(description="The other members, best fit first")


class MaterialPublic(BaseModel):
    """One answer: a material (one per material, whatever its sources) or a
    family of look-alikes led by the member that fits best."""

    rank: int
    reference_id: int = Field(description="Its best reference (see `candidates` for its fields)")
    name: str
    formula: str | None
    space_group: str | None
    score: float
    confidence: float | None = Field(description=MATERIAL_CONFIDENCE_HELP)
    fitted_cell: CellPublic | None = Field(
        description="Its reference's cell strained to fit the scan (calculated references)"
    )
    alternatives: list[AlternativePublic] = Field(
        description="Other references of the same material, best first"
    )
    family: FamilyPublic | None

    @classmethod
    def of(cls, material: MaterialMatch) -> MaterialPublic:
        info = material.match.entry.info
        family = None
        if material.family:
            names = [info.name] + [m.match.entry.info.name for m in material.family]
            family = FamilyPublic(
                name=f"{info.space_group_symbol or 'one space group'}: {', '.join(names)}",
                members=[
                    FamilyMemberPublic(
                        reference_id=m.match.entry.id,
                        name=m.match.entry.info.name,
                        formula=m.match.entry.info.formula,
                        space_group=m.match.entry.info.space_group_symbol,
                        profile_correlation=_round(m.match.profile_correlation),
                        fitted_cell=CellPublic.of(m.cell),
                    )
                    for m in material.family
                ],
            )
        return cls(
            rank=material.rank,
            reference_id=material.match.entry.id,
            name=info.name,
            formula=info.formula,
            space_group=info.space_group_symbol,
            score=round(material.match.score, 6),
            confidence=_round(material.confidence, 4),
            fitted_cell=CellPublic.of(material.cell),
            alternatives=[AlternativePublic.of(m) for m in material.alternatives],
            family=family,
        )


class PhaseReferencePublic(BaseModel):
    reference_id: int
    name: str
    formula: str | None
    elements: list[str]
    space_group: str | None
    space_group_number: int | None
    source: str
    source_id: str
    kind: Literal["calculated", "measured"]
    rir: float | None = Field(description="Reference intensity ratio I/I_corundum used, if known")

    @classmethod
    def of(cls, entry: ReferenceEntry) -> PhaseReferencePublic:
        return cls(
            reference_id=entry.id,
            **reference_fields(entry),
            kind=entry.kind.value,
            rir=_round(entry.info.rir, 4),
        )


class PhaseLookAlikePublic(BaseModel):
    """A material the scan cannot tell from the phase: refined in the phase's place, the
    other phases as fitted (their scales refitted), it passes the same evidence and
    leaves a misfit within the 25% a swap needs to replace one by the other (an
    isostructural relative, usually).
    Which of them is in the sample takes the sample's chemistry (the element filters)."""

    reference: PhaseReferencePublic
    misfit_ratio: float = Field(
        description="Σ residual² of the fit with it in the phase's place, over the phase's: "
        "below 1 it fits a little better, above 1 a little worse"
    )


class PhasePublic(BaseModel):
    """A phase found in the scan by the phase analysis, refined together with the others."""

    reference: PhaseReferencePublic
    weight_percent: float | None = Field(
        description="Weight percent (the phases found sum to 100, or absolute with an internal "
        "standard); null when it cannot be computed (see weight_percent_note)"
    )
    weight_percent_sd: float | None = Field(description="Its standard deviation from the fit")
    weight_percent_note: str | None = Field(
        description="Why it is missing, or what it is relative to"
    )
    scale: float = Field(
        description="Fitted scale of the reference's profile (its strongest point = 1)"
    )
    scale_sd: float
    shift_deg: float = Field(
        description="Fitted 2θ shift (zero offset, displacement), in degrees of the scan's own "
        "2θ (at its wavelength, not the model grid's)"
    )
    strain: float = Field(
        description="Fitted lattice strain: d-spacings × (1 + strain). For a calculated "
        "reference, the isotropic part of the fitted strain tensor (each reflection moves by "
        "its own; the fitted cell gives every edge and angle)"
    )
    broadening_deg: float = Field(
        description="Gaussian σ added to the reference's peak widths, degrees 2θ"
    )
    cell: CellPublic | None = Field(
        description="Fitted cell (calculated references), as symmetric as the reference's lattice"
    )
    explained: float = Field(description="Share of the scan's intensity this phase accounts for")
    confidence: float | None = Field(description=PHASE_CONFIDENCE_HELP)
    # Defaulted: job results stored before it was added are served as stored, without it.
    lookalikes: list[PhaseLookAlikePublic] = Field(
        default_factory=list,
        description="Materials the scan cannot tell from this phase, best fitting first "
        "(empty for most phases; absent from job results stored before it was added)",
    )

    @classmethod
    def of(cls, phase: PhaseMatch) -> PhasePublic:
        return cls(
            reference=PhaseReferencePublic.of(phase.match.entry),
            weight_percent=_round(phase.weight_percent, 3),
            weight_percent_sd=_round(phase.weight_percent_sd, 3),
            weight_percent_note=phase.weight_percent_note,
            scale=round(phase.scale, 6),
            scale_sd=round(phase.scale_sd, 6),
            shift_deg=round(phase.shape.shift_deg, 5),
            strain=round(phase.shape.strain, 6),
            broadening_deg=round(phase.shape.broadening_deg, 5),
            cell=CellPublic.of(phase.cell),
            explained=round(phase.explained, 5),
            confidence=_round(phase.confidence, 4),
            lookalikes=[
                PhaseLookAlikePublic(
                    reference=PhaseReferencePublic.of(a.entry),
                    misfit_ratio=round(a.misfit_ratio, 4),
                )
                for a in phase.lookalikes
            ],
        )


class UnexplainedPeakPublic(BaseModel):
    two_theta_deg: float = Field(description="On the model grid (Cu Kα1)")
    d_angstrom: float
    height: float = Field(description="Residual height, the scan's strongest point being 1")
    # Defaulted: job results stored before it was added are served as stored, without it.
    on_phase: str | None = Field(
        default=None,
        description="The phase (its `reference.name` in `phases`) whose fitted profile here is "
        "at least as high as this residual peak: a misfit of that phase's peak (its shape, "
        "position or height) more likely than a phase missing; null where no phase's peak is",
    )


class FitPublic(BaseModel):
    """How well the phases found explain the scan, over the covered range
    where every phase's reference has data (a measured reference's own range
    can be shorter than the scan's; a note then gives the range assessed)."""

    rwp: float = Field(
        description="√(Σ residual² / Σ scan²) over the range assessed (unit weights)"
    )
    unexplained: float = Field(description="Share of the scan's intensity left unexplained")
    unexplained_peaks: list[UnexplainedPeakPublic] = Field(
        description="Peaks of the residual above noise, highest first: what is still missing "
        "where no phase's fitted peak is (`on_phase` null)"
    )

    @classmethod
    def of(cls, fit: FitSummary) -> FitPublic:
        return cls(
            rwp=round(fit.rwp, 5),
            unexplained=round(fit.unexplained, 5),
            unexplained_peaks=[
                UnexplainedPeakPublic(
                    two_theta_deg=round(p.two_theta_deg, 3),
                    d_angstrom=round(p.d_angstrom, 4),
                    height=round(p.height, 4),
                    on_phase=p.on_phase,
                )
                for p in fit.unexplained_peaks
            ],
        )


class ReflectionPublic(BaseModel):
    two_theta_deg: float
    d_angstrom: float
    hkl: tuple[int, int, int]
    intensity: float = Field(description="Relative, the phase's strongest = 1")


class PhaseProfilePublic(BaseModel):
    reference_id: int
    name: str
    profile: list[float] = Field(description="Its fitted contribution, on `two_theta_deg`")
    reflections: list[ReflectionPublic] = Field(
        description="Its reflections where the fit puts them (calculated references)"
    )


class ProfilesPublic(BaseModel):
    """The arrays of an overlay (`include=profiles`), over the part of the
    model grid (Cu Kα1, 0.02° steps) the scan covers."""

    two_theta_deg: list[float]
    d_angstrom: list[float]
    scan: list[float] = Field(description="The preprocessed scan (background removed, max 1)")
    residual: list[float] = Field(description="Scan − the phases' sum")
    phases: list[PhaseProfilePublic]

    @classmethod
    def of(cls, evidence: Evidence) -> ProfilesPublic:
        def rounded(values: object) -> list[float]:
            return [round(float(v), 5) for v in values]  # type: ignore[attr-defined]

        return cls(
            two_theta_deg=rounded(evidence.two_theta_deg),
            d_angstrom=rounded(evidence.d_angstrom),
            scan=rounded(evidence.scan),
            residual=rounded(evidence.residual),
            phases=[
                PhaseProfilePublic(
                    reference_id=p.reference_id,
                    name=p.name,
                    profile=rounded(p.profile),
                    reflections=[
                        ReflectionPublic(
                            two_theta_deg=round(r.two_theta_deg, 4),
                            d_angstrom=round(r.d_angstrom, 5),
                            hkl=r.hkl,
                            intensity=round(r.intensity, 5),
                        )
                        for r in p.reflections
                    ],
                )
                for p in evidence.phases
            ],
        )


class ElementProbabilityPublic(BaseModel):
    """How likely the sample contains an element (Raman)."""

    symbol: str
    probability: float = Field(
        description="0–1: the chemistry of the library minerals most like the spectrum (by "
        "embedding and by profile), weighted by that likeness (docs/raman.md)"
    )


class RamanReferenceProfilePublic(BaseModel):
    reference_id: int
    name: str
    profile: list[float] = Field(description="Its preprocessed spectrum, on `shift_cm1`")


class RamanProfilesPublic(BaseModel):
    """The arrays of a Raman overlay (`include=profiles`), over the part of the
    Raman grid (100–1,800 cm⁻¹, 1 cm⁻¹ steps) the spectrum covers."""

    shift_cm1: list[float]
    spectrum: list[float] = Field(
        description="The preprocessed spectrum (spikes and fluorescence removed, max 1)"
    )
    references: list[RamanReferenceProfilePublic] = Field(
        description="Each candidate's reference spectrum, preprocessed alike, in the "
        "candidates' order"
    )

    @classmethod
    def of(cls, evidence: RamanEvidence) -> RamanProfilesPublic:
        def rounded(values: object) -> list[float]:
            return [round(float(v), 5) for v in values]  # type: ignore[attr-defined]

        return cls(
            shift_cm1=rounded(evidence.shift_cm1),
            spectrum=rounded(evidence.spectrum),
            references=[
                RamanReferenceProfilePublic(reference_id=rid, name=name, profile=rounded(profile))
                for rid, name, profile in evidence.references
            ],
        )
