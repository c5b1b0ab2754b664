"""Scheduling reports (no-shows, utilization, patient flow, lead time, recall, satisfaction)
on small hand-built data sets: every expected number below is worked out by hand in a comment.

The clinic is in America/New_York (EDT, UTC-4 in June): Ada Lovelace works MO-FR 08:00-17:00
(540 min a day), Bob Babbage MO-FR 09:00-12:00 (180 min). Appointments are written directly
(with their status and timestamps) so that each case is exactly the one described."""

from __future__ import annotations

import datetime as dt

import pytest

from hpms.errors import PermissionDenied, ValidationError
from tests.services.conftest import fixed_clock
from tests.services.helpers import audit_rows, last_seq
from tests.services.sched import NPI_B, NY, clinic, provider

JUNE = dict(start="2026-06-01", end="2026-06-05")  # Monday to Friday


@pytest.fixture
def world(ctx_for, register):
    """The clinic, a second provider (Bob) and four more patients."""
    from hpms.services.scheduling import availability

    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        bob = provider(ctx, first="Bob", last="Babbage", npi=NPI_B)
        availability.set_hours(ctx, bob.id, days="MO-FR", start="09:00", end="12:00", effective_from="2026-01-01")
    pats = [c.patient] + [
        register(first_name=f"P{i}", last_name="Roe", phone=f"555-201-33{i:02d}").id for i in range(2, 5)
    ]
    return {"c": c, "ada": c.provider, "bob": bob.id, "pats": pats}


def add(
    ctx_for,
    w,
    when: str,
    *,
    who="ada",
    status="completed",
    minutes=30,
    pat=0,
    late=False,
    booked=None,
    arrived=None,
    roomed=None,
    done=None,
    type_id=None,
) -> int:
    """Write one appointment starting at local `when` (YYYY-MM-DD HH:MM, New York); the optional
    times are local too."""
    from hpms.models import Appointment
    from hpms.services.platform import localtime as lt

    def u(text):
        return lt.wall_to_utc(dt.datetime.fromisoformat(text), NY) if text else None

    start = u(when)
    end = start + dt.timedelta(minutes=minutes)
    with ctx_for(clock=fixed_clock) as ctx:
        a = Appointment(
            org_id=ctx.org_id,
            patient_id=w["pats"][pat],
            provider_id=w[who],
            location_id=w["c"].location,
            type_id=type_id or w["c"].type,
            start_utc=start,
            end_utc=end,
            block_end_utc=end,
            status=status,
            late_cancel=late,
            booked_at=u(booked) or start - dt.timedelta(days=1),
            arrived_at=u(arrived),
            roomed_at=u(roomed),
            completed_at=u(done),
            cancelled_at=start - dt.timedelta(hours=1) if status == "cancelled" else None,
        )
        ctx.session.add(a)
        ctx.session.flush()
        return a.id


def rows(ctx_for, name, user=None, **kw):
    from hpms.services import reports

    with ctx_for(user, clock=fixed_clock) as ctx:
        _, _, it = reports.run(ctx, name, **kw)
        return list(it)


def test_no_shows_by_provider_and_weekday(ctx_for, world):
    w = world
    add(ctx_for, w, "2026-06-01 09:00")  # Mon: completed
    add(ctx_for, w, "2026-06-01 10:00", status="no_show")
    add(ctx_for, w, "2026-06-01 11:00", status="cancelled", late=True)
    add(ctx_for, w, "2026-06-02 09:00")  # Tue
    add(ctx_for, w, "2026-06-02 10:00", status="cancelled")
    add(ctx_for, w, "2026-06-05 22:30")  # Fri late evening local = Sat 02:30 UTC: counts on Friday
    add(ctx_for, w, "2026-05-29 09:00", status="no_show")  # before the range
    add(ctx_for, w, "2026-06-03 09:00", who="bob", status="no_show", pat=1)  # Wed
    add(ctx_for, w, "2026-06-03 10:00", who="bob", pat=1)
    # Ada: 6 appointments, 1 no-show, 2 cancelled (1 late): no-show rate 1/(6-2) = 25 %, cancellation 2/6 = 33.3 %
    # Bob: 2 appointments, 1 no-show, none cancelled: 1/2 = 50 %, 0/2 = 0 %
    assert rows(ctx_for, "no-shows", **JUNE) == [
        ("Ada Lovelace", 6, 1, 25.0, 2, 33.3, 1),
        ("Bob Babbage", 2, 1, 50.0, 0, 0.0, 0),
    ]
    assert rows(ctx_for, "no-shows", provider="Babbage", **JUNE) == [("Bob Babbage", 2, 1, 50.0, 0, 0.0, 0)]
    # Mon: 3 (1 no-show, 1 late cancel): 1/(3-1) = 50 %, 1/3 = 33.3 %; Tue: 2 (1 cancel): 0/1 = 0 %, 1/2 = 50 %
    # Wed: Bob's 2: 1/2 = 50 %, 0 %; Fri: the evening visit: 0 %, 0 %
    assert rows(ctx_for, "no-shows-by-weekday", **JUNE) == [
        ("1 Monday", 3, 1, 50.0, 1, 33.3, 1),
        ("2 Tuesday", 2, 0, 0.0, 1, 50.0, 0),
        ("3 Wednesday", 2, 1, 50.0, 0, 0.0, 0),
        ("5 Friday", 1, 0, 0.0, 0, 0.0, 0),
    ]


def test_no_show_rate_is_empty_when_everything_was_cancelled(ctx_for, world):
    add(ctx_for, world, "2026-06-01 09:00", status="cancelled")
    assert rows(ctx_for, "no-shows", **JUNE) == [("Ada Lovelace", 1, 0, None, 1, 100.0, 0)]


def test_utilization_per_provider_and_day(ctx_for, world):
    from hpms.services.scheduling import availability

    w = world
    with ctx_for(clock=fixed_clock) as ctx:  # Bob is off Tuesday 09:00-10:00: 180 - 60 = 120 min open
        availability.add_time_off(ctx, provider=w["bob"], start="2026-06-02 09:00", end="2026-06-02 10:00")
    add(ctx_for, w, "2026-06-01 09:00")  # Mon, completed, 30 min
    add(ctx_for, w, "2026-06-01 10:00", status="no_show")  # frees its time: not booked
    add(ctx_for, w, "2026-06-01 11:00", status="cancelled")  # idem
    add(ctx_for, w, "2026-06-02 09:00", status="booked", minutes=60)  # Tue, 60 min
    add(ctx_for, w, "2026-06-02 14:00", status="arrived", minutes=30)  # Tue, 30 min
    add(ctx_for, w, "2026-06-02 10:00", who="bob", status="confirmed", minutes=90, pat=1)  # Bob Tue, 90 min
    got = rows(ctx_for, "utilization", start="2026-06-01", end="2026-06-02")
    assert got == [
        (dt.date(2026, 6, 1), "Ada Lovelace", "Main", 540, 30, 5.6),  # 30/540 = 5.56 %
        (dt.date(2026, 6, 1), "Bob Babbage", "Main", 180, 0, 0.0),
        (dt.date(2026, 6, 2), "Ada Lovelace", "Main", 540, 90, 16.7),  # (60+30)/540 = 16.67 %
        (dt.date(2026, 6, 2), "Bob Babbage", "Main", 120, 90, 75.0),  # 90/120
    ]
    # A Saturday booking (override): no open time, so the rate is empty.
    add(ctx_for, w, "2026-06-06 09:00", status="booked")
    assert rows(ctx_for, "utilization", start="2026-06-06", end="2026-06-06") == [
        (dt.date(2026, 6, 6), "Ada Lovelace", "Main", 0, 30, None)
    ]


def test_patient_flow_median_and_average(ctx_for, world):
    w = world
    # Ada: arrival->room 15, 10, 22; room->done 30, 20, 30; arrival->done 45, 30, 52 (minutes)
    add(ctx_for, w, "2026-06-01 09:00", arrived="2026-06-01 08:50", roomed="2026-06-01 09:05", done="2026-06-01 09:35")
    add(ctx_for, w, "2026-06-01 10:00", arrived="2026-06-01 09:55", roomed="2026-06-01 10:05", done="2026-06-01 10:25")
    add(ctx_for, w, "2026-06-02 11:00", arrived="2026-06-02 10:58", roomed="2026-06-02 11:20", done="2026-06-02 11:50")
    add(ctx_for, w, "2026-06-03 09:00", arrived="2026-06-03 08:40", done="2026-06-03 09:30")  # never roomed: left out
    add(ctx_for, w, "2026-06-03 10:00", status="no_show")
    # Bob: one visit, 20 / 30 / 50
    add(
        ctx_for,
        w,
        "2026-06-04 09:00",
        who="bob",
        pat=1,
        arrived="2026-06-04 09:00",
        roomed="2026-06-04 09:20",
        done="2026-06-04 09:50",
    )
    assert rows(ctx_for, "patient-flow", **JUNE) == [
        # medians 15, 30, 45; means 47/3 = 15.7, 80/3 = 26.7, 127/3 = 42.3
        ("Ada Lovelace", 3, 15.0, 15.7, 30.0, 26.7, 45.0, 42.3),
        ("Bob Babbage", 1, 20.0, 20.0, 30.0, 30.0, 50.0, 50.0),
    ]


def test_lead_time_by_type(ctx_for, world):
    from hpms.services.scheduling import resources

    w = world
    with ctx_for(clock=fixed_clock) as ctx:
        physical = resources.add_type(ctx, name="Physical", duration_min=60).id
    add(ctx_for, w, "2026-06-01 15:00", status="booked", booked="2026-06-01 10:00")  # 0 days
    add(ctx_for, w, "2026-06-09 09:00", status="booked", booked="2026-06-02 16:00")  # 7 days
    add(ctx_for, w, "2026-06-24 09:00", status="cancelled", booked="2026-06-03 08:00")  # 21 days (still a booking)
    # booked Friday 23:30 local (Saturday 03:30 UTC): a Friday booking, 3 days ahead of Monday the 8th
    add(ctx_for, w, "2026-06-08 10:00", status="booked", booked="2026-06-05 23:30", type_id=physical, pat=1)
    add(ctx_for, w, "2026-06-10 10:00", status="booked", booked="2026-05-31 12:00", type_id=physical, pat=1)  # before
    assert rows(ctx_for, "lead-time", **JUNE) == [
        ("Physical", 1, 3.0, 3.0),
        ("Visit", 3, 9.3, 7.0),  # (0 + 7 + 21) / 3 = 9.33, median 7
    ]


def test_recall_list(ctx_for, world, settings):
    from hpms.services.people import patients

    w = world
    p1, p2, p3, p4 = w["pats"]
    add(ctx_for, w, "2025-03-10 09:00", pat=0)  # P1 last seen 2025-03-10
    add(ctx_for, w, "2025-09-01 09:00", pat=0, status="no_show")  # a no-show is not a visit
    add(ctx_for, w, "2025-01-05 09:00", pat=1)
    add(ctx_for, w, "2025-08-01 09:00", pat=1)  # P2 last seen 2025-08-01
    add(ctx_for, w, "2024-01-01 09:00", pat=2, status="cancelled")  # P3 never seen
    add(ctx_for, w, "2024-11-20 09:00", pat=3, who="bob")  # P4 last seen 2024-11-20, by Bob
    with ctx_for(clock=fixed_clock) as ctx:
        info = {p: patients.show(ctx, p) for p in (p1, p2, p4)}
    mrn = {p: info[p].mrn for p in info}
    phone = {p: info[p].phone for p in info}
    name = {p: f"{info[p].first_name} {info[p].last_name}" for p in info}
    seq = last_seq(settings)
    # today 2026-06-15; 12 months: cutoff 2025-06-15 -> P4 (2024-11-20) and P1 (2025-03-10), oldest first
    assert rows(ctx_for, "recall") == [
        (mrn[p4], name[p4], dt.date(2024, 11, 20), "Bob Babbage", phone[p4]),
        (mrn[p1], name[p1], dt.date(2025, 3, 10), "Ada Lovelace", phone[p1]),
    ]
    assert phone[p4] is not None
    events = [e for e in audit_rows(settings, seq) if e["entity"] == "report"]
    assert [(e["action"], e["entity_id"]) for e in events] == [("read", "recall")]
    assert events[0]["patient_ids_list"] == sorted([info[p4].id, info[p1].id])  # the patients it named
    # 6 months: cutoff 2025-12-15 -> P2 (2025-08-01) too
    assert [r[0] for r in rows(ctx_for, "recall", months=6)] == [mrn[p4], mrn[p1], mrn[p2]]
    assert [r[0] for r in rows(ctx_for, "recall", months=6, provider="Babbage")] == [mrn[p4]]
    with pytest.raises(ValidationError) as err:
        rows(ctx_for, "recall", months=0)
    assert err.value.field == "months"


def test_satisfaction_by_provider_and_month(ctx_for, world):
    from hpms.services.people import surveys

    w = world
    may = [add(ctx_for, w, f"2026-05-{d:02d} 09:00") for d in (4, 5, 6)]
    june = [add(ctx_for, w, f"2026-06-{d:02d} 09:00") for d in (1, 2)]
    add(ctx_for, w, "2026-06-03 09:00", status="no_show")  # not a completed visit
    add(ctx_for, w, "2026-06-03 10:00", who="bob", pat=1)  # completed, no response
    with ctx_for(clock=fixed_clock) as ctx:
        surveys.record(ctx, appointment=may[0], score=5)
        surveys.record(ctx, appointment=may[1], score=4, comment="fine")
        surveys.record(ctx, appointment=june[0], score=1)
    assert rows(ctx_for, "satisfaction", start="2026-05-01", end="2026-06-30") == [
        # May, Ada: 2 responses of 3 visits: (5 + 4) / 2 = 4.5, rate 2/3 = 66.7 %
        ("2026-05", "Ada Lovelace", 2, 4.5, 0, 0, 0, 1, 1, 66.7),
        # June, Ada: 1 of 2: score 1, 50 %; Bob: 0 of 1
        ("2026-06", "Ada Lovelace", 1, 1.0, 1, 0, 0, 0, 0, 50.0),
        ("2026-06", "Bob Babbage", 0, None, 0, 0, 0, 0, 0, 0.0),
    ]


def test_reports_are_registered_and_need_reports_run(ctx_for, make_user):
    from hpms.services import reports

    names = {"no-shows", "no-shows-by-weekday", "utilization", "patient-flow", "lead-time", "recall", "satisfaction"}
    with ctx_for() as ctx:
        assert names <= {r.name for r in reports.all_reports(ctx)}
    assert reports.get("recall").patient_data is True
    for name in names:
        assert reports.get(name).rows.__doc__ and "=" in reports.get(name).rows.__doc__
    make_user("desk")  # front_desk: may run reports
    assert rows(ctx_for, "no-shows", user="desk", **JUNE) == []
    make_user("watcher", "auditor")
    with pytest.raises(PermissionDenied):
        rows(ctx_for, "no-shows", user="watcher", **JUNE)
