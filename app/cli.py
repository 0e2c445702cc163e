"""The command-line client: identify many scans, on a server or locally.

    python -m app.cli identify FILES... [--url URL | --library PATH]
                             [--format table|csv|json] [--top-k N] [--wavelength W] ...

FILES are XRD pattern files or Raman spectra, folders (searched for such
files) or zips of them; each file's technique is told from its content as
POST /identify tells it (``--technique`` insists on one). With ``--url``
they go to a running service as batch jobs (:mod:`app.client`); with
``--library`` they are identified here with no server: XRD patterns on that
library file, Raman spectra on ``--raman-library`` (by default the one
``make install`` builds). Both print the same results: each file's POST
/identify answer (json), one row per candidate (csv) or the best candidate
per file (table). A progress bar goes to stderr.

Local mode runs the service's own batch code (:func:`app.jobs.runner.compute_batch`:
one forward pass per technique and batch), so its output is the server's (a
score may differ in its last digit: batches of other sizes round differently).

Exit status: 0 when every file was identified, 1 when some failed (their
errors are in the output), 2 for bad arguments or an unreachable server.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xrdid.data_paths import PROJECT_ROOT
from xrdid.errors import XrdidError
from xrdid.readers import SUPPORTED_FORMATS
from xrdid.readers.archive import is_scan_archive, unpack_scans

if TYPE_CHECKING:
    from xrdid.raman.search import RamanSearch

__all__ = ["main"]

DEFAULT_MODEL = PROJECT_ROOT / "model_store" / "regnet1d.pt"
# The service's default calibration (XRDID_CALIBRATION_PATH): confidences as it gives them.
DEFAULT_CALIBRATION = PROJECT_ROOT / "model_store" / "calibration.json"
# The service's default Raman model, ranking settings and library (docs/raman.md).
DEFAULT_RAMAN_MODEL = PROJECT_ROOT / "model_store" / "raman_regnet1d.pt"
DEFAULT_RAMAN_RANKING = PROJECT_ROOT / "model_store" / "raman_ranking.json"
DEFAULT_RAMAN_LIBRARY = PROJECT_ROOT / "model_store" / "raman_library.sqlite"
# Scans per forward pass in local mode (no interactive request waits here for
# a batch, so batches may be larger than the service's XRDID_JOB_BATCH_SIZE).
LOCAL_BATCH = 16
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_ZIP_FILES = 100_000
OPTION_FIELDS = (
    "top_k",
    "wavelength",
    "baseline",
    "elements_all",
    "elements_none",
    "elements_only",
    "phases",
    "include",
    "internal_standard",
    "technique",
    "laser_wavelength_nm",
)


class UsageError(Exception):
    pass


def _scans(paths: Sequence[str]) -> list[tuple[str, bytes]]:
    """Every scan named: files, pattern files under folders, members of zips."""
    out: list[tuple[str, bytes]] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_FORMATS
            )
            if not found:
                raise UsageError(f"{path}: no pattern files ({' '.join(SUPPORTED_FORMATS)})")
            out.extend((str(p), p.read_bytes()) for p in found)
        elif path.is_file():
            data = path.read_bytes()
            if is_scan_archive(data, path.name):
                members = unpack_scans(
                    data,
                    str(path),
                    max_members=MAX_ZIP_FILES,
                    max_member_bytes=MAX_FILE_BYTES,
                    max_total_bytes=50 * MAX_FILE_BYTES,
                )
                out.extend((f"{path}:{member}", content) for member, content in members)
            else:
                out.append((str(path), data))
        else:
            raise UsageError(f"{path}: no such file or folder")
    return out


def _progress_bar(total: int, enabled: bool) -> tuple[Callable[[int], None], Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(total=total, unit="scan", disable=not enabled, file=sys.stderr)

    def update(done: int) -> None:
        bar.update(max(done - bar.n, 0))

    return update, bar.close


def identify_local(
    scans: Sequence[tuple[str, bytes]],
    library_path: Path,
    model_path: Path,
    options: dict[str, Any],
    progress: Callable[[int], None],
    raman_library_path: Path = DEFAULT_RAMAN_LIBRARY,
    raman_model_path: Path = DEFAULT_RAMAN_MODEL,
) -> list[dict[str, Any]]:
    """Each scan's result or error, computed here on library files: XRD
    patterns on ``library_path``, Raman spectra on ``raman_library_path``
    (its model loaded only when a spectrum is met)."""
    from app.core.state import load_calibration
    from app.jobs.runner import compute_batch
    from app.models import IdentifyForm
    from app.store.base import ClaimedBatch, ClaimedFile
    from xrdid.embedder import Embedder
    from xrdid.identify_files import XrdModel
    from xrdid.library import Library

    if not library_path.is_file():
        raise UsageError(
            f"{library_path}: no library file (build one with python -m indexer build)"
        )
    if not model_path.is_file():
        raise UsageError(f"{model_path}: no model checkpoint (--model)")
    form = IdentifyForm.model_validate(options)  # the options as the service checks them
    stored = form.model_dump(mode="json", exclude={"sample_id"})
    embedder = Embedder.load(model_path, device="cpu")
    calibration = load_calibration(DEFAULT_CALIBRATION, embedder.version)
    out: list[dict[str, Any]] = []
    with (
        Library.open(library_path, embedder) as library,
        _RamanLoader(raman_model_path, raman_library_path) as raman,
    ):
        xrd = XrdModel(embedder, library, calibration)
        for start in range(0, len(scans), LOCAL_BATCH):
            chunk = scans[start : start + LOCAL_BATCH]
            batch = ClaimedBatch(
                job_id="local",
                options=stored,
                sample_id=None,
                files=[ClaimedFile(start + i, n, d) for i, (n, d) in enumerate(chunk)],
            )
            default_top_k = form.top_k or 5
            for outcome, (name, _) in zip(
                compute_batch(batch, lambda: xrd, raman.search, default_top_k, MAX_FILE_BYTES),
                chunk,
                strict=True,
            ):
                out.append(
                    {
                        "index": outcome.index,
                        "filename": name,
                        "status": "succeeded" if outcome.result is not None else "failed",
                        "result": outcome.result,
                        "error": outcome.error,
                    }
                )
            progress(len(out))
    return out


class _RamanLoader:
    """The Raman model and library of local mode, opened when the first
    spectrum is met (an XRD-only run never loads them), closed at the end."""

    def __init__(self, model_path: Path, library_path: Path) -> None:
        self.model_path, self.library_path = model_path, library_path
        self._search: RamanSearch | None = None

    def search(self) -> RamanSearch:
        """The loaded search, or why there is none (each spectrum's error)."""
        from app.core.errors import TechniqueUnavailableError
        from xrdid.raman.search import RamanSearch

        if self._search is None:
            if not self.model_path.is_file():
                raise TechniqueUnavailableError(
                    f"the file is a Raman spectrum, and there is no Raman model at "
                    f"{self.model_path} (--raman-model)"
                )
            if not self.library_path.is_file():
                raise TechniqueUnavailableError(
                    f"the file is a Raman spectrum, and there is no Raman library at "
                    f"{self.library_path} (make install builds the default one; or "
                    "--raman-library)"
                )
            ranking = DEFAULT_RAMAN_RANKING if DEFAULT_RAMAN_RANKING.is_file() else None
            self._search = RamanSearch.open(self.model_path, self.library_path, ranking)
        return self._search

    def __enter__(self) -> _RamanLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._search is not None:
            self._search.library.close()


def identify_remote(
    scans: Sequence[tuple[str, bytes]],
    url: str,
    api_key: str | None,
    options: dict[str, Any],
    progress: Callable[[int], None],
) -> list[dict[str, Any]]:
    from app.client import XrdidClient

    with XrdidClient(url, api_key=api_key) as client:
        return client.identify_many(scans, progress=progress, **options)


def _table(items: Sequence[dict[str, Any]]) -> str:
    rows = [("file", "status", "best match", "formula", "score", "technique", "note")]
    for item in items:
        result, error = item.get("result"), item.get("error")
        best = (result or {}).get("candidates") or [{}]
        top = best[0]
        score = top.get("score")
        note = (error or {}).get("detail") or ""
        rows.append(
            (
                item["filename"],
                item["status"],
                top.get("name") or "",
                top.get("formula") or "",
                "" if score is None else f"{score:.3f}",
                (result or {}).get("technique") or "",
                note[:100],
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def render(items: Sequence[dict[str, Any]], output_format: str) -> str:
    if output_format == "json":
        return json.dumps(list(items), indent=2, ensure_ascii=False)
    if output_format == "csv":
        from app.jobs.export import result_rows, to_csv

        return to_csv(result_rows(items)).rstrip("\n")
    return _table(items)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.cli", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    identify = commands.add_parser("identify", help="identify scans (files, folders, zips)")
    identify.add_argument("files", nargs="+", metavar="FILES")
    where = identify.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running xrdid service, e.g. http://xrdid.lab:8000")
    where.add_argument("--library", type=Path, help="a library file: identify here, no server")
    identify.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="local mode's model")
    identify.add_argument(
        "--api-key",
        default=os.environ.get("XRDID_API_KEY"),
        help="the server's read key, if it needs one (default: $XRDID_API_KEY)",
    )
    identify.add_argument("--format", choices=("table", "csv", "json"), default="table")
    identify.add_argument("--top-k", type=int, help="candidates per file (default 5)")
    identify.add_argument("--wavelength", help="Å or anode (Cu, Mo, Co, …); default: the file's")
    identify.add_argument("--baseline", choices=("beads", "snip", "none"))
    identify.add_argument("--elements-all", help="candidates must contain all of these (Fe,O)")
    identify.add_argument("--elements-none", help="candidates must contain none of these")
    identify.add_argument("--elements-only", help="candidates may contain only these")
    identify.add_argument(
        "--no-phases",
        dest="phases",
        action="store_false",
        default=None,
        help="skip the phase analysis (the ranked lists only; faster)",
    )
    identify.add_argument(
        "--include", help="extras in each json result: 'profiles' (the overlay arrays)"
    )
    identify.add_argument(
        "--internal-standard",
        help="a phase added at a known weight percent, NAME:PERCENT (e.g. Corundum:20)",
    )
    identify.add_argument(
        "--technique",
        choices=("auto", "xrd", "raman"),
        help="what the files are (default auto: told from each file, as the service does)",
    )
    identify.add_argument(
        "--laser-wavelength-nm",
        type=float,
        help="Raman: the laser in nm, overriding the file's (needed for an axis in absolute "
        "wavenumbers or nm)",
    )
    identify.add_argument(
        "--raman-library",
        type=Path,
        default=DEFAULT_RAMAN_LIBRARY,
        help="local mode's Raman library (default: the one make install builds)",
    )
    identify.add_argument(
        "--raman-model", type=Path, default=DEFAULT_RAMAN_MODEL, help="local mode's Raman model"
    )
    identify.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options = {field: getattr(args, field) for field in OPTION_FIELDS}
    options = {k: v for k, v in options.items() if v is not None}
    try:
        scans = _scans(args.files)
        update, close = _progress_bar(len(scans), not args.no_progress)
        try:
            if args.url:
                items = identify_remote(scans, args.url, args.api_key, options, update)
            else:
                items = identify_local(
                    scans,
                    args.library,
                    args.model,
                    options,
                    update,
                    raman_library_path=args.raman_library,
                    raman_model_path=args.raman_model,
                )
        finally:
            close()
    except (UsageError, XrdidError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from pydantic import ValidationError

        from app.client import ServiceError

        if isinstance(exc, ValidationError):
            print(f"error: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", file=sys.stderr)
            return 2
        if isinstance(exc, ServiceError):
            print(f"error: the server refused: {exc.detail}", file=sys.stderr)
            return 2
        import httpx

        if isinstance(exc, httpx.HTTPError):
            print(f"error: cannot reach {args.url}: {exc}", file=sys.stderr)
            return 2
        raise
    print(render(items, args.format))
    return 0 if all(item["status"] == "succeeded" for item in items) else 1


if __name__ == "__main__":
    sys.exit(main())
