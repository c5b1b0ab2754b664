"""The report registry and what every report shares: columns and their kinds, the common
parameters, periods, and the day bounds of the report's time zone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpms.errors import ValidationError
from hpms.models import Appointment
from hpms.services.platform import localtime as lt

if TYPE_CHECKING:
    import sqlalchemy as sa

    from hpms.services.platform.context import Ctx

KINDS = ("text", "int", "money", "date", "percent", "number")
PERIODS = ("today", "yesterday", "this-week", "last-week", "this-month", "last-month", "this-year", "last-year")


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str = "text"


@dataclass
class Params:
    start: dt.date  # first local day, inclusive
    end: dt.date  # last local day, inclusive
    location_id: int | None = None
    location: str | None = None
    tz: str = "UTC"
    provider_id: int | None = None
    payer_id: int | None = None
    extra: dict = field(default_factory=dict)

    def placeholders(self, today: dt.date) -> dict[str, str]:
        return {"date": today.isoformat(), "from": self.start.isoformat(), "to": self.end.isoformat()}


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    description: str
    columns: tuple[Column, ...]
    rows: Callable[..., Iterator[tuple]]
    params: tuple[str, ...] = ("from", "to", "period", "location", "provider")
    permission: str = "reports.run"
    patient_data: bool = False  # rows name patients: running it is audited as a read
    chart: tuple[str, str] | None = None  # (x column key, y column key) of the trend chart


REPORTS: dict[str, Report] = {}


def report(
    name: str,
    title: str,
    description: str,
    columns: list[Column] | tuple[Column, ...],
    *,
    params: tuple[str, ...] | None = None,
    permission: str = "reports.run",
    patient_data: bool = False,
    chart: tuple[str, str] | None = None,
) -> Callable[[Callable[..., Iterator[tuple]]], Callable[..., Iterator[tuple]]]:
    """Register a report whose rows come from the decorated generator function."""

    def register(fn: Callable[..., Iterator[tuple]]) -> Callable[..., Iterator[tuple]]:
        REPORTS[name] = Report(
            name=name,
            title=title,
            description=description,
            columns=tuple(c if isinstance(c, Column) else Column(*c) for c in columns),
            rows=fn,
            params=tuple(params) if params is not None else Report.params,
            permission=permission,
            patient_data=patient_data,
            chart=chart,
        )
        return fn

    return register


def month_start(d: dt.date) -> dt.date:
    return d.replace(day=1)


def _prev_month(d: dt.date) -> dt.date:
    first = month_start(d)
    return month_start(first - dt.timedelta(days=1))


def period_bounds(field_name: str, period: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """today, yesterday, this-week, last-week, this-month, last-month, this-year, last-year, YYYY-MM, YYYY."""
    p = (period or "").strip().lower()
    if p == "today":
        return today, today
    if p == "yesterday":
        y = today - dt.timedelta(days=1)
        return y, y
    if p in ("this-week", "last-week"):
        monday = today - dt.timedelta(days=today.weekday())
        if p == "last-week":
            monday -= dt.timedelta(days=7)
        return monday, monday + dt.timedelta(days=6)
    if p in ("this-month", "last-month"):
        first = month_start(today) if p == "this-month" else _prev_month(today)
        nxt = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return first, nxt - dt.timedelta(days=1)
    if p in ("this-year", "last-year"):
        year = today.year - (p == "last-year")
        return dt.date(year, 1, 1), dt.date(year, 12, 31)
    try:
        if len(p) == 7:
            first = dt.date.fromisoformat(p + "-01")
            nxt = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
            return first, nxt - dt.timedelta(days=1)
        if len(p) == 4 and p.isdigit():
            return dt.date(int(p), 1, 1), dt.date(int(p), 12, 31)
    except ValueError:
        pass
    raise ValidationError(field_name, f"{period!r} is not a period ({', '.join(PERIODS)}, YYYY-MM or YYYY)")


def utc_bounds(ctx: Ctx, params: Params) -> tuple[dt.datetime, dt.datetime]:
    """[first local midnight, midnight after the last day) of the report's zone, in UTC."""
    lo, _ = lt.day_bounds_utc(params.start, params.tz)
    _, hi = lt.day_bounds_utc(params.end, params.tz)
    return lo, hi


def local_day(value: dt.datetime, tz: str) -> dt.date:
    return lt.to_local(value, tz).date()


def location_filter(q: sa.Select, params: Params, col: Any = Appointment.location_id) -> sa.Select:
    return q.where(col == params.location_id) if params.location_id else q
