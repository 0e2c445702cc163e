"""X-ray wavelengths: anode emission lines and parsing of user input.

Kα1/Kα2 values are those of pymatgen's ``WAVELENGTHS`` table (Bearden 1967,
as used by most diffractometer software); the Kα2/Kα1 intensity ratio of 0.5 is
the textbook value that PANalytical and Bruker software also default to.
"""

from __future__ import annotations

from dataclasses import dataclass

from xrdid.errors import InputError

# Kα2 / Kα1 intensity ratio of a lab tube (two 2p3/2 vs one 2p1/2 electron).
KALPHA2_RATIO = 0.5

# Physically sensible range for diffraction wavelengths in Å: below 0.1 Å is
# hard gamma, above 3 Å no lab or beamline does powder diffraction.
MIN_WAVELENGTH_ANGSTROM = 0.1
MAX_WAVELENGTH_ANGSTROM = 3.0


@dataclass(frozen=True)
class Wavelength:
    """The radiation of a measurement.

    ``kalpha2_angstrom`` is None for monochromatic radiation (Kα1 only, or a
    synchrotron); ``anode`` is None when only a number is known.
    """

    kalpha1_angstrom: float
    kalpha2_angstrom: float | None = None
    kalpha2_ratio: float = 0.0
    anode: str | None = None

    def __post_init__(self) -> None:
        for name in ("kalpha1_angstrom", "kalpha2_angstrom"):
            value = getattr(self, name)
            if value is None:
                continue
            if not (MIN_WAVELENGTH_ANGSTROM <= value <= MAX_WAVELENGTH_ANGSTROM):
                raise InputError(
                    f"{name}={value!r} Å is outside {MIN_WAVELENGTH_ANGSTROM}–"
                    f"{MAX_WAVELENGTH_ANGSTROM} Å; give the wavelength in Å "
                    "(e.g. 1.5406) or an anode symbol (Cu, Mo, Co, Cr, Fe, Ag)"
                )
        if not (0.0 <= self.kalpha2_ratio <= 1.0):
            raise InputError(f"Kα2/Kα1 ratio {self.kalpha2_ratio!r} must lie in 0–1")

    @property
    def monochromatic(self) -> Wavelength:
        """The same radiation with the Kα2 line stripped."""
        return Wavelength(self.kalpha1_angstrom, None, 0.0, self.anode)

    @property
    def label(self) -> str:
        if self.anode:
            return f"{self.anode} Kα ({self.kalpha1_angstrom:.5f} Å)"
        return f"{self.kalpha1_angstrom:.5f} Å"


# (Kα1, Kα2) in Å for the anodes labs use.
ANODE_LINES_ANGSTROM: dict[str, tuple[float, float]] = {
    "Cu": (1.54056, 1.54439),
    "Mo": (0.70930, 0.71359),
    "Co": (1.78896, 1.79285),
    "Cr": (2.28970, 2.29361),
    "Fe": (1.93604, 1.93998),
    "Ag": (0.559421, 0.563813),
}


def anode(symbol: str, *, with_kalpha2: bool = True) -> Wavelength:
    """The Kα radiation of an anode (``"Cu"``, ``"mo"``, ``"CuKa1"`` …)."""
    key = symbol.strip().lower()
    only_kalpha1 = key.endswith(("ka1", "kα1"))
    for suffix in ("ka1", "kα1", "ka", "kα"):
        if key.endswith(suffix):
            key = key[: -len(suffix)]
            break
    for name, (ka1, ka2) in ANODE_LINES_ANGSTROM.items():
        if name.lower() == key:
            if only_kalpha1 or not with_kalpha2:
                return Wavelength(ka1, None, 0.0, name)
            return Wavelength(ka1, ka2, KALPHA2_RATIO, name)
    known = ", ".join(ANODE_LINES_ANGSTROM)
    raise InputError(f"unknown anode {symbol!r}; use one of {known} or a wavelength in Å")


def parse_wavelength(text: str | float) -> Wavelength:
    """Parse user input: an anode symbol or a wavelength in Å.

    A bare number is taken as monochromatic radiation; values that look like
    nanometres or picometres are rejected with a hint rather than guessed.
    """
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        stripped = text.strip()
        try:
            value = float(stripped.replace(",", "."))
        except ValueError:
            return anode(stripped)
    looks_like_nm = any(
        abs(value * 10 - line) < 0.005 * line
        for lines in ANODE_LINES_ANGSTROM.values()
        for line in lines
    )
    if 0.01 <= value < MIN_WAVELENGTH_ANGSTROM or looks_like_nm:
        raise InputError(
            f"wavelength {value} looks like nanometres; give it in Å (e.g. {value * 10:g} Å)"
        )
    if value > MAX_WAVELENGTH_ANGSTROM and value <= 300:
        raise InputError(
            f"wavelength {value} looks like picometres; give it in Å (e.g. {value / 100:g} Å)"
        )
    return Wavelength(value)


CU_KALPHA = anode("Cu")
