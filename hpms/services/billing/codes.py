"""Code sets as the rest of the application sees them: ICD-10-CM (from the cached CDC table), HCPCS Level II
(a built-in list plus the CMS quarterly file an admin or biller imports) and CPT (any well-formed
code; descriptors only from a file the practice licenses and imports).

Imports validate every row first: a bad row means nothing is written, and the error names the
line and the field. The codes of a file replace those stored with the same code (an upsert);
codes stored before and absent from the file are kept.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from pydantic import BaseModel

from hpms.codes import icd10, procedures
from hpms.db import bulk_insert
from hpms.errors import Action, NotFoundError, ValidationError
from hpms.fileio import read_input
from hpms.models.billing import ProcedureCode
from hpms.services.platform import audit
from hpms.services.platform.csvrows import InvalidRows as BaseInvalidRows
from hpms.services.platform.csvrows import RowError
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

ICD10 = "ICD-10-CM"
HCPCS = "HCPCS"
CPT = "CPT"
SYSTEMS = (ICD10, HCPCS, CPT)
DESCRIPTION_MAX = 300  # procedure_code.description
CPT_NOTE = (
    "no descriptor on file: CPT descriptors are AMA-copyrighted and not shipped; "
    "import the practice's licensed CPT file"
)


class CodeOut(BaseModel):
    system: str  # ICD-10-CM, HCPCS or CPT
    code: str  # as stored and sent on claims (ICD-10-CM without the dot)
    display: str  # as printed (ICD-10-CM with the dot)
    description: str | None = None
    billable: bool | None = None  # ICD-10-CM only: a leaf code, valid on a claim
    source: str  # icd10cm, builtin, imported, format
    note: str | None = None


def check_system(system: str | None, field: str = "system") -> str | None:
    """None, or one of SYSTEMS from any spelling (icd10, ICD-10-CM, hcpcs, cpt)."""
    if system is None:
        return None
    key = re.sub(r"[^a-z0-9]", "", system.lower())
    found = {"icd10": ICD10, "icd10cm": ICD10, "icd": ICD10, "hcpcs": HCPCS, "cpt": CPT}.get(key)
    if found is None:
        raise ValidationError(field, f"unknown code system {system!r} (one of: icd10, hcpcs, cpt)")
    return found


# --- lookups ----------------------------------------------------------------------------------


def _stored(ctx: Ctx, system: str, code: str) -> ProcedureCode | None:
    return ctx.session.scalars(
        sa.select(ProcedureCode).where(
            ProcedureCode.org_id == ctx.org_id, ProcedureCode.system == system, ProcedureCode.code == code
        )
    ).first()


def procedure_known(ctx: Ctx, code: str) -> bool:
    """Whether a procedure code may be billed: any well-formed CPT code; an HCPCS Level II code
    from the built-in list or imported for the practice. Raises PermissionDenied."""
    require(ctx.actor, "codes.read")
    value = procedures.normalize(code)
    if procedures.is_cpt(value):
        return True
    if procedures.is_hcpcs(value):
        return value in procedures.HCPCS_BUILTIN or _stored(ctx, HCPCS, value) is not None
    return False


def _procedure(ctx: Ctx, value: str, system: str | None) -> CodeOut | None:
    if procedures.is_cpt(value) and system in (None, CPT):
        row = _stored(ctx, CPT, value)
        return CodeOut(
            system=CPT,
            code=value,
            display=value,
            description=row.description if row else None,
            source="imported" if row else "format",
            note=None if row else CPT_NOTE,
        )
    if procedures.is_hcpcs(value) and system in (None, HCPCS):
        row = _stored(ctx, HCPCS, value)
        if row is not None:
            return CodeOut(system=HCPCS, code=value, display=value, description=row.description, source="imported")
        if value in procedures.HCPCS_BUILTIN:
            return CodeOut(
                system=HCPCS, code=value, display=value, description=procedures.HCPCS_BUILTIN[value], source="builtin"
            )
    return None


def _diagnosis(code: icd10.Icd10) -> CodeOut:
    return CodeOut(
        system=ICD10,
        code=code.code,
        display=code.dotted,
        description=code.description,
        billable=code.billable,
        source="icd10cm",
    )


def describe(ctx: Ctx, code: str, system: str | None = None) -> str | None:
    """The description of a procedure code (imported, built-in) or an ICD-10-CM code, or None
    (unknown, or a CPT code without an imported descriptor). A code of HCPCS shape that is not
    a known HCPCS code is looked up in ICD-10-CM (J1100 is also J11.00) unless `system` says
    which. Raises PermissionDenied, ValidationError (system)."""
    require(ctx.actor, "codes.read")
    system = check_system(system)
    if "." not in code and system != ICD10:
        found = _procedure(ctx, procedures.normalize(code), system)
        if found is not None or system is not None or procedures.is_cpt(code):
            return found.description if found else None
    hit = icd10.lookup(code)
    return hit.description if hit else None


def show(ctx: Ctx, code: str, system: str | None = None) -> CodeOut:
    """One code with its description; ICD-10-CM codes say whether they are billable. Raises
    NotFoundError, ValidationError (system), PermissionDenied."""
    require(ctx.actor, "codes.read")
    system = check_system(system)
    dotted_input = "." in code
    found = None
    if not dotted_input and system != ICD10:
        found = _procedure(ctx, procedures.normalize(code), system)
    diagnosis = icd10.lookup(code) if system in (None, ICD10) else None
    if found is not None:
        if diagnosis is not None and found.system == HCPCS:
            also = f"also ICD-10-CM {diagnosis.dotted}: {diagnosis.description}"
            found.note = f"{found.note}; {also}" if found.note else also
        return found
    if diagnosis is None:
        value = procedures.normalize(code)
        action = (
            Action("codes", "import-hcpcs", target="FILE", purpose="import the CMS HCPCS file with")
            if procedures.is_hcpcs(value)
            else Action("codes", "search", target="TEXT", purpose="search with")
        )
        where = {None: "ICD-10-CM, HCPCS Level II or CPT", ICD10: ICD10, HCPCS: "HCPCS Level II", CPT: CPT}[system]
        raise NotFoundError(f"no code {code.strip()!r} in {where}", action=action)
    out = _diagnosis(diagnosis)
    notes = []
    if diagnosis.billable:
        notes.append("billable")
    else:
        more = icd10.descendants(diagnosis.code, limit=3)
        example = f", e.g. {', '.join(m.dotted for m in more)}" if more else ""
        notes.append(f"not billable: a category or heading; a claim needs a more specific code{example}")
    if dotted_input:
        notes.append(f"stored and sent on claims without the dot: {diagnosis.code}")
    out.note = "; ".join(notes)
    return out


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _word_patterns(words: list[str]) -> list[re.Pattern]:
    return [re.compile(r"\b" + re.escape(w), re.I) for w in words]


def search(ctx: Ctx, text: str, limit: int = 20, system: str | None = None) -> list[CodeOut]:
    """Codes starting with `text` or whose description has words starting with each word of it:
    procedure codes first (imported, built-in HCPCS), then ICD-10-CM; at most `limit`.
    Raises ValidationError, PermissionDenied."""
    require(ctx.actor, "codes.read")
    system = check_system(system)
    if limit < 1:
        raise ValidationError("limit", "must be at least 1")
    if not text or not text.strip():
        raise ValidationError("text", "give a code, the start of a code or words of a description")
    words = [w for w in re.split(r"[^\w]+", text.lower()) if w]
    key = procedures.normalize(text)
    prefix = key if re.fullmatch(r"[A-Z0-9]{1,5}", key) else None
    patterns = _word_patterns(words)
    out: list[CodeOut] = []
    if system in (None, HCPCS, CPT):
        systems = [system] if system else [HCPCS, CPT]
        conds = []
        if prefix:
            conds.append(ProcedureCode.code.like(_escape_like(prefix) + "%", escape="\\"))
        if words:
            conds.append(
                sa.and_(
                    *[sa.func.lower(ProcedureCode.description).like(f"%{_escape_like(w)}%", escape="\\") for w in words]
                )
            )
        rows = ctx.session.scalars(
            sa.select(ProcedureCode)
            .where(ProcedureCode.org_id == ctx.org_id, ProcedureCode.system.in_(systems), sa.or_(*conds))
            .order_by(ProcedureCode.code)
            .limit(limit * 5 + 50)
        ).all()
        stored = set()
        for r in rows:
            stored.add((r.system, r.code))
            if (prefix and r.code.startswith(prefix)) or all(p.search(r.description or "") for p in patterns):
                out.append(
                    CodeOut(system=r.system, code=r.code, display=r.code, description=r.description, source="imported")
                )
        if system in (None, HCPCS):
            builtin = {
                code: desc
                for code, desc in procedures.HCPCS_BUILTIN.items()
                if (HCPCS, code) not in stored
                and ((prefix and code.startswith(prefix)) or all(p.search(desc) for p in patterns))
            }
            if builtin:  # an imported description of the same code wins
                imported = set(
                    ctx.session.scalars(
                        sa.select(ProcedureCode.code).where(
                            ProcedureCode.org_id == ctx.org_id,
                            ProcedureCode.system == HCPCS,
                            ProcedureCode.code.in_(list(builtin)),
                        )
                    )
                )
                builtin = {code: desc for code, desc in builtin.items() if code not in imported}
            out += [
                CodeOut(system=HCPCS, code=code, display=code, description=desc, source="builtin")
                for code, desc in builtin.items()
            ]
        out.sort(key=lambda o: (not (prefix and o.code.startswith(prefix)), o.code))
        out = out[:limit]
    if system in (None, ICD10) and len(out) < limit:
        out += [_diagnosis(c) for c in icd10.search(text, limit - len(out))]
    return out


# --- imports ----------------------------------------------------------------------------------


class InvalidRows(BaseInvalidRows):
    """Some rows of a code file are invalid: nothing was written."""

    def __init__(self, errors: list[RowError], rows: int) -> None:
        super().__init__(errors, rows, hint="fix them and retry")


@dataclass
class ImportSummary:
    system: str
    file: str
    layout: str  # cms-fixed-width, csv or tsv
    rows: int = 0  # records read (continuation records included)
    codes: int = 0  # distinct codes in the file
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # modifier records of the CMS file
    truncated: int = 0  # descriptions cut to 300 characters
    dry_run: bool = False
    errors: list[RowError] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "system": self.system,
            "file": self.file,
            "layout": self.layout,
            "rows": self.rows,
            "codes": self.codes,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "truncated": self.truncated,
            "dry_run": self.dry_run,
            "errors": [e.as_dict() for e in self.errors],
        }


def _read_text(path: Path) -> str:
    data = read_input(path, field="file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")  # the CMS text files are not always UTF-8
    if not text.strip():
        raise ValidationError("file", f"{path} is empty")
    return text


def _is_cms_record(line: str) -> bool:
    return (
        len(line) >= 12
        and line[10] in "3478"
        and line[5:10].strip().isdigit()
        and bool(re.fullmatch(r"[A-Z0-9]{2,5}", line[:5].strip()))
    )


_CODE_COLUMNS = ("code", "hcpc", "hcpcs", "hcpc code", "hcpcs code", "cpt", "cpt code", "procedure code")
_DESC_COLUMNS = (
    "long description",
    "description",
    "descriptor",
    "long descriptor",
    "long desc",
    "desc",
    "short description",
    "short descriptor",
    "short desc",
)


def _column_name(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


@dataclass
class _Parsed:
    layout: str
    codes: dict[str, str]  # code -> description
    lines: dict[str, int]  # code -> line of its first record
    rows: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)


def _parse_cms(text: str, check: Callable[[str], str | None]) -> _Parsed:
    """The fixed-width CMS record file: HCPC 1-5, sequence 6-10, record id 11 (3 first record,
    4 continuation; 7 and 8 the same for modifiers), long description 12-91, short 92-119."""
    out = _Parsed("cms-fixed-width", {}, {})
    current = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        out.rows += 1
        if len(line) < 12:
            out.errors.append(RowError(number, "record", f"{len(line)} characters: too short for the CMS layout"))
            continue
        code, seq, recid = line[:5].strip(), line[5:10].strip(), line[10]
        long_desc, short_desc = " ".join(line[11:91].split()), " ".join(line[91:119].split())
        if recid in "78":
            out.skipped += 1
            current = None
            continue
        if recid not in "34":
            out.errors.append(RowError(number, "RECID", f"record id {recid!r} is not 3, 4, 7 or 8"))
            continue
        if not seq.isdigit():
            out.errors.append(RowError(number, "SEQNUM", f"{seq!r} is not a sequence number"))
            continue
        problem = check(code)
        if problem:
            out.errors.append(RowError(number, "HCPC", problem))
            current = None
            continue
        if recid == "4":
            if current != code:
                out.errors.append(RowError(number, "RECID", f"continuation record of {code} without its first record"))
                continue
            out.codes[code] = f"{out.codes[code]} {long_desc}".strip()
            continue
        if code in out.codes:
            out.errors.append(RowError(number, "HCPC", f"{code} again (first at line {out.lines[code]})"))
            current = None
            continue
        if not (long_desc or short_desc):
            out.errors.append(RowError(number, "LONG DESCRIPTION", "empty"))
            continue
        out.codes[code] = long_desc or short_desc
        out.lines[code] = number
        current = code
    return out


def _parse_table(text: str, check: Callable[[str], str | None]) -> _Parsed:
    """A CSV or tab-separated file with a header naming a code column and a description column."""
    first = text.splitlines()[0]
    delimiter = "\t" if "\t" in first else ","
    out = _Parsed("tsv" if delimiter == "\t" else "csv", {}, {})
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [_column_name(h) for h in next(reader)]
    code_col = next((header.index(c) for c in _CODE_COLUMNS if c in header), None)
    desc_col = next((header.index(c) for c in _DESC_COLUMNS if c in header), None)
    if code_col is None:
        raise ValidationError("file", f"no code column in the header (one of: {', '.join(_CODE_COLUMNS)})")
    if desc_col is None:
        raise ValidationError("file", f"no description column in the header (one of: {', '.join(_DESC_COLUMNS)})")
    recid_col = header.index("recid") if "recid" in header else None
    code_name, desc_name = header[code_col], header[desc_col]
    current = None
    for row in reader:
        number = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        out.rows += 1
        if len(row) <= max(code_col, desc_col):
            out.errors.append(RowError(number, desc_name if len(row) > code_col else code_name, "missing"))
            continue
        code = procedures.normalize(row[code_col])
        desc = " ".join(row[desc_col].split())
        recid = row[recid_col].strip() if recid_col is not None and len(row) > recid_col else ""
        if recid in ("7", "8"):
            out.skipped += 1
            current = None
            continue
        problem = check(code)
        if problem:
            out.errors.append(RowError(number, code_name, problem))
            current = None
            continue
        if recid == "4":
            if current != code:
                out.errors.append(RowError(number, "recid", f"continuation row of {code} without its first row"))
                continue
            out.codes[code] = f"{out.codes[code]} {desc}".strip()
            continue
        if code in out.codes:
            out.errors.append(RowError(number, code_name, f"{code} again (first at line {out.lines[code]})"))
            current = None
            continue
        if not desc:
            out.errors.append(RowError(number, desc_name, "empty"))
            continue
        out.codes[code] = desc
        out.lines[code] = number
        current = code
    return out


def _check_hcpcs(code: str) -> str | None:
    if not code:
        return "empty"
    if procedures.is_hcpcs(code):
        return None
    if procedures.is_cpt(code):
        return f"{code} is a CPT code, not HCPCS Level II (CPT descriptors have their own import)"
    return f"{code!r} is not an HCPCS Level II code (a letter A-V and 4 digits)"


def _check_cpt(code: str) -> str | None:
    if not code:
        return "empty"
    if procedures.is_cpt(code):
        return None
    return f"{code!r} is not a CPT code (5 digits, or 4 digits and F, T or U)"


def _import(
    ctx: Ctx,
    system: str,
    path: Path | str,
    *,
    dry_run: bool,
    fixed_width: bool,
    progress: Callable[[int, int], None] | None,
) -> ImportSummary:
    require(ctx.actor, "codes.import")
    path = Path(path)
    text = _read_text(path)
    check = _check_hcpcs if system == HCPCS else _check_cpt
    first = next(line for line in text.splitlines() if line.strip())
    parsed = _parse_cms(text, check) if fixed_width and _is_cms_record(first) else _parse_table(text, check)
    summary = ImportSummary(
        system=system,
        file=str(path),
        layout=parsed.layout,
        rows=parsed.rows,
        codes=len(parsed.codes),
        skipped=parsed.skipped,
        dry_run=dry_run,
    )
    if parsed.errors:
        raise InvalidRows(parsed.errors, parsed.rows)
    if not parsed.codes:
        raise ValidationError("file", f"{path} holds no {system} codes")
    total = len(parsed.codes)
    if progress:
        progress(0, total)
    table = ProcedureCode.__table__
    where = sa.and_(table.c.org_id == ctx.org_id, table.c.system == system)
    existing = {
        r.code: r
        for r in ctx.session.execute(sa.select(table.c.code, table.c.description, table.c.imported_at).where(where))
    }
    now = ctx.now()
    merged = {
        code: {
            "org_id": ctx.org_id,
            "system": system,
            "code": code,
            "description": r.description,
            "imported_at": r.imported_at,
        }
        for code, r in existing.items()
    }
    for code, desc in parsed.codes.items():
        if len(desc) > DESCRIPTION_MAX:
            desc = desc[: DESCRIPTION_MAX - 3].rstrip() + "..."
            summary.truncated += 1
        before = existing.get(code)
        if before is None:
            summary.added += 1
        elif before.description != desc:
            summary.updated += 1
        else:
            summary.unchanged += 1
            continue
        merged[code] = {"org_id": ctx.org_id, "system": system, "code": code, "description": desc, "imported_at": now}
    if not dry_run and (summary.added or summary.updated):
        # One delete and one bulk insert in the caller's transaction: no row-by-row upsert.
        ctx.session.execute(sa.delete(table).where(where))
        bulk_insert(ctx.session, table, [merged[c] for c in sorted(merged)])
        audit.record(
            ctx,
            audit.Event(
                "import",
                "procedure_code",
                entity_id=system,
                detail=f"{path.name}: {summary.added} added, {summary.updated} updated, {summary.unchanged} unchanged",
            ),
        )
    if progress:
        progress(total, total)
    return summary


def import_hcpcs(
    ctx: Ctx, path: Path | str, dry_run: bool = False, *, progress: Callable[[int, int], None] | None = None
) -> ImportSummary:
    """Import HCPCS Level II codes from the CMS quarterly file (the fixed-width record file
    HCPC20xx_..._ANWEB) or a CSV/TSV with a code and a description column. Raises InvalidRows
    (nothing written), ValidationError (also no such file), NotFoundError, PermissionDenied."""
    return _import(ctx, HCPCS, path, dry_run=dry_run, fixed_width=True, progress=progress)


def import_cpt(
    ctx: Ctx, path: Path | str, dry_run: bool = False, *, progress: Callable[[int, int], None] | None = None
) -> ImportSummary:
    """Import CPT descriptors from a CSV (or TSV) the practice licenses, with a code and a
    description column. Raises InvalidRows (nothing written), ValidationError, NotFoundError,
    PermissionDenied."""
    return _import(ctx, CPT, path, dry_run=dry_run, fixed_width=False, progress=progress)
