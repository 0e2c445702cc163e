"""Training classes: real structures from the shared data plus generated ones.

A class is a *material*: reduced formula + space-group number. Several files
of the same material (quartz from COD, AMCSD and BGMN) are one class, and a
held-out material is held out with all its files, so the open-set test never
sees a sibling of a test structure in training.

Generated classes are pyxtal random crystals with (formula, space group)
pairs taken from the COD index in ``../shared/data/lists`` — plausible
chemistry and symmetry, random atomic arrangement — so the model learns from
thousands of classes instead of ~1,500.
"""

from __future__ import annotations

import gzip
import json
import logging
import pickle
import re
import signal
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from xrdid.data_paths import PROJECT_ROOT, shared_data_dir
from xrdid.errors import XrdidError
from xrdid.sticks import StickPattern, simulate_sticks

log = logging.getLogger(__name__)

STRUCTURE_SUFFIXES = {".cif", ".str"}
HELD_OUT_FRACTION = 0.2
# The shipped model's seed (its split and its generated crystals) and how
# many generated crystals it trained with.
SHIPPED_SEED = 20261121
SHIPPED_GENERATED = 1000
# Generated cells with more atoms than this simulate slowly and are rare in
# labs' routine work; the COD formulas are scaled to Z giving at most this.
MAX_GENERATED_ATOMS = 40
GENERATION_TIMEOUT_S = 3


@dataclass
class TrainingClass:
    """One material and the stick patterns of every file that describes it."""

    key: str  # "SiO2|154" or "gen:Li2MnO3|12|17"
    name: str
    formula: str
    space_group_number: int | None
    generated: bool
    sources: list[str] = field(default_factory=list)
    sticks: list[StickPattern] = field(default_factory=list)


def structure_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in STRUCTURE_SUFFIXES
    )


def _read_one(path: Path) -> tuple[str, dict | None, str | None]:
    """Read and simulate one file; (path, record, error)."""
    from xrdid.structures import read_structure

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = read_structure(path)
            sticks = simulate_sticks(ref.structure)
    except XrdidError as exc:
        return str(path), None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a reader bug must not stop a batch job
        log.warning("unexpected error on %s: %r", path, exc)
        return str(path), None, f"unexpected {type(exc).__name__}: {exc}"
    return (
        str(path),
        {
            "formula": ref.formula,
            "name": ref.name,
            "sg": ref.space_group_number,
            "sticks": sticks,
        },
        None,
    )


def material_key(formula: str, space_group_number: int | None) -> str:
    return f"{formula}|{space_group_number if space_group_number else '?'}"


def real_classes(root: Path, workers: int = 2) -> tuple[list[TrainingClass], dict[str, str]]:
    """Every structure under ``root`` that reads and simulates, grouped by material.

    Returns (classes, {path: reason} for files rejected)."""
    files = structure_files(root)
    by_key: dict[str, TrainingClass] = {}
    rejected: dict[str, str] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = pool.map(_read_one, files, chunksize=8)
        for path, record, error in tqdm(results, total=len(files), desc="real structures"):
            if record is None:
                rejected[path] = error or "unknown error"
                continue
            key = material_key(record["formula"], record["sg"])
            cls = by_key.setdefault(
                key,
                TrainingClass(key, record["name"], record["formula"], record["sg"], False),
            )
            cls.sources.append(str(Path(path).relative_to(root)))
            cls.sticks.append(record["sticks"])
    return sorted(by_key.values(), key=lambda c: c.key), rejected


@dataclass(frozen=True)
class HeldOutList:
    """A shipped model's held-out materials (``held_out.json``): their keys
    and every file of them."""

    keys: frozenset[str]
    sources: frozenset[str]

    @property
    def formulas(self) -> set[str]:
        """The formulas its keys were made of (:func:`material_key`)."""
        return {key.rsplit("|", 1)[0] for key in self.keys}


def split_held_out(
    classes: list[TrainingClass],
    seed: int,
    fraction: float = HELD_OUT_FRACTION,
    held_out: HeldOutList | None = None,
) -> tuple[list[TrainingClass], list[TrainingClass]]:
    """(train, held_out): a seeded fraction of the materials, all files of each;
    or, given a shipped model's ``held_out`` list, the materials it names and
    those that hold a file it lists. A seeded split moves whenever the readers accept
    another file, and a key moves when they read a file's symmetry otherwise
    (files once read as P1 now carry their space group): the open set must be
    what the model never saw, so a listed file keeps its material held out."""
    if held_out is not None:
        held = {
            i
            for i, c in enumerate(classes)
            if c.key in held_out.keys or not held_out.sources.isdisjoint(c.sources)
        }
    else:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(classes))
        held = {int(i) for i in order[: int(round(fraction * len(classes)))]}
    train = [c for i, c in enumerate(classes) if i not in held]
    held_list = [c for i, c in enumerate(classes) if i in held]
    return train, held_list


_INTEGER_FORMULA = re.compile(r"^([A-Z][a-z]?\d*)+$")


def cod_formulas(path: Path, excluded: set[str]) -> list[tuple[dict[str, int], int, str]]:
    """(composition, space group, formula) pairs with integer stoichiometry from
    the COD index, skipping reduced formulas in ``excluded`` (held-out materials)."""
    from pymatgen.core import Composition

    data = json.loads(gzip.open(path).read())
    seen: set[tuple[str, int]] = set()
    out = []
    for entries in data.values():
        for formula, _cod_id, sg, _e_hull in entries:
            if not _INTEGER_FORMULA.match(formula) or not isinstance(sg, int):
                continue
            try:
                comp = Composition(formula)
            except Exception:  # noqa: BLE001 - odd index entries are skipped
                continue
            reduced = comp.reduced_formula
            if reduced in excluded or (reduced, sg) in seen or len(comp) > 5:
                continue
            if any(not float(v).is_integer() for v in comp.values()):
                continue
            seen.add((reduced, sg))
            out.append(
                ({str(el): int(n) for el, n in comp.reduced_composition.items()}, sg, reduced)
            )
    return out


class _GenerationTimeout(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise _GenerationTimeout


def _generate_one(
    args: tuple[dict[str, int], int, str, int],
) -> tuple[str, int, StickPattern] | None:
    """A random crystal of the formula and space group, or None.

    pyxtal occasionally searches for minutes for a Wyckoff arrangement of a
    hard composition; an alarm gives up after GENERATION_TIMEOUT_S.
    """
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(GENERATION_TIMEOUT_S)
    try:
        return _generate(*args)
    except _GenerationTimeout:
        return None
    finally:
        signal.alarm(0)


def _generate(
    composition: dict[str, int], sg: int, formula: str, seed: int
) -> tuple[str, int, StickPattern] | None:
    from pyxtal import pyxtal

    rng = np.random.default_rng(seed)
    per_formula = sum(composition.values())
    for z in rng.permutation(np.arange(1, 9)):
        if per_formula * z > MAX_GENERATED_ATOMS:
            continue
        crystal = pyxtal()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                crystal.from_random(
                    3,
                    sg,
                    list(composition),
                    [n * int(z) for n in composition.values()],
                    random_state=int(rng.integers(1 << 31)),
                )
            if not crystal.valid:
                continue
            sticks = simulate_sticks(crystal.to_pymatgen())
        except Exception:  # noqa: BLE001 - pyxtal fails for impossible Wyckoff combinations
            continue
        if sticks.n_reflections >= 3:
            return formula, sg, sticks
    return None


def generated_classes(
    n: int, excluded_formulas: set[str], seed: int, workers: int = 2
) -> list[TrainingClass]:
    """``n`` pyxtal random crystals with plausible (formula, space group) pairs."""
    candidates = cod_formulas(
        shared_data_dir() / "lists" / "cod_filtered_info_2024.json.gz", excluded_formulas
    )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(candidates))
    jobs: Iterator[tuple[dict[str, int], int, str, int]] = (
        (*candidates[int(i)], seed * 1_000_003 + int(i)) for i in order
    )
    out: list[TrainingClass] = []
    with ProcessPoolExecutor(max_workers=workers) as pool, tqdm(total=n, desc="generated") as bar:
        for result in pool.map(_generate_one, jobs, chunksize=4):
            if result is None:
                continue
            formula, sg, sticks = result
            key = f"gen:{formula}|{sg}|{len(out)}"
            out.append(
                TrainingClass(key, f"random {formula} ({sg})", formula, sg, True, [], [sticks])
            )
            bar.update(1)
            if len(out) >= n:
                break
    return out


@dataclass
class TrainingSet:
    train: list[TrainingClass]
    held_out: list[TrainingClass]
    rejected: dict[str, str]
    seed: int

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            pickle.dump(self, handle, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)

    @staticmethod
    def load(path: Path) -> TrainingSet:
        with open(path, "rb") as handle:
            loaded = pickle.load(handle)
        assert isinstance(loaded, TrainingSet)
        return loaded


def shipped_held_out(path: Path) -> HeldOutList | None:
    """The held-out materials a shipped model was trained without, if recorded."""
    if not path.is_file():
        return None
    entries = json.loads(path.read_text())
    return HeldOutList(
        frozenset(entry["key"] for entry in entries),
        frozenset(source for entry in entries for source in entry["sources"]),
    )


def build_training_set(
    n_generated: int, seed: int, workers: int = 2, held_out_list: HeldOutList | None = None
) -> TrainingSet:
    """Real classes split (by ``held_out_list`` when given, else by seed) plus
    ``n_generated`` pyxtal classes whose formulas are not held out."""
    root = shared_data_dir() / "structures"
    classes, rejected = real_classes(root, workers)
    train, held_out = split_held_out(classes, seed, held_out=held_out_list)
    # The generated classes follow from the formulas left out (a seeded
    # permutation of the rest), so a shipped list's own formulas are left out
    # too: today's readers may make another formula of a listed file, and the
    # classes that model trained on were drawn without the list's.
    excluded = {c.formula for c in held_out}
    if held_out_list is not None:
        excluded |= held_out_list.formulas
    log.info(
        "real materials: %d train, %d held out, %d files rejected",
        len(train),
        len(held_out),
        len(rejected),
    )
    generated = generated_classes(n_generated, excluded, seed, workers)
    return TrainingSet(train + generated, held_out, rejected, seed)


def training_set_at(
    path: Path, n_generated: int = SHIPPED_GENERATED, seed: int = SHIPPED_SEED
) -> TrainingSet:
    """The training set saved at ``path``, built there first when it is
    missing (a few minutes on 2 cores) with the shipped model's held-out list:
    the evaluation and the studies re-measure the shipped model on a fresh
    clone without training one."""
    if path.exists():
        return TrainingSet.load(path)
    log.warning(
        "no training set at %s: building it (every structure and %d generated crystals; a few minutes)",
        path,
        n_generated,
    )
    held_out = shipped_held_out(PROJECT_ROOT / "model_store" / "held_out.json")
    data = build_training_set(n_generated, seed, workers=2, held_out_list=held_out)
    data.save(path)
    return data
