"""Wall-clock parsing and the UTC conversions around changes of clocks (no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from hpms.errors import ExitCode, ValidationError
from hpms.services.platform import localtime as lt
from tests.services.sched import BERLIN, NY, utc

NOW = utc(2026, 6, 15, 14, 30)  # Monday, 10:30 in New York


# ---- parse_local ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tz", "expected"),
    [
        ("2026-06-16 09:00", NY, utc(2026, 6, 16, 13)),
        ("2026-06-16T09:00", NY, utc(2026, 6, 16, 13)),
        ("2026-12-16 09:00", NY, utc(2026, 12, 16, 14)),
        ("2026-06-16 09:00", BERLIN, utc(2026, 6, 16, 7)),
        ("2026-12-16 09:00", BERLIN, utc(2026, 12, 16, 8)),
        ("2026-06-16T09:30:00-05:00", NY, utc(2026, 6, 16, 14, 30)),
        ("2026-06-16 09:30Z", BERLIN, utc(2026, 6, 16, 9, 30)),
        ("today 14:00", NY, utc(2026, 6, 15, 18)),
        ("tomorrow 9am", NY, utc(2026, 6, 16, 13)),
        ("yesterday 5:30pm", BERLIN, utc(2026, 6, 14, 15, 30)),
        ("Tomorrow", NY, utc(2026, 6, 16, 4)),
    ],
)
def test_parse_local_reads_in_the_zone_and_returns_utc(text, tz, expected):
    got = lt.parse_local("--at", text, tz, now=NOW)
    assert got == expected
    assert got.utcoffset() == dt.timedelta(0)


def test_parse_local_today_is_the_zones_today():
    late = utc(2026, 6, 15, 23, 30)  # already the 16th in Berlin, still the 15th in New York
    assert lt.parse_local("--at", "today 10:00", BERLIN, now=late) == utc(2026, 6, 16, 8)
    assert lt.parse_local("--at", "today 10:00", NY, now=late) == utc(2026, 6, 15, 14)


@pytest.mark.parametrize(
    ("text", "tz"), [("2026-03-08 02:30", NY), ("2026-03-29 02:30", BERLIN), ("2026-03-08 02:00", NY)]
)
def test_a_time_in_the_spring_gap_is_refused_naming_the_field(text, tz):
    with pytest.raises(ValidationError) as err:
        lt.parse_local("--at", text, tz, now=NOW)
    assert err.value.field == "--at"
    assert err.value.exit_code == ExitCode.USAGE
    assert "does not exist" in err.value.message and tz in err.value.message


@pytest.mark.parametrize(
    ("text", "tz", "first", "second"),
    [
        ("2026-11-01 01:30", NY, "2026-11-01 01:30-04:00", "2026-11-01 01:30-05:00"),
        ("2026-10-25 02:30", BERLIN, "2026-10-25 02:30+02:00", "2026-10-25 02:30+01:00"),
    ],
)
def test_an_ambiguous_fall_back_time_is_refused_with_both_offsets(text, tz, first, second):
    with pytest.raises(ValidationError) as err:
        lt.parse_local("--when", text, tz, now=NOW)
    assert err.value.field == "--when"
    assert "happens twice" in err.value.message
    assert first in err.value.message and second in err.value.message
    # each suggestion is accepted and names a different instant, an hour apart
    a, b = (lt.parse_local("--when", s, tz, now=NOW) for s in (first, second))
    assert b - a == dt.timedelta(hours=1)


def test_explicit_offsets_settle_the_repeated_hour():
    assert lt.parse_local("--at", "2026-11-01 01:30-04:00", NY, now=NOW) == utc(2026, 11, 1, 5, 30)
    assert lt.parse_local("--at", "2026-11-01 01:30-05:00", NY, now=NOW) == utc(2026, 11, 1, 6, 30)
    assert lt.parse_local("--at", "2026-11-01T01:30:00-05:00", NY, now=NOW) == utc(2026, 11, 1, 6, 30)


def test_parse_local_with_datetimes():
    aware = dt.datetime(2026, 6, 16, 9, 0, tzinfo=lt.zone(BERLIN))
    assert lt.parse_local("--at", aware, NY, now=NOW) == utc(2026, 6, 16, 7)
    assert lt.parse_local("--at", dt.datetime(2026, 6, 16, 9), NY, now=NOW) == utc(2026, 6, 16, 13)
    with pytest.raises(ValidationError) as err:
        lt.parse_local("--at", dt.datetime(2026, 3, 8, 2, 15), NY, now=NOW)
    assert err.value.field == "--at"


@pytest.mark.parametrize(
    "text", ["", "   ", None, "next tuesdays", "tuesday next", "2026-13-01 09:00", "tomorrow 25:00"]
)
def test_parse_local_refuses_garbage(text):
    with pytest.raises(ValidationError) as err:
        lt.parse_local("--at", text, NY, now=NOW)
    assert err.value.field == "--at"


# ---- lenient rule resolution and day bounds --------------------------------------------------


def test_wall_to_utc_is_lenient_for_rules():
    # in the gap: moved forward to the first valid instant (03:00 EDT)
    assert lt.wall_to_utc(dt.datetime(2026, 3, 8, 2, 30), NY) == utc(2026, 3, 8, 7)
    assert lt.wall_to_utc(dt.datetime(2026, 3, 29, 2, 0), BERLIN) == utc(2026, 3, 29, 1)
    # repeated hour: the first occurrence
    assert lt.wall_to_utc(dt.datetime(2026, 11, 1, 1, 30), NY) == utc(2026, 11, 1, 5, 30)
    assert lt.wall_to_utc(dt.datetime(2026, 10, 25, 2, 30), BERLIN) == utc(2026, 10, 25, 0, 30)


def test_exists_and_is_ambiguous():
    assert not lt.exists(dt.datetime(2026, 3, 8, 2, 30), NY)
    assert lt.exists(dt.datetime(2026, 3, 8, 3, 0), NY)
    assert lt.is_ambiguous(dt.datetime(2026, 11, 1, 1, 0), NY)
    assert not lt.is_ambiguous(dt.datetime(2026, 11, 1, 2, 0), NY)
    assert not lt.is_ambiguous(dt.datetime(2026, 3, 8, 2, 30), NY)


def test_day_bounds_on_days_of_23_and_25_hours():
    s, e = lt.day_bounds_utc(dt.date(2026, 3, 8), NY)
    assert (s, e) == (utc(2026, 3, 8, 5), utc(2026, 3, 9, 4)) and e - s == dt.timedelta(hours=23)
    s, e = lt.day_bounds_utc(dt.date(2026, 11, 1), NY)
    assert (s, e) == (utc(2026, 11, 1, 4), utc(2026, 11, 2, 5)) and e - s == dt.timedelta(hours=25)
    s, e = lt.day_bounds_utc(dt.date(2026, 10, 25), BERLIN)
    assert (s, e) == (utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))


def test_fmt_local():
    assert lt.fmt_local(utc(2026, 11, 1, 6, 30), NY) == "2026-11-01 01:30"
    assert lt.fmt_local(utc(2026, 11, 1, 5, 30), NY, "%H:%M %z") == "01:30 -0400"


# ---- days, weeks, times ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MO-FR", "MO,TU,WE,TH,FR"),
        ("mon,wed,fri", "MO,WE,FR"),
        ("fri, mon wed", "MO,WE,FR"),
        ("Tuesday-Thursday", "TU,WE,TH"),
        ("FR-MO", "MO,FR,SA,SU"),
        ("sa-tu", "MO,TU,SA,SU"),
        ("SU-SU", "SU"),
        ("we,mo-tu,we", "MO,TU,WE"),
        ("weekdays", "MO,TU,WE,TH,FR"),
        ("daily", "MO,TU,WE,TH,FR,SA,SU"),
        ("Every Day", "MO,TU,WE,TH,FR,SA,SU"),
        ("weekends", "SA,SU"),
        ("thurs", "TH"),
    ],
)
def test_parse_days(text, expected):
    assert lt.parse_days("--days", text) == expected


@pytest.mark.parametrize("text", ["", None, "funday", "MO-WE-FR", "mo-", "1-5"])
def test_parse_days_refuses(text):
    with pytest.raises(ValidationError) as err:
        lt.parse_days("--days", text)
    assert err.value.field == "--days"


TODAY = dt.date(2026, 6, 17)  # a Wednesday


@pytest.mark.parametrize(
    ("text", "monday"),
    [
        ("2026-W50", dt.date(2026, 12, 7)),
        ("2026w50", dt.date(2026, 12, 7)),
        ("2026-W01", dt.date(2025, 12, 29)),
        ("2026-W53", dt.date(2026, 12, 28)),
        (None, dt.date(2026, 6, 15)),
        ("this", dt.date(2026, 6, 15)),
        ("next", dt.date(2026, 6, 22)),
        ("last", dt.date(2026, 6, 8)),
        ("2026-11-01", dt.date(2026, 10, 26)),
        ("tomorrow", dt.date(2026, 6, 15)),
        ("+5", dt.date(2026, 6, 22)),
    ],
)
def test_parse_week(text, monday):
    assert lt.parse_week("--week", text, today=TODAY) == monday


@pytest.mark.parametrize("text", ["2025-W53", "2026-W00", "someday"])
def test_parse_week_refuses(text):
    with pytest.raises(ValidationError) as err:
        lt.parse_week("--week", text, today=TODAY)
    assert err.value.field == "--week"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("08:00", dt.time(8)),
        ("8:00", dt.time(8)),
        ("0800", dt.time(8)),
        ("8", dt.time(8)),
        ("8am", dt.time(8)),
        ("8 AM", dt.time(8)),
        ("5:30pm", dt.time(17, 30)),
        ("1730", dt.time(17, 30)),
        ("12am", dt.time(0)),
        ("12pm", dt.time(12)),
        ("12:15am", dt.time(0, 15)),
        ("23:59", dt.time(23, 59)),
        (dt.time(7, 45), dt.time(7, 45)),
    ],
)
def test_parse_time(text, expected):
    assert lt.parse_time("--start", text) == expected


@pytest.mark.parametrize("text", ["", None, "24:00", "8:60", "13pm", "0am", "noon", "8.30", "123456"])
def test_parse_time_refuses(text):
    with pytest.raises(ValidationError) as err:
        lt.parse_time("--start", text)
    assert err.value.field == "--start"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", TODAY),
        ("", TODAY),
        ("tomorrow", dt.date(2026, 6, 18)),
        ("yesterday", dt.date(2026, 6, 16)),
        ("+3", dt.date(2026, 6, 20)),
        ("-7", dt.date(2026, 6, 10)),
        ("2027-01-02", dt.date(2027, 1, 2)),
    ],
)
def test_parse_day(text, expected):
    assert lt.parse_day("--date", text, today=TODAY) == expected


def test_parse_day_refuses():
    with pytest.raises(ValidationError) as err:
        lt.parse_day("--date", "06/17/2026", today=TODAY)
    assert err.value.field == "--date"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("monday", dt.date(2026, 12, 14)),  # today is Monday 2026-12-07: the next one
        ("next monday", dt.date(2026, 12, 14)),
        ("Tue", dt.date(2026, 12, 8)),
        ("next  friday", dt.date(2026, 12, 11)),
        ("sunday", dt.date(2026, 12, 13)),
        ("-30", dt.date(2026, 11, 7)),
    ],
)
def test_parse_day_reads_weekdays_as_the_next_one(text, expected):
    assert lt.parse_day("on", text, today=dt.date(2026, 12, 7)) == expected


def test_parse_local_reads_a_weekday_and_a_time_in_the_zone():
    now = utc(2026, 12, 7, 15, 0)  # 10:00 in New York, a Monday
    assert lt.parse_local("at", "next monday 9:30", NY, now=now) == utc(2026, 12, 14, 14, 30)
    assert lt.parse_local("at", "friday 2pm", NY, now=now) == utc(2026, 12, 11, 19, 0)
    assert lt.parse_relative_wall("from", "next wednesday 13:00", dt.date(2026, 12, 7)) == dt.datetime(2026, 12, 9, 13)
    assert lt.parse_relative_wall("from", "2026-12-09 13:00", dt.date(2026, 12, 7)) is None


@pytest.mark.parametrize("text", ["next", "next month", "mondays", "next monday 25:00"])
def test_a_weekday_that_is_not_one_is_refused_naming_the_field(text):
    with pytest.raises(ValidationError) as err:
        lt.parse_local("at", text, NY, now=utc(2026, 12, 7, 15, 0))
    assert err.value.field == "at" and err.value.exit_code == ExitCode.USAGE
