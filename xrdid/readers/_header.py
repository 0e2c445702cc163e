"""What a column file's header states: the radiation (an X-ray wavelength,
or a Raman laser), and what its first column is.

Exports from integration software (pyFAI, GSAS-II, Dioptas) and many lab
programs write a header of ``key: value`` lines and a column line such as
``#  q_nm^-1  I``. Two things there change what the numbers mean:

- the radiation (``Wavelength: 1.5406e-10 m``, ``Anode: Co``,
  ``Energy: 30 keV``): a scan read at Cu Kα when it was measured with Co
  puts every d-spacing 16% off;
- the first column's quantity: 2θ in degrees, in radians, scattering vector
  q or d-spacing. q and d do not depend on the radiation, so they are
  converted to 2θ at the stated wavelength, or at Cu Kα1 when none is
  stated (any wavelength gives the same d-spacings).

Radiation is read conservatively: a number is taken only from a line whose
key names it, and one outside 0.1–3 Å after its unit is ignored with a
note. A stated wavelength equal to a lab anode's Kα1 (±0.0005 Å) is that
tube's Kα doublet, as such instruments measure; any other is monochromatic
(a synchrotron, or a monochromator), as a bare number in a request is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import InputError, PatternReadError
from xrdid.grid import d_to_two_theta
from xrdid.raman.spectrum import MAX_LASER_NM, NM_PER_CM, plausible_laser
from xrdid.readers._common import fmt, normalise_anode
from xrdid.readers._numbers import parse_float
from xrdid.wavelengths import ANODE_LINES_ANGSTROM, KALPHA2_RATIO, Wavelength, anode

__all__ = [
    "Axis",
    "axis_of",
    "conversion_note",
    "laser_nm",
    "mentions_laser",
    "radiation_of",
    "stated_laser",
    "stated_radiation",
    "to_two_theta",
]

# hc in keV·Å: λ = 12.398 / E.
_KEV_ANGSTROM = 12.398419843320026
# A stated wavelength this close to an anode's Kα1 is that tube's radiation;
# beside the anode's name, one this close (its Kα mean is 0.0013–0.004 Å up).
_ANODE_MATCH_ANGSTROM = 5e-4
_STATED_TUBE_ANGSTROM = 0.01
# Comment markers and spaces in front of a header line's key.
_LEAD = re.compile(r"^[\s#;!%*/]+")
# A number, its decimal mark a point or a comma ("1,5406" as European
# exports write it: read as 1 it would be a wavelength of 1 Å); a comma
# before any digit is a separator ("Laser,532").
_NUMBER = r"([+-]?(?:[0-9]+(?:[.,][0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?)"
# A wavelength; one numbered 1 or 2 ("lambda1", "Lam2" as GSAS-II writes) is a Kα line.
_WAVELENGTH = re.compile(
    r"(?i)^(?:x-?ray\s+|incident\s+)?(?:wave\s*length|lambda|lam|λ)(?![a-z])\s*([12](?![0-9.]))?"
    r"([^0-9+\-.]*)" + _NUMBER + r"(.*)$"
)
_KALPHA = re.compile(r"(?i)^k[-_ ]?(?:alpha|α|a)\s*([12])\b([^0-9+\-.]*)" + _NUMBER + r"(.*)$")
_ENERGY = re.compile(
    r"(?i)^(?:x-?ray\s+|beam\s+|photon\s+)?energy\b([^0-9+\-.]*)" + _NUMBER + r"(.*)$"
)
# The tube's element, alone or before its line ("Anode: Co", "Radiation: CuKa",
# HighScore's CSV "Anode material,Cu").
_ANODE = re.compile(
    r"(?i)^(?:anode|target|tube|radiation)(?:\s+(?:material|element|type))?\s*[:=,]?\s*['\"]?"
    r"([A-Za-z]{1,2})(?:\b|(?=\s*k[-_ ]?(?:alpha|α|a)?\d?\b))"
)
# "30 keV", "Energy (keV): 30", not "... eV" inside a word.
_ENERGY_UNIT = re.compile(r"(?i)(?<![a-z])k?ev\b")
_UNIT_NM = re.compile(r"(?i)(?<![a-z])nm\b")
_UNIT_PM = re.compile(r"(?i)(?<![a-z])pm\b")


def stated_radiation(header: Sequence[str], metadata: dict[str, str]) -> Wavelength | None:
    """The radiation a header states, or None. What was read, or ignored and
    why, goes into ``metadata``."""
    wavelength: float | None = None
    kalpha: dict[str, float] = {}
    energy: float | None = None
    tube: str | None = None
    for raw in header:
        line = _LEAD.sub("", raw).strip()
        key = re.split(r"[:=]", line, maxsplit=1)[0].lower()
        if "ratio" in key or "/" in key:
            continue  # "Kα2/Kα1 ratio: 0.5" states no wavelength
        if match := _KALPHA.match(line):
            value = _angstrom(match.group(3), match.group(2) + " " + match.group(4))
            if value is not None:
                kalpha.setdefault(match.group(1), value)
        elif match := _WAVELENGTH.match(line):
            value = _angstrom(match.group(3), match.group(2) + " " + match.group(4))
            if match.group(1) and value is not None:
                kalpha.setdefault(match.group(1), value)
            elif wavelength is None:
                wavelength = value
        elif match := _ENERGY.match(line):
            value = _decimal(match.group(2))
            unit = _ENERGY_UNIT.search(match.group(3)) or _ENERGY_UNIT.search(match.group(1))
            if value and value > 0 and energy is None and unit is not None:
                energy = _KEV_ANGSTROM / (value if unit.group(0).lower() == "kev" else value / 1e3)
        elif (match := _ANODE.match(line)) and tube is None:
            symbol = normalise_anode(match.group(1))
            tube = symbol if symbol in ANODE_LINES_ANGSTROM else None
    kalpha1 = kalpha.get("1", wavelength if wavelength is not None else energy)
    try:
        if kalpha1 is None:
            if tube is None:
                return None
            radiation = anode(tube)
        elif "2" in kalpha:
            radiation = Wavelength(kalpha1, kalpha["2"], KALPHA2_RATIO, tube)
        else:
            radiation = radiation_of(kalpha1, tube)
    except InputError as exc:
        metadata["wavelength_note"] = f"header wavelength ignored: {exc}"
        return None
    metadata["radiation"] = f"header: {radiation.label}"
    return radiation


def radiation_of(kalpha1: float, stated: str | None) -> Wavelength:
    """One stated wavelength as radiation: a lab anode's Kα1 (the number
    kept) is that tube's doublet, as is the stated anode's Kα mean; any
    other number is monochromatic."""
    for name, (line1, line2) in ANODE_LINES_ANGSTROM.items():
        if abs(line1 - kalpha1) <= _ANODE_MATCH_ANGSTROM and stated in (None, name):
            return Wavelength(kalpha1, line2, KALPHA2_RATIO, name)
    if (
        stated is not None
        and abs(ANODE_LINES_ANGSTROM[stated][0] - kalpha1) <= _STATED_TUBE_ANGSTROM
    ):
        return anode(stated)
    return Wavelength(kalpha1)


def _decimal(number: str) -> float | None:
    """A number :data:`_NUMBER` matched, its decimal comma read as a point."""
    return parse_float(number.replace(",", "."))


def _angstrom(number: str, unit_text: str) -> float | None:
    """A header's wavelength in Å from its number and the words around it:
    metres when it is that small (pyFAI writes 1.54e-10 m), nm or pm by
    their unit, Å otherwise."""
    value = _decimal(number)
    if value is None or value <= 0:
        return None
    if value < 1e-6:
        return value * 1e10
    if _UNIT_NM.search(unit_text):
        return value * 10.0
    if _UNIT_PM.search(unit_text):
        return value / 100.0
    return value


@dataclass(frozen=True)
class Axis:
    """What a file's first column holds."""

    quantity: str  # "2θ", "q" or "d"
    # The column's unit in 2θ's degrees, q's Å⁻¹ or d's Å.
    scale: float = 1.0
    label: str = "2θ (°)"


TWO_THETA_DEGREES = Axis("2θ")
# q, then its unit or nothing ("q_nm^-1", "Q(1/A)", "q (Å⁻¹)", "q"), not a word such as "Q-range".
_Q_NAME = re.compile(r"(?i)^q(?:[_\s(\[]|$)")
_PER_NM = re.compile(r"nm\^?-1|1/nm")
_PER_ANGSTROM = re.compile(r"a\^?-1|1/a\b|angstrom")
_D_NAME = re.compile(r"(?i)^d(?:[-_ ]?spacing)?(?![a-z*])")
# Radial axes of azimuthal integration that are no powder axis xrdid reads.
_NOT_RADIAL = re.compile(r"(?i)^(?:r_m|chi_|d\*2|log|arcsinh|qip|qoop|q[xyz]_|exit_angle)")


def axis_of(name: str | None, source: str | None) -> Axis:
    """The quantity of a first column named ``name`` (a column header, or
    the first word of the header's last line); 2θ in degrees when the name
    says nothing else."""
    if not name:
        return TWO_THETA_DEGREES
    token = name.strip()
    lowered = token.lower().replace("å", "a").replace("⁻¹", "^-1")
    if _NOT_RADIAL.match(lowered):
        raise PatternReadError(
            f"the first column is {token!r}, not 2θ, q or d-spacing; integrate the image "
            "to 2θ (or q) and export that",
            source=source,
            field="axis",
        )
    if lowered.startswith(("2th_rad", "2theta_rad", "tth_rad")):
        return Axis("2θ", math.degrees(1.0), "2θ (rad)")
    unit = lowered[1:]
    if _Q_NAME.match(lowered):
        if _PER_NM.search(unit):
            return Axis("q", 0.1, "q (nm⁻¹)")
        if _PER_ANGSTROM.search(unit):
            return Axis("q", 1.0, "q (Å⁻¹)")
        raise PatternReadError(
            f"the first column is q ({token!r}) with no unit it states: name it q_A^-1 or q_nm^-1, "
            "or export 2θ in degrees",
            source=source,
            field="axis",
        )
    if _D_NAME.match(lowered):
        return Axis("d", 10.0, "d (nm)") if "nm" in unit else Axis("d", 1.0, "d (Å)")
    return TWO_THETA_DEGREES


def to_two_theta(
    x: NDArray[np.float64], axis: Axis, wavelength_angstrom: float
) -> NDArray[np.float64]:
    """A q or d column as 2θ in degrees at ``wavelength_angstrom`` (through
    d-spacing, :func:`~xrdid.grid.d_to_two_theta`); NaN where none is: beyond
    that radiation's reach, or not a positive q or d."""
    scaled = x * axis.scale
    with np.errstate(divide="ignore"):
        d = 2.0 * math.pi / scaled if axis.quantity == "q" else scaled
    two_theta = d_to_two_theta(np.where(d > 0, d, np.nan), wavelength_angstrom)
    inside = (two_theta > 0) & (two_theta < 180.0)
    out: NDArray[np.float64] = np.where(inside, two_theta, np.nan)
    return out


def conversion_note(axis: Axis, wavelength: Wavelength, stated: bool, dropped: int) -> str:
    """What a reader tells the user about a q or d axis it converted."""
    at = f"{fmt(wavelength.kalpha1_angstrom)} Å" + (
        "" if stated else " (Cu Kα1: the file states no wavelength; any gives the same d-spacings)"
    )
    beyond = f"; {dropped} points beyond that radiation's reach left out" if dropped else ""
    return f"the first column is {axis.label}: converted to 2θ at {at}{beyond}"


# A Raman laser's field: a key naming the laser or excitation, not its power,
# time or optics ("Laser (nm)=532.17", "laser_wavelength;785.26",
# "Excitation wavelength 532 nm", JCAMP's "$LASER WAVELENGTH").
_LASER_KEY = re.compile(r"(?i)laser|excitation")
_NOT_THE_WAVELENGTH = re.compile(
    r"(?i)power|intensit|mw\b|%|time|spot|filter|shutter|attenuat|grating|objective|focus"
)
_KEY_AND_NUMBER = re.compile(r"^([^0-9]*?)" + _NUMBER)
_FIRST_NUMBER = re.compile(_NUMBER)


def mentions_laser(line: str) -> bool:
    """Whether a header line is about the laser or excitation."""
    return _LASER_KEY.search(line) is not None


def laser_nm(key: str, value: str) -> float | None:
    """The laser wavelength a header field states (a wavenumber converted),
    or None when the field is not one or its number is implausible."""
    if not _LASER_KEY.search(key) or _NOT_THE_WAVELENGTH.search(key):
        return None
    found = _FIRST_NUMBER.search(value)
    if found is None:
        return None
    number = _decimal(found.group(1))
    if number is None or number <= 0:
        return None
    return plausible_laser(NM_PER_CM / number if number > MAX_LASER_NM else number)


def stated_laser(header: Sequence[str]) -> float | None:
    """The Raman laser a text header states, or None."""
    for raw in header:
        line = _LEAD.sub("", raw).strip()
        found = _KEY_AND_NUMBER.match(line)
        if found is not None:
            laser = laser_nm(found.group(1), line[len(found.group(1)) :])
            if laser is not None:
                return laser
    return None
