"""Elements of a mineral from its RRUFF ideal chemistry.

RRUFF writes formulas with ``_…_`` subscripts, ``^…^`` charges, ``&#183;``
for the hydration dot and ``[box]`` for vacancies
(``NaY^3+^(CO_3_)_2_&#183;6H_2_O``); every capitalised symbol that is an
element is present. Words that are not symbols (REE, Ln) drop out.
"""

from __future__ import annotations

import html
import re

ELEMENTS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge "
    "As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm "
    "Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U "
    "Np Pu"
).split()
_SYMBOLS = frozenset(ELEMENTS)
_ENTITY = re.compile(r"&#?\w+;|\[box\]")
_SYMBOL = re.compile(r"[A-Z][a-z]?")


def elements_of(formula: str) -> tuple[str, ...]:
    """The elements named in a RRUFF formula, in periodic-table order."""
    found = set(_SYMBOL.findall(_ENTITY.sub(" ", formula))) & _SYMBOLS
    return tuple(symbol for symbol in ELEMENTS if symbol in found)


_CHARGE = re.compile(r"\^[^^]*\^")
_SUBSCRIPT = re.compile(r"_([^_]*)_")


def readable_formula(formula: str) -> str:
    """A RRUFF formula as plain text: charges dropped, subscripts inline,
    entities decoded (``Fe^3+^PO_4_&#183;2H_2_O`` → ``FePO4·2H2O``)."""
    text = html.unescape(formula.replace("[box]", "□"))
    return _SUBSCRIPT.sub(r"\1", _CHARGE.sub("", text)).strip()
