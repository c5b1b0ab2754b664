"""What the full-screen scheduler shows: a location's day as columns (providers or rooms) of
open time, time off and appointment blocks, the patient flow board, and a cheap change marker
the screen polls to know when to reload.

Minutes are counted from the location's local midnight on wall-clock time, so a column reads
08:00-17:00 on the days clocks change as on any other day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.models import (
    Appointment,
    AppointmentType,
    Location,
    Patient,
    Provider,
    ProviderLocation,
    Room,
    TimeOff,
    WorkingHours,
)
from hpms.services.lookups import display_zone, provider_name, resolve_location
from hpms.services.people import coverage, patients
from hpms.services.platform import audit
from hpms.services.platform import localtime as lt
from hpms.services.platform.permissions import allowed, require
from hpms.services.scheduling.availability import hours_intervals, subtract, time_off_intervals
from hpms.services.scheduling.listing import history

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

# (count, latest change, version sum) of the appointments, (count, last id) of the time off and
# of the working hours
Marker = tuple[Any, ...]


@dataclass
class Column:
    key: int  # provider id or room id (0: appointments without a room)
    label: str
    open: list[tuple[int, int]] = field(default_factory=list)  # local minutes [start, end)
    off: list[tuple[int, int, str]] = field(default_factory=list)


@dataclass
class Block:
    id: int
    column: int
    start_min: int
    end_min: int
    block_end_min: int
    start: dt.datetime  # local, aware
    end: dt.datetime
    status: str
    patient_id: int
    patient: str
    mrn: str
    type: str
    type_id: int
    provider_id: int
    provider: str
    room_id: int | None
    room: str | None
    reason: str | None
    version: int
    arrived_at: dt.datetime | None
    roomed_at: dt.datetime | None
    completed_at: dt.datetime | None
    eligibility: str | None = None  # latest insurance check ("active", "error: ...", "not checked"); None: not shown
    # where the visit stands with the patient (see hpms.services.messages.confirmations); None:
    # not shown (a visit past booked/confirmed, or a user who may not read messages)
    confirmation: str | None = None


@dataclass
class DayView:
    location_id: int
    location: str
    tz: str
    day: dt.date
    mode: str
    columns: list[Column]
    blocks: list[Block]
    first_min: int
    last_min: int
    now_min: int | None
    marker: Marker
    can_book: bool
    can_update: bool


def locations(ctx: Ctx) -> list[tuple[int, str, str]]:
    """(id, name, zone) of each location of the practice."""
    require(ctx.actor, "location.read")
    rows = ctx.session.execute(
        sa.select(Location.id, Location.name, Location.tz).where(Location.org_id == ctx.org_id).order_by(Location.id)
    ).all()
    return [(r.id, r.name, r.tz) for r in rows]


def _minutes(t: dt.datetime, tz: str, day: dt.date) -> int:
    return _of_day(lt.to_local(t, tz), day)


def _of_day(local: dt.datetime, day: dt.date) -> int:
    """Minutes of a local time from `day`'s midnight (wall clock)."""
    days = (local.date() - day).days
    return days * 1440 + local.hour * 60 + local.minute


def change_marker(ctx: Ctx, location_id: int, day: dt.date) -> Marker:
    """Changes to the day's appointments, time off or hours at a location, as a small tuple
    (one indexed aggregate per table, no patient data: polled every second or two)."""
    require(ctx.actor, "schedule.read")
    loc = ctx.session.get(Location, location_id)
    assert loc is not None
    tz = loc.tz
    lo, hi = lt.day_bounds_utc(day, tz)
    # every change of an appointment bumps its version: the sum moves even when two changes
    # carry the same timestamp
    a = ctx.session.execute(
        sa.select(sa.func.count(), sa.func.max(Appointment.updated_at), sa.func.sum(Appointment.version)).where(
            Appointment.location_id == location_id, Appointment.start_utc >= lo, Appointment.start_utc < hi
        )
    ).one()
    t = ctx.session.execute(
        sa.select(sa.func.count(), sa.func.max(TimeOff.id)).where(TimeOff.org_id == ctx.org_id)
    ).one()
    w = ctx.session.execute(
        sa.select(sa.func.count(), sa.func.max(WorkingHours.id)).where(WorkingHours.location_id == location_id)
    ).one()
    return (a[0], str(a[1]), a[2], t[0], t[1], w[0], w[1])


# what a block of the day view shows
_BLOCK_COLUMNS = (
    Appointment.id,
    Appointment.provider_id,
    Appointment.room_id,
    Appointment.patient_id,
    Appointment.type_id,
    Appointment.start_utc,
    Appointment.end_utc,
    Appointment.block_end_utc,
    Appointment.status,
    Appointment.reason,
    Appointment.version,
    Appointment.arrived_at,
    Appointment.roomed_at,
    Appointment.completed_at,
    Patient.first_name,
    Patient.last_name,
    Patient.mrn,
    AppointmentType.name.label("type_name"),
    Room.name.label("room_name"),
    Provider.first_name.label("p_first"),
    Provider.last_name.label("p_last"),
    Provider.credentials,
)


def day_view(
    ctx: Ctx,
    *,
    location: str | int | None = None,
    day: dt.date | None = None,
    mode: str = "provider",
    include_cancelled: bool = False,
    confirmations: bool = True,
) -> DayView:
    """One location's day for the scheduler grid. Reads patient names: audited as one read.
    `confirmations`: also where each visit stands with the patient (one more query), for users
    who may read messages."""
    require(ctx.actor, "appointment.read")
    session = ctx.session
    loc = resolve_location(ctx, location)
    tz = loc.tz
    today = lt.local_now(ctx.now(), tz).date()
    day = day or today
    lo, hi = lt.day_bounds_utc(day, tz)
    provs = list(
        session.execute(
            sa.select(Provider)
            .join(ProviderLocation, ProviderLocation.provider_id == Provider.id)
            .where(ProviderLocation.location_id == loc.id, Provider.active.is_(True))
            .order_by(Provider.last_name, Provider.first_name)
        ).scalars()
    )
    rules_by: dict[int, list[Any]] = {}
    for r in session.execute(
        sa.select(WorkingHours.__table__).where(
            WorkingHours.location_id == loc.id,
            WorkingHours.effective_from <= day,
            sa.or_(col(WorkingHours.effective_to).is_(None), col(WorkingHours.effective_to) >= day),
        )
    ).all():
        rules_by.setdefault(r.provider_id, []).append(r)
    day_lo = dt.datetime.combine(day, dt.time())
    day_hi = day_lo + dt.timedelta(days=1)
    offs = session.execute(
        sa.select(TimeOff.__table__).where(
            TimeOff.org_id == ctx.org_id,
            TimeOff.starts_local < day_hi,
            TimeOff.ends_local > day_lo,
            sa.or_(TimeOff.location_id == loc.id, col(TimeOff.location_id).is_(None)),
        )
    ).all()
    q = (
        sa.select(*_BLOCK_COLUMNS)
        .join(Patient, Patient.id == Appointment.patient_id)
        .join(AppointmentType, AppointmentType.id == Appointment.type_id)
        .join(Provider, Provider.id == Appointment.provider_id)
        .outerjoin(Room, Room.id == Appointment.room_id)
        .where(Appointment.location_id == loc.id, Appointment.start_utc >= lo, Appointment.start_utc < hi)
        .order_by(Appointment.start_utc)
    )
    if not include_cancelled:
        q = q.where(Appointment.status != "cancelled")
    rows = session.execute(q).all()
    columns: list[Column] = []
    first, last = 8 * 60, 17 * 60
    if mode == "room":
        for room in session.execute(
            sa.select(Room).where(Room.location_id == loc.id, Room.active.is_(True)).order_by(Room.name)
        ).scalars():
            columns.append(Column(key=room.id, label=room.name, open=[(0, 1440)]))
        columns.append(Column(key=0, label="No room", open=[(0, 1440)]))
    else:
        for p in provs:
            rules = rules_by.get(p.id, [])
            hours = hours_intervals(rules, tz, day, day)
            mine = [o for o in offs if o.provider_id in (None, p.id)]
            off_utc = time_off_intervals(mine, tz)
            open_ = subtract(hours, off_utc)
            column = Column(
                key=p.id, label=provider_name(p), open=[(_minutes(s, tz, day), _minutes(e, tz, day)) for s, e in open_]
            )
            for o in mine:
                s = max(_minutes(lt.wall_to_utc(o.starts_local, tz), tz, day), 0)
                e = min(_minutes(lt.wall_to_utc(o.ends_local, tz), tz, day), 1440)
                column.off.append((s, e, o.reason or ("holiday" if o.provider_id is None else "time off")))
            columns.append(column)
            for s, e in column.open:
                first, last = min(first, s), max(last, e)
    blocks = []
    for r in rows:
        # each time converted once (the block's end is most often the visit's end)
        start, end = lt.to_local(r.start_utc, tz), lt.to_local(r.end_utc, tz)
        s, e = _of_day(start, day), _of_day(end, day)
        held = e if r.block_end_utc == r.end_utc else _minutes(r.block_end_utc, tz, day)
        first, last = min(first, s), max(last, e)
        blocks.append(
            Block(
                id=r.id,
                column=(r.room_id or 0) if mode == "room" else r.provider_id,
                start_min=s,
                end_min=e,
                block_end_min=held,
                start=start,
                end=end,
                status=r.status,
                patient_id=r.patient_id,
                patient=f"{r.last_name}, {r.first_name}",
                mrn=r.mrn,
                type=r.type_name,
                type_id=r.type_id,
                provider_id=r.provider_id,
                provider=f"{r.p_first} {r.p_last}" + (f", {r.credentials}" if r.credentials else ""),
                room_id=r.room_id,
                room=r.room_name,
                reason=r.reason,
                version=r.version,
                arrived_at=r.arrived_at,
                roomed_at=r.roomed_at,
                completed_at=r.completed_at,
            )
        )
    if blocks and allowed(ctx.actor.roles, "eligibility.read"):
        # billing stands above scheduling (its encounters read the schedule): imported here
        from hpms.services.billing import eligibility

        # one query for the whole day; covered by the day view's audited read of these patients
        found = eligibility.statuses(ctx, [b.patient_id for b in blocks], day)
        for b in blocks:
            b.eligibility = found[b.patient_id].text
    if blocks and confirmations and allowed(ctx.actor.roles, "messages.read"):
        # one query for the whole day; covered by the day view's audited read of these patients
        from hpms.services.messages import confirmations as conf

        states = conf.states(ctx, [b.id for b in blocks])
        for b in blocks:
            b.confirmation = states.get(b.id)
    if blocks:
        audit.record(
            ctx,
            audit.Event(
                "read",
                "appointment",
                None,
                patient_ids=sorted({b.patient_id for b in blocks}),
                detail=f"day view {loc.name} {day}",
            ),
        )
    now_min = _minutes(ctx.now(), tz, day) if day == today else None
    return DayView(
        location_id=loc.id,
        location=loc.name,
        tz=tz,
        day=day,
        mode=mode,
        columns=columns,
        blocks=blocks,
        first_min=max(0, first - first % 60),
        last_min=min(1440, last + (-last) % 60),
        now_min=now_min,
        marker=change_marker(ctx, loc.id, day),
        can_book=allowed(ctx.actor.roles, "appointment.book"),
        can_update=allowed(ctx.actor.roles, "appointment.update"),
    )


FLOW_GROUPS = (
    ("expected", ("booked", "confirmed")),
    ("waiting", ("arrived",)),
    ("in room", ("in_room",)),
    ("done", ("completed",)),
    ("no-show", ("no_show",)),
)


def flow_board(
    ctx: Ctx, *, location: str | int | None = None, day: dt.date | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Today's patients by stage, with minutes waited (since arrival) and in room."""
    view = day_view(ctx, location=location, day=day, confirmations=False)
    now = ctx.now()
    out: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in FLOW_GROUPS}
    for b in view.blocks:
        for name, statuses in FLOW_GROUPS:
            if b.status in statuses:
                waited = None
                if b.arrived_at:
                    until = b.roomed_at or b.completed_at or now
                    waited = int((until - b.arrived_at).total_seconds() // 60)
                in_room = None
                if b.roomed_at:
                    in_room = int(((b.completed_at or now) - b.roomed_at).total_seconds() // 60)
                out[name].append(
                    {
                        "id": b.id,
                        "time": b.start.strftime("%H:%M"),
                        "patient": b.patient,
                        "mrn": b.mrn,
                        "provider": b.provider,
                        "type": b.type,
                        "room": b.room,
                        "status": b.status,
                        "waited_min": waited,
                        "in_room_min": in_room,
                    }
                )
    return out


def patient_details(ctx: Ctx, patient: str | int, *, comms_limit: int = 30) -> dict[str, Any]:
    """Demographics, coverage, upcoming and past visits of one patient, and the newest
    `comms_limit` entries of their communication log (None for a user who may not read
    messages), with the zone to show its times in (each read audited by the service that does
    it)."""
    p = patients.show(ctx, patient)
    cov = coverage.list_coverage(ctx, p.id) if allowed(ctx.actor.roles, "coverage.read") else []
    visits = history(ctx, p.mrn, limit=100)
    elig = None
    if allowed(ctx.actor.roles, "eligibility.read"):
        # billing stands above scheduling (its encounters read the schedule): imported here
        from hpms.services.billing import eligibility

        elig = eligibility.latest(ctx, [p.id])[p.id]
    log = None
    if allowed(ctx.actor.roles, "messages.read"):
        # imported here: messaging modules use scheduling ones (replies confirm visits)
        from hpms.services.messages import comms

        log = comms.log(ctx, p.mrn, limit=comms_limit)
    now = ctx.now()
    return {
        "patient": p,
        "coverage": cov,
        "eligibility": elig,
        "comms": log,
        "zone": display_zone(ctx),
        "upcoming": sorted((v for v in visits if v.start > now), key=lambda v: v.start),
        "past": [v for v in visits if v.start <= now],
    }


def dashboard(
    ctx: Ctx, *, location: str | int | None = None, day: dt.date | None = None, days: int = 14
) -> dict[str, Any]:
    """Today's figures at a location (the day view's counts by status, no-shows, utilization of
    the open time) and the last `days` days of the appointments-by-day report for two charts."""
    # the reports stand above every domain, scheduling included: imported here
    from hpms.services import reports

    view = day_view(ctx, location=location, day=day, include_cancelled=True, confirmations=False)
    by: dict[str, int] = {}
    for b in view.blocks:
        by[b.status] = by.get(b.status, 0) + 1
    open_min = sum(e - s for c in view.columns for s, e in c.open)
    booked_min = sum(b.end_min - b.start_min for b in view.blocks if b.status not in ("cancelled", "no_show"))
    start = view.day - dt.timedelta(days=days - 1)
    _, _, rows = reports.run(
        ctx, "appointments-by-day", start=start.isoformat(), end=view.day.isoformat(), location=str(view.location_id)
    )
    series = [{"day": r[0], "booked": r[1], "completed": r[2], "no_show": r[3], "cancelled": r[4]} for r in rows]
    active = sum(v for k, v in by.items() if k != "cancelled")
    return {
        "location": view.location,
        "day": view.day,
        "kpis": {
            "appointments": active,
            "waiting": by.get("arrived", 0),
            "in_room": by.get("in_room", 0),
            "completed": by.get("completed", 0),
            "no_shows": by.get("no_show", 0),
            "cancelled": by.get("cancelled", 0),
            "utilization_pct": round(100 * booked_min / open_min, 1) if open_min else None,
        },
        "series": series,
    }
