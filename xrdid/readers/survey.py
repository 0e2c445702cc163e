"""Which files under a folder read, and why the others do not.

``python -m xrdid.readers.survey PATH [--verbose]`` prints counts of files read
as a pattern, read as a table (``read_pattern_table``) and rejected, with the
rejection reasons grouped. :func:`survey` returns the same as data.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from xrdid.errors import PatternReadError
from xrdid.readers import read_pattern, read_pattern_table

Outcome = Literal["pattern", "table", "rejected"]


@dataclass(frozen=True)
class FileOutcome:
    """How one file fared: ``n_patterns`` is 1 for a pattern, N for a table."""

    path: Path
    outcome: Outcome
    n_patterns: int = 0
    n_points: int = 0
    reason: str = ""

    @property
    def reason_kind(self) -> str:
        """The reason without file-specific numbers and quotes, for grouping."""
        generic = re.sub(r"'[^']*'", "'…'", self.reason)
        generic = re.sub(r"\([^)]*\)", "(…)", generic)
        return re.sub(r"\d[\d,.]*", "N", generic)


def survey_file(path: Path) -> FileOutcome:
    """Read one file as a pattern, falling back to a table for wide CSVs."""
    try:
        pattern = read_pattern(path)
    except PatternReadError as exc:
        if "read_pattern_table" not in exc.reason:
            return FileOutcome(path, "rejected", reason=exc.reason)
        try:
            table = read_pattern_table(path, skip_invalid=True)
        except PatternReadError as table_exc:
            return FileOutcome(path, "rejected", reason=table_exc.reason)
        points = next(iter(table.values())).n_points
        return FileOutcome(path, "table", n_patterns=len(table), n_points=points)
    return FileOutcome(path, "pattern", n_patterns=1, n_points=pattern.n_points)


def survey(root: Path) -> list[FileOutcome]:
    """Outcomes for every file below ``root`` (or ``root`` itself), sorted by path."""
    paths: Iterable[Path] = [root] if root.is_file() else sorted(root.rglob("*"))
    return [survey_file(path) for path in paths if path.is_file()]


def summary(outcomes: Sequence[FileOutcome], *, verbose: bool = False) -> str:
    """A plain-text report of ``outcomes``."""
    counts = Counter(outcome.outcome for outcome in outcomes)
    lines = [
        f"{len(outcomes)} files: {counts['pattern']} read as a pattern, "
        f"{counts['table']} as a table ({sum(o.n_patterns for o in outcomes if o.outcome == 'table')} "
        f"patterns), {counts['rejected']} rejected"
    ]
    reasons = Counter(o.reason_kind for o in outcomes if o.outcome == "rejected")
    for reason, count in reasons.most_common():
        lines.append(f"  {count:4d} × {reason}")
    if verbose:
        for outcome in outcomes:
            detail = (
                outcome.reason if outcome.outcome == "rejected" else f"{outcome.n_points} points"
            )
            lines.append(f"{outcome.outcome:8s} {outcome.path}: {detail}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Count which pattern files read.")
    parser.add_argument("path", type=Path, help="a pattern file or a folder to search")
    parser.add_argument("--verbose", "-v", action="store_true", help="one line per file")
    args = parser.parse_args(argv)
    if not args.path.exists():
        parser.error(f"{args.path} does not exist")
    sys.stdout.write(summary(survey(args.path), verbose=args.verbose) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
