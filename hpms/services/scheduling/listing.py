"""Reading appointments: the day sheet (a day, a week or a range of days), one visit, a
patient's history and a provider's calendar feed; and the appointment as every appointment
service returns it, names resolved and times in its location's zone."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.errors import ValidationError
from hpms.models import Appointment, AppointmentOut, AppointmentType, Location, Patient, Provider, Room
from hpms.models.scheduling import STATUSES
from hpms.services.lookups import find_location, find_patient, find_provider, load_appointment, provider_name
from hpms.services.platform import audit
from hpms.services.platform import localtime as lt
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

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


def select_out() -> sa.Select:
    """Appointments with the names their output shows (patient, provider, location, room, type)."""
    return (
        sa.select(*_OUT_COLS)
        .join(Patient, Patient.id == Appointment.patient_id)
        .join(Provider, Provider.id == Appointment.provider_id)
        .join(Location, Location.id == Appointment.location_id)
        .join(AppointmentType, AppointmentType.id == Appointment.type_id)
        .outerjoin(Room, Room.id == Appointment.room_id)
    )


def appointment_out(
    a: Any, *, patient: str, mrn: str, provider: str, location: str, tz: str, room: str | None, type_name: str
) -> AppointmentOut:
    """The output of an appointment (the ORM object, or a row with its columns) in the zone `tz`."""
    z = lt.zone(tz)

    def loc(t: dt.datetime | None) -> dt.datetime | None:
        return t.astimezone(z) if t is not None else None

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


def row_out(r: Any) -> AppointmentOut:
    """The output of a row of `select_out()`."""
    prov = f"{r.p_first} {r.p_last}" + (f", {r.credentials}" if r.credentials else "")
    return appointment_out(
        r[0],
        patient=f"{r.first_name} {r.last_name}",
        mrn=r.mrn,
        provider=prov,
        location=r.loc_name,
        tz=r.tz,
        room=r.room_name,
        type_name=r.type_name,
    )


def outputs(ctx: Ctx, ids: list[int]) -> list[AppointmentOut]:
    """The output of the appointments `ids`, earliest first (no permission check, no audit: the
    calling service made its own)."""
    if not ids:
        return []
    rows = ctx.session.execute(select_out().where(col(Appointment.id).in_(ids)).order_by(Appointment.start_utc)).all()
    return [row_out(r) for r in rows]


# ---- the day sheet, one visit, a patient's history -----------------------------------------


def _statuses(status: str | None) -> list[str] | None:
    if not status:
        return None
    out = []
    for s in str(status).split(","):
        s = s.strip().lower().replace("-", "_")
        if not s:
            continue
        s = {"noshow": "no_show", "inroom": "in_room", "checked_in": "arrived"}.get(s, s)
        if s not in STATUSES:
            raise ValidationError("status", f"{s!r} is not one of: {', '.join(STATUSES)}")
        out.append(s)
    return out or None


def list_appointments(
    ctx: Ctx,
    *,
    day: str | dt.date | None = None,
    week: bool = False,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    provider: str | int | None = None,
    location: str | int | None = None,
    patient: str | int | None = None,
    status: str | None = None,
    include_cancelled: bool = False,
) -> list[AppointmentOut]:
    """The day sheet (or a week, or a date range from `start` to `end`) in each location's own
    zone. Cancelled visits are left out unless asked for (`status` or `include_cancelled`)."""
    require(ctx.actor, "appointment.read")
    session = ctx.session
    locs = (
        [find_location(ctx, location, field="location")]
        if location
        else list(
            session.execute(sa.select(Location).where(Location.org_id == ctx.org_id).order_by(Location.id)).scalars()
        )
    )
    q = select_out().where(Appointment.org_id == ctx.org_id)
    spans = []
    for loc in locs:
        today = lt.local_now(ctx.now(), loc.tz).date()
        if start or end:
            d0 = lt.parse_day("start", start, today=today) if start else today
            d1 = lt.parse_day("end", end, today=today) if end else d0
            if d1 < d0:
                raise ValidationError("end", f"{d1} is before the start of the range, {d0}")
        else:
            # the field of `day` is `date`, the name the faces ask for it by
            d0 = lt.parse_day("date", day, today=today)
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
    rows = [row_out(r) for r in session.execute(q.order_by(Appointment.start_utc, Provider.last_name))]
    audit.record_list(ctx, "appointment", (r.patient_id for r in rows), len(rows))
    return rows


def show(ctx: Ctx, appointment_id: str | int) -> AppointmentOut:
    """One visit with its whole lifecycle."""
    require(ctx.actor, "appointment.read")
    appt = load_appointment(ctx, appointment_id)
    assert appt.id is not None
    audit.record(ctx, audit.Event("read", "appointment", appt.id, patient_id=appt.patient_id))
    return outputs(ctx, [appt.id])[0]


def history(ctx: Ctx, patient: str | int | None, *, limit: int = 200) -> list[AppointmentOut]:
    """A patient's visits, newest first, every status."""
    require(ctx.actor, "appointment.read")
    pat = find_patient(ctx, patient, field="patient", active=True)
    rows = ctx.session.execute(
        select_out().where(Appointment.patient_id == pat.id).order_by(Appointment.start_utc.desc()).limit(limit)
    ).all()
    audit.record(ctx, audit.Event("read", "appointment", None, patient_id=pat.id, detail=f"history of {len(rows)}"))
    return [row_out(r) for r in rows]


# ---- calendar feed -------------------------------------------------------------------------


def ical(
    ctx: Ctx,
    *,
    provider: str | int | None,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    with_names: bool = False,
) -> bytes:
    """An RFC 5545 calendar of a provider's appointments from `start` to `end` (no patient names
    unless asked; asking is audited as a read of those patients)."""
    require(ctx.actor, "appointment.export")
    if with_names:
        require(ctx.actor, "appointment.read")
    # icalendar takes a tenth of a second to import: only the feed pays for it
    from icalendar import Calendar
    from icalendar import Event as VEvent

    prov = find_provider(ctx, provider)
    now = ctx.now()
    today = now.date()
    d0 = lt.parse_day("start", start, today=today) if start else today - dt.timedelta(days=30)
    d1 = lt.parse_day("end", end, today=today) if end else today + dt.timedelta(days=180)
    if d1 < d0:
        raise ValidationError("end", f"{d1} is before the start of the range, {d0}")
    lo = dt.datetime.combine(d0, dt.time(), tzinfo=dt.UTC) - dt.timedelta(hours=14)
    hi = dt.datetime.combine(d1 + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC) + dt.timedelta(hours=12)
    rows = ctx.session.execute(
        select_out()
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
