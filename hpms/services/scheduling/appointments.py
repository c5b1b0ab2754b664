"""Booking, moving and cancelling visits: one visit or a recurring series (an RRULE expanded in
the location's wall time) checked against working hours, time off and the overlap guards; a
move of a visit (or of the rest of its series) in place; a cancellation, late inside the
practice's notice window. The time a cancelled or moved future visit gives back goes to the
waitlist.

The visit lifecycle, the day sheet and calendar feed, and the slot search have modules of their
own (lifecycle, listing, slots); their functions are named here too, where the faces call them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from dateutil.rrule import rrulestr  # type: ignore[import-untyped]  # python-dateutil ships no type information
from sqlmodel import SQLModel, col

from hpms.db import Prepared
from hpms.errors import Action, ConflictError, ValidationError
from hpms.models import (
    Appointment,
    AppointmentOut,
    AppointmentSeries,
    AppointmentType,
    FreedSlot,
    Hl7Receiver,
    Location,
    Organization,
    Patient,
    Provider,
    ProviderLocation,
    ReminderRule,
    Room,
)
from hpms.models.base import DEFERRED
from hpms.services.interop.hl7 import events as hl7_events
from hpms.services.lookups import find_patient, find_provider, find_room, find_type, load_appointment, provider_name
from hpms.services.messages import reminders
from hpms.services.platform import audit
from hpms.services.platform import localtime as lt
from hpms.services.platform import validation as v
from hpms.services.platform.conflicts import overlap_error
from hpms.services.platform.permissions import allowed, require
from hpms.services.scheduling.availability import provider_location, why_closed
from hpms.services.scheduling.guards import conflict_reason, flush, free_room, overlap
from hpms.services.scheduling.lifecycle import check_transition, check_version, set_status, transition
from hpms.services.scheduling.listing import appointment_out, history, ical, list_appointments, outputs, show
from hpms.services.scheduling.resources import provider_location_ids
from hpms.services.scheduling.slots import find_slot

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

__all__ = [
    "MAX_OCCURRENCES",
    "MOVABLE",
    "BookingOut",
    "SkippedOut",
    "book",
    "can_override",
    "cancel",
    "find_slot",
    "history",
    "ical",
    "list_appointments",
    "reschedule",
    "show",
    "transition",
]

MAX_OCCURRENCES = 104
MOVABLE = frozenset({"booked", "confirmed"})


class SkippedOut(SQLModel):
    model_config = DEFERRED
    index: int
    start: dt.datetime
    problem: str


class BookingOut(SQLModel):
    model_config = DEFERRED
    series_id: int | None
    booked: list[AppointmentOut]
    skipped: list[SkippedOut]


_APPT = Appointment.__table__
_INSERT = sa.insert(_APPT).returning(_APPT.c.id)
# one visit on the driver: the columns a booking writes, in the order of its values below
_INSERT_ONE = Prepared(
    sa.insert(_APPT).values({c: sa.bindparam(c) for c in _APPT.c.keys() if c != "id"}).returning(_APPT.c.id)
)


def _resolve_query(type_by_id: bool, location_given: bool) -> sa.Select[Any]:
    """The patient (by MRN), provider (by id), type (by id or name) and location of a booking in
    one statement: the provider's location named by id, or the number of locations they work at;
    and whether the practice sends reminders (and HL7 messages) at all."""
    pat, prov = Patient.__table__, Provider.__table__
    rules, receivers = ReminderRule.__table__, Hl7Receiver.__table__
    typ, loc = AppointmentType.__table__, Location.__table__
    pl = ProviderLocation.__table__
    works = pl.alias("works_at")
    n_locations = (
        sa.select(sa.func.count()).where(works.c.provider_id == prov.c.id).scalar_subquery().label("n_locations")
    )
    q = (
        sa.select(
            pat.c.id.label("pat_id"),
            pat.c.mrn,
            pat.c.first_name.label("pat_first"),
            pat.c.last_name.label("pat_last"),
            pat.c.active.label("pat_active"),
            pat.c.merged_into_id,
            prov.c.id.label("prov_id"),
            prov.c.org_id.label("prov_org"),
            prov.c.first_name,
            prov.c.last_name,
            prov.c.credentials,
            prov.c.active.label("prov_active"),
            typ.c.id.label("type_id"),
            typ.c.name.label("type_name"),
            typ.c.duration_min,
            typ.c.buffer_min,
            typ.c.needs_room,
            loc.c.id.label("loc_id"),
            loc.c.name.label("loc_name"),
            loc.c.tz,
            n_locations,
            sa.exists().where(rules.c.org_id == pat.c.org_id, rules.c.channel != "none").label("has_rules"),
            sa.exists().where(receivers.c.org_id == pat.c.org_id, receivers.c.active.is_(True)).label("has_hl7"),
        )
        .select_from(pat.join(prov, prov.c.id == sa.bindparam("provider_id")))
        .join(typ, typ.c.org_id == pat.c.org_id)
        .join(pl, pl.c.provider_id == prov.c.id)
        .join(loc, sa.and_(loc.c.id == pl.c.location_id, loc.c.org_id == pat.c.org_id))
        .where(pat.c.org_id == sa.bindparam("org_id"), pat.c.mrn == sa.bindparam("mrn"))
    )
    if type_by_id:
        q = q.where(typ.c.id == sa.bindparam("type_id"))
    else:
        q = q.where(sa.func.lower(typ.c.name) == sa.bindparam("type_name"))
    if location_given:
        q = q.where(loc.c.id == sa.bindparam("location_id"))
    return q.limit(2)


_RESOLVE = {
    (by_id, given): Prepared(_resolve_query(by_id, given)) for by_id in (False, True) for given in (False, True)
}


@dataclass
class _Refs:
    """What a booking names, resolved: the columns of each row that booking reads."""

    patient: Patient
    provider: Provider
    atype: AppointmentType
    location: Location
    has_rules: bool
    has_hl7: bool


def _resolve_fast(
    ctx: Ctx, patient: str | int | None, provider: str | int | None, type: str | int | None, location: str | int | None
) -> _Refs | None:
    """The common references (patient by MRN, provider and location by id, type by id or name;
    no location when the provider works at one) in one statement; None when the lookups must
    decide (another kind of reference, a miss, an inactive or merged row, an ambiguity), so
    that every refusal reads as theirs."""
    pat_ref = "" if patient is None else str(patient).strip()
    prov_ref = "" if provider is None else str(provider).strip()
    type_ref = "" if type is None else str(type).strip()
    loc_ref = "" if location is None else str(location).strip()
    if not (pat_ref and type_ref and prov_ref.isdigit() and len(prov_ref) < 10) or (loc_ref and not loc_ref.isdigit()):
        return None
    by_id = type_ref.isdigit()
    params: dict[str, Any] = {"org_id": ctx.org_id, "mrn": pat_ref, "provider_id": int(prov_ref)}
    if by_id:
        params["type_id"] = int(type_ref)
    else:
        params["type_name"] = type_ref.lower()
    if loc_ref:
        params["location_id"] = int(loc_ref)
    rows = _RESOLVE[by_id, bool(loc_ref)].rows(ctx.session.connection(), params)
    if len(rows) != 1:
        return None
    r = rows[0]
    if (
        r.prov_org != ctx.org_id
        or not r.prov_active
        or not r.pat_active
        or r.merged_into_id is not None
        or (not loc_ref and r.n_locations != 1)
    ):
        return None
    # Rows with the columns the booking reads, in the shape of the models.
    return _Refs(
        patient=cast(Patient, _Row(id=r.pat_id, mrn=r.mrn, first_name=r.pat_first, last_name=r.pat_last)),
        provider=cast(
            Provider,
            _Row(id=r.prov_id, first_name=r.first_name, last_name=r.last_name, credentials=r.credentials, active=True),
        ),
        atype=cast(
            AppointmentType,
            _Row(
                id=r.type_id,
                name=r.type_name,
                duration_min=r.duration_min,
                buffer_min=r.buffer_min,
                needs_room=r.needs_room,
            ),
        ),
        location=cast(Location, _Row(id=r.loc_id, name=r.loc_name, tz=r.tz)),
        has_rules=bool(r.has_rules),
        has_hl7=bool(r.has_hl7),
    )


class _Row:
    """An inserted appointment's values, read like the ORM object by appointment_out()."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


@dataclass
class _Plan:
    index: int
    start: dt.datetime
    end: dt.datetime
    block_end: dt.datetime
    room: Room | None = None
    problem: str | None = None
    conflict: bool = False  # an overlap (exit 4) rather than a rule (exit 2)


def _check_plan(
    ctx: Ctx,
    plan: _Plan,
    *,
    provider: Provider,
    patient: Patient,
    location: Location,
    atype: AppointmentType,
    room_ref: Room | None,
    override: bool,
    exclude: tuple[int, ...] = (),
) -> list[str]:
    """Fill plan.problem (rule or overlap) and plan.room; returns the rules overridden."""
    assert provider.id is not None and patient.id is not None and location.id is not None
    session = ctx.session
    overridden: list[str] = []
    rules: list[str] = []
    if plan.start < ctx.now():
        rules.append("is in the past")
    closed = why_closed(session, ctx.org_id, provider.id, location, plan.start, plan.end)
    if closed:
        rules.append(closed)
    if rules:
        if override:
            overridden.extend(rules)
        else:
            plan.problem = "; ".join(rules)
            return overridden
    if room_ref is not None:
        plan.room = room_ref
    elif atype.needs_room:
        plan.room = free_room(session, location.id, plan.start, plan.block_end, exclude)
        if plan.room is None:
            plan.problem, plan.conflict = f"no free room at {location.name}", True
            return overridden
    reason = conflict_reason(
        session,
        provider=provider,
        patient_id=patient.id,
        room=plan.room,
        start=plan.start,
        end=plan.end,
        block_end=plan.block_end,
        tz=location.tz,
        exclude=exclude,
    )
    if reason:
        plan.problem, plan.conflict = reason, True
    return overridden


# ---- booking -------------------------------------------------------------------------------


def _occurrences(start_utc: dt.datetime, tz: str, repeat: str) -> tuple[list[tuple[int, dt.datetime, str | None]], str]:
    """(index, UTC start, problem) of each occurrence, expanded in local wall time (one in the
    spring-forward gap carries the instant after the gap, to be listed on its own day), and
    the rule as stored."""
    text = repeat.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    upper = text.upper()
    if "FREQ=" not in upper:
        raise ValidationError("repeat", f"{repeat!r} is not an RRULE (e.g. FREQ=WEEKLY;COUNT=6)")
    if "DTSTART" in upper:
        raise ValidationError("repeat", "the series starts at the time of its first visit; leave DTSTART out")
    if "COUNT=" not in upper and "UNTIL=" not in upper:
        raise ValidationError("repeat", "needs COUNT= or UNTIL= (a series must end)")
    local_start = lt.to_local(start_utc, tz).replace(tzinfo=None)
    try:
        rule = rrulestr(text, dtstart=local_start)
        occ = []
        for i, naive in enumerate(rule):
            if i >= MAX_OCCURRENCES:
                raise ValidationError("repeat", f"gives more than {MAX_OCCURRENCES} occurrences")
            occ.append(naive)
    except ValidationError:
        raise
    except (ValueError, TypeError) as exc:
        raise ValidationError("repeat", f"{repeat!r} is not a valid RRULE ({exc})") from None
    if not occ:
        raise ValidationError("repeat", "gives no occurrence")
    out: list[tuple[int, dt.datetime, str | None]] = []
    for i, naive in enumerate(occ, start=1):
        if i == 1:
            out.append((i, start_utc, None))
        elif not lt.exists(naive, tz):
            out.append(
                (i, lt.wall_to_utc(naive, tz), f"{naive:%Y-%m-%d %H:%M} does not exist in {tz} (clocks spring forward)")
            )
        else:
            out.append((i, lt.wall_to_utc(naive, tz), None))
    return out, text.upper()


def book(
    ctx: Ctx,
    *,
    patient: str | int | None,
    provider: str | int | None,
    type: str | int | None,
    at: str | dt.datetime | None,
    location: str | int | None = None,
    room: str | int | None = None,
    reason: str | None = None,
    repeat: str | None = None,
    override: bool = False,
    skip_conflicts: bool = False,
) -> BookingOut:
    """Book one visit, or a series with `repeat` (an RRULE expanded in local wall time).
    Outside working hours, on time off or in the past it is refused unless `override` (a
    permission of its own, audited). A series with any colliding occurrence books nothing
    unless `skip_conflicts`. Raises ValidationError, NotFoundError, ConflictError, PermissionDenied."""
    require(ctx.actor, "appointment.book")
    if override:
        require(ctx.actor, "appointment.override")
    session = ctx.session
    refs = _resolve_fast(ctx, patient, provider, type, location)
    has_rules: bool | None = None  # unknown: the reminders look
    has_hl7: bool | None = None  # unknown: the HL7 hook looks
    if refs is not None:
        pat, prov, atype, loc, has_rules = refs.patient, refs.provider, refs.atype, refs.location, refs.has_rules
        has_hl7 = refs.has_hl7
    else:
        pat = find_patient(ctx, patient, field="patient", active=True)
        prov = find_provider(ctx, provider)
        if not prov.active:
            raise ValidationError("provider", f"{provider_name(prov)} is inactive")
        atype = find_type(ctx, type)
        loc = provider_location(ctx, prov, location)
    room_obj = find_room(ctx, room, location_id=loc.id) if room else None
    reason = v.optional_text("reason", reason, 500)
    start = lt.parse_local("at", at, loc.tz, now=ctx.now())
    duration = dt.timedelta(minutes=atype.duration_min)
    block = duration + dt.timedelta(minutes=atype.buffer_min)
    occurrences: list[tuple[int, dt.datetime, str | None]]
    rule_text: str | None
    if repeat:
        occurrences, rule_text = _occurrences(start, loc.tz, repeat)
    else:
        occurrences, rule_text = [(1, start, None)], None
    plans: list[_Plan] = []
    overridden: list[str] = []
    for index, s, problem in occurrences:
        if problem:
            plans.append(_Plan(index, s, s, s, problem=problem))
            continue
        plan = _Plan(index, s, s + duration, s + block)
        overridden += _check_plan(
            ctx, plan, provider=prov, patient=pat, location=loc, atype=atype, room_ref=room_obj, override=override
        )
        plans.append(plan)
    # occurrences of one series must not collide with each other (FREQ=HOURLY, a long buffer...)
    ok = [p for p in plans if p.problem is None]
    for a, b in zip(ok, ok[1:]):
        if b.start < a.block_end:
            b.problem, b.conflict = f"overlaps occurrence {a.index} of this series", True
    bad = [p for p in plans if p.problem]
    if bad and not (repeat and skip_conflicts):
        if not repeat:
            p = bad[0]
            problem = p.problem or ""
            when = lt.fmt_local(p.start, loc.tz)
            if p.conflict:
                raise ConflictError(
                    f"{when} cannot be booked: {problem}",
                    field="at",
                    action=Action("appointments", "find-slot", purpose="find a free time with"),
                )
            if "past" in problem:
                raise ValidationError("at", f"{when} {problem}")
            raise ValidationError("at", f"{when} {problem}", retry_with=("override",), hint="to book anyway")
        listing = "; ".join(f"#{p.index} {lt.fmt_local(p.start, loc.tz)}: {p.problem}" for p in bad)
        msg = f"{len(bad)} of {len(plans)} occurrences cannot be booked, nothing booked: {listing}"
        if any(p.conflict for p in bad):
            raise ConflictError(msg, retry_with=("skip_conflicts",), hint="to book the others")
        raise ValidationError("repeat", msg)
    good = [p for p in plans if p.problem is None]
    if not good:
        raise ConflictError(
            "no occurrence of the series can be booked: " + "; ".join(f"#{p.index}: {p.problem}" for p in bad)
        )
    series = None
    if repeat:
        series = AppointmentSeries(org_id=ctx.org_id, rrule=rule_text, tz=loc.tz)
        session.add(series)
        session.flush()
    now = ctx.now()
    values = [
        dict(
            org_id=ctx.org_id,
            patient_id=pat.id,
            provider_id=prov.id,
            location_id=loc.id,
            room_id=p.room.id if p.room else None,
            type_id=atype.id,
            series_id=series.id if series else None,
            series_index=p.index if series else None,
            start_utc=p.start,
            end_utc=p.end,
            block_end_utc=p.block_end,
            status="booked",
            reason=reason,
            override=bool(overridden),
            late_cancel=False,
            cancel_reason=None,
            booked_by=ctx.actor.user_id,
            booked_at=now,
            confirmed_at=None,
            arrived_at=None,
            roomed_at=None,
            completed_at=None,
            no_show_at=None,
            cancelled_at=None,
            version=1,
            updated_at=now,
        )
        for p in good
    ]
    # Core insert (no ORM unit of work: a booking is on the hot path of the front desk)
    conn = session.connection()
    try:
        if len(values) == 1:
            ids = [_INSERT_ONE.rows(conn, values[0])[0].id]
        else:
            ids = [conn.execute(_INSERT, row).scalar_one() for row in values]
    except sa.exc.IntegrityError as exc:
        err = overlap_error(exc)
        if err is None:
            raise
        raise err from None
    rows = [_Row(id=i, **row) for i, row in zip(ids, values)]
    detail = ("override: " + "; ".join(sorted(set(overridden)))) if overridden else None
    audit.record_many(
        ctx,
        [
            audit.Event(
                "create",
                "appointment",
                a.id,
                patient_id=pat.id,
                fields=["patient", "provider", "start", "type"],
                detail=detail,
            )
            for a in rows
        ],
    )
    reminders.queue_many(ctx, rows, fresh=True, has_rules=has_rules)
    hl7_events.visits(ctx, rows, "S12", known=has_hl7)
    names = dict(
        patient=f"{pat.first_name} {pat.last_name}",
        mrn=pat.mrn,
        provider=provider_name(prov),
        location=loc.name,
        tz=loc.tz,
        type_name=atype.name,
    )
    booked = [appointment_out(a, room=p.room.name if p.room else None, **names) for a, p in zip(rows, good)]
    skipped = [SkippedOut(index=p.index, start=lt.to_local(p.start, loc.tz), problem=p.problem or "") for p in bad]
    return BookingOut(series_id=series.id if series else None, booked=booked, skipped=skipped)


def can_override(ctx: Ctx) -> bool:
    """Whether the actor may book outside working hours, on time off or in the past."""
    return allowed(ctx.actor.roles, "appointment.override")


# ---- moving and cancelling -----------------------------------------------------------------


def _targets(ctx: Ctx, appt: Appointment, this_and_following: bool) -> list[Appointment]:
    if not this_and_following:
        return [appt]
    if appt.series_id is None or appt.series_index is None:
        raise ValidationError("this_and_following", f"appointment {appt.id} is not part of a series")
    return list(
        ctx.session.execute(
            sa.select(Appointment)
            .where(
                Appointment.series_id == appt.series_id,
                col(Appointment.series_index) >= appt.series_index,
                Appointment.status.in_(MOVABLE),
            )
            .order_by(Appointment.series_index)
        ).scalars()
    )


def _free(ctx: Ctx, appt: Appointment) -> None:
    """Offer the time of a cancelled or moved future visit to the waitlist."""
    if appt.start_utc > ctx.now():
        ctx.session.add(
            FreedSlot(
                org_id=ctx.org_id,
                provider_id=appt.provider_id,
                location_id=appt.location_id,
                start_utc=appt.start_utc,
                end_utc=appt.block_end_utc,
                appointment_id=appt.id,
                freed_at=ctx.now(),
            )
        )


def _ids(appts: list[Appointment]) -> list[int]:
    return [a.id for a in appts if a.id is not None]


def cancel(
    ctx: Ctx,
    appointment_id: str | int,
    *,
    reason: str | None,
    late: bool = False,
    this_and_following: bool = False,
    expected_version: int | None = None,
) -> list[AppointmentOut]:
    """Cancel a visit (or it and the rest of its series). Inside the practice's notice window
    (or with `late`) it is flagged as a late cancellation. The time goes to the waitlist."""
    require(ctx.actor, "appointment.update")
    reason = v.require_text("reason", reason, 500)
    appt = load_appointment(ctx, appointment_id)
    check_version(appt, expected_version)
    check_transition(appt, "cancel")
    targets = _targets(ctx, appt, this_and_following)
    cancel_visits(ctx, targets, reason=reason, late=late)
    return outputs(ctx, _ids(targets))


def cancel_visits(ctx: Ctx, targets: list[Appointment], *, reason: str, late: bool = False) -> None:
    """Cancel these visits (checked by the caller: allowed, and each may be cancelled): flag a
    late cancellation, free the time for the waitlist, withdraw their reminders, audit."""
    org = ctx.session.get(Organization, ctx.org_id)
    assert org is not None
    window = dt.timedelta(hours=org.late_cancel_hours)
    now = ctx.now()
    events = []
    for a in targets:
        old = set_status(ctx, a, "cancel")
        a.cancel_reason = reason
        a.late_cancel = bool(late) or now >= a.start_utc - window
        _free(ctx, a)
        events.append(
            audit.Event(
                "update",
                "appointment",
                a.id,
                patient_id=a.patient_id,
                fields=["status", "cancel_reason"] + (["late_cancel"] if a.late_cancel else []),
                detail=f"{old} -> cancelled",
            )
        )
    flush(ctx.session)
    audit.record_many(ctx, events)
    for a in targets:
        reminders.cancel_for(ctx, a)
    hl7_events.visits(ctx, targets, "S15")


def reschedule(
    ctx: Ctx,
    appointment_id: str | int,
    *,
    at: str | dt.datetime | None,
    provider: str | int | None = None,
    location: str | int | None = None,
    room: str | int | None = None,
    this_and_following: bool = False,
    override: bool = False,
    expected_version: int | None = None,
) -> list[AppointmentOut]:
    """Move a visit (or it and the following ones of its series, by the same wall-clock shift)
    to a new time, and optionally another provider, location or room. The row is updated in
    place: no copy is left behind. All moves are checked first; if one cannot be made, none is."""
    require(ctx.actor, "appointment.update")
    if override:
        require(ctx.actor, "appointment.override")
    session = ctx.session
    appt = load_appointment(ctx, appointment_id)
    check_version(appt, expected_version)
    if appt.status not in MOVABLE:
        raise ConflictError(f"appointment {appt.id} is {appt.status.replace('_', ' ')}; it cannot be rescheduled")
    prov = find_provider(ctx, provider) if provider else session.get(Provider, appt.provider_id)
    old_loc = session.get(Location, appt.location_id)
    pat = session.get(Patient, appt.patient_id)
    atype = session.get(AppointmentType, appt.type_id)
    # foreign keys of the appointment
    assert prov is not None and prov.id is not None and old_loc is not None
    assert pat is not None and atype is not None
    if location:
        loc = provider_location(ctx, prov, location)
    else:
        works_at = provider_location_ids(session, prov.id)
        loc = old_loc if old_loc.id in works_at else provider_location(ctx, prov, None)
    assert loc.id is not None
    room_obj = find_room(ctx, room, location_id=loc.id) if room else None
    new_start = lt.parse_local("at", at, loc.tz, now=ctx.now())
    targets = _targets(ctx, appt, this_and_following)
    moving = tuple(_ids(targets))
    shift = lt.to_local(new_start, loc.tz).replace(tzinfo=None) - lt.to_local(appt.start_utc, old_loc.tz).replace(
        tzinfo=None
    )
    plans: list[tuple[Appointment, _Plan]] = []
    overridden: list[str] = []
    for a in targets:
        if a.id == appt.id:
            s = new_start
        else:
            naive = lt.to_local(a.start_utc, old_loc.tz).replace(tzinfo=None) + shift
            if not lt.exists(naive, loc.tz):
                plans.append(
                    (
                        a,
                        _Plan(
                            a.series_index or 0,
                            a.start_utc,
                            a.end_utc,
                            a.block_end_utc,
                            problem=f"{naive:%Y-%m-%d %H:%M} does not exist in {loc.tz}",
                        ),
                    )
                )
                continue
            s = lt.wall_to_utc(naive, loc.tz)
        dur = a.end_utc - a.start_utc
        plan = _Plan(a.series_index or 0, s, s + dur, s + (a.block_end_utc - a.start_utc))
        keep_room = None
        if room_obj is None and a.room_id and loc.id == a.location_id:
            cur = session.get(Room, a.room_id)
            assert cur is not None and cur.id is not None
            if not overlap(
                session, Appointment.room_id, cur.id, plan.start, plan.block_end, Appointment.block_end_utc, moving
            ):
                keep_room = cur
        overridden += _check_plan(
            ctx,
            plan,
            provider=prov,
            patient=pat,
            location=loc,
            atype=atype,
            room_ref=room_obj or keep_room,
            override=override,
            exclude=moving,
        )
        plans.append((a, plan))
    bad = [p for _, p in plans if p.problem]
    if bad:
        if len(plans) == 1:
            p = bad[0]
            msg = f"{lt.fmt_local(p.start, loc.tz)} cannot be booked: {p.problem}"
            if p.conflict:
                raise ConflictError(msg, field="at")
            raise ValidationError("at", msg)
        listing = "; ".join(f"#{p.index} {lt.fmt_local(p.start, loc.tz)}: {p.problem}" for p in bad)
        msg = f"{len(bad)} of {len(plans)} occurrences cannot be moved, nothing moved: {listing}"
        if any(p.conflict for p in bad):
            raise ConflictError(msg)
        raise ValidationError("at", msg)
    # move in an order where no row steps onto one not yet moved
    plans.sort(key=lambda ap: ap[1].start, reverse=shift > dt.timedelta(0))
    events = []
    now = ctx.now()
    for a, p in plans:
        _free(ctx, a)
        fields = ["start"]
        if a.provider_id != prov.id:
            fields.append("provider")
        if a.location_id != loc.id:
            fields.append("location")
        a.start_utc, a.end_utc, a.block_end_utc = p.start, p.end, p.block_end
        a.provider_id, a.location_id = prov.id, loc.id
        a.room_id = p.room.id if p.room else None
        if a.status == "confirmed":
            a.status, a.confirmed_at = "booked", None
            fields.append("status")
        a.override = a.override or bool(overridden)
        a.version += 1
        a.updated_at = now
        flush(session)
        detail = ("override: " + "; ".join(sorted(set(overridden)))) if overridden else None
        events.append(audit.Event("update", "appointment", a.id, patient_id=a.patient_id, fields=fields, detail=detail))
    audit.record_many(ctx, events)
    reminders.queue_many(ctx, [a for a, _ in plans])
    hl7_events.visits(ctx, [a for a, _ in plans], "S13")
    return outputs(ctx, _ids([a for a, _ in plans]))
