"""Remittance advice (835) posting: what the payers paid and adjusted goes to the ledger.

One file is one transaction. It is refused as a whole when it is not a well-formed 835 or does
not balance (BPR02 = claims paid - provider adjustments; per claim, charge - paid = the sum of
its adjustments). A file already imported (same bytes) posts nothing, and so does a remittance
already imported from another file (same interchange control number, payer and trace number).

Each claim payment (CLP) is matched to an hpms claim by its patient control number (CLP01 is
the CLM01 hpms wrote) and each service line (SVC) to a claim line by procedure code, modifiers
and date of service (the submitted code of SVC06 when the payer changed it). Posting, per line
(or per claim for what is not on a line):

- the amount paid -> an `insurance_payment`;
- CAS group CO -> `contractual_adjustment`; OA, PI and CR -> `other_adjustment` (insurance side);
- CAS group PR (deductible, coinsurance, copay...) -> `transfer_to_patient`: the patient owes it;
- every CAS reason (CARC) is kept in `remit_adjustment` with the remark codes (RARC); on a
  secondary claim, CARC 23 (what the primary payer paid and adjusted) is kept but not posted.

A primary claim that leaves an amount to the patient is followed by a secondary claim when the
patient has a secondary coverage (`hpms.services.billing.secondary`): the amount moves to the secondary
payer until its own 835 answers.

A reversal (CLP02 = 22) reverses the ledger entries of the payment it takes back (reversing
entries, never edits). A claim paid nothing with a reason other than patient responsibility
is denied: it goes on the denial work list (`hpms claims denied`). Claims hpms did not bill are
kept unposted for manual matching (`hpms remits unmatched`, `hpms remits match`); a file none of
whose claims hpms billed is refused (it is most likely another practice's), unless asked to keep
them all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from hpms.errors import ConflictError, NotFoundError, ValidationError
from hpms.services.billing import secondary
from hpms.services.platform import audit
from hpms.services.platform.permissions import require

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
MAX_LIST = 500
PRIOR_PAYER = "23"  # CARC 23: the impact of prior payer(s) adjudication (on a secondary claim's 835)
CROSSOVER = ("19", "20", "21")  # CLP02: processed and forwarded by the payer to the next one


@dataclass
class ImportSummary:
    file: str
    sha256: str
    dry_run: bool = False
    duplicate: bool = False
    remittances: int = 0
    already_imported: int = 0
    claims: int = 0
    posted: int = 0
    reversals: int = 0
    denied: int = 0
    secondary: int = 0  # secondary claims created for the patient responsibility left
    unmatched: list[dict] = field(default_factory=list)
    paid: Decimal = Decimal("0.00")
    adjusted: Decimal = Decimal("0.00")
    patient_responsibility: Decimal = Decimal("0.00")
    provider_adjustments: Decimal = Decimal("0.00")
    payment: Decimal = Decimal("0.00")
    warnings: list[str] = field(default_factory=list)
    already_posted: list[dict] = field(default_factory=list)  # payments (or the whole file) posted before


def _cents(amount) -> int:
    return int((Decimal(amount) * 100).to_integral_value())


def _money(cents: int) -> Decimal:
    return Decimal(int(cents)).scaleb(-2)


def _day(value) -> str | None:
    return value.isoformat() if value else None


# ---- the stored form of a claim payment ------------------------------------------------------


def claim_detail(c, fallback_date: dt.date | None = None) -> dict:
    """What posting needs of a parsed ClaimPayment, as JSON-able data (kept in remit_claim so a
    claim matched by hand later posts exactly what the payer sent)."""
    from hpms.codes.carc import normalize

    claim_date = c.service_date_from or fallback_date

    def adj(items):
        return [[a.group.strip().upper(), normalize(a.reason), _cents(a.amount)] for a in items]

    return {
        "status": c.status_code,
        "charge": _cents(c.charge_amount),
        "paid": _cents(c.paid_amount),
        "pr": _cents(c.patient_responsibility),
        "pcn": c.payer_claim_control_number,
        "date": _day(claim_date),
        "adj": adj(c.adjustments),
        "remarks": list(c.remark_codes),
        "lines": [
            {
                "code": (ln.original_procedure or ln.procedure).code,
                "mods": list((ln.original_procedure or ln.procedure).modifiers),
                "paid_code": ln.procedure.code if ln.original_procedure else None,
                "date": _day(ln.service_date_from or claim_date),
                "charge": _cents(ln.charge_amount),
                "paid": _cents(ln.paid_amount),
                "adj": adj(ln.adjustments),
                "remarks": list(ln.remark_codes),
            }
            for ln in c.lines
        ],
    }


# ---- posting plan ----------------------------------------------------------------------------


@dataclass
class _ClaimInfo:
    id: int
    patient_id: int
    encounter_id: int
    payer_id: int
    status: str
    payer_claim_number: str | None
    lines: list[tuple] = field(default_factory=list)  # (id, code, modifiers tuple, service_date)
    primary_claim_id: int | None = None  # set on a secondary claim


class _Plan:
    """Rows to insert for a batch of claim payments; ledger ids are assigned at the end so a
    transfer's patient side can name its insurance side."""

    def __init__(self, ctx, when: dt.date):
        self.ctx = ctx
        self.now = ctx.now()
        self.when = when
        self.ledger: list[dict] = []
        self.pairs: list[tuple[int, int]] = []  # (patient side index, insurance side index)
        self.adjustments: list[dict] = []
        self.patients: set[int] = set()
        self.transferred: set[int] = set()

    def entry(
        self, claim: _ClaimInfo, line_id, kind: str, cents: int, responsibility: str, batch: str, reference: str | None
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

    def adjust(self, claim: _ClaimInfo, line_id, group: str, reason: str, cents: int, batch: str) -> None:
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

    def post(self, rc_id: int, d: dict, claim: _ClaimInfo, trace: str) -> list[str]:
        """Plan the entries of one claim payment; returns warnings (lines that matched no claim
        line are posted on the claim)."""
        batch = f"835:{rc_id}"
        warnings = []
        free = list(claim.lines)
        line_paid = 0
        for n, ln in enumerate(d["lines"], 1):
            match = _match_line(free, ln)
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
            for group, reason, cents in ln["adj"]:
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
                        remarks=",".join(ln["remarks"])[:200] or None,
                    )
                )
        rest = d["paid"] - line_paid
        if rest:
            self.entry(claim, None, "insurance_payment", -rest, "insurance", batch, f"TRN {trace}")
        for group, reason, cents in d["adj"]:
            self.adjust(claim, None, group, reason, cents, batch)
            self.adjustments.append(
                dict(
                    org_id=self.ctx.org_id,
                    remit_claim_id=rc_id,
                    claim_id=claim.id,
                    claim_line_id=None,
                    group_code=group[:2],
                    reason_code=reason[:5],
                    amount_cents=cents,
                    remarks=",".join(d["remarks"])[:200] or None,
                )
            )
        return warnings

    def reverse(self, rc_id: int, entries: list, trace: str) -> None:
        """Reversing entries for a payment taken back (their pairs stay pairs)."""
        index: dict[int, int] = {}
        ordered = sorted(entries, key=lambda e: (e.pair_id is not None, e.id))
        for e in ordered:
            self.ledger.append(
                dict(
                    org_id=e.org_id,
                    kind=e.kind,
                    amount_cents=-e.amount_cents,
                    responsibility=e.responsibility,
                    patient_id=e.patient_id,
                    encounter_id=e.encounter_id,
                    claim_id=e.claim_id,
                    claim_line_id=e.claim_line_id,
                    payer_id=e.payer_id,
                    posted_at=self.now,
                    effective_date=self.when,
                    reverses_id=e.id,
                    pair_id=None,
                    reference=f"reversal TRN {trace}"[:200],
                    batch=f"835:{rc_id}",
                    created_by=self.ctx.actor.user_id,
                    method=None,
                )
            )
            index[e.id] = len(self.ledger) - 1
            self.patients.add(e.patient_id)
            if e.pair_id is not None and e.pair_id in index:
                self.pairs.append((index[e.id], index[e.pair_id]))

    def write(self) -> None:
        from hpms.db import bulk_insert, new_ids
        from hpms.models import LedgerEntry, RemitAdjustment

        s = self.ctx.session
        ids = new_ids(s, LedgerEntry.__table__, len(self.ledger))
        for i, row in zip(ids, self.ledger):
            row["id"] = i
        for into, out in self.pairs:
            self.ledger[into]["pair_id"] = self.ledger[out]["id"]
        bulk_insert(s, LedgerEntry.__table__, self.ledger)
        bulk_insert(s, RemitAdjustment.__table__, self.adjustments)


def _match_line(free: list[tuple], ln: dict):
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


# ---- loading ---------------------------------------------------------------------------------

CONTROL_WIDTH = 9  # hpms writes CLM01 as 9 digits (000000042)


def _control_key(number: str) -> str:
    """A patient control number as hpms wrote it: payers that treat CLP01 as a number send
    "42" (or "0000000042") for 000000042."""
    text = number.strip()
    return text.lstrip("0").zfill(CONTROL_WIDTH) if text.isdigit() else text


def _claims_by_control(ctx, numbers: list[str]) -> dict[str, _ClaimInfo]:
    """The claims the control numbers name, keyed by the numbers as given (exact first, else
    with the leading zeros hpms writes)."""
    from hpms.models import Claim, ClaimLine

    by_control: dict[str, _ClaimInfo] = {}
    s = ctx.session
    wanted = sorted(set(numbers) | {_control_key(n) for n in numbers})
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
            ).where(Claim.org_id == ctx.org_id, Claim.control_number.in_(part))
        ):
            by_control[r.control_number] = _ClaimInfo(
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
    found: dict[str, _ClaimInfo] = {}
    for n in numbers:
        info = by_control.get(n) or by_control.get(_control_key(n))
        if info is not None:
            found[n] = info
    return found


def _claim_info(ctx, claim_id: int) -> _ClaimInfo:
    from hpms.models import Claim

    c = ctx.session.get(Claim, claim_id)
    return _claims_by_control(ctx, [c.control_number])[c.control_number]


def _reversible(ctx, claim_id: int, d: dict, rc_id: int) -> tuple[int, list] | None:
    """The latest posted payment of the claim that is not yet reversed (the one a CLP02 = 22
    takes back, preferring the same payer claim number and amount), with its entries."""
    from hpms.models import LedgerEntry, RemitClaim

    s = ctx.session
    rev = sa.orm.aliased(LedgerEntry)
    candidates = (
        s.execute(
            sa.select(RemitClaim)
            .where(
                RemitClaim.claim_id == claim_id,
                RemitClaim.posted_at.is_not(None),
                RemitClaim.status_code != REVERSAL,
                RemitClaim.id != rc_id,
            )
            .order_by(RemitClaim.id.desc())
        )
        .scalars()
        .all()
    )
    ranked = sorted(
        candidates,
        key=lambda c: (c.paid_cents != -d["paid"], bool(d["pcn"]) and c.payer_claim_number != d["pcn"], -c.id),
    )
    for cand in ranked:
        entries = (
            s.execute(
                sa.select(LedgerEntry).where(
                    LedgerEntry.batch == f"835:{cand.id}",
                    LedgerEntry.reverses_id.is_(None),
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


def _outcome(d: dict) -> str:
    """The claim's status after this payment: `denied` when the payer says so (CLP02 4) or paid
    nothing for a denial reason (`hpms.codes.carc.is_denial`); `patient_resp` when it paid nothing
    because what it allowed is the patient's (deductible, coinsurance, copay); else `paid` when
    nothing is left for the payer, `partially_paid` when something is."""
    from hpms.codes.carc import is_denial

    if d["status"] == REVERSAL:
        return "accepted"
    adjustments = _all_adjustments(d)
    if is_denial(d["status"], d["paid"], adjustments):
        return "denied"
    if d["paid"] == 0 and any(a[0] == "PR" and a[2] for a in adjustments):
        return PATIENT_RESPONSIBILITY
    owed = d["charge"] - d["paid"] - sum(a[2] for a in adjustments)
    return "paid" if owed == 0 else "partially_paid"


def _all_adjustments(d: dict) -> list:
    return list(d["adj"]) + [a for ln in d["lines"] for a in ln["adj"]]


def denial_reason(d: dict) -> tuple[str, str]:
    """The denial's main reason: the largest adjustment that carries a denial reason; else (a
    claim the payer marked denied, CLP02 4, with no such reason) the largest adjustment that is
    not the patient's share. Returns (CARC, readable text), the text naming what the payer sent."""
    from hpms.codes.carc import carc_text, is_denial_reason

    present = [a for a in _all_adjustments(d) if a[2] and a[1] != PRIOR_PAYER]
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


def _settle(ctx, settled: list[tuple[_ClaimInfo, dict]], trace: str, payer_name: str, summary: ImportSummary) -> None:
    """Claim statuses, payer claim numbers, history and the denial work list after the payments
    (in bulk: an 835 may pay thousands of claims)."""
    from hpms.db import bulk_insert
    from hpms.models import Claim, ClaimEvent, WorklistItem

    if not settled:
        return
    s = ctx.session
    now = ctx.now()
    updates, events, denials, paid = [], [], [], []
    for info, d in settled:
        outcome = _outcome(d)
        status = info.status if info.status in ("void", "closed") else outcome
        updates.append({"b_id": info.id, "b_status": status, "b_pcn": (d["pcn"] or None) and d["pcn"][:50]})
        note = (
            f"835 {trace}: reversal of a payment"
            if d["status"] == REVERSAL
            else f"835 {trace}: paid {_money(d['paid'])}"
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
    summary.denied += len(denials)
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
                WorklistItem.claim_id.in_(paid[i : i + CHUNK]),
                WorklistItem.rule_id == DENIAL_RULE,
                WorklistItem.resolved_at.is_(None),
            )
            .values(resolved_at=now)
        )
    bulk_insert(s, WorklistItem.__table__, denials)


# ---- import ----------------------------------------------------------------------------------


def _payer_row(ctx, identifier: str | None, name: str):
    from hpms.models import Payer

    q = sa.select(Payer.id).where(Payer.org_id == ctx.org_id)
    if identifier:
        found = ctx.session.execute(q.where(Payer.payer_id == identifier)).scalar_one_or_none()
        if found:
            return found
    if name:
        return ctx.session.execute(q.where(sa.func.lower(Payer.name) == name.strip().lower())).scalars().first()
    return None


def _read(path) -> tuple[str, str, str]:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ValidationError("FILE", f"cannot read {p}: {exc.strerror or exc}") from None
    if not data.strip():
        raise ValidationError("FILE", f"{p.name} is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return p.name, hashlib.sha256(data).hexdigest(), text


def _parse(name: str, text: str) -> list:
    from hpms.interop.x12.x835 import X12Error, balance_problems, parse_835

    try:
        remits = parse_835(text)
    except X12Error as exc:
        raise ValidationError("FILE", f"{name} is not a valid 835: {exc}") from None
    if not remits:
        raise ValidationError("FILE", f"{name} holds no 835 transaction set")
    problems = [p for r in remits for p in balance_problems(r)]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ValidationError("FILE", f"{name} does not balance, nothing posted: {problems[0]}{more}")
    return remits


def import_file(
    ctx, path, *, dry_run: bool = False, keep_unmatched: bool = False, force: bool = False
) -> ImportSummary:
    """Post an 835 file (see the module docstring). `force` posts a payment whose trace number
    was posted for another amount or date, and a file paid to another payee. Raises
    ValidationError (not an 835, does not balance), NotFoundError (none of its claims was billed
    by hpms), ConflictError (a trace number posted for another payment; another payee),
    PermissionDenied."""
    from hpms.models import RemitFile

    require(ctx.actor, "remits.import")
    name, sha, text = _read(path)
    summary = ImportSummary(file=name, sha256=sha, dry_run=dry_run)
    s = ctx.session
    seen = s.execute(
        sa.select(RemitFile).where(RemitFile.org_id == ctx.org_id, RemitFile.sha256 == sha)
    ).scalar_one_or_none()
    if seen is not None:
        summary.duplicate = True
        summary.already_posted.append(
            {
                "trace_number": None,
                "payer": None,
                "payment": None,
                "payment_date": None,
                "file_id": seen.id,
                "file": seen.filename,
            }
        )
        summary.warnings.append(
            f"{name} was already posted as file {seen.id} ({seen.filename}, imported "
            f"{seen.imported_at:%Y-%m-%d %H:%M} UTC); nothing posted"
        )
        return summary
    remits = _parse(name, text)
    _check_payee(ctx, name, remits, summary, force)
    if dry_run:
        nested = s.begin_nested()
        try:
            _post_file(ctx, name, sha, remits, summary, keep_unmatched, force)
        finally:
            nested.rollback()
        audit.record(
            ctx,
            audit.Event(
                "read",
                "remittance",
                None,
                detail=f"dry run of {name}: {summary.posted} claims would post, {len(summary.unmatched)} unmatched",
            ),
        )
        return summary
    _post_file(ctx, name, sha, remits, summary, keep_unmatched, force)
    return summary


def _practice_ids(ctx) -> tuple[set[str], str | None]:
    """The NPIs a payment to this practice may name as payee (every location's group NPI and
    every provider's own, for providers paid under their NPI) and its tax id."""
    from hpms.models import BillingProfile, Location, Provider

    s = ctx.session
    npis = set(
        s.execute(sa.select(Location.npi).where(Location.org_id == ctx.org_id, Location.npi.is_not(None))).scalars()
    )
    npis |= set(
        s.execute(sa.select(Provider.npi).where(Provider.org_id == ctx.org_id, Provider.npi.is_not(None))).scalars()
    )
    profile = s.get(BillingProfile, ctx.org_id)
    return {n for n in npis if n}, profile.tax_id if profile else None


def _check_payee(ctx, name: str, remits: list, summary: ImportSummary, force: bool) -> None:
    """Each payment's payee (N1*PE: NPI, tax id) must be this practice: a file for another
    practice is refused whole unless `force`. A payee named by neither id cannot be checked
    (a warning says so); neither can a practice with no NPI and no tax id yet."""
    npis, tax_id = _practice_ids(ctx)
    if not npis and not tax_id:
        return
    for r in remits:
        npi, tin = (r.payee_npi or "").strip(), "".join(ch for ch in (r.payee_tin or "") if ch.isdigit())
        if not npi and not tin:
            summary.warnings.append(
                f"payment {r.trace_number}: the payee ({r.payee_name or 'unnamed'}) has no NPI or tax id to check"
            )
            continue
        if (npi and npi in npis) or (tin and tin == tax_id):
            continue
        ids = ", ".join(x for x in (f"NPI {npi}" if npi else "", f"tax id {tin}" if tin else "") if x)
        message = (
            f"payment {r.trace_number} in {name} is paid to {r.payee_name or 'another payee'} ({ids}), "
            "not to this practice"
        )
        if force:
            summary.warnings.append(message + "; posted as asked")
            continue
        raise ConflictError(message + "; nothing posted", hint="if the payee is right, add --force")


def _payer_key(r) -> str:
    """How a remittance names its payer: REF*2U / N1*PR id, else the name."""
    return (r.payer_id or r.payer_name or "unknown")[:80]


def _not_posted(ctx, remits: list, summary: ImportSummary, force: bool) -> list:
    """The remittances of a file that were not posted before. A payment is the payer, the trace
    (check or EFT) number, the amount and the payment date, whatever envelope it comes in: one
    re-delivered with new interchange control numbers is skipped and reported. A trace number
    already posted (or twice in this file) for another amount or date is refused as a whole
    unless `force` (a payer reusing a check number is rare; a corrected payment is usually
    a mistake to post twice)."""
    from hpms.models import RemitFile, Remittance

    posted: dict[tuple[str, str], list] = {}
    for payer, trace in sorted({(_payer_key(r), r.trace_number[:50]) for r in remits}):
        posted[(payer, trace)] = ctx.session.execute(
            sa.select(
                Remittance.remit_file_id,
                Remittance.payment_cents,
                Remittance.payment_date,
                RemitFile.filename,
                RemitFile.imported_at,
            )
            .join(RemitFile, RemitFile.id == Remittance.remit_file_id)
            .where(
                Remittance.org_id == ctx.org_id, Remittance.payer_identifier == payer, Remittance.trace_number == trace
            )
            .order_by(Remittance.id)
        ).all()
    fresh: list = []
    in_file: dict[tuple[str, str], list[tuple[int, dt.date | None]]] = {}
    for r in remits:
        key = (_payer_key(r), r.trace_number[:50])
        amount, day = _cents(r.payment_amount), r.payment_date
        who = f"payment {r.trace_number} from {r.payer_name or key[0]}"
        same = next((p for p in posted[key] if (p.payment_cents, p.payment_date) == (amount, day)), None)
        if same is not None:
            summary.already_imported += 1
            summary.already_posted.append(
                {
                    "trace_number": r.trace_number,
                    "payer": r.payer_name or key[0],
                    "payment": _money(amount),
                    "payment_date": day,
                    "file_id": same.remit_file_id,
                    "file": same.filename,
                }
            )
            summary.warnings.append(
                f"{who} ({_money(amount)} on {_day(day) or 'no date'}) was already posted as "
                f"file {same.remit_file_id} ({same.filename}, imported "
                f"{same.imported_at:%Y-%m-%d %H:%M} UTC); nothing posted"
            )
            continue
        if (amount, day) in in_file.get(key, []):
            summary.already_imported += 1
            summary.warnings.append(f"{who} ({_money(amount)}) is twice in this file; posted once")
            continue
        others = [(p.payment_cents, p.payment_date, f"file {p.remit_file_id} ({p.filename})") for p in posted[key]]
        others += [(c, d, "this file") for c, d in in_file.get(key, [])]
        if others and not force:
            c, d, where = others[0]
            raise ConflictError(
                f"{who}: this trace number was already posted in {where} for {_money(c)} on {_day(d) or 'no date'}; "
                f"this payment is {_money(amount)} on {_day(day) or 'no date'}; nothing posted",
                hint="if it is a new payment that reuses the trace number, add --force",
            )
        in_file.setdefault(key, []).append((amount, day))
        fresh.append(r)
    return fresh


def _post_file(ctx, name, sha, remits, summary: ImportSummary, keep_unmatched: bool, force: bool) -> None:
    from hpms.db import bulk_insert, new_ids
    from hpms.models import RemitClaim, RemitFile, Remittance

    s = ctx.session
    fresh = _not_posted(ctx, remits, summary, force)
    summary.remittances = len(fresh)
    if not fresh:
        return
    claims = _claims_by_control(ctx, [c.patient_control_number for r in fresh for c in r.claims])
    total = sum(len(r.claims) for r in fresh)
    if total and not claims and not keep_unmatched:
        numbers = sorted({c.patient_control_number for r in fresh for c in r.claims})
        shown = ", ".join(numbers[:5]) + (" ..." if len(numbers) > 5 else "")
        raise NotFoundError(
            f"none of the {total} claims in {name} was billed by hpms (CLP01 {shown}); "
            "nothing posted: is the file for this practice?",
            hint="add --keep-unmatched to keep them for `hpms remits match`",
        )
    now = ctx.now()
    rf = RemitFile(org_id=ctx.org_id, filename=name[:200], sha256=sha, imported_at=now, imported_by=ctx.actor.user_id)
    s.add(rf)
    s.flush()
    patients: set[int] = set()
    transferred: set[int] = set()
    primaries: list[int] = []
    for r in fresh:
        payer_ident = (r.payer_id or r.payer_name or "unknown")[:80]
        rem = Remittance(
            org_id=ctx.org_id,
            remit_file_id=rf.id,
            isa_control=r.isa_control[:9],
            st_control=r.st_control[:9],
            payer_identifier=payer_ident,
            payer_name=r.payer_name[:60],
            payer_id=_payer_row(ctx, r.payer_id, r.payer_name),
            trace_number=r.trace_number[:50],
            payment_cents=_cents(r.payment_amount),
            payment_method=(r.payment_method or None),
            payment_date=r.payment_date,
            provider_adjustment_cents=sum(_cents(p.amount) for p in r.provider_adjustments),
            claims=len(r.claims),
            created_at=now,
        )
        s.add(rem)
        s.flush()
        summary.payment += r.payment_amount
        summary.provider_adjustments += sum((p.amount for p in r.provider_adjustments), Decimal("0"))
        summary.warnings.extend(r.warnings)
        plan = _Plan(ctx, r.payment_date or now.date())
        ids = new_ids(s, RemitClaim.__table__, len(r.claims))
        rows = []
        matched = []
        for seq, (rc_id, c) in enumerate(zip(ids, r.claims), 1):
            d = claim_detail(c)
            info = claims.get(c.patient_control_number)
            patient = c.patient
            rows.append(
                dict(
                    id=rc_id,
                    org_id=ctx.org_id,
                    remittance_id=rem.id,
                    seq=seq,
                    patient_control_number=c.patient_control_number[:38],
                    status_code=c.status_code[:2],
                    charge_cents=d["charge"],
                    paid_cents=d["paid"],
                    patient_resp_cents=d["pr"],
                    payer_claim_number=(d["pcn"] or None) and d["pcn"][:50],
                    patient_name=(f"{patient.name}, {patient.first or ''}".strip(", ")[:120] if patient else None),
                    service_date=c.service_date_from,
                    claim_id=info.id if info else None,
                    posted_at=None,
                    remarks=",".join(d["remarks"])[:200] or None,
                    detail=json.dumps(d, separators=(",", ":")),
                )
            )
            summary.claims += 1
            if info is None:
                summary.unmatched.append(
                    {
                        "row": rc_id,
                        "control_number": c.patient_control_number,
                        "patient": rows[-1]["patient_name"],
                        "paid": _money(d["paid"]),
                        "payer": r.payer_name,
                    }
                )
            else:
                matched.append((rc_id, d, info, rows[-1]))
        bulk_insert(s, RemitClaim.__table__, rows)
        for rc_id, d, info, row in matched:
            if _plan_one(ctx, plan, rc_id, d, info, r.trace_number, summary):
                row["posted"] = True
        plan.write()
        _settle(
            ctx,
            [(info, d) for _, d, info, row in matched if row.get("posted")],
            r.trace_number,
            r.payer_name or payer_ident,
            summary,
        )
        posted_ids = [rc_id for rc_id, _, _, row in matched if row.get("posted")]
        for i in range(0, len(posted_ids), CHUNK):
            s.execute(sa.update(RemitClaim).where(RemitClaim.id.in_(posted_ids[i : i + CHUNK])).values(posted_at=now))
        patients |= plan.patients
        transferred |= plan.transferred
        primaries += [info.id for _, d, info, row in matched if row.get("posted") and _may_follow(d)]
    s.flush()
    summary.secondary = len(secondary.queue_secondary(ctx, primaries))
    _apply_credit(ctx, transferred)
    audit.record(
        ctx,
        audit.Event(
            "post",
            "remittance",
            rf.id,
            patient_ids=sorted(patients),
            detail=f"{name}: {summary.posted} claims posted, {len(summary.unmatched)} unmatched",
        ),
    )


def _plan_one(ctx, plan: _Plan, rc_id: int, d: dict, info: _ClaimInfo, trace: str, summary: ImportSummary) -> bool:
    if d["status"] == REVERSAL:
        found = _reversible(ctx, info.id, d, rc_id)
        if found is None:
            summary.warnings.append(
                f"claim {info.id}: a reversal (CLP02 22) of a payment hpms has not posted; kept unposted"
            )
            return False
        plan.reverse(rc_id, found[1], trace)
        summary.reversals += 1
    else:
        summary.warnings.extend(plan.post(rc_id, d, info, trace))
    summary.posted += 1
    summary.paid += _money(d["paid"])
    summary.adjusted += _money(sum(a[2] for a in _all_adjustments(d) if a[0] != "PR"))
    summary.patient_responsibility += _money(sum(a[2] for a in _all_adjustments(d) if a[0] == "PR"))
    return True


def _may_follow(d: dict) -> bool:
    """Whether a posted claim payment may be followed by a secondary claim: not a reversal, and
    not a claim the payer forwarded to the next payer itself (crossover)."""
    return d["status"] != REVERSAL and d["status"] not in CROSSOVER


def _apply_credit(ctx, patient_ids: set[int]) -> None:
    """Patient credit (payments not yet applied) pays what was just moved to the patient."""
    if not patient_ids:
        return
    from hpms.models import LedgerEntry
    from hpms.services.payments import payments

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
                    LedgerEntry.patient_id.in_(ids[i : i + CHUNK]),
                )
            ).scalars()
        )
    for pid in sorted(paying):
        payments._apply_credit(ctx, pid)


# ---- unmatched claims, listing -----------------------------------------------------------------


def unmatched(ctx, *, limit: int = MAX_LIST) -> list[dict]:
    """Claim payments not posted yet (no hpms claim matched them), oldest first."""
    from hpms.models import RemitClaim, RemitFile, Remittance

    require(ctx.actor, "remits.import")
    rows = ctx.session.execute(
        sa.select(
            RemitClaim, Remittance.payer_name, Remittance.trace_number, Remittance.payment_date, RemitFile.filename
        )
        .join(Remittance, Remittance.id == RemitClaim.remittance_id)
        .join(RemitFile, RemitFile.id == Remittance.remit_file_id)
        .where(RemitClaim.org_id == ctx.org_id, RemitClaim.posted_at.is_(None))
        .order_by(RemitClaim.id)
        .limit(limit)
    ).all()
    out = [
        {
            "row": rc.id,
            "file": filename,
            "payer": payer,
            "trace_number": trace,
            "payment_date": pay_date,
            "control_number": rc.patient_control_number,
            "status_code": rc.status_code,
            "patient": rc.patient_name,
            "service_date": rc.service_date,
            "charge": _money(rc.charge_cents),
            "paid": _money(rc.paid_cents),
            "claim_id": rc.claim_id,
        }
        for rc, payer, trace, pay_date, filename in rows
    ]
    if out:
        audit.record(ctx, audit.Event("read", "remit_claim", None, detail=f"{len(out)} unmatched claim payments"))
    return out


def match(ctx, row_id, claim_ref) -> ImportSummary:
    """Post an unmatched claim payment against the claim it is for (id or control number)."""
    from hpms.models import RemitClaim, Remittance
    from hpms.services.lookups import load_claim

    require(ctx.actor, "remits.import")
    text = str(row_id).strip()
    if not text.isdigit():
        raise ValidationError("CLAIM_ROW", f"{row_id!r} is not a row number (see `hpms remits unmatched`)")
    s = ctx.session
    rc = s.get(RemitClaim, int(text))
    if rc is None or rc.org_id != ctx.org_id:
        raise NotFoundError(f"no claim payment row {text}", hint="see `hpms remits unmatched`")
    if rc.posted_at is not None:
        raise ConflictError(f"claim payment row {rc.id} was posted on {rc.posted_at:%Y-%m-%d} (claim {rc.claim_id})")
    try:
        claim = load_claim(ctx, claim_ref)
    except NotFoundError as exc:
        raise NotFoundError(f"CLAIM_ID: {exc.message}", hint=exc.hint) from None
    if claim.frequency == "8":
        raise ConflictError(f"claim {claim.id} is a void request; match the claim it voids")
    rem = s.get(Remittance, rc.remittance_id)
    d = json.loads(rc.detail)
    info = _claim_info(ctx, claim.id)
    summary = ImportSummary(file=f"row {rc.id}", sha256="")
    summary.claims = 1
    plan = _Plan(ctx, rem.payment_date or ctx.now().date())
    if not _plan_one(ctx, plan, rc.id, d, info, rem.trace_number, summary):
        raise ConflictError(f"claim payment row {rc.id} reverses a payment claim {claim.id} never received")
    plan.write()
    rc.claim_id = claim.id
    rc.posted_at = ctx.now()
    _settle(ctx, [(info, d)], rem.trace_number, rem.payer_name or rem.payer_identifier, summary)
    s.flush()
    if _may_follow(d):
        summary.secondary = len(secondary.queue_secondary(ctx, [claim.id]))
    _apply_credit(ctx, plan.transferred)
    audit.record(
        ctx,
        audit.Event(
            "post", "remit_claim", rc.id, patient_id=claim.patient_id, detail=f"matched by hand to claim {claim.id}"
        ),
    )
    return summary


def list_remittances(ctx, *, limit: int = 100) -> list[dict]:
    """Imported payments, newest first, with how many of their claims are posted."""
    from hpms.models import RemitClaim, RemitFile, Remittance

    require(ctx.actor, "remits.import")
    posted = (
        sa.select(sa.func.count())
        .where(RemitClaim.remittance_id == Remittance.id, RemitClaim.posted_at.is_not(None))
        .scalar_subquery()
    )
    rows = ctx.session.execute(
        sa.select(Remittance, RemitFile.filename, RemitFile.imported_at, posted.label("posted"))
        .join(RemitFile, RemitFile.id == Remittance.remit_file_id)
        .where(Remittance.org_id == ctx.org_id)
        .order_by(Remittance.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "id": r.id,
            "file_id": r.remit_file_id,
            "file": filename,
            "imported_at": imported,
            "payer": r.payer_name or r.payer_identifier,
            "trace_number": r.trace_number,
            "payment_date": r.payment_date,
            "method": r.payment_method,
            "payment": _money(r.payment_cents),
            "provider_adjustments": _money(r.provider_adjustment_cents),
            "claims": r.claims,
            "posted": n,
            "unmatched": r.claims - n,
        }
        for r, filename, imported, n in rows
    ]
