"""A small CIF 1.1 tokenizer: data blocks, tags, loops, with line numbers.

pymatgen's ``CifFile.from_str`` was the alternative; it is written for
structure files and, for pattern files, silently drops any block whose name
contains ``powder_pattern``, raises ZeroDivisionError/ValueError on a ragged
loop and keeps no line numbers. What a powder CIF needs is small: quoted and
semicolon-delimited values, ``#`` comments, ``loop_``, ``data_``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from xrdid.errors import PatternReadError

# One token: a comment, a quoted string (closed by a quote followed by space
# or end of line, as CIF 1.1 specifies), or a bare word.
_TOKEN = re.compile(r"""\s*(?:(\#.*)|'(.*?)'(?=\s|$)|"(.*?)"(?=\s|$)|(\S+))""")


@dataclass(frozen=True)
class CifValue:
    text: str
    line: int
    quoted: bool


@dataclass
class CifBlock:
    """One ``data_`` block: tag → values (one for a plain item, many in a loop)."""

    name: str
    line: int
    values: dict[str, list[CifValue]] = field(default_factory=dict)

    def get(self, tag: str) -> list[CifValue] | None:
        return self.values.get(tag.lower())

    def first(self, *tags: str) -> tuple[str, list[CifValue]] | None:
        """The first of ``tags`` present, with its values."""
        for tag in tags:
            found = self.get(tag)
            if found is not None:
                return tag, found
        return None


def parse_cif(text: str, source: str | None) -> list[CifBlock]:
    """All data blocks of ``text``, in file order."""
    blocks: list[CifBlock] = []
    tokens = _tokens(text, source)
    pending: CifValue | None = None
    while True:
        token = pending if pending is not None else next(tokens, None)
        pending = None
        if token is None:
            break
        word = token.text
        lowered = word.lower()
        if not token.quoted and lowered.startswith("data_"):
            blocks.append(CifBlock(name=word[5:], line=token.line))
            continue
        if not token.quoted and (lowered in ("global_", "stop_") or lowered.startswith("save_")):
            continue
        block = _current(blocks, token, source)
        if not token.quoted and lowered == "loop_":
            pending = _read_loop(block, tokens, token, source)
            continue
        if not token.quoted and word.startswith("_"):
            value = next(tokens, None)
            if value is None or _is_keyword(value):
                raise PatternReadError(
                    f"tag {word} has no value", source=source, line=token.line, field=word
                )
            block.values[lowered] = [value]
            continue
        raise PatternReadError(
            f"value {word[:40]!r} stands without a tag (is a loop_ header missing?)",
            source=source,
            line=token.line,
        )
    return blocks


def _read_loop(
    block: CifBlock, tokens: Iterator[CifValue], loop: CifValue, source: str | None
) -> CifValue | None:
    """Read a loop into ``block``; return the token that ended it."""
    tags: list[str] = []
    token = next(tokens, None)
    while token is not None and not token.quoted and token.text.startswith("_"):
        tags.append(token.text.lower())
        token = next(tokens, None)
    if not tags:
        raise PatternReadError("loop_ without tags", source=source, line=loop.line)
    columns: list[list[CifValue]] = [[] for _ in tags]
    count = 0
    while token is not None and not _is_keyword(token):
        columns[count % len(tags)].append(token)
        count += 1
        token = next(tokens, None)
    if count % len(tags):
        raise PatternReadError(
            f"the loop of {len(tags)} tags ({', '.join(tags[:3])}…) holds {count} values, "
            f"not a multiple of {len(tags)}; a row is incomplete",
            source=source,
            line=loop.line,
        )
    for tag, values in zip(tags, columns, strict=True):
        block.values[tag] = values
    return token


def _is_keyword(token: CifValue) -> bool:
    if token.quoted:
        return False
    lowered = token.text.lower()
    return (
        token.text.startswith("_")
        or lowered == "loop_"
        or lowered.startswith(("data_", "save_"))
        or lowered in ("global_", "stop_")
    )


def _current(blocks: list[CifBlock], token: CifValue, source: str | None) -> CifBlock:
    if not blocks:
        raise PatternReadError(
            f"{token.text[:40]!r} comes before any data_ block header",
            source=source,
            line=token.line,
        )
    return blocks[-1]


def _tokens(text: str, source: str | None) -> Iterator[CifValue]:
    text_field: list[str] | None = None
    field_start = 0
    for lineno, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        if text_field is not None:
            if line.startswith(";"):
                yield CifValue("\n".join(text_field), field_start, quoted=True)
                text_field = None
                rest = line[1:]
                if rest.strip():
                    yield from _line_tokens(rest, lineno)
            else:
                text_field.append(line)
            continue
        if line.startswith(";"):
            text_field = [line[1:]]
            field_start = lineno
            continue
        yield from _line_tokens(line, lineno)
    if text_field is not None:
        raise PatternReadError("a ';' text field is never closed", source=source, line=field_start)


def _line_tokens(line: str, lineno: int) -> Iterator[CifValue]:
    for match in _TOKEN.finditer(line):
        comment, single, double, bare = match.groups()
        if comment is not None:
            return
        if single is not None:
            yield CifValue(single, lineno, quoted=True)
        elif double is not None:
            yield CifValue(double, lineno, quoted=True)
        elif bare is not None:
            yield CifValue(bare, lineno, quoted=False)
