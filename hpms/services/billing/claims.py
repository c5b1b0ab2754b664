"""Claims after the billing run: list, show (lines, history), mark a file submitted, void and
resubmit (frequency 8 / 7 with the payer's claim number, or a new original after a rejection),
status changes reported by the payer, and the work list."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import SQLModel, col

from hpms.db import bulk_insert, new_ids
from hpms.errors import Action, ConflictError, NotFoundError, ValidationError
from hpms.models import (
    Claim,
    ClaimEvent,
    ClaimLine,
    Encounter,
    Patient,
    Payer,
    WorklistItem,
    X12File,
)
from hpms.models.base import DEFERRED
from hpms.models.billing import CLAIM_STATUSES
from hpms.models.billing_out import money
from hpms.services.billing.control import CLAIM_COUNTER
from hpms.services.billing.runner import post_charges
from hpms.services.lookups import find_payer, load_claim
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.counters import reserve
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

# status -> statuses it may move to by hand (a status the payer reported; later the 277/835 import)
TRANSITIONS = {
    "ready": {"submitted"},
    "submitted": {"accepted", "rejected"},
    "accepted": {"paid", "partially_paid", "patient_resp", "denied"},
    "rejected": {"closed"},
    "paid": {"closed"},
    "partially_paid": {"paid", "closed"},
    "patient_resp": {"closed"},
    "denied": {"closed"},
    "closed": set(),
    "void": set(),
}
ADJUDICATED = {"accepted", "paid", "partially_paid", "patient_resp", "denied", "closed"}


class ClaimLineOut(SQLModel):
    model_config = DEFERRED
    seq: int
    code: str
    modifiers: list[str]
    units: int
    pointers: list[int]
    charge: Decimal
    service_date: dt.date


class ClaimEventOut(SQLModel):
    model_config = DEFERRED
    at: dt.datetime
    status: str
    note: str | None


class ClaimOut(SQLModel):
    model_config = DEFERRED
    id: int
    control_number: str
    status: str
    frequency: str
    encounter_id: int
    patient_id: int
    patient: str
    mrn: str
    payer: str
    payer_code: str
    service_date: dt.date
    total: Decimal
    original_claim_id: int | None
    payer_claim_number: str | None
    file: str | None
    created_at: dt.datetime
    lines: list[ClaimLineOut] | None = None
    history: list[ClaimEventOut] | None = None


class WorklistOut(SQLModel):
    model_config = DEFERRED
    id: int
    encounter_id: int | None
    claim_id: int | None
    patient: str | None
    service_date: dt.date | None
    rule_id: str
    severity: str
    field: str | None
    message: str
    created_at: dt.datetime


def _select():
    return (
        sa.select(
            Claim,
            Patient.first_name,
            Patient.last_name,
            Patient.mrn,
            Payer.name.label("payer_name"),
            Payer.payer_id.label("payer_code"),
            Encounter.service_date,
            X12File.filename,
        )
        .join(Patient, Patient.id == Claim.patient_id)
        .join(Payer, Payer.id == Claim.payer_id)
        .join(Encounter, Encounter.id == Claim.encounter_id)
        .outerjoin(X12File, X12File.id == Claim.x12_file_id)
    )


def _out(r) -> ClaimOut:
    c = r[0]
    return ClaimOut(
        id=c.id,
        control_number=c.control_number,
        status=c.status,
        frequency=c.frequency,
        encounter_id=c.encounter_id,
        patient_id=c.patient_id,
        patient=f"{r.first_name} {r.last_name}",
        mrn=r.mrn,
        payer=r.payer_name,
        payer_code=r.payer_code,
        service_date=r.service_date,
        total=money(c.total_cents),
        original_claim_id=c.original_claim_id,
        payer_claim_number=c.payer_claim_number,
        file=r.filename,
        created_at=c.created_at,
    )


MAX_PAGE = 10000


class ClaimPage(SQLModel):
    """One page of claims, newest first, and how many match in all."""

    model_config = DEFERRED
    rows: list[ClaimOut]
    total: int
    offset: int
    limit: int

    @property
    def more(self) -> bool:
        return self.offset + len(self.rows) < self.total


def _claim_filter(ctx: Ctx, status: str | None, payer: str | None) -> list:
    conditions = [Claim.org_id == ctx.org_id]
    if status:
        conditions.append(Claim.status == v.parse_choice("status", status, CLAIM_STATUSES))
    if payer:
        conditions.append(Claim.payer_id == find_payer(ctx, payer, field="payer").id)
    return conditions


def claims_page(
    ctx: Ctx, *, status: str | None = None, payer: str | None = None, limit: int = 50, offset: int = 0
) -> ClaimPage:
    """Claims newest first, `limit` from `offset`, with the number that match in all. Raises
    ValidationError (bad status, limit or offset), NotFoundError (unknown payer), PermissionDenied."""
    require(ctx.actor, "claims.read")
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError("limit", f"must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise ValidationError("offset", "must not be negative")
    conditions = _claim_filter(ctx, status, payer)
    q = _select().where(*conditions).order_by(col(Claim.id).desc()).limit(limit).offset(offset)
    rows = [_out(r) for r in ctx.session.execute(q)]
    total = ctx.session.execute(sa.select(sa.func.count()).select_from(Claim).where(*conditions)).scalar_one()
    audit.record_list(
        ctx, "claim", (r.patient_id for r in rows), len(rows), f"list of {len(rows)} (offset {offset}, {total} in all)"
    )
    return ClaimPage(rows=rows, total=total, offset=offset, limit=limit)


def list_claims(
    ctx: Ctx, *, status: str | None = None, payer: str | None = None, limit: int = 500, offset: int = 0
) -> list[ClaimOut]:
    """`claims_page` without the count."""
    return claims_page(ctx, status=status, payer=payer, limit=limit, offset=offset).rows


def show(ctx: Ctx, claim_id: int | str) -> ClaimOut:
    require(ctx.actor, "claims.read")
    c = load_claim(ctx, claim_id)
    out = _out(ctx.session.execute(_select().where(Claim.id == c.id)).one())
    out.lines = [
        ClaimLineOut(
            seq=ln.seq,
            code=ln.code,
            modifiers=[m for m in ln.modifiers.split(",") if m],
            units=ln.units,
            pointers=[int(p) for p in ln.pointers.split(",") if p],
            charge=money(ln.charge_cents),
            service_date=ln.service_date,
        )
        for ln in ctx.session.execute(
            sa.select(ClaimLine).where(ClaimLine.claim_id == c.id).order_by(ClaimLine.seq)
        ).scalars()
    ]
    out.history = [
        ClaimEventOut(at=e.at, status=e.status, note=e.note)
        for e in ctx.session.execute(
            sa.select(ClaimEvent).where(ClaimEvent.claim_id == c.id).order_by(ClaimEvent.at, ClaimEvent.id)
        ).scalars()
    ]
    audit.record(ctx, audit.Event("read", "claim", c.id, patient_id=c.patient_id))
    return out


def _event(ctx: Ctx, c: Claim, status: str, note: str | None) -> None:
    ctx.session.add(ClaimEvent(claim_id=c.id, at=ctx.now(), status=status, note=note, user_id=ctx.actor.user_id))


def set_status(
    ctx: Ctx, claim_id: int | str, status: str, *, note: str | None = None, payer_claim_number: str | None = None
) -> ClaimOut:
    """A status the payer reported (acknowledgement, adjudication), checked against TRANSITIONS."""
    require(ctx.actor, "claims.write")
    c = load_claim(ctx, claim_id)
    new = v.parse_choice("status", status, CLAIM_STATUSES)
    if new not in TRANSITIONS.get(c.status, set()):
        allowed = ", ".join(sorted(TRANSITIONS.get(c.status, set()))) or "none"
        raise ConflictError(f"claim {c.id} is {c.status}; it cannot become {new} (allowed: {allowed})")
    c.status = new
    if new == "closed":
        # payments stands on billing: its denial work list is loaded only when a claim closes
        from hpms.services.payments.denials import settle

        settle(ctx, c.id)
    if payer_claim_number:
        c.payer_claim_number = v.require_text("payer_claim_number", payer_claim_number, 50)
    c.updated_at = ctx.now()
    _event(ctx, c, new, v.optional_text("note", note, 500))
    ctx.session.flush()
    audit.record(
        ctx, audit.Event("update", "claim", c.id, patient_id=c.patient_id, fields=["status"], detail=f"-> {new}")
    )
    return show(ctx, c.id)


def mark_submitted(ctx: Ctx, file_ref: int | str | Path) -> dict:
    """The file was uploaded to the clearinghouse: its ready claims become submitted."""
    require(ctx.actor, "claims.write")
    text = str(file_ref).strip()
    q = sa.select(X12File).where(X12File.org_id == ctx.org_id)
    f = None
    if text.isdigit():
        f = ctx.session.execute(q.where(X12File.id == int(text))).scalar_one_or_none()
    if f is None:
        f = ctx.session.execute(q.where(X12File.filename == Path(text).name)).scalar_one_or_none()
    if f is None:
        raise NotFoundError(f"no 837P file {text!r} written by hpms", action=Action("billing", "files"))
    if f.status == "submitted":
        raise ConflictError(f"file {f.filename} was already marked submitted on {f.submitted_at:%Y-%m-%d}")
    if f.status != "written":
        raise ConflictError(
            f"file {f.filename} is {f.status}: not written yet; the next billing run finishes it",
            action=Action("billing", "run"),
        )
    now = ctx.now()
    ids = list(
        ctx.session.execute(sa.select(Claim.id).where(Claim.x12_file_id == f.id, Claim.status == "ready")).scalars()
    )
    ctx.session.execute(sa.update(Claim).where(col(Claim.id).in_(ids)).values(status="submitted", updated_at=now))
    bulk_insert(
        ctx.session,
        ClaimEvent.__table__,
        [dict(claim_id=i, at=now, status="submitted", note=f.filename, user_id=ctx.actor.user_id) for i in ids],
    )
    f.status, f.submitted_at = "submitted", now
    ctx.session.flush()
    audit.record(ctx, audit.Event("update", "x12_file", f.id, fields=["status"], detail=f"{len(ids)} claims submitted"))
    return {"file": f.filename, "claims": len(ids)}


def _move_charges(ctx: Ctx, old: Claim, new: Claim) -> None:
    """A new original (after a rejection) or a replacement claim bills the same charges: they
    leave the old claim's lines (reversing entries) and are posted on the new claim's, so the
    encounter's balance does not change and each claim's balance is its own."""
    # the ledger tables load on first use (the claims commands that move no charges do not build them)
    from hpms.models import LedgerEntry

    rev = sa.orm.aliased(LedgerEntry)
    charged = (
        ctx.session.execute(
            sa.select(LedgerEntry)
            .where(LedgerEntry.claim_id == old.id, LedgerEntry.kind == "charge", col(LedgerEntry.reverses_id).is_(None))
            .where(~sa.exists().where(rev.reverses_id == LedgerEntry.id))
        )
        .scalars()
        .all()
    )
    now = ctx.now()
    for e in charged:
        ctx.session.add(
            LedgerEntry(
                org_id=e.org_id,
                kind="charge",
                amount_cents=-e.amount_cents,
                responsibility=e.responsibility,
                patient_id=e.patient_id,
                encounter_id=e.encounter_id,
                claim_id=e.claim_id,
                claim_line_id=e.claim_line_id,
                payer_id=e.payer_id,
                posted_at=now,
                effective_date=e.effective_date,
                reverses_id=e.id,
                reference=f"moved to claim {new.id}",
                batch=e.batch,
                created_by=ctx.actor.user_id,
            )
        )
    if charged:
        post_charges(ctx, new.id, batch=f"claim {new.id}")
    ctx.session.flush()


def _copy(ctx: Ctx, c: Claim, frequency: str, payer_claim_number: str | None) -> Claim:
    now = ctx.now()
    n = reserve(ctx.session, CLAIM_COUNTER, 1)
    new = Claim(
        org_id=ctx.org_id,
        encounter_id=c.encounter_id,
        patient_id=c.patient_id,
        payer_id=c.payer_id,
        coverage_id=c.coverage_id,
        control_number=f"{n:09d}",
        frequency=frequency,
        original_claim_id=c.id if frequency != "1" else None,
        primary_claim_id=c.primary_claim_id,
        payer_claim_number=payer_claim_number,
        status="ready",
        total_cents=c.total_cents,
        created_at=now,
        updated_at=now,
    )
    ctx.session.add(new)
    ctx.session.flush()
    old_lines = list(
        ctx.session.execute(sa.select(ClaimLine).where(ClaimLine.claim_id == c.id).order_by(ClaimLine.seq)).scalars()
    )
    new_lines = [
        dict(
            id=lid,
            claim_id=new.id,
            seq=ln.seq,
            code=ln.code,
            modifiers=ln.modifiers,
            units=ln.units,
            pointers=ln.pointers,
            charge_cents=ln.charge_cents,
            service_date=ln.service_date,
        )
        for lid, ln in zip(new_ids(ctx.session, ClaimLine.__table__, len(old_lines)), old_lines)
    ]
    bulk_insert(ctx.session, ClaimLine.__table__, new_lines)
    if frequency != "8":
        _move_charges(ctx, c, new)
    _event(
        ctx,
        new,
        "ready",
        f"{'replacement' if frequency == '7' else 'void' if frequency == '8' else 'new original'} of claim {c.id}",
    )
    return new


def _live_original(ctx: Ctx, c: Claim) -> int | None:
    """The id of the encounter's live original claim to this payer (the one the partial unique
    index allows), if any."""
    return ctx.session.execute(
        sa.select(Claim.id).where(
            Claim.encounter_id == c.encounter_id,
            Claim.payer_id == c.payer_id,
            Claim.frequency == "1",
            Claim.status.not_in(("rejected", "void")),
        )
    ).scalar_one_or_none()


def resubmit(
    ctx: Ctx, claim_id: int | str, *, payer_claim_number: str | None = None, note: str | None = None
) -> ClaimOut:
    """After a correction: a rejected claim gets a new original; an adjudicated one a
    replacement (frequency 7) naming the payer's claim number. The next billing run writes it."""
    require(ctx.actor, "claims.write")
    c = load_claim(ctx, claim_id)
    pcn = v.optional_text("payer_claim_number", payer_claim_number, 50) or c.payer_claim_number
    if c.status == "rejected":
        live = _live_original(ctx, c)
        if live is not None:
            raise ConflictError(f"claim {c.id} was already resubmitted: claim {live} is the encounter's live original")
        new = _copy(ctx, c, "1", None)
    elif c.status in ADJUDICATED and c.status != "closed":
        if not pcn:
            raise ValidationError("payer_claim_number", "is required to replace an adjudicated claim (REF*F8)")
        new = _copy(ctx, c, "7", pcn)
        c.payer_claim_number = pcn
    else:
        raise ConflictError(f"claim {c.id} is {c.status}; only rejected or adjudicated claims are resubmitted")
    # payments stands on billing: its denial work list is loaded only when a claim is resubmitted
    from hpms.services.payments.denials import settle

    settle(ctx, c.id)
    _event(ctx, c, c.status, v.optional_text("note", note, 500) or f"resubmitted as claim {new.id}")
    ctx.session.flush()
    audit.record(
        ctx,
        audit.Event(
            "create",
            "claim",
            new.id,
            patient_id=c.patient_id,
            detail=f"resubmission of claim {c.id} (frequency {new.frequency})",
        ),
    )
    return show(ctx, new.id)


def void(ctx: Ctx, claim_id: int | str, *, payer_claim_number: str | None = None, note: str | None = None) -> ClaimOut:
    """Cancel a claim: not yet sent -> it is simply voided; sent -> a void claim (frequency 8)."""
    require(ctx.actor, "claims.write")
    c = load_claim(ctx, claim_id)
    if c.status in ("void", "closed"):
        raise ConflictError(f"claim {c.id} is {c.status}")
    if c.status == "ready":
        c.status = "void"
        c.updated_at = ctx.now()
        _event(ctx, c, "void", v.optional_text("note", note, 500) or "voided before submission")
        ctx.session.flush()
        audit.record(
            ctx, audit.Event("update", "claim", c.id, patient_id=c.patient_id, fields=["status"], detail="void")
        )
        return show(ctx, c.id)
    pcn = v.optional_text("payer_claim_number", payer_claim_number, 50) or c.payer_claim_number
    if not pcn:
        raise ValidationError(
            "payer_claim_number",
            "is required to void a claim the payer has (REF*F8); wait for its acceptance if it has none yet",
        )
    new = _copy(ctx, c, "8", pcn)
    c.status = "void"
    c.updated_at = ctx.now()
    _event(ctx, c, "void", v.optional_text("note", note, 500) or f"void sent as claim {new.id}")
    ctx.session.flush()
    audit.record(
        ctx,
        audit.Event("create", "claim", new.id, patient_id=c.patient_id, detail=f"void of claim {c.id} (frequency 8)"),
    )
    return show(ctx, new.id)


def worklist(ctx: Ctx, *, limit: int = 500) -> list[WorklistOut]:
    """Open problems, oldest first: scrub findings of encounters and rejected claims."""
    require(ctx.actor, "claims.read")
    rows = ctx.session.execute(
        sa.select(WorklistItem, Patient.first_name, Patient.last_name, Encounter.service_date, Encounter.patient_id)
        .outerjoin(Encounter, Encounter.id == WorklistItem.encounter_id)
        .outerjoin(Patient, Patient.id == Encounter.patient_id)
        .where(WorklistItem.org_id == ctx.org_id, col(WorklistItem.resolved_at).is_(None))
        .order_by(WorklistItem.created_at, WorklistItem.id)
        .limit(limit)
    ).all()
    out = [
        WorklistOut(
            id=w.id,
            encounter_id=w.encounter_id,
            claim_id=w.claim_id,
            patient=f"{first} {last}" if first else None,
            service_date=dos,
            rule_id=w.rule_id,
            severity=w.severity,
            field=w.field,
            message=w.message,
            created_at=w.created_at,
        )
        for w, first, last, dos, _ in rows
    ]
    # a rejected claim already followed by a new original is dealt with
    newer = aliased(Claim)
    rejected = ctx.session.execute(
        _select()
        .where(
            Claim.org_id == ctx.org_id,
            Claim.status == "rejected",
            ~sa.exists().where(
                newer.encounter_id == Claim.encounter_id,
                newer.payer_id == Claim.payer_id,
                newer.frequency == "1",
                newer.status.not_in(("rejected", "void")),
            ),
        )
        .order_by(Claim.updated_at)
    ).all()
    for r in rejected:
        c = r[0]
        out.append(
            WorklistOut(
                id=0,
                encounter_id=c.encounter_id,
                claim_id=c.id,
                patient=f"{r.first_name} {r.last_name}",
                service_date=r.service_date,
                rule_id="REJECTED",
                severity="error",
                field=None,
                message="rejected by the clearinghouse or payer (correct and resubmit)",
                created_at=c.updated_at,
            )
        )
    pids = sorted({p for *_, p in rows if p} | {r[0].patient_id for r in rejected})
    if pids:
        audit.record(ctx, audit.Event("read", "worklist_item", None, patient_ids=pids, detail=f"{len(out)} items"))
    return out


def list_files(ctx: Ctx, *, limit: int = 100) -> list[dict]:
    require(ctx.actor, "billing.read")
    rows = ctx.session.execute(
        sa.select(X12File, Payer.payer_id)
        .join(Payer, Payer.id == X12File.payer_id)
        .where(X12File.org_id == ctx.org_id)
        .order_by(col(X12File.id).desc())
        .limit(limit)
    ).all()
    return [
        {
            "id": f.id,
            "file": f.filename,
            "directory": f.directory,
            "payer": code,
            "claims": f.claims,
            "total": money(f.total_cents),
            "status": f.status,
            "isa_control": f.isa_control,
            "created_at": f.created_at,
            "submitted_at": f.submitted_at,
        }
        for f, code in rows
    ]
