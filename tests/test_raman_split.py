"""The Raman split and chemistry: classes, roles, elements, the shipped file."""

from __future__ import annotations

from collections import defaultdict

from indexer.raman_data import SPLIT_PATH
from xrdid.raman.chemistry import elements_of
from xrdid.raman.split import RamanSplit, Role, make_split, mineral_classes


def test_elements_of_rruff_formulas() -> None:
    assert elements_of("NaY^3+^(CO_3_)_2_&#183;6H_2_O") == ("H", "C", "O", "Na", "Y")
    assert elements_of("(Ca,Ce)_4_([box],Ca,Na)_3_Ti(Si_2_O_7_)_2_(H_2_O,OH,F)_4_") == (
        "H", "O", "F", "Na", "Si", "Ca", "Ti", "Ce",
    )  # fmt: skip
    assert elements_of("(Ce,REE)PO_4_") == ("O", "P", "Ce")  # REE is no symbol
    assert elements_of("&#946;-Ca_2_SiO_4_") == ("O", "Si", "Ca")


def test_names_sharing_a_sample_are_one_class() -> None:
    classes = mineral_classes(
        [("A", "R1"), ("B", "R1"), ("B", "R2"), ("C", "R3"), ("unknown", "R4")]
    )
    assert classes == {"A": "A / B", "B": "A / B", "C": "C"}


def test_split_roles(rruff_records) -> None:
    pairs = [(r.mineral, r.rruff_id) for r in rruff_records]
    split = make_split(pairs)
    assert make_split(pairs) == split  # the seed fixes it
    roles: dict[Role, set[str]] = defaultdict(set)
    library_samples: dict[str, set[str]] = defaultdict(set)
    for mineral, rruff_id in pairs:
        role = split.role(mineral, rruff_id)
        roles[role].add(rruff_id)
        if role is Role.LIBRARY:
            library_samples[split.classes[mineral]].add(rruff_id)
    # Every held-out sample's mineral keeps a sample in the library.
    for mineral, rruff_id in pairs:
        if split.role(mineral, rruff_id) in (Role.VALIDATION, Role.TEST):
            assert library_samples[split.classes[mineral]] - {rruff_id}
    # Unseen minerals have nothing in the library; validation and test share no mineral.
    unseen = set(split.unseen_validation) | set(split.unseen_test)
    assert not unseen & set(library_samples)
    val_minerals = {split.classes[m] for m, i in pairs if split.role(m, i) is Role.VALIDATION}
    test_minerals = {split.classes[m] for m, i in pairs if split.role(m, i) is Role.TEST}
    assert not val_minerals & test_minerals
    assert roles[Role.EXCLUDED] == {i for m, i in pairs if m == "unknown"}
    assert len(split.library_classes) == 1420
    # A sample's spectra (other lasers) share its role.
    assert not roles[Role.LIBRARY] & (roles[Role.VALIDATION] | roles[Role.TEST])


def test_shipped_split_is_the_seeded_one(rruff_records) -> None:
    shipped = RamanSplit.load(SPLIT_PATH)
    assert shipped == make_split(
        [(r.mineral, r.rruff_id) for r in rruff_records],
        shipped.seed,
        shipped.unseen_share,
        shipped.held_out_share,
    )
