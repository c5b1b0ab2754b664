"""Free-slot search: the earliest times an appointment type fits, on the practice's slot grid,
inside working hours and outside time off, clear of the bookings (with buffers) of the
provider and the patient, with a free room when the type needs one."""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.db import Prepared
from hpms.errors import Action, NotFoundError, ValidationError
from hpms.models import (
    Appointment,
    AppointmentType,
    Location,
    Organization,
    Provider,
    ProviderLocation,
    Room,
    SlotOut,
)
from hpms.models.scheduling import BLOCKING_STATUSES
from hpms.services.lookups import find_location, find_patient, find_provider, find_type, provider_name
from hpms.services.platform import localtime as lt
from hpms.services.platform.permissions import require
from hpms.services.scheduling.availability import (
    Interval,
    hours_and_time_off,
    hours_intervals,
    merge,
    provider_location,
    rule_rows,
    subtract,
    time_off_intervals,
    time_off_rows,
)
from hpms.services.scheduling.guards import LOOKBACK

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from hpms.services.platform.context import Ctx

FIND_SLOT_DAYS = 90

# (start UTC, provider id, location id, room id or None): merged across providers by start
Slot = tuple[dt.datetime, int, int, int | None]
# (provider, location, [after, before) in UTC): one provider's part of a search
Search = tuple[Provider, Location, dt.datetime, dt.datetime]

# Each window of each provider's search runs the first (the provider's bookings, on its
# (provider_id, start_utc) index); a search for a patient runs the second once (the patient's
# visits, on (patient_id, start_utc)). On the driver: SQLAlchemy's per-execution work cost more
# than the database's answer, times every provider at a location.
_A = Appointment.__table__
_BOOKED = Prepared(
    sa.select(_A.c.start_utc, _A.c.block_end_utc)
    .where(
        _A.c.provider_id == sa.bindparam("provider_id"),
        _A.c.status.in_(BLOCKING_STATUSES),
        _A.c.start_utc < sa.bindparam("hi"),
        _A.c.start_utc >= sa.bindparam("lo_back"),
        _A.c.block_end_utc > sa.bindparam("lo"),
    )
    .order_by(_A.c.start_utc)
)
_PATIENT_BUSY = Prepared(
    sa.select(_A.c.start_utc, _A.c.end_utc).where(
        _A.c.patient_id == sa.bindparam("patient_id"),
        _A.c.status.in_(BLOCKING_STATUSES),
        _A.c.start_utc < sa.bindparam("hi"),
        _A.c.end_utc > sa.bindparam("lo"),
    )
)


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
    ctx: Ctx,
    prov: Provider,
    loc: Location,
    atype: AppointmentType,
    after: dt.datetime,
    before: dt.datetime,
    step: int,
    patient_busy: list[Interval],
    needs_room: bool,
    first_span: int = 7,
    hours_and_off: tuple[Sequence[Any], Sequence[Any]] | None = None,
) -> Iterator[Slot]:
    """Free slots of one provider at one location, earliest first, read a window of days at a
    time (`first_span` days first, then twice as many each time); `patient_busy` holds the
    patient's visits over the whole search (none without one); `hours_and_off`, the working-hours
    rules and time off of the search when they were read already."""
    assert prov.id is not None and loc.id is not None
    session = ctx.session
    dur = dt.timedelta(minutes=atype.duration_min)
    block = dur + dt.timedelta(minutes=atype.buffer_min)
    rooms: list[int] = []
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
    # the working hours and time off of the whole search, read once (a window's bookings each time)
    if hours_and_off is None:
        rules = rule_rows(session, prov.id, loc.id, day, last_day)
        off_rows = time_off_rows(
            session,
            ctx.org_id,
            prov.id,
            loc.id,
            dt.datetime.combine(day, dt.time()),
            dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time()),
        )
    else:
        rules, off_rows = hours_and_off
    if not rules:
        return
    off = time_off_intervals(off_rows, loc.tz)
    span = first_span
    while day <= last_day:
        stop = min(last_day, day + dt.timedelta(days=span - 1))
        lo, _ = lt.day_bounds_utc(day, loc.tz)
        _, hi = lt.day_bounds_utc(stop, loc.tz)
        lo = max(lo, after)
        hi = min(hi, before)
        hours = subtract(hours_intervals(rules, loc.tz, day, stop), off)
        opens = [(s, e) for s, e in hours if e > lo and s < hi]
        if opens:
            booked = _BOOKED.rows(
                session.connection(), {"provider_id": prov.id, "hi": hi + block, "lo_back": lo - LOOKBACK, "lo": lo}
            )
            busy = merge((s, e) for s, e in booked)
            if patient_busy:
                busy = merge(busy + [(s, e) for s, e in patient_busy if s < hi + block and e > lo])
            room_busy: dict[int, list[Interval]] = {}
            if rooms:
                for rid, s, e in session.execute(
                    sa.select(Appointment.room_id, Appointment.start_utc, Appointment.block_end_utc).where(
                        col(Appointment.room_id).in_(rooms),
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
    ctx: Ctx,
    *,
    type: str | int | None,
    provider: str | int | None = None,
    any_provider: bool = False,
    location: str | int | None = None,
    after: str | dt.datetime | None = None,
    before: str | dt.datetime | None = None,
    count: int | str = 5,
    patient: str | int | None = None,
) -> list[SlotOut]:
    """The earliest free slots for an appointment type: inside working hours, outside time off,
    clear of bookings (with buffers) of the provider and the patient, with a free room when
    the type needs one. Without a provider every active provider (at the location) is searched."""
    require(ctx.actor, "schedule.read")
    session = ctx.session
    if provider and any_provider:
        raise ValidationError("any_provider", "give a provider or ask for any provider, not both")
    try:
        count = int(count)
    except (TypeError, ValueError):
        raise ValidationError("count", f"{count!r} is not a number") from None
    if not 1 <= count <= 500:
        raise ValidationError("count", "must be between 1 and 500")
    atype = find_type(ctx, type)
    loc_filter = find_location(ctx, location, field="location") if location else None
    pairs: list[tuple[Provider, Location]]
    if provider:
        prov = find_provider(ctx, provider)
        if location:
            pairs = [(prov, provider_location(ctx, prov, location))]
        else:
            pairs = [
                (prov, loc)
                for loc in session.execute(
                    sa.select(Location)
                    .join(ProviderLocation, ProviderLocation.location_id == Location.id)
                    .where(ProviderLocation.provider_id == prov.id)
                    .order_by(Location.id)
                ).scalars()
            ]
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
        pairs = [(p, loc) for p, loc in session.execute(q)]
    pat = find_patient(ctx, patient, field="patient", active=True) if patient else None
    now = ctx.now()
    zone_of = (
        loc_filter
        or (pairs[0][1] if pairs else None)
        or session.execute(sa.select(Location).where(Location.org_id == ctx.org_id)).scalars().first()
    )
    if zone_of is None:
        raise NotFoundError("the practice has no location", action=Action("locations", "add", purpose="add one with"))
    tz = zone_of.tz
    lo = lt.parse_local("after", after, tz, now=now) if after else now
    lo = max(lo, now)
    hi = lt.parse_local("before", before, tz, now=now) if before else lo + dt.timedelta(days=FIND_SLOT_DAYS)
    if hi <= lo:
        raise ValidationError("before", "is not after the search's start (after, or now)")
    return free_slots(
        ctx, atype, [(p, loc, lo, hi) for p, loc in pairs], count=count, patient_id=pat.id if pat else None
    )


def _hours_and_time_off(ctx: Ctx, searches: Sequence[Search]) -> dict[tuple[int, int], Any]:
    """The working-hours rules and time off of each provider and location of a search over
    several, read in two statements for all (over the days of all their windows)."""
    first = min(lt.to_local(lo, loc.tz).date() for _, loc, lo, _ in searches)
    last = max(lt.to_local(hi, loc.tz).date() for _, loc, _, hi in searches)
    pairs = [(p.id, loc.id) for p, loc, _, _ in searches if p.id is not None and loc.id is not None]
    return hours_and_time_off(ctx.session, ctx.org_id, pairs, first, last)


def free_slots(
    ctx: Ctx,
    atype: AppointmentType,
    searches: Sequence[Search],
    *,
    count: int,
    patient_id: int | None = None,
    keep: Callable[[dt.datetime, int], bool] | None = None,
) -> list[SlotOut]:
    """The first `count` free slots of the type over the searches (each provider at a location
    over its own [after, before) window, never before now), earliest first: the slot search of
    `find_slot` once what it searches is resolved. `keep(start UTC, provider id)` may refuse a
    slot (the slots after it are searched instead). Raises PermissionDenied."""
    require(ctx.actor, "schedule.read")
    session = ctx.session
    now = ctx.now()
    searches = [(p, loc, max(lo, now), hi) for p, loc, lo, hi in searches]
    searches = [(p, loc, lo, hi) for p, loc, lo, hi in searches if hi > lo]
    if not searches:
        return []
    session.flush()  # the searches read on the driver: what this transaction changed first
    patient_busy: list[Interval] = []
    if patient_id is not None:
        block = dt.timedelta(minutes=atype.duration_min + atype.buffer_min)
        patient_busy = [
            (s, e)
            for s, e in _PATIENT_BUSY.rows(
                session.connection(),
                {
                    "patient_id": patient_id,
                    "hi": max(hi for *_, hi in searches) + block,
                    "lo": min(lo for _, _, lo, _ in searches),
                },
            )
        ]
    org = session.get(Organization, ctx.org_id)
    assert org is not None
    step = org.slot_step_min
    # Over several providers the first times come from the first days of all of them: each
    # reads one day first (one provider, a week), then twice as many days each time.
    first_span = 1 if len(searches) > 1 else 7
    read = _hours_and_time_off(ctx, searches) if len(searches) > 1 else {}
    gens = [
        _slots_for(
            ctx, p, loc, atype, lo, hi, step, patient_busy, atype.needs_room, first_span, read.get((p.id, loc.id))
        )
        for p, loc, lo, hi in searches
    ]
    by_id = {p.id: p for p, *_ in searches}
    locs = {loc.id: loc for _, loc, *_ in searches}
    out: list[SlotOut] = []
    room_names: dict[int, str] = {}
    for t, pid, lid, rid in heapq.merge(*gens):
        if keep is not None and not keep(t, pid):
            continue
        loc = locs[lid]
        if rid is not None and rid not in room_names:
            r = session.get(Room, rid)
            assert r is not None
            room_names[rid] = r.name
        out.append(
            SlotOut(
                start=lt.to_local(t, loc.tz),
                end=lt.to_local(t + dt.timedelta(minutes=atype.duration_min), loc.tz),
                provider_id=pid,
                provider=provider_name(by_id[pid]),
                location_id=lid,
                location=loc.name,
                room_id=rid,
                room=room_names.get(rid) if rid is not None else None,
            )
        )
        if len(out) >= count:
            break
    return out
