"""How sure: probabilities calibrated on queries apart from the evaluation's.

The ranking's scores (cosine + 2 × profile correlation, about 1.4–2.3) say
nothing a person reads as "how sure". A logistic model on features the
ranking already has turns them into the probability that a material (an
answer of the ranked list) or a phase (of the phase analysis) is in the
sample, and a third the probability that the scan's material is in the
library at all. ``python -m indexer calibrate`` fits them on synthetic
queries (single phases of materials in the library and of materials absent
from it, and mixtures) drawn apart from the evaluation's, and writes them,
with the thresholds below which the answer is ``no_match``, to
``model_store/calibration.json``; the evaluation reports their reliability
and expected calibration error on its own queries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

from xrdid.errors import InputError

__all__ = [
    "CANDIDATE_FEATURES",
    "MATCH_FEATURES",
    "PHASE_FEATURES",
    "Calibration",
    "LogisticModel",
    "expected_calibration_error",
    "fit_logistic",
    "reliability",
]

# What a material's confidence is computed from: its best reference's score,
# profile correlation and cosine, its lead over the next answer, its place,
# whether the phase analysis kept it (and how much of the scan it explains),
# and how well the phases found fit the scan (a material missing from the
# library leaves a worse fit).
CANDIDATE_FEATURES = (
    "score",
    "correlation",
    "similarity",
    "margin",
    "log_rank",
    "is_phase",
    "explained",
    "fit_rwp",
    "fit_unexplained",
)
# A phase's: the evidence it was kept on, and how it ranked when found.
PHASE_FEATURES = (
    "gain",
    "log_significance",
    "peak_presence",
    "explained",
    "correlation",
    "similarity",
)
# Whether the scan's material is in the library: its first answer's features
# and the strongest phase's evidence (zeros when no phase was found): an
# absent material's stand-in often ranks well but passes that evidence only
# narrowly (measured in docs/evaluation.md, "no_match").
MATCH_FEATURES = (
    *CANDIDATE_FEATURES,
    *(f"strongest_phase_{name}" for name in PHASE_FEATURES),
    "phase_found",
)

# L2 penalty on the weights (not the bias): a few features, thousands of
# queries; it only keeps collinear features from trading huge weights.
_RIDGE = 1e-3


@dataclass(frozen=True)
class LogisticModel:
    """p = σ(bias + Σ weight · (feature − mean) / scale)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def probability(self, rows: NDArray[np.floating]) -> NDArray[np.float64]:
        x = (np.atleast_2d(rows) - np.array(self.mean)) / np.array(self.scale)
        return 1.0 / (1.0 + np.exp(-(x @ np.array(self.weights) + self.bias)))


def fit_logistic(
    rows: NDArray[np.floating], labels: NDArray[np.bool_], features: Sequence[str]
) -> LogisticModel:
    """Maximum-likelihood logistic regression (standardised features, a small ridge)."""
    x = np.asarray(rows, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-9
    z = (x - mean) / scale

    def loss(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        logits = z @ theta[:-1] + theta[-1]
        p = 1.0 / (1.0 + np.exp(-logits))
        eps = 1e-12
        nll = -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
        gradient = np.concatenate([z.T @ (p - y) / y.size, [np.mean(p - y)]])
        nll += _RIDGE * np.sum(theta[:-1] ** 2)
        gradient[:-1] += 2 * _RIDGE * theta[:-1]
        return float(nll), gradient

    result = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B")
    theta = result.x
    return LogisticModel(
        tuple(features),
        tuple(map(float, mean)),
        tuple(map(float, scale)),
        tuple(map(float, theta[:-1])),
        float(theta[-1]),
    )


def reliability(
    probability: NDArray[np.floating], labels: NDArray[np.bool_], bins: int = 10
) -> list[tuple[float, float, float, int]]:
    """Per probability bin: (lower edge, mean predicted, observed frequency, count)."""
    p = np.asarray(probability, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            out.append(
                (
                    float(edges[b]),
                    float(p[inside].mean()),
                    float(y[inside].mean()),
                    int(inside.sum()),
                )
            )
    return out


def expected_calibration_error(
    probability: NDArray[np.floating], labels: NDArray[np.bool_], bins: int = 10
) -> float:
    """Σ over bins of (share of queries) × |mean predicted − observed|."""
    table = reliability(probability, labels, bins)
    total = sum(count for *_, count in table)
    return float(sum(count * abs(mean - observed) for _, mean, observed, count in table) / total)


@dataclass(frozen=True)
class Calibration:
    """The shipped calibration of one model: material and phase confidences,
    the probability that a scan's material is in the library at all, and the
    probability below which the answer is ``no_match``; each of the last two
    once from the phase analysis's answer (:data:`MATCH_FEATURES`) and once
    from the ranking's alone (``phases=false``: :data:`CANDIDATE_FEATURES`
    of an answer without phases)."""

    model_version: str
    candidate: LogisticModel
    phase: LogisticModel
    match: LogisticModel
    no_match_below: float
    match_without_phases: LogisticModel
    no_match_below_without_phases: float

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Calibration:
        try:
            data = json.loads(Path(path).read_text())
            return cls(
                model_version=data["model_version"],
                candidate=_model(data["candidate"]),
                phase=_model(data["phase"]),
                match=_model(data["match"]),
                no_match_below=float(data["no_match_below"]),
                match_without_phases=_model(data["match_without_phases"]),
                no_match_below_without_phases=float(data["no_match_below_without_phases"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path} is not a readable calibration: {exc}") from exc

    def stale_models(self) -> list[str]:
        """The models fitted on other features than this version computes (a
        calibration from an older version: run ``indexer calibrate`` again)."""
        expected = {
            "candidate": CANDIDATE_FEATURES,
            "phase": PHASE_FEATURES,
            "match": MATCH_FEATURES,
            "match_without_phases": CANDIDATE_FEATURES,
        }
        return [name for name, want in expected.items() if getattr(self, name).features != want]


def _model(values: dict) -> LogisticModel:
    return LogisticModel(
        tuple(values["features"]),
        tuple(values["mean"]),
        tuple(values["scale"]),
        tuple(values["weights"]),
        float(values["bias"]),
    )
