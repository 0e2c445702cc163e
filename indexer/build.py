"""Build or update a reference library from structure and pattern files.

    python -m indexer build --library PATH [--model CKPT] [--names CSV] SOURCES...

SOURCES are folders (searched recursively) or files:

- crystal structures: CIF (``.cif``, ``.mcif``) and BGMN ``.str`` → calculated
  references (stick pattern simulated, embedded as a clean Cu Kα scan);
- measured patterns in any format xrdid reads → measured references named
  after the file (a ``.cif`` with powder data counts as a pattern);
- wide text tables (``2θ`` then one intensity column per phase, e.g.
  RockJock's ``rockjock_xrd.csv``) → one measured reference per column,
  named through ``--names`` (a CSV: column id, display name, …; a column
  headed ``rir`` gives each phase's reference intensity ratio); with
  ``--standard COLUMN``, the residue of the internal standard in that column
  is removed from the others (:mod:`xrdid.standard_residue`).

Each reference is keyed by (source, source id), derived from its path: the
first folder below a SOURCE folder is the source (``cod``, ``bgmn``), the rest
of the path without suffix the source id (``1000041``, ``Minerals/Quartz``);
a SOURCE file's source is its folder name; a table column's id is
``file#column``. Re-running skips what is stored (so an interrupted run
resumes: references are committed in batches), and a file whose bytes equal
a stored reference's is skipped as a duplicate.

Files are read, simulated and preprocessed in worker processes; embedding is
batched in this process. Bad files are skipped and listed with their reason,
in the summary and in a JSON report (default: next to the library).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from multiprocessing import get_context
from pathlib import Path

from tqdm import tqdm

from xrdid.data_paths import PROJECT_ROOT
from xrdid.errors import XrdidError
from xrdid.library import Library, PatternEmbedder, index_path_for
from xrdid.readers import SUPPORTED_FORMATS, read_pattern_table
from xrdid.references import (
    PreparedReference,
    embed_references,
    is_structure_file,
    prepare_measured,
    prepare_structure,
)
from xrdid.rir import MAX_RIR, MIN_RIR
from xrdid.standard_residue import table_without_standard

logger = logging.getLogger("indexer.build")

DEFAULT_MODEL = PROJECT_ROOT / "model_store" / "regnet1d.pt"

# References embedded and committed together: one transaction (and one index
# update) per batch; an interrupted run loses at most one batch of work.
DEFAULT_BATCH = 64

# The index file is saved every this many batches (and at the end): it is a
# cache, so saving it less often only costs a patch on the next open.
SAVE_EVERY_BATCHES = 10

STRUCTURE_SUFFIXES = (".cif", ".mcif", ".str")
PATTERN_SUFFIXES = tuple(s for s in SUPPORTED_FORMATS if s != ".cif")
# Text files that may hold a table of patterns (one column per phase).
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".dat")


@dataclass(frozen=True)
class ColumnName:
    """What a table column holds: the phase's display name and, when known,
    its reference intensity ratio."""

    name: str
    rir: float | None = None


@dataclass(frozen=True)
class Task:
    """One file to turn into references."""

    path: Path
    source: str
    source_id: str
    names: dict[str, ColumnName] = field(default_factory=dict)  # table column → its name
    skip_ids: frozenset[str] = frozenset()  # table columns already stored
    # A table column holding the internal standard the others were measured
    # beside: its residue is removed from them (xrdid.standard_residue).
    standard: str | None = None


@dataclass(frozen=True)
class Failure:
    path: str
    reason: str
    item: str | None = None  # table column


@dataclass
class Outcome:
    """What a worker made of one task."""

    task: Task
    prepared: list[PreparedReference] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    already_present: int = 0
    standard_residues: dict[str, float] = field(default_factory=dict)  # as Report's, by column
    standard_missing: bool = False  # a table without the --standard column


@dataclass
class Report:
    library: str
    model_version: str
    started_at: str
    sources: list[str]
    added: int = 0
    already_present: int = 0
    duplicates: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str | None]] = field(default_factory=list)
    # The internal standard's residue removed from table columns: path#column →
    # the most removed at one angle, as a share of the column's strongest point.
    standard_residues: dict[str, float] = field(default_factory=dict)
    # Tables without the --standard column: stored with nothing removed.
    standard_missing: list[str] = field(default_factory=list)
    library_size: int = 0
    finished_at: str | None = None
    interrupted: bool = False


# --------------------------------------------------------------------------- files


def _wanted(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in STRUCTURE_SUFFIXES or suffix in PATTERN_SUFFIXES


def _files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith(".") and _wanted(path):
            yield path


def source_key(root: Path, path: Path, source: str | None = None) -> tuple[str, str]:
    """(source, source id) of a file found under SOURCE ``root``."""
    if root.is_file():
        return source or root.resolve().parent.name, root.stem
    parts = path.relative_to(root).with_suffix("").parts
    if source:
        return source, "/".join(parts)
    if len(parts) == 1:
        return root.resolve().name, parts[0]
    return parts[0], "/".join(parts[1:])


def read_names(paths: Sequence[Path]) -> dict[str, ColumnName]:
    """Column id → name (and RIR, from a column headed ``rir``) from CSVs
    whose first two columns are id and display name. An RIR outside
    MIN_RIR–MAX_RIR (RockJock's 10,000 for its background columns) is no RIR."""
    names: dict[str, ColumnName] = {}
    for path in paths:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rir_column: int | None = None
            for i, row in enumerate(csv.reader(handle)):
                if len(row) < 2:
                    continue
                if i == 0 and row[0].strip().lower() in {"id", "phase_id", "column"}:
                    headers = [cell.strip().lower() for cell in row]
                    rir_column = headers.index("rir") if "rir" in headers else None
                    continue
                rir = (
                    _rir(row[rir_column])
                    if rir_column is not None and len(row) > rir_column
                    else None
                )
                names[row[0].strip()] = ColumnName(row[1].strip(), rir)
    return names


def _rir(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if MIN_RIR <= value <= MAX_RIR else None


# --------------------------------------------------------------------------- workers


def _as_failure(task: Task, exc: BaseException, item: str | None = None) -> Failure:
    if isinstance(exc, XrdidError):
        reason = str(exc)
    else:
        reason = f"internal error ({type(exc).__name__}: {exc}); please report this file"
    return Failure(path=str(task.path), reason=reason, item=item)


def _header_columns(data: bytes) -> list[str]:
    """Column names on a table's first line (to report the columns it skipped)."""
    line = data[:1_000_000].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    delimiter = max(",;\t", key=line.count)
    cells = line.split(delimiter) if line.count(delimiter) else line.split()
    return [c.strip().strip('"') for c in cells if c.strip()]


def _prepare_table(task: Task, data: bytes) -> Outcome | None:
    """The table's columns as measured references, or None if it is no table."""
    try:
        table = read_pattern_table(data, task.path.name, skip_invalid=True)
    except XrdidError:
        return None
    if len(table) < 2:
        return None
    outcome = Outcome(task)
    if task.standard is not None:
        if task.standard in table:
            table, outcome.standard_residues = table_without_standard(table, task.standard)
        else:
            outcome.standard_missing = True
    for column in _header_columns(data)[1:]:
        if column in table:
            continue
        outcome.failures.append(
            Failure(str(task.path), "not a valid pattern (constant, empty or non-numeric)", column)
        )
    for column, pattern in table.items():
        column_id = f"{task.source_id}#{column}"
        if column_id in task.skip_ids:
            outcome.already_present += 1
            continue
        try:
            outcome.prepared.append(
                prepare_measured(
                    pattern,
                    name=task.names.get(column, ColumnName(column)).name,
                    source=task.source,
                    source_id=column_id,
                    rir=task.names.get(column, ColumnName(column)).rir,
                )
            )
        except Exception as exc:  # one bad column must not lose the others
            outcome.failures.append(_as_failure(task, exc, column))
    return outcome


def prepare_task(task: Task) -> Outcome:
    """Read, simulate and preprocess one file (runs in a worker process)."""
    try:
        data = task.path.read_bytes()
        name = task.path.name
        if is_structure_file(data, name):
            return Outcome(
                task,
                [prepare_structure(data, name, source=task.source, source_id=task.source_id)],
            )
        if task.path.suffix.lower() in TABLE_SUFFIXES:
            table = _prepare_table(task, data)
            if table is not None:
                return table
        if task.source_id in task.skip_ids:
            return Outcome(task, already_present=1)
        return Outcome(
            task,
            [
                prepare_measured(
                    data, name, name=task.path.stem, source=task.source, source_id=task.source_id
                )
            ],
        )
    except Exception as exc:  # every failure is reported, none stops the build
        return Outcome(task, failures=[_as_failure(task, exc)])


# --------------------------------------------------------------------------- build


def collect_tasks(
    sources: Sequence[Path],
    library: Library,
    *,
    source: str | None = None,
    names: dict[str, ColumnName] | None = None,
    standard: str | None = None,
) -> tuple[list[Task], int, list[dict[str, str]]]:
    """Tasks for every file not yet stored, how many were skipped as stored,
    and the files skipped because another file has their key (x.raw, x.xy)."""
    stored = library.source_keys()
    stored_ids: dict[str, set[str]] = {}
    for s, i in stored:
        stored_ids.setdefault(s, set()).add(i)
    tasks: list[Task] = []
    skipped = 0
    seen: dict[tuple[str, str], Path] = {}
    collisions: list[dict[str, str]] = []
    for root in sources:
        for path in _files(root):
            key = source_key(root, path, source)
            if key in seen:  # e.g. the same scan as x.raw and x.xy
                collisions.append(
                    {
                        "path": str(path),
                        "reason": f"same source id {key[0]}/{key[1]} as {seen[key]}",
                    }
                )
                continue
            seen[key] = path
            ids = stored_ids.get(key[0], set())
            if key[1] in ids:
                skipped += 1
                continue
            prefix = key[1] + "#"
            tasks.append(
                Task(
                    path=path,
                    source=key[0],
                    source_id=key[1],
                    names=names or {},
                    skip_ids=frozenset(i for i in ids if i.startswith(prefix)),
                    standard=standard,
                )
            )
    return tasks, skipped, collisions


def _pool(workers: int) -> ProcessPoolExecutor:
    # spawn: workers must not inherit torch's threads from this process.
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))


def _outcomes(tasks: Sequence[Task], workers: int) -> Iterator[Outcome]:
    """Outcomes in task order (so builds are reproducible), computed by
    ``workers`` processes a bounded window ahead (in this process when 0)."""
    if workers <= 0:
        for task in tasks:
            yield prepare_task(task)
        return
    window = 4 * workers
    queue = iter(tasks)
    pending: deque[tuple[Task, Future[Outcome]]] = deque()
    pool = _pool(workers)
    try:
        for task in islice(queue, window):
            pending.append((task, pool.submit(prepare_task, task)))
        while pending:
            task, future = pending.popleft()
            try:
                outcome = future.result()
            except BrokenProcessPool as exc:  # a worker died (memory, signal)
                outcome = Outcome(
                    task, failures=[Failure(str(task.path), f"worker process died: {exc}")]
                )
                pool.shutdown(wait=True, cancel_futures=True)
                pool = _pool(workers)
                pending = deque((t, pool.submit(prepare_task, t)) for t, _ in pending)
            for following in islice(queue, 1):
                pending.append((following, pool.submit(prepare_task, following)))
            yield outcome
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def build(
    library: Library,
    embedder: PatternEmbedder,
    tasks: Sequence[Task],
    report: Report,
    *,
    workers: int,
    batch_size: int = DEFAULT_BATCH,
    progress: bool = True,
) -> None:
    """Prepare ``tasks`` in workers, embed and store them in batches."""
    hashes = {h: h for h in library.content_hashes()}
    pending: list[PreparedReference] = []
    batches = 0

    def flush() -> None:
        nonlocal batches
        if not pending:
            return
        new = embed_references(pending, embedder)
        results = library.add_many(new, skip_existing=True)
        report.added += sum(r is not None for r in results)
        report.already_present += sum(r is None for r in results)
        pending.clear()
        batches += 1
        if batches % SAVE_EVERY_BATCHES == 0:
            library.save_index()

    bar = tqdm(total=len(tasks), unit="file", disable=not progress, dynamic_ncols=True)
    try:
        for outcome in _outcomes(tasks, workers):
            report.already_present += outcome.already_present
            for column, share in outcome.standard_residues.items():
                report.standard_residues[f"{outcome.task.path}#{column}"] = round(share, 4)
            if outcome.standard_missing:
                report.standard_missing.append(str(outcome.task.path))
            for failure in outcome.failures:
                report.failed.append(
                    {"path": failure.path, "item": failure.item, "reason": failure.reason}
                )
            for prepared in outcome.prepared:
                digest = prepared.content_hash
                if digest is not None and digest in hashes:
                    report.duplicates.append(
                        {
                            "path": str(outcome.task.path),
                            "reason": f"same file content as {hashes[digest]}",
                        }
                    )
                    continue
                if digest is not None:
                    hashes[digest] = f"{prepared.info.source}/{prepared.info.source_id}"
                pending.append(prepared)
            if len(pending) >= batch_size:
                flush()
            bar.update(1)
            bar.set_postfix(added=report.added + len(pending), failed=len(report.failed))
        flush()
    finally:
        bar.close()


def _summary(report: Report, report_path: Path, shown: int = 20) -> str:
    lines = [
        f"library {report.library}: {report.library_size} references "
        f"(model {report.model_version})",
        f"added {report.added}, already present {report.already_present}, "
        f"duplicate content {len(report.duplicates)}, failed {len(report.failed)}",
    ]
    for failure in report.failed[:shown]:
        item = f" [{failure['item']}]" if failure["item"] else ""
        lines.append(f"  FAILED {failure['path']}{item}: {failure['reason']}")
    if len(report.failed) > shown:
        lines.append(f"  … and {len(report.failed) - shown} more")
    if report.standard_missing:
        lines.append(
            "  no --standard column, its residue not removed: " + ", ".join(report.standard_missing)
        )
    lines.append(f"report: {report_path}")
    if report.interrupted:
        lines.append(
            "interrupted: committed batches are kept; run the same command again to resume"
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m indexer build",
        description="Build or update a reference library from structure and pattern files.",
    )
    parser.add_argument("sources", nargs="+", type=Path, help="folders (recursive) or files")
    parser.add_argument(
        "--library", type=Path, required=True, help="library database (created if missing)"
    )
    parser.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, help=f"checkpoint (default {DEFAULT_MODEL})"
    )
    parser.add_argument("--device", default=None, help="torch device (default: CUDA when present)")
    parser.add_argument(
        "--names",
        type=Path,
        action="append",
        default=[],
        help="CSV: table column id, name (and a column headed rir)",
    )
    parser.add_argument(
        "--standard",
        default=None,
        metavar="COLUMN",
        help="a table column holding the internal standard the other columns were measured "
        "beside (RockJock's CORUNDUM): its residue is removed from them",
    )
    parser.add_argument(
        "--source", default=None, help="one source name for every file (default: from paths)"
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="worker processes (0: none)"
    )
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    parser.add_argument(
        "--report", type=Path, default=None, help="JSON report (default LIBRARY.build-report.json)"
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="build a fresh library beside LIBRARY and replace it at the end (resumable)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    missing = [str(s) for s in args.sources if not s.exists()]
    if missing:
        print(f"error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    if not args.model.is_file():
        print(
            f"error: no checkpoint at {args.model}; train one (python -m indexer train) or pass --model",
            file=sys.stderr,
        )
        return 2
    from xrdid.embedder import Embedder  # torch: import only when needed

    target: Path = args.library
    path = target.with_name(target.name + ".building") if args.rebuild else target
    report_path = args.report or target.with_name(target.stem + ".build-report.json")
    embedder = Embedder.load(args.model, device=args.device)
    started = time.perf_counter()
    library = Library.open(path, embedder, workers=max(args.workers, 1))
    report = Report(
        library=str(target),
        model_version=embedder.version,
        started_at=datetime.now(UTC).isoformat(),
        sources=[str(s) for s in args.sources],
    )
    try:
        tasks, skipped, collisions = collect_tasks(
            args.sources,
            library,
            source=args.source,
            names=read_names(args.names),
            standard=args.standard,
        )
        report.already_present += skipped
        report.duplicates.extend(collisions)
        build(
            library,
            embedder,
            tasks,
            report,
            workers=args.workers,
            batch_size=args.batch_size,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        report.library_size = library.status().size
        library.close()
    if args.rebuild and not report.interrupted:
        replace_library(path, target)
    report.finished_at = datetime.now(UTC).isoformat()
    report_path.write_text(json.dumps(report.__dict__, indent=1, ensure_ascii=False) + "\n")
    print(_summary(report, report_path))
    print(f"took {time.perf_counter() - started:.0f} s")
    return 130 if report.interrupted else 0


def replace_library(built: Path, target: Path) -> None:
    """Compact the freshly built library and move it (and its index) into place."""
    connection = sqlite3.connect(built, isolation_level=None)
    try:
        connection.execute("VACUUM")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    os.replace(built, target)
    built_index, target_index = index_path_for(built), index_path_for(target)
    if built_index.exists():
        os.replace(built_index, target_index)
    else:
        target_index.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
