"""Small printable PDF documents (superbills, patient statements): letter pages, the core
Helvetica font, wrapped lines and simple ruled tables. Text outside Latin-1 is folded."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence

# Letters without a decomposition to an ASCII base (NFKD leaves them whole).
_FOLD = str.maketrans(
    {
        "Ł": "L",
        "ł": "l",
        "Đ": "D",
        "đ": "d",
        "Ħ": "H",
        "ħ": "h",
        "ı": "i",
        "Œ": "OE",
        "œ": "oe",
        "ŀ": "l",
        "Ŀ": "L",
        "ŋ": "n",
        "Ŋ": "N",
        "ſ": "s",
        "‘": "'",
        "’": "'",
        "“": '"',
        "”": '"',
        "–": "-",
        "—": "-",
        "…": "...",
    }
)


def latin1(text) -> str:
    """The PDF core fonts cover Latin-1: keep those characters, fold the others to ASCII."""
    out = []
    for ch in str(text).translate(_FOLD):
        try:
            ch.encode("latin-1")
            out.append(ch)
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(base or "?")
    return "".join(out)


Column = tuple[str, float, str]  # label, width in mm, alignment (L or R)


class Document:
    """One letter-size document; every text goes through `latin1`."""

    def __init__(self, title: str, now: dt.datetime) -> None:
        from fpdf import FPDF  # deferred: only PDF output needs it

        self.pdf = FPDF(format="letter")
        self.pdf.set_creation_date(now)
        self.pdf.set_title(latin1(title))
        self.pdf.set_creator("hpms")
        self.pdf.set_auto_page_break(True, margin=15)
        self.pdf.add_page()
        self.width = self.pdf.w - self.pdf.l_margin - self.pdf.r_margin

    def line(self, text: str = "", *, size: int = 10, bold: bool = False, h: float = 5.5) -> None:
        """A paragraph from the left margin, wrapped to the page width."""
        self.pdf.set_font("Helvetica", "B" if bold else "", size)
        self.pdf.set_x(self.pdf.l_margin)
        self.pdf.multi_cell(self.width, h, latin1(text))

    def gap(self, mm: float = 3) -> None:
        self.pdf.ln(mm)

    def table(
        self, cols: Sequence[Column], rows: Sequence[Sequence[str]], *, total: tuple[str, str] | None = None
    ) -> None:
        """A header row ruled below, one row per item, and an optional (label, value) total row
        ruled above: the label spans every column but the last."""
        pdf = self.pdf
        pdf.set_font("Helvetica", "B", 10)
        for label, wdt, align in cols:
            pdf.cell(wdt, 6, latin1(label), border="B", align=align)
        pdf.ln()
        pdf.set_font("Helvetica", "", 10)
        for row in rows:
            for (_, wdt, align), value in zip(cols, row, strict=True):
                pdf.cell(wdt, 6, latin1(value), align=align)
            pdf.ln()
        if total is not None:
            pdf.set_font("Helvetica", "B", 10)
            pdf.cell(sum(c[1] for c in cols[:-1]), 7, latin1(total[0]), border="T", align="R")
            pdf.cell(cols[-1][1], 7, latin1(total[1]), border="T", align="R")
            pdf.ln()

    def output(self) -> bytes:
        return bytes(self.pdf.output())
