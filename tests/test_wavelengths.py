import pytest

from xrdid.errors import InputError
from xrdid.wavelengths import CU_KALPHA, anode, parse_wavelength


def test_anode_symbols_give_doublets():
    cu = anode("Cu")
    assert cu.kalpha1_angstrom == pytest.approx(1.54056)
    assert cu.kalpha2_angstrom == pytest.approx(1.54439)
    assert cu.kalpha2_ratio == 0.5
    assert anode("mo").anode == "Mo"
    assert anode("CuKa1").kalpha2_angstrom is None


def test_numbers_are_monochromatic_angstrom():
    w = parse_wavelength("0,7093")
    assert w.kalpha1_angstrom == pytest.approx(0.7093)
    assert w.kalpha2_angstrom is None
    assert parse_wavelength("Co").anode == "Co"
    assert CU_KALPHA.anode == "Cu"


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("0.154", "nanometres"),
        ("154.06", "picometres"),
        ("Xx", "unknown anode"),
        ("500", "outside"),
    ],
)
def test_wrong_units_are_explained(text, phrase):
    with pytest.raises(InputError, match=phrase):
        parse_wavelength(text)
