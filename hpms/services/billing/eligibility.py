"""Insurance eligibility: 270 questions for the patients of a day (or one patient) and the 271
answers matched back to them. One `eligibility_check` row per coverage asked about; its trace
number (TRN02, the row id) comes back echoed in the answer. Money is integer cents."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col

from hpms.errors import Action, NotFoundError, ValidationError
from hpms.fileio import check_directory, read_input, write_atomically
from hpms.models import Appointment, Coverage, EligibilityCheck, Location, Organization, Patient, Payer
from hpms.models.billing_out import money
from hpms.models.eligibility_out import (
    EligibilityCheckOut,
    EligibilityImportOut,
    EligibilityRequestOut,
    EligibilityStatusOut,
)
from hpms.models.patients import PRIORITIES
from hpms.models.scheduling import BLOCKING_STATUSES
from hpms.services.billing.control import GS_COUNTER, ISA_COUNTER
from hpms.services.billing.profile import for_sending
from hpms.services.billing.rows import referenced
from hpms.services.lookups import find_patient, resolve_location
from hpms.services.platform import audit
from hpms.services.platform import localtime as lt
from hpms.services.platform.counters import reserve
from hpms.services.platform.permissions import allowed, require

if TYPE_CHECKING:
    from hpms.interop.x12 import x270
    from hpms.services.platform.context import Ctx

NOT_CHECKED = "not checked"
ANSWER_FIELDS = [
    "status",
    "plan_name",
    "plan_begin",
    "plan_end",
    "copay_cents",
    "coinsurance_percent",
    "deductible_cents",
    "deductible_remaining_cents",
    "reason",
    "responded_at",
]


def _today(ctx: Ctx) -> dt.date:
    return lt.local_now(ctx.now(), resolve_location(ctx, None).tz).date()


def _cents(value: Decimal | None) -> int | None:
    return None if value is None else int((value * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


# ---- request (270) -------------------------------------------------------------------------


def _coverages(ctx: Ctx, patient_ids: list[int], day: dt.date) -> dict[int, list]:
    """Active coverages of each patient on `day`, primary first."""
    order = sa.case({p: i for i, p in enumerate(PRIORITIES)}, value=Coverage.priority)
    rows = ctx.session.execute(
        sa.select(Coverage, Payer)
        .join(Payer, Payer.id == Coverage.payer_id)
        .where(
            Coverage.org_id == ctx.org_id,
            Coverage.patient_id.in_(patient_ids),
            Coverage.active.is_(True),
            sa.or_(col(Coverage.valid_from).is_(None), col(Coverage.valid_from) <= day),
            sa.or_(col(Coverage.valid_to).is_(None), col(Coverage.valid_to) >= day),
        )
        .order_by(Coverage.patient_id, order, Coverage.id)
    ).all()
    out: dict[int, list] = {}
    for cov, payer in rows:
        out.setdefault(cov.patient_id, []).append((cov, payer))
    return out


def _scheduled(ctx: Ctx, day: dt.date) -> list[tuple[int, int]]:
    """(patient id, location id) of the visits on `day` (each location's own day) that are not
    cancelled or no-shows, in order of the first visit."""
    locs = list(ctx.session.execute(sa.select(Location).where(Location.org_id == ctx.org_id)).scalars())
    spans = []
    for loc in locs:
        lo, hi = lt.day_bounds_utc(day, loc.tz)
        spans.append(
            sa.and_(Appointment.location_id == loc.id, Appointment.start_utc >= lo, Appointment.start_utc < hi)
        )
    if not spans:
        return []
    rows = ctx.session.execute(
        sa.select(Appointment.patient_id, Appointment.location_id)
        .where(Appointment.org_id == ctx.org_id, Appointment.status.in_(BLOCKING_STATUSES), sa.or_(*spans))
        .order_by(Appointment.start_utc, Appointment.id)
    ).all()
    seen: dict[int, int] = {}
    for pid, loc_id in rows:
        seen.setdefault(pid, loc_id)
    return list(seen.items())


def _receiver(ctx: Ctx, location_ids: list[int]) -> tuple[x270.Receiver, Location]:
    from hpms.interop.x12 import x270  # loaded where a 270 is written (see `request`)

    org = referenced(ctx.session, Organization, ctx.org_id)
    q = sa.select(Location).where(Location.org_id == ctx.org_id, col(Location.npi).is_not(None)).order_by(Location.id)
    locs = list(ctx.session.execute(q).scalars())
    loc = next((x for x in locs if x.id in location_ids), None) or (locs[0] if locs else None)
    if loc is None or not loc.npi:
        raise ValidationError(
            None,
            "no location has an NPI to ask with",
            action=Action("locations", "update", target="NAME", give=(("npi", "NPI"),), purpose="set one with"),
        )
    return x270.Receiver(name=org.name, npi=loc.npi), loc


def _reference(isa: int, day: dt.date) -> str:
    """BHT03 of a 270: its ISA control number and its date of service. The payer echoes it in
    the 271, which is how a refusal of the whole request finds the questions it refuses."""
    return f"{isa:09d}-{day:%Y%m%d}"


_REFERENCE = re.compile(r"\d{9}-(\d{8})")


def _reference_day(reference: str | None) -> dt.date | None:
    """The date of service of the 270 a 271 answers, when its BHT03 is one of ours."""
    m = _REFERENCE.fullmatch(reference or "")
    if m is None:
        return None
    try:
        return dt.datetime.strptime(m.group(1), "%Y%m%d").date()
    except ValueError:
        return None


def request(
    ctx: Ctx, *, date: str | dt.date | None = None, patient: str | int | None = None, out: str | Path | None
) -> EligibilityRequestOut:
    """Write one 270 file asking about the active coverages of the patients seen on `date` (visits
    not cancelled or no-show), or of one `patient` (today, or on `date`); record one pending
    check per coverage. A coverage already pending for that day is asked again with its own
    check (no second row). Each question's trace (TRN02) is its check id; BHT03 is the ISA
    control number and the date of service (`reference` in the result). Raises ValidationError
    (no billing profile ids, no NPI, bad date), NotFoundError (unknown patient, no visits,
    nothing to ask, missing output directory)."""
    # the X12 writers load only where a file is written: the day sheet reads eligibility statuses
    from hpms.interop.x12 import x270

    require(ctx.actor, "eligibility.write")
    if out is None or not str(out).strip():
        raise ValidationError("out", "is required")
    out = Path(out)
    if out.is_dir():
        raise ValidationError("out", f"{str(out)!r} is a directory; name the file to write")
    check_directory(out.parent if str(out.parent) else Path("."), field="out")
    today = _today(ctx)
    visits: list[tuple[int, int | None]]
    if patient is not None and str(patient).strip():
        day = lt.parse_day("date", date, today=today)
        pat = find_patient(ctx, patient, field="patient", active=True)
        assert pat.id is not None
        visits = [(pat.id, None)]
    else:
        if date is None or not str(date).strip():
            raise ValidationError("date", "give a day (the visits of that day) or a patient")
        day = lt.parse_day("date", date, today=today)
        visits = [(pid, loc) for pid, loc in _scheduled(ctx, day)]
        if not visits:
            raise NotFoundError(
                f"no appointments on {day} (cancelled and no-show visits do not count); no file written"
            )
    profile = for_sending(ctx)
    patient_ids = [pid for pid, _ in visits]
    covs = _coverages(ctx, patient_ids, day)
    pats = {p.id: p for p in ctx.session.execute(sa.select(Patient).where(col(Patient.id).in_(patient_ids))).scalars()}
    skipped = [
        {"patient_id": pid, "mrn": pats[pid].mrn, "reason": f"no active coverage on {day}"}
        for pid in patient_ids
        if pid not in covs
    ]
    if not covs:
        who = f"patient {pats[patient_ids[0]].mrn}" if patient else f"the {len(patient_ids)} patient(s) seen on {day}"
        raise NotFoundError(
            f"{who} have no active coverage on {day}; nothing to ask, no file written"
            if not patient
            else f"{who} has no active coverage on {day}; no file written",
            action=Action("coverage", "add", purpose="add one with"),
        )
    receiver, _loc = _receiver(ctx, [loc for _, loc in visits if loc])
    now = ctx.now()
    # A question still open for the same coverage and day is asked again under its own trace.
    wanted = [cov.id for pid in patient_ids for cov, _ in covs.get(pid, [])]
    open_checks = {
        c.coverage_id: c
        for c in ctx.session.execute(
            sa.select(EligibilityCheck)
            .where(
                EligibilityCheck.org_id == ctx.org_id,
                EligibilityCheck.status == "pending",
                EligibilityCheck.service_date == day,
                col(EligibilityCheck.coverage_id).in_(wanted),
            )
            .order_by(EligibilityCheck.id)
        ).scalars()
    }
    checks: list[tuple[EligibilityCheck, Coverage, Payer, Patient]] = []
    for pid in patient_ids:
        for cov, payer in covs.get(pid, []):
            check = open_checks.get(cov.id)
            if check is None:
                check = EligibilityCheck(
                    org_id=ctx.org_id,
                    patient_id=pid,
                    coverage_id=cov.id,
                    payer_id=payer.id,
                    service_date=day,
                    status="pending",
                    requested_at=now,
                    requested_by=ctx.actor.user_id,
                )
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
            sub = x270.Subscriber(
                member_id=member,
                last=p.last_name,
                first=p.first_name,
                dob=p.dob,
                sex=sex,
                group_number=cov.group_number,
            )
            dep = None
        else:
            sub = x270.Subscriber(
                member_id=member,
                last=cov.subscriber_last_name,
                first=cov.subscriber_first_name,
                dob=cov.subscriber_dob,
                group_number=cov.group_number,
            )
            dep = x270.Dependent(last=p.last_name, first=p.first_name, dob=p.dob, sex=sex)
        by_payer.setdefault(payer.id, (payer, []))[1].append(
            x270.Inquiry(trace=check.trace_number, service_date=day, subscriber=sub, dependent=dep)
        )
    isa = reserve(ctx.session, ISA_COUNTER, 1)
    gs = reserve(ctx.session, GS_COUNTER, 1)
    originator = ("1" + profile.tax_id) if profile.tax_id else ("9" + receiver.npi[:9])
    reference = _reference(isa, day)
    text = x270.write_270(
        isa_control=isa,
        gs_control=gs,
        sender_id=profile.submitter_id,
        receiver_id=profile.receiver_id,
        receiver=receiver,
        created=now,
        production=bool(profile.production),
        trace_originator=originator,
        reference=reference,
        payers=[
            x270.PayerInquiries(name=payer.name, payer_id=payer.payer_id, inquiries=tuple(inq))
            for payer, inq in by_payer.values()
        ],
    )
    audit.record(
        ctx,
        audit.Event(
            "export",
            "eligibility_check",
            None,
            patient_ids=sorted({c.patient_id for c, *_ in checks}),
            fields=["member_id", "name", "dob"],
            detail=f"270 {out.name}: {len(checks)} question(s) for {day}",
        ),
    )
    write_atomically(out, text.encode("ascii"), field="out")
    return EligibilityRequestOut(
        path=str(out),
        service_date=day,
        isa_control=isa,
        reference=reference,
        checks=len(checks),
        patients=len({c.patient_id for c, *_ in checks}),
        payers=len(by_payer),
        check_ids=[c.id for c, *_ in checks if c.id is not None],
        skipped=skipped,
    )


# ---- import (271) --------------------------------------------------------------------------


def _read_271(path: Path) -> list:
    from hpms.interop.x12.x271 import X12Error, parse_271  # loaded where a 271 is read (see `request`)

    data = read_input(path, field="file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # not UTF-8: names from older systems come as Latin-1 bytes
        text = data.decode("latin-1")
    try:
        return parse_271(text)
    except X12Error as exc:
        raise ValidationError("file", f"{path.name} is not a valid 271: {exc}; nothing imported") from None


def _values(answer, header: tuple[str, ...]) -> dict:
    """What an answer writes onto its check. A refusal of the whole request (`header`, the
    payer's or receiver's AAA) makes it an error whatever the member loop says."""
    status = answer.status
    reasons = list(header) + list(answer.reasons)
    if header:
        status = "error"
    elif status is None:
        status = "error"
        reasons.append("the answer states no coverage status (no EB01 1-8)")
    return dict(
        status=status,
        plan_name=(answer.plan_name or None) and answer.plan_name[:80],
        plan_begin=answer.plan_begin,
        plan_end=answer.plan_end,
        copay_cents=_cents(answer.copay),
        coinsurance_percent=None if answer.coinsurance_percent is None else str(answer.coinsurance_percent),
        deductible_cents=_cents(answer.deductible),
        deductible_remaining_cents=_cents(answer.deductible_remaining),
        reason="; ".join(reasons)[:300] or None,
    )


def _same(check: EligibilityCheck, values: dict) -> bool:
    return check.responded_at is not None and all(getattr(check, k) == v for k, v in values.items())


def _apply(check: EligibilityCheck, values: dict, now: dt.datetime) -> bool:
    """Write the answer onto the check; True when anything changed."""
    if _same(check, values):
        return False
    for k, v in values.items():
        setattr(check, k, v)
    check.responded_at = now
    return True


def _window(answer, day: dt.date | None) -> tuple[dt.date, dt.date] | None:
    """The dates of service an answer can be about: the day of our 270 (from BHT03) when the
    answer's own plan date (DTP*291, a day or a range) agrees with it, else the answer's date."""
    found = None
    for dates in [answer.dates] + [b.dates for b in answer.benefits]:
        if "291" in dates:
            lo, hi = dates["291"]
            found = (lo, hi or lo)
            break
    if day is not None and (found is None or found[0] <= day <= found[1]):
        return day, day
    return found


def _name(value: str | None) -> str:
    """A name as the 270 writes it (folded to ASCII, upper case), letters and digits only, so
    that "Müller" here and "MULLER" or "MÜLLER" in the answer are the same name."""
    from hpms.interop.x12.x837p import _t  # the 837P writer loads only where a 271 is matched

    return "".join(ch for ch in _t(value or "") if ch.isalnum())


@dataclass
class _Person:
    """The coverages an answer's person holds with the answering payer, or why there are none."""

    coverages: list[Coverage]
    problem: str | None = None


def _person(ctx: Ctx, answer, payer_ids: list[int]) -> _Person:
    """The person an answer is about, among the coverages of the answering payer with its member
    id (a dependent's own, or the subscriber's). When several patients share the id (a family
    under the subscriber's id), the first name must be one of theirs; the last name, the birth
    date and the loop (subscriber or dependent) then narrow it to one, or it is ambiguous."""
    members = [m for m in (answer.member_id, answer.subscriber_member_id) if m]
    if not members or not payer_ids:
        return _Person([])
    indexes = sorted({b for m in members for b in ctx.crypto.blind_indexes(m, "member_id")})
    covs = list(
        ctx.session.execute(
            sa.select(Coverage)
            .where(
                Coverage.org_id == ctx.org_id, Coverage.payer_id.in_(payer_ids), Coverage.member_id_bidx.in_(indexes)
            )
            .order_by(Coverage.id)
        ).scalars()
    )
    by_patient: dict[int, list[Coverage]] = {}
    for c in covs:
        by_patient.setdefault(c.patient_id, []).append(c)
    if not by_patient:
        return _Person([])
    pats = {
        p.id: p for p in ctx.session.execute(sa.select(Patient).where(col(Patient.id).in_(list(by_patient)))).scalars()
    }
    if len(by_patient) == 1:
        ((pid, only),) = by_patient.items()
        # a dependent loop under the subscriber's id is not the subscriber, unless it names them
        if (
            answer.level == "dependent"
            and answer.first
            and all(c.relationship == "self" for c in only)
            and _name(pats[pid].first_name) != _name(answer.first)
        ):
            return _Person([], "the member id is the subscriber's; the dependent it names has no coverage on file")
        return _Person(covs)
    left = list(by_patient)
    if answer.first:
        left = [i for i in left if _name(pats[i].first_name) == _name(answer.first)]

    def narrow(keep) -> None:
        nonlocal left
        if len(left) > 1:
            left = [i for i in left if keep(i)] or left

    narrow(lambda i: bool(answer.last) and _name(pats[i].last_name) == _name(answer.last))
    narrow(lambda i: answer.dob is not None and pats[i].dob == answer.dob)
    narrow(lambda i: any((c.relationship == "self") == (answer.level == "subscriber") for c in by_patient[i]))
    if len(left) == 1:
        return _Person(by_patient[left[0]])
    return _Person(
        [],
        f"{len(by_patient)} patients share this member id and the answer's name and birth date "
        "do not tell which one it is about",
    )


def _own_trace(ctx: Ctx, answer, payer_ids: list[int]) -> EligibilityCheck | None:
    """The check an echoed trace names: ours (an id whose check has that trace) and, when the
    271 names a payer on file, a question to that payer."""
    for trace in answer.echoed_traces:
        if trace.isdigit() and len(trace) < 18:
            found = ctx.session.get(EligibilityCheck, int(trace))
            if (
                found is not None
                and found.org_id == ctx.org_id
                and found.trace_number == trace
                and (not payer_ids or found.payer_id in payer_ids)
            ):
                return found
    return None


def _asked(
    ctx: Ctx, coverages: list[Coverage], window: tuple[dt.date, dt.date] | None, values: dict
) -> EligibilityCheck | None:
    """The question an answer without a trace of ours answers: the newest pending check of the
    person's coverages for the dates of service, else the check this same answer was already
    written onto (the same file imported again)."""
    c = EligibilityCheck
    q = sa.select(c).where(c.org_id == ctx.org_id, col(c.coverage_id).in_([x.id for x in coverages]))
    if window is not None:
        q = q.where(c.service_date >= window[0], c.service_date <= window[1])
    asked = list(ctx.session.execute(q.order_by(col(c.id).desc())).scalars())
    return next((x for x in asked if x.status == "pending"), None) or next((x for x in asked if _same(x, values)), None)


def _recorded(ctx: Ctx, cov: Coverage, when: dt.date, trace: str | None) -> EligibilityCheck | None:
    """A check an earlier import recorded for an answer to no question of ours (same coverage,
    date of service and trace)."""
    c = EligibilityCheck
    return (
        ctx.session.execute(
            sa.select(c)
            .where(
                c.org_id == ctx.org_id,
                c.coverage_id == cov.id,
                c.service_date == when,
                col(c.responded_at).is_not(None),
                col(c.trace_number).is_(None) if trace is None else c.trace_number == trace,
            )
            .order_by(col(c.id).desc())
            .limit(1)
        )
        .scalars()
        .first()
    )


def _refused_checks(ctx: Ctx, payer_ids: list[int], day: dt.date, reason: str) -> list[EligibilityCheck]:
    """The questions a refusal of a whole 270 closes: the payer's for that date of service, still
    pending (or already closed with this very reason: the same file again)."""
    c = EligibilityCheck
    return list(
        ctx.session.execute(
            sa.select(c)
            .where(
                c.org_id == ctx.org_id,
                col(c.payer_id).in_(payer_ids),
                c.service_date == day,
                sa.or_(c.status == "pending", sa.and_(c.status == "error", c.reason == reason)),
            )
            .order_by(c.id)
        ).scalars()
    )


def import_271(ctx: Ctx, path: str | Path) -> EligibilityImportOut:
    """Import a 271 file (UTF-8, with or without a byte order mark, or Latin-1). Each payer of
    the file (2000A loop) answers only for itself: its answers go to its own checks.

    An answer (2000C/2000D loop) goes to the check its echoed trace names, when that check is
    ours and a question to the answering payer (a trace that is not ours is ignored). Else to
    the pending check of the person the answer is about (the payer's coverage with its member
    id; the name and birth date decide within a family sharing the id, see `_person`) for the
    date of service of the answered 270 (its BHT03) or the answer's DTP*291; the newest if
    several. Failing that, a check this same answer was already written onto counts as
    unchanged; an answer to no question whose coverage is known is recorded as a new check;
    the others are reported unmatched.

    A refusal of the whole request (AAA at the payer, 2100A, or receiver, 2100B, level) applies
    to that payer's answers in the file; when the payer sent none, it closes the payer's
    pending questions for the date of service of the 270 it answers, read from BHT03 (hpms
    writes ISA control number and date there). A 271 with another BHT03 cannot tell which of
    the payer's questions it refuses: the refusal is reported and nothing is closed.

    Importing the same file again changes nothing. Raises ValidationError (no such file, or not
    a 271: nothing imported)."""
    require(ctx.actor, "eligibility.write")
    path = Path(path)
    responses = _read_271(path)
    now = ctx.now()
    session = ctx.session
    out = dict(answers=0, updated=0, unchanged=0, recorded=0)
    unmatched: list[dict] = []
    touched: dict[int, EligibilityCheck] = {}
    warnings: list[str] = []

    def count(check: EligibilityCheck, changed: bool) -> None:
        out["updated" if changed else "unchanged"] += 1
        assert check.id is not None  # flushed
        touched[check.id] = check

    for r in responses:
        warnings.extend(r.warnings)
        payer_ids = (
            [
                p
                for p in session.execute(
                    sa.select(Payer.id).where(Payer.org_id == ctx.org_id, Payer.payer_id == r.payer_id)
                ).scalars()
            ]
            if r.payer_id
            else []
        )
        header = r.reasons
        day = _reference_day(r.reference)
        if not r.answers and header:
            reason = "; ".join(header)[:300]
            refused = _refused_checks(ctx, payer_ids, day, reason) if payer_ids and day else []
            if not refused:
                unmatched.append(
                    {
                        "payer": r.payer_id or r.payer_name,
                        "member": None,
                        "name": None,
                        "trace": None,
                        "reason": "; ".join(header),
                    }
                )
            for closed in refused:
                out["answers"] += 1
                changed = (closed.status, closed.reason) != ("error", reason) or closed.responded_at is None
                if changed:
                    closed.status, closed.reason, closed.responded_at = "error", reason, now
                count(closed, changed)
            continue
        for a in r.answers:
            out["answers"] += 1
            values = _values(a, header)
            check = _own_trace(ctx, a, payer_ids)
            if check is not None:
                count(check, _apply(check, values, now))
                continue
            person = _person(ctx, a, payer_ids)
            member = a.member_id or a.subscriber_member_id
            if not person.coverages:
                unmatched.append(
                    {
                        "payer": r.payer_id or r.payer_name,
                        "member": f"…{member[-4:]}" if member else None,
                        "name": ", ".join(x for x in (a.last, a.first) if x) or None,
                        "trace": (a.echoed_traces or (None,))[0],
                        "reason": person.problem or "no pending check and no coverage with this member id",
                    }
                )
                continue
            window = _window(a, day)
            check = _asked(ctx, person.coverages, window, values)
            if check is not None:
                count(check, _apply(check, values, now))
                continue
            # an answer nobody here asked for (or asked through another system): keep it
            cov = person.coverages[0]
            when = window[0] if window is not None and window[0] == window[1] else _today(ctx)
            trace = (a.echoed_traces or (None,))[0]
            existing = _recorded(ctx, cov, when, trace)
            if existing is not None:
                count(existing, _apply(existing, values, now))
                continue
            check = EligibilityCheck(
                org_id=ctx.org_id,
                patient_id=cov.patient_id,
                coverage_id=cov.id,
                payer_id=cov.payer_id,
                trace_number=trace,
                service_date=when,
                requested_at=now,
                requested_by=ctx.actor.user_id,
            )
            _apply(check, values, now)
            session.add(check)
            session.flush()
            assert check.id is not None  # flushed
            out["recorded"] += 1
            touched[check.id] = check
    session.flush()
    statuses: dict[str, int] = {}
    for c in touched.values():
        statuses[c.status] = statuses.get(c.status, 0) + 1
    if touched:
        audit.record(
            ctx,
            audit.Event(
                "import",
                "eligibility_check",
                None,
                patient_ids=sorted({c.patient_id for c in touched.values()}),
                fields=ANSWER_FIELDS,
                detail=f"271 {path.name}: {out['updated']} updated, {out['recorded']} recorded",
            ),
        )
    return EligibilityImportOut(
        file=str(path), **out, unmatched=unmatched, statuses=statuses, check_ids=sorted(touched), warnings=warnings
    )


# ---- reading -------------------------------------------------------------------------------


def _text(status: str, reason: str | None) -> str:
    if status == "error":
        first = (reason or "").split("; ")[0]
        return f"error: {first.split(' [')[0].split(' (')[0]}" if first else "error"
    return status


def can_read(ctx: Ctx) -> bool:
    return allowed(ctx.actor.roles, "eligibility.read")


def statuses(ctx: Ctx, patient_ids: Iterable[int], day: dt.date | None = None) -> dict[int, EligibilityStatusOut]:
    """The latest check of each patient (for service dates up to `day` when given), in one
    query; "not checked" for the others. Not audited: for callers that audit the read of the
    same patients themselves (a day sheet, the scheduler's day view)."""
    require(ctx.actor, "eligibility.read")
    ids = sorted({int(i) for i in patient_ids})
    if not ids:
        return {}
    c = EligibilityCheck
    rank = sa.func.row_number().over(
        partition_by=c.patient_id, order_by=(col(c.service_date).desc(), col(c.requested_at).desc(), col(c.id).desc())
    )
    inner = sa.select(
        c.id, c.patient_id, c.status, c.reason, c.service_date, c.plan_name, c.copay_cents, rank.label("rank")
    ).where(c.org_id == ctx.org_id, c.patient_id.in_(ids))
    if day is not None:
        inner = inner.where(c.service_date <= day)
    sub = inner.subquery()
    found = {
        r.patient_id: EligibilityStatusOut(
            patient_id=r.patient_id,
            status=r.status,
            text=_text(r.status, r.reason),
            check_id=r.id,
            service_date=r.service_date,
            plan_name=r.plan_name,
            copay=money(r.copay_cents),
        )
        for r in ctx.session.execute(sa.select(sub).where(sub.c.rank == 1))
    }
    return {i: found.get(i) or EligibilityStatusOut(patient_id=i, status=NOT_CHECKED, text=NOT_CHECKED) for i in ids}


def latest(ctx: Ctx, patient_ids: Iterable[int], day: str | dt.date | None = None) -> dict[int, EligibilityStatusOut]:
    """The latest eligibility status of each patient ({patient_id: summary}; "not checked" when
    never asked), one query for all. `day`: only checks for service dates up to that day.
    Audited as one read. Raises PermissionDenied."""
    require(ctx.actor, "eligibility.read")
    when = lt.parse_day("day", day, today=_today(ctx)) if day is not None else None
    out = statuses(ctx, patient_ids, when)
    seen = [i for i, s in out.items() if s.check_id is not None]
    if seen:
        audit.record(
            ctx,
            audit.Event(
                "read",
                "eligibility_check",
                None,
                patient_ids=seen,
                fields=["status"],
                detail=f"latest status of {len(out)} patient(s)",
            ),
        )
    return out


def for_appointments(ctx: Ctx, rows) -> dict[int, str] | None:
    """{patient_id: status text} for the patients of a day sheet (AppointmentOut rows): the
    latest check for a date of service up to the last day listed. One query, one audited read.
    None when the actor may not read eligibility (the day sheet then goes without it)."""
    if not allowed(ctx.actor.roles, "eligibility.read"):
        return None
    if not rows:
        return {}
    last_day = max(r.start.date() for r in rows)
    return {pid: s.text for pid, s in latest(ctx, [r.patient_id for r in rows], day=last_day).items()}


def list_checks(
    ctx: Ctx, patient: str | int | None = None, date: str | dt.date | None = None
) -> list[EligibilityCheckOut]:
    """Checks, newest first: of one patient and/or for one date of service (at most 1000).
    Audited as one read. Raises NotFoundError (unknown patient), ValidationError (bad date)."""
    require(ctx.actor, "eligibility.read")
    c = EligibilityCheck
    q = (
        sa.select(c, Patient.first_name, Patient.last_name, Patient.mrn, Payer.name)
        .join(Patient, Patient.id == c.patient_id)
        .outerjoin(Payer, Payer.id == c.payer_id)
        .where(c.org_id == ctx.org_id)
    )
    if patient is not None and str(patient).strip():
        q = q.where(c.patient_id == find_patient(ctx, patient, field="patient", active=True).id)
    if date is not None and str(date).strip():
        q = q.where(c.service_date == lt.parse_day("date", date, today=_today(ctx)))
    rows = ctx.session.execute(q.order_by(col(c.requested_at).desc(), col(c.id).desc()).limit(1000)).all()
    out = [
        EligibilityCheckOut(
            id=k.id,
            patient_id=k.patient_id,
            patient=f"{first} {last}",
            mrn=mrn,
            coverage_id=k.coverage_id,
            payer_id=k.payer_id,
            payer=payer,
            service_date=k.service_date,
            status=k.status,
            plan_name=k.plan_name,
            plan_begin=k.plan_begin,
            plan_end=k.plan_end,
            copay=money(k.copay_cents),
            coinsurance_percent=k.coinsurance_percent,
            deductible=money(k.deductible_cents),
            deductible_remaining=money(k.deductible_remaining_cents),
            reason=k.reason,
            trace_number=k.trace_number,
            requested_at=k.requested_at,
            responded_at=k.responded_at,
        )
        for k, first, last, mrn, payer in rows
    ]
    audit.record_list(ctx, "eligibility_check", (o.patient_id for o in out), len(out))
    return out
