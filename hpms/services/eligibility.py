"""Insurance eligibility: 270 questions for the patients of a day (or one patient) and the 271
answers matched back to them. One `eligibility_check` row per coverage asked about; its trace
number (TRN02, the row id) comes back echoed in the answer. Money is integer cents."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import sqlalchemy as sa

from hpms.errors import NotFoundError, ValidationError
from hpms.models import Appointment, BillingProfile, Coverage, EligibilityCheck, Location, Organization, Patient, Payer
from hpms.models.billing_out import money
from hpms.models.eligibility_out import (
    EligibilityCheckOut, EligibilityImportOut, EligibilityRequestOut, EligibilityStatusOut,
)
from hpms.models.patients import PRIORITIES
from hpms.models.scheduling import BLOCKING_STATUSES
from hpms.services import audit, localtime as lt
from hpms.services.permissions import allowed, require

NOT_CHECKED = "not checked"
ANSWER_FIELDS = ["status", "plan_name", "plan_begin", "plan_end", "copay_cents", "coinsurance_percent",
                 "deductible_cents", "deductible_remaining_cents", "reason", "responded_at"]


def _today(ctx) -> dt.date:
    from hpms.services.schedule_view import resolve_location

    return lt.local_now(ctx.now(), resolve_location(ctx, None).tz).date()


def _cents(value: Decimal | None) -> int | None:
    return None if value is None else int((value * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


# ---- request (270) -------------------------------------------------------------------------

def _coverages(ctx, patient_ids: list[int], day: dt.date) -> dict[int, list]:
    """Active coverages of each patient on `day`, primary first."""
    order = sa.case({p: i for i, p in enumerate(PRIORITIES)}, value=Coverage.priority)
    rows = ctx.session.execute(
        sa.select(Coverage, Payer).join(Payer, Payer.id == Coverage.payer_id)
        .where(Coverage.org_id == ctx.org_id, Coverage.patient_id.in_(patient_ids), Coverage.active.is_(True),
               sa.or_(Coverage.valid_from.is_(None), Coverage.valid_from <= day),
               sa.or_(Coverage.valid_to.is_(None), Coverage.valid_to >= day))
        .order_by(Coverage.patient_id, order, Coverage.id)).all()
    out: dict[int, list] = {}
    for cov, payer in rows:
        out.setdefault(cov.patient_id, []).append((cov, payer))
    return out


def _scheduled(ctx, day: dt.date) -> list[tuple[int, int]]:
    """(patient id, location id) of the visits on `day` (each location's own day) that are not
    cancelled or no-shows, in order of the first visit."""
    locs = list(ctx.session.execute(sa.select(Location).where(Location.org_id == ctx.org_id)).scalars())
    spans = []
    for loc in locs:
        lo, hi = lt.day_bounds_utc(day, loc.tz)
        spans.append(sa.and_(Appointment.location_id == loc.id, Appointment.start_utc >= lo, Appointment.start_utc < hi))
    if not spans:
        return []
    rows = ctx.session.execute(
        sa.select(Appointment.patient_id, Appointment.location_id)
        .where(Appointment.org_id == ctx.org_id, Appointment.status.in_(BLOCKING_STATUSES), sa.or_(*spans))
        .order_by(Appointment.start_utc, Appointment.id)).all()
    seen: dict[int, int] = {}
    for pid, loc_id in rows:
        seen.setdefault(pid, loc_id)
    return list(seen.items())


def _receiver(ctx, location_ids: list[int]):
    from hpms.interop.x12 import x270

    org = ctx.session.get(Organization, ctx.org_id)
    q = sa.select(Location).where(Location.org_id == ctx.org_id, Location.npi.is_not(None)).order_by(Location.id)
    locs = list(ctx.session.execute(q).scalars())
    loc = next((x for x in locs if x.id in location_ids), None) or (locs[0] if locs else None)
    if loc is None or not loc.npi:
        raise ValidationError("npi", "no location has an NPI to ask with; set one with "
                                     "`hpms locations update NAME --npi NPI`")
    return x270.Receiver(name=org.name, npi=loc.npi), loc


def request(ctx, *, date=None, patient=None, out) -> EligibilityRequestOut:
    """Write one 270 file asking about the active coverages of the patients seen on `date` (visits
    not cancelled or no-show), or of one `patient` (today, or on `date`); record one pending
    check per coverage. A coverage already pending for that day is asked again with its own
    check (no second row). Raises ValidationError (no billing profile ids, no NPI, bad date),
    NotFoundError (unknown patient, no visits, nothing to ask, missing output directory)."""
    from hpms.fileio import write_atomically
    from hpms.interop.x12 import x270
    from hpms.services.appointments import find_patient
    from hpms.services.billing import GS_COUNTER, ISA_COUNTER
    from hpms.services.counters import reserve

    require(ctx.actor, "eligibility.write")
    if out is None or not str(out).strip():
        raise ValidationError("--out", "is required")
    out = Path(out)
    if out.is_dir():
        raise ValidationError("--out", f"{str(out)!r} is a directory; name the file to write")
    if not out.parent.is_dir():
        raise NotFoundError(f"--out: directory {str(out.parent)!r} does not exist")
    today = _today(ctx)
    if patient is not None and str(patient).strip():
        day = lt.parse_day("--date", date, today=today)
        pat = find_patient(ctx, patient)
        visits = [(pat.id, None)]
    else:
        if date is None or not str(date).strip():
            raise ValidationError("--date", "give --date DAY (the visits of that day) or --patient ID")
        day = lt.parse_day("--date", date, today=today)
        visits = _scheduled(ctx, day)
        if not visits:
            raise NotFoundError(f"no appointments on {day} (cancelled and no-show visits do not count); "
                                "no file written")
    profile = ctx.session.get(BillingProfile, ctx.org_id)
    if profile is None or not profile.submitter_id or not profile.receiver_id:
        raise ValidationError("billing profile", "the submitter and receiver (clearinghouse) ids are not set; "
                                                 "set them with `hpms billing setup --submitter-id ID --receiver-id ID`")
    patient_ids = [pid for pid, _ in visits]
    covs = _coverages(ctx, patient_ids, day)
    pats = {p.id: p for p in ctx.session.execute(sa.select(Patient).where(Patient.id.in_(patient_ids))).scalars()}
    skipped = [{"patient_id": pid, "mrn": pats[pid].mrn, "reason": f"no active coverage on {day}"}
               for pid in patient_ids if pid not in covs]
    if not covs:
        who = f"patient {pats[patient_ids[0]].mrn}" if patient else f"the {len(patient_ids)} patient(s) seen on {day}"
        raise NotFoundError(f"{who} have no active coverage on {day}; nothing to ask, no file written"
                            if not patient else f"{who} has no active coverage on {day}; no file written",
                            hint="add one with `hpms coverage add`")
    receiver, _loc = _receiver(ctx, [loc for _, loc in visits if loc])
    now = ctx.now()
    # A question still open for the same coverage and day is asked again under its own trace.
    wanted = [cov.id for pid in patient_ids for cov, _ in covs.get(pid, [])]
    open_checks = {c.coverage_id: c for c in ctx.session.execute(
        sa.select(EligibilityCheck).where(EligibilityCheck.org_id == ctx.org_id, EligibilityCheck.status == "pending",
                                          EligibilityCheck.service_date == day,
                                          EligibilityCheck.coverage_id.in_(wanted))
        .order_by(EligibilityCheck.id)).scalars()}
    checks: list[tuple[EligibilityCheck, Coverage, Payer, Patient]] = []
    for pid in patient_ids:
        for cov, payer in covs.get(pid, []):
            check = open_checks.get(cov.id)
            if check is None:
                check = EligibilityCheck(org_id=ctx.org_id, patient_id=pid, coverage_id=cov.id, payer_id=payer.id,
                                         service_date=day, status="pending", requested_at=now,
                                         requested_by=ctx.actor.user_id)
                ctx.session.add(check)
            checks.append((check, cov, payer, pats[pid]))
    ctx.session.flush()
    for check, *_ in checks:
        if check.trace_number is None:
            check.trace_number = str(check.id)
    by_payer: dict[int, tuple[Payer, list]] = {}
    crypto = ctx.crypto
    for check, cov, payer, p in checks:
        sex = {"female": "F", "male": "M"}.get(p.sex_at_birth or "")
        member = crypto.decrypt(cov.member_id_enc, "member_id")
        if cov.relationship == "self":
            sub = x270.Subscriber(member_id=member, last=p.last_name, first=p.first_name, dob=p.dob, sex=sex,
                                  group_number=cov.group_number)
            dep = None
        else:
            sub = x270.Subscriber(member_id=member, last=cov.subscriber_last_name, first=cov.subscriber_first_name,
                                  dob=cov.subscriber_dob, group_number=cov.group_number)
            dep = x270.Dependent(last=p.last_name, first=p.first_name, dob=p.dob, sex=sex)
        by_payer.setdefault(payer.id, (payer, []))[1].append(
            x270.Inquiry(trace=check.trace_number, service_date=day, subscriber=sub, dependent=dep))
    isa = reserve(ctx.session, ISA_COUNTER, 1)
    gs = reserve(ctx.session, GS_COUNTER, 1)
    originator = ("1" + profile.tax_id) if profile.tax_id else ("9" + receiver.npi[:9])
    text = x270.write_270(
        isa_control=isa, gs_control=gs, sender_id=profile.submitter_id, receiver_id=profile.receiver_id,
        receiver=receiver, created=now, production=bool(profile.production), trace_originator=originator,
        payers=[x270.PayerInquiries(name=payer.name, payer_id=payer.payer_id, inquiries=tuple(inq))
                for payer, inq in by_payer.values()])
    audit.record(ctx, audit.Event("export", "eligibility_check", None,
                                  patient_ids=sorted({c.patient_id for c, *_ in checks}),
                                  fields=["member_id", "name", "dob"],
                                  detail=f"270 {out.name}: {len(checks)} question(s) for {day}"))
    write_atomically(out, text.encode("ascii"), field="--out")
    return EligibilityRequestOut(path=str(out), service_date=day, isa_control=isa, checks=len(checks),
                                 patients=len({c.patient_id for c, *_ in checks}), payers=len(by_payer),
                                 check_ids=[c.id for c, *_ in checks], skipped=skipped)


# ---- import (271) --------------------------------------------------------------------------

def _read_271(path: Path):
    from hpms.interop.x12.x271 import X12Error, parse_271

    if not path.is_file():
        raise NotFoundError(f"FILE: {str(path)!r} does not exist")
    try:
        text = path.read_bytes().decode("ascii")
    except UnicodeDecodeError:
        raise ValidationError("FILE", f"{path.name} is not an X12 file (it is not ASCII text); nothing imported") from None
    try:
        return parse_271(text)
    except X12Error as exc:
        raise ValidationError("FILE", f"{path.name} is not a valid 271: {exc}; nothing imported") from None


def _apply(check: EligibilityCheck, answer, extra_reasons: tuple[str, ...], now: dt.datetime) -> bool:
    """Write the answer onto the check; True when anything changed."""
    status = answer.status
    reasons = list(extra_reasons) + list(answer.reasons)
    if status is None:
        status = "error"
        reasons.append("the answer states no coverage status (no EB01 1-8)")
    if extra_reasons:  # the payer refused the whole request
        status = "error"
    values = dict(status=status, plan_name=(answer.plan_name or None) and answer.plan_name[:80],
                  plan_begin=answer.plan_begin, plan_end=answer.plan_end, copay_cents=_cents(answer.copay),
                  coinsurance_percent=None if answer.coinsurance_percent is None else str(answer.coinsurance_percent),
                  deductible_cents=_cents(answer.deductible),
                  deductible_remaining_cents=_cents(answer.deductible_remaining),
                  reason="; ".join(reasons)[:300] or None)
    changed = check.responded_at is None or any(getattr(check, k) != v for k, v in values.items())
    if changed:
        for k, v in values.items():
            setattr(check, k, v)
        check.responded_at = now
    return changed


def _answer_date(answer) -> dt.date | None:
    if "291" in answer.dates:
        return answer.dates["291"][0]
    for b in answer.benefits:
        if "291" in b.dates:
            return b.dates["291"][0]
    return None


def _by_member(ctx, answer, payer_ids: list[int]) -> list[Coverage]:
    member = answer.member_id or answer.subscriber_member_id
    if not member:
        return []
    q = sa.select(Coverage).where(Coverage.org_id == ctx.org_id,
                                  Coverage.member_id_bidx.in_(ctx.crypto.blind_indexes(member, "member_id")))
    if payer_ids:
        q = q.where(Coverage.payer_id.in_(payer_ids))
    covs = list(ctx.session.execute(q.order_by(Coverage.id)).scalars())
    if len(covs) > 1 and answer.first:
        # a family shares the subscriber's id: the name of the person asked about decides
        names = {p.id: (p.first_name or "").upper() for p in ctx.session.execute(
            sa.select(Patient).where(Patient.id.in_([c.patient_id for c in covs]))).scalars()}
        same = [c for c in covs if names.get(c.patient_id) == answer.first.upper()]
        covs = same or covs
    return covs


def import_271(ctx, path) -> EligibilityImportOut:
    """Import a 271 file: each answer goes to its pending check, found by the echoed trace
    number, else by payer + member id (+ the date of service). An answer to no pending check
    whose member id is a known coverage is recorded as a new check; others are reported. A
    rejection of the whole request (AAA at the payer or receiver level) closes the payer's
    pending checks with the reason. Importing the same file again changes nothing. Raises
    ValidationError (not a 271: nothing imported), NotFoundError (no such file)."""
    require(ctx.actor, "eligibility.write")
    path = Path(path)
    responses = _read_271(path)
    now = ctx.now()
    session = ctx.session
    out = dict(answers=0, updated=0, unchanged=0, recorded=0)
    unmatched: list[dict] = []
    touched: dict[int, EligibilityCheck] = {}
    warnings: list[str] = []
    for r in responses:
        warnings.extend(r.warnings)
        payer_ids = [p for p in session.execute(sa.select(Payer.id).where(
            Payer.org_id == ctx.org_id, Payer.payer_id == r.payer_id)).scalars()] if r.payer_id else []
        header = r.reasons
        answers = r.answers
        if not answers and header:
            # the whole request was refused: every open question to this payer gets the reason
            if not payer_ids:
                unmatched.append({"payer": r.payer_id or r.payer_name, "member": None, "name": None, "trace": None,
                                  "reason": "; ".join(header)})
                continue
            for check in session.execute(sa.select(EligibilityCheck).where(
                    EligibilityCheck.org_id == ctx.org_id, EligibilityCheck.payer_id.in_(payer_ids),
                    sa.or_(EligibilityCheck.status == "pending",
                           sa.and_(EligibilityCheck.status == "error", EligibilityCheck.reason == "; ".join(header)[:300])),
                    EligibilityCheck.requested_at <= now)).scalars():
                out["answers"] += 1
                changed = (check.status, check.reason) != ("error", "; ".join(header)[:300])
                if changed:
                    check.status, check.reason, check.responded_at = "error", "; ".join(header)[:300], now
                out["updated" if changed else "unchanged"] += 1
                touched[check.id] = check
            continue
        for a in answers:
            out["answers"] += 1
            check = None
            for trace in a.echoed_traces:
                if trace.isdigit() and len(trace) < 18:
                    found = session.get(EligibilityCheck, int(trace))
                    if found is not None and found.org_id == ctx.org_id and found.trace_number == trace:
                        check = found
                        break
            covs: list[Coverage] = []
            if check is None:
                covs = _by_member(ctx, a, payer_ids)
                if covs:
                    when = _answer_date(a)
                    q = (sa.select(EligibilityCheck).where(
                        EligibilityCheck.org_id == ctx.org_id, EligibilityCheck.status == "pending",
                        EligibilityCheck.coverage_id.in_([c.id for c in covs])))
                    if when:
                        q = q.where(EligibilityCheck.service_date == when)
                    check = session.execute(q.order_by(EligibilityCheck.id.desc()).limit(1)).scalars().first()
            if check is not None:
                out["updated" if _apply(check, a, header, now) else "unchanged"] += 1
                touched[check.id] = check
                continue
            if not covs:
                member = a.member_id or a.subscriber_member_id
                unmatched.append({"payer": r.payer_id or r.payer_name,
                                  "member": f"…{member[-4:]}" if member else None,
                                  "name": ", ".join(x for x in (a.last, a.first) if x) or None,
                                  "trace": (a.echoed_traces or (None,))[0],
                                  "reason": "no pending check and no coverage with this member id"})
                continue
            # an answer nobody here asked for (or asked through another system): keep it
            cov = covs[0]
            when = _answer_date(a) or _today(ctx)
            trace = (a.echoed_traces or (None,))[0]
            existing = session.execute(sa.select(EligibilityCheck).where(
                EligibilityCheck.org_id == ctx.org_id, EligibilityCheck.coverage_id == cov.id,
                EligibilityCheck.service_date == when, EligibilityCheck.responded_at.is_not(None),
                EligibilityCheck.trace_number.is_(None) if trace is None else EligibilityCheck.trace_number == trace)
                .order_by(EligibilityCheck.id.desc()).limit(1)).scalars().first()
            if existing is not None:
                out["updated" if _apply(existing, a, header, now) else "unchanged"] += 1
                touched[existing.id] = existing
                continue
            check = EligibilityCheck(org_id=ctx.org_id, patient_id=cov.patient_id, coverage_id=cov.id,
                                     payer_id=cov.payer_id, trace_number=trace, service_date=when, requested_at=now,
                                     requested_by=ctx.actor.user_id)
            _apply(check, a, header, now)
            session.add(check)
            session.flush()
            out["recorded"] += 1
            touched[check.id] = check
    session.flush()
    statuses: dict[str, int] = {}
    for c in touched.values():
        statuses[c.status] = statuses.get(c.status, 0) + 1
    if touched:
        audit.record(ctx, audit.Event("import", "eligibility_check", None,
                                      patient_ids=sorted({c.patient_id for c in touched.values()}),
                                      fields=ANSWER_FIELDS,
                                      detail=f"271 {path.name}: {out['updated']} updated, {out['recorded']} recorded"))
    return EligibilityImportOut(file=str(path), **out, unmatched=unmatched, statuses=statuses,
                                check_ids=sorted(touched), warnings=warnings)


# ---- reading -------------------------------------------------------------------------------

def _text(status: str, reason: str | None) -> str:
    if status == "error":
        first = (reason or "").split("; ")[0]
        return f"error: {first.split(' [')[0].split(' (')[0]}" if first else "error"
    return status


def can_read(ctx) -> bool:
    return allowed(ctx.actor.roles, "eligibility.read")


def statuses(ctx, patient_ids, day: dt.date | None = None) -> dict[int, EligibilityStatusOut]:
    """The latest check of each patient (for service dates up to `day` when given), in one
    query; "not checked" for the others. Not audited: for callers that audit the read of the
    same patients themselves (a day sheet, the scheduler's day view)."""
    require(ctx.actor, "eligibility.read")
    ids = sorted({int(i) for i in patient_ids})
    if not ids:
        return {}
    c = EligibilityCheck
    rank = sa.func.row_number().over(partition_by=c.patient_id,
                                     order_by=(c.service_date.desc(), c.requested_at.desc(), c.id.desc()))
    inner = sa.select(c.id, c.patient_id, c.status, c.reason, c.service_date, c.plan_name, c.copay_cents,
                      rank.label("rank")).where(c.org_id == ctx.org_id, c.patient_id.in_(ids))
    if day is not None:
        inner = inner.where(c.service_date <= day)
    sub = inner.subquery()
    found = {r.patient_id: EligibilityStatusOut(
        patient_id=r.patient_id, status=r.status, text=_text(r.status, r.reason), check_id=r.id,
        service_date=r.service_date, plan_name=r.plan_name, copay=money(r.copay_cents))
        for r in ctx.session.execute(sa.select(sub).where(sub.c.rank == 1))}
    return {i: found.get(i) or EligibilityStatusOut(patient_id=i, status=NOT_CHECKED, text=NOT_CHECKED) for i in ids}


def latest(ctx, patient_ids, day=None) -> dict[int, EligibilityStatusOut]:
    """The latest eligibility status of each patient ({patient_id: summary}; "not checked" when
    never asked), one query for all. `day`: only checks for service dates up to that day.
    Audited as one read. Raises PermissionDenied."""
    require(ctx.actor, "eligibility.read")
    when = lt.parse_day("--date", day, today=_today(ctx)) if day is not None else None
    out = statuses(ctx, patient_ids, when)
    seen = [i for i, s in out.items() if s.check_id is not None]
    if seen:
        audit.record(ctx, audit.Event("read", "eligibility_check", None, patient_ids=seen, fields=["status"],
                                      detail=f"latest status of {len(out)} patient(s)"))
    return out


def for_appointments(ctx, rows) -> dict[int, str] | None:
    """{patient_id: status text} for the patients of a day sheet (AppointmentOut rows): the
    latest check for a date of service up to the last day listed. One query, one audited read.
    None when the actor may not read eligibility (the day sheet then goes without it)."""
    from hpms.services.permissions import allowed

    if not allowed(ctx.actor.roles, "eligibility.read"):
        return None
    if not rows:
        return {}
    last_day = max(r.start.date() for r in rows)
    return {pid: s.text for pid, s in latest(ctx, [r.patient_id for r in rows], day=last_day).items()}


def list_checks(ctx, patient=None, date=None) -> list[EligibilityCheckOut]:
    """Checks, newest first: of one patient and/or for one date of service (at most 1000).
    Audited as one read. Raises NotFoundError (unknown patient), ValidationError (bad date)."""
    from hpms.services.appointments import find_patient

    require(ctx.actor, "eligibility.read")
    c = EligibilityCheck
    q = (sa.select(c, Patient.first_name, Patient.last_name, Patient.mrn, Payer.name)
         .join(Patient, Patient.id == c.patient_id).outerjoin(Payer, Payer.id == c.payer_id)
         .where(c.org_id == ctx.org_id))
    if patient is not None and str(patient).strip():
        q = q.where(c.patient_id == find_patient(ctx, patient).id)
    if date is not None and str(date).strip():
        q = q.where(c.service_date == lt.parse_day("--date", date, today=_today(ctx)))
    rows = ctx.session.execute(q.order_by(c.requested_at.desc(), c.id.desc()).limit(1000)).all()
    out = [EligibilityCheckOut(
        id=k.id, patient_id=k.patient_id, patient=f"{first} {last}", mrn=mrn, coverage_id=k.coverage_id,
        payer_id=k.payer_id, payer=payer, service_date=k.service_date, status=k.status, plan_name=k.plan_name,
        plan_begin=k.plan_begin, plan_end=k.plan_end, copay=money(k.copay_cents),
        coinsurance_percent=k.coinsurance_percent, deductible=money(k.deductible_cents),
        deductible_remaining=money(k.deductible_remaining_cents), reason=k.reason, trace_number=k.trace_number,
        requested_at=k.requested_at, responded_at=k.responded_at) for k, first, last, mrn, payer in rows]
    if out:
        audit.record(ctx, audit.Event("read", "eligibility_check", None,
                                      patient_ids=sorted({o.patient_id for o in out}),
                                      detail=f"list of {len(out)}"))
    return out
