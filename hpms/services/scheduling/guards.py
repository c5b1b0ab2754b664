"""What stands in the way of a visit: the bookings (with their buffers) of its provider and
room, the patient's own visits, and a free room when its type needs one.

Overlaps are checked here first, for a message naming what is in the way, and refused again
by the database (PostgreSQL exclusion constraints, SQLite triggers under the BEGIN IMMEDIATE
write lock), so two clerks booking the same minute cannot both win.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.db import Prepared
from hpms.models import Appointment, Provider, Room
from hpms.models.scheduling import BLOCKING_STATUSES
from hpms.services.lookups import provider_name
from hpms.services.platform import localtime as lt
from hpms.services.platform.conflicts import overlap_error

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# no appointment (with its buffer) is longer: the overlap queries look back no further
LOOKBACK = dt.timedelta(days=1)


def overlap(
    session: Session,
    column: Any,
    value: int,
    start: dt.datetime,
    end: dt.datetime,
    end_column: Any,
    exclude: tuple[int, ...],
) -> sa.Row | None:
    """The first blocking appointment with `column == value` whose [start, `end_column`)
    meets [start, end), leaving out the `exclude`d ones."""
    q = (
        sa.select(Appointment.id, Appointment.start_utc, Appointment.end_utc)
        .where(
            column == value,
            Appointment.status.in_(BLOCKING_STATUSES),
            Appointment.start_utc < end,
            Appointment.start_utc >= start - LOOKBACK,
            end_column > start,
        )
        .order_by(Appointment.start_utc)
        .limit(1)
    )
    if exclude:
        q = q.where(col(Appointment.id).not_in(exclude))
    return session.execute(q).first()


# One statement for the three guards (provider and room blocks, the patient's visits): built once,
# run with parameters; each arm of the OR uses its (column, start_utc) index.
_GUARD_ANY = (
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
    )
    .order_by(Appointment.start_utc)
)
# a new visit (nothing to leave out) on the driver; a move leaves its own rows out
_GUARD_NEW = Prepared(_GUARD_ANY)
_GUARD = _GUARD_ANY.where(col(Appointment.id).not_in(sa.bindparam("exclude", expanding=True)))


def conflict_reason(
    session: Session,
    *,
    provider: Provider,
    patient_id: int,
    room: Room | None,
    start: dt.datetime,
    end: dt.datetime,
    block_end: dt.datetime,
    tz: str,
    exclude: tuple[int, ...] = (),
) -> str | None:
    """What holds the time (the provider's or the room's booking, the patient's visit), or None."""
    params: dict[str, Any] = {
        "lookback": start - LOOKBACK,
        "block_end": block_end,
        "start": start,
        "end": end,
        "provider_id": provider.id,
        "room_id": room.id if room is not None else -1,
        "patient_id": patient_id,
    }
    conn = session.connection()
    if exclude:
        rows: Sequence[Any] = conn.execute(_GUARD, {**params, "exclude": list(exclude)}).all()
    else:
        rows = _GUARD_NEW.rows(conn, params)
    hits = [r for r in rows if r.block_end_utc > start]
    for hit in hits:
        if hit.provider_id == provider.id:
            return f"{provider_name(provider)} already has appointment {hit.id} at {span(hit, tz)}"
    for hit in hits:
        if room is not None and hit.room_id == room.id:
            return f"room {room.name!r} is taken by appointment {hit.id} at {span(hit, tz)}"
    for hit in rows:
        if hit.patient_id == patient_id and hit.end_utc > start and hit.start_utc < end:
            return f"the patient already has appointment {hit.id} at {span(hit, tz)}"
    return None


def span(hit: Any, tz: str) -> str:
    """ "2026-06-16 09:00-09:30" of a row with start_utc and end_utc, in the zone `tz`."""
    return f"{lt.fmt_local(hit.start_utc, tz)}-{lt.fmt_local(hit.end_utc, tz, '%H:%M')}"


def free_room(
    session: Session, location_id: int, start: dt.datetime, block_end: dt.datetime, exclude: tuple[int, ...] = ()
) -> Room | None:
    """The first active room (by name, equipment left out) at the location that no blocking
    appointment holds during [start, block_end)."""
    busy = sa.select(Appointment.room_id).where(
        col(Appointment.room_id).is_not(None),
        Appointment.location_id == location_id,
        Appointment.status.in_(BLOCKING_STATUSES),
        Appointment.start_utc < block_end,
        Appointment.start_utc >= start - LOOKBACK,
        Appointment.block_end_utc > start,
    )
    if exclude:
        busy = busy.where(col(Appointment.id).not_in(exclude))
    return session.execute(
        sa.select(Room)
        .where(
            Room.location_id == location_id,
            Room.active.is_(True),
            Room.kind != "equipment",
            col(Room.id).not_in(busy),
        )
        .order_by(Room.name)
        .limit(1)
    ).scalar_one_or_none()


def flush(session: Session) -> None:
    """Flush, an overlap the database refused raised as the ConflictError it is."""
    try:
        session.flush()
    except sa.exc.IntegrityError as exc:
        err = overlap_error(exc)
        if err is None:
            raise
        raise err from None
