"""Patient payments and refunds, and how patient credit pays visits.

A payment is one ledger entry `patient_payment` (negative, patient responsibility) with its
method and reference; which visit it pays is kept in `payment_application` rows. A payment
recorded for a visit (`apply_to`, e.g. a copay at check-in) is applied to that visit whole;
any other payment is credit, applied to the patient's open visits oldest first (by date of
service). A refund pays credit back and may not exceed it.

A visit's open amount is what the patient owes on it (transfers to patient responsibility,
patient-side charges and adjustments) less what was applied to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import aliased
from sqlmodel import col

from hpms.errors import Action, NotFoundError, ValidationError
from hpms.models import Encounter, Patient
from hpms.models.billing_out import money
from hpms.models.ledger import LedgerEntry
from hpms.models.receivables import PaymentApplication
from hpms.services.lookups import find_patient, load_appointment
from hpms.services.payments import ledger
from hpms.services.platform import audit
from hpms.services.platform.permissions import require
from hpms.services.platform.validation import parse_money

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hpms.services.platform.context import Ctx

METHODS = ("cash", "card", "check", "other")
MAX_REFERENCE = 200


class ApplicationOut(BaseModel):
    encounter_id: int
    service_date: dt.date
    amount: Decimal


class PaymentOut(BaseModel):
    """A patient payment or refund (`amount` as the user gave it: positive)."""

    id: int
    kind: str  # patient_payment or refund
    patient_id: int
    mrn: str
    patient: str
    date: dt.date
    amount: Decimal
    method: str | None
    reference: str | None
    encounter_id: int | None  # the visit it was recorded for (`apply_to`)
    reverses_id: int | None = None  # set on a reversal (a bounced check): it cancels that entry
    applied: list[ApplicationOut] = []
    unapplied: Decimal = Decimal("0.00")
    credit: Decimal | None = None  # the patient's unapplied credit after it (record and refund only)
    balance: Decimal | None = None  # the patient's balance after it (record and refund only)


class CreditOut(BaseModel):
    patient_id: int
    mrn: str
    balance: Decimal  # what the patient owes (negative: the practice owes the patient)
    credit: Decimal  # payments not applied to a visit yet


class VisitOpen(BaseModel):
    """What the patient still owes on one visit (encounter_id None: amounts not tied to a visit)."""

    encounter_id: int | None
    service_date: dt.date | None
    since: dt.date  # the day the patient first owed on it
    open_cents: int


# ---- parsing -------------------------------------------------------------------------------


def parse_positive(value: Any, field: str = "amount") -> int:
    """A money amount the user gives as positive (e.g. "25.00"), as cents."""
    return parse_money(field, value)


def parse_method(value: Any) -> str:
    text = str(value or "").strip().lower()
    if not text:
        raise ValidationError("method", f"is required (one of: {', '.join(METHODS)})")
    if text not in METHODS:
        raise ValidationError("method", f"unknown method {str(value).strip()!r} (one of: {', '.join(METHODS)})")
    return text


def _reference(value: Any) -> str | None:
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    if len(text) > MAX_REFERENCE:
        raise ValidationError("reference", f"is longer than {MAX_REFERENCE} characters")
    if any(ord(c) < 32 for c in text):
        raise ValidationError("reference", "contains control characters")
    return text


def _day(field: str, value: Any, ctx: Ctx) -> dt.date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return ledger._date(value, ctx, field)


def _patient(ctx: Ctx, ref: Any, field: str = "patient", *, lock: bool = False) -> Patient:
    row = find_patient(ctx, ref.id if isinstance(ref, Patient) else ref, field=field)
    if lock:
        # One writer of a patient's credit at a time (PostgreSQL; SQLite serialises writers).
        ctx.session.execute(sa.select(Patient.id).where(Patient.id == row.id).with_for_update())
    return row


def _encounter(ctx: Ctx, ref: Any, pat: Patient) -> Encounter:
    text = str(ref).strip()
    if not text.isdigit():
        raise ValidationError("apply_to", f"{text!r} is not an encounter id")
    enc = ctx.session.get(Encounter, int(text))
    if enc is None or enc.org_id != ctx.org_id:
        raise NotFoundError(
            f"no encounter {text}",
            field="apply_to",
            action=Action("encounters", "list", give=(("patient", pat.mrn),)),
        )
    if enc.patient_id != pat.id:
        raise ValidationError("apply_to", f"encounter {enc.id} is not patient {pat.mrn}'s visit")
    if enc.status == "void":
        raise ValidationError("apply_to", f"encounter {enc.id} is void")
    return enc


# ---- credit and open visits ----------------------------------------------------------------


def open_visits(session: Session, org_id: int, patient_id: int) -> list[VisitOpen]:
    """The patient's visits with what is still owed on them (positive or not), oldest first."""
    e, a = LedgerEntry, PaymentApplication
    owed = (
        sa.select(
            e.encounter_id, sa.func.sum(e.amount_cents).label("owed"), sa.func.min(e.effective_date).label("since")
        )
        .where(
            e.org_id == org_id,
            e.patient_id == patient_id,
            e.responsibility == "patient",
            e.kind.not_in(ledger.PAYMENT_KINDS),
        )
        .group_by(e.encounter_id)
    )
    applied: dict[int, int] = dict(
        session.execute(
            sa.select(a.encounter_id, sa.func.sum(a.amount_cents))
            .join(e, e.id == a.payment_entry_id)
            .where(e.org_id == org_id, e.patient_id == patient_id, ledger.live_payment(e))
            .group_by(a.encounter_id)
        ).all()
    )
    rows = session.execute(owed).all()
    ids = [r.encounter_id for r in rows if r.encounter_id is not None] + list(applied)
    dates: dict[int | None, dt.date] = (
        dict(session.execute(sa.select(Encounter.id, Encounter.service_date).where(col(Encounter.id).in_(ids))).all())
        if ids
        else {}
    )
    out: dict[int | None, VisitOpen] = {}
    for r in rows:
        out[r.encounter_id] = VisitOpen(
            encounter_id=r.encounter_id,
            service_date=dates.get(r.encounter_id),
            since=r.since,
            open_cents=int(r.owed) - int(applied.get(r.encounter_id, 0)),
        )
    for enc_id, cents in applied.items():  # paid ahead (a copay before the visit was billed)
        if enc_id not in out:
            out[enc_id] = VisitOpen(
                encounter_id=enc_id, service_date=dates.get(enc_id), since=dates.get(enc_id), open_cents=-int(cents)
            )
    return sorted(out.values(), key=lambda v: (v.service_date or v.since, v.encounter_id or 0))


def _apply_credit(ctx: Ctx, patient_id: int) -> list[ApplicationOut]:
    """Apply the patient's unapplied credit to open visits, oldest date of service first, taking
    it from the oldest payments first. No permission check: for callers that made their own
    (a payment, an 835 posting that moved an amount to patient responsibility)."""
    s = ctx.session
    _, credit = ledger.patient_totals(s, ctx.org_id, patient_id)
    if credit <= 0:
        return []
    visits = [v for v in open_visits(s, ctx.org_id, patient_id) if v.encounter_id is not None and v.open_cents > 0]
    if not visits:
        return []
    e, a = LedgerEntry, PaymentApplication
    rev = aliased(LedgerEntry)
    used = (
        sa.select(a.payment_entry_id, sa.func.sum(a.amount_cents).label("used")).group_by(a.payment_entry_id).subquery()
    )
    payments = s.execute(
        sa.select(e.id, (-e.amount_cents - sa.func.coalesce(used.c.used, 0)).label("left"))
        .outerjoin(used, used.c.payment_entry_id == e.id)
        .where(
            e.org_id == ctx.org_id,
            e.patient_id == patient_id,
            e.kind == "patient_payment",
            e.amount_cents < 0,
            col(e.reverses_id).is_(None),
            ~sa.exists().where(rev.reverses_id == e.id),
        )  # a reversed payment pays nothing
        .order_by(e.effective_date, e.id)
    ).all()
    sources = [[p.id, int(p.left)] for p in payments if p.left > 0]
    made: list[ApplicationOut] = []
    now = ctx.now()
    for visit in visits:
        need = min(visit.open_cents, credit)
        while need > 0 and sources:
            pid, left = sources[0]
            take = min(need, left)
            s.add(
                PaymentApplication(
                    org_id=ctx.org_id,
                    payment_entry_id=pid,
                    encounter_id=visit.encounter_id,
                    amount_cents=take,
                    applied_at=now,
                    applied_by=ctx.actor.user_id,
                )
            )
            made.append(
                ApplicationOut(encounter_id=visit.encounter_id, service_date=visit.service_date, amount=money(take))
            )
            need -= take
            credit -= take
            sources[0][1] -= take
            if sources[0][1] == 0:
                sources.pop(0)
        if credit <= 0 or not sources:
            break
    if made:
        s.flush()
        audit.record(
            ctx,
            audit.Event(
                "create",
                "payment_application",
                None,
                patient_id=patient_id,
                fields=["encounter_id", "amount"],
                detail=f"{len(made)} application(s) of credit",
            ),
        )
    return made


def apply_credit(ctx: Ctx, patient: Any) -> list[ApplicationOut]:
    """Apply a patient's unapplied credit to open visits, oldest first; returns what was applied.
    Raises NotFoundError, PermissionDenied."""
    require(ctx.actor, "payments.record")
    pat = _patient(ctx, patient, lock=True)
    return _apply_credit(ctx, pat.id)


# ---- payments and refunds ------------------------------------------------------------------


def _name(p: Patient) -> str:
    return f"{p.first_name} {p.last_name}"


def _applications(ctx: Ctx, entry_ids: Sequence[int | None]) -> dict[int, list[ApplicationOut]]:
    found: dict[int, list[ApplicationOut]] = {}
    if not entry_ids:
        return found
    rows = ctx.session.execute(
        sa.select(
            PaymentApplication.payment_entry_id,
            PaymentApplication.encounter_id,
            Encounter.service_date,
            PaymentApplication.amount_cents,
        )
        .join(Encounter, Encounter.id == PaymentApplication.encounter_id)
        .where(PaymentApplication.payment_entry_id.in_(entry_ids))
        .order_by(PaymentApplication.id)
    ).all()
    for pid, enc_id, dos, cents in rows:
        found.setdefault(pid, []).append(ApplicationOut(encounter_id=enc_id, service_date=dos, amount=money(cents)))
    return found


def _out(
    ctx: Ctx, entry: LedgerEntry, pat: Patient, *, totals: bool, applied: list[ApplicationOut] | None = None
) -> PaymentOut:
    if applied is None:
        applied = _applications(ctx, [entry.id]).get(entry.id, [])
    amount = abs(entry.amount_cents)
    paid = Decimal(amount).scaleb(-2)
    used = sum((a.amount for a in applied), Decimal("0.00"))
    out = PaymentOut(
        id=entry.id,
        kind=entry.kind,
        patient_id=pat.id,
        mrn=pat.mrn,
        patient=_name(pat),
        date=entry.effective_date,
        amount=paid,
        method=entry.method,
        reference=entry.reference,
        encounter_id=entry.encounter_id,
        reverses_id=entry.reverses_id,
        applied=applied,
        unapplied=paid - used if entry.kind == "patient_payment" and entry.amount_cents < 0 else Decimal("0.00"),
    )
    if totals:
        bal, credit = ledger.patient_totals(ctx.session, ctx.org_id, pat.id)
        out.balance, out.credit = money(bal), money(credit)
    return out


def _write(
    ctx: Ctx,
    kind: str,
    cents: int,
    pat: Patient,
    *,
    method: str,
    reference: str | None,
    encounter_id: int | None,
    day: dt.date,
) -> LedgerEntry:
    entry = LedgerEntry(
        org_id=ctx.org_id,
        kind=kind,
        amount_cents=cents,
        responsibility="patient",
        patient_id=pat.id,
        encounter_id=encounter_id,
        posted_at=ctx.now(),
        effective_date=day,
        reference=reference,
        method=method,
        created_by=ctx.actor.user_id,
    )
    ctx.session.add(entry)
    ctx.session.flush()
    audit.record(
        ctx,
        audit.Event(
            "create",
            "ledger_entry",
            entry.id,
            patient_id=pat.id,
            fields=["kind", "amount", "method"] + (["reference"] if reference else []),
            detail=f"{kind} {money(abs(cents))}",
        ),
    )
    return entry


def _appointment_encounter(ctx: Ctx, ref: Any, pat: Patient) -> Encounter | None:
    appt = load_appointment(ctx, ref, field="appointment")
    if appt.patient_id != pat.id:
        raise ValidationError("appointment", f"appointment {appt.id} is not patient {pat.mrn}'s")
    return (
        ctx.session.execute(sa.select(Encounter).where(Encounter.appointment_id == appt.id, Encounter.status != "void"))
        .scalars()
        .first()
    )


def record(
    ctx: Ctx,
    *,
    patient: Any,
    amount: Any,
    method: str | None,
    reference: str | None = None,
    apply_to: Any = None,
    appointment: Any = None,
    date: Any = None,
) -> PaymentOut:
    """Record a patient payment. With `apply_to` (an encounter of that patient) it pays that
    visit whole; with `appointment` (a copay at check-in) it pays the appointment's encounter
    when there is one; otherwise it is credit and pays open visits oldest first. Raises
    ValidationError (amount not positive money, unknown method, another patient's encounter or
    appointment, future date), NotFoundError (patient, encounter, appointment), PermissionDenied."""
    require(ctx.actor, "payments.record")
    cents = parse_positive(amount)
    how = parse_method(method)
    ref = _reference(reference)
    day = _day("date", date, ctx) or ctx.now().date()
    if day > ctx.now().date():
        raise ValidationError("date", f"{day} is in the future")
    given = [
        f for f, val in (("apply_to", apply_to), ("appointment", appointment)) if val is not None and str(val).strip()
    ]
    if len(given) > 1:
        raise ValidationError("appointment", "give the encounter or the appointment it pays, not both")
    pat = _patient(ctx, patient, lock=True)
    enc = None
    if given == ["apply_to"]:
        enc = _encounter(ctx, apply_to, pat)
    elif given == ["appointment"]:
        enc = _appointment_encounter(ctx, appointment, pat)
    entry = _write(
        ctx, "patient_payment", -cents, pat, method=how, reference=ref, encounter_id=enc.id if enc else None, day=day
    )
    if enc is not None:
        ctx.session.add(
            PaymentApplication(
                org_id=ctx.org_id,
                payment_entry_id=entry.id,
                encounter_id=enc.id,
                amount_cents=cents,
                applied_at=ctx.now(),
                applied_by=ctx.actor.user_id,
            )
        )
        ctx.session.flush()
    else:
        _apply_credit(ctx, pat.id)
    return _out(ctx, entry, pat, totals=True)


def refund(ctx: Ctx, *, patient: Any, amount: Any, method: str | None, reference: str | None = None) -> PaymentOut:
    """Pay a patient's unapplied credit back. Raises ValidationError (amount not positive money
    or more than the credit, unknown method), NotFoundError, PermissionDenied."""
    require(ctx.actor, "payments.refund")
    cents = parse_positive(amount)
    how = parse_method(method)
    ref = _reference(reference)
    pat = _patient(ctx, patient, lock=True)
    _, credit = ledger.patient_totals(ctx.session, ctx.org_id, pat.id)
    if cents > credit:
        raise ValidationError(
            "amount", f"{money(cents)} is more than patient {pat.mrn}'s unapplied credit {money(max(credit, 0))}"
        )
    entry = _write(ctx, "refund", cents, pat, method=how, reference=ref, encounter_id=None, day=ctx.now().date())
    return _out(ctx, entry, pat, totals=True)


def credit(ctx: Ctx, patient: Any) -> CreditOut:
    """A patient's balance and unapplied credit. Audited. Raises NotFoundError, PermissionDenied."""
    require(ctx.actor, "ledger.read")
    pat = _patient(ctx, patient)
    bal, cred = ledger.patient_totals(ctx.session, ctx.org_id, pat.id)
    audit.record(ctx, audit.Event("read", "ledger_entry", None, patient_id=pat.id, fields=["balance", "credit"]))
    return CreditOut(patient_id=pat.id, mrn=pat.mrn, balance=money(bal), credit=money(cred))


def list_payments(ctx: Ctx, *, patient: Any = None, since: Any = None, until: Any = None) -> list[PaymentOut]:
    """Patient payments and refunds (of one patient, effective since..until), oldest first.
    Audited. Raises ValidationError (the dates, as fields `start` and `end`), NotFoundError,
    PermissionDenied."""
    require(ctx.actor, "ledger.read")
    start, end = _day("start", since, ctx), _day("end", until, ctx)
    if start and end and end < start:
        raise ValidationError("end", f"{end} is before the start of the range, {start}")
    e = LedgerEntry
    q = (
        sa.select(e, Patient)
        .join(Patient, Patient.id == e.patient_id)
        .where(e.org_id == ctx.org_id, e.kind.in_(ledger.PAYMENT_KINDS))
        .order_by(e.effective_date, e.id)
    )
    if patient is not None and str(patient).strip():
        q = q.where(e.patient_id == _patient(ctx, patient).id)
    if start:
        q = q.where(e.effective_date >= start)
    if end:
        q = q.where(e.effective_date <= end)
    rows = ctx.session.execute(q).all()
    apps = _applications(ctx, [entry.id for entry, _ in rows])
    out = [_out(ctx, entry, pat, totals=False, applied=apps.get(entry.id, [])) for entry, pat in rows]
    if out:
        audit.record(
            ctx,
            audit.Event(
                "read",
                "ledger_entry",
                None,
                patient_ids=sorted({o.patient_id for o in out}),
                fields=["kind", "amount", "method"],
                detail=f"payments {start or ''}..{end or ''}",
            ),
        )
    return out
