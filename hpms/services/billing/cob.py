"""Coordination of benefits in the 837P (the 2320/2330/2430 loops): for a secondary claim, how
the primary payer adjudicated it, from its posted remittance; for a primary claim, the payer
that comes next (the patient's secondary coverage)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import col

from hpms.interop.x12 import x837p
from hpms.models import Claim, ClaimLine, Coverage, Patient, Payer
from hpms.services.billing.rows import modifiers_of, service_day

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

RELATIONSHIP_CODES = {"self": "18", "spouse": "01", "child": "19"}  # else G8 (other)
# how a primary claim was adjudicated: the primary payer's loops, and each line's by claim line seq
Adjudication = tuple[x837p.OtherPayer, dict[int, x837p.LineAdjudication]]


def secondary_coverages(conn: Connection, payer_id: int, patient_ids: set[int]) -> dict[int, list[sa.Row]]:
    """The active secondary coverages (with another payer) of the patients of primary claims, in
    one read: a primary claim names the payer that comes next (2320/2330)."""
    if not patient_ids:
        return {}
    out: dict[int, list[sa.Row]] = {}
    for c in conn.execute(
        sa.select(
            Coverage.id,
            Coverage.patient_id,
            Coverage.member_id_enc,
            Coverage.relationship,
            Coverage.group_number,
            col(Coverage.subscriber_first_name),
            col(Coverage.subscriber_last_name),
            col(Coverage.valid_from),
            col(Coverage.valid_to),
            col(Coverage.medicare_secondary_type),
            Payer.name.label("payer_name"),
            Payer.payer_id.label("payer_code"),
            Payer.claim_filing,
        )
        .join(Payer, Payer.id == Coverage.payer_id)
        .where(
            Coverage.patient_id.in_(patient_ids),
            Coverage.priority == "secondary",
            Coverage.active.is_(True),
            Coverage.payer_id != payer_id,
        )
        .order_by(Coverage.id)
    ):
        out.setdefault(c.patient_id, []).append(c)
    return out


def next_payer(coverages: Iterable[sa.Row], r: sa.Row, member_of: Callable[[int, str], str]) -> x837p.OtherPayer | None:
    """The 2320/2330 loops of a primary claim: the patient's secondary coverage on the date of
    service (the first, as secondary claims are billed to it), not adjudicated yet; None without one."""
    day = service_day(r.service_date)
    c = next(
        (
            c
            for c in coverages
            if (c.valid_from is None or c.valid_from <= day) and (c.valid_to is None or day <= c.valid_to)
        ),
        None,
    )
    if c is None:
        return None
    self_ = c.relationship == "self"
    return x837p.OtherPayer(
        payer_name=c.payer_name,
        payer_id=c.payer_code,
        subscriber_last=r.last_name if self_ else (c.subscriber_last_name or r.last_name),
        subscriber_first=r.first_name if self_ else c.subscriber_first_name,
        member_id=member_of(c.id, c.member_id_enc),
        relationship=RELATIONSHIP_CODES.get(c.relationship, "G8"),
        group_number=c.group_number,
        responsibility="S",
        claim_filing=c.claim_filing,
        insurance_type=c.medicare_secondary_type if c.claim_filing in x837p.MEDICARE_FILING else None,
    )


def adjudications(ctx: Ctx, primary_ids: list[int], members: dict[int, str]) -> dict[int, Adjudication]:
    """For secondary claims: how each primary claim was adjudicated, from its latest posted
    remittance (not a reversal) -> {primary claim id: (OtherPayer, {line seq: LineAdjudication})}.
    A primary claim without a posted remittance is left out (its secondary is written without
    the COB loops)."""
    if not primary_ids:
        return {}
    # the ledger and remittance tables load on first use: a run without secondary claims does not
    # build them
    from hpms.models import LedgerEntry, RemitAdjustment, RemitClaim, RemitFile, Remittance

    session = ctx.session
    out: dict[int, Adjudication] = {}
    for pid in primary_ids:
        found = session.execute(
            sa.select(RemitClaim, Remittance.payment_date, RemitFile.imported_at)
            .join(Remittance, Remittance.id == RemitClaim.remittance_id)
            .join(RemitFile, RemitFile.id == Remittance.remit_file_id)
            .where(RemitClaim.claim_id == pid, col(RemitClaim.posted_at).is_not(None), RemitClaim.status_code != "22")
            .order_by(col(RemitClaim.id).desc())
            .limit(1)
        ).first()
        primary = session.get(Claim, pid)
        assert primary is not None  # a secondary claim's primary claim (a foreign key)
        cov = session.get(Coverage, primary.coverage_id) if primary.coverage_id else None
        if found is None or cov is None or cov.id is None:
            continue
        rc, paid_on, imported = found
        day = paid_on or imported.date()
        payer = session.get(Payer, primary.payer_id)
        pat = session.get(Patient, primary.patient_id)
        assert payer is not None and pat is not None  # the claim's (foreign keys)
        member = members.get(cov.id)
        if member is None:
            member = members[cov.id] = ctx.crypto.decrypt(cov.member_id_enc, "member_id")
        self_ = cov.relationship == "self"
        paid: dict[int | None, int] = {}
        for line_id, cents_ in session.execute(
            sa.select(LedgerEntry.claim_line_id, sa.func.sum(LedgerEntry.amount_cents))
            .where(
                LedgerEntry.batch == f"835:{rc.id}",
                LedgerEntry.kind == "insurance_payment",
                LedgerEntry.claim_id == pid,
                col(LedgerEntry.reverses_id).is_(None),
            )
            .group_by(LedgerEntry.claim_line_id)
        ):
            paid[line_id] = -int(cents_)
        adjustments: dict[int | None, list[x837p.Adjustment]] = {}
        for a in session.execute(
            sa.select(RemitAdjustment).where(RemitAdjustment.remit_claim_id == rc.id).order_by(RemitAdjustment.id)
        ).scalars():
            adjustments.setdefault(a.claim_line_id, []).append(
                x837p.Adjustment(a.group_code, a.reason_code, a.amount_cents)
            )
        by_seq: dict[int, x837p.LineAdjudication] = {}
        for ln in session.execute(
            sa.select(ClaimLine).where(ClaimLine.claim_id == pid).order_by(ClaimLine.seq)
        ).scalars():
            if ln.id not in paid and ln.id not in adjustments:
                continue  # the payer said nothing of this line
            by_seq[ln.seq] = x837p.LineAdjudication(
                paid_cents=paid.get(ln.id, 0),
                code=ln.code,
                date=day,
                modifiers=modifiers_of(ln.modifiers),
                units=ln.units,
                adjustments=tuple(adjustments.get(ln.id, ())),
            )
        other = x837p.OtherPayer(
            payer_name=payer.name,
            payer_id=payer.payer_id,
            subscriber_last=pat.last_name if self_ else (cov.subscriber_last_name or pat.last_name),
            subscriber_first=pat.first_name if self_ else cov.subscriber_first_name,
            member_id=member,
            relationship=RELATIONSHIP_CODES.get(cov.relationship, "G8"),
            group_number=cov.group_number,
            responsibility="P",
            claim_filing=payer.claim_filing,
            paid_cents=rc.paid_cents,
            remaining_patient_cents=rc.patient_resp_cents,
            adjustments=tuple(adjustments.get(None, ())),
        )
        out[pid] = (other, by_seq)
    return out
