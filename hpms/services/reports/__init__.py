"""Reports: named queries with typed columns that stream their rows.

A report is registered with `@report(...)`: a name, a title, a one-line description, the
parameters it takes, its columns (each with a kind: text, int, money, date, percent, number)
and a function `rows(ctx, params) -> Iterator[tuple]` that yields one tuple per row, in
column order, without holding the result in memory. The writers (hpms.services.reports.export)
turn the kinds into typed cells: numbers stay numbers and dates stay dates in xlsx/ods, money
has two decimals.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from hpms.errors import NotFoundError, ValidationError
from hpms.services.permissions import require

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
    chart: tuple[str, str] | None = None  # (x column key, y column key) for --chart


REPORTS: dict[str, Report] = {}


def report(name: str, title: str, description: str, columns, *, params=None, permission: str = "reports.run",
           patient_data: bool = False, chart: tuple[str, str] | None = None):
    """Register a report whose rows come from the decorated generator function."""

    def register(fn):
        REPORTS[name] = Report(name=name, title=title, description=description,
                               columns=tuple(c if isinstance(c, Column) else Column(*c) for c in columns), rows=fn,
                               params=tuple(params) if params is not None else Report.params, permission=permission,
                               patient_data=patient_data, chart=chart)
        return fn

    return register


def _load() -> None:
    """Import the modules that register reports (kept out of start-up until a report is used)."""
    from hpms.services.reports import definitions  # noqa: F401


def all_reports(ctx) -> list[Report]:
    require(ctx.actor, "reports.run")
    _load()
    return sorted(REPORTS.values(), key=lambda r: r.name)


def get(name: str) -> Report:
    _load()
    found = REPORTS.get((name or "").strip().lower())
    if found is None:
        raise NotFoundError(f"no report {name!r}", hint="see `hpms reports list`")
    return found


def _month_start(d: dt.date) -> dt.date:
    return d.replace(day=1)


def _prev_month(d: dt.date) -> dt.date:
    first = _month_start(d)
    return _month_start(first - dt.timedelta(days=1))


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
        first = _month_start(today) if p == "this-month" else _prev_month(today)
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


def parse_params(ctx, rep: Report, *, start=None, end=None, period=None, location=None, provider=None, payer=None,
                 **extra) -> Params:
    """Common parameters, dates in the location's time zone (the practice's first location
    when none is given). Default period: this month."""
    from hpms.services.localtime import local_now, parse_day
    from hpms.services.schedule_view import resolve_location

    loc = resolve_location(ctx, location) if location else None
    tz_loc = loc or resolve_location(ctx, None)
    today = local_now(ctx.now(), tz_loc.tz).date()
    if period and (start or end):
        raise ValidationError("--period", "give either --period or --from/--to")
    if period:
        s, e = period_bounds("--period", period, today)
    else:
        s = parse_day("--from", start, today=today) if start else _month_start(today)
        e = parse_day("--to", end, today=today) if end else max(s, today)
    if e < s:
        raise ValidationError("--to", f"{e} is before --from {s}")
    if (e - s).days > 366 * 10:
        raise ValidationError("--from", "the range is longer than ten years")
    prov_id = None
    if provider:
        from hpms.services.resources import find_provider

        prov_id = find_provider(ctx, provider).id
    payer_id = None
    if payer:
        from hpms.services.coverage import find_payer

        try:
            payer_id = find_payer(ctx, payer).id
        except NotFoundError as exc:
            raise NotFoundError(f"--payer: {exc.message}", hint=exc.hint) from None
    return Params(start=s, end=e, location_id=loc.id if loc else None, location=loc.name if loc else None,
                  tz=tz_loc.tz, provider_id=prov_id, payer_id=payer_id, extra={k: v for k, v in extra.items()
                                                                                if v is not None})


def run(ctx, name: str, **kw) -> tuple[Report, Params, Iterator[tuple]]:
    """The report, its parsed parameters and its row iterator (consume it inside the context)."""
    rep = get(name)
    require(ctx.actor, rep.permission)
    params = parse_params(ctx, rep, **kw)
    rows = rep.rows(ctx, params)
    if rep.patient_data:
        from hpms.services import audit

        audit.record(ctx, audit.Event("read", "report", rep.name, detail=f"{rep.name} {params.start}..{params.end}"))
    return rep, params, rows
