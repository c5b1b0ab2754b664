"""Appointment volume by day. Each report streams its rows from one query (or a few) in the location's time
zone; the formulas are documented in docs/reports.md."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hpms.models import Appointment, Location
from hpms.services.reports.base import Column, Params, local_day, location_filter, report, utc_bounds

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx


@report(
    "appointments-by-day",
    "Appointments by day",
    "Appointments per local day: booked (not cancelled), completed, no-shows, cancellations.",
    [
        Column("day", "Day", "date"),
        Column("booked", "Booked", "int"),
        Column("completed", "Completed", "int"),
        Column("no_show", "No-shows", "int"),
        Column("cancelled", "Cancelled", "int"),
    ],
    chart=("day", "booked"),
)
def appointments_by_day(ctx: Ctx, params: Params) -> Iterator[tuple]:
    lo, hi = utc_bounds(ctx, params)
    q = (
        sa.select(Appointment.start_utc, Appointment.status, Location.tz)
        .join(Location, Location.id == Appointment.location_id)
        .where(
            Appointment.org_id == ctx.org_id,
            Appointment.start_utc >= lo - dt.timedelta(days=1),
            Appointment.start_utc < hi + dt.timedelta(days=1),
        )
    )
    q = location_filter(q, params)
    if params.provider_id:
        q = q.where(Appointment.provider_id == params.provider_id)
    counts: dict[dt.date, list[int]] = {}
    for start, status, tz in ctx.session.execute(q.execution_options(yield_per=5000)):
        day = local_day(start, tz)
        if not params.start <= day <= params.end:
            continue
        c = counts.setdefault(day, [0, 0, 0, 0])
        if status != "cancelled":
            c[0] += 1
        if status == "completed":
            c[1] += 1
        elif status == "no_show":
            c[2] += 1
        elif status == "cancelled":
            c[3] += 1
    day = params.start
    while day <= params.end:
        c = counts.get(day, [0, 0, 0, 0])
        yield (day, *c)
        day += dt.timedelta(days=1)
