"""Working hours, time off and the scheduling policy, and the open time they leave.

Hours are wall-clock rules expanded day by day in the location's zone (dateutil rrule for
patterns such as every other Friday), so 08:00-17:00 stays 08:00-17:00 local on the days
clocks change. Open time = working hours minus time off, as UTC intervals.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from dateutil.rrule import rrulestr  # type: ignore[import-untyped]  # python-dateutil ships no type information
from sqlmodel import col

from hpms.db import Prepared
from hpms.errors import Action, NotFoundError, ValidationError
from hpms.models import (
    Appointment,
    AppointmentType,
    Location,
    Organization,
    Provider,
    TimeOff,
    TimeOffOut,
    WorkingHours,
    WorkingHoursOut,
)
from hpms.models.scheduling import BLOCKING_STATUSES
from hpms.services.lookups import find_location, find_locations, find_provider, provider_name
from hpms.services.platform import audit
from hpms.services.platform import localtime as lt
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require
from hpms.services.scheduling.resources import provider_location_ids

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hpms.services.platform.context import Ctx

Interval = tuple[dt.datetime, dt.datetime]


# ---- interval arithmetic -------------------------------------------------------------------


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of `intervals`, sorted and disjoint (empty ones dropped)."""
    out: list[Interval] = []
    for s, e in sorted(intervals):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def subtract(intervals: list[Interval], cuts: Iterable[Interval]) -> list[Interval]:
    """`intervals` (sorted, disjoint) minus `cuts`."""
    cuts = merge(cuts)
    if not cuts:
        return list(intervals)
    out: list[Interval] = []
    j = 0
    for s, e in intervals:
        while j < len(cuts) and cuts[j][1] <= s:
            j += 1
        k = j
        cur = s
        while k < len(cuts) and cuts[k][0] < e:
            cs, ce = cuts[k]
            if cs > cur:
                out.append((cur, cs))
            cur = max(cur, ce)
            if ce >= e:
                break
            k += 1
        if cur < e:
            out.append((cur, e))
    return out


# ---- rules -> open time --------------------------------------------------------------------


def _rule_dates(rule: Any, day_from: dt.date, day_to: dt.date) -> list[dt.date]:
    """The local dates in day_from..day_to a working-hours rule (ORM object or row) applies on."""
    lo = max(day_from, rule.effective_from)
    hi = min(day_to, rule.effective_to) if rule.effective_to else day_to
    if lo > hi:
        return []
    if rule.rrule:
        rr = rrulestr(rule.rrule, dtstart=dt.datetime.combine(rule.effective_from, dt.time()))
        return [
            d.date()
            for d in rr.between(dt.datetime.combine(lo, dt.time()), dt.datetime.combine(hi, dt.time()), inc=True)
        ]
    days = {lt.DAY_CODES.index(c) for c in rule.days.split(",") if c}
    out = []
    d = lo
    while d <= hi:
        if d.weekday() in days:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def load_rules(
    session: Session, provider_id: int, location_id: int, day_from: dt.date, day_to: dt.date
) -> list[WorkingHours]:
    """The working-hours rules of a provider at a location in force on some day of day_from..day_to."""
    return list(
        session.execute(
            sa.select(WorkingHours).where(
                WorkingHours.provider_id == provider_id,
                WorkingHours.location_id == location_id,
                WorkingHours.effective_from <= day_to,
                sa.or_(col(WorkingHours.effective_to).is_(None), col(WorkingHours.effective_to) >= day_from),
            )
        ).scalars()
    )


def hours_intervals(rules: Sequence[Any], tz: str, day_from: dt.date, day_to: dt.date) -> list[Interval]:
    """The UTC intervals the rules (ORM objects or rows) open on the local days day_from..day_to."""
    spans = []
    for rule in rules:
        for d in _rule_dates(rule, day_from, day_to):
            spans.append(
                (
                    lt.wall_to_utc(dt.datetime.combine(d, rule.start_time), tz),
                    lt.wall_to_utc(dt.datetime.combine(d, rule.end_time), tz),
                )
            )
    return merge(spans)


def load_time_off(
    session: Session,
    org_id: int,
    provider_id: int | None,
    location_id: int | None,
    lo_local: dt.datetime,
    hi_local: dt.datetime,
) -> list[TimeOff]:
    """Time off (with the practice's holidays) meeting the local span lo_local..hi_local, of one
    provider and one location when given."""
    q = sa.select(TimeOff).where(
        TimeOff.org_id == org_id, TimeOff.starts_local < hi_local, TimeOff.ends_local > lo_local
    )
    if provider_id is not None:
        q = q.where(sa.or_(TimeOff.provider_id == provider_id, col(TimeOff.provider_id).is_(None)))
    if location_id is not None:
        q = q.where(sa.or_(TimeOff.location_id == location_id, col(TimeOff.location_id).is_(None)))
    return list(session.execute(q.order_by(TimeOff.starts_local)).scalars())


def time_off_intervals(rows: Sequence[Any], tz: str) -> list[Interval]:
    """Time off (ORM objects or rows, wall-clock bounds) as merged UTC intervals in the zone `tz`."""
    return merge((lt.wall_to_utc(r.starts_local, tz), lt.wall_to_utc(r.ends_local, tz)) for r in rows)


# The hot path (every booking, every slot search window) runs these two prepared statements on
# the driver of the session's connection: the rows carry the same attribute names as the ORM objects.
_WH = WorkingHours.__table__
_TO = TimeOff.__table__


def _rules_where(provider: Any, location: Any, day_from: Any, day_to: Any) -> tuple[Any, ...]:
    """The working-hours rules of the providers at the locations (`provider` and `location`
    turn a column into the condition) in force on some day of day_from..day_to."""
    return (
        provider(_WH.c.provider_id),
        location(_WH.c.location_id),
        _WH.c.effective_from <= day_to,
        sa.or_(_WH.c.effective_to.is_(None), _WH.c.effective_to >= day_from),
    )


def _time_off_where(org_id: Any, provider: Any, location: Any, lo: Any, hi: Any) -> tuple[Any, ...]:
    """Time off meeting the local span lo..hi of the providers at the locations, with the time
    off of everyone (no provider: the practice's holidays) and of every location (none named)."""
    return (
        _TO.c.org_id == org_id,
        _TO.c.starts_local < hi,
        _TO.c.ends_local > lo,
        sa.or_(provider(_TO.c.provider_id), _TO.c.provider_id.is_(None)),
        sa.or_(location(_TO.c.location_id), _TO.c.location_id.is_(None)),
    )


def _param(name: str) -> Any:
    return lambda c: c == sa.bindparam(name)


_RULES = Prepared(
    sa.select(_WH).where(
        *_rules_where(_param("provider_id"), _param("location_id"), sa.bindparam("day_from"), sa.bindparam("day_to"))
    )
)
_TIME_OFF = Prepared(
    sa.select(_TO)
    .where(
        *_time_off_where(
            sa.bindparam("org_id"), _param("provider_id"), _param("location_id"), sa.bindparam("lo"), sa.bindparam("hi")
        )
    )
    .order_by(_TO.c.starts_local)
)


def hours_and_time_off(
    session: Session, org_id: int, pairs: Iterable[tuple[int, int]], day_from: dt.date, day_to: dt.date
) -> dict[tuple[int, int], tuple[list[Any], list[Any]]]:
    """`rule_rows` and `time_off_rows` of several (provider, location) pairs over the local days
    day_from..day_to, in two statements for all (a rule or time off read here that applies on
    no day of a pair's own span opens or closes nothing there)."""
    out: dict[tuple[int, int], tuple[list[Any], list[Any]]] = {pair: ([], []) for pair in pairs}
    pids, lids = sorted({p for p, _ in out}), sorted({loc for _, loc in out})
    conn = session.connection()

    def among(ids: list[int]) -> Any:
        return lambda c: c.in_(ids)

    for r in conn.execute(sa.select(_WH).where(*_rules_where(among(pids), among(lids), day_from, day_to))):
        if (r.provider_id, r.location_id) in out:
            out[(r.provider_id, r.location_id)][0].append(r)
    lo, hi = dt.datetime.combine(day_from, dt.time()), dt.datetime.combine(day_to + dt.timedelta(days=1), dt.time())
    offs = sa.select(_TO).where(*_time_off_where(org_id, among(pids), among(lids), lo, hi)).order_by(_TO.c.starts_local)
    for o in conn.execute(offs):
        for (pid, lid), (_, off) in out.items():
            if o.provider_id in (None, pid) and o.location_id in (None, lid):  # as _time_off_where says
                off.append(o)
    return out


# A booking's check: the rules, each row also saying whether any time off meets the visit (so
# the time off itself is read only when some does: a booking without it runs one statement).
_OFF_MEETS = sa.exists().where(
    *_time_off_where(
        sa.bindparam("org_id"), _param("provider_id"), _param("location_id"), sa.bindparam("lo"), sa.bindparam("hi")
    )
)
_RULES_AND_OFF = Prepared(
    sa.select(_WH, _OFF_MEETS.label("off_meets")).where(
        *_rules_where(_param("provider_id"), _param("location_id"), sa.bindparam("day_from"), sa.bindparam("day_to"))
    )
)


def rule_rows(
    session: Session, provider_id: int, location_id: int, day_from: dt.date, day_to: dt.date
) -> Sequence[Any]:
    return _RULES.rows(
        session.connection(),
        {"provider_id": provider_id, "location_id": location_id, "day_from": day_from, "day_to": day_to},
    )


def time_off_rows(
    session: Session, org_id: int, provider_id: int, location_id: int, lo_local: dt.datetime, hi_local: dt.datetime
) -> Sequence[Any]:
    return _TIME_OFF.rows(
        session.connection(),
        {"org_id": org_id, "provider_id": provider_id, "location_id": location_id, "lo": lo_local, "hi": hi_local},
    )


def open_time(
    session: Session, org_id: int, provider_id: int, location: Location, day_from: dt.date, day_to: dt.date
) -> list[Interval]:
    """Working hours minus time off of one provider at one location, local days day_from..day_to."""
    assert location.id is not None
    rules = rule_rows(session, provider_id, location.id, day_from, day_to)
    if not rules:
        return []
    hours = hours_intervals(rules, location.tz, day_from, day_to)
    off = time_off_rows(
        session,
        org_id,
        provider_id,
        location.id,
        dt.datetime.combine(day_from, dt.time()),
        dt.datetime.combine(day_to + dt.timedelta(days=1), dt.time()),
    )
    return subtract(hours, time_off_intervals(off, location.tz))


def why_closed(
    session: Session, org_id: int, provider_id: int, location: Location, start: dt.datetime, end: dt.datetime
) -> str | None:
    """None when [start, end) lies inside the provider's open time, else the reason."""
    assert location.id is not None
    tz = location.tz
    local_start, local_end = lt.to_local(start, tz), lt.to_local(end, tz)
    d0, d1 = local_start.date(), local_end.date()
    lo, hi = local_start.replace(tzinfo=None), local_end.replace(tzinfo=None)
    rules = _RULES_AND_OFF.rows(
        session.connection(),
        {
            "org_id": org_id,
            "provider_id": provider_id,
            "location_id": location.id,
            "day_from": d0,
            "day_to": d1,
            "lo": lo,
            "hi": hi,
        },
    )
    hours = hours_intervals(rules, tz, d0, d1)
    if not any(s <= start and end <= e for s, e in hours):
        day = lt.to_local(start, tz)
        todays = [
            f"{lt.fmt_local(s, tz, '%H:%M')}-{lt.fmt_local(e, tz, '%H:%M')}"
            for s, e in hours
            if lt.to_local(s, tz).date() == day.date()
        ]
        when = f"{day:%a %Y-%m-%d}: " + (", ".join(todays) if todays else "not working")
        return f"outside working hours at {location.name} ({when})"
    if not any(r.off_meets for r in rules):
        return None
    for r in time_off_rows(session, org_id, provider_id, location.id, lo, hi):
        s, e = lt.wall_to_utc(r.starts_local, tz), lt.wall_to_utc(r.ends_local, tz)
        if s < end and e > start:
            what = "time off" if r.provider_id else "practice holiday"
            return f"on {what}{' (' + r.reason + ')' if r.reason else ''}"
    return None


# ---- working hours -------------------------------------------------------------------------


def _hours_out(session: Session, rule: WorkingHours) -> WorkingHoursOut:
    p = session.get(Provider, rule.provider_id)
    loc = session.get(Location, rule.location_id)
    assert p is not None and loc is not None  # foreign keys of the rule
    return WorkingHoursOut(
        id=rule.id,
        provider_id=p.id,
        provider=provider_name(p),
        location=loc.name,
        days=rule.days,
        start_time=rule.start_time.strftime("%H:%M"),
        end_time=rule.end_time.strftime("%H:%M"),
        effective_from=rule.effective_from,
        effective_to=rule.effective_to,
        rrule=rule.rrule,
    )


def provider_location(
    ctx: Ctx, provider: Provider, location_ref: str | int | None, *, field: str = "location"
) -> Location:
    """The location a provider works at: the one named (it must be one of theirs) or their only one."""
    assert provider.id is not None
    session = ctx.session
    ids = provider_location_ids(session, provider.id)
    if location_ref is None or not str(location_ref).strip():
        default = ctx.settings.default_location if ctx.settings else None
        if len(ids) == 1:
            only = session.get(Location, ids[0])
            assert only is not None
            return only
        if default:
            try:
                loc = find_location(ctx, default)
                if loc.id in ids:
                    return loc
            except NotFoundError:
                pass
        if not ids:
            raise ValidationError(
                field,
                f"{provider_name(provider)} works at no location",
                action=Action(
                    "providers",
                    "update",
                    target=str(provider.id),
                    give=(("location", "LOCATION"),),
                    purpose="add one with",
                ),
            )
        names = ", ".join(
            session.execute(sa.select(Location.name).where(col(Location.id).in_(ids)).order_by(Location.id)).scalars()
        )
        raise ValidationError(field, f"is required: {provider_name(provider)} works at {names}")
    loc = find_location(ctx, location_ref, field=field)
    if loc.id not in ids:
        raise ValidationError(field, f"{provider_name(provider)} does not work at {loc.name}")
    return loc


def _parse_rrule(field: str, text: str, start: dt.datetime) -> str:
    value = text.strip()
    if value.upper().startswith("RRULE:"):
        value = value[6:]
    if "FREQ=" not in value.upper():
        raise ValidationError(field, f"{text!r} is not an RRULE (it needs FREQ=, e.g. FREQ=WEEKLY;INTERVAL=2;BYDAY=FR)")
    if "DTSTART" in value.upper():
        raise ValidationError(field, "the rule counts from the first day the hours apply; leave DTSTART out")
    try:
        rrulestr(value, dtstart=start)
    except (ValueError, TypeError) as exc:
        raise ValidationError(field, f"{text!r} is not a valid RRULE ({exc})") from None
    return value.upper()


def _rrule_days(rule: str, start: dt.date) -> str:
    for part in rule.split(";"):
        if part.startswith("BYDAY="):
            codes = {c[-2:] for c in part[6:].split(",")}
            return ",".join(c for c in lt.DAY_CODES if c in codes)
    return lt.DAY_CODES[start.weekday()]


def set_hours(
    ctx: Ctx,
    provider: str | int,
    *,
    location: str | int | None = None,
    days: str | None = None,
    start: str | dt.time | None = None,
    end: str | dt.time | None = None,
    effective_from: str | dt.date | None = None,
    effective_to: str | dt.date | None = None,
    rrule: str | None = None,
    add: bool = False,
) -> list[WorkingHoursOut]:
    """Set a provider's hours at a location on some days from a date on. Unless `add`, earlier
    rules for those days are ended the day before (the other days keep theirs). Returns the
    rules in force for that provider and location."""
    require(ctx.actor, "schedule.write")
    p = find_provider(ctx, provider, field="provider")
    loc = provider_location(ctx, p, location)
    assert p.id is not None and loc.id is not None
    start_t = lt.parse_time("start", start)
    end_t = lt.parse_time("end", end)
    if end_t <= start_t:
        raise ValidationError("end", f"{end_t:%H:%M} is not after the start {start_t:%H:%M}")
    today = lt.local_now(ctx.now(), loc.tz).date()
    frm = lt.parse_day("effective_from", effective_from, today=today) if effective_from else today
    to = lt.parse_day("effective_to", effective_to, today=today) if effective_to else None
    if to is not None and to < frm:
        raise ValidationError("effective_to", f"{to} is before the first day, {frm}")
    rule_text: str | None = None
    if rrule:
        rule_text = _parse_rrule("rrule", rrule, dt.datetime.combine(frm, start_t))
        day_codes = _rrule_days(rule_text, frm)
    else:
        day_codes = lt.parse_days("days", days)
    chosen = set(day_codes.split(","))
    session = ctx.session
    changed: list[int | None] = []
    if not add:
        for old in load_rules(session, p.id, loc.id, frm, to or dt.date.max):
            old_days = set(old.days.split(","))
            if not old_days & chosen:
                continue
            keep = old_days - chosen
            resumes = to is not None and (old.effective_to is None or old.effective_to > to)
            if keep and not old.rrule:
                # the other days keep their hours until the old rule resumes whole
                session.add(
                    WorkingHours(
                        org_id=ctx.org_id,
                        provider_id=p.id,
                        location_id=loc.id,
                        days=",".join(c for c in lt.DAY_CODES if c in keep),
                        start_time=old.start_time,
                        end_time=old.end_time,
                        effective_from=max(frm, old.effective_from),
                        effective_to=to if resumes else old.effective_to,
                    )
                )
            resume_from = to + dt.timedelta(days=1) if to is not None and resumes else None
            if to is not None and resume_from and old.rrule:
                # restart on its next occurrence: an RRULE counts from effective_from, so any
                # other restart date could shift an every-other-week rhythm by a week
                nxt = rrulestr(old.rrule, dtstart=dt.datetime.combine(old.effective_from, dt.time())).after(
                    dt.datetime.combine(to, dt.time.max)
                )
                resume_from = (
                    nxt.date() if nxt and (old.effective_to is None or nxt.date() <= old.effective_to) else None
                )
            if resume_from:
                # the old rule resumes after the new one ends
                session.add(
                    WorkingHours(
                        org_id=ctx.org_id,
                        provider_id=p.id,
                        location_id=loc.id,
                        days=old.days,
                        rrule=old.rrule,
                        start_time=old.start_time,
                        end_time=old.end_time,
                        effective_from=resume_from,
                        effective_to=old.effective_to,
                    )
                )
            if old.effective_from >= frm:
                session.delete(old)
            else:
                old.effective_to = frm - dt.timedelta(days=1)
            changed.append(old.id)
    rule = WorkingHours(
        org_id=ctx.org_id,
        provider_id=p.id,
        location_id=loc.id,
        days=day_codes,
        start_time=start_t,
        end_time=end_t,
        effective_from=frm,
        effective_to=to,
        rrule=rule_text,
    )
    session.add(rule)
    session.flush()
    audit.record(
        ctx,
        audit.Event(
            "update",
            "working_hours",
            rule.id,
            fields=["days", "start_time", "end_time"],
            detail=f"provider {p.id} at location {loc.id}" + (f"; ended {changed}" if changed else ""),
        ),
    )
    return list_hours(ctx, provider=p.id, location=loc.id, _checked=True)


def list_hours(
    ctx: Ctx,
    *,
    provider: str | int | None = None,
    location: str | int | None = None,
    on: str | dt.date | None = None,
    _checked: bool = False,
) -> list[WorkingHoursOut]:
    """Rules, optionally of one provider / location, or only those in force on a date."""
    if not _checked:
        require(ctx.actor, "schedule.read")
    effective_to = col(WorkingHours.effective_to)
    q = sa.select(WorkingHours).where(WorkingHours.org_id == ctx.org_id)
    if provider is not None:
        q = q.where(WorkingHours.provider_id == find_provider(ctx, provider, field="provider").id)
    if location is not None:
        q = q.where(WorkingHours.location_id == find_locations(ctx, [location])[0].id)
    if on is not None:
        day = lt.parse_day("on", on, today=ctx.now().date())
        q = q.where(WorkingHours.effective_from <= day, sa.or_(effective_to.is_(None), effective_to >= day))
    else:
        today = ctx.now().date() - dt.timedelta(days=1)
        q = q.where(sa.or_(effective_to.is_(None), effective_to >= today))
    q = q.order_by(
        WorkingHours.provider_id, WorkingHours.location_id, WorkingHours.effective_from, WorkingHours.start_time
    )
    return [_hours_out(ctx.session, r) for r in ctx.session.execute(q).scalars()]


def remove_hours(ctx: Ctx, rule_id: str | int) -> WorkingHoursOut:
    require(ctx.actor, "schedule.write")
    rule = ctx.session.get(WorkingHours, int(rule_id)) if str(rule_id).strip().isdigit() else None
    if rule is None or rule.org_id != ctx.org_id:
        raise NotFoundError(f"no working-hours rule {rule_id!r}", action=Action("schedule hours", "list"))
    out = _hours_out(ctx.session, rule)
    ctx.session.delete(rule)
    ctx.session.flush()
    audit.record(ctx, audit.Event("delete", "working_hours", out.id))
    return out


# ---- time off ------------------------------------------------------------------------------


def _parse_bound(field: str, text: str | dt.date | None, today: dt.date, *, end: bool) -> dt.datetime:
    """A date (whole day: an end date includes that day) or a local date and time."""
    if isinstance(text, dt.datetime):
        return text.replace(tzinfo=None)
    value = str(text or "").strip()
    if not value:
        raise ValidationError(field, "is required (YYYY-MM-DD or YYYY-MM-DD HH:MM)")
    day: dt.date | None = None
    if len(value) <= 10:
        day = lt.parse_day(field, value, today=today)
    else:
        with contextlib.suppress(ValidationError):  # "next monday" is a day too
            day = lt.parse_day(field, value, today=today)
    if day is not None:
        return dt.datetime.combine(day + dt.timedelta(days=1) if end else day, dt.time())
    if (wall := lt.parse_relative_wall(field, value, today)) is not None:  # "next monday 13:00"
        return wall
    try:
        parsed = lt.iso_datetime(value)
    except ValueError:
        raise ValidationError(field, f"{text!r} is not a date or a date and time") from None
    if parsed.tzinfo is not None:
        raise ValidationError(field, "give local wall-clock time without an offset")
    return parsed


def _timeoff_out(session: Session, r: TimeOff) -> TimeOffOut:
    p = session.get(Provider, r.provider_id) if r.provider_id else None
    loc = session.get(Location, r.location_id) if r.location_id else None
    return TimeOffOut(
        id=r.id,
        provider_id=r.provider_id,
        provider=provider_name(p) if p else None,
        location=loc.name if loc else None,
        starts=r.starts_local,
        ends=r.ends_local,
        reason=r.reason,
    )


def add_time_off(
    ctx: Ctx,
    *,
    provider: str | int | None = None,
    location: str | int | None = None,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    reason: str | None = None,
) -> tuple[TimeOffOut, list[int]]:
    """Time off for a provider (or, without one, a practice holiday) from `start` to `end`
    (dates include the whole last day). Returns it and the ids of appointments it overlaps
    (left in place: staff move them)."""
    require(ctx.actor, "schedule.write")
    p = find_provider(ctx, provider, field="provider") if provider else None
    loc = find_location(ctx, location, field="location") if location else None
    today = ctx.now().date()
    s = _parse_bound("start", start, today, end=False)
    e = _parse_bound("end", end if end else start, today, end=True)
    if e <= s:
        raise ValidationError("end", f"{e:%Y-%m-%d %H:%M} is not after the start {s:%Y-%m-%d %H:%M}")
    r = TimeOff(
        org_id=ctx.org_id,
        provider_id=p.id if p else None,
        location_id=loc.id if loc else None,
        starts_local=s,
        ends_local=e,
        reason=v.optional_text("reason", reason, 200),
    )
    ctx.session.add(r)
    ctx.session.flush()
    audit.record(ctx, audit.Event("create", "time_off", r.id, fields=["provider", "location", "starts", "ends"]))
    # appointments now inside the time off, per location zone
    locs = (
        [loc] if loc else ctx.session.execute(sa.select(Location).where(Location.org_id == ctx.org_id)).scalars().all()
    )
    affected: list[int] = []
    for place in locs:
        lo, hi = lt.wall_to_utc(s, place.tz), lt.wall_to_utc(e, place.tz)
        q = sa.select(Appointment.id).where(
            Appointment.location_id == place.id,
            Appointment.start_utc < hi,
            Appointment.end_utc > lo,
            Appointment.status.in_(BLOCKING_STATUSES),
        )
        if p:
            q = q.where(Appointment.provider_id == p.id)
        affected.extend(i for i in ctx.session.execute(q.order_by(Appointment.start_utc)).scalars() if i is not None)
    return _timeoff_out(ctx.session, r), affected


def list_time_off(
    ctx: Ctx,
    *,
    provider: str | int | None = None,
    location: str | int | None = None,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
) -> list[TimeOffOut]:
    require(ctx.actor, "schedule.read")
    today = ctx.now().date()
    s = _parse_bound("start", start, today, end=False) if start else dt.datetime.combine(today, dt.time())
    e = _parse_bound("end", end, today, end=True) if end else dt.datetime.max
    pid = find_provider(ctx, provider, field="provider").id if provider else None
    lid = find_locations(ctx, [location])[0].id if location else None
    rows = load_time_off(ctx.session, ctx.org_id, pid, lid, s, e)
    return [_timeoff_out(ctx.session, r) for r in rows]


def remove_time_off(ctx: Ctx, time_off_id: str | int) -> TimeOffOut:
    require(ctx.actor, "schedule.write")
    r = ctx.session.get(TimeOff, int(time_off_id)) if str(time_off_id).strip().isdigit() else None
    if r is None or r.org_id != ctx.org_id:
        raise NotFoundError(f"no time off {time_off_id!r}", action=Action("schedule timeoff", "list"))
    out = _timeoff_out(ctx.session, r)
    ctx.session.delete(r)
    ctx.session.flush()
    audit.record(ctx, audit.Event("delete", "time_off", out.id))
    return out


# ---- the week view -------------------------------------------------------------------------


def week(
    ctx: Ctx, provider: str | int, *, week_of: str | None = None, location: str | int | None = None
) -> dict[str, Any]:
    """A provider's week: per day and location, the hours, time off, bookings and free minutes
    (no patient data)."""
    require(ctx.actor, "schedule.read")
    p = find_provider(ctx, provider, field="provider")
    assert p.id is not None
    if location:
        locs = [provider_location(ctx, p, location)]
    else:
        ids = provider_location_ids(ctx.session, p.id)
        locs = list(
            ctx.session.execute(sa.select(Location).where(col(Location.id).in_(ids)).order_by(Location.id)).scalars()
        )
    tz0 = locs[0].tz if locs else "UTC"
    # the field of `week_of` is `week`, the name the faces ask for it by
    monday = lt.parse_week("week", week_of, today=lt.local_now(ctx.now(), tz0).date())
    sunday = monday + dt.timedelta(days=6)
    days = []
    for loc in locs:
        assert loc.id is not None
        rules = load_rules(ctx.session, p.id, loc.id, monday, sunday)
        off_rows = load_time_off(
            ctx.session,
            ctx.org_id,
            p.id,
            loc.id,
            dt.datetime.combine(monday, dt.time()),
            dt.datetime.combine(sunday + dt.timedelta(days=1), dt.time()),
        )
        lo, _ = lt.day_bounds_utc(monday, loc.tz)
        _, hi = lt.day_bounds_utc(sunday, loc.tz)
        appts = ctx.session.execute(
            sa.select(
                Appointment.id,
                Appointment.start_utc,
                Appointment.end_utc,
                Appointment.block_end_utc,
                Appointment.status,
                AppointmentType.name,
            )
            .join(AppointmentType, AppointmentType.id == Appointment.type_id)
            .where(
                Appointment.provider_id == p.id,
                Appointment.location_id == loc.id,
                Appointment.start_utc >= lo,
                Appointment.start_utc < hi,
            )
            .order_by(Appointment.start_utc)
        ).all()
        for i in range(7):
            d = monday + dt.timedelta(days=i)
            hours = hours_intervals(rules, loc.tz, d, d)
            offs = [
                r
                for r in off_rows
                if r.starts_local < dt.datetime.combine(d + dt.timedelta(days=1), dt.time())
                and r.ends_local > dt.datetime.combine(d, dt.time())
            ]
            open_ = subtract(hours, time_off_intervals(offs, loc.tz))
            ds, de = lt.day_bounds_utc(d, loc.tz)
            todays = [a for a in appts if ds <= a.start_utc < de]
            busy = merge((a.start_utc, a.block_end_utc) for a in todays if a.status in BLOCKING_STATUSES)
            free = subtract(open_, busy)
            fmt = lambda s, e, tz=loc.tz: f"{lt.fmt_local(s, tz, '%H:%M')}-{lt.fmt_local(e, tz, '%H:%M')}"  # noqa: E731
            days.append(
                {
                    "date": d,
                    "weekday": d.strftime("%a"),
                    "location": loc.name,
                    "tz": loc.tz,
                    "hours": [fmt(s, e) for s, e in hours],
                    "time_off": [
                        {"id": r.id, "from": r.starts_local, "to": r.ends_local, "reason": r.reason} for r in offs
                    ],
                    "free": [fmt(s, e) for s, e in free],
                    "free_min": int(sum((e - s).total_seconds() for s, e in free) // 60),
                    "booked": sum(1 for a in todays if a.status in BLOCKING_STATUSES),
                    "booked_min": int(
                        sum((a.end_utc - a.start_utc).total_seconds() for a in todays if a.status in BLOCKING_STATUSES)
                        // 60
                    ),
                    "appointments": [
                        {
                            "id": a.id,
                            "start": lt.to_local(a.start_utc, loc.tz),
                            "end": lt.to_local(a.end_utc, loc.tz),
                            "type": a.name,
                            "status": a.status,
                        }
                        for a in todays
                    ],
                }
            )
    days.sort(key=lambda x: (x["date"], x["location"]))
    return {
        "provider_id": p.id,
        "provider": provider_name(p),
        "week": f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}",
        "from": monday,
        "to": sunday,
        "days": days,
    }


# ---- policy --------------------------------------------------------------------------------


def _org(ctx: Ctx) -> Organization:
    org = ctx.session.get(Organization, ctx.org_id)
    assert org is not None  # the actor's own organization
    return org


def get_policy(ctx: Ctx) -> dict[str, int]:
    """The late-cancellation window (hours) and the slot grid (minutes)."""
    require(ctx.actor, "schedule.read")
    org = _org(ctx)
    return {"late_cancel_hours": org.late_cancel_hours, "slot_step_min": org.slot_step_min}


def set_policy(
    ctx: Ctx, *, late_cancel_hours: int | str | None = None, slot_step_min: int | str | None = None
) -> dict[str, int]:
    """Change the late-cancellation window and the slot grid (the field of `slot_step_min` is
    `slot_step`, the name the faces ask for it by)."""
    require(ctx.actor, "schedule.setup")
    org = _org(ctx)
    fields = []
    if late_cancel_hours is not None:
        try:
            n = int(late_cancel_hours)
        except (TypeError, ValueError):
            raise ValidationError("late_cancel_hours", f"{late_cancel_hours!r} is not a whole number") from None
        if not 0 <= n <= 24 * 14:
            raise ValidationError("late_cancel_hours", "must be between 0 and 336")
        org.late_cancel_hours = n
        fields.append("late_cancel_hours")
    if slot_step_min is not None:
        try:
            n = int(slot_step_min)
        except (TypeError, ValueError):
            raise ValidationError("slot_step", f"{slot_step_min!r} is not a whole number") from None
        if n not in (5, 10, 15, 20, 30, 60):
            raise ValidationError("slot_step", "must be one of 5, 10, 15, 20, 30, 60 minutes")
        org.slot_step_min = n
        fields.append("slot_step_min")
    if not fields:
        raise ValidationError("options", "nothing to change")
    ctx.session.flush()
    audit.record(ctx, audit.Event("update", "organization", org.id, fields=fields))
    return {"late_cancel_hours": org.late_cancel_hours, "slot_step_min": org.slot_step_min}
