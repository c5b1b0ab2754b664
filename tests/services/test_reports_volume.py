"""Appointment volume (`appointments-volume`, grouped by day, week, month, provider, type or
location) and the no-show variants by type and by hour, on one small hand-built data set:
every expected number below is worked out by hand in a comment.

Main is in America/New_York (EDT, UTC-4 in June), Annex in America/Los_Angeles (PDT, UTC-7).
Appointments are written directly (status, booked_at) so that each case is exactly the one
described; all local times are in the zone of the appointment's location."""

from __future__ import annotations

import datetime as dt

import pytest

from hpms.errors import ValidationError
from tests.services.conftest import fixed_clock
from tests.services.sched import LA, NPI_B, NY, clinic, provider
from tests.services.test_reports_scheduling import rows

RANGE = dict(start="2026-06-01", end="2026-06-14")  # Monday 1 to Sunday 14: two ISO weeks


@pytest.fixture
def data(ctx_for, register):
    """Ada and Bob, types Visit and Physical, locations Main (New York) and Annex (Los Angeles),
    and eight appointments (lead time = visit day - booking day, both local)."""
    from hpms.models import Appointment
    from hpms.services.platform import localtime as lt
    from hpms.services.platform import org
    from hpms.services.scheduling import resources

    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        bob = provider(ctx, first="Bob", last="Babbage", npi=NPI_B).id
        physical = resources.add_type(ctx, name="Physical", duration_min=60).id
        annex = org.add_location(ctx, name="Annex", tz=LA).id
    who = {"ada": c.provider, "bob": bob}
    types = {"visit": c.type, "physical": physical}
    places = {"main": (c.location, NY), "annex": (annex, LA)}

    def add(when, booked, *, by="ada", kind="visit", where="main", status="completed", late=False):
        loc, tz = places[where]
        start = lt.wall_to_utc(dt.datetime.fromisoformat(when), tz)
        end = start + dt.timedelta(minutes=30)
        with ctx_for(clock=fixed_clock) as ctx:
            ctx.session.add(
                Appointment(
                    org_id=ctx.org_id,
                    patient_id=c.patient,
                    provider_id=who[by],
                    location_id=loc,
                    type_id=types[kind],
                    start_utc=start,
                    end_utc=end,
                    block_end_utc=end,
                    status=status,
                    late_cancel=late,
                    booked_at=lt.wall_to_utc(dt.datetime.fromisoformat(booked), tz),
                    cancelled_at=start - dt.timedelta(hours=1) if status == "cancelled" else None,
                )
            )

    add("2026-06-01 09:00", "2026-05-29 10:00")  # 1: Mon, completed, lead 3
    add("2026-06-01 10:00", "2026-06-01 08:00", status="no_show")  # 2: lead 0
    add("2026-06-02 14:00", "2026-05-20 09:00", kind="physical", status="cancelled", late=True)  # 3: no lead
    add("2026-06-03 09:00", "2026-05-27 09:00", by="bob", kind="physical", status="booked")  # 4: lead 7
    # 5: Annex 22:00 Monday the 8th (Tuesday 05:00 UTC), booked Saturday the 6th 23:30 (Sunday in
    # New York and UTC): counts on Monday the 8th, lead 2 in the location's zone
    add("2026-06-08 22:00", "2026-06-06 23:30", by="bob", where="annex")
    add("2026-06-10 09:00", "2026-06-01 09:00", status="cancelled")  # 6: not late, no lead
    add("2026-06-10 14:00", "2026-06-05 12:00", kind="physical", status="no_show")  # 7: lead 5
    add("2026-05-31 09:00", "2026-05-21 09:00")  # 8: Sunday before the range, completed, lead 10
    return c


def test_volume_by_day_and_week(ctx_for, data):
    # (group, booked = not cancelled, completed, no-shows, cancelled, average lead days of the booked)
    assert rows(ctx_for, "appointments-volume", by="day", **RANGE) == [
        ("2026-06-01", 2, 1, 1, 0, 1.5),  # 1, 2: (3 + 0) / 2
        ("2026-06-02", 0, 0, 0, 1, None),  # 3: cancelled only
        ("2026-06-03", 1, 0, 0, 0, 7.0),  # 4
        ("2026-06-08", 1, 1, 0, 0, 2.0),  # 5, on its local day
        ("2026-06-10", 1, 0, 1, 1, 5.0),  # 6 cancelled, 7 no-show
    ]
    assert rows(ctx_for, "appointments-volume", by="week", **RANGE) == [
        ("2026-06-01", 3, 1, 1, 1, 3.3),  # 1-4: (3 + 0 + 7) / 3 = 3.33
        ("2026-06-08", 2, 1, 1, 1, 3.5),  # 5-7: (2 + 5) / 2
    ]
    # a range starting mid-week keeps the Monday label
    assert rows(ctx_for, "appointments-volume", by="WEEK", start="2026-06-03", end="2026-06-03") == [
        ("2026-06-01", 1, 0, 0, 0, 7.0)
    ]


def test_volume_by_month_is_the_default(ctx_for, data):
    wide = dict(start="2026-05-25", end="2026-06-14")
    expected = [
        ("2026-05", 1, 1, 0, 0, 10.0),  # 8
        ("2026-06", 5, 2, 2, 2, 3.4),  # 1-7: (3 + 0 + 7 + 2 + 5) / 5 = 3.4
    ]
    assert rows(ctx_for, "appointments-volume", by="month", **wide) == expected
    assert rows(ctx_for, "appointments-volume", **wide) == expected


def test_volume_by_provider_type_and_location(ctx_for, data):
    assert rows(ctx_for, "appointments-volume", by="provider", **RANGE) == [
        ("Ada Lovelace", 3, 1, 2, 2, 2.7),  # 1, 2, 7 booked (3 + 0 + 5) / 3 = 2.67; 3, 6 cancelled
        ("Bob Babbage", 2, 1, 0, 0, 4.5),  # 4, 5: (7 + 2) / 2
    ]
    assert rows(ctx_for, "appointments-volume", by="type", **RANGE) == [
        ("Physical", 2, 0, 1, 1, 6.0),  # 4, 7: (7 + 5) / 2; 3 cancelled
        ("Visit", 3, 2, 1, 1, 1.7),  # 1, 2, 5: (3 + 0 + 2) / 3 = 1.67; 6 cancelled
    ]
    assert rows(ctx_for, "appointments-volume", by="location", **RANGE) == [
        ("Annex", 1, 1, 0, 0, 2.0),  # 5
        ("Main", 4, 1, 2, 2, 3.8),  # 1, 2, 4, 7: (3 + 0 + 7 + 5) / 4 = 3.75
    ]
    # the filters narrow the rows
    assert rows(ctx_for, "appointments-volume", by="provider", location="Annex", **RANGE) == [
        ("Bob Babbage", 1, 1, 0, 0, 2.0)
    ]
    assert rows(ctx_for, "appointments-volume", by="type", provider="Babbage", **RANGE) == [
        ("Physical", 1, 0, 0, 0, 7.0),
        ("Visit", 1, 1, 0, 0, 2.0),
    ]


def test_volume_rejects_an_unknown_grouping(ctx_for, data):
    with pytest.raises(ValidationError) as err:
        rows(ctx_for, "appointments-volume", by="year", **RANGE)
    assert err.value.field == "by"


def test_no_shows_by_type_and_hour(ctx_for, data):
    # (group, appointments, no-shows, no-show % = no-shows / (appointments - cancelled),
    #  cancelled, cancellation % = cancelled / appointments, late cancellations)
    assert rows(ctx_for, "no-shows-by-type", **RANGE) == [
        ("Physical", 3, 1, 50.0, 1, 33.3, 1),  # 3, 4, 7: 1 / (3 - 1), 1 / 3
        ("Visit", 4, 1, 33.3, 1, 25.0, 0),  # 1, 2, 5, 6: 1 / (4 - 1), 1 / 4
    ]
    assert rows(ctx_for, "no-shows-by-hour", **RANGE) == [
        ("09:00", 3, 0, 0.0, 1, 33.3, 0),  # 1, 4, 6: 0 / 2, 1 / 3
        ("10:00", 1, 1, 100.0, 0, 0.0, 0),  # 2
        ("14:00", 2, 1, 100.0, 1, 50.0, 1),  # 3 (late), 7: 1 / (2 - 1), 1 / 2
        ("22:00", 1, 0, 0.0, 0, 0.0, 0),  # 5: 22:00 in Los Angeles
    ]


def test_the_reports_are_registered_with_formulas(ctx_for, data):
    from hpms.services import reports

    for name in ("appointments-volume", "no-shows-by-type", "no-shows-by-hour"):
        rep = reports.get(name)
        assert rep.rows.__doc__ and "=" in rep.rows.__doc__
    assert "by" in reports.get("appointments-volume").params
