"""Wall-clock time in a location's zone: parsing what people type, and turning local dates and
times into UTC without letting a change of clocks move anything.

A local time that does not exist (inside the spring-forward gap) or exists twice (the fall-back
hour) is refused when a person typed it; an explicit offset ("2026-11-01 01:30-05:00") settles
the ambiguous case. Rules (working hours, time off) are resolved leniently: a boundary in the
gap moves to the first valid instant after it, an ambiguous one takes the first occurrence.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from zoneinfo import ZoneInfo

from hpms.errors import ValidationError

DAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_WORDS = {
    "mon": "MO",
    "monday": "MO",
    "tue": "TU",
    "tues": "TU",
    "tuesday": "TU",
    "wed": "WE",
    "wednesday": "WE",
    "thu": "TH",
    "thur": "TH",
    "thurs": "TH",
    "thursday": "TH",
    "fri": "FR",
    "friday": "FR",
    "sat": "SA",
    "saturday": "SA",
    "sun": "SU",
    "sunday": "SU",
}
_TIME = re.compile(r"^(\d{1,2})(?::?(\d{2}))?\s*(am|pm)?$", re.I)
_WEEKDAY = "|".join(sorted(_DAY_WORDS, key=len, reverse=True))
_RELATIVE = re.compile(rf"^(today|tomorrow|yesterday|(?:next\s+)?(?:{_WEEKDAY}))(?:[ T]+(.+))?$", re.I)
_NEXT_DAY = re.compile(rf"^(next\s+)?({_WEEKDAY})$", re.I)
_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.I)
_ONE_DIGIT_HOUR = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d)(?=:)")


@functools.lru_cache(maxsize=64)
def zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def to_local(value: dt.datetime, tz: str) -> dt.datetime:
    return value.astimezone(zone(tz))


def local_now(now: dt.datetime, tz: str) -> dt.datetime:
    return now.astimezone(zone(tz))


def _offsets(naive: dt.datetime, z: ZoneInfo) -> tuple[dt.timedelta, dt.timedelta]:
    first, second = naive.replace(tzinfo=z, fold=0).utcoffset(), naive.replace(tzinfo=z, fold=1).utcoffset()
    assert first is not None and second is not None  # a zone gives every instant an offset
    return first, second


def exists(naive: dt.datetime, tz: str) -> bool:
    """False inside a spring-forward gap."""
    z = zone(tz)
    aware = naive.replace(tzinfo=z)
    back = aware.astimezone(dt.UTC).astimezone(z).replace(tzinfo=None)
    return back == naive


def is_ambiguous(naive: dt.datetime, tz: str) -> bool:
    first, second = _offsets(naive, zone(tz))
    return first != second and exists(naive, tz)


def wall_to_utc(naive: dt.datetime, tz: str) -> dt.datetime:
    """Lenient: a time in the gap moves forward by the gap, an ambiguous one is the first."""
    if not exists(naive, tz):
        return _gap_end(naive, tz)
    return naive.replace(tzinfo=zone(tz), fold=0).astimezone(dt.UTC)


def _gap_end(naive: dt.datetime, tz: str) -> dt.datetime:
    """The first valid instant after a gap that contains `naive` (searched minute by minute,
    gaps are at most a few hours)."""
    z = zone(tz)
    probe = naive
    for _ in range(24 * 60):
        probe += dt.timedelta(minutes=1)
        probe = probe.replace(second=0, microsecond=0)
        if exists(probe, tz):
            return probe.replace(tzinfo=z).astimezone(dt.UTC)
    raise ValueError(f"no valid time after {naive} in {tz}")  # pragma: no cover


def wall_to_utc_strict(field: str, naive: dt.datetime, tz: str) -> dt.datetime:
    """A time a person gave: refused in the gap or the repeated hour."""
    if not exists(naive, tz):
        raise ValidationError(field, f"{naive:%Y-%m-%d %H:%M} does not exist in {tz} (clocks spring forward)")
    if is_ambiguous(naive, tz):
        first, second = _offsets(naive, zone(tz))
        raise ValidationError(
            field,
            f"{naive:%Y-%m-%d %H:%M} happens twice in {tz} (clocks fall back); add the offset, "
            f"e.g. {naive:%Y-%m-%d %H:%M}{_fmt_offset(first)} or {naive:%Y-%m-%d %H:%M}{_fmt_offset(second)}",
        )
    return naive.replace(tzinfo=zone(tz)).astimezone(dt.UTC)


def _fmt_offset(off: dt.timedelta) -> str:
    minutes = int(off.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def parse_time(field: str, text: str | dt.time | None) -> dt.time:
    """08:00, 8:00, 0800, 8am, 5:30pm."""
    if isinstance(text, dt.time):
        return text
    if text is None or not str(text).strip():
        raise ValidationError(field, "is required (HH:MM)")
    m = _TIME.match(str(text).strip())
    if not m:
        raise ValidationError(field, f"{text!r} is not a time (HH:MM)")
    hour, minute, half = int(m.group(1)), int(m.group(2) or 0), (m.group(3) or "").lower()
    if half:
        if not 1 <= hour <= 12:
            raise ValidationError(field, f"{text!r} is not a time")
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59:
        raise ValidationError(field, f"{text!r} is not a time of day")
    return dt.time(hour, minute)


def parse_day(field: str, text: str | dt.date | None, *, today: dt.date) -> dt.date:
    """today, tomorrow, yesterday, +N (days from today), monday or next monday (the first one
    after today), or YYYY-MM-DD."""
    if isinstance(text, dt.datetime):
        return text.date()
    if isinstance(text, dt.date):
        return text
    value = (text or "").strip().lower()
    if not value or value == "today":
        return today
    if value == "tomorrow":
        return today + dt.timedelta(days=1)
    if value == "yesterday":
        return today - dt.timedelta(days=1)
    if re.fullmatch(r"[+-]\d{1,4}", value):
        return today + dt.timedelta(days=int(value))
    if m := _NEXT_DAY.match(value):  # "monday": the next one after today; "next monday": the same
        ahead = (DAY_CODES.index(_DAY_WORDS[m.group(2).lower()]) - today.weekday() - 1) % 7 + 1
        return today + dt.timedelta(days=ahead)
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationError(field, f"{text!r} is not a date (YYYY-MM-DD, today, tomorrow, next monday)") from None


def parse_week(field: str, text: str | None, *, today: dt.date) -> dt.date:
    """The Monday of an ISO week: 2026-W50, this, next, last, or any date inside the week."""
    value = (text or "this").strip().lower()
    if value in ("this", "current"):
        day = today
    elif value == "next":
        day = today + dt.timedelta(days=7)
    elif value in ("last", "previous"):
        day = today - dt.timedelta(days=7)
    elif m := _WEEK.match(value):
        try:
            return dt.date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
        except ValueError:
            raise ValidationError(field, f"{text!r} is not an ISO week") from None
    else:
        day = parse_day(field, value, today=today)
    return day - dt.timedelta(days=day.weekday())


def parse_relative_wall(field: str, text: str, today: dt.date) -> dt.datetime | None:
    """`tomorrow 9am`, `next monday 13:00` as a naive local date and time (midnight without a
    time); None when `text` is not written that way."""
    m = _RELATIVE.match(text.strip())
    if m is None:
        return None
    day = parse_day(field, m.group(1), today=today)
    return dt.datetime.combine(day, parse_time(field, m.group(2)) if m.group(2) else dt.time(0, 0))


def parse_local(field: str, text: str | dt.datetime | None, tz: str, *, now: dt.datetime) -> dt.datetime:
    """What a person typed, as a UTC instant. Read in `tz` unless it carries an offset.
    Accepts `2026-12-01 09:30`, `2026-12-01T09:30:00-05:00`, `today 14:00`, `tomorrow 9am`,
    `next monday 10:00`."""
    if isinstance(text, dt.datetime):
        if text.tzinfo is None:
            return wall_to_utc_strict(field, text, tz)
        return text.astimezone(dt.UTC)
    value = (text or "").strip()
    if not value:
        raise ValidationError(field, "is required (YYYY-MM-DD HH:MM)")
    today = local_now(now, tz).date()
    if (wall := parse_relative_wall(field, value, today)) is not None:
        return wall_to_utc_strict(field, wall, tz)
    try:
        parsed = iso_datetime(value)
    except ValueError:
        raise ValidationError(field, f"{text!r} is not a date and time (YYYY-MM-DD HH:MM)") from None
    if parsed.tzinfo is not None:
        return parsed.astimezone(dt.UTC)
    return wall_to_utc_strict(field, parsed, tz)


def iso_datetime(text: str) -> dt.datetime:
    """ISO 8601 date and time as typed (`2026-12-01 09:30`, `2026-12-01T09:30:00-05:00`), also
    with a one-digit hour (`2026-12-01 9:30`) or a lower-case z; naive unless it carries an
    offset. Raises ValueError."""
    value = _ONE_DIGIT_HOUR.sub(r"\1 0\2", text.strip())
    return dt.datetime.fromisoformat(value.replace("z", "Z"))


def parse_days(field: str, text: str | None) -> str:
    """MO-FR, mon,wed,fri, weekdays, daily -> 'MO,TU,...' in week order."""
    value = (text or "").strip()
    if not value:
        raise ValidationError(field, "is required (e.g. MO-FR or mon,wed,fri)")
    low = value.lower()
    if low in ("weekdays", "workdays"):
        return "MO,TU,WE,TH,FR"
    if low in ("daily", "all", "everyday", "every day"):
        return ",".join(DAY_CODES)
    if low == "weekends":
        return "SA,SU"
    picked: set[int] = set()
    for part in re.split(r"[,\s]+", value):
        if not part:
            continue
        ends = part.split("-")
        if len(ends) > 2:
            raise ValidationError(field, f"{part!r} is not a day or a range of days")
        idx = [_day_index(field, e) for e in ends]
        if len(idx) == 1:
            picked.add(idx[0])
        else:
            i = idx[0]
            while True:
                picked.add(i)
                if i == idx[1]:
                    break
                i = (i + 1) % 7
    return ",".join(DAY_CODES[i] for i in sorted(picked))


def _day_index(field: str, word: str) -> int:
    w = word.strip()
    code = w.upper() if w.upper() in DAY_CODES else _DAY_WORDS.get(w.lower())
    if code is None:
        raise ValidationError(field, f"{word!r} is not a day of the week (MO..SU)")
    return DAY_CODES.index(code)


def day_bounds_utc(day: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """[local midnight, next local midnight) in UTC."""
    start = wall_to_utc(dt.datetime.combine(day, dt.time()), tz)
    end = wall_to_utc(dt.datetime.combine(day + dt.timedelta(days=1), dt.time()), tz)
    return start, end


def fmt_local(value: dt.datetime, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return to_local(value, tz).strftime(fmt)
