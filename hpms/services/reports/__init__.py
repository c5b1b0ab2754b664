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
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.errors import Action, NotFoundError, ValidationError
from hpms.models import Patient
from hpms.services.lookups import find_payer, find_provider, resolve_location
from hpms.services.platform import audit
from hpms.services.platform.localtime import local_now, parse_day
from hpms.services.platform.permissions import require
from hpms.services.reports.base import (  # noqa: F401  (the registry's names, for the faces)
    KINDS,
    PERIODS,
    REPORTS,
    Column,
    Params,
    Report,
    month_start,
    period_bounds,
    report,
)

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx


def _load() -> None:
    """Import the modules that register reports (kept out of start-up until a report is used)."""
    from hpms.services.reports import collections, definitions, reminders, revenue, scheduling  # noqa: F401


def all_reports(ctx: Ctx) -> list[Report]:
    require(ctx.actor, "reports.run")
    _load()
    return sorted(REPORTS.values(), key=lambda r: r.name)


def get(name: str) -> Report:
    _load()
    found = REPORTS.get((name or "").strip().lower())
    if found is None:
        raise NotFoundError(f"no report {name!r}", action=Action("reports", "list"))
    return found


def parse_params(
    ctx: Ctx,
    rep: Report,
    *,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    period: str | None = None,
    location: str | int | None = None,
    provider: str | int | None = None,
    payer: str | int | None = None,
    **extra: Any,
) -> Params:
    """Common parameters, dates in the location's time zone (the practice's first location
    when none is given). Default period: this month. Errors name the keyword at fault; those
    of `extra` (`by`, `months`, `as_of`) are named by the report that reads them."""
    loc = resolve_location(ctx, location) if location else None
    tz_loc = loc or resolve_location(ctx, None)
    today = local_now(ctx.now(), tz_loc.tz).date()
    if period and (start or end):
        raise ValidationError("period", "give either a period or a from/to range, not both")
    if period:
        s, e = period_bounds("period", period, today)
    else:
        s = parse_day("start", start, today=today) if start else month_start(today)
        e = parse_day("end", end, today=today) if end else max(s, today)
    if e < s:
        raise ValidationError("end", f"{e} is before the start of the range, {s}")
    if (e - s).days > 366 * 10:
        raise ValidationError("start", "the range is longer than ten years")
    prov_id = find_provider(ctx, provider).id if provider else None
    payer_id = find_payer(ctx, payer, field="payer").id if payer else None
    return Params(
        start=s,
        end=e,
        location_id=loc.id if loc else None,
        location=loc.name if loc else None,
        tz=tz_loc.tz,
        provider_id=prov_id,
        payer_id=payer_id,
        extra={k: v for k, v in extra.items() if v is not None},
    )


def run(ctx: Ctx, name: str, **kw: Any) -> tuple[Report, Params, Iterator[tuple]]:
    """The report, its parsed parameters and its row iterator (consume it inside the context)."""
    rep = get(name)
    require(ctx.actor, rep.permission)
    params = parse_params(ctx, rep, **kw)
    rows = rep.rows(ctx, params)
    if rep.patient_data:
        rows = _audited(ctx, rep, params, rows)
    return rep, params, rows


def _audited(ctx: Ctx, rep: Report, params: Params, rows: Iterator[tuple]) -> Iterator[tuple]:
    """The rows as they stream, then one read event naming every patient they held (by the
    MRN column each patient-data report has), in the same transaction."""
    at = [c.key for c in rep.columns].index("mrn")
    mrns: set[str] = set()
    count = 0
    for row in rows:
        if row[at]:
            mrns.add(row[at])
        count += 1
        yield row
    ids: list[int] = []
    ordered = sorted(mrns)
    for i in range(0, len(ordered), 500):
        chunk = ordered[i : i + 500]
        ids += ctx.session.scalars(
            sa.select(Patient.id).where(Patient.org_id == ctx.org_id, col(Patient.mrn).in_(chunk))
        ).all()
    audit.record(
        ctx,
        audit.Event(
            "read",
            "report",
            rep.name,
            patient_ids=ids,
            detail=f"{rep.name} {params.start}..{params.end}, {count} rows",
        ),
    )
