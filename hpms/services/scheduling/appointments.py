"""Booking, rescheduling, the visit lifecycle, day sheets, slot search and the calendar feed.

Overlaps are checked here first (for a clear message naming what is in the way) and refused
again by the database (PostgreSQL exclusion constraints, SQLite triggers under the BEGIN
IMMEDIATE write lock), so two clerks booking the same minute cannot both win.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import SQLModel

from hpms.errors import ConflictError, ValidationError
from hpms.models import (
    Appointment,
    AppointmentOut,
    AppointmentSeries,
    AppointmentType,
    FreedSlot,
    Location,
    Organization,
    Patient,
    Provider,
    ProviderLocation,
    Room,
    SlotOut,
)
from hpms.models.base import DEFERRED
from hpms.models.scheduling import BLOCKING_STATUSES, STATUSES
from hpms.services.lookups import (
    find_location,
    find_patient,
    find_provider,
    find_room,
    find_type,
    load_appointment,
    provider_name,
)
from hpms.services.platform import audit
from hpms.services.platform import localtime as lt
from hpms.services.platform import validation as v
from hpms.services.platform.conflicts import overlap_error
from hpms.services.platform.permissions import allowed, require
from hpms.services.scheduling.availability import merge, open_time, provider_location, subtract, why_closed

MAX_OCCURRENCES = 104
LOOKBACK = dt.timedelta(days=1)  # no appointment (with its buffer) is longer: the overlap queries rely on it
FIND_SLOT_DAYS = 90

# action -> (statuses it may start from, status it leads to, timestamp it sets)
TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "confirm": (frozenset({"booked"}), "confirmed", "confirmed_at"),
    "checkin": (frozenset({"booked", "confirmed"}), "arrived", "arrived_at"),
    "room": (frozenset({"arrived", "in_room"}), "in_room", "roomed_at"),
    "complete": (frozenset({"arrived", "in_room"}), "completed", "completed_at"),
    "noshow": (frozenset({"booked", "confirmed"}), "no_show", "no_show_at"),
    "cancel": (frozenset({"booked", "confirmed"}), "cancelled", "cancelled_at"),
}
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


_INSERT = sa.insert(Appointment.__table__).returning(Appointment.__table__.c.id)


class _Row:
    """An inserted appointment's values, read like the ORM object by _out()."""

    def __init__(self, **values):
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


# ---- lookups and output --------------------------------------------------------------------

_OUT_COLS = (
    Appointment,
    Patient.first_name,
    Patient.last_name,
    Patient.mrn,
    Provider.first_name.label("p_first"),
    Provider.last_name.label("p_last"),
    Provider.credentials,
    Location.name.label("loc_name"),
    Location.tz,
    Room.name.label("room_name"),
    AppointmentType.name.label("type_name"),
)


def _select_out():
    return (
        sa.select(*_OUT_COLS)
        .join(Patient, Patient.id == Appointment.patient_id)
        .join(Provider, Provider.id == Appointment.provider_id)
        .join(Location, Location.id == Appointment.location_id)
        .join(AppointmentType, AppointmentType.id == Appointment.type_id)
        .outerjoin(Room, Room.id == Appointment.room_id)
    )


def _out(
    a: Appointment, *, patient: str, mrn: str, provider: str, location: str, tz: str, room: str | None, type_name: str
) -> AppointmentOut:
    z = lt.zone(tz)
    loc = lambda t: t.astimezone(z) if t is not None else None  # noqa: E731
    return AppointmentOut(
        id=a.id,
        status=a.status,
        start=loc(a.start_utc),
        end=loc(a.end_utc),
        duration_min=int((a.end_utc - a.start_utc).total_seconds() // 60),
        patient_id=a.patient_id,
        patient=patient,
        mrn=mrn,
        provider_id=a.provider_id,
        provider=provider,
        location_id=a.location_id,
        location=location,
        tz=tz,
        room_id=a.room_id,
        room=room,
        type_id=a.type_id,
        type=type_name,
        reason=a.reason,
        series_id=a.series_id,
        series_index=a.series_index,
        override=a.override,
        late_cancel=a.late_cancel,
        cancel_reason=a.cancel_reason,
        booked_at=loc(a.booked_at),
        confirmed_at=loc(a.confirmed_at),
        arrived_at=loc(a.arrived_at),
        roomed_at=loc(a.roomed_at),
        completed_at=loc(a.completed_at),
        no_show_at=loc(a.no_show_at),
        cancelled_at=loc(a.cancelled_at),
        version=a.version,
    )


def _row_out(r) -> AppointmentOut:
    a = r[0]
    prov = f"{r.p_first} {r.p_last}" + (f", {r.credentials}" if r.credentials else "")
    return _out(
        a,
        patient=f"{r.first_name} {r.last_name}",
        mrn=r.mrn,
        provider=prov,
        location=r.loc_name,
        tz=r.tz,
        room=r.room_name,
        type_name=r.type_name,
    )


def _outs(ctx, ids: list[int]) -> list[AppointmentOut]:
    if not ids:
        return []
    rows = ctx.session.execute(_select_out().where(Appointment.id.in_(ids)).order_by(Appointment.start_utc)).all()
    return [_row_out(r) for r in rows]


# ---- overlap checks ------------------------------------------------------------------------


def _overlap(session, col, value, start, end, end_col, exclude: tuple[int, ...]):
    q = (
        sa.select(Appointment.id, Appointment.start_utc, Appointment.end_utc)
        .where(
            col == value,
            Appointment.status.in_(BLOCKING_STATUSES),
            Appointment.start_utc < end,
            Appointment.start_utc >= start - LOOKBACK,
            end_col > start,
        )
        .order_by(Appointment.start_utc)
        .limit(1)
    )
    if exclude:
        q = q.where(Appointment.id.not_in(exclude))
    return session.execute(q).first()


# One statement for the three guards (provider and room blocks, the patient's visits): built once,
# run with parameters; each arm of the OR uses its (column, start_utc) index.
_GUARD = (
    sa.select(
        Appointment.id,
        Appointment.provider_id,
        Appointment.room_id,
        Appointment.patient_id,
        Appointment.start_utc,
        Appointment.end_utc,
        Appointment.block_end_utc,
    )
    .where(
        Appointment.status.in_(BLOCKING_STATUSES),
        Appointment.start_utc >= sa.bindparam("lookback"),
        Appointment.start_utc < sa.bindparam("block_end"),
        sa.or_(
            sa.and_(
                Appointment.provider_id == sa.bindparam("provider_id"),
                Appointment.block_end_utc > sa.bindparam("start"),
            ),
            sa.and_(Appointment.room_id == sa.bindparam("room_id"), Appointment.block_end_utc > sa.bindparam("start")),
            sa.and_(
                Appointment.patient_id == sa.bindparam("patient_id"),
                Appointment.end_utc > sa.bindparam("start"),
                Appointment.start_utc < sa.bindparam("end"),
            ),
        ),
        Appointment.id.not_in(sa.bindparam("exclude", expanding=True)),
    )
    .order_by(Appointment.start_utc)
)


def conflict_reason(
    session,
    *,
    provider: Provider,
    patient_id: int,
    room: Room | None,
    start,
    end,
    block_end,
    tz: str,
    exclude: tuple[int, ...] = (),
) -> str | None:
    rows = (
        session.connection()
        .execute(
            _GUARD,
            {
                "lookback": start - LOOKBACK,
                "block_end": block_end,
                "start": start,
                "end": end,
                "provider_id": provider.id,
                "room_id": room.id if room is not None else -1,
                "patient_id": patient_id,
                "exclude": list(exclude) or [-1],
            },
        )
        .all()
    )
    hits = [r for r in rows if r.block_end_utc > start]
    for hit in hits:
        if hit.provider_id == provider.id:
            return f"{provider_name(provider)} already has appointment {hit.id} at {_span(hit, tz)}"
    for hit in hits:
        if room is not None and hit.room_id == room.id:
            return f"room {room.name!r} is taken by appointment {hit.id} at {_span(hit, tz)}"
    for hit in rows:
        if hit.patient_id == patient_id and hit.end_utc > start and hit.start_utc < end:
            return f"the patient already has appointment {hit.id} at {_span(hit, tz)}"
    return None


def _span(hit, tz: str) -> str:
    return f"{lt.fmt_local(hit.start_utc, tz)}-{lt.fmt_local(hit.end_utc, tz, '%H:%M')}"


def _free_room(session, location_id: int, start, block_end, exclude: tuple[int, ...] = ()) -> Room | None:
    busy = sa.select(Appointment.room_id).where(
        Appointment.room_id.is_not(None),
        Appointment.location_id == location_id,
        Appointment.status.in_(BLOCKING_STATUSES),
        Appointment.start_utc < block_end,
        Appointment.start_utc >= start - LOOKBACK,
        Appointment.block_end_utc > start,
    )
    if exclude:
        busy = busy.where(Appointment.id.not_in(exclude))
    return session.execute(
        sa.select(Room)
        .where(Room.location_id == location_id, Room.active.is_(True), Room.kind != "equipment", Room.id.not_in(busy))
        .order_by(Room.name)
        .limit(1)
    ).scalar_one_or_none()


def _flush(session) -> None:
    try:
        session.flush()
    except sa.exc.IntegrityError as exc:
        err = overlap_error(exc)
        if err is None:
            raise
        raise err from None


# ---- booking -------------------------------------------------------------------------------


def _check_plan(
    ctx, plan: _Plan, *, provider, patient, location, atype, room_ref, override: bool, exclude: tuple[int, ...] = ()
) -> list[str]:
    """Fill plan.problem (rule or overlap) and plan.room; returns the rules overridden."""
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
        plan.room = _free_room(session, location.id, plan.start, plan.block_end, exclude)
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


def _occurrences(start_utc: dt.datetime, tz: str, repeat: str) -> list[tuple[int, dt.datetime | None, str | None]]:
    """(index, UTC start, problem) of each occurrence, expanded in local wall time (one in the
    spring-forward gap carries the instant after the gap, to be listed on its own day)."""
    from dateutil.rrule import rrulestr

    text = repeat.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    upper = text.upper()
    if "FREQ=" not in upper:
        raise ValidationError("--repeat", f"{repeat!r} is not an RRULE (e.g. FREQ=WEEKLY;COUNT=6)")
    if "DTSTART" in upper:
        raise ValidationError("--repeat", "the series starts at --at; leave DTSTART out")
    if "COUNT=" not in upper and "UNTIL=" not in upper:
        raise ValidationError("--repeat", "needs COUNT= or UNTIL= (a series must end)")
    local_start = lt.to_local(start_utc, tz).replace(tzinfo=None)
    try:
        rule = rrulestr(text, dtstart=local_start)
        occ = []
        for i, naive in enumerate(rule):
            if i >= MAX_OCCURRENCES:
                raise ValidationError("--repeat", f"gives more than {MAX_OCCURRENCES} occurrences")
            occ.append(naive)
    except ValidationError:
        raise
    except (ValueError, TypeError) as exc:
        raise ValidationError("--repeat", f"{repeat!r} is not a valid RRULE ({exc})") from None
    if not occ:
        raise ValidationError("--repeat", "gives no occurrence")
    out = []
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
    ctx,
    *,
    patient,
    provider,
    type,
    at,
    location=None,
    room=None,
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
    pat = find_patient(ctx, patient, field="patient", active=True)
    prov = find_provider(ctx, provider)
    if not prov.active:
        raise ValidationError("--provider", f"{provider_name(prov)} is inactive")
    atype = find_type(ctx, type)
    loc = provider_location(ctx, prov, location)
    room_obj = find_room(ctx, room, location_id=loc.id) if room else None
    reason = v.optional_text("--reason", reason, 500)
    start = lt.parse_local("--at", at, loc.tz, now=ctx.now())
    duration = dt.timedelta(minutes=atype.duration_min)
    block = duration + dt.timedelta(minutes=atype.buffer_min)
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
            if p.conflict:
                raise ConflictError(
                    f"--at: {lt.fmt_local(p.start, loc.tz)} cannot be booked: {p.problem}",
                    hint="find a free time with `hpms appointments find-slot`",
                )
            raise ValidationError(
                "--at",
                f"{lt.fmt_local(p.start, loc.tz)} {p.problem}"
                + ("" if "past" in p.problem else " (--override to book anyway)"),
            )
        listing = "; ".join(f"#{p.index} {lt.fmt_local(p.start, loc.tz)}: {p.problem}" for p in bad)
        msg = f"{len(bad)} of {len(plans)} occurrences cannot be booked, nothing booked: {listing}"
        if any(p.conflict for p in bad):
            raise ConflictError(msg, hint="--skip-conflicts books the others")
        raise ValidationError("--repeat", msg)
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
        ids = [conn.execute(_INSERT, v).scalar_one() for v in values]
    except sa.exc.IntegrityError as exc:
        err = overlap_error(exc)
        if err is None:
            raise
        raise err from None
    rows = [_Row(id=i, **v) for i, v in zip(ids, values)]
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
    names = dict(
        patient=f"{pat.first_name} {pat.last_name}",
        mrn=pat.mrn,
        provider=provider_name(prov),
        location=loc.name,
        tz=loc.tz,
        type_name=atype.name,
    )
    booked = [_out(a, room=p.room.name if p.room else None, **names) for a, p in zip(rows, good)]
    skipped = [SkippedOut(index=p.index, start=lt.to_local(p.start, loc.tz), problem=p.problem) for p in bad]
    return BookingOut(series_id=series.id if series else None, booked=booked, skipped=skipped)


# ---- lifecycle -----------------------------------------------------------------------------


def _targets(ctx, appt: Appointment, this_and_following: bool) -> list[Appointment]:
    if not this_and_following:
        return [appt]
    if appt.series_id is None:
        raise ValidationError("--this-and-following", f"appointment {appt.id} is not part of a series")
    return list(
        ctx.session.execute(
            sa.select(Appointment)
            .where(
                Appointment.series_id == appt.series_id,
                Appointment.series_index >= appt.series_index,
                Appointment.status.in_(MOVABLE),
            )
            .order_by(Appointment.series_index)
        ).scalars()
    )


def _check_transition(appt: Appointment, action: str) -> None:
    sources, _, _ = TRANSITIONS[action]
    if appt.status not in sources:
        verb = {
            "checkin": "checked in",
            "noshow": "marked no-show",
            "room": "roomed",
            "complete": "completed",
            "confirm": "confirmed",
            "cancel": "cancelled",
        }[action]
        raise ConflictError(
            f"appointment {appt.id} is {appt.status.replace('_', ' ')}; it cannot be {verb}",
            hint=f"allowed from: {', '.join(sorted(sources))}",
        )


def _check_version(appt: Appointment, expected_version: int | None) -> None:
    if expected_version is not None and appt.version != expected_version:
        raise ConflictError(
            f"appointment {appt.id} changed meanwhile (version {appt.version}, expected {expected_version})",
            hint="show it again and retry",
        )


def _free(ctx, appt: Appointment) -> None:
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


def _set_status(ctx, appt: Appointment, action: str) -> str:
    _, target, stamp = TRANSITIONS[action]
    old = appt.status
    appt.status = target
    setattr(appt, stamp, ctx.now())
    appt.version += 1
    appt.updated_at = ctx.now()
    return old


def transition(ctx, appointment_id, action: str, *, room=None, expected_version: int | None = None) -> AppointmentOut:
    """confirm, checkin, room, complete, noshow: validated against the current status and
    timestamped."""
    if action not in TRANSITIONS or action == "cancel":
        raise ValueError(action)
    require(ctx.actor, "appointment.update")
    appt = load_appointment(ctx, appointment_id)
    _check_version(appt, expected_version)
    _check_transition(appt, action)
    loc = ctx.session.get(Location, appt.location_id)
    now = ctx.now()
    if action == "checkin":
        today = lt.local_now(now, loc.tz).date()
        day = lt.to_local(appt.start_utc, loc.tz).date()
        if day != today:
            raise ValidationError("appointment", f"appointment {appt.id} is on {day}, not today ({today})")
    if action == "noshow" and appt.start_utc > now:
        raise ConflictError(f"appointment {appt.id} has not started yet ({lt.fmt_local(appt.start_utc, loc.tz)})")
    fields = ["status"]
    if action == "room":
        if room is None or not str(room).strip():
            raise ValidationError("--room", "is required")
        r = find_room(ctx, room, location_id=loc.id)
        if r.id != appt.room_id:
            hit = _overlap(
                ctx.session,
                Appointment.room_id,
                r.id,
                appt.start_utc,
                appt.block_end_utc,
                Appointment.block_end_utc,
                (appt.id,),
            )
            if hit:
                raise ConflictError(f"--room: room {r.name!r} is taken by appointment {hit.id} at {_span(hit, loc.tz)}")
            appt.room_id = r.id
            fields.append("room")
    old = _set_status(ctx, appt, action)
    _flush(ctx.session)
    audit.record(
        ctx,
        audit.Event(
            "update",
            "appointment",
            appt.id,
            patient_id=appt.patient_id,
            fields=fields,
            detail=f"{old} -> {appt.status}",
        ),
    )
    return _outs(ctx, [appt.id])[0]


def cancel(
    ctx,
    appointment_id,
    *,
    reason: str | None,
    late: bool = False,
    this_and_following: bool = False,
    expected_version: int | None = None,
) -> list[AppointmentOut]:
    """Cancel a visit (or it and the rest of its series). Inside the practice's notice window
    (or with `late`) it is flagged as a late cancellation. The time goes to the waitlist."""
    require(ctx.actor, "appointment.update")
    reason = v.require_text("--reason", reason, 500)
    appt = load_appointment(ctx, appointment_id)
    _check_version(appt, expected_version)
    _check_transition(appt, "cancel")
    window = dt.timedelta(hours=ctx.session.get(Organization, ctx.org_id).late_cancel_hours)
    now = ctx.now()
    events = []
    ids = []
    for a in _targets(ctx, appt, this_and_following):
        old = _set_status(ctx, a, "cancel")
        a.cancel_reason = reason
        a.late_cancel = bool(late) or now >= a.start_utc - window
        _free(ctx, a)
        ids.append(a.id)
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
    _flush(ctx.session)
    audit.record_many(ctx, events)
    return _outs(ctx, ids)


def reschedule(
    ctx,
    appointment_id,
    *,
    at,
    provider=None,
    location=None,
    room=None,
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
    _check_version(appt, expected_version)
    if appt.status not in MOVABLE:
        raise ConflictError(f"appointment {appt.id} is {appt.status.replace('_', ' ')}; it cannot be rescheduled")
    prov = find_provider(ctx, provider) if provider else session.get(Provider, appt.provider_id)
    old_loc = session.get(Location, appt.location_id)
    if location:
        loc = provider_location(ctx, prov, location)
    else:
        ids = [
            pl
            for pl in session.execute(
                sa.select(ProviderLocation.location_id).where(ProviderLocation.provider_id == prov.id)
            ).scalars()
        ]
        loc = old_loc if old_loc.id in ids else provider_location(ctx, prov, None)
    room_obj = find_room(ctx, room, location_id=loc.id) if room else None
    pat = session.get(Patient, appt.patient_id)
    atype = session.get(AppointmentType, appt.type_id)
    new_start = lt.parse_local("--at", at, loc.tz, now=ctx.now())
    targets = _targets(ctx, appt, this_and_following)
    moving = tuple(a.id for a in targets)
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
            if not _overlap(
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
            cls = ConflictError if p.conflict else ValidationError
            msg = f"{lt.fmt_local(p.start, loc.tz)} cannot be booked: {p.problem}"
            raise ConflictError("--at: " + msg) if cls is ConflictError else ValidationError("--at", msg)
        listing = "; ".join(f"#{p.index} {lt.fmt_local(p.start, loc.tz)}: {p.problem}" for p in bad)
        msg = f"{len(bad)} of {len(plans)} occurrences cannot be moved, nothing moved: {listing}"
        if any(p.conflict for p in bad):
            raise ConflictError(msg)
        raise ValidationError("--at", msg)
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
        _flush(session)
        detail = ("override: " + "; ".join(sorted(set(overridden)))) if overridden else None
        events.append(audit.Event("update", "appointment", a.id, patient_id=a.patient_id, fields=fields, detail=detail))
    audit.record_many(ctx, events)
    return _outs(ctx, [a.id for a, _ in plans])


# ---- queries -------------------------------------------------------------------------------


def _statuses(status) -> list[str] | None:
    if not status:
        return None
    out = []
    for s in str(status).split(","):
        s = s.strip().lower().replace("-", "_")
        if not s:
            continue
        s = {"noshow": "no_show", "inroom": "in_room", "checked_in": "arrived"}.get(s, s)
        if s not in STATUSES:
            raise ValidationError("--status", f"{s!r} is not one of: {', '.join(STATUSES)}")
        out.append(s)
    return out or None


def list_appointments(
    ctx,
    *,
    day=None,
    week: bool = False,
    start=None,
    end=None,
    provider=None,
    location=None,
    patient=None,
    status=None,
    include_cancelled: bool = False,
) -> list[AppointmentOut]:
    """The day sheet (or a week, or a date range) in each location's own zone. Cancelled visits
    are left out unless asked for (`status` or `include_cancelled`)."""
    require(ctx.actor, "appointment.read")
    session = ctx.session
    locs = (
        [find_location(ctx, location)]
        if location
        else list(
            session.execute(sa.select(Location).where(Location.org_id == ctx.org_id).order_by(Location.id)).scalars()
        )
    )
    q = _select_out().where(Appointment.org_id == ctx.org_id)
    spans = []
    for loc in locs:
        today = lt.local_now(ctx.now(), loc.tz).date()
        if start or end:
            d0 = lt.parse_day("--from", start, today=today) if start else today
            d1 = lt.parse_day("--to", end, today=today) if end else d0
            if d1 < d0:
                raise ValidationError("--to", f"{d1} is before --from {d0}")
        else:
            d0 = lt.parse_day("--date", day, today=today)
            if week:
                d0 = d0 - dt.timedelta(days=d0.weekday())
            d1 = d0 + dt.timedelta(days=6 if week else 0)
        lo, _ = lt.day_bounds_utc(d0, loc.tz)
        _, hi = lt.day_bounds_utc(d1, loc.tz)
        spans.append(
            sa.and_(Appointment.location_id == loc.id, Appointment.start_utc >= lo, Appointment.start_utc < hi)
        )
    q = q.where(sa.or_(*spans)) if spans else q.where(sa.false())
    if provider:
        q = q.where(Appointment.provider_id == find_provider(ctx, provider).id)
    if patient:
        q = q.where(Appointment.patient_id == find_patient(ctx, patient, field="patient", active=True).id)
    wanted = _statuses(status)
    if wanted:
        q = q.where(Appointment.status.in_(wanted))
    elif not include_cancelled:
        q = q.where(Appointment.status != "cancelled")
    rows = [_row_out(r) for r in session.execute(q.order_by(Appointment.start_utc, Provider.last_name))]
    if rows:
        audit.record(
            ctx,
            audit.Event(
                "read",
                "appointment",
                None,
                patient_ids=sorted({r.patient_id for r in rows}),
                detail=f"list of {len(rows)}",
            ),
        )
    return rows


def show(ctx, appointment_id) -> AppointmentOut:
    require(ctx.actor, "appointment.read")
    appt = load_appointment(ctx, appointment_id)
    audit.record(ctx, audit.Event("read", "appointment", appt.id, patient_id=appt.patient_id))
    return _outs(ctx, [appt.id])[0]


def history(ctx, patient, *, limit: int = 200) -> list[AppointmentOut]:
    """A patient's visits, newest first, every status."""
    require(ctx.actor, "appointment.read")
    pat = find_patient(ctx, patient, field="patient", active=True)
    rows = ctx.session.execute(
        _select_out().where(Appointment.patient_id == pat.id).order_by(Appointment.start_utc.desc()).limit(limit)
    ).all()
    audit.record(ctx, audit.Event("read", "appointment", None, patient_id=pat.id, detail=f"history of {len(rows)}"))
    return [_row_out(r) for r in rows]


# ---- slot search ---------------------------------------------------------------------------


def _grid(t: dt.datetime, tz: str, step: int) -> dt.datetime:
    """The first time >= t on the location's local step grid (minutes past local midnight)."""
    local = lt.to_local(t, tz)
    minutes = local.hour * 60 + local.minute
    extra = (-minutes) % step
    if extra == 0 and local.second == 0 and local.microsecond == 0:
        return t
    if extra == 0:
        extra = step
    return t.replace(second=0, microsecond=0) + dt.timedelta(minutes=extra)


def _slots_for(
    ctx,
    prov: Provider,
    loc: Location,
    atype: AppointmentType,
    after: dt.datetime,
    before: dt.datetime,
    step: int,
    patient_id: int | None,
    needs_room: bool,
) -> Iterator[tuple[dt.datetime, int, int, int | None]]:
    """Free slots of one provider at one location, earliest first, read a window of days at a time."""
    session = ctx.session
    dur = dt.timedelta(minutes=atype.duration_min)
    block = dur + dt.timedelta(minutes=atype.buffer_min)
    rooms = []
    if needs_room:
        rooms = list(
            session.execute(
                sa.select(Room.id)
                .where(Room.location_id == loc.id, Room.active.is_(True), Room.kind != "equipment")
                .order_by(Room.name)
            ).scalars()
        )
        if not rooms:
            return
    day = lt.to_local(after, loc.tz).date()
    last_day = lt.to_local(before, loc.tz).date()
    span = 7
    while day <= last_day:
        stop = min(last_day, day + dt.timedelta(days=span - 1))
        lo, _ = lt.day_bounds_utc(day, loc.tz)
        _, hi = lt.day_bounds_utc(stop, loc.tz)
        lo = max(lo, after)
        hi = min(hi, before)
        opens = [(s, e) for s, e in open_time(session, ctx.org_id, prov.id, loc, day, stop) if e > lo and s < hi]
        if opens:
            busy = session.execute(
                sa.select(Appointment.start_utc, Appointment.block_end_utc)
                .where(
                    Appointment.provider_id == prov.id,
                    Appointment.status.in_(BLOCKING_STATUSES),
                    Appointment.start_utc < hi + block,
                    Appointment.start_utc >= lo - LOOKBACK,
                    Appointment.block_end_utc > lo,
                )
                .order_by(Appointment.start_utc)
            ).all()
            busy = merge((s, e) for s, e in busy)
            if patient_id is not None:
                pbusy = session.execute(
                    sa.select(Appointment.start_utc, Appointment.end_utc).where(
                        Appointment.patient_id == patient_id,
                        Appointment.status.in_(BLOCKING_STATUSES),
                        Appointment.start_utc < hi + block,
                        Appointment.end_utc > lo,
                    )
                ).all()
                busy = merge(list(busy) + [(s, e) for s, e in pbusy])
            room_busy: dict[int, list] = {}
            if rooms:
                for rid, s, e in session.execute(
                    sa.select(Appointment.room_id, Appointment.start_utc, Appointment.block_end_utc).where(
                        Appointment.room_id.in_(rooms),
                        Appointment.status.in_(BLOCKING_STATUSES),
                        Appointment.start_utc < hi + block,
                        Appointment.start_utc >= lo - LOOKBACK,
                        Appointment.block_end_utc > lo,
                    )
                ):
                    room_busy.setdefault(rid, []).append((s, e))
            starts = [s for s, _ in busy]
            free = subtract(opens, busy)
            for fs, fe in free:
                t = _grid(max(fs, lo), loc.tz, step)
                while t + dur <= fe and t < hi:
                    # the buffer after the visit must not run into the next booking
                    i = bisect.bisect_right(starts, t)
                    if i < len(starts) and starts[i] < t + block:
                        break
                    room_id = None
                    if rooms:
                        room_id = next(
                            (r for r in rooms if not any(s < t + block and e > t for s, e in room_busy.get(r, ()))),
                            None,
                        )
                        if room_id is None:
                            t += dt.timedelta(minutes=step)
                            continue
                    yield (t, prov.id, loc.id, room_id)
                    t += dt.timedelta(minutes=step)
        day = stop + dt.timedelta(days=1)
        span = min(span * 2, 60)


def find_slot(
    ctx,
    *,
    type,
    provider=None,
    any_provider: bool = False,
    location=None,
    after=None,
    before=None,
    count: int = 5,
    patient=None,
) -> list[SlotOut]:
    """The earliest free slots for an appointment type: inside working hours, outside time off,
    clear of bookings (with buffers) of the provider and the patient, with a free room when
    the type needs one. Without --provider every active provider (at --location) is searched."""
    require(ctx.actor, "schedule.read")
    session = ctx.session
    if provider and any_provider:
        raise ValidationError("--any-provider", "give either --provider or --any-provider")
    try:
        count = int(count)
    except (TypeError, ValueError):
        raise ValidationError("--count", f"{count!r} is not a number") from None
    if not 1 <= count <= 500:
        raise ValidationError("--count", "must be between 1 and 500")
    atype = find_type(ctx, type)
    loc_filter = find_location(ctx, location) if location else None
    if provider:
        provs = [find_provider(ctx, provider)]
        pairs = (
            [(provs[0], provider_location(ctx, provs[0], location))]
            if location
            else [
                (provs[0], session.get(Location, lid))
                for lid in session.execute(
                    sa.select(ProviderLocation.location_id).where(ProviderLocation.provider_id == provs[0].id)
                ).scalars()
            ]
        )
    else:
        q = (
            sa.select(Provider, Location)
            .join(ProviderLocation, ProviderLocation.provider_id == Provider.id)
            .join(Location, Location.id == ProviderLocation.location_id)
            .where(Provider.org_id == ctx.org_id, Provider.active.is_(True))
            .order_by(Provider.id, Location.id)
        )
        if loc_filter is not None:
            q = q.where(Location.id == loc_filter.id)
        pairs = [tuple(r) for r in session.execute(q)]
    pat = find_patient(ctx, patient, field="patient", active=True) if patient else None
    now = ctx.now()
    tz = (
        loc_filter
        or (pairs[0][1] if pairs else None)
        or session.execute(sa.select(Location).where(Location.org_id == ctx.org_id)).scalars().first()
    ).tz
    lo = lt.parse_local("--after", after, tz, now=now) if after else now
    lo = max(lo, now)
    hi = lt.parse_local("--before", before, tz, now=now) if before else lo + dt.timedelta(days=FIND_SLOT_DAYS)
    if hi <= lo:
        raise ValidationError("--before", "is not after --after (or now)")
    step = session.get(Organization, ctx.org_id).slot_step_min
    gens = [_slots_for(ctx, p, loc, atype, lo, hi, step, pat.id if pat else None, atype.needs_room) for p, loc in pairs]
    by_id = {p.id: p for p, _ in pairs}
    locs = {loc.id: loc for _, loc in pairs}
    out: list[SlotOut] = []
    room_names: dict[int, str] = {}
    for t, pid, lid, rid in heapq.merge(*gens):
        loc = locs[lid]
        if rid is not None and rid not in room_names:
            room_names[rid] = session.get(Room, rid).name
        out.append(
            SlotOut(
                start=lt.to_local(t, loc.tz),
                end=lt.to_local(t + dt.timedelta(minutes=atype.duration_min), loc.tz),
                provider_id=pid,
                provider=provider_name(by_id[pid]),
                location_id=lid,
                location=loc.name,
                room_id=rid,
                room=room_names.get(rid),
            )
        )
        if len(out) >= count:
            break
    return out


# ---- calendar feed -------------------------------------------------------------------------


def ical(ctx, *, provider, start=None, end=None, with_names: bool = False) -> bytes:
    """An RFC 5545 calendar of a provider's appointments (no patient names unless asked; asking
    is audited as a read of those patients)."""
    require(ctx.actor, "appointment.export")
    if with_names:
        require(ctx.actor, "appointment.read")
    from icalendar import Calendar
    from icalendar import Event as VEvent

    prov = find_provider(ctx, provider)
    now = ctx.now()
    today = now.date()
    d0 = lt.parse_day("--from", start, today=today) if start else today - dt.timedelta(days=30)
    d1 = lt.parse_day("--to", end, today=today) if end else today + dt.timedelta(days=180)
    if d1 < d0:
        raise ValidationError("--to", f"{d1} is before --from {d0}")
    lo = dt.datetime.combine(d0, dt.time(), tzinfo=dt.UTC) - dt.timedelta(hours=14)
    hi = dt.datetime.combine(d1 + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC) + dt.timedelta(hours=12)
    rows = ctx.session.execute(
        _select_out()
        .where(
            Appointment.provider_id == prov.id,
            Appointment.start_utc >= lo,
            Appointment.start_utc < hi,
            Appointment.status != "no_show",
        )
        .order_by(Appointment.start_utc)
    ).all()
    cal = Calendar()
    cal.add("prodid", "-//hpms//Practice Management//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"{provider_name(prov)} appointments")
    patients = set()
    for r in rows:
        a = r[0]
        ev = VEvent()
        ev.add("uid", f"appointment-{a.id}@hpms")
        ev.add("dtstamp", a.updated_at)
        ev.add("dtstart", a.start_utc)
        ev.add("dtend", a.end_utc)
        summary = r.type_name
        if with_names:
            summary = f"{r.type_name}: {r.first_name} {r.last_name}"
            patients.add(a.patient_id)
        ev.add("summary", summary)
        ev.add("location", r.loc_name + (f", {r.room_name}" if r.room_name else ""))
        ev.add("status", {"cancelled": "CANCELLED", "booked": "TENTATIVE"}.get(a.status, "CONFIRMED"))
        ev.add("sequence", a.version - 1)
        cal.add_component(ev)
    if patients:
        audit.record(
            ctx,
            audit.Event(
                "read",
                "appointment",
                None,
                patient_ids=sorted(patients),
                detail=f"calendar feed of provider {prov.id} with names",
            ),
        )
    return cal.to_ical()


def can_override(ctx) -> bool:
    return allowed(ctx.actor.roles, "appointment.override")
