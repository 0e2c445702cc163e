"""``python -m indexer COMMAND …``: the offline jobs, one module each.

    build     build or update a reference library      (indexer/build.py)
    update-library  add this version's default library to a working one (indexer/update_library.py)
    train     train the embedding model                (indexer/train.py)
    evaluate  evaluate a checkpoint against baselines  (indexer/evaluate.py)
    ablate    compare architecture variants            (indexer/ablate.py)
    distortions  what each distortion costs the model  (indexer/distortions.py)
    rerank-weights  choose the profile re-rank's weight (indexer/rerank_weights.py)
    calibrate  calibrate confidences and no_match      (indexer/calibrate.py)
    evaluate-phases  phases, weight percents, families, confidence (indexer/evaluate_phases.py)
    phase-settings  the phase analysis's thresholds    (indexer/phase_settings.py)
    migrate-to-postgres  copy a SQLite library into PostgreSQL (indexer/migrate_to_postgres.py)
    raman-pack      build the Raman training pack          (indexer/raman_pack.py)
    train-raman     train the Raman embedding              (indexer/train_raman.py)
    evaluate-raman  evaluate the Raman identification      (indexer/evaluate_raman.py)
    build-raman     build the default Raman library        (indexer/build_raman.py)

Each module has ``main(argv)``; it is imported only when its command runs, so
one job's heavy imports (or absence) never slow or break another.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "build": ("indexer.build", "build or update a reference library"),
    "update-library": (
        "indexer.update_library",
        "add this version's default library to a working library",
    ),
    "train": ("indexer.train", "train the embedding model"),
    "evaluate": ("indexer.evaluate", "evaluate a checkpoint"),
    "ablate": ("indexer.ablate", "compare architecture variants at equal training time"),
    "distortions": ("indexer.distortions", "what each distortion costs the model"),
    "rerank-weights": ("indexer.rerank_weights", "choose the profile re-rank's weight"),
    "calibrate": ("indexer.calibrate", "calibrate the answer's confidences and no_match"),
    "evaluate-phases": (
        "indexer.evaluate_phases",
        "evaluate phases, weight percents, families, confidence",
    ),
    "phase-settings": ("indexer.phase_settings", "choose the phase analysis's thresholds"),
    "migrate-to-postgres": (
        "indexer.migrate_to_postgres",
        "copy an embedded SQLite library into PostgreSQL",
    ),
    "raman-pack": ("indexer.raman_pack", "build the Raman training pack"),
    "train-raman": ("indexer.train_raman", "train the Raman embedding (CPU or CUDA)"),
    "evaluate-raman": ("indexer.evaluate_raman", "evaluate the Raman identification"),
    "build-raman": ("indexer.build_raman", "build the default Raman library from RRUFF"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m indexer", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, summary) in COMMANDS.items():
        commands.add_parser(name, help=summary)
    if not args or args[0] not in COMMANDS:
        parser.parse_args(args)  # prints usage / help and exits
        return 2
    module_name = COMMANDS[args[0]][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        parser.error(f"'{args[0]}' is not available: {module_name} is missing")
    # Everything after the command is the command's own (including --help).
    return int(module.main(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
