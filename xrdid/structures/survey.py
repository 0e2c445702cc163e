"""Read every structure file under a folder and count what reads and why the rest does not.

    python -m xrdid.structures.survey PATH [--per-folder] [--show-warnings] [--list-rejected] [--jobs N]

Prints counts of files read and rejected (per sub-folder with
``--per-folder``) and the rejection reasons grouped with the file names
stripped, so the counts can go into a report. Internal errors (the readers
turn unforeseen exceptions into StructureReadError saying so) are reader bugs
and are listed separately as crashes; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from xrdid.errors import StructureReadError
from xrdid.structures.reader import STRUCTURE_SUFFIXES, read_structures


@dataclass
class SurveyResult:
    """What happened to each file of a survey."""

    read: dict[Path, int] = field(default_factory=dict)  # path -> structures read
    rejected: dict[Path, str] = field(default_factory=dict)  # path -> reason
    crashed: dict[Path, str] = field(default_factory=dict)  # path -> unexpected exception
    warnings: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def structure_files(root: Path) -> Iterator[Path]:
    """Files under ``root`` (or ``root`` itself) with a structure suffix, sorted."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in STRUCTURE_SUFFIXES:
            yield path


def survey(root: Path, jobs: int = 1) -> SurveyResult:
    """Read every structure file under ``root``, in ``jobs`` processes."""
    result = SurveyResult()
    start = time.perf_counter()
    paths = list(structure_files(root))
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            outcomes = list(pool.map(_read_one, paths, chunksize=16))
    else:
        outcomes = [_read_one(path) for path in paths]
    for path, (kind, detail, warnings) in zip(paths, outcomes, strict=True):
        if kind == "read":
            result.read[path] = int(detail)
            result.warnings.update(reason_group(w) for w in warnings)
        elif kind == "rejected":
            result.rejected[path] = detail
        else:
            result.crashed[path] = detail
    result.seconds = time.perf_counter() - start
    return result


def _read_one(path: Path) -> tuple[str, str, list[str]]:
    """("read", count, warnings), ("rejected", reason, []) or ("crashed", error, [])."""
    try:
        references = read_structures(path)
    except StructureReadError as exc:
        if "internal error while reading" in str(exc):
            return "crashed", str(exc), []
        return "rejected", str(exc), []
    except Exception as exc:  # a reader bug: record it, keep surveying
        return "crashed", f"{type(exc).__name__}: {exc}", []
    return "read", str(len(references)), [w for r in references for w in r.warnings]


def reason_group(message: str) -> str:
    """A message with file names, positions and numbers blanked, for grouping."""
    text = re.sub(
        r"^.*?(\.cif|\.mcif|\.str|<bytes>)(, (block|line) [^:]+)?: ", "", message, flags=re.I
    )
    text = re.sub(r"\[[^\]]*\]", "[...]", text)
    text = re.sub(r"'[^']*'", "'...'", text)
    text = re.sub(r"-?\d+(\.\d+)?", "N", text)
    return text[:160]


def _folder(path: Path, root: Path) -> str:
    relative = path.relative_to(root) if root.is_dir() else Path(path.name)
    return relative.parts[0] if len(relative.parts) > 1 else "."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--per-folder", action="store_true", help="counts per top-level folder")
    parser.add_argument("--show-warnings", action="store_true", help="group the warnings too")
    parser.add_argument("--list-rejected", action="store_true", help="each rejected file and why")
    parser.add_argument("--jobs", type=int, default=1, help="processes to read with (default 1)")
    args = parser.parse_args(argv)
    root: Path = args.path
    if not root.exists():
        print(f"{root}: no such file or folder", file=sys.stderr)
        return 2
    result = survey(root, jobs=max(1, args.jobs))
    total = len(result.read) + len(result.rejected) + len(result.crashed)
    print(
        f"{total} files: {len(result.read)} read ({sum(result.read.values())} structures), "
        f"{len(result.rejected)} rejected, {len(result.crashed)} crashed "
        f"in {result.seconds:.1f} s"
    )
    if args.per_folder:
        folders: dict[str, Counter[str]] = defaultdict(Counter)
        for path in result.read:
            folders[_folder(path, root)]["read"] += 1
        for path in result.rejected:
            folders[_folder(path, root)]["rejected"] += 1
        for path in result.crashed:
            folders[_folder(path, root)]["crashed"] += 1
        for name in sorted(folders):
            counts = folders[name]
            print(
                f"  {name:32s} read {counts['read']:5d}  rejected {counts['rejected']:4d}"
                + (f"  crashed {counts['crashed']}" if counts["crashed"] else "")
            )
    if result.rejected:
        print("rejection reasons:")
        for reason, count in Counter(map(reason_group, result.rejected.values())).most_common():
            print(f"  {count:5d}  {reason}")
    if args.list_rejected:
        for path, reason in sorted(result.rejected.items()):
            print(f"  {path}: {reason}")
    if result.crashed:
        print("crashes (reader bugs):")
        for path, reason in sorted(result.crashed.items()):
            print(f"  {path}: {reason}")
    if args.show_warnings and result.warnings:
        print("warnings (structures read):")
        for reason, count in result.warnings.most_common():
            print(f"  {count:5d}  {reason}")
    return 1 if result.crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
