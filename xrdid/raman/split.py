"""Which RRUFF spectra are library, which are held out, and which minerals are
never seen: fixed by a seed and written to ``model_store/raman_split.json``.

- A *class* is a mineral. Names that RRUFF gives to the same physical sample
  (``ApophylliteKF`` and ``FluorapophylliteK`` share R050084) cannot be told
  apart by their spectra: they form one class, named ``"A / B"``.
- *Unseen minerals*: a share of the classes is never in the evaluation's
  library and never trained on, half for validation (calibrating "no
  match"), half for test (no-match rate, per-element AUC on minerals the
  model never saw).
- *Held-out samples*: of every other class with two or more samples, a share
  of its samples (at least one, never all) leaves the evaluation's library;
  a mineral's other sample is what a user's measurement looks like. Whole
  classes go to validation or to test, so the two never share a mineral.
- Samples RRUFF names ``unknown`` are left out: no mineral to learn.

All spectra of one sample (several lasers) share its role. The shipped
library takes back the held-out samples and unseen minerals
(``indexer build-raman``; ``--split-only`` builds the evaluation's). numpy-free.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

UNKNOWN = "unknown"


class Role(StrEnum):
    LIBRARY = "library"  # a reference, trained on
    VALIDATION = "validation"  # held-out sample of a library mineral, for tuning
    TEST = "test"  # held-out sample of a library mineral, for the evaluation
    UNSEEN_VALIDATION = "unseen_validation"  # mineral absent from the library, for tuning
    UNSEEN_TEST = "unseen_test"  # mineral absent from the library, for the evaluation
    EXCLUDED = "excluded"  # no mineral name


@dataclass(frozen=True)
class RamanSplit:
    seed: int
    unseen_share: float
    held_out_share: float
    classes: dict[str, str]  # mineral name → class name
    unseen_validation: tuple[str, ...]  # class names
    unseen_test: tuple[str, ...]
    held_out_validation: tuple[str, ...]  # RRUFF sample ids
    held_out_test: tuple[str, ...]

    def role(self, mineral: str, rruff_id: str) -> Role:
        if mineral == UNKNOWN or mineral not in self.classes:
            return Role.EXCLUDED
        name = self.classes[mineral]
        if name in self._unseen_validation:
            return Role.UNSEEN_VALIDATION
        if name in self._unseen_test:
            return Role.UNSEEN_TEST
        if rruff_id in self._validation:
            return Role.VALIDATION
        if rruff_id in self._test:
            return Role.TEST
        return Role.LIBRARY

    @property
    def library_classes(self) -> list[str]:
        """Class names in the library (the model's classes), sorted."""
        unseen = set(self.unseen_validation) | set(self.unseen_test)
        return sorted(set(self.classes.values()) - unseen)

    @property
    def _unseen_validation(self) -> frozenset[str]:
        return frozenset(self.unseen_validation)

    @property
    def _unseen_test(self) -> frozenset[str]:
        return frozenset(self.unseen_test)

    @property
    def _validation(self) -> frozenset[str]:
        return frozenset(self.held_out_validation)

    @property
    def _test(self) -> frozenset[str]:
        return frozenset(self.held_out_test)

    def save(self, path: Path) -> None:
        data = asdict(self)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: Path) -> RamanSplit:
        data = json.loads(Path(path).read_text())
        for key in ("unseen_validation", "unseen_test", "held_out_validation", "held_out_test"):
            data[key] = tuple(data[key])
        return cls(**data)


def mineral_classes(samples: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Mineral name → class name, joining names that share a sample."""
    parent: dict[str, str] = {}

    def find(name: str) -> str:
        while parent.setdefault(name, name) != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    names_of_sample: dict[str, set[str]] = defaultdict(set)
    for mineral, rruff_id in samples:
        if mineral != UNKNOWN:
            find(mineral)
            names_of_sample[rruff_id].add(mineral)
    for names in names_of_sample.values():
        first, *rest = sorted(names)
        for other in rest:
            parent[find(other)] = find(first)
    members: dict[str, list[str]] = defaultdict(list)
    for name in parent:
        members[find(name)].append(name)
    return {name: " / ".join(sorted(group)) for group in members.values() for name in group}


def make_split(
    samples: Iterable[tuple[str, str]],
    seed: int = 20261204,
    unseen_share: float = 0.1,
    held_out_share: float = 0.25,
) -> RamanSplit:
    """Draw the split from (mineral, RRUFF id) pairs, one per spectrum."""
    pairs = sorted(set(samples))
    classes = mineral_classes(pairs)
    samples_of: dict[str, set[str]] = defaultdict(set)
    for mineral, rruff_id in pairs:
        if mineral in classes:
            samples_of[classes[mineral]].add(rruff_id)
    rng = random.Random(seed)
    names = sorted(samples_of)
    rng.shuffle(names)
    n_unseen = round(unseen_share * len(names))
    unseen, library = names[:n_unseen], names[n_unseen:]
    held_out: list[list[str]] = [[], []]  # validation, test
    turn = 0
    for name in library:  # already shuffled
        ids = sorted(samples_of[name])
        if len(ids) < 2:
            continue
        rng.shuffle(ids)
        count = min(len(ids) - 1, max(1, round(held_out_share * len(ids))))
        held_out[turn].extend(ids[:count])
        turn = 1 - turn
    half = len(unseen) // 2
    return RamanSplit(
        seed=seed,
        unseen_share=unseen_share,
        held_out_share=held_out_share,
        classes=dict(sorted(classes.items())),
        unseen_validation=tuple(sorted(unseen[:half])),
        unseen_test=tuple(sorted(unseen[half:])),
        held_out_validation=tuple(sorted(held_out[0])),
        held_out_test=tuple(sorted(held_out[1])),
    )
