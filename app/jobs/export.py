"""A job's results as a table: one row per file and candidate (one row
for a file that failed), for ``GET /jobs/{id}`` with ``Accept: text/csv``
and the command-line client's csv and table output. Each row repeats its
file's technique, verdict, phases (XRD: ``Quartz 61.2 wt%; Calcite 38.8
wt%``) and likely elements (Raman: ``O 1.00; C 0.97; Ca 0.62``).

Works on the public JSON (each file's ``result`` is a POST /identify
response), so the server and the client make the same rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["COLUMNS", "result_rows", "to_csv"]

COLUMNS = (
    "index",
    "filename",
    "status",
    "sample_id",
    "rank",
    "reference_id",
    "name",
    "formula",
    "space_group",
    "score",
    "similarity",
    "profile_correlation",
    "error",
    "verdict",
    "phases",
    # Added with Raman spectra (after the first columns, which keep their places).
    "technique",
    "confidence",
    "source",
    "source_id",
    "elements",
)
# The elements a row lists: those the sample more likely holds than not.
LIKELY_ELEMENT = 0.5


def _phases(result: Mapping[str, Any]) -> str:
    """The phase analysis in one cell: each phase's name and weight percent."""
    parts = []
    for phase in result.get("phases") or []:
        name = phase["reference"]["name"]
        percent = phase.get("weight_percent")
        parts.append(name if percent is None else f"{name} {percent:.1f} wt%")
    return "; ".join(parts)


def _elements(result: Mapping[str, Any]) -> str:
    """A Raman answer's likely elements in one cell, most probable first."""
    return "; ".join(
        f"{e['symbol']} {e['probability']:.2f}"
        for e in result.get("elements") or []
        if e["probability"] >= LIKELY_ELEMENT
    )


def result_rows(files: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of per-file results (``{"index", "filename", "status", "result", "error"}``)."""
    rows: list[dict[str, Any]] = []
    for item in files:
        base = {"index": item["index"], "filename": item["filename"], "status": item["status"]}
        result, error = item.get("result"), item.get("error")
        if result is not None:
            base |= {
                "technique": result.get("technique"),
                "verdict": result.get("verdict"),
                "phases": _phases(result),
                "elements": _elements(result),
            }
        if result is None or not result.get("candidates"):
            detail = error.get("detail") if error else None
            sample_id = result.get("sample_id") if result else None
            rows.append({**base, "sample_id": sample_id, "error": detail})
            continue
        for candidate in result["candidates"]:
            rows.append(
                {
                    **base,
                    "sample_id": result.get("sample_id"),
                    "rank": candidate.get("rank"),
                    "reference_id": candidate.get("reference_id"),
                    "name": candidate.get("name"),
                    "formula": candidate.get("formula"),
                    "space_group": candidate.get("space_group"),
                    "score": candidate.get("score"),
                    "similarity": candidate.get("similarity"),
                    "profile_correlation": candidate.get("profile_correlation"),
                    "confidence": candidate.get("confidence"),
                    "source": candidate.get("source"),
                    "source_id": candidate.get("source_id"),
                }
            )
    return rows


def to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in COLUMNS})
    return out.getvalue()
