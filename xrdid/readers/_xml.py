"""XML parsing for .xrdml/.brml/.rasx that refuses hostile documents.

defusedxml rejects DTDs, so entity expansion (billion laughs) and external
entities never run. Depth and element count are capped while parsing, so a
deeply nested or element-flooded document stops early instead of building a
huge tree. Lookups go by local name: namespaces carry format versions
(XRDML 1.0 … 2.3) that must not matter.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as DefusedET

from xrdid.errors import PatternReadError

# Real pattern XML is ~10 levels deep; hundreds means a crafted document.
MAX_DEPTH = 200

# One element per data point is the most a real format uses (.brml <Datum>),
# and real scans stay below ~150 k points (0.001° over 150°). Each parsed
# element costs a few hundred bytes, so this also caps memory near 150 MB.
MAX_ELEMENTS = 500_000


def parse_xml(data: bytes, source: str | None, *, what: str) -> Element:
    """Parse ``data`` into its root element, or raise PatternReadError.

    ``what`` names the document in messages (``"XRDML"``, ``"RawData0.xml"``).
    """
    depth = 0
    count = 0
    try:
        events = DefusedET.iterparse(io.BytesIO(data), events=("start", "end"), forbid_dtd=True)
        for event, _element in events:
            if event == "end":
                depth -= 1
                continue
            depth += 1
            count += 1
            if depth > MAX_DEPTH:
                raise PatternReadError(
                    f"{what} nests elements more than {MAX_DEPTH} deep; refusing a "
                    "document no instrument writes",
                    source=source,
                )
            if count > MAX_ELEMENTS:
                raise PatternReadError(
                    f"{what} has more than {MAX_ELEMENTS:,} elements; refusing it",
                    source=source,
                )
        root: Element = events.root  # type: ignore[attr-defined]
    except defusedxml.DefusedXmlException as exc:
        raise PatternReadError(
            f"{what} declares a DTD or entities; pattern files never need them and they "
            "enable entity-expansion attacks, so the file is refused",
            source=source,
        ) from exc
    except ParseError as exc:
        line, column = getattr(exc, "position", (None, None))
        raise PatternReadError(
            f"{what} is not well-formed XML ({_reason(exc)}, column {column}); "
            "the file is truncated or corrupt",
            source=source,
            line=line,
        ) from exc
    except (ValueError, LookupError) as exc:
        # e.g. an unknown encoding in the XML declaration.
        raise PatternReadError(f"{what} cannot be parsed: {exc}", source=source) from exc
    return root


def local_name(tag: object) -> str:
    """``"{ns}counts"`` → ``"counts"``; comments and PIs give ``""``."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def children(element: Element, name: str) -> list[Element]:
    """Direct children with local name ``name``."""
    return [child for child in element if local_name(child.tag) == name]


def child(element: Element, name: str) -> Element | None:
    """First direct child with local name ``name``."""
    for item in element:
        if local_name(item.tag) == name:
            return item
    return None


def descendants(element: Element, name: str) -> Iterator[Element]:
    """All elements below (and including) ``element`` with local name ``name``."""
    for item in element.iter():
        if local_name(item.tag) == name:
            yield item


def first_descendant(element: Element, name: str) -> Element | None:
    return next(descendants(element, name), None)


def text_of(element: Element | None) -> str:
    """Stripped text content, ``""`` for a missing element."""
    if element is None or element.text is None:
        return ""
    return element.text.strip()


def attribute(element: Element, name: str) -> str | None:
    """Attribute by local name (``xsi:type`` matches ``"type"``)."""
    for key, value in element.attrib.items():
        if local_name(key) == name:
            return value
    return None


def _reason(exc: ParseError) -> str:
    # "not well-formed (invalid token): line 3, column 4" → keep the first part.
    return str(exc).split(":", 1)[0]
