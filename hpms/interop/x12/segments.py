"""The X12 tokeniser shared by the readers (835, 271): separators read from each ISA, one
:class:`_Segment` per segment with its 1-based position, :class:`X12Error` for malformed
input, and the envelope walk (ISA/GS/ST ... SE/GE/IEA) that hands each transaction set to the
reader's parser."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, overload

__all__ = ["X12Error", "_Segment", "_segments", "_transaction_sets"]


class X12Error(ValueError):
    """Malformed X12 input. ``segment_number`` is the 1-based position of the offending
    segment in the text (0 when the problem is not tied to one segment)."""

    def __init__(self, message: str, segment_number: int = 0, segment_id: str | None = None):
        self.segment_number = segment_number
        self.segment_id = segment_id
        if segment_number:
            where = f"segment {segment_number}" + (f" ({segment_id})" if segment_id else "")
            message = f"{where}: {message}"
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class _Segment:
    number: int
    elements: tuple[str, ...]  # elements[0] is the segment id
    component: str

    @property
    def id(self) -> str:
        return self.elements[0]

    def get(self, i: int) -> str:
        return self.elements[i].strip() if i < len(self.elements) else ""

    def opt(self, i: int) -> str | None:
        return self.get(i) or None

    def error(self, message: str) -> X12Error:
        return X12Error(message, self.number, self.id)

    @overload
    def amount(self, i: int, required: Literal[True] = True) -> Decimal: ...
    @overload
    def amount(self, i: int, required: bool) -> Decimal | None: ...
    def amount(self, i: int, required: bool = True) -> Decimal | None:
        text = self.get(i)
        if not text:
            if required:
                raise self.error(f"element {i:02d} (amount) is missing")
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise self.error(f"element {i:02d} is not a number: {text!r}") from None
        if not value.is_finite():
            raise self.error(f"element {i:02d} is not a number: {text!r}")
        return value

    def date(self, i: int) -> date | None:
        text = self.get(i)
        if not text:
            return None
        if len(text) != 8 or not text.isdigit():
            raise self.error(f"element {i:02d} is not a CCYYMMDD date: {text!r}")
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            raise self.error(f"element {i:02d} is not a valid date: {text!r}") from None

    def components(self, i: int, fallback: str | None = None) -> list[str]:
        text = self.get(i)
        sep = self.component
        if fallback and sep not in text and fallback in text:
            sep = fallback
        return text.split(sep) if sep else [text]


# A UTF-8 byte order mark, as text (the file read as UTF-8) or as its three bytes read as Latin-1.
_BOMS = ("\ufeff", "\xef\xbb\xbf")


def _segments(text: str) -> Iterator[_Segment]:
    """Split the text into segments, interchange by interchange, reading the separators
    from each ISA. A byte order mark before the first ISA is skipped; text holding NUL
    characters (a binary file, or UTF-16 text) is refused."""
    if "\x00" in text:
        raise X12Error("the text holds NUL characters: not X12 text (a binary file, or UTF-16?)")
    for bom in _BOMS:
        if text.startswith(bom):
            text = text[len(bom) :]
            break
    pos = 0
    number = 0
    n = len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            if number == 0:
                raise X12Error("empty input: no ISA segment", 1)
            return
        if text[pos : pos + 3] != "ISA" or pos + 3 >= n:
            found = "".join(c for c in text[pos : pos + 3] if c.isalnum())
            raise X12Error("expected an ISA segment (interchange header)", number + 1, found or None)
        element = text[pos + 3]
        # ISA16 follows the 16th element separator; the terminator follows ISA16.
        i = pos + 3
        for _ in range(15):
            i = text.find(element, i + 1)
            if i < 0:
                raise X12Error("ISA segment is truncated", number + 1, "ISA")
        component_at = i + 1
        if component_at + 1 >= n:
            raise X12Error("ISA segment is truncated", number + 1, "ISA")
        component = text[component_at]
        terminator = text[component_at + 1]
        if terminator in (element, component) or terminator.isalnum():
            raise X12Error(f"invalid segment terminator {terminator!r} after ISA16", number + 1, "ISA")
        number += 1
        yield _Segment(number, tuple(text[pos : component_at + 1].split(element)), component)
        pos = component_at + 2
        while True:
            end = text.find(terminator, pos)
            raw = text[pos:] if end < 0 else text[pos:end]
            pos = n if end < 0 else end + 1
            raw = raw.strip()
            if raw:
                number += 1
                seg = _Segment(number, tuple(raw.split(element)), component)
                yield seg
                if seg.id == "IEA":
                    break
            if pos >= n:
                return
            # the next segment of this interchange starts after optional white space
            while pos < n and text[pos].isspace():
                pos += 1
            if pos >= n:
                return


def _transaction_sets(text: str, code: str, start: Callable[[_Segment, _Segment, str], Any]) -> list:
    """Walk the interchanges (ISA/IEA), functional groups (GS/GE) and transaction sets (ST/SE)
    of `text`, checking the envelope; every ST of type `code` gets a parser from
    ``start(st, isa, gs_control)`` that is fed the set's segments (``feed(seg)``) and closed by
    its SE (``finish(se)``, whose result is collected). Raises X12Error."""
    article = "an" if code[0] in "8" else "a"
    result: list = []
    isa: _Segment | None = None
    gs_control: str | None = None
    tx = None
    last: _Segment | None = None
    for seg in _segments(text):
        last = seg
        sid = seg.id
        if not (2 <= len(sid) <= 3 and sid.isalnum() and sid.isupper() or sid.isdigit()):
            raise seg.error(f"{sid[:20]!r} is not a segment id (wrong segment terminator?)")
        if tx is not None:
            if sid == "SE":
                result.append(tx.finish(seg))
                tx = None
            elif sid in ("ST", "GE", "IEA", "ISA", "GS"):
                raise seg.error(f"missing SE: transaction set {tx.st.get(2)!r} (segment {tx.st.number}) is not closed")
            else:
                tx.feed(seg)
            continue
        if sid == "ISA":
            if isa is not None:
                raise seg.error("missing IEA before the next ISA")
            if len(seg.elements) != 17:
                raise seg.error(f"ISA has {len(seg.elements) - 1} elements, expected 16")
            isa = seg
        elif sid == "GS":
            if isa is None:
                raise seg.error("GS outside an interchange")
            gs_control = seg.get(6)
        elif sid == "ST":
            if gs_control is None or isa is None:
                raise seg.error("ST outside a functional group (no GS)")
            if seg.get(1) != code:
                raise seg.error(f"transaction set {seg.get(1)!r} is not {article} {code}")
            tx = start(seg, isa, gs_control)
        elif sid == "GE":
            gs_control = None
        elif sid == "IEA":
            isa = None
            gs_control = None
        elif sid == "SE":
            raise seg.error("SE without ST")
        else:
            raise seg.error("segment outside a transaction set")
    if tx is not None:
        raise X12Error(
            f"missing SE: transaction set {tx.st.get(2)!r} is not closed at the end of the input (truncated file?)",
            tx.st.number,
            "ST",
        )
    if last is not None and isa is not None:
        raise X12Error(
            "missing IEA at the end of the input (truncated file or wrong segment terminator?)", last.number, last.id
        )
    return result
