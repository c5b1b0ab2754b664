"""The money ledger: post entries, reverse them, and derive balances by summing them in SQL.

Amounts are signed Decimals with at most two places (stored as integer cents): charges and
refunds are positive, payments, adjustments and write-offs negative. A transfer to patient
responsibility is given as the (positive) amount moved and writes a pair netting to zero:
-X owed by insurance, +X owed by the patient; a transfer to insurance (what the patient owed,
billed to a payer) the reverse pair, +X owed by insurance, -X owed by the patient. Entries are
never edited: a correction is a reversing entry (the opposite amount, `reverses_id` set); an
entry is reversed at most once and a reversal is not itself reversed (post the entry again
instead).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import col

from hpms.errors import ConflictError, NotFoundError, ValidationError
from hpms.models import Claim, ClaimLine, Encounter, Patient, Payer
from hpms.models.billing_out import money
from hpms.models.ledger import KINDS, RESPONSIBILITIES, TRANSFER_KINDS, LedgerEntry
from hpms.models.receivables import PaymentApplication
from hpms.services.lookups import find_patient, find_payer
from hpms.services.platform import audit
from hpms.services.platform import localtime as lt
from hpms.services.platform.permissions import require
from hpms.services.platform.validation import parse_money

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hpms.services.platform.context import Ctx


# kind -> (sign of the amount, responsibility it must carry or None for either, payer required)
RULES: dict[str, tuple[int, str | None, bool]] = {
    "charge": (1, None, False),
    "insurance_payment": (-1, "insurance", True),
    "contractual_adjustment": (-1, "insurance", True),
    "other_adjustment": (-1, None, False),
    "patient_payment": (-1, "patient", False),
    "refund": (1, None, False),
    "write_off": (-1, None, False),
    "transfer_to_patient": (1, None, True),  # the amount moved; stored as a -X/+X pair
    "transfer_to_insurance": (1, None, True),  # the amount moved; stored as a +X/-X pair
}
_SIGN_WORD = {1: "positive", -1: "negative"}


def parse_amount(value: Any, field: str = "amount") -> int:
    """A signed amount (Decimal, int or text, at most two decimal places, not zero) as cents."""
    return parse_money(field, value, sign="not_zero")


def _kind(kind: Any) -> str:
    text = str(kind or "").strip().lower().replace("-", "_")
    if text not in KINDS:
        raise ValidationError("kind", f"unknown kind {kind!r} (one of: {', '.join(KINDS)})")
    return text


def _responsibility(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in RESPONSIBILITIES:
        raise ValidationError("responsibility", f"{value!r} is not one of: {', '.join(RESPONSIBILITIES)}")
    return text


def _id(field: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    ident = getattr(value, "id", None)
    if isinstance(ident, int):
        return ident
    text = str(value).strip()
    if not text.isdigit():
        raise ValidationError(field, f"{value!r} is not an id")
    return int(text)


def _patient(ctx: Ctx, ref: Any, field: str | None = None) -> Patient:
    if isinstance(ref, Patient):
        ref = ref.id
    return find_patient(ctx, ref, field=field)


def _payer(ctx: Ctx, ref: Any) -> Payer:
    if isinstance(ref, Payer):
        ref = ref.id
    return find_payer(ctx, ref, field="payer")


def _links(ctx: Ctx, patient: Any, encounter: Any, claim: Any, claim_line: Any, payer: Any) -> dict:
    """Resolve and cross-check the links; the finer one implies the coarser (a claim line its
    claim, a claim its encounter and payer)."""
    s = ctx.session
    pat = _patient(ctx, patient, "patient")
    line = cl = enc = pay = None
    if claim_line is not None:
        line = s.get(ClaimLine, _id("claim_line", claim_line))
        if line is None:
            raise NotFoundError(f"no claim line {claim_line!r}")
        if claim is not None and _id("claim", claim) != line.claim_id:
            raise ValidationError("claim_line", f"claim line {line.id} is not on claim {claim}")
        claim = line.claim_id
    if claim is not None:
        cl = s.get(Claim, _id("claim", claim))
        if cl is None or cl.org_id != ctx.org_id:
            raise NotFoundError(f"no claim {claim!r}")
        if cl.patient_id != pat.id:
            raise ValidationError("claim", f"claim {cl.id} is not patient {pat.mrn}'s")
        if encounter is not None and _id("encounter", encounter) != cl.encounter_id:
            raise ValidationError("claim", f"claim {cl.id} is not for encounter {encounter}")
        encounter = cl.encounter_id
    if encounter is not None:
        enc = s.get(Encounter, _id("encounter", encounter))
        if enc is None or enc.org_id != ctx.org_id:
            raise NotFoundError(f"no encounter {encounter!r}")
        if enc.patient_id != pat.id:
            raise ValidationError("encounter", f"encounter {enc.id} is not patient {pat.mrn}'s")
    if payer is not None:
        pay = _payer(ctx, payer)
        if cl is not None and cl.payer_id != pay.id:
            raise ValidationError("payer", f"claim {cl.id} is billed to another payer")
    elif cl is not None:
        pay = s.get(Payer, cl.payer_id)
    return {
        "patient_id": pat.id,
        "encounter_id": enc.id if enc else None,
        "claim_id": cl.id if cl else None,
        "claim_line_id": line.id if line else None,
        "payer_id": pay.id if pay else None,
    }


def _date(value: Any, ctx: Ctx, field: str = "effective_date") -> dt.date:
    """A date given as a date, a datetime or text (YYYY-MM-DD, today, -30...); today when None."""
    if value is None:
        return ctx.now().date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return lt.parse_day(field, str(value), today=ctx.now().date())


def _text(field: str, value: Any, limit: int) -> str | None:
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    if len(text) > limit:
        raise ValidationError(field, f"is longer than {limit} characters")
    return text


def post(
    ctx: Ctx,
    kind: str,
    amount: Any,
    *,
    patient: Any,
    encounter: Any = None,
    claim: Any = None,
    claim_line: Any = None,
    payer: Any = None,
    responsibility: str | None = None,
    effective_date: Any = None,
    reference: str | None = None,
    batch: str | None = None,
    method: str | None = None,
) -> int:
    """Post one money movement; returns the new entry's id (for a transfer, the patient side's).

    `responsibility` defaults to 'insurance' when a payer is given or implied by the claim, else
    'patient'. Raises ValidationError (kind, amount sign, links that do not agree), NotFoundError,
    PermissionDenied."""
    require(ctx.actor, "ledger.post")
    k = _kind(kind)
    cents = parse_amount(amount)
    sign, fixed, needs_payer = RULES[k]
    if (cents > 0) != (sign > 0):
        raise ValidationError("amount", f"a {k.replace('_', ' ')} is {_SIGN_WORD[sign]} (got {amount})")
    links = _links(ctx, patient, encounter, claim, claim_line, payer)
    if needs_payer and links["payer_id"] is None:
        raise ValidationError("payer", f"a {k.replace('_', ' ')} needs a payer (or a claim)")
    if responsibility is None:
        resp = fixed or ("insurance" if links["payer_id"] else "patient")
    else:
        resp = _responsibility(responsibility)
    if fixed and resp != fixed:
        raise ValidationError("responsibility", f"a {k.replace('_', ' ')} is {fixed} responsibility")
    if k == "transfer_to_patient" and responsibility is not None and resp != "patient":
        raise ValidationError("responsibility", "a transfer moves the amount to patient responsibility")
    if k == "transfer_to_insurance" and responsibility is not None and resp != "insurance":
        raise ValidationError("responsibility", "a transfer to insurance moves the amount to insurance responsibility")
    common = dict(
        org_id=ctx.org_id,
        kind=k,
        posted_at=ctx.now(),
        effective_date=_date(effective_date, ctx),
        reference=_text("reference", reference, 200),
        batch=_text("batch", batch, 50),
        method=_text("method", method, 8),
        created_by=ctx.actor.user_id,
        **links,
    )
    s = ctx.session
    if k in TRANSFER_KINDS:
        into = 1 if k == "transfer_to_insurance" else -1  # the insurance side's sign
        out = LedgerEntry(amount_cents=into * cents, responsibility="insurance", **common)
        s.add(out)
        s.flush()
        entry = LedgerEntry(amount_cents=-into * cents, responsibility="patient", pair_id=out.id, **common)
    else:
        entry = LedgerEntry(amount_cents=cents, responsibility=resp, **common)
    s.add(entry)
    s.flush()
    assert entry.id is not None  # assigned by the flush
    audit.record(
        ctx,
        audit.Event(
            "create",
            "ledger_entry",
            entry.id,
            patient_id=links["patient_id"],
            fields=["kind", "amount"],
            detail=f"{k} {money(cents)}",
        ),
    )
    return entry.id


def _load(ctx: Ctx, entry_id: Any) -> LedgerEntry:
    row = ctx.session.get(LedgerEntry, _id("entry", entry_id))
    if row is None or row.org_id != ctx.org_id:
        raise NotFoundError(f"no ledger entry {entry_id!r}")
    return row


def _partner(ctx: Ctx, entry: LedgerEntry) -> LedgerEntry | None:
    if entry.kind not in TRANSFER_KINDS:
        return None
    if entry.pair_id is not None:
        return ctx.session.get(LedgerEntry, entry.pair_id)
    return ctx.session.execute(sa.select(LedgerEntry).where(LedgerEntry.pair_id == entry.id)).scalar_one_or_none()


def reversal_of(
    e: LedgerEntry,
    *,
    at: dt.datetime,
    on: dt.date,
    reference: str | None,
    batch: str | None,
    by: int | None,
    pair_id: int | None = None,
) -> dict[str, Any]:
    """The entry that takes `e` back: the same amount the other way, on the same accounts."""
    return dict(
        org_id=e.org_id,
        kind=e.kind,
        amount_cents=-e.amount_cents,
        responsibility=e.responsibility,
        patient_id=e.patient_id,
        encounter_id=e.encounter_id,
        claim_id=e.claim_id,
        claim_line_id=e.claim_line_id,
        payer_id=e.payer_id,
        posted_at=at,
        effective_date=on,
        reverses_id=e.id,
        pair_id=pair_id,
        reference=reference,
        batch=batch,
        created_by=by,
    )


def reverse(ctx: Ctx, entry_id: Any, reason: str | None) -> int:
    """Cancel an entry with a new one of the opposite amount (and, for a transfer, its pair);
    returns the reversing entry's id. Raises ConflictError when the entry is a reversal or has
    been reversed already, ValidationError without a reason."""
    require(ctx.actor, "ledger.post")
    why = _text("reason", reason, 200)
    if why is None:
        raise ValidationError("reason", "is required")
    s = ctx.session
    entry = _load(ctx, entry_id)
    partner = _partner(ctx, entry)
    if partner is not None and entry.pair_id is None:
        entry, partner = partner, entry  # reverse the insurance side first, the patient side points at it
    originals = [e for e in (partner, entry) if e is not None]
    for e in originals:
        if e.reverses_id is not None:
            raise ConflictError(f"ledger entry {e.id} is a reversal; post the entry again instead")
    done = (
        s.execute(sa.select(LedgerEntry.reverses_id).where(col(LedgerEntry.reverses_id).in_([e.id for e in originals])))
        .scalars()
        .first()
    )
    if done is not None:
        raise ConflictError(f"ledger entry {done} has already been reversed")
    made: dict[int | None, LedgerEntry] = {}  # by the id of the entry reversed
    for e in originals:
        rev = LedgerEntry(
            **reversal_of(
                e,
                at=ctx.now(),
                on=ctx.now().date(),
                reference=why,
                batch=e.batch,
                by=ctx.actor.user_id,
                pair_id=made[e.pair_id].id if e.pair_id in made else None,
            )
        )
        s.add(rev)
        try:
            s.flush()
        except sa.exc.IntegrityError:
            raise ConflictError(f"ledger entry {e.id} has already been reversed") from None
        made[e.id] = rev
    result = made[_id("entry", entry_id)]
    assert result.id is not None  # assigned by the flush
    audit.record(
        ctx,
        audit.Event(
            "reverse",
            "ledger_entry",
            result.id,
            patient_id=entry.patient_id,
            fields=["reverses_id"],
            detail=f"reverses {entry_id}",
        ),
    )
    return result.id


def balance(
    ctx: Ctx,
    *,
    patient: Any = None,
    encounter: Any = None,
    claim: Any = None,
    claim_line: Any = None,
    payer: Any = None,
    responsibility: str | None = None,
    as_of: Any = None,
) -> Decimal:
    """The sum of the entries matching every filter given (effective on or before `as_of`), as
    a two-place Decimal. Raises NotFoundError, ValidationError, PermissionDenied."""
    require(ctx.actor, "ledger.read")
    q = sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount_cents), 0)).where(LedgerEntry.org_id == ctx.org_id)
    if patient is not None:
        q = q.where(LedgerEntry.patient_id == _patient(ctx, patient, "patient").id)
    for column, field, value in (
        (LedgerEntry.encounter_id, "encounter", encounter),
        (LedgerEntry.claim_id, "claim", claim),
        (LedgerEntry.claim_line_id, "claim_line", claim_line),
    ):
        if value is not None:
            q = q.where(column == _id(field, value))
    if payer is not None:
        q = q.where(LedgerEntry.payer_id == _payer(ctx, payer).id)
    if responsibility is not None:
        q = q.where(LedgerEntry.responsibility == _responsibility(responsibility))
    if as_of is not None:
        q = q.where(LedgerEntry.effective_date <= _date(as_of, ctx))
    return Decimal(int(ctx.session.execute(q).scalar_one())).scaleb(-2)


# ---- the patient's account ---------------------------------------------------------------

PAYMENT_KINDS = ("patient_payment", "refund")  # patient money in and out: credit, not owed on a visit


def live_payment(entry: Any) -> sa.ColumnElement[bool]:
    """SQL: the payment `entry` has not been reversed (a bounced check). What was applied from a
    reversed payment no longer pays anything."""
    rev = sa.orm.aliased(LedgerEntry)
    return ~sa.exists().where(rev.reverses_id == entry.id)


def patient_totals(session: Session, org_id: int, patient_id: int) -> tuple[int, int]:
    """(patient balance, unapplied credit) in cents, in one query; no permission check or audit
    (the caller does both). Balance: every patient-responsibility entry (negative is credit);
    credit: patient payments less refunds less what was applied to visits."""
    e = LedgerEntry
    applied = (
        sa.select(sa.func.coalesce(sa.func.sum(PaymentApplication.amount_cents), 0))
        .join(e, e.id == PaymentApplication.payment_entry_id)
        .where(e.org_id == org_id, e.patient_id == patient_id, live_payment(e))
        .scalar_subquery()
    )
    q = sa.select(
        sa.func.coalesce(sa.func.sum(sa.case((e.responsibility == "patient", e.amount_cents), else_=0)), 0),
        sa.func.coalesce(sa.func.sum(sa.case((e.kind.in_(PAYMENT_KINDS), -e.amount_cents), else_=0)), 0),
        applied,
    ).where(e.org_id == org_id, e.patient_id == patient_id)
    bal, paid, used = session.execute(q).one()
    return int(bal), int(paid) - int(used or 0)


class LedgerLine(BaseModel):
    """One entry of a patient's ledger with the running balances after it."""

    id: int
    date: dt.date
    kind: str
    description: str
    encounter_id: int | None
    service_date: dt.date | None
    claim: str | None  # the claim's control number
    code: str | None  # the claim line's procedure code
    payer: str | None
    method: str | None
    reference: str | None
    amount: Decimal
    insurance: Decimal | None  # the amount when insurance owes it
    patient: Decimal | None  # the amount when the patient owes it
    balance: Decimal
    insurance_balance: Decimal
    patient_balance: Decimal


_KIND_TEXT = {
    "charge": "Charge",
    "insurance_payment": "Insurance payment",
    "contractual_adjustment": "Contractual adjustment",
    "other_adjustment": "Adjustment",
    "patient_payment": "Patient payment",
    "refund": "Refund",
    "write_off": "Write-off",
    "transfer_to_patient": "Transfer to patient",
    "transfer_to_insurance": "Transfer to insurance",
}


def describe(
    kind: str,
    *,
    reversal: bool,
    service_date: dt.date | None = None,
    encounter_id: int | None = None,
    claim: str | None = None,
    code: str | None = None,
    payer: str | None = None,
    method: str | None = None,
    brief: bool = False,
) -> str:
    """A one-line description of an entry for ledgers and (`brief`: without the encounter id
    and the claim number) statements."""
    text = _KIND_TEXT.get(kind, kind)
    if reversal:
        text = f"Reversal of {text[0].lower()}{text[1:]}"
    parts = []
    if code:
        parts.append(code)
    if encounter_id is not None:
        if brief:
            parts.append(f"visit {service_date.isoformat()}" if service_date else "visit")
        else:
            parts.append(
                f"visit {service_date.isoformat()} (encounter {encounter_id})"
                if service_date
                else f"encounter {encounter_id}"
            )
    if claim and not brief:
        parts.append(f"claim {claim}")
    if payer:
        parts.append(payer)
    if method:
        parts.append(method)
    return text + (": " + ", ".join(parts) if parts else "")


def entry_rows(ctx: Ctx, patient_id: int, *, posted_after: dt.datetime | None = None) -> list[sa.Row]:
    """The patient's entries (posted after `posted_after`) with their links resolved,
    oldest first: (entry, service date, claim number, code, payer name) rows. No permission
    check or audit (the caller does both)."""
    e = LedgerEntry
    q = (
        sa.select(e, Encounter.service_date, Claim.control_number, ClaimLine.code, Payer.name)
        .outerjoin(Encounter, Encounter.id == e.encounter_id)
        .outerjoin(Claim, Claim.id == e.claim_id)
        .outerjoin(ClaimLine, ClaimLine.id == e.claim_line_id)
        .outerjoin(Payer, Payer.id == e.payer_id)
        .where(e.org_id == ctx.org_id, e.patient_id == patient_id)
        .order_by(e.effective_date, e.id)
    )
    if posted_after is not None:
        q = q.where(e.posted_at > posted_after)
    return list(ctx.session.execute(q).all())


def entries(ctx: Ctx, patient: Any) -> list[LedgerLine]:
    """Every ledger entry of a patient, oldest first, with a description (claim, visit, code,
    payer), the insurance and patient sides and the running balances. Audited. Raises
    NotFoundError, PermissionDenied."""
    require(ctx.actor, "ledger.read")
    pat = _patient(ctx, patient)
    total = ins = own = 0
    out = []
    for entry, dos, claim_no, code, payer_name in entry_rows(ctx, pat.id):
        total += entry.amount_cents
        if entry.responsibility == "insurance":
            ins += entry.amount_cents
        else:
            own += entry.amount_cents
        out.append(
            LedgerLine(
                id=entry.id,
                date=entry.effective_date,
                kind=entry.kind,
                description=describe(
                    entry.kind,
                    reversal=entry.reverses_id is not None,
                    service_date=dos,
                    encounter_id=entry.encounter_id,
                    claim=claim_no,
                    code=code,
                    payer=payer_name,
                    method=entry.method,
                ),
                encounter_id=entry.encounter_id,
                service_date=dos,
                claim=claim_no,
                code=code,
                payer=payer_name,
                method=entry.method,
                reference=entry.reference,
                amount=money(entry.amount_cents),
                insurance=money(entry.amount_cents) if entry.responsibility == "insurance" else None,
                patient=money(entry.amount_cents) if entry.responsibility == "patient" else None,
                balance=money(total),
                insurance_balance=money(ins),
                patient_balance=money(own),
            )
        )
    audit.record(
        ctx,
        audit.Event(
            "read",
            "ledger_entry",
            None,
            patient_id=pat.id,
            fields=["kind", "amount"],
            detail=f"patient ledger of {len(out)}",
        ),
    )
    return out
