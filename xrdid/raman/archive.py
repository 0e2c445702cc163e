"""The RRUFF Raman archive in the shared data: unpacked once into a cache,
read into records (mineral, sample, chemistry, laser, spectrum).

The archive (``../shared/data/raman/rruff_raman_excellent_unoriented.tar.xz``,
4,554 spectra) is read in place and unpacked into the git-ignored
``data_cache/raman/`` next to the project; tests, the indexer and the
benchmarks all call :func:`unpacked_archive`, which unpacks at most once
(a lock file serialises concurrent callers, a marker file says it finished).
"""

from __future__ import annotations

import fcntl
import logging
import os
import pickle
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xrdid.data_paths import PROJECT_ROOT, shared_data_dir
from xrdid.raman.chemistry import elements_of
from xrdid.raman.spectrum import RamanSpectrum

log = logging.getLogger(__name__)

ARCHIVE_NAME = "rruff_raman_excellent_unoriented.tar.xz"
CACHE_DIR = PROJECT_ROOT / "data_cache" / "raman"
_DONE_MARKER = ".unpacked"

# RRUFF's name for spectra of unidentified samples: no class to learn.
UNKNOWN_MINERAL = "unknown"


def archive_path() -> Path:
    return shared_data_dir() / "raman" / ARCHIVE_NAME


def unpacked_archive(archive: Path | None = None, cache: Path = CACHE_DIR) -> Path:
    """The folder of spectrum files, unpacking ``archive`` into ``cache`` first
    if that was never done (about 6 s)."""
    archive = archive or archive_path()
    target = cache / archive.name.split(".")[0]
    if (target / _DONE_MARKER).exists():
        return _spectra_folder(target)
    if not archive.exists():
        raise FileNotFoundError(f"the RRUFF Raman archive is not at {archive}; set XRDID_DATA_DIR")
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / _DONE_MARKER).exists():
            log.info("unpacking %s into %s", archive, target)
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            with tarfile.open(archive) as tar:
                tar.extractall(partial, filter="data")
            shutil.rmtree(target, ignore_errors=True)
            os.replace(partial, target)
            (target / _DONE_MARKER).touch()
    return _spectra_folder(target)


def _spectra_folder(target: Path) -> Path:
    """The one folder inside the unpacked archive that holds the files."""
    inner = [path for path in target.iterdir() if path.is_dir()]
    return inner[0] if len(inner) == 1 else target


@dataclass(frozen=True)
class RruffRecord:
    """One archive spectrum and its labels."""

    file_name: str
    mineral: str  # RRUFF's NAMES
    rruff_id: str  # the sample (several spectra: other lasers)
    laser_nm: float | None
    ideal_chemistry: str
    elements: tuple[str, ...]
    spectrum: RamanSpectrum


def read_records(folder: Path | None = None) -> Iterator[RruffRecord]:
    """Every spectrum of the unpacked archive, in file-name order (about 30 s)."""
    from xrdid.readers import read_measurement

    folder = folder or unpacked_archive()
    for path in sorted(folder.glob("*.txt")):
        spectrum = read_measurement(path, technique="raman")
        assert isinstance(spectrum, RamanSpectrum)
        meta = spectrum.metadata
        chemistry = meta.get("ideal_chemistry", "")
        yield RruffRecord(
            file_name=path.name,
            mineral=meta.get("mineral", path.name.split("__")[0]),
            rruff_id=meta.get("rruff_id", path.name.split("__")[1]),
            laser_nm=spectrum.laser_wavelength_nm,
            ideal_chemistry=chemistry,
            elements=elements_of(chemistry),
            spectrum=spectrum,
        )


def load_records(folder: Path | None = None, cache: Path = CACHE_DIR) -> list[RruffRecord]:
    """:func:`read_records`, cached as a pickle next to the unpacked files
    (re-read when the archive is newer): a second call takes a second, not 30."""
    folder = folder or unpacked_archive(cache=cache)
    path = cache / "records.pkl"
    if path.exists() and path.stat().st_mtime >= folder.stat().st_mtime:
        with open(path, "rb") as handle:
            return list(pickle.load(handle))
    records = list(read_records(folder))
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as handle:
        pickle.dump(records, handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return records
