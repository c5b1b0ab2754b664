"""The denial work list: claims a payer paid nothing for (posted from an 835), with the reason
(CARC and its text), appeals recorded as follow-up, settled when the claim is resubmitted,
paid after all or closed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import SQLModel, col

from hpms.codes.carc import carc_text, normalize
from hpms.errors import Action, ConflictError, ValidationError
from hpms.models import Claim, ClaimEvent, Encounter, Patient, Payer, WorklistItem
from hpms.models.base import DEFERRED
from hpms.models.billing_out import money
from hpms.services.lookups import find_payer, load_claim
from hpms.services.payments.posting import DENIAL_RULE
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

APPEAL = "appeal"


class DenialOut(SQLModel):
    model_config = DEFERRED
    id: int  # the work list item
    claim_id: int
    control_number: str
    status: str
    patient_id: int
    patient: str
    mrn: str
    payer: str
    payer_code: str
    service_date: dt.date
    total: Decimal
    reason: str | None  # CARC
    reason_text: str | None
    message: str
    denied_at: dt.datetime
    appeals: int
    last_follow_up: str | None


def denied(
    ctx: Ctx,
    *,
    reason: Any = None,
    payer: Any = None,
    include_settled: bool = False,
    limit: int = 500,
    item_id: int | None = None,
) -> list[DenialOut]:
    """Open denials, oldest first; `reason` a CARC (e.g. 50), `payer` by id, X12 id or name."""
    require(ctx.actor, "claims.read")
    q = (
        sa.select(
            WorklistItem,
            Claim.control_number,
            Claim.status,
            Claim.patient_id,
            Claim.total_cents,
            Patient.first_name,
            Patient.last_name,
            Patient.mrn,
            Payer.name,
            Payer.payer_id,
            Encounter.service_date,
        )
        .join(Claim, Claim.id == WorklistItem.claim_id)
        .join(Patient, Patient.id == Claim.patient_id)
        .join(Payer, Payer.id == Claim.payer_id)
        .join(Encounter, Encounter.id == Claim.encounter_id)
        .where(WorklistItem.org_id == ctx.org_id, WorklistItem.rule_id == DENIAL_RULE)
        .order_by(WorklistItem.created_at, WorklistItem.id)
        .limit(limit)
    )
    if not include_settled:
        q = q.where(col(WorklistItem.resolved_at).is_(None))
    if item_id is not None:
        q = q.where(WorklistItem.id == item_id)
    if reason is not None:
        code = normalize(str(reason).strip().upper().split("-")[-1])
        if not code or len(code) > 5 or not code.isalnum():
            raise ValidationError("reason", f"{reason!r} is not a claim adjustment reason code (e.g. 50, CO-50)")
        q = q.where(WorklistItem.field == code)
    if payer is not None:
        q = q.where(Claim.payer_id == find_payer(ctx, payer, field="payer").id)
    rows = ctx.session.execute(q).all()
    claim_ids = sorted({r[0].claim_id for r in rows})
    follow: dict[int, list[str]] = {}
    for i in range(0, len(claim_ids), 500):
        for e in ctx.session.execute(
            sa.select(ClaimEvent.claim_id, ClaimEvent.note, ClaimEvent.at)
            .where(ClaimEvent.claim_id.in_(claim_ids[i : i + 500]), ClaimEvent.status == APPEAL)
            .order_by(ClaimEvent.at, ClaimEvent.id)
        ):
            follow.setdefault(e.claim_id, []).append(f"{e.at:%Y-%m-%d}: {e.note}")
    out = [
        DenialOut(
            id=item.id,
            claim_id=item.claim_id,
            control_number=control,
            status=status,
            patient_id=pid,
            patient=f"{first} {last}",
            mrn=mrn,
            payer=payer_name,
            payer_code=payer_code,
            service_date=dos,
            total=money(total),
            reason=item.field,
            reason_text=carc_text(item.field) if item.field else None,
            message=item.message,
            denied_at=item.created_at,
            appeals=len(follow.get(item.claim_id, [])),
            last_follow_up=follow[item.claim_id][-1] if item.claim_id in follow else None,
        )
        for item, control, status, pid, total, first, last, mrn, payer_name, payer_code, dos in rows
    ]
    if out:
        audit.record(
            ctx,
            audit.Event(
                "read",
                "claim",
                None,
                patient_ids=sorted({d.patient_id for d in out}),
                detail=f"denial list of {len(out)}",
            ),
        )
    return out


def appeal(ctx: Ctx, claim_id: Any, *, note: str | None) -> DenialOut:
    """Record a follow-up (appeal sent, payer called...) on a denied claim."""
    require(ctx.actor, "claims.write")
    text = v.require_text("note", note, 500)
    c = load_claim(ctx, claim_id)
    item = (
        ctx.session.execute(
            sa.select(WorklistItem.id).where(
                WorklistItem.claim_id == c.id,
                WorklistItem.rule_id == DENIAL_RULE,
                col(WorklistItem.resolved_at).is_(None),
            )
        )
        .scalars()
        .first()
    )
    if item is None:
        raise ConflictError(f"claim {c.id} is {c.status} and has no open denial", action=Action("claims", "denied"))
    ctx.session.add(ClaimEvent(claim_id=c.id, at=ctx.now(), status=APPEAL, note=text, user_id=ctx.actor.user_id))
    ctx.session.flush()
    audit.record(
        ctx, audit.Event("update", "claim", c.id, patient_id=c.patient_id, fields=["appeal"], detail="appeal recorded")
    )
    return denied(ctx, item_id=item)[0]


def settle(ctx: Ctx, claim_id: int) -> int:
    """Close the claim's open denials (it was resubmitted or closed); returns how many."""
    result = ctx.session.execute(
        sa.update(WorklistItem)
        .where(
            WorklistItem.claim_id == claim_id,
            WorklistItem.rule_id == DENIAL_RULE,
            col(WorklistItem.resolved_at).is_(None),
        )
        .values(resolved_at=ctx.now())
    )
    return result.rowcount or 0
