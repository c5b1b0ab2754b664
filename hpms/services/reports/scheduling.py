"""Scheduling reports: appointment volume, no-shows and cancellations, provider utilization, patient flow,
booking lead time, the recall list and patient satisfaction.

Every report reads appointments whose start falls on a local day of the range (the day in the
zone of the appointment's location), like `appointments-by-day`. Percentages are 0-100 and
minutes and days are rounded to one decimal; a rate whose denominator is 0 is None (empty).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.errors import ValidationError
from hpms.models import Appointment, AppointmentType, Location, Patient, Provider, ProviderLocation, SurveyResponse
from hpms.models.scheduling import BLOCKING_STATUSES
from hpms.services.lookups import provider_name
from hpms.services.platform import localtime as lt
from hpms.services.reports.base import Column, Params, local_day, location_filter, report, utc_bounds
from hpms.services.scheduling.availability import open_time

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
RATE_COLUMNS = [
    Column("appointments", "Appointments", "int"),
    Column("no_shows", "No-shows", "int"),
    Column("no_show_rate", "No-show rate %", "percent"),
    Column("cancelled", "Cancellations", "int"),
    Column("cancel_rate", "Cancellation rate %", "percent"),
    Column("late_cancelled", "Late cancellations", "int"),
]
RANGE = ("from", "to", "period", "location", "provider")


def pct(part: float, whole: float) -> float | None:
    return None if not whole else round(100.0 * part / whole, 1)


def _r1(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _providers(ctx: Ctx) -> dict[int, str]:
    return {
        pid: provider_name(p)
        for pid, p in ctx.session.execute(sa.select(Provider.id, Provider).where(Provider.org_id == ctx.org_id))
    }


def _in_range(ctx: Ctx, params: Params, *cols: Any, extra_where: tuple = ()) -> Iterator[tuple]:
    """(local day of the start, *cols) of the appointments starting on a local day of the range."""
    lo, hi = utc_bounds(ctx, params)
    q = (
        sa.select(Appointment.start_utc, Location.tz, *cols)
        .join(Location, Location.id == Appointment.location_id)
        .where(
            Appointment.org_id == ctx.org_id,
            Appointment.start_utc >= lo - dt.timedelta(days=1),
            Appointment.start_utc < hi + dt.timedelta(days=1),
            *extra_where,
        )
    )
    q = location_filter(q, params)
    if params.provider_id:
        q = q.where(Appointment.provider_id == params.provider_id)
    for row in ctx.session.execute(q.execution_options(yield_per=5000)):
        day = local_day(row[0], row[1])
        if params.start <= day <= params.end:
            yield (day, *row[2:])


def _rates(counts: list[int]) -> tuple:
    total, no_show, cancelled, late = counts
    return (total, no_show, pct(no_show, total - cancelled), cancelled, pct(cancelled, total), late)


def _rate_counts(ctx: Ctx, params: Params, key: Callable[..., Any], *cols: Any) -> dict:
    """Counts [appointments, no-shows, cancelled, late cancelled] per key(day, provider_id, *cols)."""
    out: dict = {}
    for day, provider_id, status, late, *more in _in_range(
        ctx, params, Appointment.provider_id, Appointment.status, Appointment.late_cancel, *cols
    ):
        c = out.setdefault(key(day, provider_id, *more), [0, 0, 0, 0])
        c[0] += 1
        c[1] += status == "no_show"
        c[2] += status == "cancelled"
        c[3] += status == "cancelled" and bool(late)
    return out


@report(
    "no-shows",
    "No-shows and cancellations by provider",
    "Per provider: appointments, no-shows and no-show rate, cancellations, late cancellations.",
    [Column("provider", "Provider"), *RATE_COLUMNS],
    params=RANGE,
)
def no_shows(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """One row per provider with an appointment starting in the range (by provider name).

    appointments = every appointment starting in the range, whatever its status;
    no-shows = those with status no_show; cancellations = status cancelled; late cancellations =
    cancelled ones flagged late_cancel;
    no-show rate % = 100 * no-shows / (appointments - cancellations) (None when that is 0);
    cancellation rate % = 100 * cancellations / appointments."""
    names = _providers(ctx)
    counts = _rate_counts(ctx, params, lambda day, provider_id: provider_id)
    for pid in sorted(counts, key=lambda p: (names[p].lower(), p)):
        yield (names[pid], *_rates(counts[pid]))


@report(
    "no-shows-by-weekday",
    "No-shows and cancellations by weekday",
    "Per local weekday (Monday-Sunday): appointments, no-shows, cancellations and their rates.",
    [Column("weekday", "Weekday"), *RATE_COLUMNS],
    params=RANGE,
    chart=("weekday", "no_show_rate"),
)
def no_shows_by_weekday(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """One row per local weekday of the visits' start (Monday first, only weekdays with an
    appointment), labelled '1 Monday' ... '7 Sunday' (ISO weekday number and name); the columns
    are those of `no-shows`, counted over the appointments starting on that weekday:
    no-show rate % = 100 * no-shows / (appointments - cancellations) (None when that is 0);
    cancellation rate % = 100 * cancellations / appointments."""
    counts = _rate_counts(ctx, params, lambda day, provider_id: day.isoweekday())
    for wd in sorted(counts):
        yield (f"{wd} {WEEKDAYS[wd - 1]}", *_rates(counts[wd]))


def _types(ctx: Ctx) -> dict[int, str]:
    return dict(
        ctx.session.execute(
            sa.select(AppointmentType.id, AppointmentType.name).where(AppointmentType.org_id == ctx.org_id)
        ).all()
    )


@report(
    "no-shows-by-type",
    "No-shows and cancellations by appointment type",
    "Per appointment type: appointments, no-shows, cancellations and their rates.",
    [Column("type", "Appointment type"), *RATE_COLUMNS],
    params=RANGE,
)
def no_shows_by_type(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """One row per appointment type (by name) with an appointment starting in the range; the
    columns are those of `no-shows`, counted over the appointments of that type:
    no-show rate % = 100 * no-shows / (appointments - cancellations) (None when that is 0);
    cancellation rate % = 100 * cancellations / appointments."""
    names = _types(ctx)
    counts = _rate_counts(ctx, params, lambda day, provider_id, type_id: type_id, Appointment.type_id)
    for tid in sorted(counts, key=lambda t: (names[t].lower(), t)):
        yield (names[tid], *_rates(counts[tid]))


@report(
    "no-shows-by-hour",
    "No-shows and cancellations by hour",
    "Per local start hour (00:00-23:00): appointments, no-shows, cancellations and their rates.",
    [Column("hour", "Hour"), *RATE_COLUMNS],
    params=RANGE,
    chart=("hour", "no_show_rate"),
)
def no_shows_by_hour(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """One row per local hour of the visits' start (0-23, in the zone of the visit's location,
    only hours with an appointment), labelled '08:00' for 08:00-08:59; the columns are those of
    `no-shows`, counted over the appointments starting in that hour:
    no-show rate % = 100 * no-shows / (appointments - cancellations) (None when that is 0);
    cancellation rate % = 100 * cancellations / appointments."""
    counts = _rate_counts(
        ctx, params, lambda day, provider_id, start, tz: lt.to_local(start, tz).hour, Appointment.start_utc, Location.tz
    )
    for hour in sorted(counts):
        yield (f"{hour:02d}:00", *_rates(counts[hour]))


VOLUME_BY = ("day", "week", "month", "provider", "type", "location")


def parse_by(value: Any) -> str:
    if value is None or value == "":
        return "month"
    text = str(value).strip().lower()
    if text not in VOLUME_BY:
        raise ValidationError("by", f"{value!r} is not a grouping ({', '.join(VOLUME_BY)})")
    return text


@report(
    "appointments-volume",
    "Appointment volume",
    "Appointments grouped by day, week, month (default), provider, type or location: booked, "
    "completed, no-shows, cancelled, average lead time.",
    [
        Column("group", "Group"),
        Column("booked", "Booked", "int"),
        Column("completed", "Completed", "int"),
        Column("no_show", "No-shows", "int"),
        Column("cancelled", "Cancelled", "int"),
        Column("avg_lead_days", "Average lead days", "number"),
    ],
    params=(*RANGE, "by"),
    chart=("group", "booked"),
)
def appointments_volume(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """One row per group with an appointment starting in the range. The group (`by`) is the
    visit's local start day (YYYY-MM-DD), its ISO week (labelled with that week's Monday,
    YYYY-MM-DD), its month (YYYY-MM; the default), its provider, appointment type or location
    (by name); dates in the zone of the visit's location. Date groups are in calendar order,
    names alphabetical.

    booked = appointments not cancelled (whatever their other status); completed = status
    completed; no-shows = status no_show; cancelled = status cancelled; lead time of one booked
    appointment = local date of its start - local date of its booked_at, in whole days;
    average lead days = their arithmetic mean (None without booked appointments)."""
    by = parse_by(params.extra.get("by"))
    return _volume(ctx, params, by)


def _volume(ctx: Ctx, params: Params, by: str) -> Iterator[tuple]:
    names = {"provider": _providers, "type": _types}.get(by, lambda ctx: {})(ctx)
    group = {
        "day": lambda day, pid, tid, loc: day.isoformat(),
        "week": lambda day, pid, tid, loc: (day - dt.timedelta(days=day.weekday())).isoformat(),
        "month": lambda day, pid, tid, loc: f"{day:%Y-%m}",
        "provider": lambda day, pid, tid, loc: pid,
        "type": lambda day, pid, tid, loc: tid,
        "location": lambda day, pid, tid, loc: loc,
    }[by]
    per: dict = {}
    for day, pid, tid, loc_name, status, booked_at, tz in _in_range(
        ctx,
        params,
        Appointment.provider_id,
        Appointment.type_id,
        Location.name,
        Appointment.status,
        Appointment.booked_at,
        Location.tz,
    ):
        c = per.setdefault(group(day, pid, tid, loc_name), [0, 0, 0, 0, []])
        if status == "cancelled":
            c[3] += 1
            continue
        c[0] += 1
        c[1] += status == "completed"
        c[2] += status == "no_show"
        if booked_at is not None:
            c[4].append((day - local_day(booked_at, tz)).days)
    if by in ("provider", "type"):
        order = sorted(per, key=lambda k: (names[k].lower(), k))
    elif by == "location":
        order = sorted(per, key=lambda k: (k.lower(), k))
    else:
        order = sorted(per)
    for key in order:
        booked, completed, no_show, cancelled, leads = per[key]
        label = names[key] if by in ("provider", "type") else key
        yield (label, booked, completed, no_show, cancelled, _r1(statistics.fmean(leads)) if leads else None)


def _minutes(intervals) -> float:
    return sum((e - s).total_seconds() for s, e in intervals) / 60.0


def _clip(s: dt.datetime, e: dt.datetime, lo: dt.datetime, hi: dt.datetime) -> float:
    return max(0.0, (min(e, hi) - max(s, lo)).total_seconds() / 60.0)


@report(
    "utilization",
    "Provider utilization",
    "Per provider and local day: open minutes, booked minutes and booked / open.",
    [
        Column("day", "Day", "date"),
        Column("provider", "Provider"),
        Column("location", "Location"),
        Column("available_min", "Available min", "int"),
        Column("booked_min", "Booked min", "int"),
        Column("utilization", "Utilization %", "percent"),
    ],
    params=RANGE,
)
def utilization(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """One row per local day, provider and location where the provider had open time or a
    booking (by day, provider name, location name).

    available minutes = working hours minus time off and holidays on that local day
    (hpms.services.scheduling.availability.open_time);
    booked minutes = the visit minutes (start to end, without the buffer) of the blocking
    appointments (booked, confirmed, arrived, in room, completed) that lie inside the local day;
    utilization % = 100 * booked / available (None when available is 0; may pass 100 with
    overbooking)."""
    names = _providers(ctx)
    q = (
        sa.select(ProviderLocation.provider_id, Location)
        .join(Location, Location.id == ProviderLocation.location_id)
        .where(Location.org_id == ctx.org_id)
    )
    if params.location_id:
        q = q.where(Location.id == params.location_id)
    if params.provider_id:
        q = q.where(ProviderLocation.provider_id == params.provider_id)
    pairs = [(pid, loc) for pid, loc in ctx.session.execute(q).all() if pid in names]
    rows: dict[tuple, list[float]] = {}
    for pid, loc in pairs:
        for s, e in open_time(ctx.session, ctx.org_id, pid, loc, params.start, params.end):
            day = lt.to_local(s, loc.tz).date()
            while s < e:
                lo, hi = lt.day_bounds_utc(day, loc.tz)
                if params.start <= day <= params.end:
                    rows.setdefault((day, pid, loc.name), [0.0, 0.0])[0] += _clip(s, e, lo, hi)
                s, day = hi, day + dt.timedelta(days=1)
    for day, pid, loc_name, start, end, tz in _in_range(
        ctx,
        params,
        Appointment.provider_id,
        Location.name,
        Appointment.start_utc,
        Appointment.end_utc,
        Location.tz,
        extra_where=(Appointment.status.in_(BLOCKING_STATUSES),),
    ):
        lo, hi = lt.day_bounds_utc(day, tz)
        rows.setdefault((day, pid, loc_name), [0.0, 0.0])[1] += _clip(start, end, lo, hi)
    for day, pid, loc_name in sorted(rows, key=lambda k: (k[0], names[k[1]].lower(), k[2])):
        avail, booked = rows[(day, pid, loc_name)]
        yield (day, names[pid], loc_name, round(avail), round(booked), pct(booked, avail))


def _med_avg(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return _r1(statistics.median(values)), _r1(statistics.fmean(values))


@report(
    "patient-flow",
    "Patient flow",
    "Per provider: completed visits with arrival, rooming and completion times; median and "
    "average minutes between them.",
    [
        Column("provider", "Provider"),
        Column("visits", "Visits", "int"),
        Column("wait_median", "Arrival to room, median min", "number"),
        Column("wait_avg", "Arrival to room, avg min", "number"),
        Column("room_median", "Room to done, median min", "number"),
        Column("room_avg", "Room to done, avg min", "number"),
        Column("total_median", "Arrival to done, median min", "number"),
        Column("total_avg", "Arrival to done, avg min", "number"),
    ],
    params=RANGE,
)
def patient_flow(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """One row per provider (by name) with at least one completed visit in the range that has
    all three timestamps arrived_at, roomed_at and completed_at (other visits are left out).

    visits = the number of such visits; for each visit
    arrival to room = roomed_at - arrived_at, room to done = completed_at - roomed_at,
    arrival to done = completed_at - arrived_at, in minutes; each pair of columns is the median
    and the arithmetic mean of those minutes over the provider's visits."""
    names = _providers(ctx)
    per: dict[int, list[list[float]]] = {}
    for _day, pid, arrived, roomed, done in _in_range(
        ctx,
        params,
        Appointment.provider_id,
        Appointment.arrived_at,
        Appointment.roomed_at,
        Appointment.completed_at,
        extra_where=(
            Appointment.status == "completed",
            col(Appointment.arrived_at).is_not(None),
            col(Appointment.roomed_at).is_not(None),
            col(Appointment.completed_at).is_not(None),
        ),
    ):
        v = per.setdefault(pid, [[], [], []])
        v[0].append((roomed - arrived).total_seconds() / 60.0)
        v[1].append((done - roomed).total_seconds() / 60.0)
        v[2].append((done - arrived).total_seconds() / 60.0)
    for pid in sorted(per, key=lambda p: (names[p].lower(), p)):
        wait, room, total = per[pid]
        yield (names[pid], len(wait), *_med_avg(wait), *_med_avg(room), *_med_avg(total))


@report(
    "lead-time",
    "Booking lead time",
    "Per appointment type: bookings made in the range and the days from booking to the visit.",
    [
        Column("type", "Appointment type"),
        Column("bookings", "Bookings", "int"),
        Column("avg_days", "Average days", "number"),
        Column("median_days", "Median days", "number"),
    ],
    params=RANGE,
)
def lead_time(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """One row per appointment type (by name) with a booking made in the range.

    bookings = appointments whose booked_at falls on a local day of the range (in the zone of
    the visit's location), whatever their status now; lead time of one booking = local date of
    the visit's start - local date of booked_at, in whole days (0 = booked for the same day);
    average days = their arithmetic mean, median days = their median."""
    lo, hi = utc_bounds(ctx, params)
    q = (
        sa.select(Appointment.booked_at, Appointment.start_utc, Location.tz, AppointmentType.name)
        .join(Location, Location.id == Appointment.location_id)
        .join(AppointmentType, AppointmentType.id == Appointment.type_id)
        .where(
            Appointment.org_id == ctx.org_id,
            Appointment.booked_at >= lo - dt.timedelta(days=1),
            Appointment.booked_at < hi + dt.timedelta(days=1),
        )
    )
    q = location_filter(q, params)
    if params.provider_id:
        q = q.where(Appointment.provider_id == params.provider_id)
    per: dict[str, list[int]] = {}
    for booked, start, tz, type_name in ctx.session.execute(q.execution_options(yield_per=5000)):
        day = local_day(booked, tz)
        if params.start <= day <= params.end:
            per.setdefault(type_name, []).append((local_day(start, tz) - day).days)
    for name in sorted(per, key=str.lower):
        days = per[name]
        yield (name, len(days), _r1(statistics.fmean(days)), _r1(statistics.median(days)))


def months_back(day: dt.date, months: int) -> dt.date:
    """The same day `months` earlier (the month's last day when it has fewer days)."""
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    m += 1
    nxt = dt.date(y + (m == 12), m % 12 + 1, 1)
    return dt.date(y, m, min(day.day, (nxt - dt.timedelta(days=1)).day))


def parse_months(value: Any) -> int:
    if value is None or value == "":
        return 12
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 120:
        raise ValidationError("months", f"{value!r} is not a number of months from 1 to 120")
    return int(text)


@report(
    "recall",
    "Recall list",
    "Active patients seen before but without a completed visit in the last N months (months, default 12).",
    [
        Column("mrn", "MRN"),
        Column("patient", "Patient"),
        Column("last_visit", "Last visit", "date"),
        Column("provider", "Last provider"),
        Column("phone", "Phone"),
    ],
    params=("location", "provider", "months"),
    patient_data=True,
)
def recall(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """One row per active patient whose last completed visit (latest start among visits with
    status completed) began before the cutoff, i.e. on a local day before today minus N months
    (N = `months`, 1-120, default 12; today in the report's zone). With a location / provider
    only completed visits there / with that provider count, for both "seen before" and "not
    seen since". last visit = the local date of that visit, last provider = its provider;
    oldest last visit first, then by MRN."""
    months = parse_months(params.extra.get("months"))
    today = lt.local_now(ctx.now(), params.tz).date()
    cutoff, _ = lt.day_bounds_utc(months_back(today, months), params.tz)
    last = sa.select(Appointment.patient_id, sa.func.max(Appointment.start_utc).label("last_start")).where(
        Appointment.org_id == ctx.org_id, Appointment.status == "completed"
    )
    last = location_filter(last, params)
    if params.provider_id:
        last = last.where(Appointment.provider_id == params.provider_id)
    last = last.group_by(Appointment.patient_id).having(sa.func.max(Appointment.start_utc) < cutoff).subquery()
    q = (
        sa.select(
            Patient.mrn,
            Patient.first_name,
            Patient.last_name,
            Patient.phone,
            Appointment.start_utc,
            Location.tz,
            Provider,
        )
        .join(last, last.c.patient_id == Patient.id)
        .join(
            Appointment,
            sa.and_(
                Appointment.patient_id == Patient.id,
                Appointment.start_utc == last.c.last_start,
                Appointment.status == "completed",
            ),
        )
        .join(Location, Location.id == Appointment.location_id)
        .join(Provider, Provider.id == Appointment.provider_id)
        .where(Patient.org_id == ctx.org_id, Patient.active.is_(True))
        .order_by(Appointment.start_utc, Patient.mrn)
    )
    seen = set()
    for mrn, first, last_name, phone, start, tz, prov in ctx.session.execute(q):
        if mrn in seen:
            continue
        seen.add(mrn)
        yield (mrn, f"{first} {last_name}", local_day(start, tz), provider_name(prov), phone)


@report(
    "satisfaction",
    "Patient satisfaction",
    "Per provider and month: survey responses, average score, scores 1-5, response rate.",
    [
        Column("month", "Month"),
        Column("provider", "Provider"),
        Column("responses", "Responses", "int"),
        Column("avg_score", "Average score", "number"),
        Column("score_1", "1", "int"),
        Column("score_2", "2", "int"),
        Column("score_3", "3", "int"),
        Column("score_4", "4", "int"),
        Column("score_5", "5", "int"),
        Column("response_rate", "Response rate %", "percent"),
    ],
    params=RANGE,
)
def satisfaction(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """One row per month (YYYY-MM) and provider with a completed visit in the range, by month
    then provider name. The month is that of the visit's local start day, not of the response.

    completed visits = appointments with status completed starting in the range that month;
    responses = survey responses to those visits; average score = mean of their scores (None
    without responses); 1..5 = how many responses gave each score;
    response rate % = 100 * responses / completed visits."""
    names = _providers(ctx)
    per: dict[tuple[str, int], list] = {}
    lo, hi = utc_bounds(ctx, params)
    q = (
        sa.select(Appointment.start_utc, Location.tz, Appointment.provider_id, SurveyResponse.score)
        .join(Location, Location.id == Appointment.location_id)
        .outerjoin(SurveyResponse, SurveyResponse.appointment_id == Appointment.id)
        .where(
            Appointment.org_id == ctx.org_id,
            Appointment.status == "completed",
            Appointment.start_utc >= lo - dt.timedelta(days=1),
            Appointment.start_utc < hi + dt.timedelta(days=1),
        )
    )
    q = location_filter(q, params)
    if params.provider_id:
        q = q.where(Appointment.provider_id == params.provider_id)
    for start, tz, pid, score in ctx.session.execute(q.execution_options(yield_per=5000)):
        day = local_day(start, tz)
        if not params.start <= day <= params.end:
            continue
        c = per.setdefault((f"{day:%Y-%m}", pid), [0, [0] * 5])
        c[0] += 1
        if score is not None:
            c[1][score - 1] += 1
    for month, pid in sorted(per, key=lambda k: (k[0], names[k[1]].lower(), k[1])):
        visits, scores = per[(month, pid)]
        n = sum(scores)
        avg = round(sum((i + 1) * s for i, s in enumerate(scores)) / n, 2) if n else None
        yield (month, names[pid], n, avg, *scores, pct(n, visits))
