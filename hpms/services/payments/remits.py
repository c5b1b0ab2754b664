"""Remittance advice (835) import: what the payers paid and adjusted goes to the ledger.

One file is one transaction. It is refused as a whole when it is not a well-formed 835 or does
not balance (BPR02 = claims paid - provider adjustments; per claim, charge - paid = the sum of
its adjustments), or when it pays another payee. A file already imported (same bytes) posts
nothing, and so does a payment already imported from another file (same payer, trace number,
amount and date, whatever envelope it comes in).

Each claim payment posts as `hpms.services.payments.posting` says. A primary claim that leaves an
amount to the patient is followed by a secondary claim when the patient has a secondary
coverage (`hpms.services.billing.secondary`): the amount moves to the secondary payer until its
own 835 answers. Claims the practice did not bill are kept unposted, listed for matching by hand
to the claim they pay; a file none of whose claims the practice billed is refused (it is most
likely another practice's), unless asked to keep them all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.db import bulk_insert, new_ids
from hpms.errors import Action, ConflictError, NotFoundError, ValidationError
from hpms.fileio import read_input
from hpms.models import BillingProfile, Location, Payer, Provider, RemitClaim, RemitFile, Remittance
from hpms.services.billing import secondary
from hpms.services.lookups import load_claim
from hpms.services.payments.posting import (
    CHUNK,
    REVERSAL,
    ClaimInfo,
    Plan,
    all_adjustments,
    apply_credit,
    claim_detail,
    claim_info,
    claims_by_control,
    iso_day,
    may_follow,
    reversible,
    settle,
    to_cents,
    to_money,
)
from hpms.services.platform import audit
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

MAX_LIST = 500


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


# ---- import ----------------------------------------------------------------------------------


def _payer_row(ctx: Ctx, identifier: str | None, name: str) -> int | None:
    q = sa.select(Payer.id).where(Payer.org_id == ctx.org_id)
    if identifier:
        found = ctx.session.execute(q.where(Payer.payer_id == identifier)).scalar_one_or_none()
        if found:
            return found
    if name:
        return ctx.session.execute(q.where(sa.func.lower(Payer.name) == name.strip().lower())).scalars().first()
    return None


def _read(path: str | Path) -> tuple[str, str, str]:
    p = Path(path)
    data = read_input(p, field="file")
    if not data.strip():
        raise ValidationError("file", f"{p.name} is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return p.name, hashlib.sha256(data).hexdigest(), text


def _parse(name: str, text: str) -> list:
    # deferred: the X12 reader loads only when a file is imported
    from hpms.interop.x12.x835 import X12Error, balance_problems, parse_835

    try:
        remits = parse_835(text)
    except X12Error as exc:
        raise ValidationError("file", f"{name} is not a valid 835: {exc}") from None
    if not remits:
        raise ValidationError("file", f"{name} holds no 835 transaction set")
    problems = [p for r in remits for p in balance_problems(r)]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ValidationError("file", f"{name} does not balance, nothing posted: {problems[0]}{more}")
    return remits


def import_file(
    ctx: Ctx, path: str | Path, *, dry_run: bool = False, keep_unmatched: bool = False, force: bool = False
) -> ImportSummary:
    """Post an 835 file (see the module docstring). `force` posts a payment whose trace number
    was posted for another amount or date, and a file paid to another payee. Raises
    ValidationError (not an 835, does not balance), NotFoundError (none of its claims was billed
    by the practice), ConflictError (a trace number posted for another payment; another payee),
    PermissionDenied."""
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


def _practice_ids(ctx: Ctx) -> tuple[set[str], str | None]:
    """The NPIs a payment to this practice may name as payee (every location's group NPI and
    every provider's own, for providers paid under their NPI) and its tax id."""
    s = ctx.session
    npis: set[str | None] = set(
        s.execute(
            sa.select(Location.npi).where(Location.org_id == ctx.org_id, col(Location.npi).is_not(None))
        ).scalars()
    )
    npis |= set(
        s.execute(
            sa.select(Provider.npi).where(Provider.org_id == ctx.org_id, col(Provider.npi).is_not(None))
        ).scalars()
    )
    profile = s.get(BillingProfile, ctx.org_id)
    return {n for n in npis if n}, profile.tax_id if profile else None


def _check_payee(ctx: Ctx, name: str, remits: list, summary: ImportSummary, force: bool) -> None:
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
        raise ConflictError(
            message + "; nothing posted", retry_with=("force",), hint="to post it if the payee is right"
        )


def _payer_key(r: Any) -> str:
    """How a remittance names its payer: REF*2U / N1*PR id, else the name."""
    return (r.payer_id or r.payer_name or "unknown")[:80]


def _not_posted(ctx: Ctx, remits: list, summary: ImportSummary, force: bool) -> list:
    """The remittances of a file that were not posted before. A payment is the payer, the trace
    (check or EFT) number, the amount and the payment date, whatever envelope it comes in: one
    re-delivered with new interchange control numbers is skipped and reported. A trace number
    already posted (or twice in this file) for another amount or date is refused as a whole
    unless `force` (a payer reusing a check number is rare; a corrected payment is usually
    a mistake to post twice)."""
    posted: dict[tuple[str, str], Sequence[sa.Row]] = {}
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
        amount, day = to_cents(r.payment_amount), r.payment_date
        who = f"payment {r.trace_number} from {r.payer_name or key[0]}"
        same = next((p for p in posted[key] if (p.payment_cents, p.payment_date) == (amount, day)), None)
        if same is not None:
            summary.already_imported += 1
            summary.already_posted.append(
                {
                    "trace_number": r.trace_number,
                    "payer": r.payer_name or key[0],
                    "payment": to_money(amount),
                    "payment_date": day,
                    "file_id": same.remit_file_id,
                    "file": same.filename,
                }
            )
            summary.warnings.append(
                f"{who} ({to_money(amount)} on {iso_day(day) or 'no date'}) was already posted as "
                f"file {same.remit_file_id} ({same.filename}, imported "
                f"{same.imported_at:%Y-%m-%d %H:%M} UTC); nothing posted"
            )
            continue
        if (amount, day) in in_file.get(key, []):
            summary.already_imported += 1
            summary.warnings.append(f"{who} ({to_money(amount)}) is twice in this file; posted once")
            continue
        others = [(p.payment_cents, p.payment_date, f"file {p.remit_file_id} ({p.filename})") for p in posted[key]]
        others += [(c, d, "this file") for c, d in in_file.get(key, [])]
        if others and not force:
            c, d, where = others[0]
            raise ConflictError(
                f"{who}: this trace number was already posted in {where} for {to_money(c)} on "
                f"{iso_day(d) or 'no date'}; this payment is {to_money(amount)} on {iso_day(day) or 'no date'}; "
                "nothing posted",
                retry_with=("force",),
                hint="to post it if it is a new payment that reuses the trace number",
            )
        in_file.setdefault(key, []).append((amount, day))
        fresh.append(r)
    return fresh


def _post_file(
    ctx: Ctx, name: str, sha: str, remits: list, summary: ImportSummary, keep_unmatched: bool, force: bool
) -> None:
    s = ctx.session
    fresh = _not_posted(ctx, remits, summary, force)
    summary.remittances = len(fresh)
    if not fresh:
        return
    claims = claims_by_control(ctx, [c.patient_control_number for r in fresh for c in r.claims])
    total = sum(len(r.claims) for r in fresh)
    if total and not claims and not keep_unmatched:
        numbers = sorted({c.patient_control_number for r in fresh for c in r.claims})
        shown = ", ".join(numbers[:5]) + (" ..." if len(numbers) > 5 else "")
        raise NotFoundError(
            f"none of the {total} claims in {name} was billed by this practice (CLP01 {shown}); "
            "nothing posted: is the file for this practice?",
            retry_with=("keep_unmatched",),
            hint="to keep them for matching by hand",
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
            payment_cents=to_cents(r.payment_amount),
            payment_method=(r.payment_method or None),
            payment_date=r.payment_date,
            provider_adjustment_cents=sum(to_cents(p.amount) for p in r.provider_adjustments),
            claims=len(r.claims),
            created_at=now,
        )
        s.add(rem)
        s.flush()
        summary.payment += r.payment_amount
        summary.provider_adjustments += sum((p.amount for p in r.provider_adjustments), Decimal("0"))
        summary.warnings.extend(r.warnings)
        plan = Plan(ctx, r.payment_date or now.date())
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
                        "paid": to_money(d["paid"]),
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
        summary.denied += settle(
            ctx,
            [(info, d) for _, d, info, row in matched if row.get("posted")],
            r.trace_number,
            r.payer_name or payer_ident,
        )
        posted_ids = [rc_id for rc_id, _, _, row in matched if row.get("posted")]
        for i in range(0, len(posted_ids), CHUNK):
            s.execute(
                sa.update(RemitClaim).where(col(RemitClaim.id).in_(posted_ids[i : i + CHUNK])).values(posted_at=now)
            )
        patients |= plan.patients
        transferred |= plan.transferred
        primaries += [info.id for _, d, info, row in matched if row.get("posted") and may_follow(d)]
    s.flush()
    summary.secondary = len(secondary.queue_secondary(ctx, primaries))
    apply_credit(ctx, transferred)
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


def _plan_one(ctx: Ctx, plan: Plan, rc_id: int, d: dict, info: ClaimInfo, trace: str, summary: ImportSummary) -> bool:
    if d["status"] == REVERSAL:
        found = reversible(ctx, info.id, d, rc_id)
        if found is None:
            summary.warnings.append(
                f"claim {info.id}: a reversal (CLP02 22) of a payment not posted here; kept unposted"
            )
            return False
        plan.reverse(rc_id, found[1], trace)
        summary.reversals += 1
    else:
        summary.warnings.extend(plan.post(rc_id, d, info, trace))
    summary.posted += 1
    summary.paid += to_money(d["paid"])
    summary.adjusted += to_money(sum(a[2] for a in all_adjustments(d) if a[0] != "PR"))
    summary.patient_responsibility += to_money(sum(a[2] for a in all_adjustments(d) if a[0] == "PR"))
    return True


# ---- unmatched claims, listing -----------------------------------------------------------------


def unmatched(ctx: Ctx, *, limit: int = MAX_LIST) -> list[dict]:
    """Claim payments not posted yet (no claim of the practice matched them), oldest first."""
    require(ctx.actor, "remits.import")
    rows = ctx.session.execute(
        sa.select(
            RemitClaim, Remittance.payer_name, Remittance.trace_number, Remittance.payment_date, RemitFile.filename
        )
        .join(Remittance, Remittance.id == RemitClaim.remittance_id)
        .join(RemitFile, RemitFile.id == Remittance.remit_file_id)
        .where(RemitClaim.org_id == ctx.org_id, col(RemitClaim.posted_at).is_(None))
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
            "charge": to_money(rc.charge_cents),
            "paid": to_money(rc.paid_cents),
            "claim_id": rc.claim_id,
        }
        for rc, payer, trace, pay_date, filename in rows
    ]
    if out:
        audit.record(ctx, audit.Event("read", "remit_claim", None, detail=f"{len(out)} unmatched claim payments"))
    return out


def match(ctx: Ctx, row_id: Any, claim_ref: Any) -> ImportSummary:
    """Post an unmatched claim payment against the claim it is for (id or control number).
    Errors name the fields `row` (the claim payment's row) and `claim`."""
    require(ctx.actor, "remits.import")
    text = str(row_id).strip()
    if not text.isdigit():
        raise ValidationError("row", f"{row_id!r} is not a row number", action=Action("remits", "unmatched"))
    s = ctx.session
    rc = s.get(RemitClaim, int(text))
    if rc is None or rc.org_id != ctx.org_id:
        raise NotFoundError(f"no claim payment row {text}", field="row", action=Action("remits", "unmatched"))
    if rc.posted_at is not None:
        raise ConflictError(f"claim payment row {rc.id} was posted on {rc.posted_at:%Y-%m-%d} (claim {rc.claim_id})")
    claim = load_claim(ctx, claim_ref, field="claim")
    assert claim.id is not None and rc.id is not None  # stored rows
    if claim.frequency == "8":
        raise ConflictError(f"claim {claim.id} is a void request; match the claim it voids")
    rem = s.get(Remittance, rc.remittance_id)
    assert rem is not None  # remit_claim.remittance_id is a foreign key
    d = json.loads(rc.detail)
    info = claim_info(ctx, claim.id)
    summary = ImportSummary(file=f"row {rc.id}", sha256="")
    summary.claims = 1
    plan = Plan(ctx, rem.payment_date or ctx.now().date())
    if not _plan_one(ctx, plan, rc.id, d, info, rem.trace_number, summary):
        raise ConflictError(f"claim payment row {rc.id} reverses a payment claim {claim.id} never received")
    plan.write()
    rc.claim_id = claim.id
    rc.posted_at = ctx.now()
    summary.denied += settle(ctx, [(info, d)], rem.trace_number, rem.payer_name or rem.payer_identifier)
    s.flush()
    if may_follow(d):
        summary.secondary = len(secondary.queue_secondary(ctx, [claim.id]))
    apply_credit(ctx, plan.transferred)
    audit.record(
        ctx,
        audit.Event(
            "post", "remit_claim", rc.id, patient_id=claim.patient_id, detail=f"matched by hand to claim {claim.id}"
        ),
    )
    return summary


def list_remittances(ctx: Ctx, *, limit: int = 100) -> list[dict]:
    """Imported payments, newest first, with how many of their claims are posted."""
    require(ctx.actor, "remits.import")
    posted = (
        sa.select(sa.func.count())
        .where(RemitClaim.remittance_id == Remittance.id, col(RemitClaim.posted_at).is_not(None))
        .scalar_subquery()
    )
    rows = ctx.session.execute(
        sa.select(Remittance, RemitFile.filename, RemitFile.imported_at, posted.label("posted"))
        .join(RemitFile, RemitFile.id == Remittance.remit_file_id)
        .where(Remittance.org_id == ctx.org_id)
        .order_by(col(Remittance.id).desc())
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
            "payment": to_money(r.payment_cents),
            "provider_adjustments": to_money(r.provider_adjustment_cents),
            "claims": r.claims,
            "posted": n,
            "unmatched": r.claims - n,
        }
        for r, filename, imported, n in rows
    ]
