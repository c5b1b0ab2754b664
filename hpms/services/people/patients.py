"""Patient registration, lookup, search, update, duplicate detection and merge.

Every read or write of a patient appends an audit event in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import re
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import col

from hpms.errors import Action, ConflictError, ValidationError
from hpms.models import Coverage, DuplicateCandidate, Patient, PatientOut, PatientSummary
from hpms.models.billing_out import money
from hpms.models.patients import CONTACT_CHANNELS, PATIENT_FIELDS, SEX_AT_BIRTH
from hpms.services.interop.hl7 import events as hl7_events
from hpms.services.lookups import find_patient
from hpms.services.platform import audit, counters
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import allowed, require

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hpms.services.platform.context import Ctx

# Tables that point at a patient; a merge moves their rows. Later modules append to this.
PATIENT_REFERENCES: list[tuple[type, str]] = [(Coverage, "patient_id")]


def _scheduling_references() -> None:
    """Add the scheduling tables, at the first merge: importing their models at the top would
    add their cost to every patients command."""
    from hpms.models import Appointment, ExternalVisit, OnlineBooking, WaitlistEntry

    for ref in (
        (Appointment, "patient_id"),
        (WaitlistEntry, "patient_id"),
        (OnlineBooking, "patient_id"),
        (ExternalVisit, "patient_id"),
    ):
        if ref not in PATIENT_REFERENCES:
            PATIENT_REFERENCES.append(ref)


_SUMMARY_COLS = (
    Patient.id,
    Patient.mrn,
    Patient.first_name,
    Patient.last_name,
    Patient.preferred_name,
    Patient.dob,
    Patient.phone,
    Patient.active,
)


def format_mrn(n: int) -> str:
    return f"{n:07d}"


def _mrn(f: str, x: str) -> str | None:
    mrn = v.optional_text(f, x, 32)
    if mrn is not None and not _MRN_CHARS.fullmatch(mrn):
        raise ValidationError(f, f"{mrn!r} may hold only letters, digits and '-'")
    return mrn


_MRN_CHARS = re.compile(r"[A-Za-z0-9-]+")
_SEX_ALIASES = {"f": "female", "m": "male", "u": "unknown", "unk": "unknown"}
# Optional fields in the order their errors are reported: (field, n, check). A plain text field
# has its maximum length as n (the check is v.optional_text, inlined below); any other has n = 0
# and its check (field, value).
_OPTIONAL_BEFORE_DOB = (("middle_name", 100, None), ("preferred_name", 100, None))
# The checks of fields with few distinct values keep their results (they are pure functions of the
# field and value; an error is raised again each time): an import meets the same few values on every row.
_few = functools.lru_cache(maxsize=1024, typed=True)
_OPTIONAL = (
    ("sex_at_birth", 0, _few(functools.partial(v.parse_choice, choices=SEX_AT_BIRTH, aliases=_SEX_ALIASES))),
    ("gender_identity", 64, None),
    ("phone", 0, v.parse_phone),
    ("phone_alt", 0, v.parse_phone),
    ("email", 0, v.parse_email),
    ("address_line1", 200, None),
    ("address_line2", 200, None),
    ("city", 100, None),
    ("state", 50, None),
    ("postal_code", 20, None),
    ("country", 0, _few(v.parse_country)),
    ("preferred_channel", 0, _few(functools.partial(v.parse_choice, choices=CONTACT_CHANNELS))),
    ("consent_sms", 0, _few(v.parse_bool)),
    ("consent_email", 0, _few(v.parse_bool)),
    ("tz", 0, _few(lambda field, value: v.parse_tz(field, value) if v.clean(value) else None)),
    ("ssn", 0, v.parse_ssn),
    ("mrn", 0, _mrn),
)
_WHEN_EMPTY = {"consent_sms": False, "consent_email": False}


_ABSENT = object()


def _optional(
    data: dict[str, Any],
    out: dict[str, Any],
    checks: tuple[tuple[str, int, Callable[..., Any] | None], ...],
    partial: bool,
    _control: Callable[[str], object] = v.CONTROL_CHARS.search,
) -> None:
    get = data.get
    for f, n, check in checks:
        x = get(f, _ABSENT)
        if x is not _ABSENT:
            if x is None:
                if not partial:
                    out[f] = _WHEN_EMPTY.get(f)
            elif n:
                # v.optional_text, inlined (this runs for most fields of every imported row); it
                # is called to raise the error when the value is too long or holds a control character.
                x = x.strip()
                out[f] = (x or None) if len(x) <= n and not _control(x) else v.optional_text(f, x, n)
            else:
                assert check is not None  # a field without a maximum length has its check
                out[f] = check(f, x)


def validate_fields(data: dict[str, Any], *, today: dt.date, partial: bool = False) -> dict[str, Any]:
    """Check and normalize patient fields (names as in the CSV columns); returns the clean
    values. With `partial` (an update) a None value leaves the field alone; otherwise it means
    empty. Raises ValidationError naming the first bad field."""
    out: dict[str, Any] = {}
    for f in ("first_name", "last_name"):
        if not partial or data.get(f) is not None:
            out[f] = v.require_text(f, data.get(f), 100)
    _optional(data, out, _OPTIONAL_BEFORE_DOB, partial)
    if not partial or data.get("dob") is not None:
        out["dob"] = v.parse_dob("dob", data.get("dob"), today=today)
    _optional(data, out, _OPTIONAL, partial)
    # On update, `_channel`, `_has_phone` and `_has_email` describe the stored record, so that
    # clearing the phone (or e-mail) the preferred channel relies on is refused too.
    channel = out["preferred_channel"] if "preferred_channel" in out else data.get("_channel")
    has_phone = out["phone"] if "phone" in out else data.get("_has_phone")
    has_email = out["email"] if "email" in out else data.get("_has_email")
    if channel == "sms" and not has_phone:
        if "preferred_channel" in out:
            raise ValidationError("preferred_channel", "sms needs a phone number")
        raise ValidationError("phone", "cannot be removed while the preferred channel is sms")
    if channel == "email" and not has_email:
        if "preferred_channel" in out:
            raise ValidationError("preferred_channel", "email needs an e-mail address")
        raise ValidationError("email", "cannot be removed while the preferred channel is email")
    return out


def derived_columns(values: dict[str, Any]) -> dict[str, str | None]:
    """The search columns kept alongside the demographics."""
    out: dict[str, str | None] = {}
    if "first_name" in values:
        out["first_norm"] = v.fold(values["first_name"])[:100]
    if "last_name" in values:
        out["last_norm"] = v.fold(values["last_name"])[:100]
    if "phone" in values:
        out["phone_digits"] = v.phone_digits(values["phone"])
    if "phone_alt" in values:
        out["phone_alt_digits"] = v.phone_digits(values["phone_alt"])
    if "email" in values:
        out["email_norm"] = values["email"].lower() if values["email"] else None
    return out


def _today(ctx: Ctx) -> dt.date:
    return ctx.now().date()


def mrn_taken(session: Session, org_id: int, mrns: Iterable[str]) -> set[str]:
    wanted = list(mrns)
    taken: set[str] = set()
    for i in range(0, len(wanted), 500):
        taken.update(
            session.scalars(
                sa.select(Patient.mrn).where(Patient.org_id == org_id, col(Patient.mrn).in_(wanted[i : i + 500]))
            )
        )
    return taken


def next_mrns(session: Session, count: int, org_id: int, *, avoid: set[str] | None = None) -> list[str]:
    """Reserve `count` MRNs from the counter, skipping any already used by imported MRNs."""
    result: list[str] = []
    while len(result) < count:
        need = count - len(result)
        first = counters.reserve(session, counters.MRN_COUNTER, need, start=counters.MRN_START)
        batch = [format_mrn(n) for n in range(first, first + need)]
        if len(batch[0]) == len(batch[-1]):  # same width: one index range scan finds any clash
            taken = set(
                session.scalars(
                    sa.select(Patient.mrn).where(
                        Patient.org_id == org_id, Patient.mrn >= batch[0], Patient.mrn <= batch[-1]
                    )
                )
            )
        else:
            taken = mrn_taken(session, org_id, batch)
        clash = (taken & set(batch)) | (set(batch) & (avoid or set()))
        result.extend(m for m in batch if m not in clash)
    return result


def _to_out(ctx: Ctx, p: Patient, *, reveal_ssn: bool = False) -> PatientOut:
    out = PatientOut.model_validate(p, from_attributes=True)
    if p.ssn_enc:
        ssn = ctx.crypto.decrypt(p.ssn_enc, "ssn")
        out.ssn_masked = f"{ssn[:3]}-{ssn[3:5]}-{ssn[5:]}" if reveal_ssn else f"***-**-{ssn[5:]}"
    return out


class RegistrationMatch(BaseModel):
    """An active patient a new registration may duplicate, and why."""

    patient: PatientSummary
    reasons: list[str]


class LikelyDuplicate(ConflictError):
    """The patient to register looks like one already on file: `candidates` says who and why.
    Registering anyway is the `allow_duplicate` field."""

    def __init__(self, candidates: list[RegistrationMatch]) -> None:
        names = ", ".join(f"MRN {c.patient.mrn} ({'; '.join(c.reasons)})" for c in candidates)
        super().__init__(
            f"likely the same person as {names}",
            hint="to register a different person all the same",
            retry_with=("allow_duplicate",),
            action=Action("patients", "show", target=candidates[0].patient.mrn),
        )
        self.candidates = candidates


def _edit_distance(a: str, b: str, cap: int) -> int:
    """Levenshtein distance of `a` and `b`, or `cap + 1` once it is known to exceed `cap`."""
    if abs(len(a) - len(b)) > cap:
        return cap + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > cap:
            return cap + 1
        prev = cur
    return prev[-1]


def similar_name(first_a: str, last_a: str, first_b: str, last_b: str) -> bool:
    """Folded names that likely name one person: the same first initial and last names at most
    two edits apart (one for a last name under five letters), or the two names swapped."""
    if first_a[:1] == first_b[:1]:
        cap = 2 if min(len(last_a), len(last_b)) >= 5 else 1
        if _edit_distance(last_a, last_b, cap) <= cap:
            return True
    return first_a == last_b and last_a == first_b


SAME_PHONE = "same phone"


def likely_duplicates(
    ctx: Ctx,
    *,
    first_name: str,
    last_name: str,
    dob: dt.date,
    phone: str | None = None,
    ssn: str | None = None,
    phone_alone: bool = True,
) -> list[RegistrationMatch]:
    """Active patients that a registration with these (validated) values likely duplicates:
    same date of birth and a similar name, same phone (main or second) or same SSN; with
    `phone_alone` False, not those whose only likeness is the phone (a household shares one).
    Three indexed queries; the candidates' reads are audited."""
    first, last = v.fold(first_name), v.fold(last_name)
    cols = (*_SUMMARY_COLS, Patient.first_norm, Patient.last_norm, Patient.phone_digits, Patient.phone_alt_digits)
    active = sa.and_(Patient.org_id == ctx.org_id, Patient.active.is_(True))
    found: dict[int, tuple[sa.Row[Any], list[str]]] = {}

    def note(rows: Iterable[sa.Row[Any]], reason: str) -> None:
        for r in rows:
            found.setdefault(r.id, (r, []))[1].append(reason)

    same_dob = ctx.session.execute(sa.select(*cols).where(active, Patient.dob == dob)).all()
    note(
        (r for r in same_dob if similar_name(first, last, r.first_norm, r.last_norm)),
        "same date of birth, similar name",
    )
    digits = v.phone_digits(phone) if phone else None
    if digits:
        cond = sa.or_(Patient.phone_digits == digits, Patient.phone_alt_digits == digits)
        note(ctx.session.execute(sa.select(*cols).where(active, cond).limit(20)).all(), SAME_PHONE)
    if ssn:
        cond = col(Patient.ssn_bidx).in_(ctx.crypto.blind_indexes(ssn, "ssn"))
        note(ctx.session.execute(sa.select(*cols).where(active, cond).limit(20)).all(), "same SSN")
    out = [
        RegistrationMatch(
            patient=_summary(r),
            reasons=reasons,
        )
        for r, reasons in sorted(found.values(), key=lambda e: (-len(e[1]), e[0].mrn))
        if phone_alone or reasons != [SAME_PHONE]
    ]
    if out:
        audit.record(ctx, _shown(out))
    return out


def _shown(candidates: list[RegistrationMatch]) -> audit.Event:
    """The read of the candidates a registration was shown."""
    return audit.Event(
        "duplicates",
        "patient",
        patient_ids=[c.patient.id for c in candidates],
        fields=["mrn", "first_name", "last_name", "dob", "phone"],
        detail="at registration",
    )


def register(ctx: Ctx, *, allow_duplicate: bool = False, phone_alone: bool = True, **data: Any) -> PatientOut:
    """Register a patient; assigns the next MRN unless one is given. Unless `allow_duplicate`,
    refuses a likely duplicate of an active patient (see `likely_duplicates`, and its
    `phone_alone`). Raises ValidationError, LikelyDuplicate, ConflictError (MRN taken),
    PermissionDenied."""
    require(ctx.actor, "patient.create")
    values = validate_fields(data, today=_today(ctx))
    ssn = values.pop("ssn", None)
    mrn = values.pop("mrn", None)
    session = ctx.session
    if mrn is not None:
        if mrn_taken(session, ctx.org_id, [mrn]):
            raise ConflictError(f"{mrn!r} is already assigned to another patient", field="mrn")
    if not allow_duplicate:
        candidates = likely_duplicates(
            ctx,
            first_name=values["first_name"],
            last_name=values["last_name"],
            dob=values["dob"],
            phone=values.get("phone"),
            ssn=ssn,
            phone_alone=phone_alone,
        )
        if candidates:
            refused = LikelyDuplicate(candidates)
            refused.audit_after_rollback.append(_shown(candidates))  # they were shown all the same
            raise refused
    if mrn is None:
        mrn = next_mrns(session, 1, ctx.org_id)[0]
    row = Patient(org_id=ctx.org_id, mrn=mrn, **values, **derived_columns(values))
    if ssn:
        row.ssn_enc = ctx.crypto.encrypt(ssn, "ssn")
        row.ssn_bidx = ctx.crypto.blind_index(ssn, "ssn")
    row.created_at = row.updated_at = ctx.now()
    session.add(row)
    session.flush()
    fields = sorted(k for k, val in values.items() if val not in (None, False)) + (["ssn"] if ssn else [])
    audit.record(ctx, audit.Event("create", "patient", row.id, patient_id=row.id, fields=fields + ["mrn"]))
    hl7_events.patient(ctx, row, "A04")
    return _to_out(ctx, row)


class PatientAccountOut(PatientOut):
    """A patient's demographics with the account: balance (negative: the practice owes the
    patient) and unapplied credit; both None when the user may not read the ledger."""

    balance: Decimal | None = None
    credit: Decimal | None = None


def show(ctx: Ctx, ref: str | int, *, reveal_ssn: bool = False, account: bool = False) -> PatientOut:
    """One patient's demographics (with `account`, also the balance and credit when the user may
    read the ledger: one SUM query). Raises NotFoundError, PermissionDenied."""
    require(ctx.actor, "patient.read")
    if reveal_ssn:
        require(ctx.actor, "patient.reveal_ssn")
    row = find_patient(ctx, ref, include_merged=True)
    fields = list(PATIENT_FIELDS) + ["mrn"] + (["ssn"] if reveal_ssn and row.ssn_enc else [])
    totals = None
    if account and allowed(ctx.actor.roles, "ledger.read"):
        # the ledger and its tables load only for an account view (payments stand above people)
        from hpms.services.payments.ledger import patient_totals

        totals = patient_totals(ctx.session, ctx.org_id, row.id)
        fields += ["balance", "credit"]
    audit.record(ctx, audit.Event("read", "patient", row.id, patient_id=row.id, fields=fields))
    out = _to_out(ctx, row, reveal_ssn=reveal_ssn)
    if not account:
        return out
    return PatientAccountOut(
        **out.model_dump(), balance=money(totals[0]) if totals else None, credit=money(totals[1]) if totals else None
    )


def _summary(r: Any) -> PatientSummary:
    """A patient row (or a row of its summary columns) as the summary lists show it."""
    return PatientSummary(
        id=r.id,
        mrn=r.mrn,
        first_name=r.first_name,
        last_name=r.last_name,
        preferred_name=r.preferred_name,
        dob=r.dob,
        phone=r.phone,
        active=r.active,
    )


_SUMMARY_NAMES = tuple(PatientSummary.model_fields)  # the same names, in the same order


def _summary_validator() -> Callable[[dict[str, Any]], PatientSummary]:
    """The summary's validator (built on first use: the model defers its build)."""
    return PatientSummary.__pydantic_validator__.validate_python


def _summaries(
    ctx: Ctx, stmt: sa.Select[Any], action: str, detail: str | None, params: dict[str, Any] | None = None
) -> list[PatientSummary]:
    # A Core statement of plain columns: run on the session's connection (its transaction),
    # without the ORM's per-call execution machinery; pending changes are flushed first, as
    # the session would.
    session = ctx.session
    if session.autoflush and (session.new or session.dirty or session.deleted):
        session.flush()
    rows = session.connection().execute(stmt, params).all()
    # The row's leading columns are the summary's fields: pydantic validates a dict of them in
    # one call, about three times faster than reading each column off the Row by name.
    make, names = _summary_validator(), _SUMMARY_NAMES
    out: list[PatientSummary] = [make(dict(zip(names, r))) for r in rows]
    audit.record(
        ctx,
        audit.Event(
            action,
            "patient",
            patient_ids=[p.id for p in out],
            fields=["mrn", "first_name", "last_name", "preferred_name", "dob", "phone"],
            detail=detail,
        ),
    )
    return out


def list_patients(
    ctx: Ctx, *, limit: int = 50, offset: int = 0, include_inactive: bool = False
) -> list[PatientSummary]:
    """Patients by name, a page at a time. Raises PermissionDenied, ValidationError."""
    require(ctx.actor, "patient.read")
    if limit < 1 or limit > 10000:
        raise ValidationError("limit", "must be between 1 and 10000")
    if offset < 0:
        raise ValidationError("offset", "must not be negative")
    stmt = sa.select(*_SUMMARY_COLS).where(Patient.org_id == ctx.org_id)
    if not include_inactive:
        stmt = stmt.where(Patient.active.is_(True))
    stmt = stmt.order_by(Patient.last_norm, Patient.first_norm, Patient.id).limit(limit).offset(offset)
    return _summaries(ctx, stmt, "list", f"limit={limit} offset={offset}")


_DATE_LIKE = re.compile(r"^(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{4})$")


def search(ctx: Ctx, query: str | None, *, limit: int = 50, include_inactive: bool = False) -> list[PatientSummary]:
    """Find patients by name prefix ("smi", "smith jo", "Smith, John"; accent- and
    case-insensitive), date of birth, phone, MRN or (exact) SSN. Raises ValidationError."""
    require(ctx.actor, "patient.read")
    q = (query or "").strip()
    if not q:
        raise ValidationError("query", "is empty")
    if limit < 1 or limit > 1000:
        raise ValidationError("limit", "must be between 1 and 1000")
    # The statement depends only on the kinds of its branches (cached); the values are bound.
    shape: list[str] = ["mrn"]
    params: dict[str, Any] = {"org_id": ctx.org_id, "lim": limit, "b0": q}
    digits = re.sub(r"\D", "", q)
    if _DATE_LIKE.match(q):
        shape.append("dob")
        params["b1"] = v.parse_date("query", q)
        kind = "dob"
    elif re.fullmatch(r"\d{3}-\d{2}-\d{4}", q):
        require(ctx.actor, "patient.reveal_ssn")
        shape.append("ssn")
        params["b1"] = list(ctx.crypto.blind_indexes(digits, "ssn"))
        kind = "ssn"
    elif re.fullmatch(r"[+\d\s().-]+", q) and len(digits) >= 7:
        pd = v.phone_digits(q)
        shape += ["phone", "phone_alt"]
        params["b1"] = params["b2"] = pd
        kind = "phone"
    elif digits == q:
        kind = "mrn"
    else:
        kind = "name"
        if "," in q:
            last, _, first = q.partition(",")
            parts = [(v.fold(last), v.fold(first))]
        else:
            words = v.fold(q).split(" ")
            if len(words) == 1:
                parts = [(words[0], ""), ("", words[0])]
            else:
                a, b = words[0], " ".join(words[1:])
                c, d = " ".join(words[:-1]), words[-1]
                parts = [(b, a), (a, b), (d, c), (c, d)]  # first last / last first
        for last, first in dict.fromkeys(parts):  # two words give each pair twice
            if not (last or first):
                continue
            i = len(shape)
            shape.append("last_first" if last and first else "last" if last else "first")
            for key, prefix in (("l", last), ("f", first)):
                if prefix:
                    params[f"b{i}{key}"] = prefix
                    params[f"b{i}{key}_"] = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    stmt = _search_statement(tuple(shape), include_inactive)
    return _summaries(ctx, stmt, "search", f"by {kind}", params)


@functools.lru_cache(maxsize=64)
def _search_statement(shape: tuple[str, ...], include_inactive: bool) -> sa.Select[Any]:
    """The search for branches of these kinds, its values as bind parameters ("org_id", "lim",
    and per branch i "b{i}" or the bounds "b{i}l"/"b{i}l_" and "b{i}f"/"b{i}f_").

    One SELECT per condition joined by UNION, so that each uses its own index; each name
    branch is ordered and limited on its own, so that the name index (org_id, last_norm,
    first_norm, and the rowid) yields the first `lim` matches in order and stops there, and
    only those few rows per branch are merged and sorted outside. The first `lim` rows of the
    union are the first `lim` of the union of each branch's first `lim` (the order is total:
    id last). With `WHERE a OR b ... ORDER BY name` (or an ORDER BY on the union itself)
    SQLite without statistics walks the whole name index in order instead, and a sort outside
    an unlimited union reads and sorts every match: both grow with the number of patients.
    Built once per shape: building the union and its subqueries cost more than running it."""
    base = sa.select(*_SUMMARY_COLS, Patient.last_norm, Patient.first_norm).where(
        Patient.org_id == sa.bindparam("org_id")
    )
    if not include_inactive:
        base = base.where(Patient.active.is_(True))
    lim = sa.bindparam("lim", type_=sa.Integer)
    order = (Patient.last_norm, Patient.first_norm, Patient.id)
    exact: dict[str, Callable[[str], Any]] = {
        "mrn": lambda n: Patient.mrn == sa.bindparam(n),
        "dob": lambda n: Patient.dob == sa.bindparam(n, type_=Patient.__table__.c.dob.type),
        "ssn": lambda n: col(Patient.ssn_bidx).in_(sa.bindparam(n, expanding=True)),
        "phone": lambda n: Patient.phone_digits == sa.bindparam(n),
        "phone_alt": lambda n: Patient.phone_alt_digits == sa.bindparam(n),
    }
    branches: list[Any] = []
    for i, what in enumerate(shape):
        if what in exact:  # exact matches: few rows each, read through their own index
            branches.append(base.where(exact[what](f"b{i}")))
            continue
        clause: list[Any] = []
        if what in ("last", "last_first"):
            clause += [Patient.last_norm >= sa.bindparam(f"b{i}l"), Patient.last_norm < sa.bindparam(f"b{i}l_")]
        if what in ("first", "last_first"):
            clause += [Patient.first_norm >= sa.bindparam(f"b{i}f"), Patient.first_norm < sa.bindparam(f"b{i}f_")]
        # A first-name-only range orders by a copy of last_norm, so that no plan walks the
        # whole (last, first) index in order hoping to meet its few matches early: it reads
        # its matches through the first-name index and keeps the first `lim` of them.
        by = order if what != "first" else (Patient.last_norm.concat(""), Patient.first_norm, Patient.id)
        branches.append(sa.select(base.where(*clause).order_by(*by).limit(lim).subquery()))
    joined: Any = branches[0] if len(branches) == 1 else sa.union(*branches)
    found = joined.subquery("found")
    return sa.select(found).order_by(found.c.last_norm, found.c.first_norm, found.c.id).limit(lim)


def search_identifier(
    ctx: Ctx, *, ssn: str | None = None, member_id: str | None = None, limit: int = 50
) -> list[PatientSummary]:
    """Exact match on an encrypted identifier through its blind index: an SSN (admin, biller)
    or an insurance member id. Raises ValidationError, PermissionDenied."""
    require(ctx.actor, "patient.read")
    if (ssn is None) == (member_id is None):
        raise ValidationError("ssn", "give exactly one of an SSN and a member id")
    stmt = sa.select(*_SUMMARY_COLS).where(Patient.org_id == ctx.org_id, Patient.active.is_(True))
    if ssn is not None:
        require(ctx.actor, "patient.reveal_ssn")
        digits = v.parse_ssn("ssn", ssn)
        assert digits is not None  # a given SSN parses or raises
        stmt = stmt.where(col(Patient.ssn_bidx).in_(ctx.crypto.blind_indexes(digits, "ssn")))
        kind = "ssn"
    else:
        member = v.require_text("member_id", member_id, 80)
        holders = sa.select(Coverage.patient_id).where(
            Coverage.org_id == ctx.org_id,
            col(Coverage.member_id_bidx).in_(ctx.crypto.blind_indexes(member, "member_id")),
        )
        stmt = stmt.where(col(Patient.id).in_(holders))
        kind = "member_id"
    stmt = stmt.order_by(Patient.last_norm, Patient.first_norm, Patient.id).limit(limit)
    return _summaries(ctx, stmt, "search", f"by {kind}")


def update(ctx: Ctx, ref: str | int, *, expected_version: int | None = None, **data: Any) -> PatientOut:
    """Change demographics; `None` leaves a field alone, "" clears an optional one.
    Raises NotFoundError, ValidationError, ConflictError (stale version), PermissionDenied."""
    require(ctx.actor, "patient.update")
    row = find_patient(ctx, ref)
    if expected_version is not None and expected_version != row.version:
        raise ConflictError(
            f"patient {row.mrn} changed meanwhile (version {row.version}, you had {expected_version})",
            action=Action("patients", "show", target=row.mrn, purpose="reload with"),
        )
    given = {k: val for k, val in data.items() if val is not None}
    if not given:
        raise ValidationError("options", "nothing to change")
    given["_has_phone"] = bool(row.phone)
    given["_has_email"] = bool(row.email)
    given["_channel"] = row.preferred_channel
    values = validate_fields(given, today=_today(ctx), partial=True)
    if "mrn" in values:
        raise ValidationError("mrn", "cannot be changed")
    ssn = values.pop("ssn", "__unset__")
    changed = [k for k, val in values.items() if getattr(row, k) != val]
    for k in changed:
        setattr(row, k, values[k])
    for k, val in derived_columns({k: values[k] for k in changed}).items():
        setattr(row, k, val)
    if ssn != "__unset__":
        if ssn is None:
            row.ssn_enc = row.ssn_bidx = None
        else:
            row.ssn_enc = ctx.crypto.encrypt(ssn, "ssn")
            row.ssn_bidx = ctx.crypto.blind_index(ssn, "ssn")
        changed.append("ssn")
    if changed:
        row.version += 1
        row.updated_at = ctx.now()
        ctx.session.flush()
        audit.record(ctx, audit.Event("update", "patient", row.id, patient_id=row.id, fields=changed))
        hl7_events.patient(ctx, row, "A08")
    return _to_out(ctx, row)


def _name_similarity(a: Patient | sa.Row[Any], b: Patient | sa.Row[Any], floor: float = 0.0) -> float:
    """difflib's ratio of the two folded names, or 0.0 when its cheap upper bounds are already
    below `floor` (ratio() dominated `duplicates`: ~140,000 same-DOB pairs at 100,000 patients)."""
    ka = f"{a.last_norm} {a.first_norm}"
    kb = f"{b.last_norm} {b.first_norm}"
    matcher = difflib.SequenceMatcher(None, ka, kb)
    if floor and (matcher.real_quick_ratio() < floor or matcher.quick_ratio() < floor):
        return 0.0
    return matcher.ratio()


def duplicates(ctx: Ctx, *, limit: int = 100, min_score: int = 50) -> list[DuplicateCandidate]:
    """Likely duplicate pairs, best first: same DOB with a similar name, same phone, e-mail or
    SSN. Raises PermissionDenied."""
    require(ctx.actor, "patient.read")
    session = ctx.session
    cols = (
        *_SUMMARY_COLS,
        Patient.first_norm,
        Patient.last_norm,
        Patient.phone_digits,
        Patient.email_norm,
        Patient.ssn_bidx,
    )
    active = sa.and_(Patient.org_id == ctx.org_id, Patient.active.is_(True))
    pairs: dict[tuple[int, int], dict[str, Any]] = {}

    def groups(column: Any) -> Iterator[list[sa.Row[Any]]]:
        keys = sa.select(column).where(active, column.is_not(None)).group_by(column).having(sa.func.count() > 1)
        rows = session.execute(sa.select(*cols).where(active, column.in_(keys)).order_by(column, Patient.id)).all()
        current: object = object()
        bucket: list[sa.Row[Any]] = []
        for r in rows:
            key = getattr(r, column.key)
            if key != current and bucket:
                yield bucket
                bucket = []
            current = key
            bucket.append(r)
        if bucket:
            yield bucket

    def note(a: sa.Row[Any], b: sa.Row[Any], points: int, reason: str) -> None:
        if a.id > b.id:
            a, b = b, a
        entry = pairs.setdefault((a.id, b.id), {"a": a, "b": b, "score": 0, "reasons": []})
        if reason not in entry["reasons"]:
            entry["score"] += points
            entry["reasons"].append(reason)

    for bucket in groups(Patient.dob):
        for i, a in enumerate(bucket):
            for b in bucket[i + 1 :]:
                close = a.last_norm == b.last_norm and a.first_norm[:1] == b.first_norm[:1]
                sim = _name_similarity(a, b, floor=0.0 if close else 0.75)
                if a.last_norm == b.last_norm and a.first_norm == b.first_norm:
                    note(a, b, 70, "same name and date of birth")
                elif sim >= 0.75 or close:
                    note(a, b, 50, f"same date of birth, similar name ({int(sim * 100)}%)")
    for column, points, reason in (
        (Patient.ssn_bidx, 80, "same SSN"),
        (Patient.phone_digits, 25, "same phone"),
        (Patient.email_norm, 25, "same e-mail"),
    ):
        for bucket in groups(column):
            if len(bucket) > 20:  # a shared clinic or family number, not evidence of anything
                continue
            for i, a in enumerate(bucket):
                for b in bucket[i + 1 :]:
                    if reason != "same SSN" and a.dob != b.dob and _name_similarity(a, b, floor=0.5) < 0.5:
                        continue
                    note(a, b, points, reason)

    summary = _summary

    found = sorted(
        (e for e in pairs.values() if e["score"] >= min_score), key=lambda e: (-e["score"], e["a"].id, e["b"].id)
    )[:limit]
    result = [
        DuplicateCandidate(
            keep=summary(e["a"]), duplicate=summary(e["b"]), score=min(e["score"], 100), reasons=e["reasons"]
        )
        for e in found
    ]
    ids = {c.keep.id for c in result} | {c.duplicate.id for c in result}
    audit.record(
        ctx,
        audit.Event(
            "duplicates", "patient", patient_ids=sorted(ids), fields=["mrn", "first_name", "last_name", "dob", "phone"]
        ),
    )
    return result


def _check_no_double_booking(session: Session, keep: Patient, dup: Patient) -> None:
    """One person cannot hold two visits at once (the database refuses it too): name them."""
    # the scheduling tables load at the first merge, not with every patients command
    from hpms.models import Appointment
    from hpms.models.scheduling import BLOCKING_STATUSES

    a, b = sa.orm.aliased(Appointment), sa.orm.aliased(Appointment)
    clash = session.execute(
        sa.select(a.id, b.id)
        .where(
            a.patient_id == keep.id,
            b.patient_id == dup.id,
            a.status.in_(BLOCKING_STATUSES),
            b.status.in_(BLOCKING_STATUSES),
            a.start_utc < b.end_utc,
            b.start_utc < a.end_utc,
        )
        .limit(1)
    ).first()
    if clash:
        raise ConflictError(
            f"both patients have a visit at the same time (appointments {clash[0]} and {clash[1]})",
            hint="cancel or move one of them, then merge",
        )


def merge(ctx: Ctx, keep_ref: str | int, duplicate_ref: str | int) -> PatientOut:
    """Move everything of DUPLICATE to KEEP, fill KEEP's empty fields from it, and retire
    DUPLICATE (kept, inactive, pointing at KEEP). Raises NotFoundError, ConflictError."""
    require(ctx.actor, "patient.merge")
    keep = find_patient(ctx, keep_ref)
    dup = find_patient(ctx, duplicate_ref)
    if keep.id == dup.id:
        raise ConflictError("the record to keep and the duplicate are the same patient")
    if not keep.active or not dup.active:
        raise ConflictError("both patients must be active to merge")
    session = ctx.session
    _check_no_double_booking(session, keep, dup)
    _scheduling_references()
    moved: dict[str, int] = {}
    for model, column in PATIENT_REFERENCES:
        ref = getattr(model, column)
        res = session.execute(sa.update(model).where(ref == dup.id).values({column: keep.id}))
        moved[model.__tablename__] = res.rowcount or 0
    filled = []
    for f in PATIENT_FIELDS:
        if getattr(keep, f) in (None, "") and getattr(dup, f) not in (None, ""):
            setattr(keep, f, getattr(dup, f))
            filled.append(f)
    for k, val in derived_columns({f: getattr(keep, f) for f in filled}).items():
        setattr(keep, k, val)
    if keep.ssn_enc is None and dup.ssn_enc is not None:
        keep.ssn_enc, keep.ssn_bidx = dup.ssn_enc, dup.ssn_bidx
        filled.append("ssn")
    now = ctx.now()
    keep.version += 1
    keep.updated_at = now
    dup.active = False
    dup.merged_into_id = keep.id
    dup.version += 1
    dup.updated_at = now
    session.flush()
    detail = "moved " + ", ".join(f"{k}={n}" for k, n in moved.items())
    audit.record_many(
        ctx,
        [
            audit.Event(
                "merge",
                "patient",
                keep.id,
                patient_id=keep.id,
                fields=filled,
                detail=f"kept; merged in MRN {dup.mrn}; {detail}",
            ),
            audit.Event(
                "merge",
                "patient",
                dup.id,
                patient_id=dup.id,
                fields=["active", "merged_into_id"],
                detail=f"merged into MRN {keep.mrn}",
            ),
        ],
    )
    hl7_events.patient(ctx, keep, "A40", merged_mrn=dup.mrn)
    return _to_out(ctx, keep)


def can_reveal_ssn(ctx: Ctx) -> bool:
    return allowed(ctx.actor.roles, "patient.reveal_ssn")
