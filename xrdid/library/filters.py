"""Element filters: which references a search may return, by composition.

Filters are exact: a search selects the eligible references first and
searches only those. A reference of unknown composition (a measured pattern
added without a formula) never matches a filter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pymatgen.core.periodic_table import Element

from xrdid.errors import InputError

__all__ = [
    "ELEMENT_SYMBOLS",
    "ElementFilter",
    "element_bits",
    "element_table",
    "eligible",
    "is_element_symbol",
    "parse_elements",
]

# Periodic table symbols, Z = 1…118 (index + 1).
ELEMENT_SYMBOLS: tuple[str, ...] = tuple(Element.from_Z(z).symbol for z in range(1, 119))
_ATOMIC_NUMBER = {symbol: z for z, symbol in enumerate(ELEMENT_SYMBOLS, start=1)}
_SYMBOL_BY_KEY = {symbol.lower(): symbol for symbol in ELEMENT_SYMBOLS}


def is_element_symbol(symbol: str) -> bool:
    return symbol in _ATOMIC_NUMBER


def parse_elements(text: str | Iterable[str] | None, what: str = "elements") -> frozenset[str]:
    """Element symbols from user input (``"Fe, O"``, ``"fe o"``, a list).

    Case is normalised (``fe`` → ``Fe``); anything that is not a symbol of the
    periodic table raises :class:`InputError` naming it and ``what``.
    """
    if text is None:
        return frozenset()
    tokens = (
        text.replace(",", " ").split() if isinstance(text, str) else [str(t).strip() for t in text]
    )
    symbols = set()
    for token in tokens:
        if not token:
            continue
        symbol = _SYMBOL_BY_KEY.get(token.lower())
        if symbol is None:
            raise InputError(
                f"{what + ': ' if what else ''}{token!r} is not an element symbol; give "
                "symbols of the periodic table separated by commas, e.g. 'Fe,O' or 'Si, Al, O'"
            )
        symbols.add(symbol)
    return frozenset(symbols)


@dataclass(frozen=True)
class ElementFilter:
    """Exact element constraints on references.

    ``all_of``: must contain every one; ``none_of``: must contain none;
    ``only_from``: may contain no other element (None: no such constraint).
    """

    all_of: frozenset[str] = frozenset()
    none_of: frozenset[str] = frozenset()
    only_from: frozenset[str] | None = None

    def __post_init__(self) -> None:
        given = self.all_of | self.none_of | (self.only_from or frozenset())
        unknown = sorted(e for e in given if e not in _ATOMIC_NUMBER)
        if unknown:
            raise InputError(f"unknown element symbol(s): {', '.join(unknown)}")
        both = self.all_of & self.none_of
        if both:
            raise InputError(
                f"{', '.join(sorted(both))} cannot be both required (elements_all) and "
                "excluded (elements_none)"
            )
        if self.only_from is not None:
            outside = self.all_of - self.only_from
            if outside:
                raise InputError(
                    f"required element(s) {', '.join(sorted(outside))} are not in the "
                    "allowed set (elements_only); no reference can match"
                )
            if not self.only_from:
                raise InputError("elements_only is empty; give at least one element")

    @classmethod
    def parse(
        cls, all_of: str | None = None, none_of: str | None = None, only_from: str | None = None
    ) -> ElementFilter:
        """Build a filter from comma-separated user input; empty input → no constraint."""
        only = parse_elements(only_from, "elements_only")
        return cls(
            all_of=parse_elements(all_of, "elements_all"),
            none_of=parse_elements(none_of, "elements_none"),
            only_from=only if only else None,
        )

    @property
    def active(self) -> bool:
        return bool(self.all_of or self.none_of or self.only_from is not None)

    def matches(self, elements: Iterable[str]) -> bool:
        present = frozenset(elements)
        if not present:
            return not self.active
        if not self.all_of <= present or present & self.none_of:
            return False
        return self.only_from is None or present <= self.only_from


def element_bits(elements: Iterable[str]) -> NDArray[np.uint64]:
    """(2,) uint64 bitset of atomic numbers (bit Z of 128)."""
    words = [0, 0]
    for symbol in elements:
        z = _ATOMIC_NUMBER[symbol]
        words[z // 64] |= 1 << (z % 64)
    return np.array(words, dtype=np.uint64)


def element_table(bits: NDArray[np.uint64]) -> NDArray[np.bool_]:
    """(n, 118) which of :data:`ELEMENT_SYMBOLS` each of (n, 2) :func:`element_bits` holds."""
    z = np.arange(1, len(ELEMENT_SYMBOLS) + 1)
    words = np.asarray(bits, dtype=np.uint64).reshape(-1, 2)[:, z // 64]
    return ((words >> (z % 64).astype(np.uint64)) & np.uint64(1)).astype(bool)


def eligible(bits: NDArray[np.uint64], elements: ElementFilter) -> NDArray[np.bool_]:
    """Which references, given their (n, 2) :func:`element_bits`, satisfy the filter."""
    ok = np.any(bits != 0, axis=1)  # composition known
    if elements.all_of:
        required = element_bits(elements.all_of)
        ok &= np.all((bits & required) == required, axis=1)
    if elements.none_of:
        ok &= np.all((bits & element_bits(elements.none_of)) == 0, axis=1)
    if elements.only_from is not None:
        ok &= np.all((bits & ~element_bits(elements.only_from)) == 0, axis=1)
    return ok
