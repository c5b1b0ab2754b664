"""Bulk import of patients from CSV: every row validated, good rows inserted in chunks with
Core bulk inserts (no ORM object per row) inside a savepoint of the caller's transaction, so a
bad row leaves nothing written. Rows stream from the file: memory stays flat for large files.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from hpms.db import bulk_insert
from hpms.errors import NotFoundError, ValidationError
from hpms.models import Patient
from hpms.services import audit, patients
from hpms.services.permissions import require

REQUIRED = ("first_name", "last_name", "dob")
OPTIONAL = ("middle_name", "preferred_name", "sex_at_birth", "gender_identity", "phone", "phone_alt", "email",
            "address_line1", "address_line2", "city", "state", "postal_code", "country", "preferred_channel",
            "consent_sms", "consent_email", "ssn", "mrn")
COLUMNS = REQUIRED + OPTIONAL
CHUNK = 2000


@dataclass
class RowError:
    line: int
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "message": self.message}


class InvalidRows(ValidationError):
    """Some rows are invalid and --skip-invalid was not given: nothing was written."""

    def __init__(self, errors: list[RowError], rows: int | None = None) -> None:
        self.rows = rows
        first = errors[0]
        super().__init__("FILE", f"{len(errors)} invalid row(s), the first at line {first.line} "
                                 f"({first.field}: {first.message}); nothing imported",
                         hint="fix them or use --skip-invalid")
        self.errors = errors


@dataclass
class ImportResult:
    imported: int = 0
    rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    mrns: tuple[str, str] | None = None
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {"imported": self.imported, "rows": self.rows, "skipped": len(self.errors),
                "errors": [e.as_dict() for e in self.errors], "first_mrn": self.mrns[0] if self.mrns else None,
                "last_mrn": self.mrns[1] if self.mrns else None, "dry_run": self.dry_run}


def _rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, row) for each data row; ValidationError for a bad file or header."""
    try:
        fh = path.open("r", encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise NotFoundError(f"FILE: no file {path}") from None
    except IsADirectoryError:
        raise ValidationError("FILE", f"{path} is a directory") from None
    with fh:
        try:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise ValidationError("FILE", f"{path} is empty (expected a header line)")
            names = [h.strip().lower() for h in header]
            missing = [c for c in REQUIRED if c not in names]
            if missing:
                raise ValidationError(missing[0], f"column missing from the header of {path.name} "
                                                  f"(required: {', '.join(REQUIRED)})")
            unknown = [h for h in names if h and h not in COLUMNS]
            if unknown:
                raise ValidationError(unknown[0], f"unknown column in {path.name} (see docs/import.md)")
            if len(set(names)) != len(names):
                raise ValidationError("FILE", "a column appears twice in the header")
            width = len(names)
            # (position, column) of the columns hpms reads; an unnamed column is ignored.
            wanted = [(i, name) for i, name in enumerate(names) if name]
            for raw in reader:
                line = reader.line_num
                if len(raw) > width:
                    yield line, {"__error__": "more fields than columns"}
                    continue
                if not any(v.strip() for v in raw):
                    continue
                n = len(raw)
                # Empty cells (and cells missing from a short row) are None.
                yield line, {name: (raw[i] or None) if i < n else None for i, name in wanted}
        except UnicodeDecodeError as exc:
            raise ValidationError("FILE", f"{path.name} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
                                          f"near line {_line_of_offset(path, exc)}); save it as UTF-8 CSV") from None
        except csv.Error as exc:
            raise ValidationError("FILE", f"{path.name}: not valid CSV ({exc})") from None


def _line_of_offset(path: Path, exc: UnicodeDecodeError) -> int:
    """The line holding the first byte that is not UTF-8 (the decoder only knows its block)."""
    line = 1
    with path.open("rb") as fh:
        for raw in fh:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return line
            line += 1
    return line


def _check(row: dict, line: int, today, seen_mrns: dict[str, int]) -> tuple[dict | None, RowError | None]:
    if "__error__" in row:
        return None, RowError(line, "row", row["__error__"])
    try:
        values = patients.validate_fields(row, today=today)
    except ValidationError as exc:
        return None, RowError(line, exc.field, exc.reason)
    mrn = values.get("mrn")
    if mrn:
        if mrn in seen_mrns:
            return None, RowError(line, "mrn", f"{mrn!r} also on line {seen_mrns[mrn]}")
        seen_mrns[mrn] = line
    return values, None


def new_ids(session, count: int) -> list[int]:
    """Ids for `count` new patients, known before the insert (so no read-back is needed):
    from the id sequence on PostgreSQL; on SQLite past the largest id, which is safe because
    the transaction holds the write lock (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        return list(session.execute(sa.text(
            "SELECT nextval(pg_get_serial_sequence('patient', 'id')) FROM generate_series(1, :n)"),
            {"n": count}).scalars())
    top = session.execute(sa.select(sa.func.coalesce(sa.func.max(Patient.id), 0))).scalar_one()
    return list(range(top + 1, top + 1 + count))


def _prescan(path: Path) -> tuple[int, dict[str, int]]:
    """Cheap first read (no validation): how many rows, and the MRNs the file brings along
    (so that MRNs assigned to earlier rows never collide with one given further down). Without
    an mrn column, counting lines is enough (the count only sizes the progress bar)."""
    rows, mrns = 0, {}
    if not _has_column(path, "mrn"):
        with path.open("rb") as fh:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        return max(lines - 1, 0), mrns
    for line, row in _rows(path):
        rows += 1
        mrn = (row.get("mrn") or "").strip()
        if mrn and mrn not in mrns:
            mrns[mrn] = line
    return rows, mrns


def import_csv(ctx, path: Path | str, *, skip_invalid: bool = False, dry_run: bool = False,
               progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """Import a CSV of patients. Raises InvalidRows (nothing written) when a row is bad and
    `skip_invalid` is false; ValidationError for a bad file; PermissionDenied.

    One validating pass streams the rows into the database inside a savepoint; a bad row (without
    `skip_invalid`) or `dry_run` rolls the savepoint back, so nothing is half-written."""
    require(ctx.actor, "patient.import")
    path = Path(path)
    total, given_mrns = _prescan(path)
    session = ctx.session
    today = ctx.now().date()
    now = ctx.now()
    result = ImportResult(dry_run=dry_run)
    taken = patients.mrn_taken(session, ctx.org_id, given_mrns) if given_mrns else set()
    avoid = set(given_mrns)
    seen: dict[str, int] = {}
    crypto = None
    chunk: list[dict] = []
    first_mrn = last_mrn = None
    table = Patient.__table__
    template = {f: None for f in patients.PATIENT_FIELDS}
    template.update(consent_sms=False, consent_email=False, org_id=ctx.org_id, active=True, version=1,
                    created_at=now, updated_at=now, ssn_enc=None, ssn_bidx=None, merged_into_id=None)

    def flush() -> None:
        nonlocal chunk, first_mrn, last_mrn
        if not chunk:
            return
        missing = [c for c in chunk if c["mrn"] is None]
        if missing:
            for c, mrn in zip(missing, patients.next_mrns(session, len(missing), ctx.org_id, avoid=avoid),
                              strict=True):
                c["mrn"] = mrn
        fields = [c.pop("_fields") for c in chunk]
        for c, pid in zip(chunk, new_ids(session, len(chunk)), strict=True):
            c["id"] = pid
        ids = {c["mrn"]: c["id"] for c in chunk}
        # One DBAPI executemany (COPY on PostgreSQL) per chunk: the ORM's bulk insert drops None
        # values and splits a chunk into one INSERT per row, and Core's per-row processing costs
        # more than SQLite's insert itself.
        bulk_insert(session, table, chunk)
        # One event per chunk naming every patient it created (as a list or search names the
        # patients it returned): a chained event per row would cost as much as the rows.
        touched = sorted({name for f in fields for name in f})
        audit.record(ctx, audit.Event("create", "patient", patient_ids=[ids[c["mrn"]] for c in chunk],
                                      fields=touched, detail=f"import of {len(chunk)} patient(s)"))
        first_mrn = first_mrn or chunk[0]["mrn"]
        last_mrn = chunk[-1]["mrn"]
        result.imported += len(chunk)
        chunk = []
        if progress:
            progress(result.rows, total)

    savepoint = session.begin_nested()
    try:
        for line, row in _rows(path):
            result.rows += 1
            values, err = _check(row, line, today, seen)
            if err is None and values.get("mrn") in taken:
                err = RowError(line, "mrn", f"{values['mrn']!r} is already assigned to another patient")
            if err is not None:
                result.errors.append(err)
                continue
            if result.errors and not skip_invalid:
                continue  # nothing will be kept: just validate the rest, to report every bad row
            ssn = values.pop("ssn", None)
            mrn = values.pop("mrn", None)
            fields = [k for k, val in values.items() if val not in (None, False)]
            fields.append("mrn")
            record = dict(template)
            record.update(values)
            record.update(patients.derived_columns(record))
            record["mrn"] = mrn
            if ssn:
                crypto = crypto or ctx.crypto
                record["ssn_enc"] = crypto.encrypt(ssn, "ssn")
                record["ssn_bidx"] = crypto.blind_index(ssn, "ssn")
                fields.append("ssn")
            record["_fields"] = fields
            chunk.append(record)
            if len(chunk) >= CHUNK:
                flush()
        if result.errors and not skip_invalid:
            savepoint.rollback()
            raise InvalidRows(result.errors, rows=result.rows)
        flush()
        if dry_run:
            savepoint.rollback()
        else:
            savepoint.commit()
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        raise
    if progress:
        progress(result.rows, result.rows)
    result.mrns = (first_mrn, last_mrn) if result.imported and not dry_run else None
    return result


def _has_column(path: Path, name: str) -> bool:
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader([fh.readline()]), [])
    except (OSError, UnicodeDecodeError):
        return True  # let the full read report the problem
    return name in [h.strip().lower() for h in header]
