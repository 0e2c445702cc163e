"""Evaluate the answer: phases, weight percents, families, confidence, no_match.

    python -m indexer evaluate-phases [--library model_store/library.sqlite]
                                      [--model model_store/regnet1d.pt]
                                      [--training-set runs/main/training_set.pkl]
                                      [--markdown model_store/PHASES_EVALUATION.md]
                                      [--figure model_store/reliability.png]

One run, methods side by side where there are several:

- **real mixtures** (dara precursor mixtures, weight fractions in their
  names; XRD-AutoAnalyzer mixtures) against the shipped library, through
  the service's own pipeline (:func:`xrdid.identify.identify`): phase recall
  and precision of the phase analysis, of the flat list (the top 5's
  materials) and of the classical residual search (shifted Pearson inside
  find–subtract–search, :mod:`indexer.classical_phases`); weight-percent
  mean absolute error where every phase of a scan is in the library;
- **synthetic mixtures** of 2–6 phases with random weight fractions, of
  calculated references and of RockJock's measured ones (the shipped
  library's, with their RIRs; :mod:`indexer.mixtures`): recall, precision,
  weight-percent MAE by number of phases;
- **quantification benchmark**: three-phase mixtures of the IUCr CPD round
  robin's phases (corundum, zincite, fluorite; brucite, magnetite, zircon)
  made from the library's structures, texture-free as the round robin's
  samples were prepared: weight-percent MAE;
- the mixtures are also scored with a phase counted right when it or a
  look-alike the answer lists for it is in the scan (how much of the error
  is a choice among materials the scan cannot tell apart);
- **single phases**: synthetic and real single-phase scans (AutoAnalyzer,
  powdR minerals, also cut to partial 2θ ranges): one phase and no spurious
  second; the right material first;
- **families**: on the evaluation's synthetic rows (same queries and library
  as ``python -m indexer evaluate``), exact top-5 (the truth leads one of
  the first five answers) and family top-5 (it is in one of their families)
  beside the flat list's top-5;
- **confidence and no_match** on the evaluation's queries: the expected
  calibration error of the answers' confidences and the phases' (on the
  synthetic and on the real mixtures, with their reliability tables), and the
  share of ``no_match`` verdicts for materials taken out of the library and
  for materials in it;
- **conditions**: calculated mixtures of 2–4 phases simulated clean (as the
  quantification benchmark's) and with each of the synthetic section's
  conditions alone (counting noise, broad peaks, preferred orientation,
  intensities scattered per reflection, missing reflections, a truncated
  range, each other anode, large strains), then all together: what each
  costs the phase analysis;
- **isostructural pairs**: two-phase mixtures of look-alike materials whose
  cells differ by 1–3.5%: is each found beside the other;
- **no_match on real scans**: of materials the library lacks (autoXRD's
  thin films of halide perovskites), and of materials it holds (the real
  mixtures' and single phases' verdicts).
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from indexer.classical_phases import search_phases
from indexer.evaluate import (
    QUERY_SETS,
    _formula,
    _phase_names,
    _phases_from_name,
    as_queries,
    synthetic_rows,
)
from indexer.mixtures import Mixture, calculated_mixture, measured_mixture, random_weights
from indexer.training_set import TrainingSet, training_set_at
from xrdid.augment import AugmentConfig
from xrdid.data_paths import PROJECT_ROOT, shared_data_dir
from xrdid.embedder import Embedder
from xrdid.errors import InputError
from xrdid.identify import IdentifyOptions, identify, identify_pattern
from xrdid.library import Library, ReferenceEntry, ReferenceInfo, ReferenceKind, facts_of
from xrdid.pattern import Pattern, make_pattern
from xrdid.preprocess import preprocess
from xrdid.ranking import SERVED, ArraySource, Query, rank
from xrdid.ranking.answer import answer
from xrdid.ranking.confidence import Calibration, expected_calibration_error, reliability
from xrdid.ranking.correlation import profile_correlation
from xrdid.ranking.grouping import are_lookalikes, lookalike_fit
from xrdid.ranking.materials import Material
from xrdid.ranking.phases import analyse_phases
from xrdid.ranking.quantify import weight_percents
from xrdid.readers import read_pattern, read_pattern_table
from xrdid.results import Identification
from xrdid.sticks import StickPattern

log = logging.getLogger("indexer.evaluate_phases")

SEED = 7  # the evaluation's seed (the calibration and tuning use 8)
SYNTHETIC_PHASES = (2, 3, 4, 5, 6)
SYNTHETIC_PER_COUNT = 20
SINGLE_SCANS = 100
QUANTIFICATION_SCANS = 20
CONFIDENCE_SCANS = 300
# The report's sections, in order (the phases' confidence, reported with the
# families, is scored on the real and the synthetic mixtures).
SECTIONS = (
    "real",
    "synthetic",
    "quantification",
    "single",
    "families",
    "conditions",
    "isostructural",
    "absent",
)
# The IUCr CPD quantitative phase analysis round robin's sample phases.
CPD_SETS = (
    ("Corundum", "Zincite", "Fluorite"),
    ("Corundum", "Magnetite", "Zircon"),
    ("Brucite", "Corundum", "Zincite"),
)
# Mixtures keep texture and the low-strain distortions (lab scans of
# catalogued phases); the quantification benchmark's are texture-free.
MIXTURE_AUGMENTATION = replace(QUERY_SETS["low strain"], impurity_probability=0.0)
CPD_AUGMENTATION = replace(
    MIXTURE_AUGMENTATION,
    march_dollase_probability=0.0,
    texture_sigma=0.0,
    drop_probability=0.0,
    truncate_probability=0.0,
    other_anode_probability=0.0,
    large_strain_probability=0.0,
    size_nm_range=(50.0, 300.0),
    peak_counts_range=(1e4, 1e5),
)
# The synthetic mixtures' conditions one at a time on the clean (CPD) ones,
# as that section draws them, except preferred orientation and each other
# anode: drawn for every scan here (there for half and a tenth of them).
CONDITIONS = {
    "clean": CPD_AUGMENTATION,
    "counting noise (30–10⁵ counts)": replace(
        CPD_AUGMENTATION, peak_counts_range=MIXTURE_AUGMENTATION.peak_counts_range
    ),
    "broad peaks (crystallites 8–300 nm)": replace(
        CPD_AUGMENTATION, size_nm_range=MIXTURE_AUGMENTATION.size_nm_range
    ),
    "preferred orientation (March–Dollase r 0.6–1.5)": replace(
        CPD_AUGMENTATION, march_dollase_probability=1.0
    ),
    "intensities scattered per reflection (log-normal σ 0.35)": replace(
        CPD_AUGMENTATION, texture_sigma=MIXTURE_AUGMENTATION.texture_sigma
    ),
    "missing reflections": replace(
        CPD_AUGMENTATION, drop_probability=MIXTURE_AUGMENTATION.drop_probability
    ),
    "truncated range": replace(
        CPD_AUGMENTATION, truncate_probability=MIXTURE_AUGMENTATION.truncate_probability
    ),
    **{
        f"another anode: {symbol} Kα": replace(
            CPD_AUGMENTATION, other_anode_probability=1.0, other_anodes=(symbol,)
        )
        for symbol in MIXTURE_AUGMENTATION.other_anodes
    },
    "large strains (a fifth within ±3%)": replace(
        CPD_AUGMENTATION, large_strain_probability=MIXTURE_AUGMENTATION.large_strain_probability
    ),
    "all of them (the synthetic section's)": MIXTURE_AUGMENTATION,
}
CONDITION_PHASES = (2, 3, 4)
# Pairs of look-alike materials (one space group) by how far apart their
# cells are: the strain that lines one up on the other, up to the ranking's range.
ISOSTRUCTURAL_STRAINS = ((0.01, 0.02), (0.02, SERVED.strain_max))
ISOSTRUCTURAL_SCANS = 60


# --- scoring ---------------------------------------------------------------------


@dataclass
class PhaseTally:
    """Phases found against the truth, and weight-percent errors."""

    right: int = 0
    found: int = 0
    present: int = 0
    errors: list[float] = field(default_factory=list)  # per scan: MAE over truth ∪ found
    scans: int = 0

    def add(
        self,
        truth: dict[str, float],
        found: dict[str, float | None],
        same: Callable[[str, str], bool],
    ) -> None:
        """``truth``: key → weight percent; ``found``: key → weight percent
        (None: none, and then no weight error is counted)."""
        self.scans += 1
        self.present += len(truth)
        self.found += len(found)
        matched: dict[str, str] = {}  # truth key → found key
        for t in truth:
            hit = next((f for f in found if same(f, t) and f not in matched.values()), None)
            if hit is not None:
                matched[t] = hit
        self.right += len(matched)
        if any(value is None for value in found.values()):
            return
        errors = [
            abs((found[matched[t]] or 0.0) - w) if t in matched else w for t, w in truth.items()
        ]
        errors += [found[f] or 0.0 for f in found if f not in matched.values()]
        self.errors.append(float(np.mean(errors)))

    @property
    def recall(self) -> float:
        return self.right / max(self.present, 1)

    @property
    def precision(self) -> float:
        return self.right / max(self.found, 1)

    @property
    def mae(self) -> float | None:
        return float(np.mean(self.errors)) if self.errors else None

    def cells(self) -> str:
        mae = f"{self.mae:.1f}" if self.mae is not None else "–"
        return f"{100 * self.recall:.1f} | {100 * self.precision:.1f} | {mae}"


@dataclass
class RealScans:
    """What the real scans of materials in the library tell the confidence
    and no_match sections: each of their first five answers' (confidence,
    right), and whether each scan was answered ``no_match``."""

    answers: list[tuple[float, bool]] = field(default_factory=list)
    no_match: list[bool] = field(default_factory=list)


def _weights_from_name(stem: str) -> dict[str, float]:
    """'Li2CO3_0p9001-ZrO2_0p1000--8min' → {'Li2CO3': 90.01, 'ZrO2': 10.0} ({} without fractions)."""
    out = {}
    for part in re.split(r"-(?=[A-Z])", stem.split("--")[0]):
        if "_" in part:
            formula, fraction = part.split("_", 1)
            out[_formula(formula)] = 100.0 * float(fraction.replace("p", "."))
    return out


# --- the shipped library as arrays, for the classical baseline ------------------


@dataclass
class LibraryArrays:
    ids: np.ndarray
    profiles: np.ndarray
    formulas: list[str | None]
    materials: list[Material]
    rirs: list[float | None]
    space_groups: list[int | None]

    @classmethod
    def of(cls, library: Library) -> LibraryArrays:
        with library.reading() as source:
            ids = source.profile_rows(SERVED.profile_search_resolution).ids.copy()
            profiles = source.profiles(ids)
            facts = source.facts(ids)
        entries = {e.id: e for e in (library.get(int(i)) for i in ids)}
        return cls(
            ids,
            profiles,
            [entries[int(i)].info.formula for i in ids],
            [f.material for f in facts],
            [f.rir for f in facts],
            [f.space_group_number for f in facts],
        )


def classical_phases(
    arrays: LibraryArrays, view_intensity: np.ndarray, mask: np.ndarray
) -> list[tuple[int, float]]:
    """(library row, scale) of the phases the classical residual search
    finds with shifted Pearson as its ranking."""

    def ranked(x: np.ndarray) -> list[int]:
        scores = profile_correlation(x[0], x[1] > 0.5, arrays.profiles)
        return [int(i) for i in np.argsort(-scores)[:20]]

    def identity(i: int) -> object:
        return arrays.formulas[i] or arrays.materials[i].name

    query = np.stack([view_intensity, mask.astype(np.float64)]).astype(np.float32)
    fits = search_phases(query, ranked, lambda i: arrays.profiles[i], identity=identity)
    return [(f.candidate, f.scale) for f in fits]


def classical_weights(
    arrays: LibraryArrays, fits: list[tuple[int, float]]
) -> dict[int, float | None]:
    amounts = weight_percents(
        [str(i) for i, _ in fits],
        [s for _, s in fits],
        [0.0] * len(fits),
        [arrays.rirs[i] for i, _ in fits],
    )
    return {i: amounts.percent[k] for k, (i, _) in enumerate(fits)}


# --- sections ----------------------------------------------------------------------


def real_mixtures(
    embedder: Embedder,
    library: Library,
    arrays: LibraryArrays,
    calibration: Calibration | None,
    phase_labels: list[tuple[float, bool]],
    real: RealScans,
) -> tuple[list[str], list[dict]]:
    """Phases, amounts and the flat list on the real mixtures; each phase's
    (confidence, right) added to ``phase_labels`` and, for the scans whose
    every phase is in the library, their answers and verdicts to ``real``."""
    root = shared_data_dir() / "patterns"
    scans = sorted((root / "xrd_autoanalyzer").glob("*+*.xy"))
    scans += sorted((root / "dara" / "precursor_mixtures").glob("*.xrdml"))
    known = {f for f in arrays.formulas if f}
    tallies = {
        m: PhaseTally()
        for m in (
            "phase analysis (served)",
            "phase analysis, a look-alike counted",
            "flat list (top 5)",
            "classical residual search",
        )
    }
    full_cover = {m: PhaseTally() for m in tallies}
    # The scans whose every phase is in the library: a phase the library
    # lacks can only be missed, or stood in for by a look-alike.
    complete = {m: PhaseTally() for m in tallies}
    notes = []
    listed = 0  # phases reported with look-alikes
    reported = 0
    for path in tqdm(scans, desc="real mixtures"):
        formulas = [_formula(p) for p in _phases_from_name(path.stem)]
        weights = _weights_from_name(path.stem)
        truth_known = {f for f in formulas if f in known}
        if not truth_known:
            continue
        result = identify(
            path.read_bytes(),
            path.name,
            embedder,
            library,
            IdentifyOptions(),
            calibration=calibration,
        )
        keys = [_formula_key(p.match.entry, arrays) for p in result.phases]
        served = _by_formula(
            [(key, p.weight_percent) for key, p in zip(keys, result.phases, strict=True)]
        )
        reported += len(result.phases)
        listed += sum(1 for p in result.phases if p.lookalikes)
        # Each phase's formula and its look-alikes': what the phase may be.
        may_be: dict[str, set[str]] = {}
        for key, p in zip(keys, result.phases, strict=True):
            may_be.setdefault(key, {key}).update(
                _formula_key(a.entry, arrays) for a in p.lookalikes
            )
        phase_labels += [
            (p.confidence, key in formulas)
            for key, p in zip(keys, result.phases, strict=True)
            if p.confidence is not None
        ]
        if set(formulas) <= known:
            real.answers += [
                (m.confidence, _formula_key(m.match.entry, arrays) in formulas)
                for m in result.materials[:5]
                if m.confidence is not None
            ]
            real.no_match.append(result.verdict == "no_match")
        flat = _by_formula(
            [(_formula_key(m.entry, arrays), None) for m in result.matches[:5]], keep_none=True
        )
        view = preprocess(read_pattern(path))
        fits = classical_phases(arrays, view.intensity, view.mask)
        amounts = classical_weights(arrays, fits)
        classical = _by_formula([(arrays.formulas[i], amounts[i]) for i, _ in fits])
        truth = {f: weights.get(f, float("nan")) for f in truth_known}

        def lookalike(found: str, truth: str, may_be: dict[str, set[str]] = may_be) -> bool:
            return truth in may_be.get(found, {found})

        for method, found, same in (
            ("phase analysis (served)", served, _same_formula),
            ("phase analysis, a look-alike counted", served, lookalike),
            ("flat list (top 5)", flat, _same_formula),
            ("classical residual search", classical, _same_formula),
        ):
            tallies[method].add({f: 0.0 for f in truth_known}, {f: None for f in found}, same)
            if set(formulas) <= known:
                complete[method].add({f: 0.0 for f in truth_known}, {f: None for f in found}, same)
            if weights and set(formulas) <= known and method != "flat list (top 5)":
                full_cover[method].add(truth, found, same)
        if set(formulas) - known:
            notes.append(
                f"{path.name}: not in the library: {', '.join(sorted(set(formulas) - known))}"
            )
    rows = [
        {
            "section": "real mixtures",
            "method": m,
            "scans": t.scans,
            "recall": t.recall,
            "precision": t.precision,
        }
        for m, t in tallies.items()
    ]
    rows += [
        {
            "section": "real mixtures, every phase in the library",
            "method": m,
            "scans": t.scans,
            "recall": t.recall,
            "precision": t.precision,
        }
        for m, t in complete.items()
    ]
    rows += [
        {"section": "real mixtures, weight %", "method": m, "scans": t.scans, "mae": t.mae}
        for m, t in full_cover.items()
        if t.scans
    ]
    lines = [
        "## Real mixtures",
        "",
        f"{tallies['phase analysis (served)'].scans} scans (XRD-AutoAnalyzer and dara precursor "
        "mixtures) with at least one phase in the shipped library; recall and precision over "
        "the phases that are in it. Weight % MAE: the dara scans whose every phase is in the "
        f"library ({full_cover['phase analysis (served)'].scans} scans), over the phases present "
        'and found. "A look-alike counted": a phase is right when its material or one of the '
        "look-alikes the answer lists for it (materials the scan cannot tell from it) is in the "
        "sample.",
        "",
        "| method | recall % | precision % | weight % MAE |",
        "|---|---|---|---|",
    ]
    for m, t in tallies.items():
        mae = full_cover[m].mae
        lines.append(
            f"| {m} | {100 * t.recall:.1f} | {100 * t.precision:.1f} | "
            f"{'–' if mae is None else f'{mae:.2f}'} |"
        )
    complete_scans = complete["phase analysis (served)"].scans
    lines += [
        "",
        f"The {complete_scans} of those scans whose every phase is in the library (in the others, a "
        "phase the library lacks can only be missed, or stood in for by a look-alike that "
        "counts as a false phase):",
        "",
        "| method | recall % | precision % |",
        "|---|---|---|",
    ]
    lines += [
        f"| {m} | {100 * t.recall:.1f} | {100 * t.precision:.1f} |" for m, t in complete.items()
    ]
    lines += ["", f"{listed} of the {reported} phases reported list look-alikes."]
    rows.append({"section": "real mixtures, look-alikes", "phases": reported, "listed": listed})
    return lines + [""] + [f"- {n}" for n in notes], rows


def _by_formula(
    items: Sequence[tuple[str | None, float | None]], keep_none: bool = False
) -> dict[str, float | None]:
    """Phases by reduced formula (one entry per formula, percents summed)."""
    out: dict[str, float | None] = {}
    for formula, percent in items:
        if not formula:
            continue
        if formula in out and not keep_none:
            previous = out[formula]
            out[formula] = None if previous is None or percent is None else previous + percent
        else:
            out.setdefault(formula, percent)
    return out


def _formula_key(entry: ReferenceEntry, arrays: LibraryArrays) -> str:
    """An answer's formula: its own, else that of a library reference of its
    material (a measured pattern of a mineral records none), else its name
    (then it matches no truth, and counts against precision)."""
    if entry.info.formula:
        return entry.info.formula
    material = facts_of(entry).material
    return next(
        (
            f
            for m, f in zip(arrays.materials, arrays.formulas, strict=True)
            if f and material.same_as(m)
        ),
        entry.info.name,
    )


def _same_formula(a: str, b: str) -> bool:
    return a == b


@dataclass(frozen=True)
class MixturePools:
    """What mixtures are drawn from in the shipped library (rows of its
    :class:`LibraryArrays`): calculated references with an RIR (and their
    sticks), and RockJock's measured references."""

    calculated: list[int]
    measured: list[int]
    sticks: dict[int, StickPattern]

    @classmethod
    def of(cls, library: Library, arrays: LibraryArrays) -> MixturePools:
        entries = [library.get(int(i)) for i in arrays.ids]
        calculated = [
            k for k, e in enumerate(entries) if e.kind is ReferenceKind.CALCULATED and e.info.rir
        ]
        measured = [
            k
            for k, e in enumerate(entries)
            if e.kind is ReferenceKind.MEASURED
            and e.info.rir
            and e.info.source.startswith("rockjock")
        ]
        sticks = library.stick_patterns([int(arrays.ids[k]) for k in calculated])
        return cls(calculated, measured, sticks)

    def simulated(
        self,
        pick: list[int],
        weights: np.ndarray,
        arrays: LibraryArrays,
        rng: np.random.Generator,
        augmentation: AugmentConfig,
    ) -> Mixture:
        """The calculated references ``pick`` (rows) at ``weights``, simulated
        as a lab measurement under ``augmentation``."""
        return calculated_mixture(
            pick,
            [self.sticks[int(arrays.ids[k])] for k in pick],
            [float(arrays.rirs[k] or 1.0) for k in pick],
            weights,
            rng,
            augmentation,
        )

    def mixture(
        self, kind: str, weights: np.ndarray, arrays: LibraryArrays, rng: np.random.Generator
    ) -> Mixture:
        """A ``kind`` ("calculated" or "measured") mixture at ``weights``:
        calculated references simulated as a lab measurement, measured ones
        summed as powdR does (each moved a little)."""
        n = len(weights)
        if kind == "calculated":
            pick = [int(k) for k in rng.choice(self.calculated, size=n, replace=False)]
            return self.simulated(pick, weights, arrays, rng, MIXTURE_AUGMENTATION)
        pick = [int(k) for k in rng.choice(self.measured, size=n, replace=False)]
        return measured_mixture(
            pick, arrays.profiles[pick], [float(arrays.rirs[k] or 1.0) for k in pick], weights, rng
        )


def synthetic_mixtures(
    embedder: Embedder,
    library: Library,
    arrays: LibraryArrays,
    calibration: Calibration | None,
    rng: np.random.Generator,
    phase_labels: list[tuple[float, bool]],
) -> tuple[list[str], list[dict]]:
    """Calculated and measured mixtures of 2–6 phases from the shipped library."""
    pools = MixturePools.of(library, arrays)
    rows, lines = (
        [],
        [
            "## Synthetic mixtures",
            "",
            f"{SYNTHETIC_PER_COUNT} scans per number of phases and kind, weight fractions from a "
            "Dirichlet(1) with every phase ≥ 4%: calculated references simulated as a lab "
            "measurement (low strain, texture, widths, background, counting noise), and "
            "RockJock's measured references summed as powdR does (each moved a little). "
            "Recall % | precision % | weight % MAE (over the phases present or found).",
            "",
            "| phases | calculated: served | calculated: classical | measured: served | measured: classical |",
            "|---|---|---|---|---|",
        ],
    )
    lookalike_lines = [
        "",
        "The same, served, with a phase right when it or a look-alike the answer lists for it "
        "is in the scan: recall % | precision % | weight % MAE.",
        "",
        "| phases | calculated | measured |",
        "|---|---|---|",
    ]
    for n in SYNTHETIC_PHASES:
        tallies = {key: PhaseTally() for key in ("cs", "cc", "ms", "mc", "cl", "ml")}
        for _ in tqdm(range(SYNTHETIC_PER_COUNT), desc=f"{n}-phase mixtures"):
            weights = random_weights(n, rng)
            for kind, served, classical, lookalike in (
                ("calculated", "cs", "cc", "cl"),
                ("measured", "ms", "mc", "ml"),
            ):
                mixture = pools.mixture(kind, weights, arrays, rng)
                _score_mixture(
                    embedder,
                    library,
                    arrays,
                    calibration,
                    mixture,
                    tallies[served],
                    tallies[classical],
                    phase_labels,
                    tallies[lookalike],
                )
        lookalike_lines.append(f"| {n} | {tallies['cl'].cells()} | {tallies['ml'].cells()} |")
        lines.append(
            f"| {n} | " + " | ".join(tallies[k].cells() for k in ("cs", "cc", "ms", "mc")) + " |"
        )
        for key, name in (
            ("cs", "calculated, served"),
            ("cc", "calculated, classical"),
            ("ms", "measured, served"),
            ("mc", "measured, classical"),
            ("cl", "calculated, served, a look-alike counted"),
            ("ml", "measured, served, a look-alike counted"),
        ):
            t = tallies[key]
            rows.append(
                {
                    "section": f"synthetic {n}-phase",
                    "method": name,
                    "scans": t.scans,
                    "recall": t.recall,
                    "precision": t.precision,
                    "mae": t.mae,
                }
            )
    return lines + lookalike_lines, rows


def _score_mixture(
    embedder: Embedder,
    library: Library,
    arrays: LibraryArrays,
    calibration: Calibration | None,
    mixture: Mixture,
    served: PhaseTally,
    classical: PhaseTally | None,
    phase_labels: list[tuple[float, bool]],
    lookalike: PhaseTally | None = None,
) -> None:
    """Scores the served answer to ``mixture`` (in ``served``; in
    ``lookalike`` with a phase right when it or a look-alike listed for it is
    in the scan) and, given its tally, the classical search's."""
    result = identify_pattern(
        mixture.pattern,
        embedder,
        library,
        IdentifyOptions(wavelength=mixture.wavelength),
        calibration=calibration,
    )  # type: ignore[arg-type]
    truth = {
        str(arrays.ids[k]): w for k, w in zip(mixture.members, mixture.weight_percent, strict=True)
    }
    row_of = {int(i): k for k, i in enumerate(arrays.ids)}
    found = {str(p.match.entry.id): p.weight_percent for p in result.phases}

    def same(a: str, b: str) -> bool:
        return arrays.materials[row_of[int(a)]].same_as(arrays.materials[row_of[int(b)]])

    served.add(truth, found, same)
    if lookalike is not None:
        may_be = {
            str(p.match.entry.id): [str(p.match.entry.id), *(str(a.entry.id) for a in p.lookalikes)]
            for p in result.phases
        }
        lookalike.add(truth, found, lambda f, t: any(same(m, t) for m in may_be[f]))
    for p in result.phases:
        if p.confidence is not None:
            phase_labels.append((p.confidence, any(same(str(p.match.entry.id), t) for t in truth)))
    if classical is None:
        return
    view = preprocess(mixture.pattern, wavelength=mixture.wavelength)
    fits = classical_phases(arrays, view.intensity, view.mask)
    amounts = classical_weights(arrays, fits)
    classical.add(truth, {str(arrays.ids[i]): amounts[i] for i, _ in fits}, same)


def _lookalike_counted(served: PhaseTally, lookalike: PhaseTally) -> dict[str, float | None]:
    """A row's scores with a listed look-alike counted right, and the exact recall."""
    return {
        "recall": lookalike.recall,
        "precision": lookalike.precision,
        "mae": lookalike.mae,
        "recall_exact": served.recall,
    }


def conditions(
    embedder: Embedder,
    library: Library,
    arrays: LibraryArrays,
    calibration: Calibration | None,
    rng: np.random.Generator,
) -> tuple[list[str], list[dict]]:
    """The same calculated mixtures under each of :data:`CONDITIONS`."""
    pools = MixturePools.of(library, arrays)
    lines = [
        "## Conditions",
        "",
        f"Calculated mixtures of {CONDITION_PHASES[0]}–{CONDITION_PHASES[-1]} phases "
        f"({SYNTHETIC_PER_COUNT} per number of phases; the same phases and weight fractions "
        "under every condition) simulated clean (as the quantification benchmark's: no "
        "texture, crystallites of 50–300 nm, 10⁴–10⁵ counts at the strongest peak, "
        "low strain), then with one of the synthetic mixtures' conditions at a time as that "
        "section draws it (preferred orientation and each other anode for every scan, where "
        "it draws them for half and a tenth), then all of them as it draws them. Served, a "
        "look-alike the answer lists for a phase counted right: recall %, precision %, "
        "weight % MAE.",
        "",
        "| condition | "
        + " | ".join(f"{n} phases: recall | precision | MAE" for n in CONDITION_PHASES)
        + " |",
        "|---|" + "---|---|---|" * len(CONDITION_PHASES),
    ]
    draws = {}
    for n in CONDITION_PHASES:
        picks = [
            [int(k) for k in rng.choice(pools.calculated, size=n, replace=False)]
            for _ in range(SYNTHETIC_PER_COUNT)
        ]
        draws[n] = [(pick, random_weights(n, rng)) for pick in picks]
    rows = []
    for label, augmentation in CONDITIONS.items():
        cells = []
        for n in CONDITION_PHASES:
            # One generator per cell: a condition's scans do not depend on the others'.
            simulate = np.random.default_rng([SEED, SECTIONS.index("conditions"), n])
            served, lookalike = PhaseTally(), PhaseTally()
            for pick, weights in tqdm(draws[n], desc=f"{label}, {n} phases"):
                mixture = pools.simulated(pick, weights, arrays, simulate, augmentation)
                _score_mixture(
                    embedder,
                    library,
                    arrays,
                    calibration,
                    mixture,
                    served,
                    None,
                    [],
                    lookalike,
                )
            cells.append(lookalike.cells())
            rows.append(
                {
                    "section": "conditions",
                    "condition": label,
                    "phases": n,
                    **_lookalike_counted(served, lookalike),
                }
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines, rows


def isostructural_pairs(
    profiles: np.ndarray, materials: Sequence[Material], space_groups: dict[int, int | None]
) -> list[tuple[int, int, float]]:
    """Pairs of the rows ``space_groups`` names (row → space group number)
    that share a space group and are look-alikes but other materials, each
    with the size of the strain that lines one up on the other."""
    groups: dict[int, list[int]] = {}
    for row, number in space_groups.items():
        if number is not None:
            groups.setdefault(number, []).append(row)
    mask = np.ones(profiles.shape[1], dtype=bool)
    pairs = []
    for rows in groups.values():
        for i, a in enumerate(rows[:-1]):
            others = rows[i + 1 :]
            alike, strain = lookalike_fit(profiles[a], profiles[others], mask)
            pairs += [
                (a, b, abs(float(e)))
                for b, near, e in zip(others, alike, strain, strict=True)
                if near and not materials[a].same_as(materials[b])
            ]
    return pairs


def isostructural(
    embedder: Embedder,
    library: Library,
    arrays: LibraryArrays,
    calibration: Calibration | None,
    rng: np.random.Generator,
) -> tuple[list[str], list[dict]]:
    """Two-phase mixtures of look-alike materials of one space group whose
    cells differ by 1–3.5% (two spinels, garnets or rock salts of other
    cells), simulated clean: is each found beside the other?"""
    pools = MixturePools.of(library, arrays)
    pairs = isostructural_pairs(
        arrays.profiles, arrays.materials, {k: arrays.space_groups[k] for k in pools.calculated}
    )
    lines = [
        "## Isostructural pairs",
        "",
        f"Two-phase mixtures ({ISOSTRUCTURAL_SCANS} per row, weight fractions 30–70%) of "
        "calculated references of one space group that are look-alikes (profile correlation "
        f"≥ {SERVED.lookalike_correlation} once strained and shifted) but other materials, "
        "by the strain that lines one up on the other; simulated clean (as the quantification "
        "benchmark's). Served: recall %, precision %, weight % MAE; a look-alike the answer "
        "lists for a phase counted right.",
        "",
        "| cells apart | pairs in the library | recall % | precision % | weight % MAE |",
        "|---|---|---|---|---|",
    ]
    rows_out = []
    for lo, hi in ISOSTRUCTURAL_STRAINS:
        chosen = [p for p in pairs if lo <= p[2] < hi]
        served, lookalike = PhaseTally(), PhaseTally()
        for index in rng.permutation(len(chosen))[:ISOSTRUCTURAL_SCANS]:
            a, b, _ = chosen[index]
            share = rng.uniform(0.3, 0.7)
            weights = np.array([share, 1.0 - share])
            mixture = pools.simulated([a, b], weights, arrays, rng, CPD_AUGMENTATION)
            _score_mixture(
                embedder, library, arrays, calibration, mixture, served, None, [], lookalike
            )
        label = f"{100 * lo:g}–{100 * hi:g}%"
        lines.append(f"| {label} | {len(chosen)} | {lookalike.cells()} |")
        rows_out.append(
            {
                "section": "isostructural",
                "strain": [lo, hi],
                "pairs": len(chosen),
                **_lookalike_counted(served, lookalike),
            }
        )
    return lines, rows_out


def quantification(
    embedder: Embedder,
    library: Library,
    arrays: LibraryArrays,
    calibration: Calibration | None,
    rng: np.random.Generator,
) -> tuple[list[str], list[dict]]:
    entries = {int(i): library.get(int(i)) for i in arrays.ids}
    row_of = {int(i): k for k, i in enumerate(arrays.ids)}
    pools = MixturePools.of(library, arrays)
    lines = [
        "## Quantification benchmark (IUCr CPD round-robin phases)",
        "",
        f"{QUANTIFICATION_SCANS} three-phase scans per set, weight fractions from a Dirichlet(1) "
        "with every phase ≥ 10%, simulated from the library's calculated references without "
        "texture (as the round robin's samples were prepared), low strain, high counts. "
        "Weight % MAE over the three phases (a phase not found counts its whole percent). "
        "A look-alike counted: a phase is right when it or a look-alike the answer lists for it "
        "is the truth (its weight percent is then the phase's).",
        "",
        "| phases | served: recall % | served MAE | a look-alike counted: recall % | MAE "
        "| classical MAE |",
        "|---|---|---|---|---|---|",
    ]
    rows = []
    for names in CPD_SETS:
        pick = []
        for name in names:
            k = next(
                (
                    row_of[i]
                    for i, e in entries.items()
                    if e.info.name.lower() == name.lower()
                    and e.kind is ReferenceKind.CALCULATED
                    and e.info.rir
                ),
                None,
            )
            if k is not None:
                pick.append(k)
        if len(pick) < len(names):
            lines.append(f"| {', '.join(names)} | not all in the library | | | | |")
            continue
        served, classical, lookalike = PhaseTally(), PhaseTally(), PhaseTally()
        for _ in range(QUANTIFICATION_SCANS):
            while True:
                weights = rng.dirichlet(np.ones(3))
                if weights.min() >= 0.1:
                    break
            mixture = pools.simulated(pick, weights, arrays, rng, CPD_AUGMENTATION)
            _score_mixture(
                embedder,
                library,
                arrays,
                calibration,
                mixture,
                served,
                classical,
                [],
                lookalike,
            )
        lines.append(
            f"| {', '.join(names)} | {100 * served.recall:.1f} | {served.mae:.2f} "
            f"| {100 * lookalike.recall:.1f} | {lookalike.mae:.2f} | {classical.mae:.2f} |"
        )
        rows.append(
            {
                "section": "quantification",
                "set": list(names),
                "recall": served.recall,
                "mae": served.mae,
                "lookalike_recall": lookalike.recall,
                "lookalike_mae": lookalike.mae,
                "classical_mae": classical.mae,
            }
        )
    return lines, rows


def single_phases(
    embedder: Embedder,
    library: Library,
    arrays: LibraryArrays,
    calibration: Calibration | None,
    rng: np.random.Generator,
    real: RealScans,
) -> tuple[list[str], list[dict]]:
    """One phase and no spurious second: synthetic and real single-phase
    scans; the real scans' answers and verdicts (over their whole range)
    added to ``real``."""
    entries = [library.get(int(i)) for i in arrays.ids]
    calculated = [k for k, e in enumerate(entries) if e.kind is ReferenceKind.CALCULATED]
    pick = [int(k) for k in rng.choice(calculated, size=SINGLE_SCANS, replace=False)]
    sticks = library.stick_patterns([int(arrays.ids[k]) for k in pick])
    counts = {
        "synthetic": [0, 0, 0, 0],
        "real": [0, 0, 0, 0],
        "real, partial range": [0, 0, 0, 0],
    }  # one right phase, spurious, right first, one phase
    for k in tqdm(pick, desc="single phases"):
        mixture = calculated_mixture(
            [k], [sticks[int(arrays.ids[k])]], [1.0], np.ones(1), rng, MIXTURE_AUGMENTATION
        )
        result = identify_pattern(
            mixture.pattern,
            embedder,
            library,
            IdentifyOptions(wavelength=mixture.wavelength),
            calibration=calibration,
        )
        _count_single(counts["synthetic"], result, partial(_is_material, arrays.materials[k]))
    for pattern, truth, name in _real_single_scans():
        wanted = _answers(arrays, truth)
        for label, scan in (("real", pattern), ("real, partial range", _cut(pattern, rng))):
            result = identify_pattern(
                scan, embedder, library, IdentifyOptions(), calibration=calibration, filename=name
            )
            _count_single(counts[label], result, wanted)
            if label == "real":
                real.answers += [
                    (m.confidence, wanted(m.match.entry))
                    for m in result.materials[:5]
                    if m.confidence is not None
                ]
                real.no_match.append(result.verdict == "no_match")
    lines = [
        "## Single phases",
        "",
        f"Synthetic: {SINGLE_SCANS} calculated references of the library, each simulated alone "
        "(low strain, texture). Real: XRD-AutoAnalyzer single-phase scans and the powdR "
        "mineral scans (against RockJock's references), and the same scans cut to a random "
        "window of 25–50° 2θ. One phase: exactly one phase reported (the target's \"one "
        "phase and no spurious second one\"); exactly its phase: and it is the scan's material.",
        "",
        "| scans | count | one phase % | exactly its phase % | a spurious phase % | its material first % |",
        "|---|---|---|---|---|---|",
    ]
    rows = []
    for label, (exact, spurious, first, one) in counts.items():
        total = SINGLE_SCANS if label == "synthetic" else len(_real_single_scans())
        lines.append(
            f"| {label} | {total} | {100 * one / total:.1f} | {100 * exact / total:.1f} | "
            f"{100 * spurious / total:.1f} | {100 * first / total:.1f} |"
        )
        rows.append(
            {
                "section": "single phases",
                "scans": label,
                "count": total,
                "one_phase": one / total,
                "exact": exact / total,
                "spurious": spurious / total,
                "first": first / total,
            }
        )
    return lines, rows


def _is_material(material: Material, entry: ReferenceEntry) -> bool:
    return material.same_as(facts_of(entry).material)


def _answers(arrays: LibraryArrays, truth: str | set[str]) -> Callable[[ReferenceEntry], bool]:
    """Whether an answer names the truth: a formula (any reference of it, or
    the material of one, as a measured pattern of that mineral records none)
    or a set of mineral names (as measured libraries name phases: a species,
    or a group such as K-feldspar that a species joins)."""
    if isinstance(truth, str):
        materials = [
            m for m, f in zip(arrays.materials, arrays.formulas, strict=True) if f == truth
        ]
    else:
        materials = [Material.of(name, None, None, measured=True) for name in truth]

    def right(entry: ReferenceEntry) -> bool:
        if isinstance(truth, str) and entry.info.formula == truth:
            return True
        return any(facts_of(entry).material.same_as(m) for m in materials)

    return right


def _count_single(
    count: list[int], result: Identification, wanted: Callable[[ReferenceEntry], bool]
) -> None:
    right = [wanted(p.match.entry) for p in result.phases]
    count[0] += int(right == [True])
    count[1] += int(len(right) > 1)
    count[2] += int(bool(result.materials) and wanted(result.materials[0].match.entry))
    count[3] += int(len(right) == 1)


_REAL_SINGLES: list[tuple[Pattern, str | set[str], str]] | None = None


def _real_single_scans() -> list[tuple[Pattern, str | set[str], str]]:
    """(scan, its phase's formula or mineral names, file name) of the real
    single-phase scans."""
    global _REAL_SINGLES
    if _REAL_SINGLES is not None:
        return _REAL_SINGLES
    root = shared_data_dir() / "patterns"
    out: list[tuple[Pattern, str | set[str], str]] = []
    for path in sorted((root / "xrd_autoanalyzer").glob("*.xy")):
        phases = _phases_from_name(path.stem)
        if len(phases) == 1:
            out.append((read_pattern(path), _formula(phases[0]), path.name))
    names = _phase_names(root / "powdr_minerals" / "minerals_phases.csv", None)
    for key, pattern in read_pattern_table(root / "powdr_minerals" / "minerals_xrd.csv").items():
        if names.get(key):
            out.append((pattern, names[key], key))
    _REAL_SINGLES = out
    return out


def _cut(pattern: Pattern, rng: np.random.Generator) -> Pattern:
    lo = float(rng.uniform(max(pattern.two_theta_deg[0], 10.0), 30.0))
    hi = lo + float(rng.uniform(25.0, 50.0))
    keep = (pattern.two_theta_deg >= lo) & (pattern.two_theta_deg <= hi)
    return make_pattern(
        pattern.two_theta_deg[keep], pattern.intensity[keep], wavelength=pattern.wavelength
    )


def families_and_confidence(
    embedder: Embedder,
    data: TrainingSet,
    cache_dir: Path,
    calibration: Calibration | None,
    phase_labels: dict[str, list[tuple[float, bool]]],
    real_answers: list[tuple[float, bool]],
    figure: Path | None = None,
) -> tuple[list[str], list[dict]]:
    """Exact and family top-5 on the evaluation's rows; ECE and no_match
    (``phase_labels``: the phases' (confidence, right) by the mixtures they
    were found in; ``real_answers``: the real scans' answers'), with the
    reliability diagrams drawn to ``figure``."""
    lib, query_sets = synthetic_rows(data, 1000, 3, SEED, cache_dir)
    references = embedder.embed_array(lib.inputs)
    source = ArraySource(
        lib.inputs[:, 0], references, lib.sticks, None, lib.labels, lib.space_groups
    )
    lines = [
        "## Families",
        "",
        "The evaluation's synthetic rows (`python -m indexer evaluate`, same queries and "
        "library): top-5 of the flat list (references), exact top-5 (the truth leads one of the "
        "first five answers, one per material or look-alike family) and family top-5 (the truth "
        "is in one of their families).",
        "",
        "| row | flat top-5 % | exact top-5 % | family top-5 % |",
        "|---|---|---|---|",
    ]
    rows = []
    for augmentation, (closed, open_set) in query_sets.items():
        for name, queries in (("closed", closed), ("open", open_set)):
            flat = exact = family = 0
            embeddings = embedder.embed_array(queries.inputs)
            batch = as_queries(queries.inputs, embeddings)
            rankings = rank(batch, source, 30)
            for query, ranking, truth in tqdm(
                list(zip(batch, rankings, queries.truths, strict=True)),
                desc=f"families, {name}, {augmentation}",
            ):
                label = next(iter(truth))
                result = answer(query, ranking, None, source, 5)
                flat += any(lib.labels[r.reference_id] == label for r in ranking.best[:5])
                exact += any(lib.labels[e.lead.reference_id] == label for e in result.entries)
                family += any(
                    lib.labels[r.reference_id] == label
                    for e in result.entries
                    for refs in e.members
                    for r in refs
                )
            n = len(queries.truths)
            lines.append(
                f"| {name}, {augmentation} | {100 * flat / n:.1f} | {100 * exact / n:.1f} | {100 * family / n:.1f} |"
            )
            rows.append(
                {
                    "section": "families",
                    "row": f"{name}, {augmentation}",
                    "flat_top5": flat / n,
                    "exact_top5": exact / n,
                    "family_top5": family / n,
                }
            )
    # Confidence and no_match: the low-strain closed set (in the library) and
    # open set with each query's material taken out of it.
    closed, open_set = query_sets["low strain"]
    entry_p: list[float] = []
    entry_y: list[bool] = []
    verdicts: dict[str, list[bool]] = {"in library": [], "not in library": []}
    # Of the taken-out scans: whether a look-alike of their material stays in the library.
    lookalike_stays: list[bool] = []
    for kind, queries in (("in library", closed), ("not in library", open_set)):
        count = min(CONFIDENCE_SCANS, len(queries.truths))
        embeddings = embedder.embed_array(queries.inputs[:count])
        for x, e, truth in tqdm(
            list(zip(queries.inputs[:count], embeddings, queries.truths[:count], strict=True)),
            desc=f"confidence, {kind}",
        ):
            label = next(iter(truth))
            view = source
            query = Query(x[0], x[1] > 0.5, e)
            if kind == "not in library":
                others = np.array([lab != label for lab in lib.labels])
                view = source.restricted(others)
                assert lib.space_groups is not None
                own = lib.labels.index(label)
                lookalike_stays.append(
                    _lookalike_stays(own, others, lib.inputs[:, 0], lib.space_groups, query.mask)
                )
            (ranking,) = rank([query], view, 30)

            def embed(intensity: np.ndarray, mask: np.ndarray) -> np.ndarray:
                return embedder.embed_array(np.stack([intensity, mask]).astype(np.float32)[None])[0]

            analysis = analyse_phases(query, ranking, view, embed)
            result = answer(query, ranking, analysis, view, 5, calibration)
            verdicts[kind].append(result.verdict == "no_match")
            for entry in result.entries:
                if entry.confidence is not None:
                    entry_p.append(entry.confidence)
                    entry_y.append(lib.labels[entry.lead.reference_id] == label)
    lines += ["", "## Confidence and no_match", ""]
    if calibration is None:
        lines.append("No calibration for this model: run `python -m indexer calibrate`.")
        return lines, rows
    entry_ece = expected_calibration_error(np.array(entry_p), np.array(entry_y))
    phase_arrays = {
        scans: (np.array([p for p, _ in labels]), np.array([y for _, y in labels]))
        for scans, labels in phase_labels.items()
        if labels
    }
    phase_ece = {
        scans: expected_calibration_error(*arrays) for scans, arrays in phase_arrays.items()
    }
    # What sampling alone gives on this many predictions (90% of draws).
    noise_rng = np.random.default_rng(SEED)
    phase_calibrated = {
        scans: calibrated_ece_range(arrays[0], noise_rng) for scans, arrays in phase_arrays.items()
    }
    entry_calibrated = calibrated_ece_range(np.array(entry_p), noise_rng)
    real_p = np.array([p for p, _ in real_answers])
    real_y = np.array([y for _, y in real_answers], dtype=bool)
    real_ece = expected_calibration_error(real_p, real_y) if real_answers else None
    real_lines = []
    if real_ece is not None:
        real_lines.append(
            f"- answers' confidence on real scans (top 5 of the real mixtures whose every phase "
            f"is in the library and of the real single-phase scans): ECE {real_ece:.3f} over "
            f"{real_p.size} answers (a perfectly calibrated model: "
            "{:.3f}–{:.3f}); its right answers' median confidence {:.2f}".format(
                *calibrated_ece_range(real_p, noise_rng),
                float(np.median(real_p[real_y])) if real_y.any() else float("nan"),
            )
        )
    no_match_absent = float(np.mean(verdicts["not in library"]))
    no_match_present = float(np.mean(verdicts["in library"]))
    absent = np.array(verdicts["not in library"])
    stays = np.array(lookalike_stays)
    no_match_split = {
        "no_match_absent_lookalike_stays": float(absent[stays].mean()) if stays.any() else None,
        "no_match_absent_no_lookalike": float(absent[~stays].mean()) if (~stays).any() else None,
    }
    lines += [
        f"- answers' confidence (top 5 of {len(verdicts['in library'])} in-library and "
        f"{len(verdicts['not in library'])} taken-out low-strain scans): expected calibration "
        f"error {entry_ece:.3f} over {len(entry_p)} answers (a perfectly calibrated model: "
        "{:.3f}–{:.3f})".format(*entry_calibrated),
        *real_lines,
        *(
            f"- phases' confidence ({scans} above): ECE {ece:.3f} over "
            f"{len(phase_labels[scans])} phases (a perfectly calibrated model: "
            "{:.3f}–{:.3f})".format(*phase_calibrated[scans])
            for scans, ece in phase_ece.items()
        ),
        f"- no_match for materials taken out of the library: {100 * no_match_absent:.1f}%; "
        f"false no_match for materials in it: {100 * no_match_present:.1f}%",
        f"- of the taken-out scans, the {int(stays.sum())} whose material has a look-alike "
        "left in the library (same space group, profile correlation ≥ "
        f"{SERVED.lookalike_correlation} with strain and shift fitted: the answer can name "
        f"its family) got no_match for {_percent(no_match_split['no_match_absent_lookalike_stays'])}"
        f"; the other {int((~stays).sum())} for "
        f"{_percent(no_match_split['no_match_absent_no_lookalike'])}",
    ]
    rows.append(
        {
            "section": "confidence",
            "entry_ece": entry_ece,
            "entry_ece_real": real_ece,
            **{f"phase_ece, {scans}": ece for scans, ece in phase_ece.items()},
            "no_match_absent": no_match_absent,
            "no_match_present": no_match_present,
            **no_match_split,
        }
    )
    diagrams = {"answers, low-strain scans": (np.array(entry_p), np.array(entry_y))}
    if real_answers:
        diagrams["answers, real scans"] = (real_p, real_y)
    diagrams |= {f"phases, {scans}": arrays for scans, arrays in phase_arrays.items()}
    for name, arrays in diagrams.items():
        lines += ["", f"Reliability of the confidence: {name}", ""]
        lines += reliability_table(*arrays)
    if figure is not None:
        reliability_figure(diagrams, figure)
        lines += ["", f"The same as reliability diagrams: `{figure.name}`."]
    return lines, rows


def _lookalike_stays(
    own: int,
    others: np.ndarray,
    profiles: np.ndarray,
    space_groups: Sequence[int | None],
    mask: np.ndarray,
) -> bool:
    """Whether a reference ``others`` admits is of reference ``own``'s space
    group and a look-alike of it, as the answer groups them into one family
    (:func:`~xrdid.ranking.grouping.are_lookalikes`)."""
    group = space_groups[own]
    same = [
        k for k in np.flatnonzero(others) if group is not None and space_groups[int(k)] == group
    ]
    return bool(same) and bool(are_lookalikes(profiles[own], profiles[same], mask).any())


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f}%"


# Real scans of materials the library lacks: autoXRD's thin films of halide
# perovskites and their relatives (Cs/Rb/K/organic cations with Pb, Sn, Bi,
# Sb or Ag, and Br or I), named by their folders' space groups.
ABSENT_SCANS = "thinfilm_perovskite"
_HALIDES = {"Br", "I"}
_HALIDE_METALS = {"Pb", "Sn", "Bi", "Sb", "Ag"}
# The films' cations besides the metal: an organic one brings C and N.
_FILM_CATIONS = {"Cs", "Rb", "K", "N"}


def halide_kin(infos: Sequence[ReferenceInfo]) -> list[ReferenceInfo]:
    """The references that are bromides or iodides of the films' metals."""
    return [
        info
        for info in infos
        if _HALIDES & set(info.elements) and _HALIDE_METALS & set(info.elements)
    ]


def film_materials(infos: Sequence[ReferenceInfo]) -> list[ReferenceInfo]:
    """Of :func:`halide_kin`, those with one of the films' other cations:
    references that might be a film's material."""
    return [info for info in halide_kin(infos) if _FILM_CATIONS & set(info.elements)]


def absent_materials(
    embedder: Embedder,
    library: Library,
    arrays: LibraryArrays,
    calibration: Calibration | None,
    real: RealScans,
) -> tuple[list[str], list[dict]]:
    """``no_match`` on real scans: of materials the library lacks (the
    thin films), and, beside it, of materials it holds (``real``'s verdicts,
    from the real mixtures and single phases that ran before)."""
    paths = sorted((shared_data_dir() / "patterns" / ABSENT_SCANS).glob("*/*.xy"))
    infos = [library.get(int(i)).info for i in arrays.ids]
    kin, films = halide_kin(infos), film_materials(infos)
    if films:
        raise SystemExit(
            "the library holds halides like the thin films' materials "
            f"({', '.join(str(info.formula) for info in films)}): they are no test of no_match"
        )
    verdicts: Counter[str] = Counter()
    named: Counter[str] = Counter()
    first_confidence: list[float] = []
    refused: Counter[str] = Counter()
    for path in tqdm(paths, desc="absent materials"):
        try:
            result = identify(
                path.read_bytes(), path.name, embedder, library, calibration=calibration
            )
        except InputError as error:
            refused[str(error).split(";")[0]] += 1
            continue
        verdicts[result.verdict] += 1
        if result.verdict != "no_match":
            named.update({p.match.entry.info.name for p in result.phases})
        if result.materials and result.materials[0].confidence is not None:
            first_confidence.append(result.materials[0].confidence)
    answered = sum(verdicts.values())
    no_match = verdicts["no_match"] / answered if answered else None
    confidence = np.array(first_confidence)
    present = float(np.mean(real.no_match)) if real.no_match else None
    kin_names = ", ".join(sorted({str(info.formula) for info in kin})) or "none"
    lines = [
        "## No match on real scans",
        "",
        f"Materials the library lacks: the {len(paths)} thin-film scans of autoXRD "
        "(halide perovskites and their relatives: caesium, rubidium, potassium or "
        "organic cations with lead, tin, bismuth, antimony or silver, and bromine or iodine; "
        f"the library's bromides and iodides of those metals: {kin_names}). A film may show "
        "its substrate (FTO glass is cassiterite, SnO₂, which the library holds), so a "
        "phase named is not always wrong; "
        "the no_match share counts only no_match.",
        "",
        f"- answered: {answered}; refused with a 4xx error: {refused.total()}"
        + (
            " (" + "; ".join(f"{reason}: {count}" for reason, count in refused.items()) + ")"
            if refused
            else ""
        ),
        f"- no_match: {_percent(no_match)} ({verdicts['no_match']}); match: "
        f"{verdicts['match']}; mixture: {verdicts['mixture']}",
    ]
    if confidence.size:
        lines.append(
            f"- the first answer's confidence: median {np.median(confidence):.2f}, "
            f"≥ 0.5 for {100 * np.mean(confidence >= 0.5):.1f}% of the scans"
        )
    if named:
        lines.append(
            "- phases named where the verdict was not no_match: "
            + ", ".join(f"{name} ({count})" for name, count in named.most_common(8))
        )
    lines.append(
        f"- materials the library holds (the real mixtures whose every phase is in it and the "
        f"real single-phase scans, {len(real.no_match)} scans): false no_match "
        f"{_percent(present)}"
        if real.no_match
        else "- materials the library holds: run the real and single sections with this one"
    )
    rows = [
        {
            "section": "no_match, real scans",
            "absent_scans": answered,
            "absent_refused": refused.total(),
            "no_match_absent_real": no_match,
            "first_confidence_median": float(np.median(confidence)) if confidence.size else None,
            "present_scans": len(real.no_match),
            "no_match_present_real": present,
        }
    ]
    return lines, rows


def reliability_figure(diagrams: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """One reliability diagram per set of (confidence, right): the share
    right against the mean confidence per tenth, dot area by count, beside
    the diagonal a calibrated confidence lies on; written to ``path`` (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4 * len(diagrams), 4.2), dpi=100)
    FigureCanvasAgg(figure)
    for axes, (name, (probability, right)) in zip(
        figure.subplots(1, len(diagrams), squeeze=False)[0], diagrams.items(), strict=True
    ):
        table = reliability(probability, right)
        counts = np.array([count for *_, count in table], dtype=np.float64)
        axes.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--")
        axes.plot([m for _, m, _, _ in table], [o for _, _, o, _ in table], color="#0072B2")
        axes.scatter(
            [m for _, m, _, _ in table],
            [o for _, _, o, _ in table],
            s=20 + 200 * counts / counts.max(),
            color="#0072B2",
            zorder=3,
        )
        axes.set(
            xlim=(0, 1),
            ylim=(0, 1),
            xlabel="confidence (mean per tenth)",
            ylabel="share right",
            title=f"{name}\nECE {expected_calibration_error(probability, right):.3f}, "
            f"{probability.size} in all",
        )
        axes.title.set_fontsize(9)
    figure.tight_layout()
    figure.savefig(path)


def calibrated_ece_range(
    probability: np.ndarray, rng: np.random.Generator, draws: int = 2000
) -> tuple[float, float]:
    """The 5th and 95th percentiles of the ECE a perfectly calibrated model
    would show on these predictions (each label drawn true with its predicted
    probability): on a few dozen predictions an ECE well above zero is
    expected, and one within this range shows no miscalibration."""
    p = np.asarray(probability, dtype=np.float64)
    eces = [expected_calibration_error(p, rng.random(p.size) < p) for _ in range(draws)]
    low, high = np.quantile(eces, [0.05, 0.95])
    return float(low), float(high)


def reliability_table(probability: np.ndarray, right: np.ndarray) -> list[str]:
    """A reliability diagram as a markdown table: per tenth of predicted
    probability, the mean predicted, the share observed right and the count."""
    return [
        "| predicted | mean predicted | observed | count |",
        "|---|---|---|---|",
    ] + [
        f"| {lo:.1f}–{lo + 0.1:.1f} | {mean:.3f} | {observed:.3f} | {count} |"
        for lo, mean, observed, count in reliability(probability, right)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m indexer evaluate-phases", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--library", type=Path, default=PROJECT_ROOT / "model_store" / "library.sqlite"
    )
    parser.add_argument("--model", type=Path, default=PROJECT_ROOT / "model_store" / "regnet1d.pt")
    parser.add_argument(
        "--calibration", type=Path, default=PROJECT_ROOT / "model_store" / "calibration.json"
    )
    parser.add_argument("--training-set", type=Path, default=Path("runs/main/training_set.pkl"))
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    parser.add_argument("--figure", type=Path, help="also draw the reliability diagrams here (PNG)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="run only these (each draws from its own seeded generator, so a section's "
        "numbers do not depend on which others run)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.simplefilter("ignore")
    embedder = Embedder.load(args.model)
    calibration = Calibration.load(args.calibration) if args.calibration.is_file() else None
    stale = calibration.stale_models() if calibration is not None else []
    if stale:
        raise SystemExit(
            f"{args.calibration} was fitted on other features than this version computes "
            f"({', '.join(stale)}): run `python -m indexer calibrate`"
        )
    if calibration is not None and calibration.model_version != embedder.version:
        calibration = None
    data = training_set_at(args.training_set)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "library.sqlite"
        shutil.copyfile(args.library, copy)
        library = Library.open(copy, embedder)
        try:
            arrays = LibraryArrays.of(library)
            phase_labels: dict[str, list[tuple[float, bool]]] = {
                "real mixtures": [],
                "synthetic mixtures": [],
            }
            real = RealScans()

            def rng(section: str) -> np.random.Generator:
                return np.random.default_rng([SEED, SECTIONS.index(section)])

            runs = {
                "real": lambda: real_mixtures(
                    embedder,
                    library,
                    arrays,
                    calibration,
                    phase_labels["real mixtures"],
                    real,
                ),
                "synthetic": lambda: synthetic_mixtures(
                    embedder,
                    library,
                    arrays,
                    calibration,
                    rng("synthetic"),
                    phase_labels["synthetic mixtures"],
                ),
                "quantification": lambda: quantification(
                    embedder, library, arrays, calibration, rng("quantification")
                ),
                "single": lambda: single_phases(
                    embedder, library, arrays, calibration, rng("single"), real
                ),
                "families": lambda: families_and_confidence(
                    embedder,
                    data,
                    args.training_set.parent,
                    calibration,
                    phase_labels,
                    real.answers,
                    args.figure,
                ),
                "conditions": lambda: conditions(
                    embedder, library, arrays, calibration, rng("conditions")
                ),
                "isostructural": lambda: isostructural(
                    embedder, library, arrays, calibration, rng("isostructural")
                ),
                "absent": lambda: absent_materials(embedder, library, arrays, calibration, real),
            }
            sections = [runs[name]() for name in SECTIONS if name in args.sections]
        finally:
            library.close(save=False)
    lines = [
        "# The answer, evaluated (`python -m indexer evaluate-phases`)",
        "",
        f"Model `{embedder.version}`; library `{args.library.name}` ({arrays.ids.size} "
        f"references); seed {SEED}; {time.perf_counter() - start:.0f} s.",
        "",
    ]
    rows: list[dict] = []
    for section_lines, section_rows in sections:
        lines += section_lines + [""]
        rows += section_rows
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        import json

        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
