"""Files of either technique identified together (xrdid.identify_files), on
the real models: a small XRD library and a copy of the default Raman
library, with real RRUFF spectra."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.test_app import scan, small_library  # noqa: F401 - a fixture
from xrdid.data_paths import PROJECT_ROOT
from xrdid.embedder import Embedder
from xrdid.errors import InputError, PatternReadError
from xrdid.identify import Identification, IdentifyOptions
from xrdid.identify_files import Pipelines, Reading, XrdModel, identify_files, read_file
from xrdid.library import Library
from xrdid.raman.answer import RamanOptions, RamanResult, identify_spectrum
from xrdid.raman.archive import unpacked_archive
from xrdid.raman.search import RamanSearch
from xrdid.raman.spectrum import RamanSpectrum
from xrdid.technique import Technique

MODEL_STORE = PROJECT_ROOT / "model_store"
CALCITE = "Calcite__R050130__Raman__532__0__unoriented__Raman_Data_Processed__27273.txt"
ANATASE = "Anatase__R120064__Raman__532__0__unoriented__Raman_Data_Processed__36494.txt"


def rruff(name: str) -> tuple[bytes, str]:
    return (unpacked_archive() / name).read_bytes(), name


@pytest.fixture(scope="module")
def xrd(small_library: tuple[Path, Path]) -> Iterator[XrdModel]:  # noqa: F811
    model, library = small_library
    embedder = Embedder.load(model, device="cpu")
    with Library.open(library, embedder) as opened:
        yield XrdModel(embedder, opened)


@pytest.fixture(scope="module")
def raman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RamanSearch]:
    library = tmp_path_factory.mktemp("raman") / "raman_library.sqlite"
    shutil.copyfile(MODEL_STORE / "raman_library.sqlite", library)
    search = RamanSearch.open(
        MODEL_STORE / "raman_regnet1d.pt", library, MODEL_STORE / "raman_ranking.json"
    )
    yield search
    search.library.close()


def pipelines(xrd: XrdModel, raman: RamanSearch, asked: list[str] | None = None) -> Pipelines:
    """Both pipelines, noting in ``asked`` which technique was asked for."""

    def xrd_pipeline() -> tuple[XrdModel, IdentifyOptions]:
        (asked if asked is not None else []).append("xrd")
        return xrd, IdentifyOptions(top_k=3, phases=False)

    def raman_pipeline() -> tuple[RamanSearch, RamanOptions]:
        (asked if asked is not None else []).append("raman")
        return raman, RamanOptions(top_k=3)

    return Pipelines(xrd=xrd_pipeline, raman=raman_pipeline)


def test_each_file_gets_its_techniques_answer_in_order(xrd: XrdModel, raman: RamanSearch) -> None:
    files = [rruff(CALCITE), (scan(1), "a.xy"), (b"no numbers here\n", "notes.txt"), rruff(ANATASE)]
    asked: list[str] = []
    calcite, pattern, notes, anatase = identify_files(
        files, Reading(), pipelines(xrd, raman, asked)
    )
    assert sorted(asked) == ["raman", "xrd"]  # each asked for once
    assert isinstance(calcite, RamanResult) and isinstance(anatase, RamanResult)
    assert calcite.matches[0].entry.info.name == "Calcite"
    assert anatase.matches[0].entry.info.name == "Anatase"
    assert isinstance(pattern, Identification) and pattern.query.filename == "a.xy"
    assert isinstance(notes, PatternReadError)
    # A batch's spectra are answered as one spectrum alone is (to float noise).
    spectrum, read_ms = read_file(*rruff(CALCITE), Reading())
    assert isinstance(spectrum, RamanSpectrum)
    alone = identify_spectrum(spectrum, raman, RamanOptions(top_k=3), filename=CALCITE)
    assert [m.entry.id for m in calcite.matches] == [m.entry.id for m in alone.matches]
    assert [m.score for m in calcite.matches] == pytest.approx([m.score for m in alone.matches])
    assert calcite.verdict == alone.verdict and calcite.query == alone.query


def test_a_technique_is_asked_for_only_when_a_file_needs_it(
    xrd: XrdModel, raman: RamanSearch
) -> None:
    asked: list[str] = []
    (only,) = identify_files([(scan(2), "b.xy")], Reading(), pipelines(xrd, raman, asked))
    assert isinstance(only, Identification) and asked == ["xrd"]

    def unavailable() -> tuple[RamanSearch, RamanOptions]:
        raise InputError("no Raman model here")

    mixed = Pipelines(xrd=pipelines(xrd, raman).xrd, raman=unavailable)
    calcite, pattern = identify_files([rruff(CALCITE), (scan(2), "b.xy")], Reading(), mixed)
    assert isinstance(calcite, InputError) and str(calcite) == "no Raman model here"
    assert isinstance(pattern, Identification)  # the other technique is not affected


def test_the_technique_asked_for_is_insisted_on(xrd: XrdModel, raman: RamanSearch) -> None:
    as_xrd = Reading(technique=Technique.XRD)
    (refused,) = identify_files([rruff(CALCITE)], as_xrd, pipelines(xrd, raman))
    assert isinstance(refused, PatternReadError) and "technique='xrd'" in str(refused)
    laser = Reading(laser_wavelength_nm=785.0)
    (spectrum,) = identify_files([rruff(CALCITE)], laser, pipelines(xrd, raman))
    assert isinstance(spectrum, RamanResult) and spectrum.query.laser_wavelength_nm == 785.0


def test_the_no_match_verdict_says_what_it_compared(raman: RamanSearch) -> None:
    """The shipped settings threshold the match model; a spectrum it judges in
    the library is a match, and with the threshold above its probability the
    same spectrum is no_match with a note naming the probability."""
    assert raman.ranking.no_match_on == "match model"
    spectrum, _ = read_file(*rruff(CALCITE), Reading())
    assert isinstance(spectrum, RamanSpectrum)
    found = identify_spectrum(spectrum, raman, RamanOptions(top_k=3), filename=CALCITE)
    assert found.verdict == "match"
    shipped = raman.ranking
    try:
        raman.ranking = replace(shipped, no_match_below=1.0)
        flagged = identify_spectrum(spectrum, raman, RamanOptions(top_k=3), filename=CALCITE)
    finally:
        raman.ranking = shipped
    assert flagged.verdict == "no_match"
    assert [m.entry.id for m in flagged.matches] == [m.entry.id for m in found.matches]
    assert any(
        "the match model's probability that the mineral is in the library" in note
        and "below the no-match threshold 1.000" in note
        for note in flagged.notes
    )
