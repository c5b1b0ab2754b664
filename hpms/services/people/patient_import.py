"""Bulk import of patients from CSV: every row validated, good rows inserted in chunks with
Core bulk inserts (no ORM object per row) inside a savepoint of the caller's transaction, so a
bad row leaves nothing written. Rows stream from the file: memory stays flat for large files.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpms.db import insert_rows
from hpms.db import new_ids as reserve_ids
from hpms.errors import ValidationError
from hpms.fileio import open_input
from hpms.models import Patient
from hpms.models.patients import PATIENT_FIELDS
from hpms.services.people import patients
from hpms.services.platform import audit
from hpms.services.platform.csvrows import InvalidRows as BaseInvalidRows
from hpms.services.platform.csvrows import RowError
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hpms.services.platform.context import Ctx

REQUIRED = ("first_name", "last_name", "dob")
OPTIONAL = (
    "middle_name",
    "preferred_name",
    "sex_at_birth",
    "gender_identity",
    "phone",
    "phone_alt",
    "email",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "country",
    "preferred_channel",
    "consent_sms",
    "consent_email",
    "ssn",
    "mrn",
)
COLUMNS = REQUIRED + OPTIONAL
CHUNK = 2000
DERIVED = ("first_norm", "last_norm", "phone_digits", "phone_alt_digits", "email_norm")
INSERT_COLUMNS = [
    *PATIENT_FIELDS,
    *DERIVED,
    "ssn_enc",
    "ssn_bidx",
    "org_id",
    "active",
    "version",
    "created_at",
    "updated_at",
    "merged_into_id",
    "mrn",
    "id",
]
IMPORT_CACHE_KIB = 64 * 1024


class InvalidRows(BaseInvalidRows):
    """Some rows are invalid and the invalid ones were not to be skipped: nothing was written."""

    def __init__(self, errors: list[RowError], rows: int | None = None) -> None:
        super().__init__(errors, rows, retry_with=("skip_invalid",), hint="to import the valid rows only")


@dataclass
class ImportResult:
    imported: int = 0
    rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    mrns: tuple[str, str] | None = None
    dry_run: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "imported": self.imported,
            "rows": self.rows,
            "skipped": len(self.errors),
            "errors": [e.as_dict() for e in self.errors],
            "first_mrn": self.mrns[0] if self.mrns else None,
            "last_mrn": self.mrns[1] if self.mrns else None,
            "dry_run": self.dry_run,
        }


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for each data row; ValidationError for a bad file or header."""
    fh = open_input(path, field="file", encoding="utf-8-sig", newline="")
    with fh:
        try:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise ValidationError("file", f"{path} is empty (expected a header line)")
            names = [h.strip().lower() for h in header]
            missing = [c for c in REQUIRED if c not in names]
            if missing:
                raise ValidationError(
                    missing[0], f"column missing from the header of {path.name} (required: {', '.join(REQUIRED)})"
                )
            unknown = [h for h in names if h and h not in COLUMNS]
            if unknown:
                raise ValidationError(unknown[0], f"unknown column in {path.name} (see docs/import.md)")
            if len(set(names)) != len(names):
                raise ValidationError("file", "a column appears twice in the header")
            width = len(names)
            # (position, column) of the columns hpms reads; an unnamed column is ignored.
            wanted = [(i, name) for i, name in enumerate(names) if name]
            every = len(wanted) == width  # no unnamed column: pair the cells with the names directly
            for raw in reader:
                line = reader.line_num
                n = len(raw)
                if n > width:
                    yield line, {"__error__": "more fields than columns"}
                    continue
                if not "".join(raw).strip():  # every cell blank (one join instead of a test per cell)
                    continue
                # Empty cells (and cells missing from a short row) are None.
                if every and n == width:
                    yield line, {name: v or None for name, v in zip(names, raw)}
                else:
                    yield line, {name: (raw[i] or None) if i < n else None for i, name in wanted}
        except UnicodeDecodeError as exc:
            raise ValidationError(
                "file",
                f"{path.name} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
                f"near line {_line_of_offset(path, exc)}); save it as UTF-8 CSV",
            ) from None
        except csv.Error as exc:
            raise ValidationError("file", f"{path.name}: not valid CSV ({exc})") from None


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


@contextmanager
def _import_cache(session: Session) -> Iterator[None]:
    """On SQLite, a page cache of IMPORT_CACHE_KIB for the import, restored afterwards: with
    the default 2 MB, maintaining the patient table's eight indexes keeps evicting pages and
    reading them back (measured: a third of the insert time at 100,000 patients). Memory only:
    what is written, and when it is synced, does not change."""
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        yield
        return
    before = int(conn.exec_driver_sql("PRAGMA cache_size").scalar() or 0)
    page = int(conn.exec_driver_sql("PRAGMA page_size").scalar() or 0)
    current_kib = -before if before < 0 else before * page // 1024
    if current_kib >= IMPORT_CACHE_KIB:
        yield
        return
    conn.exec_driver_sql(f"PRAGMA cache_size=-{IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={before}")


def _check(
    row: dict[str, Any], line: int, today: dt.date, seen_mrns: dict[str, int]
) -> tuple[dict[str, Any], None] | tuple[None, RowError]:
    if "__error__" in row:
        return None, RowError(line, "row", row["__error__"])
    try:
        values = patients.validate_fields(row, today=today)
    except ValidationError as exc:
        return None, RowError(line, exc.field or "row", exc.message)
    mrn = values.get("mrn")
    if mrn:
        if mrn in seen_mrns:
            return None, RowError(line, "mrn", f"{mrn!r} also on line {seen_mrns[mrn]}")
        seen_mrns[mrn] = line
    return values, None


def new_ids(session: Session, count: int) -> list[int]:
    """Ids for `count` new patients, known before the insert (see hpms.db.new_ids)."""
    return reserve_ids(session, Patient.__table__, count)


def _prescan(path: Path) -> tuple[int, dict[str, int]]:
    """Cheap first read (no validation): how many rows, and the MRNs the file brings along
    (so that MRNs assigned to earlier rows never collide with one given further down). Without
    an mrn column, counting lines is enough (the count only sizes the progress bar)."""
    rows = 0
    mrns: dict[str, int] = {}
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


def import_csv(
    ctx: Ctx,
    path: Path | str,
    *,
    skip_invalid: bool = False,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
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
    chunk: list[list[Any]] = []
    chunk_ssn = False
    first_mrn: str | None = None
    last_mrn: str | None = None
    table = Patient.__table__
    # Each new patient is one list of values in INSERT_COLUMNS order, built straight from the
    # validated fields (no dict per row); the MRN and id are filled in per chunk.
    demographics = [(f, False if f in ("consent_sms", "consent_email") else None) for f in patients.PATIENT_FIELDS]
    fixed = [ctx.org_id, True, 1, now, now, None]  # org_id, active, version, created_at, updated_at, merged_into_id
    mrn_at, id_at = len(INSERT_COLUMNS) - 2, len(INSERT_COLUMNS) - 1
    derived_columns = patients.derived_columns

    def write(rows: list[list[Any]], with_ssn: bool) -> None:
        """Number, insert and audit one chunk (on the writer thread: see `flush`)."""
        nonlocal first_mrn, last_mrn
        missing = [c for c in rows if c[mrn_at] is None]
        if missing:
            for c, mrn in zip(missing, patients.next_mrns(session, len(missing), ctx.org_id, avoid=avoid), strict=True):
                c[mrn_at] = mrn
        ids = new_ids(session, len(rows))
        for c, pid in zip(rows, ids, strict=True):
            c[id_at] = pid
        # The fields given for any patient of the chunk (a field is named when a value is set).
        touched = [f for i, f in enumerate(patients.PATIENT_FIELDS) if any(c[i] not in (None, False) for c in rows)]
        touched = sorted([*touched, "mrn", *(["ssn"] if with_ssn else [])])
        first_mrn = first_mrn or rows[0][mrn_at]
        last_mrn = rows[-1][mrn_at]
        # One DBAPI executemany (COPY on PostgreSQL) per chunk: the ORM's bulk insert drops None
        # values and splits a chunk into one INSERT per row, and Core's per-row processing costs
        # more than SQLite's insert itself.
        insert_rows(session, table, INSERT_COLUMNS, rows)
        # One event per chunk naming every patient it created (as a list or search names the
        # patients it returned): a chained event per row would cost as much as the rows.
        audit.record(
            ctx,
            audit.Event(
                "create", "patient", patient_ids=ids, fields=touched, detail=f"import of {len(rows)} patient(s)"
            ),
        )
        result.imported += len(rows)

    # On PostgreSQL the database work of a chunk runs on one writer thread while this thread
    # validates the next chunk: psycopg lets go of the GIL while the server ingests the COPY, so
    # that time is no longer added to the validation's (100,000 rows: about 20% less wall time).
    # At most one chunk is in flight and only the writer touches the session meanwhile; the
    # chunks are written in file order, in this transaction. On SQLite the insert runs in this
    # process and binding holds the GIL: a thread gained nothing there, so chunks are written
    # in line.
    threaded = session.get_bind().dialect.name == "postgresql"
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hpms-import")
    pending: Future[None] | None = None

    def settle() -> None:
        """Wait for the chunk in flight; its error, if any, is raised here."""
        nonlocal pending
        if pending is not None:
            done, pending = pending, None
            done.result()
            if progress:
                progress(result.rows, total)

    def flush() -> None:
        nonlocal chunk, chunk_ssn, pending
        settle()
        if not chunk:
            return
        if threaded:
            pending = writer.submit(write, chunk, chunk_ssn)
        else:
            write(chunk, chunk_ssn)
            if progress:
                progress(result.rows, total)
        chunk = []
        chunk_ssn = False

    savepoint = session.begin_nested()
    try:
        with _import_cache(session):
            try:
                for line, row in _rows(path):
                    result.rows += 1
                    values, err = _check(row, line, today, seen)
                    if values is not None and values.get("mrn") in taken:
                        err = RowError(line, "mrn", f"{values['mrn']!r} is already assigned to another patient")
                        values = None
                    if values is None:
                        assert err is not None
                        result.errors.append(err)
                        continue
                    if result.errors and not skip_invalid:
                        continue  # nothing will be kept: just validate the rest, to report every bad row
                    ssn = values.pop("ssn", None)
                    get = values.get
                    record = [get(f, empty) for f, empty in demographics]
                    derived = derived_columns(values)
                    record += [derived.get(c) for c in DERIVED]
                    if ssn:
                        crypto = crypto or ctx.crypto
                        record += [crypto.encrypt(ssn, "ssn"), crypto.blind_index(ssn, "ssn")]
                        chunk_ssn = True
                    else:
                        record += [None, None]
                    record += fixed
                    record += [get("mrn"), None]
                    chunk.append(record)
                    if len(chunk) >= CHUNK:
                        flush()
                if result.errors and not skip_invalid:
                    settle()
                    savepoint.rollback()
                    raise InvalidRows(result.errors, rows=result.rows)
                flush()
                settle()
            except BaseException:
                # The writer must be done with the session before anything else runs on it.
                if pending is not None:
                    wait([pending])
                raise
        if dry_run:
            savepoint.rollback()
        else:
            savepoint.commit()
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        raise
    finally:
        writer.shutdown(wait=True)
    if progress:
        progress(result.rows, result.rows)
    result.mrns = (first_mrn, last_mrn) if first_mrn and last_mrn and not dry_run else None
    return result


def _has_column(path: Path, name: str) -> bool:
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader([fh.readline()]), [])
    except (OSError, UnicodeDecodeError):
        return True  # let the full read report the problem
    return name in [h.strip().lower() for h in header]
