"""What a signed-in patient sees of their account in the portal: the balance of their ledger,
the statements the practice sent them (each opened as the file that was sent), and their past
visits with what became of them. Every read runs as the patient and is audited so.

Card payments online are not taken here: a payment provider's hosted page would be the
adapter (the portal never sees or stores a card number); see the portal guide."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col

from hpms.errors import NotFoundError
from hpms.services.platform import audit
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.models import AppointmentOut
    from hpms.services.platform.context import Ctx

PAST_VISITS = 50  # the most recent past visits shown


@dataclass(frozen=True)
class StatementLine:
    id: int
    number: str
    date: dt.date
    amount_due: Decimal
    format: str


@dataclass(frozen=True)
class Account:
    """The patient's balance (what they owe; negative: in credit), unapplied credit, statements
    (newest first) and past visits (newest first)."""

    patient_id: int
    name: str
    balance: Decimal
    credit: Decimal
    statements: list[StatementLine]
    visits: list[AppointmentOut]


@dataclass(frozen=True)
class StatementFile:
    number: str
    filename: str
    content_type: str
    content: bytes


def _money(cents: int) -> Decimal:
    return Decimal(int(cents)).scaleb(-2)


def _patient_id(ctx: Ctx, action: str) -> int:
    require(ctx.actor, action)  # a patient passes; staff are refused
    assert ctx.actor.patient_id is not None
    return ctx.actor.patient_id


def account(ctx: Ctx) -> Account:
    """The signed-in patient's balance, statements and past visits (read as the patient,
    audited). Raises NotFoundError (not a patient's actor), PermissionDenied (staff)."""
    from hpms.models import Patient
    from hpms.models.receivables import Statement
    from hpms.services.payments import ledger
    from hpms.services.scheduling import online

    pid = _patient_id(ctx, "portal.account")
    visits_all = online.my_visits(ctx, include_past=True)  # NotFoundError for a patient gone
    pat = ctx.session.get(Patient, pid)
    assert pat is not None
    balance, credit = ledger.patient_totals(ctx.session, ctx.org_id, pid)
    rows = (
        ctx.session.execute(
            sa.select(Statement)
            .where(Statement.org_id == ctx.org_id, Statement.patient_id == pid)
            .order_by(col(Statement.created_at).desc(), col(Statement.id).desc())
        )
        .scalars()
        .all()
    )
    statements = [
        StatementLine(st.id or 0, f"{st.id:06d}", st.period_to, _money(st.amount_due_cents), st.format) for st in rows
    ]
    now = ctx.now()
    past = [v for v in visits_all if v.start < now]
    visits = sorted(past, key=lambda v: v.start, reverse=True)[:PAST_VISITS]
    audit.record(
        ctx,
        audit.Event(
            "read",
            "ledger",
            None,
            patient_id=pid,
            fields=["balance", "statements"],
            detail=f"portal: balance, {len(statements)} statement(s), {len(visits)} past visit(s)",
        ),
    )
    name = f"{pat.preferred_name or pat.first_name} {pat.last_name}"
    return Account(pid, name, _money(balance), _money(max(credit, 0)), statements, visits)


def statement(ctx: Ctx, *, statement_id: str | int | None) -> StatementFile:
    """One of the signed-in patient's statements, as the file that was sent (audited). Another
    patient's, an unknown one, or one whose file is gone: NotFoundError (field statement)."""
    from hpms.models.receivables import Statement
    from hpms.services.payments import statements

    pid = _patient_id(ctx, "portal.statement")
    text = str(statement_id).strip() if statement_id is not None else ""
    st = ctx.session.get(Statement, int(text)) if text.isdigit() and len(text) < 12 else None
    if st is None or st.org_id != ctx.org_id or st.patient_id != pid:
        raise NotFoundError(f"no statement {text!r}", field="statement")
    try:
        content = statements.file_of(st).read_bytes()
    except OSError:
        raise NotFoundError(f"the file of statement {st.id:06d} is no longer there", field="statement") from None
    audit.record(
        ctx, audit.Event("read", "statement", st.id, patient_id=pid, fields=["ledger"], detail="portal: opened")
    )
    return StatementFile(f"{st.id:06d}", st.filename, statements.CONTENT_TYPES.get(st.format, "text/plain"), content)
