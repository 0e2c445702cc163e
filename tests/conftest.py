from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from indexer.training_set import TrainingClass
from xrdid.data_paths import shared_data_dir
from xrdid.sticks import simulate_sticks


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not (path / "patterns").is_dir():
        pytest.fail(f"shared data not found at {path}; set XRDID_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def patterns_dir(data_dir: Path) -> Path:
    return data_dir / "patterns"


@pytest.fixture(scope="session")
def structures_dir(data_dir: Path) -> Path:
    return data_dir / "structures"


@pytest.fixture(scope="session")
def rutile() -> Structure:
    """Rutile TiO2 (P4_2/mnm): a small real structure for simulation tests."""
    return Structure.from_spacegroup(
        "P4_2/mnm",
        Lattice.tetragonal(4.5937, 2.9587),
        ["Ti", "O"],
        [[0, 0, 0], [0.3048, 0.3048, 0]],
    )


@pytest.fixture(scope="session")
def rock_salt_classes() -> list[TrainingClass]:
    """Five training classes: rock-salt cells of growing size (cheap to simulate)."""
    out = []
    for i, a in enumerate((3.9, 4.4, 5.0, 5.6, 6.1)):
        structure = Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
        )
        out.append(
            TrainingClass(
                key=f"c{i}",
                name=f"c{i}",
                formula="NaCl",
                space_group_number=225,
                generated=True,
                sticks=[simulate_sticks(structure)],
            )
        )
    return out


@pytest.fixture()
def run_study(rock_salt_classes, tmp_path):
    """Run a study command (``indexer.distortions.main``, ``indexer.rerank_weights.main``)
    with the real model on 3 queries of four rock-salt materials (the fifth held out);
    returns its markdown and the rows of its JSON block."""
    import json

    from indexer.training_set import TrainingSet
    from xrdid.data_paths import PROJECT_ROOT

    data = TrainingSet(
        train=rock_salt_classes[:4], held_out=rock_salt_classes[4:], rejected={}, seed=0
    )
    data.save(tmp_path / "training_set.pkl")
    out = tmp_path / "study.md"

    def run(main):
        main(
            [
                "--model", str(PROJECT_ROOT / "model_store" / "regnet1d.pt"),
                "--training-set", str(tmp_path / "training_set.pkl"),
                "--queries", "3",
                "--markdown", str(out),
            ]
        )  # fmt: skip
        text = out.read_text()
        return text, json.loads(text.split("```json\n")[1].split("```")[0])

    return run


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the session (skipped where none can run)."""
    from tests.postgres import PostgresServer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture()
def database_url(postgres_server) -> str:
    """A fresh, empty database on the session's server."""
    return postgres_server.create_database()


@pytest.fixture(scope="session")
def rruff_records(data_dir: Path):
    """Every spectrum of the shared RRUFF archive, read by the reader itself
    (unpacked once into data_cache/raman/, about 30 s to read)."""
    from xrdid.raman.archive import read_records

    return list(read_records())
