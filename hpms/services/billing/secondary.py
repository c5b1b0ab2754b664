"""Secondary claims (coordination of benefits): what the primary payer left to the patient is
billed to the patient's secondary coverage.

After an 835 posts a primary claim, `queue_secondary` creates the secondary claim when

- the claim was billed to the patient's primary coverage and is not itself a secondary claim;
- the payer left an amount to the patient (group PR adjustments, net of reversals, > 0);
- the patient has an active secondary coverage on the date of service, with another payer;
- no live (not void) secondary claim follows that primary claim yet, and the encounter has no
  live original claim to the secondary payer.

The secondary claim gets a new control number, the secondary payer and coverage, the same lines
and charges, status `ready` (the next billing run writes it with the primary's adjudication:
the 2320/2330/2430 loops) and `primary_claim_id`. Its charges are not posted again (they are
the primary claim's); instead, per line, what the primary left to the patient moves to the
secondary payer (`transfer_to_insurance`), so the patient owes nothing on it until the
secondary answers. The secondary's 835 then posts as any other claim: its payment, its
adjustments (CARC 23, the primary's share, is kept but not posted) and its own patient
responsibility back to the patient.

The caller (835 posting) checks the permission and owns the transaction; claims that are not
eligible are skipped silently, so calling it twice creates nothing twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col

from hpms.db import bulk_insert, new_ids
from hpms.models import Claim, ClaimEvent, ClaimLine, Coverage, Encounter, LedgerEntry
from hpms.models.billing_out import money
from hpms.services.billing.control import CLAIM_COUNTER
from hpms.services.platform import audit
from hpms.services.platform.counters import reserve
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

CHUNK = 500


def _pr_by_line(ctx: Ctx, claim_id: int) -> dict[int | None, int]:
    """What the claim left to the patient (transfers to patient, reversals included), by claim
    line (None: on the claim)."""
    e = LedgerEntry
    rows = ctx.session.execute(
        sa.select(e.claim_line_id, sa.func.sum(e.amount_cents))
        .where(
            e.org_id == ctx.org_id,
            e.claim_id == claim_id,
            e.kind == "transfer_to_patient",
            e.responsibility == "patient",
        )
        .group_by(e.claim_line_id)
    ).all()
    return {line_id: int(cents) for line_id, cents in rows if cents}


def _secondary_coverage(ctx: Ctx, patient_id: int, payer_id: int, day: dt.date) -> Coverage | None:
    q = (
        sa.select(Coverage)
        .where(
            Coverage.org_id == ctx.org_id,
            Coverage.patient_id == patient_id,
            Coverage.priority == "secondary",
            Coverage.active.is_(True),
            Coverage.payer_id != payer_id,
            sa.or_(col(Coverage.valid_from).is_(None), col(Coverage.valid_from) <= day),
            sa.or_(col(Coverage.valid_to).is_(None), col(Coverage.valid_to) >= day),
        )
        .order_by(Coverage.id)
    )
    return ctx.session.execute(q).scalars().first()


def queue_secondary(ctx: Ctx, claim_ids: Iterable[int]) -> list[int]:
    """Create the secondary claims the posted primary claims call for (see the module
    docstring); returns the new claims' ids. Raises PermissionDenied."""
    require(ctx.actor, "remits.import")
    ids = sorted({int(i) for i in claim_ids})
    if not ids:
        return []
    s = ctx.session
    made: list[int] = []
    for i in range(0, len(ids), CHUNK):
        rows = s.execute(
            sa.select(Claim, Coverage.priority, Encounter.service_date)
            .join(Encounter, Encounter.id == Claim.encounter_id)
            .outerjoin(Coverage, Coverage.id == Claim.coverage_id)
            .where(Claim.org_id == ctx.org_id, col(Claim.id).in_(ids[i : i + CHUNK]))
            .order_by(Claim.id)
        ).all()
        for claim, priority, day in rows:
            new_id = _follow(ctx, claim, priority, day)
            if new_id is not None:
                made.append(new_id)
    return made


def _follow(ctx: Ctx, primary: Claim, priority: str | None, day: dt.date) -> int | None:
    if primary.primary_claim_id is not None or priority != "primary" or primary.status == "void":
        return None
    if primary.frequency == "8":
        return None
    s = ctx.session
    live = s.execute(
        sa.select(Claim.id).where(Claim.primary_claim_id == primary.id, Claim.status != "void").limit(1)
    ).scalar_one_or_none()
    if live is not None:
        return None
    pr = _pr_by_line(ctx, primary.id)
    if sum(pr.values()) <= 0:
        return None
    cov = _secondary_coverage(ctx, primary.patient_id, primary.payer_id, day)
    if cov is None:
        return None
    taken = s.execute(
        sa.select(Claim.id)
        .where(
            Claim.encounter_id == primary.encounter_id,
            Claim.payer_id == cov.payer_id,
            Claim.frequency == "1",
            Claim.status.not_in(("rejected", "void")),
        )
        .limit(1)
    ).scalar_one_or_none()
    if taken is not None:
        return None  # the encounter is billed to that payer already (the uq_claim_original index)
    return _create(ctx, primary, cov, pr)


def _create(ctx: Ctx, primary: Claim, cov: Coverage, pr: dict[int | None, int]) -> int:
    s = ctx.session
    now = ctx.now()
    n = reserve(s, CLAIM_COUNTER, 1)
    new = Claim(
        org_id=ctx.org_id,
        encounter_id=primary.encounter_id,
        patient_id=primary.patient_id,
        payer_id=cov.payer_id,
        coverage_id=cov.id,
        control_number=f"{n:09d}",
        frequency="1",
        original_claim_id=None,
        primary_claim_id=primary.id,
        payer_claim_number=None,
        status="ready",
        total_cents=primary.total_cents,
        created_at=now,
        updated_at=now,
    )
    s.add(new)
    s.flush()
    assert new.id is not None  # flushed
    old_lines = list(
        s.execute(sa.select(ClaimLine).where(ClaimLine.claim_id == primary.id).order_by(ClaimLine.seq)).scalars()
    )
    line_ids = new_ids(s, ClaimLine.__table__, len(old_lines))
    bulk_insert(
        s,
        ClaimLine.__table__,
        [
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
            for lid, ln in zip(line_ids, old_lines)
        ],
    )
    to_new = {ln.id: lid for ln, lid in zip(old_lines, line_ids)}
    # the transfers: +X owed by the secondary payer, -X by the patient (pointing at its pair)
    ledger_rows = []
    for line_id, cents in sorted(pr.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        if cents <= 0:
            continue
        common = dict(
            org_id=ctx.org_id,
            kind="transfer_to_insurance",
            patient_id=primary.patient_id,
            encounter_id=primary.encounter_id,
            claim_id=new.id,
            claim_line_id=to_new.get(line_id) if line_id is not None else None,
            payer_id=cov.payer_id,
            posted_at=now,
            effective_date=now.date(),
            reverses_id=None,
            reference=f"secondary of claim {primary.id}",
            batch=f"claim {new.id}",
            created_by=ctx.actor.user_id,
            method=None,
        )
        ledger_rows.append(
            (
                dict(common, amount_cents=cents, responsibility="insurance", pair_id=None),
                dict(common, amount_cents=-cents, responsibility="patient"),
            )
        )
    ids = new_ids(s, LedgerEntry.__table__, 2 * len(ledger_rows))
    flat = []
    for k, (ins, pat) in enumerate(ledger_rows):
        ins["id"], pat["id"] = ids[2 * k], ids[2 * k + 1]
        pat["pair_id"] = ins["id"]
        flat += [ins, pat]
    bulk_insert(s, LedgerEntry.__table__, flat)
    bulk_insert(
        s,
        ClaimEvent.__table__,
        [
            dict(
                claim_id=new.id,
                at=now,
                status="ready",
                note=f"secondary of claim {primary.id}",
                user_id=ctx.actor.user_id,
            )
        ],
    )
    s.flush()
    moved = sum(c for c in pr.values() if c > 0)
    audit.record(
        ctx,
        audit.Event(
            "create",
            "claim",
            new.id,
            patient_id=primary.patient_id,
            fields=["payer", "lines", "ledger"],
            detail=f"secondary of claim {primary.id}: {money(moved)} moved to the payer",
        ),
    )
    return new.id
