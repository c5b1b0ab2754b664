"""Writers for report rows: csv, tsv, json and html stream row by row; xlsx (openpyxl
write-only) and ods (tablib) hold one sheet. Cells keep their kind: numbers are numbers and
dates are dates in xlsx/ods, money has two decimals. Files are written to a temp name in the
target directory and renamed, so a failed export leaves no partial file."""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from hpms.errors import ValidationError
from hpms.fileio import atomic_file, check_directory
from hpms.services.reports.base import Column, Params, Report

FORMATS = ("csv", "tsv", "json", "xlsx", "ods", "html")
BINARY = ("xlsx", "ods")


def text_value(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "money":
        return f"{Decimal(value):.2f}"
    if kind == "percent":
        return f"{float(value):.1f}"
    if kind == "number":
        return f"{float(value):.2f}"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def json_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "money":
        return f"{Decimal(value):.2f}"
    if isinstance(value, Decimal):  # exact figures (amounts among a KPI's numbers) stay strings
        return f"{value:.2f}" if kind != "number" else str(value)
    if kind in ("percent", "number"):
        return value if isinstance(value, int) else round(float(value), 2)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


BATCH = 5000
# the types csv.writer already writes as text_value would (a date's str() is its isoformat,
# None is written empty): a date column holding only these goes to csv as it is
_DATE_AS_IS = frozenset({dt.date, str, type(None)})


def write_delimited(out: TextIO, columns: tuple[Column, ...], rows: Iterable[tuple], delimiter: str = ",") -> int:
    w = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    w.writerow([c.header for c in columns])
    # converters chosen once per column: text and integers go to csv as they are (None is
    # written empty), dates too while a batch holds only dates, the others through text_value
    convert = [(i, c.kind) for i, c in enumerate(columns) if c.kind not in ("text", "int")]
    n = 0
    it = iter(rows)
    while batch := list(islice(it, BATCH)):
        n += len(batch)
        if convert:
            todo = [
                (i, kind) for i, kind in convert if kind != "date" or not {type(r[i]) for r in batch} <= _DATE_AS_IS
            ]
            if todo:
                cells = [list(r) for r in batch]
                for i, kind in todo:
                    for r in cells:
                        r[i] = text_value(r[i], kind)
                w.writerows(cells)
                continue
        w.writerows(batch)
    return n


def write_json(out: TextIO, columns: tuple[Column, ...], rows: Iterable[tuple]) -> int:
    """A JSON array of objects keyed by column key, written one row at a time."""
    keys = [c.key for c in columns]
    kinds = [c.kind for c in columns]
    out.write("[")
    n = 0
    for row in rows:
        out.write(",\n  " if n else "\n  ")
        out.write(json.dumps({k: json_value(v, kind) for k, v, kind in zip(keys, row, kinds)}, ensure_ascii=False))
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def write_html(out: TextIO, rep: Report, params: Params, rows: Iterable[tuple]) -> int:
    out.write(
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>' + html.escape(rep.title) + "</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:2px 6px}td.n{text-align:right}</style></head><body>\n"
    )
    out.write(
        f"<h1>{html.escape(rep.title)}</h1>\n<p>{params.start} to {params.end}"
        + (f" · {html.escape(params.location)}" if params.location else "")
        + "</p>\n<table>\n<tr>"
    )
    out.write("".join(f"<th>{html.escape(c.header)}</th>" for c in rep.columns) + "</tr>\n")
    n = 0
    for row in rows:
        cells = []
        for v, c in zip(row, rep.columns):
            cls = ' class="n"' if c.kind in ("int", "money", "percent", "number") else ""
            cells.append(f"<td{cls}>{html.escape(text_value(v, c.kind))}</td>")
        out.write("<tr>" + "".join(cells) + "</tr>\n")
        n += 1
    out.write("</table>\n</body></html>\n")
    return n


def _typed(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "money":
        return float(Decimal(value).quantize(Decimal("0.01")))
    if kind in ("percent", "number"):
        return round(float(value), 2)
    if kind == "int":
        return int(value)
    return value


def write_xlsx(fh: BinaryIO, rep: Report, rows: Iterable[tuple]) -> int:
    # deferred: openpyxl loads only for an xlsx export; it publishes no type information
    from openpyxl import Workbook  # type: ignore[import-untyped]
    from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped]
    from openpyxl.styles import Font  # type: ignore[import-untyped]

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(rep.name[:31])
    bold = Font(bold=True)
    header = []
    for c in rep.columns:
        cell = WriteOnlyCell(ws, value=c.header)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    formats = {"money": "#,##0.00", "date": "yyyy-mm-dd", "percent": "0.0", "number": "0.00", "int": "0"}
    # text cells, and dates (openpyxl gives a date its "yyyy-mm-dd" format itself), go in as
    # plain values; only the other formatted cells are built one by one
    # (index, kind, format) of the columns that may need a cell: the others are not looked at
    formatted = [(i, c.kind, formats[c.kind]) for i, c in enumerate(rep.columns) if c.kind in formats]
    date = dt.date
    append = ws.append
    n = 0
    for row in rows:
        out: Any = row
        for i, kind, fmt in formatted:
            v = row[i]
            if kind == "date" and type(v) is date:
                continue
            if out is row:
                out = list(row)
            cell = WriteOnlyCell(ws, value=_typed(v, kind))
            cell.number_format = fmt
            out[i] = cell
        append(out)
        n += 1
    wb.save(fh)
    return n


def write_ods(fh: BinaryIO, rep: Report, rows: Iterable[tuple]) -> int:
    import tablib  # deferred: loads only for an ods export

    data = tablib.Dataset(headers=[c.header for c in rep.columns], title=rep.name[:31])
    n = 0
    for row in rows:
        data.append([_typed(v, c.kind) for v, c in zip(row, rep.columns)])
        n += 1
    fh.write(data.export("ods"))
    return n


def write(out_path: Path | None, fmt: str, rep: Report, params: Params, rows: Iterator[tuple], stdout: TextIO) -> int:
    """Write rows in `fmt` to out_path atomically (temp + rename) or to stdout; returns rows."""
    if fmt in BINARY and out_path is None:
        raise ValidationError("out", f"{fmt} needs an output file")
    if out_path is None:
        return _text(stdout, fmt, rep, params, rows)
    if fmt in BINARY:
        with atomic_file(out_path, field="out") as fh:
            return (write_xlsx if fmt == "xlsx" else write_ods)(fh, rep, rows)
    with atomic_file(out_path, field="out", encoding="utf-8", newline="") as f:
        return _text(f, fmt, rep, params, rows)


def _text(out: TextIO, fmt: str, rep: Report, params: Params, rows: Iterator[tuple]) -> int:
    if fmt == "csv":
        return write_delimited(out, rep.columns, rows)
    if fmt == "tsv":
        return write_delimited(out, rep.columns, rows, "\t")
    if fmt == "json":
        return write_json(out, rep.columns, rows)
    if fmt == "html":
        return write_html(out, rep, params, rows)
    raise ValidationError("fmt", f"{fmt!r} is not one of: {', '.join(FORMATS)}")


def resolve_output(field: str, template: str | None, fmt: str, params: Params, today: dt.date) -> Path | None:
    """The output file (`field` names it in errors, e.g. "out") with {date}/{from}/{to} filled
    in; '-' or none means stdout. The directory must exist and be writable."""
    if template is None or template == "-":
        return None
    try:
        name = template.format(**params.placeholders(today))
    except (KeyError, IndexError, ValueError) as exc:
        raise ValidationError(
            field, f"unknown placeholder in {template!r} ({exc}); use {{date}}, {{from}}, {{to}}"
        ) from None
    path = Path(name).expanduser()
    check_directory(path.parent if str(path.parent) else Path("."), field=field)
    return path


def guess_format(fmt: str | None, out: str | None) -> str:
    if fmt:
        f = fmt.strip().lower()
        if f not in FORMATS:
            raise ValidationError("fmt", f"{fmt!r} is not one of: {', '.join(FORMATS)}")
        return f
    if out and out != "-":
        suffix = Path(out).suffix.lower().lstrip(".")
        if suffix in FORMATS:
            return suffix
    return "csv"
