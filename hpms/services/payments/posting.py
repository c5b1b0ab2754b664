"""How one claim payment (CLP) of an 835 posts: the ledger entries of what the payer paid and
adjusted, the claim's status and history after it, and the denial work list.

A claim payment is matched to a claim of the practice by its patient control number (CLP01 is
the CLM01 of the claim file) and each service line (SVC) to a claim line by procedure code,
modifiers and date of service (the submitted code of SVC06 when the payer changed it). Posting,
per line (or per claim for what is not on a line):

- the amount paid -> an `insurance_payment`;
- CAS group CO -> `contractual_adjustment`; OA, PI and CR -> `other_adjustment` (insurance side);
- CAS group PR (deductible, coinsurance, copay...) -> `transfer_to_patient`: the patient owes it,
  and the patient's credit pays it when there is some;
- every CAS reason (CARC) is kept in `remit_adjustment` with the remark codes (RARC); on a
  secondary claim, CARC 23 (what the primary payer paid and adjusted) is kept but not posted.

A reversal (CLP02 = 22) reverses the ledger entries of the payment it takes back (reversing
entries, never edits). A claim paid nothing with a reason other than patient responsibility
is denied: it goes on the denial work list (`hpms.services.payments.denials`). Everything is
planned in memory and written in bulk: an 835 may pay thousands of claims.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.codes.carc import carc_text, is_denial, is_denial_reason, normalize
from hpms.db import bulk_insert, new_ids
from hpms.models import Claim, ClaimEvent, ClaimLine, LedgerEntry, RemitAdjustment, RemitClaim, WorklistItem
from hpms.services.payments import payments
from hpms.services.payments.ledger import reversal_of

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

CHUNK = 500
DENIAL_RULE = "DENIAL"
PATIENT_RESPONSIBILITY = "patient_resp"  # claim status: paid nothing, the allowed amount is the patient's
REVERSAL = "22"  # CLP02
ADJUSTMENT_KIND = {
    "CO": "contractual_adjustment",
    "OA": "other_adjustment",
    "PI": "other_adjustment",
    "CR": "other_adjustment",
}
PRIOR_PAYER = "23"  # CARC 23: the impact of prior payer(s) adjudication (on a secondary claim's 835)
CROSSOVER = ("19", "20", "21")  # CLP02: processed and forwarded by the payer to the next one


def to_cents(amount: Any) -> int:
    """An amount of the 835 (a Decimal) as integer cents."""
    return int((Decimal(amount) * 100).to_integral_value())


def to_money(cents: int) -> Decimal:
    """Integer cents as a two-place Decimal."""
    return Decimal(int(cents)).scaleb(-2)


def iso_day(value: dt.date | None) -> str | None:
    """A date as YYYY-MM-DD; None stays None."""
    return value.isoformat() if value else None


# ---- the stored form of a claim payment ------------------------------------------------------


def claim_detail(c: Any, fallback_date: dt.date | None = None) -> dict:
    """What posting needs of a parsed ClaimPayment, as JSON-able data (kept in remit_claim so a
    claim matched by hand later posts exactly what the payer sent)."""
    claim_date = c.service_date_from or fallback_date

    def adj(items: Iterable[Any]) -> list[list]:
        return [[a.group.strip().upper(), normalize(a.reason), to_cents(a.amount)] for a in items]

    return {
        "status": c.status_code,
        "charge": to_cents(c.charge_amount),
        "paid": to_cents(c.paid_amount),
        "pr": to_cents(c.patient_responsibility),
        "pcn": c.payer_claim_control_number,
        "date": iso_day(claim_date),
        "adj": adj(c.adjustments),
        "remarks": list(c.remark_codes),
        "lines": [
            {
                "code": (ln.original_procedure or ln.procedure).code,
                "mods": list((ln.original_procedure or ln.procedure).modifiers),
                "paid_code": ln.procedure.code if ln.original_procedure else None,
                "date": iso_day(ln.service_date_from or claim_date),
                "charge": to_cents(ln.charge_amount),
                "paid": to_cents(ln.paid_amount),
                "adj": adj(ln.adjustments),
                "remarks": list(ln.remark_codes),
            }
            for ln in c.lines
        ],
    }


# ---- the posting plan ------------------------------------------------------------------------


@dataclass
class ClaimInfo:
    id: int
    patient_id: int
    encounter_id: int
    payer_id: int
    status: str
    payer_claim_number: str | None
    lines: list[tuple] = field(default_factory=list)  # (id, code, modifiers tuple, service_date)
    primary_claim_id: int | None = None  # set on a secondary claim


class Plan:
    """Rows to insert for a batch of claim payments; ledger ids are assigned at the end so a
    transfer's patient side can name its insurance side."""

    def __init__(self, ctx: Ctx, when: dt.date) -> None:
        self.ctx = ctx
        self.now = ctx.now()
        self.when = when
        self.ledger: list[dict] = []
        self.pairs: list[tuple[int, int]] = []  # (patient side index, insurance side index)
        self.adjustments: list[dict] = []
        self.patients: set[int] = set()
        self.transferred: set[int] = set()

    def entry(
        self,
        claim: ClaimInfo,
        line_id: int | None,
        kind: str,
        cents: int,
        responsibility: str,
        batch: str,
        reference: str | None,
    ) -> int:
        self.ledger.append(
            dict(
                org_id=self.ctx.org_id,
                kind=kind,
                amount_cents=cents,
                responsibility=responsibility,
                patient_id=claim.patient_id,
                encounter_id=claim.encounter_id,
                claim_id=claim.id,
                claim_line_id=line_id,
                payer_id=claim.payer_id,
                posted_at=self.now,
                effective_date=self.when,
                reverses_id=None,
                pair_id=None,
                reference=reference,
                batch=batch,
                created_by=self.ctx.actor.user_id,
                method=None,
            )
        )
        self.patients.add(claim.patient_id)
        return len(self.ledger) - 1

    def adjust(self, claim: ClaimInfo, line_id: int | None, group: str, reason: str, cents: int, batch: str) -> None:
        if cents == 0:
            return
        ref = f"{group}-{reason}"
        if reason == PRIOR_PAYER and claim.primary_claim_id is not None:
            return  # what the primary payer paid or adjusted: posted from its own 835 already
        if group == "PR":
            out = self.entry(claim, line_id, "transfer_to_patient", -cents, "insurance", batch, ref)
            into = self.entry(claim, line_id, "transfer_to_patient", cents, "patient", batch, ref)
            self.pairs.append((into, out))
            self.transferred.add(claim.patient_id)
        else:
            self.entry(claim, line_id, ADJUSTMENT_KIND.get(group, "other_adjustment"), -cents, "insurance", batch, ref)

    def post(self, rc_id: int, d: dict, claim: ClaimInfo, trace: str) -> list[str]:
        """Plan the entries of one claim payment; returns warnings (lines that matched no claim
        line are posted on the claim)."""
        batch = f"835:{rc_id}"
        warnings = []
        free = list(claim.lines)
        line_paid = 0
        for n, ln in enumerate(d["lines"], 1):
            match = match_line(free, ln)
            if match is None:
                warnings.append(
                    f"claim {claim.id}: service line {n} ({ln['code']}) matches no claim line; posted on the claim"
                )
                line_id = None
            else:
                free.remove(match)
                line_id = match[0]
            if ln["paid"]:
                self.entry(claim, line_id, "insurance_payment", -ln["paid"], "insurance", batch, f"TRN {trace}")
                line_paid += ln["paid"]
            self.adjust_all(claim, line_id, ln, rc_id, batch)
        rest = d["paid"] - line_paid
        if rest:
            self.entry(claim, None, "insurance_payment", -rest, "insurance", batch, f"TRN {trace}")
        self.adjust_all(claim, None, d, rc_id, batch)
        return warnings

    def adjust_all(self, claim: ClaimInfo, line_id: int | None, part: dict, rc_id: int, batch: str) -> None:
        """The adjustments (CAS) of a claim or of one of its lines: on the ledger and as stored."""
        remarks = ",".join(part["remarks"])[:200] or None
        for group, reason, cents in part["adj"]:
            self.adjust(claim, line_id, group, reason, cents, batch)
            self.adjustments.append(
                dict(
                    org_id=self.ctx.org_id,
                    remit_claim_id=rc_id,
                    claim_id=claim.id,
                    claim_line_id=line_id,
                    group_code=group[:2],
                    reason_code=reason[:5],
                    amount_cents=cents,
                    remarks=remarks,
                )
            )

    def reverse(self, rc_id: int, entries: Sequence[LedgerEntry], trace: str) -> None:
        """Reversing entries for a payment taken back (their pairs stay pairs)."""
        index: dict[int | None, int] = {}  # entry id -> its reversal's index in self.ledger
        ordered = sorted(entries, key=lambda e: (e.pair_id is not None, e.id or 0))
        for e in ordered:
            self.ledger.append(
                reversal_of(
                    e,
                    at=self.now,
                    on=self.when,
                    reference=f"reversal TRN {trace}"[:200],
                    batch=f"835:{rc_id}",
                    by=self.ctx.actor.user_id,
                )
                | {"method": None}
            )
            index[e.id] = len(self.ledger) - 1
            self.patients.add(e.patient_id)
            if e.pair_id is not None and e.pair_id in index:
                self.pairs.append((index[e.id], index[e.pair_id]))

    def write(self) -> None:
        s = self.ctx.session
        ids = new_ids(s, LedgerEntry.__table__, len(self.ledger))
        for i, row in zip(ids, self.ledger):
            row["id"] = i
        for into, out in self.pairs:
            self.ledger[into]["pair_id"] = self.ledger[out]["id"]
        bulk_insert(s, LedgerEntry.__table__, self.ledger)
        bulk_insert(s, RemitAdjustment.__table__, self.adjustments)


def match_line(free: list[tuple], ln: dict) -> tuple | None:
    """The claim line a service payment is for: same code, the same modifiers when the payer
    named any, the same date when it gave one; the first such line."""
    best = None
    for cand in free:
        _, code, mods, day = cand
        if code != ln["code"]:
            continue
        if ln["mods"] and tuple(ln["mods"]) != mods:
            continue
        if ln["date"] and day.isoformat() != ln["date"]:
            if best is None:
                best = cand  # same code on another date: the fallback
            continue
        return cand
    return best


# ---- the claims paid -------------------------------------------------------------------------

CONTROL_WIDTH = 9  # the claim files carry CLM01 as 9 digits (000000042)


def control_key(number: str) -> str:
    """A patient control number as the claim file has it: payers that treat CLP01 as a number
    send "42" (or "0000000042") for 000000042."""
    text = number.strip()
    return text.lstrip("0").zfill(CONTROL_WIDTH) if text.isdigit() else text


def claims_by_control(ctx: Ctx, numbers: list[str]) -> dict[str, ClaimInfo]:
    """The claims the control numbers name, keyed by the numbers as given (exact first, else
    with the leading zeros of the claim files)."""
    by_control: dict[str, ClaimInfo] = {}
    s = ctx.session
    wanted = sorted(set(numbers) | {control_key(n) for n in numbers})
    for i in range(0, len(wanted), CHUNK):
        part = wanted[i : i + CHUNK]
        for r in s.execute(
            sa.select(
                Claim.id,
                Claim.control_number,
                Claim.patient_id,
                Claim.encounter_id,
                Claim.payer_id,
                Claim.status,
                Claim.payer_claim_number,
                Claim.primary_claim_id,
            ).where(Claim.org_id == ctx.org_id, col(Claim.control_number).in_(part))
        ):
            by_control[r.control_number] = ClaimInfo(
                r.id,
                r.patient_id,
                r.encounter_id,
                r.payer_id,
                r.status,
                r.payer_claim_number,
                primary_claim_id=r.primary_claim_id,
            )
    by_id = {c.id: c for c in by_control.values()}
    ids = sorted(by_id)
    for i in range(0, len(ids), CHUNK):
        for r in s.execute(
            sa.select(ClaimLine.id, ClaimLine.claim_id, ClaimLine.code, ClaimLine.modifiers, ClaimLine.service_date)
            .where(ClaimLine.claim_id.in_(ids[i : i + CHUNK]))
            .order_by(ClaimLine.claim_id, ClaimLine.seq)
        ):
            by_id[r.claim_id].lines.append(
                (r.id, r.code, tuple(m for m in r.modifiers.split(",") if m), r.service_date)
            )
    found: dict[str, ClaimInfo] = {}
    for n in numbers:
        info = by_control.get(n) or by_control.get(control_key(n))
        if info is not None:
            found[n] = info
    return found


def claim_info(ctx: Ctx, claim_id: int) -> ClaimInfo:
    c = ctx.session.get(Claim, claim_id)
    assert c is not None  # the caller loaded it
    return claims_by_control(ctx, [c.control_number])[c.control_number]


def reversible(ctx: Ctx, claim_id: int, d: dict, rc_id: int) -> tuple[int | None, Sequence[LedgerEntry]] | None:
    """The latest posted payment of the claim that is not yet reversed (the one a CLP02 = 22
    takes back, preferring the same payer claim number and amount), with its entries."""
    s = ctx.session
    rev = sa.orm.aliased(LedgerEntry)
    candidates = (
        s.execute(
            sa.select(RemitClaim)
            .where(
                RemitClaim.claim_id == claim_id,
                col(RemitClaim.posted_at).is_not(None),
                RemitClaim.status_code != REVERSAL,
                RemitClaim.id != rc_id,
            )
            .order_by(col(RemitClaim.id).desc())
        )
        .scalars()
        .all()
    )
    ranked = sorted(
        candidates,
        key=lambda c: (c.paid_cents != -d["paid"], bool(d["pcn"]) and c.payer_claim_number != d["pcn"], -(c.id or 0)),
    )
    for cand in ranked:
        entries = (
            s.execute(
                sa.select(LedgerEntry).where(
                    LedgerEntry.batch == f"835:{cand.id}",
                    col(LedgerEntry.reverses_id).is_(None),
                    ~sa.exists().where(rev.reverses_id == LedgerEntry.id),
                )
            )
            .scalars()
            .all()
        )
        if entries:
            return cand.id, entries
    return None


# ---- claim status and denials ----------------------------------------------------------------


def claim_status(d: dict) -> str:
    """The claim's status after this payment: `denied` when the payer says so (CLP02 4) or paid
    nothing for a denial reason (`hpms.codes.carc.is_denial`); `patient_resp` when it paid nothing
    because what it allowed is the patient's (deductible, coinsurance, copay); else `paid` when
    nothing is left for the payer, `partially_paid` when something is."""
    if d["status"] == REVERSAL:
        return "accepted"
    adjustments = all_adjustments(d)
    if is_denial(d["status"], d["paid"], adjustments):
        return "denied"
    if d["paid"] == 0 and any(a[0] == "PR" and a[2] for a in adjustments):
        return PATIENT_RESPONSIBILITY
    owed = d["charge"] - d["paid"] - sum(a[2] for a in adjustments)
    return "paid" if owed == 0 else "partially_paid"


def all_adjustments(d: dict) -> list:
    return list(d["adj"]) + [a for ln in d["lines"] for a in ln["adj"]]


def denial_reason(d: dict) -> tuple[str, str]:
    """The denial's main reason: the largest adjustment that carries a denial reason; else (a
    claim the payer marked denied, CLP02 4, with no such reason) the largest adjustment that is
    not the patient's share. Returns (CARC, readable text), the text naming what the payer sent."""
    present = [a for a in all_adjustments(d) if a[2] and a[1] != PRIOR_PAYER]
    adj = sorted((a for a in present if is_denial_reason(a[0], a[1])), key=lambda a: -abs(a[2])) or sorted(
        (a for a in present if a[0] != "PR"), key=lambda a: -abs(a[2])
    )
    if not adj:
        return "", "denied (claim status 4) without a reason code"
    group, reason, _ = adj[0]
    remarks = sorted(set(d["remarks"]) | {r for ln in d["lines"] for r in ln["remarks"]})
    text = f"{group}-{reason}: {carc_text(reason)}"
    if remarks:
        text += f" (remarks {', '.join(remarks)})"
    return reason, text


def settle(ctx: Ctx, settled: list[tuple[ClaimInfo, dict]], trace: str, payer_name: str) -> int:
    """Claim statuses, payer claim numbers, history and the denial work list after the payments;
    returns how many claims were denied."""
    if not settled:
        return 0
    s = ctx.session
    now = ctx.now()
    updates: list[dict] = []
    events: list[dict] = []
    denials: list[dict] = []
    paid: list[int] = []
    for info, d in settled:
        outcome = claim_status(d)
        status = info.status if info.status in ("void", "closed") else outcome
        updates.append({"b_id": info.id, "b_status": status, "b_pcn": (d["pcn"] or None) and d["pcn"][:50]})
        note = (
            f"835 {trace}: reversal of a payment"
            if d["status"] == REVERSAL
            else f"835 {trace}: paid {to_money(d['paid'])}"
        )
        events.append(dict(claim_id=info.id, at=now, status=status, note=note[:500], user_id=ctx.actor.user_id))
        if outcome == "denied":
            reason, text = denial_reason(d)
            denials.append(
                dict(
                    org_id=ctx.org_id,
                    encounter_id=info.encounter_id,
                    claim_id=info.id,
                    rule_id=DENIAL_RULE,
                    severity="error",
                    field=reason or None,
                    message=f"denied by {payer_name}: {text}"[:500],
                    created_at=now,
                    resolved_at=None,
                )
            )
        elif d["status"] != REVERSAL:
            paid.append(info.id)  # paid after all (e.g. on appeal): its denial is settled
        info.status = status
    s.flush()
    s.connection().execute(
        sa.update(Claim.__table__)
        .where(Claim.__table__.c.id == sa.bindparam("b_id"))
        .values(
            status=sa.bindparam("b_status"),
            updated_at=now,
            payer_claim_number=sa.func.coalesce(Claim.__table__.c.payer_claim_number, sa.bindparam("b_pcn")),
        ),
        updates,
    )
    bulk_insert(s, ClaimEvent.__table__, events)
    for i in range(0, len(paid), CHUNK):
        s.execute(
            sa.update(WorklistItem)
            .where(
                col(WorklistItem.claim_id).in_(paid[i : i + CHUNK]),
                WorklistItem.rule_id == DENIAL_RULE,
                col(WorklistItem.resolved_at).is_(None),
            )
            .values(resolved_at=now)
        )
    bulk_insert(s, WorklistItem.__table__, denials)
    return len(denials)


# ---- after posting ---------------------------------------------------------------------------


def may_follow(d: dict) -> bool:
    """Whether a posted claim payment may be followed by a secondary claim: not a reversal, and
    not a claim the payer forwarded to the next payer itself (crossover)."""
    return d["status"] != REVERSAL and d["status"] not in CROSSOVER


def apply_credit(ctx: Ctx, patient_ids: set[int]) -> None:
    """Patient credit (payments not yet applied) pays what was just moved to the patient."""
    if not patient_ids:
        return
    ids = sorted(patient_ids)
    paying: set[int] = set()
    for i in range(0, len(ids), CHUNK):  # only patients who ever paid can have credit
        paying.update(
            ctx.session.execute(
                sa.select(LedgerEntry.patient_id)
                .distinct()
                .where(
                    LedgerEntry.org_id == ctx.org_id,
                    LedgerEntry.kind == "patient_payment",
                    col(LedgerEntry.patient_id).in_(ids[i : i + CHUNK]),
                )
            ).scalars()
        )
    for pid in sorted(paying):
        payments._apply_credit(ctx, pid)
