"""A library against the default library a version of xrdid ships.

The service copies the shipped default library on its first start and from
then on serves that copy, references added through the API included. A
later version's default library (references added, or rebuilt from better
data) does not replace it on its own: :func:`compare` says what the library
lacks of it, and :func:`update` adds that. A default reference the library
lacks (by source and source id) is added; one it holds in another version
(the same source and source id, other metadata or profile: rebuilt since)
is replaced, under a new id. References the default does not hold (a
lab's own, or ones a later default dropped) are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from xrdid.errors import InputError
from xrdid.library import Library
from xrdid.library.records import NewReference
from xrdid.library.store import SqliteStore
from xrdid.technique import Technique

__all__ = ["DefaultComparison", "compare", "open_default", "update"]

# References copied per transaction (bounded memory; an interruption keeps
# the batches before it).
UPDATE_BATCH = 200


@dataclass(frozen=True)
class DefaultComparison:
    """What a library lacks of a default library."""

    default_size: int
    missing: tuple[int, ...]  # default library ids whose (source, source id) the library lacks
    outdated: tuple[tuple[int, int], ...]  # (library id, default library id): another version

    @property
    def up_to_date(self) -> bool:
        return not self.missing and not self.outdated

    def describe(self) -> str:
        return (
            f"lacks {len(self.missing)} of the default library's {self.default_size} references "
            f"and holds an earlier version of {len(self.outdated)}"
        )


def open_default(path: Path) -> SqliteStore:
    """The default library at ``path``, read only (never written, nor beside it)."""
    return SqliteStore(path, read_only=True)


def compare(library: Library, default: SqliteStore) -> DefaultComparison:
    """What ``library`` lacks of ``default``: references missing, and those
    it holds in another version (:class:`~xrdid.library.records.ReferenceVersion`)."""
    theirs = default.source_ids()
    ours = library.source_ids()
    shared = [(ours[key], default_id) for key, default_id in theirs.items() if key in ours]
    held = library.versions([ours_id for ours_id, _ in shared])
    wanted = default.versions([default_id for _, default_id in shared])
    missing = sorted(default_id for key, default_id in theirs.items() if key not in ours)
    outdated = sorted(
        (
            (ours_id, default_id)
            for ours_id, default_id in shared
            if not held[ours_id].same_as(wanted[default_id])
        ),
        key=lambda pair: pair[1],
    )
    return DefaultComparison(len(theirs), tuple(missing), tuple(outdated))


def update(
    library: Library,
    default: SqliteStore,
    *,
    batch: int = UPDATE_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> DefaultComparison:
    """Add to ``library`` the references of ``default`` it lacks and replace
    those it holds in an earlier version; what it lacked. The stored patterns,
    embeddings and profiles are copied, so both must come from the model the
    library is open with. Each batch's additions are one transaction, after
    the references they replace are deleted: an interruption leaves at most
    one batch of those missing, and running again finishes the job.
    ``progress(done, total)`` is called after each batch."""
    meta = default.meta()
    technique = Technique(meta.get("technique", Technique.XRD))
    if technique is not library.technique:
        raise InputError(
            f"{default.path} is {technique.a_label} library; "
            f"this is the {library.technique.label} library"
        )
    if meta.get("model_version") != library.model_version:
        raise InputError(
            f"{default.path} was embedded by model {meta.get('model_version')}, the library "
            f"is open with model {library.model_version}: take the default library and the "
            "model of one xrdid version"
        )
    comparison = compare(library, default)
    replaced = {default_id: library_id for library_id, default_id in comparison.outdated}
    todo = sorted([*comparison.missing, *replaced])
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        references = _references(default, chunk, library.dim)
        for default_id in chunk:
            if default_id in replaced:
                library.delete(replaced[default_id])
        library.add_many(references)
        if progress is not None:
            progress(start + len(chunk), len(todo))
    library.save_index()
    return comparison


def _references(default: SqliteStore, ids: Sequence[int], dim: int) -> list[NewReference]:
    """``ids`` of ``default`` as they are stored: metadata, pattern, embedding, profile."""
    entries = default.entries(ids)
    found, vectors = default.embeddings(ids, dim)
    embedding = dict(zip(found.tolist(), vectors, strict=True))
    profiles = default.profiles(ids)
    return [
        NewReference(
            info=entries[i].info,
            pattern=default.get_pattern(i),
            embedding=embedding[i],
            model_version=entries[i].model_version,
            content_hash=entries[i].content_hash,
            profile=profiles.get(i),
        )
        for i in ids
    ]
