"""Payers (insurance companies) and patients' insurance coverage."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hpms.errors import Action, ConflictError, NotFoundError, ValidationError
from hpms.interop.x12.x837p import CLAIM_FILING_CODES, MEDICARE_FILING, MEDICARE_SECONDARY_TYPES
from hpms.models import Coverage, CoverageOut, Payer, PayerOut
from hpms.models.patients import PRIORITIES, RELATIONSHIPS
from hpms.services.lookups import find_patient, find_payer
from hpms.services.platform import audit
from hpms.services.platform import localtime as lt
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

# Names accepted for the claim filing indicators most payers use (SBR09).
CLAIM_FILING_NAMES = {
    "medicare-b": "MB",
    "medicare-part-b": "MB",
    "medicare-a": "MA",
    "medicare-part-a": "MA",
    "medicaid": "MC",
    "commercial": "CI",
    "bcbs": "BL",
    "blue-cross": "BL",
    "hmo": "HM",
    "ppo": "12",
    "pos": "13",
    "epo": "14",
    "indemnity": "15",
    "medicare-advantage": "16",
    "tricare": "CH",
    "champus": "CH",
    "va": "VA",
    "workers-comp": "WC",
    "auto": "AM",
    "disability": "DS",
    "fehb": "FI",
    "liability": "LM",
    "other-federal": "OF",
    "title-v": "TV",
    "other": "11",
}


def parse_claim_filing(field: str, value: str | None) -> str | None:
    """An SBR09 claim filing indicator, by code (MB, CI, ...) or name (medicare-b, commercial...)."""
    text = v.optional_text(field, value, 40)
    if text is None:
        return None
    if text.upper() in CLAIM_FILING_CODES:
        return text.upper()
    code = CLAIM_FILING_NAMES.get(text.lower().replace("_", "-").replace(" ", "-"))
    if code is None:
        raise ValidationError(
            field,
            f"{text!r} is not a claim filing indicator (SBR09): one of "
            f"{', '.join(CLAIM_FILING_CODES)}, or a name such as medicare-b, medicaid, "
            f"commercial, bcbs, hmo, tricare, va, workers-comp",
        )
    return code


def parse_medicare_secondary_type(field: str, value: str | None) -> str | None:
    """An SBR05 Medicare secondary type code (12 working aged, 43 disability, ...)."""
    text = v.optional_text(field, value, 10)
    if text is None:
        return None
    if text not in MEDICARE_SECONDARY_TYPES:
        raise ValidationError(
            field,
            f"{text!r} is not a Medicare secondary type: one of "
            f"{', '.join(MEDICARE_SECONDARY_TYPES)} (12 working aged, 13 end-stage renal "
            f"disease, 14 no-fault, 15 workers' compensation, 16 public health service, "
            f"41 black lung, 42 veterans, 43 disability, 47 other liability)",
        )
    return text


def _payer_code(ctx: Ctx, value: str | None, *, current: int | None = None) -> str:
    code = v.require_text("payer_id", value, 80)
    if not re.fullmatch(r"[A-Za-z0-9]{2,80}", code):
        raise ValidationError("payer_id", f"{code!r} is not an X12 payer id (2-80 letters or digits)")
    taken = ctx.session.execute(
        sa.select(Payer.id).where(Payer.org_id == ctx.org_id, Payer.payer_id == code)
    ).scalar_one_or_none()
    if taken is not None and taken != current:
        raise ConflictError(f"a payer with id {code!r} already exists", field="payer_id")
    return code


def add_payer(
    ctx: Ctx,
    *,
    name: str | None,
    payer_id: str | None,
    address_line1: str | None = None,
    address_line2: str | None = None,
    city: str | None = None,
    state: str | None = None,
    postal_code: str | None = None,
    phone: str | None = None,
    claim_filing: str | None = None,
) -> PayerOut:
    """Add a payer; `claim_filing` (SBR09) defaults to CI (commercial). Raises ValidationError,
    ConflictError (payer id taken), PermissionDenied."""
    require(ctx.actor, "payer.write")
    checked_name = v.require_text("name", name, 200)
    code = _payer_code(ctx, payer_id)
    payer = Payer(
        org_id=ctx.org_id,
        name=checked_name,
        payer_id=code,
        address_line1=v.optional_text("address_line1", address_line1),
        address_line2=v.optional_text("address_line2", address_line2),
        city=v.optional_text("city", city, 100),
        state=v.optional_text("state", state, 50),
        postal_code=v.optional_text("postal_code", postal_code, 20),
        phone=v.parse_phone("phone", phone),
        claim_filing=parse_claim_filing("claim_filing", claim_filing) or "CI",
    )
    ctx.session.add(payer)
    ctx.session.flush()
    audit.record(ctx, audit.Event("create", "payer", payer.id, fields=["name", "payer_id", "claim_filing"]))
    return PayerOut.model_validate(payer, from_attributes=True)


PAYER_TEXT = {"address_line1": 200, "address_line2": 200, "city": 100, "state": 50, "postal_code": 20}


def update_payer(
    ctx: Ctx,
    ref: str | int,
    *,
    name: str | None = None,
    payer_id: str | None = None,
    address_line1: str | None = None,
    address_line2: str | None = None,
    city: str | None = None,
    state: str | None = None,
    postal_code: str | None = None,
    phone: str | None = None,
    claim_filing: str | None = None,
) -> PayerOut:
    """Change a payer's name, X12 payer id, address, phone or claim filing indicator (options
    left None are kept). Claims already written keep what their file says; the next files use
    the new values. Raises ValidationError, NotFoundError, ConflictError, PermissionDenied."""
    require(ctx.actor, "payer.write")
    payer = find_payer(ctx, ref)
    new: dict[str, object] = {}
    if name is not None:
        new["name"] = v.require_text("name", name, 200)
    if payer_id is not None:
        new["payer_id"] = _payer_code(ctx, payer_id, current=payer.id)
    given = {
        "address_line1": address_line1,
        "address_line2": address_line2,
        "city": city,
        "state": state,
        "postal_code": postal_code,
    }
    for f, value in given.items():
        if value is not None:
            new[f] = v.optional_text(f, value, PAYER_TEXT[f])
    if phone is not None:
        new["phone"] = v.parse_phone("phone", phone)
    if claim_filing is not None:
        new["claim_filing"] = parse_claim_filing("claim_filing", claim_filing) or payer.claim_filing
    changed = _apply(ctx, payer, new)
    if changed:
        audit.record(ctx, audit.Event("update", "payer", payer.id, fields=changed))
    return PayerOut.model_validate(payer, from_attributes=True)


def list_payers(ctx: Ctx) -> list[PayerOut]:
    require(ctx.actor, "payer.read")
    rows = ctx.session.scalars(sa.select(Payer).where(Payer.org_id == ctx.org_id).order_by(Payer.name))
    return [PayerOut.model_validate(r, from_attributes=True) for r in rows]


def show_payer(ctx: Ctx, ref: str | int) -> PayerOut:
    require(ctx.actor, "payer.read")
    return PayerOut.model_validate(find_payer(ctx, ref), from_attributes=True)


def _out(ctx: Ctx, c: Coverage, payer: Payer) -> CoverageOut:
    return CoverageOut(
        id=c.id,
        patient_id=c.patient_id,
        payer_id=payer.id,
        payer_name=payer.name,
        payer_code=payer.payer_id,
        member_id=ctx.crypto.decrypt(c.member_id_enc, "member_id"),
        group_number=c.group_number,
        relationship=c.relationship,
        subscriber_first_name=c.subscriber_first_name,
        subscriber_last_name=c.subscriber_last_name,
        subscriber_dob=c.subscriber_dob,
        priority=c.priority,
        valid_from=c.valid_from,
        valid_to=c.valid_to,
        active=c.active,
        medicare_secondary_type=c.medicare_secondary_type,
        created_at=c.created_at,
    )


def _overlaps(a_from: dt.date | None, a_to: dt.date | None, b_from: dt.date | None, b_to: dt.date | None) -> bool:
    lo, hi = dt.date.min, dt.date.max
    return (a_from or lo) <= (b_to or hi) and (b_from or lo) <= (a_to or hi)


def parse_member_id(field: str, value: str | None) -> str:
    """An insurance member id: 2-80 letters, digits or '-'. Raises ValidationError."""
    member = v.require_text(field, value, 80)
    if not re.fullmatch(r"[A-Za-z0-9-]{2,80}", member):
        raise ValidationError(field, "must be 2-80 letters, digits or '-'")
    return member


def add_coverage(
    ctx: Ctx,
    *,
    patient: str | int,
    payer: str | int | None,
    member_id: str | None,
    group_number: str | None = None,
    relationship: str = "self",
    subscriber: str | None = None,
    subscriber_dob: str | None = None,
    priority: str = "primary",
    valid_from: str | dt.date | None = None,
    valid_to: str | dt.date | None = None,
    medicare_secondary_type: str | None = None,
) -> CoverageOut:
    """Add an insurance coverage to a patient. The member id is stored encrypted;
    `medicare_secondary_type` (SBR05) only for a Medicare coverage that is not primary.
    Raises ValidationError, NotFoundError, ConflictError (same priority overlapping)."""
    require(ctx.actor, "coverage.write")
    if payer is None or not str(payer).strip():
        raise ValidationError("payer", "is required")
    member = parse_member_id("member_id", member_id)
    relationship = v.parse_choice("relationship", relationship, RELATIONSHIPS) or "self"
    priority = v.parse_choice("priority", priority, PRIORITIES) or "primary"
    start = v.parse_date("valid_from", valid_from)
    end = v.parse_date("valid_to", valid_to)
    if start and end and end < start:
        raise ValidationError("valid_to", f"{end} is before the first day covered ({start})")
    group = v.optional_text("group", group_number, 50)
    sub_first: str | None = None
    sub_last: str | None = None
    sub_dob = None
    if relationship != "self":
        name = v.require_text("subscriber", subscriber, 200)
        if "," in name:
            sub_last, _, sub_first = (x.strip() for x in name.partition(","))
        else:
            *firsts, sub_last = name.split()
            sub_first = " ".join(firsts) or None
        sub_dob = v.parse_dob("subscriber_dob", subscriber_dob, today=ctx.now().date()) if subscriber_dob else None
    elif subscriber:
        raise ValidationError("subscriber", "only when the relationship is spouse, child or other")
    msp = parse_medicare_secondary_type("medicare_secondary_type", medicare_secondary_type)
    pat = find_patient(ctx, patient)
    pay = find_payer(ctx, payer, field="payer")
    if msp is not None:
        _check_medicare_secondary(pay, priority)
    existing = ctx.session.scalars(
        sa.select(Coverage).where(
            Coverage.patient_id == pat.id, Coverage.priority == priority, Coverage.active.is_(True)
        )
    )
    for c in existing:
        if _overlaps(c.valid_from, c.valid_to, start, end):
            raise ConflictError(
                f"patient {pat.mrn} already has {priority} coverage {c.id} for these dates",
                field="priority",
                action=Action("coverage", "end", target=str(c.id), give=(("on", "DATE"),), purpose="end it with"),
            )
    cov = Coverage(
        org_id=ctx.org_id,
        patient_id=pat.id,
        payer_id=pay.id,
        member_id_enc=ctx.crypto.encrypt(member, "member_id"),
        member_id_bidx=ctx.crypto.blind_index(member, "member_id"),
        group_number=group,
        relationship=relationship,
        subscriber_first_name=sub_first,
        subscriber_last_name=sub_last,
        subscriber_dob=sub_dob,
        priority=priority,
        valid_from=start,
        valid_to=end,
        medicare_secondary_type=msp,
        created_at=ctx.now(),
    )
    ctx.session.add(cov)
    ctx.session.flush()
    fields = ["payer_id", "member_id", "relationship", "priority"] + [
        f
        for f, val in (
            ("group_number", group),
            ("subscriber", sub_last),
            ("valid_from", start),
            ("valid_to", end),
            ("medicare_secondary_type", msp),
        )
        if val
    ]
    audit.record(ctx, audit.Event("create", "coverage", cov.id, patient_id=pat.id, fields=fields))
    return _out(ctx, cov, pay)


def list_coverage(ctx: Ctx, patient: str | int, *, include_inactive: bool = False) -> list[CoverageOut]:
    """A patient's coverages by priority. Raises NotFoundError, PermissionDenied."""
    require(ctx.actor, "coverage.read")
    pat = find_patient(ctx, patient, include_merged=True)
    stmt = sa.select(Coverage, Payer).join(Payer, Payer.id == Coverage.payer_id).where(Coverage.patient_id == pat.id)
    if not include_inactive:
        stmt = stmt.where(Coverage.active.is_(True))
    order = sa.case({p: i for i, p in enumerate(PRIORITIES)}, value=Coverage.priority)
    rows = ctx.session.execute(stmt.order_by(order, Coverage.id)).all()
    audit.record(
        ctx,
        audit.Event(
            "read",
            "coverage",
            patient_id=pat.id,
            fields=["payer_id", "member_id", "group_number", "subscriber", "priority"],
            detail=f"{len(rows)} coverage(s)",
        ),
    )
    return [_out(ctx, c, p) for c, p in rows]


def end_coverage(ctx: Ctx, coverage_id: int, *, on: str | dt.date | None = None) -> CoverageOut:
    """End a coverage on a date (default today); it stays on file. Raises NotFoundError."""
    require(ctx.actor, "coverage.write")
    cov = ctx.session.get(Coverage, coverage_id)
    if cov is None or cov.org_id != ctx.org_id:
        raise NotFoundError(f"no coverage {coverage_id}")
    today = ctx.now().date()
    end = lt.parse_day("on", on, today=today) if on is not None and str(on).strip() else today
    if cov.valid_from and end < cov.valid_from:
        raise ValidationError("on", f"{end} is before the coverage starts ({cov.valid_from})")
    cov.valid_to = end
    if end <= ctx.now().date():
        cov.active = False
    ctx.session.flush()
    audit.record(
        ctx, audit.Event("update", "coverage", cov.id, patient_id=cov.patient_id, fields=["valid_to", "active"])
    )
    return _out(ctx, cov, _payer_of(ctx, cov))


def _check_medicare_secondary(payer: Payer, priority: str) -> None:
    """The Medicare secondary type says why another payer pays before Medicare: it belongs to
    a Medicare coverage that is not the primary one."""
    if payer.claim_filing not in MEDICARE_FILING:
        raise ValidationError(
            "medicare_secondary_type",
            f"only for a Medicare coverage ({payer.name} files claims as {payer.claim_filing}, "
            f"not {' or '.join(MEDICARE_FILING)})",
        )
    if priority == "primary":
        raise ValidationError(
            "medicare_secondary_type", "only for a secondary or tertiary coverage (Medicare is primary here)"
        )


def update_coverage(
    ctx: Ctx, coverage_id: int, *, group_number: str | None = None, medicare_secondary_type: str | None = None
) -> CoverageOut:
    """Change a coverage's group number or Medicare secondary type ("none" clears either);
    options left None are kept. Claims waiting for a file are written with the new values.
    Raises ValidationError, NotFoundError, PermissionDenied."""
    require(ctx.actor, "coverage.write")
    cov = ctx.session.get(Coverage, coverage_id)
    if cov is None or cov.org_id != ctx.org_id:
        raise NotFoundError(f"no coverage {coverage_id}")
    payer = _payer_of(ctx, cov)
    new: dict[str, object] = {}
    if group_number is not None:
        new["group_number"] = None if _clears(group_number) else v.optional_text("group", group_number, 50)
    if medicare_secondary_type is not None:
        msp = (
            None
            if _clears(medicare_secondary_type)
            else parse_medicare_secondary_type("medicare_secondary_type", medicare_secondary_type)
        )
        if msp is not None:
            _check_medicare_secondary(payer, cov.priority)
        new["medicare_secondary_type"] = msp
    changed = _apply(ctx, cov, new)
    if changed:
        audit.record(ctx, audit.Event("update", "coverage", cov.id, patient_id=cov.patient_id, fields=changed))
    return _out(ctx, cov, payer)


def _payer_of(ctx: Ctx, cov: Coverage) -> Payer:
    payer = ctx.session.get(Payer, cov.payer_id)
    assert payer is not None  # a foreign key
    return payer


def _apply(ctx: Ctx, row: Payer | Coverage, new: dict[str, object]) -> list[str]:
    """Set the new values that differ on a row; returns the fields changed. Raises
    ValidationError when nothing was given."""
    if not new:
        raise ValidationError("options", "nothing to change")
    changed = [f for f, value in new.items() if getattr(row, f) != value]
    for f in changed:
        setattr(row, f, new[f])
    ctx.session.flush()
    return changed


def _clears(value: str) -> bool:
    return value.strip().lower() == "none"
