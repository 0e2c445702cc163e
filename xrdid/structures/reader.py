"""Dispatch a structure file to the CIF or BGMN reader and describe the result."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from xrdid.errors import SimulationTooLargeError, StructureReadError
from xrdid.structures.bgmn import read_bgmn
from xrdid.structures.cif import CifBlockFailure, CifBlockResult, read_cif, split_blocks
from xrdid.structures.model import ReferenceStructure, make_reference

if TYPE_CHECKING:
    from xrdid.sticks import SimulationLimits

logger = logging.getLogger(__name__)

STRUCTURE_SUFFIXES = (".cif", ".mcif", ".str")
# Real CIFs and .str files are kilobytes to a few megabytes.
MAX_FILE_BYTES = 50 * 1024 * 1024
# Blocks tried for the first usable structure: files may put a publication
# block (data_global) before the structures; thousands of blocks are an attack.
MAX_BLOCKS_TRIED = 20


def read_structures(
    source: str | os.PathLike[str] | bytes, filename: str | None = None
) -> list[ReferenceStructure]:
    """Every usable structure in a CIF or BGMN .str file, in file order.

    ``source`` is a path, or the file's bytes with ``filename`` naming it (its
    suffix picks the format; without one the content decides). Data blocks of
    a CIF that hold no usable structure are skipped (and logged); when no
    block is usable, StructureReadError gives the reasons.
    """
    return _read_guarded(source, filename, first_only=False, limits=None)


def _read_guarded(
    source: str | os.PathLike[str] | bytes,
    filename: str | None,
    *,
    first_only: bool,
    limits: SimulationLimits | None,
) -> list[ReferenceStructure]:
    data, path, label = _load(source, filename)
    try:
        return _read(data, path, label, first_only, limits)
    except (StructureReadError, SimulationTooLargeError, MemoryError):
        raise
    except Exception as exc:
        # Hostile or unforeseen input must not escape as another exception
        # type; the traceback goes to the log for a bug report.
        logger.exception("%s: unexpected error while reading", label or "<bytes>")
        raise StructureReadError(
            f"{label or '<bytes>'}: internal error while reading the structure ({exc}); "
            "please report this file"
        ) from exc


def _read(
    data: bytes, path: Path | None, label: str, first_only: bool, limits: SimulationLimits | None
) -> list[ReferenceStructure]:
    text = _decode(data, label)
    kind = _format(label, text)
    stem = Path(label).stem if label else "structure"
    if kind == "str":
        result = read_bgmn(text, label or "<bytes>")
        name = result.mineral_name or result.name or stem
        return [
            make_reference(
                result.structure,
                name=name,
                source_id=stem,
                source_path=path,
                space_group_number=result.setting.number,
                notes=result.warnings,
                where=label or "<bytes>",
                simulation_limits=limits,
            )
        ]
    if first_only:
        return [_first_cif_structure(text, path, label, stem, limits)]
    results, failures = read_cif(text, label or "<bytes>")
    return _cif_references(results, failures, path, label, stem, limits)


def _first_cif_structure(
    text: str, path: Path | None, label: str, stem: str, limits: SimulationLimits | None
) -> ReferenceStructure:
    """The first block that gives a structure; the blocks after it are never parsed."""
    failures: list[CifBlockFailure] = []
    for tried, block in enumerate(split_blocks(text) if _has_data_line(text) else [text]):
        if tried == MAX_BLOCKS_TRIED:
            failures.insert(
                0,
                CifBlockFailure(
                    "",
                    f"{label or '<bytes>'}: none of the first {MAX_BLOCKS_TRIED} data blocks "
                    "holds a usable structure; put the structure first or send one per file",
                ),
            )
            break
        try:
            results, more = read_cif(block, label or "<bytes>", limits)
        except StructureReadError as exc:
            failures.append(CifBlockFailure("", str(exc)))
            continue
        block_failures = list(more)
        try:
            return _cif_references(results[:1], block_failures, path, label, stem, limits)[0]
        except StructureReadError:
            failures.extend(block_failures)  # try the next block
    return _cif_references([], failures, path, label, stem, limits)[0]


def _has_data_line(text: str) -> bool:
    return re.search(r"^\s*data_", text, flags=re.MULTILINE) is not None


def _cif_references(
    results: list[CifBlockResult],
    failures: list[CifBlockFailure],
    path: Path | None,
    label: str,
    stem: str,
    limits: SimulationLimits | None,
) -> list[ReferenceStructure]:
    references: list[ReferenceStructure] = []
    for block in results:
        base_id = block.database_id or stem
        where = f"{label or '<bytes>'}, block {block.block}"
        try:
            references.append(
                make_reference(
                    block.structure,
                    name=block.name or stem,
                    source_id=base_id if len(results) == 1 else f"{base_id}/{block.block}",
                    source_path=path,
                    space_group_number=block.space_group_number,
                    notes=block.warnings,
                    where=where,
                    simulation_limits=limits,
                )
            )
        except StructureReadError as exc:
            failures.append(CifBlockFailure(block.block, str(exc)))
    for failure in failures:
        logger.info("skipped %s", failure.reason)
    if not references:
        reasons = list(dict.fromkeys(f.reason for f in failures))
        if len(reasons) == 1:
            raise StructureReadError(reasons[0])
        raise StructureReadError(
            f"{label or '<bytes>'}: no data block holds a usable structure: "
            + "; ".join(reasons[:5])
        )
    return references


def read_structure(
    source: str | os.PathLike[str] | bytes,
    filename: str | None = None,
    *,
    simulation_limits: SimulationLimits | None = None,
) -> ReferenceStructure:
    """The first usable structure of a file; see :func:`read_structures`.

    Blocks after the first usable one are not parsed (a CIF of thousands of
    blocks costs what its first structure costs). With ``simulation_limits``,
    a structure too large to simulate is refused (SimulationTooLargeError)
    as soon as its cell and atoms are known, before the checks and the
    symmetry search that grow with its size.
    """
    return _read_guarded(source, filename, first_only=True, limits=simulation_limits)[0]


def _load(
    source: str | os.PathLike[str] | bytes, filename: str | None
) -> tuple[bytes, Path | None, str]:
    """(bytes, path if any, label for messages)."""
    if isinstance(source, bytes | bytearray):
        if len(source) > MAX_FILE_BYTES:
            raise StructureReadError(
                f"{filename or '<bytes>'}: file larger than {MAX_FILE_BYTES} bytes"
            )
        return bytes(source), None, filename or ""
    if not isinstance(source, str | os.PathLike):
        raise TypeError(f"source must be a path or bytes, not {type(source).__name__}")
    path = Path(source)
    label = filename or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise StructureReadError(f"{label}: file larger than {MAX_FILE_BYTES} bytes")
        return path.read_bytes(), path, label
    except OSError as exc:
        raise StructureReadError(f"{label}: cannot read file: {exc.strerror or exc}") from exc


def _decode(data: bytes, label: str) -> str:
    if not data.strip():
        raise StructureReadError(f"{label or '<bytes>'}: empty file")
    if b"\x00" in data:
        raise StructureReadError(f"{label or '<bytes>'}: not a text file (binary content)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Old CIF and .str files are often Latin-1 (author names, umlauts).
        return data.decode("latin-1")


def _format(label: str, text: str) -> str:
    """'cif' or 'str', by suffix, else by content."""
    suffix = Path(label).suffix.lower() if label else ""
    if suffix in (".cif", ".mcif"):
        return "cif"
    if suffix == ".str":
        return "str"
    if re.search(r"^\s*data_", text, flags=re.MULTILINE | re.IGNORECASE):
        return "cif"
    if re.search(r"(^|\s)E=", text) and re.search(
        r"(SpacegroupNo|SpacegropuNo|HermannMauguin|PHASE)=", text
    ):
        return "str"
    raise StructureReadError(
        f"{label or '<bytes>'}: not a structure file: neither a CIF (data_ block) nor a "
        "BGMN .str file (SpacegroupNo=, E= atoms)"
    )
