"""Phase analysis: search, joint refinement and the evidence to stop, with
the real model over a small library of real structures."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from indexer.evaluate_phases import CPD_AUGMENTATION
from indexer.mixtures import calculated_mixture
from tests.e2e.support import SHIPPED_MODEL
from xrdid.augment import reference_input
from xrdid.data_paths import PROJECT_ROOT
from xrdid.embedder import Embedder, model_input
from xrdid.grid import MODEL_GRID
from xrdid.identify import IdentifyOptions, identify_pattern
from xrdid.library import Library
from xrdid.pattern import make_pattern
from xrdid.ranking import ArraySource, Query, RankedReference, phases, rank
from xrdid.ranking.answer import _unexplained_peaks, answer, phase_features
from xrdid.ranking.confidence import (
    CANDIDATE_FEATURES,
    MATCH_FEATURES,
    PHASE_FEATURES,
    Calibration,
    LogisticModel,
)
from xrdid.ranking.config import SERVED, RankingConfig
from xrdid.ranking.correlation import StoredReferences, isotropic_fit, rerank_correlation
from xrdid.ranking.doublet import as_measured
from xrdid.ranking.grouping import lookalike_fit
from xrdid.ranking.phases import (
    _LookAlikes,
    analyse_phases,
    broad_part,
    fitted_region,
    noise_level,
)
from xrdid.ranking.quantify import weight_percents
from xrdid.ranking.refine import PhaseShape, transformed
from xrdid.ranking.strain_tensor import largest_strain
from xrdid.readers import read_pattern
from xrdid.rir import calculated_rir
from xrdid.sticks import simulate
from xrdid.wavelengths import parse_wavelength

EVERYWHERE = np.ones(MODEL_GRID.n_points, dtype=bool)
# The ranking's correlation without its prior for small strains, as look-alikes are judged.
NO_PRIOR = replace(SERVED, strain_penalty=0.0)
MODEL_STORE = PROJECT_ROOT / "model_store"
FILES_DIR = Path(__file__).resolve().parent / "files" / "patterns"


def _cubic(symbol: str, a: float, group: str = "Fm-3m") -> Structure:
    return Structure.from_spacegroup(group, Lattice.cubic(a), [symbol], [[0, 0, 0]])


@pytest.fixture(scope="module")
def setting(rutile: Structure):
    """(embedder, source, sticks, rirs) of eight real structures."""
    structures = [
        rutile,
        _cubic("Si", 5.4309, "Fd-3m"),
        Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
        ),
        _cubic("Cu", 3.615),
        _cubic("Fe", 2.87, "Im-3m"),
        _cubic("W", 3.165, "Im-3m"),
        Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(5.4626), ["Ca", "F"], [[0, 0, 0], [0.25, 0.25, 0.25]]
        ),
        _cubic("Al", 4.05),
    ]
    simulated = [simulate(s) for s in structures]
    sticks = [s for s, _ in simulated]
    rirs = [
        calculated_rir(s, scale, st) for (s, scale), st in zip(simulated, structures, strict=True)
    ]
    inputs = model_input([reference_input(s) for s in sticks])
    embedder = Embedder.load(SHIPPED_MODEL, device="cpu")
    labels = ["rutile", "silicon", "halite", "copper", "iron", "tungsten", "fluorite", "aluminium"]
    source = ArraySource(inputs[:, 0], embedder.embed_array(inputs), sticks, None, labels)
    return embedder, source, sticks, rirs


def _analyse(embedder, source, scan: np.ndarray, mask: np.ndarray = EVERYWHERE):
    x = np.stack([scan / scan.max(), mask]).astype(np.float32)
    query = Query(x[0], mask, embedder.embed_array(x[None])[0])
    (ranking,) = rank([query], source, 8)

    def embed(intensity: np.ndarray, m: np.ndarray) -> np.ndarray:
        return embedder.embed_array(np.stack([intensity, m]).astype(np.float32)[None])[0]

    return query, ranking, analyse_phases(query, ranking, source, embed)


def test_look_alikes_are_fitted_once_per_pair(setting, monkeypatch) -> None:
    """Silicon and fluorite (the same pattern within 0.6% strain) are
    look-alikes; copper and aluminium (12% apart) are not. Each pair is
    fitted once however often the rounds ask."""
    _, source, _, _ = setting
    calls: list[int] = []

    def counted(profile, others, mask, config):
        calls.append(len(others))
        return lookalike_fit(profile, others, mask, config)

    monkeypatch.setattr(phases, "lookalike_fit", counted)
    lookalikes = _LookAlikes(source, EVERYWHERE, SERVED)
    candidates = np.arange(8, dtype=np.int64)
    first = lookalikes.of([1, 3], [0.0, 0.0], candidates)
    again = lookalikes.of([1, 3], [0.001, -0.002], candidates[::-1])
    assert list(np.flatnonzero(first)) == [1, 3, 6]
    np.testing.assert_array_equal(again, first[::-1])
    assert calls == [8, 8]  # once per phase, the second call from the memory
    expected = rerank_correlation(
        source.profiles(np.array([1]))[0], EVERYWHERE, source.profiles(candidates), NO_PRIOR
    )
    assert list(np.flatnonzero(expected >= SERVED.lookalike_correlation)) == [1, 6]
    assert not lookalikes.of([], [], candidates).any()


@pytest.fixture(scope="module")
def copper_and_nickel():
    """(embedder, source) of copper and nickel (fcc, cells 2.5% apart: the
    same pattern strained) among rutile, halite and tungsten."""
    structures = [
        _cubic("Cu", 3.615),
        _cubic("Ni", 3.524),
        Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
        ),
        _cubic("W", 3.165, "Im-3m"),
    ]
    sticks = [simulate(s)[0] for s in structures]
    inputs = model_input([reference_input(s) for s in sticks])
    embedder = Embedder.load(SHIPPED_MODEL, device="cpu")
    labels = ["copper", "nickel", "halite", "tungsten"]
    return embedder, ArraySource(inputs[:, 0], embedder.embed_array(inputs), sticks, None, labels)


def test_a_look_alike_is_one_only_where_its_own_cell_lines_it_up_on_the_phase(
    copper_and_nickel,
) -> None:
    """Nickel is copper's pattern 2.5% strained: a look-alike of copper
    fitted with a cell shrunk onto nickel's, not of copper at its own cell
    (nickel's peaks then stand beside copper's, beyond the strain a phase may
    take); once fitted, a look-alike where its strain put it."""
    _, source = copper_and_nickel
    nickel = np.array([1], dtype=np.int64)
    lookalikes = _LookAlikes(source, EVERYWHERE, SERVED)
    assert not lookalikes.of([0], [0.0], nickel)[0]
    assert lookalikes.of([0], [-0.024], nickel)[0]
    assert lookalikes.of([0], [-0.01], nickel)[0]  # within phase_strain_max of nickel's cell
    assert not lookalikes.of([0], [0.01], nickel)[0]
    # Fitted: nickel strained 2.5% sits on copper's peaks, at its own cell beside them.
    tolerance = SERVED.lookalike_cell_tolerance
    assert lookalikes.of([0], [0.0], nickel, 0.025, tolerance)[0]
    assert not lookalikes.of([0], [0.0], nickel, 0.0, tolerance)[0]
    assert not lookalikes.of([0], [0.0], nickel, 0.015, tolerance)[0]


def test_two_isostructural_phases_of_other_cells_are_both_found(copper_and_nickel) -> None:
    """A copper + nickel scan: nickel is not set aside as copper's look-alike."""
    embedder, source = copper_and_nickel
    profiles = source.profiles(np.arange(4))
    scan = 0.6 * transformed(profiles[0], PhaseShape(0.02, 0.001, 0.03))
    scan += 0.4 * transformed(profiles[1], PhaseShape(0.02, -0.001, 0.03))
    _, _, analysis = _analyse(embedder, source, scan)
    assert sorted(p.reference_id for p in analysis.phases) == [0, 1]
    assert all(abs(p.shape.strain) < 0.005 for p in analysis.phases)


def test_the_broad_part_is_the_hump_without_the_peaks() -> None:
    x = MODEL_GRID.two_theta_deg
    hump = 0.5 * np.exp(-0.5 * ((x - 25.0) / 5.0) ** 2)
    peaks = sum(np.exp(-0.5 * ((x - c) / 0.05) ** 2) for c in (20.0, 26.6, 50.1))
    broad = broad_part(hump + peaks)
    inside = (x > 15) & (x < 35)
    assert np.abs(broad - hump)[inside].max() < 0.02  # the hump, under the peaks too
    assert (hump + peaks - broad)[np.abs(x - 26.6) < 0.01].min() > 0.95  # peaks left whole


def test_a_hump_under_the_peaks_is_set_aside_and_a_hump_alone_is_kept(setting) -> None:
    """Rutile on a broad hump (amorphous content): the hump is set aside, the
    phase found and the answer says so; a scan that is nearly all hump is
    analysed as it is (its hump is its signal)."""
    embedder, source, _, _ = setting
    x = MODEL_GRID.two_theta_deg
    rutile = transformed(source.profiles(np.array([0]))[0], PhaseShape(0.02, 0.001))
    hump = 0.06 * np.exp(-4 * np.log(2) * ((x - 35.0) / 10.0) ** 2)
    share = hump.sum() / (rutile + hump).sum()
    assert SERVED.hump_share < share < SERVED.hump_share_max
    query, ranking, analysis = _analyse(embedder, source, rutile + hump)
    assert [p.reference_id for p in analysis.phases] == [0]
    assert analysis.hump_share == pytest.approx(share, abs=0.05)
    assert np.abs(analysis.intensity - rutile / (rutile + hump).max()).max() < 0.05
    notes = answer(query, ranking, analysis, source, 5).notes
    assert any(note.startswith("a broad hump holding") for note in notes)
    *_, alone = _analyse(embedder, source, hump)
    assert alone.hump_share == 0.0
    np.testing.assert_allclose(alone.intensity, hump / hump.max(), atol=1e-6)


def test_noise_level_reads_the_noise_not_the_peaks() -> None:
    rng = np.random.default_rng(0)
    peaks = np.exp(-0.5 * ((np.arange(4251) - np.arange(200, 4000, 300)[:, None]) / 3.0) ** 2).sum(
        0
    )
    assert noise_level(peaks + rng.normal(0.0, 0.01, 4251), EVERYWHERE) == pytest.approx(
        0.01, rel=0.2
    )


def test_the_fitted_region_leaves_out_the_ends_of_the_coverage() -> None:
    covered = np.zeros(MODEL_GRID.n_points, dtype=bool)
    covered[1000:2000] = True
    inner = fitted_region(covered, 1.0)  # 50 grid steps of 0.02°
    assert np.flatnonzero(inner)[[0, -1]].tolist() == [1050, 1949]
    assert fitted_region(covered, 0.0).sum() == 1000
    short = np.zeros_like(covered)
    short[1000:1150] = True  # the margins would leave a third of it: all kept
    assert fitted_region(short, 1.0).sum() == 150


def _identify_shipped(scan, tmp_path: Path, options: IdentifyOptions | None = None):
    """``scan`` answered as served: shipped model, calibration and a copy of the shipped library."""
    for name in ("library.sqlite", "library.sqlite-wal", "library.sqlite-shm"):
        if (MODEL_STORE / name).exists():
            shutil.copyfile(MODEL_STORE / name, tmp_path / name)
    embedder = Embedder.load(SHIPPED_MODEL, device="cpu")
    calibration = Calibration.load(MODEL_STORE / "calibration.json")
    with Library.open(tmp_path / "library.sqlite", embedder) as library:
        return identify_pattern(
            scan, embedder, library, options or IdentifyOptions(), calibration=calibration
        )


def test_no_match_under_an_assumed_cu_tube_says_to_send_the_wavelength(
    patterns_dir: Path, tmp_path: Path
) -> None:
    """A real Co Kα scan exported as headerless .xy (Bruker D5000, powdR):
    read as the Cu Kα assumed, nothing matches, and the answer says why it
    may not; with its wavelength, quartz and plagioclase are found."""
    scan = read_pattern(patterns_dir / "bruker_d5000" / "xy" / "D5000_1.xy")
    assumed = _identify_shipped(scan, tmp_path)
    assert assumed.verdict == "no_match"
    assert any("states no wavelength" in note for note in assumed.notes)
    cobalt = _identify_shipped(scan, tmp_path, IdentifyOptions(wavelength=parse_wavelength("Co")))
    assert cobalt.verdict != "no_match"
    assert "Quartz" in [p.match.entry.info.name for p in cobalt.phases]
    assert not any("states no wavelength" in note for note in cobalt.notes)


def test_a_q_axis_export_is_identified_at_the_radiation_its_header_states(
    tmp_path: Path,
) -> None:
    """The same Co Kα scan integrated to q (pyFAI's text output): its header's
    wavelength converts it, so quartz is found with nothing sent; a wavelength
    sent with it would misread a q axis, so it is not used, and the answer
    says so."""
    scan = read_pattern(FILES_DIR / "d5000_1_pyfai_q.dat")
    stated = _identify_shipped(scan, tmp_path)
    assert stated.verdict != "no_match"
    assert "Quartz" in [p.match.entry.info.name for p in stated.phases]
    sent = _identify_shipped(scan, tmp_path, IdentifyOptions(wavelength=parse_wavelength("Cu")))
    assert [p.match.entry.id for p in sent.phases] == [p.match.entry.id for p in stated.phases]
    assert sent.query.wavelength_origin == "file"
    assert any("the wavelength sent was not used" in w for w in sent.query.warnings)


def test_a_granite_soils_two_feldspars_are_both_found_lined_up_with_its_quartz(
    patterns_dir: Path, tmp_path: Path
) -> None:
    """The real powdR granite soil scan: quartz, then a K-feldspar and a
    plagioclase whose peaks crowd 21–31°. Free to widen, each feldspar in
    turn settled broadened ~0.3°, strained 1–2% and shifted away from the
    quartz, smeared over both feldspars' peaks, and one plagioclase stood in
    for both (Rwp 0.16). Refined from sharp peaks, each fits better where
    its own peaks are, at the quartz's shift."""
    result = _identify_shipped(
        read_pattern(patterns_dir / "soils_afsis" / "soils_granite.csv"), tmp_path
    )
    names = [p.match.entry.info.name for p in result.phases]
    assert sorted(names) == ["K-feldspar", "Plagioclase", "Quartz"]
    shifts = [p.shape.shift_deg for p in result.phases]
    assert max(shifts) - min(shifts) < 0.05
    assert all(p.shape.broadening_deg <= SERVED.sharp_broadening_deg for p in result.phases)
    assert result.fit is not None and result.fit.rwp < 0.1
    # RockJock's measured feldspars beside a calculated quartz: two RIR scales.
    (scales,) = [note for note in result.notes if "two scales" in note]
    assert "measured (K-feldspar, Plagioclase)" in scales and "structures (Quartz)" in scales


def test_after_a_swap_the_search_goes_on_for_what_the_phase_replaced_explained(
    patterns_dir: Path, tmp_path: Path
) -> None:
    """The real powdR limestone soil scan: a trioctahedral mica was found
    first (its 003 at 3.33 Å on quartz's strongest peak), and the swap step
    replaced it by quartz after the search had ended, leaving the clay's
    peaks (10 Å at 8.8°, the 19.8° and 35° bands) unexplained (Rwp 0.14).
    Searched again after the swap, the illite is found."""
    scan = read_pattern(patterns_dir / "soils_afsis" / "soils_limestone.csv")
    result = _identify_shipped(scan, tmp_path)
    names = [p.match.entry.info.name for p in result.phases]
    assert {"Quartz", "K-feldspar", "Illite"} <= set(names)
    assert result.fit is not None and result.fit.rwp < 0.1


def _cut(path: Path, lo: float, hi: float):
    """The real scan at ``path`` cut to ``lo``–``hi``° 2θ."""
    scan = read_pattern(path)
    keep = (scan.two_theta_deg >= lo) & (scan.two_theta_deg <= hi)
    return make_pattern(scan.two_theta_deg[keep], scan.intensity[keep])


def test_a_scan_whose_range_cuts_its_strongest_peaks_still_gets_its_phase(
    patterns_dir: Path, tmp_path: Path
) -> None:
    """The real AutoAnalyzer anatase scan cut to 25.95–62.63°: its strongest
    reflection (101, 25.3°) and 204 (62.7°) stand just outside. Background
    removal pins both ends to zero where their tails are, and fitted over the
    whole range every candidate's shift ran to its bound (no phase, no_match);
    without the ends anatase is the one phase."""
    result = _identify_shipped(
        _cut(patterns_dir / "xrd_autoanalyzer" / "TiO2.xy", 25.95, 62.63), tmp_path
    )
    assert [p.match.entry.info.name for p in result.phases] == ["Anatase"]
    assert result.verdict == "match"
    assert not any("two scales" in note for note in result.notes)
    assert abs(result.phases[0].shape.shift_deg) < 0.2


def test_a_phase_whose_peaks_all_sit_on_a_later_ones_is_pruned(
    patterns_dir: Path, tmp_path: Path
) -> None:
    """The real AutoAnalyzer LiMnO₂ scan cut to 26.6–57.2°: ruthenium was
    found first (its three reflections, strained, land on the two strongest
    LiMnO₂ peaks), and beside LiMnO₂ it still took 13% of the intensity off
    the heights the LiMnO₂ reference misses; none of its peaks is its own."""
    result = _identify_shipped(
        _cut(patterns_dir / "xrd_autoanalyzer" / "LiMnO2.xy", 26.6, 57.2), tmp_path
    )
    assert [p.match.entry.info.formula for p in result.phases] == ["LiMnO2"]
    assert result.verdict == "match"


def test_the_fit_is_assessed_where_a_measured_reference_has_data(patterns_dir, tmp_path) -> None:
    """A real anatase scan to 90°, answered with RockJock's measured anatase
    (data to 65° only): its peaks above 65° are not unexplained, and a note
    says where the fit was assessed."""
    scan = read_pattern(patterns_dir / "xrd_autoanalyzer" / "TiO2.xy")
    assert scan.two_theta_deg.max() > 85
    result = _identify_shipped(scan, tmp_path)
    (phase,) = result.phases
    assert phase.match.entry.info.name == "Anatase" and phase.match.entry.kind.value == "measured"
    assert any(n.startswith("the fit is assessed over 10.0–65.0° 2θ") for n in result.notes)
    assert result.fit is not None and result.fit.unexplained_peaks
    assert max(p.two_theta_deg for p in result.fit.unexplained_peaks) <= 65.0


def test_a_single_phase_is_one_phase(setting) -> None:
    embedder, source, _, _ = setting
    profiles = source.profiles(np.arange(8))
    rng = np.random.default_rng(3)
    for index in (0, 2, 6):
        scan = transformed(profiles[index], PhaseShape(0.05, 0.003, 0.03))
        scan = scan + rng.normal(0.0, 0.003, scan.size)
        _, _, analysis = _analyse(embedder, source, np.clip(scan, 0, None))
        assert [p.reference_id for p in analysis.phases] == [index]
        assert analysis.phases[0].explained > 0.75  # the rest is clipped counting noise


def _swap_fluorite_and_copper(source, profiles: np.ndarray, found: int, ranked_ids):
    """The swap step on a fluorite + copper scan (``profiles`` rows 6 and 3)
    whose fluorite was found as ``found``: (fit before, fit after, phases
    kept, look-alikes)."""
    rng = np.random.default_rng(5)
    scan = 0.6 * transformed(profiles[6], PhaseShape(0.02, 0.002, 0.03))
    scan += 0.4 * transformed(profiles[3], PhaseShape(0.02, -0.001, 0.03))
    scan = np.clip(scan + rng.normal(0.0, 0.002, scan.size), 0.0, None)
    ids = [found, 3]
    fit = phases._refined(scan, EVERYWHERE, source, ids, [PhaseShape(0.02)] * 2, tensors=True)
    evidence = phases.PhaseEvidence(0.5, 0.5, 100.0, 1.0, 0.9, 0.9)
    ranked = [RankedReference(i, 0.9, 0.9, 2.7) for i in ranked_ids]
    new_fit, kept, lookalikes = phases._swapped(
        scan, EVERYWHERE, noise_level(scan, EVERYWHERE), source, fit,
        [(found, evidence, 0), (3, evidence, 1)], ranked, SERVED,
    )  # fmt: skip
    return fit, new_fit, kept, lookalikes


@pytest.mark.parametrize(("found", "swapped"), [(1, 6), (6, 6)])
def test_a_look_alike_found_first_gives_way_to_the_phase_that_fits(setting, found, swapped) -> None:
    """Fluorite (0.6% larger than silicon, with its own weak reflections) and
    copper: silicon taken for the fluorite is replaced once the fit is done;
    the fluorite, found right, stays."""
    _, source, _, _ = setting
    profiles = source.profiles(np.arange(8))
    fit, new_fit, kept, _ = _swap_fluorite_and_copper(source, profiles, found, (1, 3, 6, 7))
    assert [k[0] for k in kept] == [swapped, 3]
    assert new_fit.misfit <= fit.misfit
    if found != swapped:
        assert new_fit.misfit < 0.9 * fit.misfit
        assert kept[0][2] == 0  # the round it was found in stays


def test_of_the_look_alikes_that_beat_a_phase_the_one_least_strained_replaces_it(setting) -> None:
    """Silicon taken for the fluorite of a fluorite + copper scan: a stand-in
    ranked first (fluorite's pattern with a 3% larger cell, another material)
    and the fluorite both fit far better in its place, the stand-in only
    strained by −2.9%. The fluorite replaces the silicon, although its misfit
    is not far below the stand-in's."""
    _, base, sticks, _ = setting
    profiles = base.profiles(np.arange(8))
    wide = simulate(
        Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(5.4626 * 1.03), ["Ca", "F"], [[0, 0, 0], [0.25, 0.25, 0.25]]
        )
    )[0]
    labels = ["rutile", "silicon", "halite", "copper", "iron", "tungsten", "fluorite", "aluminium"]
    source = ArraySource(
        np.concatenate([profiles, model_input([reference_input(wide)])[:, 0]]),
        np.zeros((9, 4), dtype=np.float32),  # the swaps compare profiles alone
        [*sticks, wide],
        None,
        [*labels, "stand-in"],
    )
    fit, new_fit, kept, lookalikes = _swap_fluorite_and_copper(source, profiles, 1, (1, 3, 8, 6, 7))
    assert [k[0] for k in kept] == [6, 3]
    assert abs(new_fit.shapes[0].strain) < 0.005
    assert new_fit.misfit < 0.5 * fit.misfit
    # The stand-in fits about as well, strained: listed as the fluorite's look-alike.
    assert [a.reference_id for a in lookalikes[0]] == [8]
    # Without the fluorite among the candidates, the stand-in fits far better
    # than the silicon but only strained by 2.9%, which a structure in a
    # mixture is not (the analysis would drop it, and the phase with it):
    # listed, it does not replace the silicon.
    _, _, kept, lookalikes = _swap_fluorite_and_copper(source, profiles, 1, (1, 3, 8, 7))
    assert [k[0] for k in kept] == [1, 3]
    assert [a.reference_id for a in lookalikes[0]] == [8]


def test_look_alikes_are_lined_up_where_a_phase_stands_not_with_its_tensor(setting) -> None:
    """Rutile fitted with an uneven strain tensor: its peaks spread from any
    isotropic reading, so that as fitted it looks unlike its own reference;
    at its shift and isotropic strain it is that reference, and the strain
    to start a look-alike from is the fitted one."""
    _, source, _, _ = setting
    (basis,) = source.strain_bases(np.array([0]))
    shape = PhaseShape(0.05, 0.002, 0.03, tensor=(0.02, -0.015, 0.001, 0.012, 0.0, 0.0))
    as_fitted = transformed(source.profiles(np.array([0]))[0], shape, basis)
    candidates = StoredReferences(source, np.array([0, 3]))
    unlike = isotropic_fit(as_fitted, EVERYWHERE, candidates, NO_PRIOR)
    lined_up = phases._lined_up(source, EVERYWHERE, 0, shape, candidates)
    assert unlike.correlation[0] < SERVED.lookalike_correlation < lined_up.correlation[0]
    assert lined_up.correlation[1] < SERVED.lookalike_correlation  # copper is not rutile
    assert lined_up.strain[0] == pytest.approx(0.002, abs=SERVED.strain_step)


def test_a_look_alike_the_scan_cannot_tell_from_a_phase_is_listed_with_it(setting) -> None:
    """Another material with fluorite's very pattern (row 8) fits the
    fluorite + copper scan exactly as well in fluorite's place: it is not
    swapped in, but listed as fluorite's look-alike, misfit ratio 1. Another
    source's fluorite (row 9) is the phase's own material, not a look-alike;
    copper has none (aluminium is 12% off)."""
    _, base, sticks, _ = setting
    profiles = base.profiles(np.arange(8))
    rows = [*range(8), 6, 6]
    labels = ["rutile", "silicon", "halite", "copper", "iron", "tungsten", "fluorite", "aluminium"]
    source = ArraySource(
        profiles[rows],
        np.zeros((len(rows), 4), dtype=np.float32),  # the swaps compare profiles alone
        [sticks[i] for i in rows],
        None,
        [*labels, "fluorite twin", "fluorite"],
    )
    _, _, kept, lookalikes = _swap_fluorite_and_copper(source, profiles, 6, (9, 8, 3, 7))
    assert [k[0] for k in kept] == [6, 3]
    (twin,) = lookalikes[0]
    assert twin.reference_id == 8 and twin.misfit_ratio == pytest.approx(1.0, abs=0.01)
    assert lookalikes[1] == ()


def test_a_look_alike_material_is_tried_as_its_reference_that_fits_the_scan(setting) -> None:
    """Silicon taken for the fluorite of a fluorite + copper scan, and
    fluorite's own material ranked first as a broad reference (another
    source's, broadened by σ 0.12° where the scan's by 0.03°), then as one
    that fits: the swap tries fluorite as the reference that fits the phase's
    part of the scan best, not as the first ranked, and takes it."""
    _, base, sticks, _ = setting
    profiles = base.profiles(np.arange(8))
    broad = transformed(profiles[6], PhaseShape(0.0, 0.0, 0.12))
    labels = ["rutile", "silicon", "halite", "copper", "iron", "tungsten", "fluorite", "aluminium"]
    source = ArraySource(
        np.concatenate([profiles, broad[None] / broad.max(), profiles[6:7]]).astype(np.float32),
        np.zeros((10, 4), dtype=np.float32),  # the swaps compare profiles alone
        [*sticks, sticks[6], sticks[6]],
        None,
        [*labels, "fluorite", "fluorite"],
    )
    fit, new_fit, kept, _ = _swap_fluorite_and_copper(source, profiles, 1, (1, 3, 8, 9, 7))
    assert [k[0] for k in kept] == [9, 3]
    assert new_fit.misfit < 0.5 * fit.misfit


def test_the_look_alikes_tried_are_those_that_fit_the_phase_part_of_the_scan(setting) -> None:
    """Silicon taken for the fluorite of a fluorite + copper scan, and five
    other materials with fluorite's pattern but cells 2.5–3.4% larger ranked
    before fluorite: more look-alikes than the swap tries. Fluorite fits the
    phase's part of the scan best, so it is among those tried, and replaces
    the silicon."""
    _, base, sticks, _ = setting
    profiles = base.profiles(np.arange(8))
    wide = [
        simulate(
            Structure.from_spacegroup(
                "Fm-3m", Lattice.cubic(5.4626 * f), ["Ca", "F"], [[0, 0, 0], [0.25, 0.25, 0.25]]
            )
        )[0]
        for f in (1.025, 1.027, 1.03, 1.032, 1.034)
    ]
    labels = ["rutile", "silicon", "halite", "copper", "iron", "tungsten", "fluorite", "aluminium"]
    source = ArraySource(
        np.concatenate([profiles, model_input([reference_input(w) for w in wide])[:, 0]]),
        np.zeros((13, 4), dtype=np.float32),  # the swaps compare profiles alone
        [*sticks, *wide],
        None,
        [*labels, *(f"stand-in {k}" for k in range(5))],
    )
    assert SERVED.phase_swap_trials < 6
    fit, new_fit, kept, _ = _swap_fluorite_and_copper(
        source, profiles, 1, (1, 3, 8, 9, 10, 11, 12, 6, 7)
    )
    assert [k[0] for k in kept] == [6, 3]
    assert new_fit.misfit < 0.5 * fit.misfit


def test_a_mixture_gives_each_phase_once_with_its_amount(setting) -> None:
    embedder, source, _, _ = setting
    profiles = source.profiles(np.arange(8))
    scan = 0.6 * transformed(profiles[0], PhaseShape(0.02, 0.002)) + 0.4 * transformed(
        profiles[6], PhaseShape(0.02, -0.001)
    )
    query, ranking, analysis = _analyse(embedder, source, scan)
    assert sorted(p.reference_id for p in analysis.phases) == [0, 6]
    scales = {p.reference_id: p.scale for p in analysis.phases}
    assert scales[0] / scales[6] == pytest.approx(1.5 * scan.max() / scan.max(), rel=0.05)
    result = answer(query, ranking, analysis, source, 5)
    assert result.verdict == "mixture" and result.rwp is not None and result.rwp < 0.05


def test_the_phases_of_an_ag_scan_share_the_zero_offset_of_its_own_two_theta(setting) -> None:
    """Ag Kα: a zero offset of 0.1° of the scan's 2θ, which the model grid
    shows 2.8–3.8 times larger and uneven, is fitted as the one offset both
    phases share, and the analysis says whose 2θ its shifts are of."""
    embedder, source, _, _ = setting
    silver = parse_wavelength("Ag")
    measured = as_measured(source, silver)
    ratio = silver.kalpha1_angstrom / MODEL_GRID.wavelength_angstrom
    profiles = measured.profiles(np.array([0, 6]))
    scan = 0.6 * transformed(profiles[0], PhaseShape(0.1, 0.002), wavelength_ratio=ratio)
    scan += 0.4 * transformed(profiles[1], PhaseShape(0.1, -0.001), wavelength_ratio=ratio)
    reach = ratio * np.sin(np.radians(MODEL_GRID.two_theta_deg) / 2.0) < 0.99
    _, _, analysis = _analyse(embedder, measured, scan, reach)
    assert sorted(p.reference_id for p in analysis.phases) == [0, 6]
    assert [p.shape.shift_deg for p in analysis.phases] == [pytest.approx(0.1, abs=0.01)] * 2
    assert analysis.wavelength_ratio == ratio


@pytest.mark.parametrize(
    "bent_shape",
    [{"shift_deg": 0.45}, {"strain": -0.024}],
    ids=["shift at its bound", "cell strained 2.4%"],
)
def test_a_later_phase_refined_to_its_bound_is_dropped_and_look_alikes_stay(
    setting, bent_shape
) -> None:
    """A phase after the strongest whose last refinement took its shift to
    the bound, or, calculated, strained its cell by percents (a look-alike
    standing in for a material the library lacks), is dropped (what it
    fitted goes back to the residual); the phases kept keep the look-alikes
    listed for them."""
    embedder, source, sticks, _ = setting
    profiles = source.profiles(np.arange(8))
    scan = 0.6 * transformed(profiles[0], PhaseShape(0.02, 0.002)) + 0.4 * transformed(
        profiles[6], PhaseShape(0.02, -0.001)
    )
    query, ranking, analysis = _analyse(embedder, source, scan)
    assert len(analysis.phases) == 2 and phases._within_bounds(analysis, source, SERVED) is analysis
    strong, weak = analysis.phases
    listed = (phases.LookAlike(reference_id=3, misfit_ratio=1.1),)
    bent = replace(
        analysis,
        phases=(
            replace(strong, lookalikes=listed),
            replace(weak, shape=replace(weak.shape, **bent_shape)),
        ),
    )
    kept = phases._within_bounds(bent, source, SERVED)
    assert [p.reference_id for p in kept.phases] == [strong.reference_id]
    assert kept.phases[0].lookalikes == listed
    assert kept.fit is not None and kept.fit.misfit > analysis.fit.misfit
    # The last phase left stays whatever its shape: the verdict decides no_match.
    first_bent = replace(bent, phases=(replace(strong, shape=replace(strong.shape, strain=0.04)),))
    assert phases._within_bounds(first_bent, source, SERVED) is first_bent
    # The strongest at its shift's bound stays; strained by percents beside
    # another phase, it goes (a look-alike standing in for what the library lacks).
    first_shifted = replace(
        analysis, phases=(replace(strong, shape=replace(strong.shape, shift_deg=0.45)), weak)
    )
    assert phases._within_bounds(first_shifted, source, SERVED) is first_shifted
    first_strained = replace(
        analysis, phases=(replace(strong, shape=replace(strong.shape, strain=-0.024)), weak)
    )
    kept = phases._within_bounds(first_strained, source, SERVED)
    assert [p.reference_id for p in kept.phases] == [weak.reference_id]
    assert kept.strained_out == ((strong.reference_id, -0.024),)
    # The answer says what was set aside, and why.
    notes = [n for n in answer(query, ranking, kept, source, 5).notes if "not reported" in n]
    (name,) = [f.name for f in source.facts(np.array([strong.reference_id]))]
    assert notes == [
        f"not reported: {name} fits only with its cell strained by -2.4%: an isostructural "
        "material the library lacks may be what the sample holds (the peaks it would explain "
        "are listed as unexplained)"
    ]
    # Strained by less than the bound, the later phase stays; so does a
    # measured reference strained by more (its strain is no cell's).
    slightly = replace(
        analysis, phases=(strong, replace(weak, shape=replace(weak.shape, strain=-0.015)))
    )
    assert phases._within_bounds(slightly, source, SERVED) is slightly
    measured = ArraySource(
        source.profiles(np.arange(8)),
        np.zeros((8, 4), dtype=np.float32),
        [s if i != weak.reference_id else None for i, s in enumerate(sticks)],
    )
    strained = replace(
        analysis, phases=(strong, replace(weak, shape=replace(weak.shape, strain=-0.024)))
    )
    assert phases._within_bounds(strained, measured, SERVED) is strained


@pytest.mark.parametrize(("strain", "noted"), [(0.004, False), (0.028, True)])
def test_a_phase_fitted_only_with_a_strained_cell_gets_a_note(setting, strain, noted) -> None:
    """Halite strained 0.4% (a lab scan) is plain halite; strained 2.8% it is
    still fitted as halite, with a note that it may stand for an isostructural
    material the library lacks."""
    embedder, source, _, _ = setting
    scan = transformed(source.profiles(np.array([2]))[0], PhaseShape(0.02, strain, 0.03))
    query, ranking, analysis = _analyse(embedder, source, scan)
    assert [p.reference_id for p in analysis.phases] == [2]
    assert analysis.phases[0].shape.strain == pytest.approx(strain, abs=0.002)
    notes = [n for n in answer(query, ranking, analysis, source, 5).notes if "strained" in n]
    assert len(notes) == int(noted), notes
    if noted:
        assert notes[0].startswith("halite fits only with its cell strained by +2.8%")


def test_a_cell_strained_unevenly_is_refined_with_its_tensor_before_it_is_refused() -> None:
    """Zincite with its a axis 0.8% shorter and its c axis 0.6% longer:
    strained evenly, its peaks stay off (the scan lacks its strongest peaks
    where they are drawn), so it would be refused; a candidate clearing the
    gain that fails so is refined again with its strain as a tensor, and
    passes, its peaks strained by what the scan's were. That fit is not kept
    where it strains a peak by the bound or more; one that does not clear
    the gain (copper) is not refined again."""
    zincite = Structure.from_spacegroup(
        "P6_3mc",
        Lattice.hexagonal(3.2498, 5.2066),
        ["Zn", "O"],
        [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.3819]],
    )
    sticks = [simulate(s)[0] for s in (zincite, _cubic("Cu", 3.615))]
    inputs = model_input([reference_input(s) for s in sticks])
    source = ArraySource(inputs[:, 0], np.zeros((2, 4), dtype=np.float32), sticks)
    (basis,) = source.strain_bases(np.array([0]))
    tensor = (-0.008, -0.008, 0.006, 0.0, 0.0, 0.0)
    scan = transformed(source.profiles(np.array([0]))[0], PhaseShape(0.0, 0.0, 0.03, tensor), basis)
    scan = np.clip(scan + np.random.default_rng(1).normal(0.0, 0.003, scan.size), 0.0, None)
    noise = noise_level(scan, EVERYWHERE)

    def trial(reference_id: int) -> phases._Trial:
        return phases._Trial(RankedReference(reference_id, 0.9, 0.9, 2.7), PhaseShape(0.0))

    def fitted(reference_id: int, config: RankingConfig = SERVED):
        return phases._trial_fit(
            scan, EVERYWHERE, noise, source, None, [], trial(reference_id), config
        )

    evenly = phases._refined(scan, EVERYWHERE, source, [0], [PhaseShape(0.0)])
    evidence = phases._evidence(scan, EVERYWHERE, noise, None, evenly, trial(0).reference, SERVED)
    assert evidence.gain >= SERVED.min_phase_gain
    assert not phases._passes(evidence, evenly.shapes[-1], SERVED)

    fit, evidence = fitted(0)
    assert fit.shapes[-1].tensor is not None
    assert phases._passes(evidence, fit.shapes[-1], SERVED)
    assert evidence.gain > 0.95 and evidence.peak_presence == 1.0
    assert largest_strain(basis, fit.shapes[-1].tensor) == pytest.approx(0.008, abs=0.001)

    fit, evidence = fitted(0, replace(SERVED, phase_strain_max=0.005))
    assert fit.shapes[-1].tensor is None and not phases._passes(evidence, fit.shapes[-1], SERVED)

    fit, evidence = fitted(1)
    assert evidence.gain < SERVED.min_phase_gain and fit.shapes[-1].tensor is None


def _by_explained(threshold: float) -> Calibration:
    """A calibration whose phase confidence is high above ``threshold`` of the
    intensity explained and low below it; candidates and matches neutral."""

    def model(features: tuple[str, ...], weights: list[float], bias: float) -> LogisticModel:
        n = len(features)
        return LogisticModel(features, (0.0,) * n, (1.0,) * n, tuple(weights), bias)

    explained = [40.0 if f == "explained" else 0.0 for f in PHASE_FEATURES]
    neutral = [0.0] * len(CANDIDATE_FEATURES)
    return Calibration(
        model_version="test",
        candidate=model(CANDIDATE_FEATURES, neutral, 0.0),
        phase=model(PHASE_FEATURES, explained, -40.0 * threshold),
        match=model(MATCH_FEATURES, [0.0] * len(MATCH_FEATURES), 0.0),
        no_match_below=0.0,
        match_without_phases=model(CANDIDATE_FEATURES, neutral, 0.0),
        no_match_below_without_phases=0.0,
    )


def test_unlikely_phases_after_the_strongest_are_not_reported(setting) -> None:
    embedder, source, _, _ = setting
    profiles = source.profiles(np.arange(8))
    scan = 0.7 * transformed(profiles[0], PhaseShape(0.02, 0.002)) + 0.3 * transformed(
        profiles[6], PhaseShape(0.02, -0.001)
    )
    query, ranking, analysis = _analyse(embedder, source, scan)
    strongest, weaker = analysis.phases
    between = (strongest.explained + weaker.explained) / 2

    result = answer(query, ranking, analysis, source, 5, _by_explained(between))
    assert [p.found.reference_id for p in result.phases] == [strongest.reference_id]
    assert result.verdict == "match"
    assert any("not reported" in note and "fluorite" in note for note in result.notes)
    assert result.analysis is not None and len(result.analysis.phases) == 1

    # Below the threshold too, the strongest stays: the match model decides no_match.
    result = answer(query, ranking, analysis, source, 5, _by_explained(2.0))
    assert [p.found.reference_id for p in result.phases] == [strongest.reference_id]
    # Both credible: both reported.
    result = answer(query, ranking, analysis, source, 5, _by_explained(-1.0))
    assert len(result.phases) == 2 and result.verdict == "mixture"


def test_the_verdict_reads_the_strongest_phase_and_without_phases_the_ranking_alone(
    setting,
) -> None:
    embedder, source, _, _ = setting
    profiles = source.profiles(np.arange(8))
    query, ranking, analysis = _analyse(embedder, source, transformed(profiles[0], PhaseShape()))
    (phase,) = analysis.phases
    presence = phase.evidence.peak_presence

    def calibration(threshold: float, flat_bias: float) -> Calibration:
        weights = [40.0 if f == "strongest_phase_peak_presence" else 0.0 for f in MATCH_FEATURES]
        n, m = len(MATCH_FEATURES), len(CANDIDATE_FEATURES)
        return replace(
            _by_explained(-1.0),
            match=LogisticModel(
                MATCH_FEATURES, (0.0,) * n, (1.0,) * n, tuple(weights), -40 * threshold
            ),
            no_match_below=0.5,
            match_without_phases=LogisticModel(
                CANDIDATE_FEATURES, (0.0,) * m, (1.0,) * m, (0.0,) * m, flat_bias
            ),
            no_match_below_without_phases=0.5,
        )

    assert (
        answer(query, ranking, analysis, source, 5, calibration(presence - 0.1, -5)).verdict
        == "match"
    )
    assert (
        answer(query, ranking, analysis, source, 5, calibration(presence + 0.1, 5)).verdict
        == "no_match"
    )
    # phases=false: the ranking's own model decides.
    assert (
        answer(query, ranking, None, source, 5, calibration(presence + 0.1, 5)).verdict == "match"
    )
    assert (
        answer(query, ranking, None, source, 5, calibration(presence - 0.1, -5)).verdict
        == "no_match"
    )


def test_an_unexplained_peak_on_a_phase_s_own_peak_names_that_phase() -> None:
    """A residual peak where a phase's fitted profile stands at least as high
    is that peak's misfit (a flank its width does not follow, a height its
    reference gets wrong), not a phase missing: it names the phase."""
    grid = MODEL_GRID.two_theta_deg

    def peak(at_deg: float, height: float, sigma_deg: float = 0.05) -> np.ndarray:
        return height * np.exp(-0.5 * ((grid - at_deg) / sigma_deg) ** 2)

    left = peak(26.5, 0.06) + peak(32.7, 0.05)
    components = np.stack([peak(26.64, 1.0, 0.1), peak(40.0, 0.5)])
    flank, alone = _unexplained_peaks(left, 0.001, components)
    assert flank.two_theta_deg == pytest.approx(26.5, abs=0.03) and flank.on_phase == 0
    assert alone.two_theta_deg == pytest.approx(32.7, abs=0.03) and alone.on_phase is None
    # No phase found: nothing to sit on.
    assert all(
        p.on_phase is None for p in _unexplained_peaks(left, 0.001, np.zeros((0, grid.size)))
    )


def test_a_phase_and_its_material_carry_one_probability(setting) -> None:
    """The phases' model says how likely a phase is present if the scan's
    material is in the library at all, the match model how likely that is: the
    phase carries the first, the answer entry of its material the product; the
    other entries keep the candidate model's probability."""
    embedder, source, _, _ = setting
    profiles = source.profiles(np.arange(8))
    query, ranking, analysis = _analyse(embedder, source, transformed(profiles[0], PhaseShape()))
    n = len(MATCH_FEATURES)
    in_library = 0.6
    calibration = replace(
        _by_explained(-1.0),
        match=LogisticModel(
            MATCH_FEATURES, (0.0,) * n, (1.0,) * n, (0.0,) * n, float(np.log(0.6 / 0.4))
        ),
        no_match_below=0.5,
    )
    result = answer(query, ranking, analysis, source, 5, calibration)
    (phase,) = result.phases
    row = np.array([phase_features(phase.found)])
    present = float(calibration.phase.probability(row)[0])
    assert phase.confidence == pytest.approx(present)
    assert result.confidence_of(phase.found.reference_id) == pytest.approx(in_library * present)
    others = [e for e in result.entries if e.lead.reference_id != phase.found.reference_id]
    assert others and all(e.confidence == pytest.approx(0.5) for e in others)
    assert result.verdict == "match"


def test_weight_percents_of_a_texture_free_simulated_mixture(setting) -> None:
    """Rutile, halite and fluorite weighed 50/30/20, simulated as a lab scan
    (counting noise, instrument and sample shifts, widths): the phases found
    and their weight percents by their calculated RIRs."""
    embedder, source, sticks, rirs = setting
    members = [0, 2, 6]
    rng = np.random.default_rng(11)
    cfg = replace(CPD_AUGMENTATION, kalpha2_probability=1.0)
    mixture = calculated_mixture(
        members,
        [sticks[i] for i in members],
        [rirs[i] for i in members],
        np.array([0.5, 0.3, 0.2]),
        rng,
        cfg,
    )
    view = mixture.view
    _, _, analysis = _analyse(embedder, source, view.intensity, view.mask)
    found = {p.reference_id: p for p in analysis.phases}
    assert sorted(found) == members
    percents = weight_percents(
        [str(i) for i in found],
        [p.scale for p in found.values()],
        [p.scale_sd for p in found.values()],
        [rirs[i] for i in found],
    ).percent
    measured = dict(zip(found, percents, strict=True))
    errors = [
        abs((measured[i] or 0.0) - w) for i, w in zip(members, (50.0, 30.0, 20.0), strict=True)
    ]
    assert np.mean(errors) < 3.0, measured
