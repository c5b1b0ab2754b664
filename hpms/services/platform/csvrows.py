"""CSV import files: the header checked against the columns a file may have, rows keyed by
column name with their line numbers, and the row errors an all-or-nothing import reports."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from hpms.errors import ValidationError
from hpms.fileio import open_input


@dataclass
class RowError:
    line: int
    field: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "field": self.field, "message": self.message}


class InvalidRows(ValidationError):
    """Some rows are invalid: nothing was written. `errors` lists each (line, field, message)."""

    def __init__(
        self,
        errors: list[RowError],
        rows: int | None = None,
        *,
        hint: str | None = None,
        retry_with: tuple[str, ...] = (),
    ) -> None:
        first = errors[0]
        super().__init__(
            "file",
            f"{len(errors)} invalid row(s), the first at line {first.line} "
            f"({first.field}: {first.message}); nothing imported",
            hint=hint,
            retry_with=retry_with,
        )
        self.errors = errors
        self.rows = rows


def read_rows(
    path: Path | str, *, columns: tuple[str, ...], required: tuple[str, ...], expected: str
) -> list[tuple[int, dict[str, str] | None]]:
    """(line, {column: text}) per non-blank data row, None for a row with more cells than the
    header. ValidationError (field `file`) for a missing, empty, non-UTF-8 or malformed file, an
    unknown, missing or repeated column; `expected` describes the header in those messages."""
    fh = open_input(path, field="file", encoding="utf-8-sig", newline="")
    with fh:
        try:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header or not any(h.strip() for h in header):
                raise ValidationError("file", f"{path} is empty (expected the header {expected})")
            names = [h.strip().lower() for h in header]
            unknown = [h for h in names if h not in columns]
            if unknown:
                raise ValidationError("file", f"unknown column {unknown[0]!r} (columns: {', '.join(columns)})")
            missing = [c for c in required if c not in names]
            if missing:
                raise ValidationError("file", f"the header lacks the column {missing[0]!r} (expected {expected})")
            twice = sorted({h for h in names if names.count(h) > 1})
            if twice:
                raise ValidationError("file", f"the column {twice[0]!r} is given twice")
            rows: list[tuple[int, dict[str, str] | None]] = []
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) > len(names):
                    rows.append((reader.line_num, None))
                    continue
                rows.append((reader.line_num, {n: (cells[i] if i < len(cells) else "") for i, n in enumerate(names)}))
            return rows
        except UnicodeDecodeError:
            raise ValidationError("file", f"{path} is not UTF-8 text") from None
        except csv.Error as exc:
            raise ValidationError("file", f"{path} is not valid CSV ({exc})") from None
