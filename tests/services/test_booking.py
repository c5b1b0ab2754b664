"""Booking, overlaps (service and database), series, the visit lifecycle and the slot search."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from hpms.errors import ConflictError, ExitCode, PermissionDenied, ValidationError
from tests.services.conftest import NOW, fixed_clock
from tests.services.helpers import last_seq, query, scalar
from tests.services.sched import (
    BERLIN,
    LA,
    NPI_B,
    NY,
    appointment_count,
    appointment_events,
    book,
    book_one,
    clinic,
    clock,
    hm,
    provider,
    utc,
)


def _stored(settings, appointment_id):
    rows = query(settings, "SELECT * FROM appointment WHERE id = :i", i=appointment_id)
    assert len(rows) == 1
    return rows[0]


def _utc(value) -> dt.datetime:
    """A stored timestamp as an aware UTC datetime (SQLite hands back naive text)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# ---- booking one visit ---------------------------------------------------------------------


def test_a_booking_is_read_in_the_location_zone_and_stored_utc(settings, ctx_for, register):
    from hpms.services.scheduling import listing

    c = clinic(ctx_for, register)
    seq = last_seq(settings)
    out = book(ctx_for, c, "2026-06-16 09:00", reason="  cough  ")
    assert out.series_id is None and out.skipped == []
    a = out.booked[0]
    assert hm(a.start) == "2026-06-16 09:00 -0400" and hm(a.end) == "2026-06-16 09:30 -0400"
    assert (a.status, a.tz, a.location, a.type, a.duration_min) == ("booked", NY, "Main", "Visit", 30)
    assert (a.patient, a.mrn, a.provider, a.reason, a.override, a.version) == (
        "Pat Doe",
        c.mrn,
        "Ada Lovelace",
        "cough",
        False,
        1,
    )
    assert a.booked_at == NOW
    row = _stored(settings, a.id)
    assert _utc(row["start_utc"]) == utc(2026, 6, 16, 13) == a.start
    assert _utc(row["end_utc"]) == _utc(row["block_end_utc"]) == utc(2026, 6, 16, 13, 30)
    ev = appointment_events(settings, seq)
    assert [(e["action"], e["entity_id"], e["patient_id"], e["detail"]) for e in ev] == [
        ("create", str(a.id), c.patient, None)
    ]
    with ctx_for(clock=fixed_clock) as ctx:
        shown = listing.show(ctx, a.id)
    assert shown.start == a.start and shown.model_dump() == a.model_dump()
    assert [(e["action"], e["patient_id"]) for e in appointment_events(settings, seq)][-1] == ("read", c.patient)


def test_a_booking_with_an_explicit_offset(settings, ctx_for, register):
    c = clinic(ctx_for, register)
    a = book_one(ctx_for, c, "2026-06-16T08:00:00-05:00")  # = 09:00 EDT
    assert hm(a.start) == "2026-06-16 09:00 -0400"


@pytest.mark.parametrize(
    ("at", "why"),
    [
        ("2026-06-16 07:30", "outside working hours at Main (Tue 2026-06-16: 08:00-17:00)"),
        ("2026-06-16 16:45", "outside working hours"),
        ("2026-06-20 10:00", "outside working hours at Main (Sat 2026-06-20: not working)"),
        ("2026-06-15 09:00", "is in the past"),
    ],
)
def test_booking_outside_open_time_is_refused(settings, ctx_for, register, at, why):
    c = clinic(ctx_for, register)
    with pytest.raises(ValidationError) as err:
        book(ctx_for, c, at)
    assert err.value.field == "at" and why in err.value.message
    assert appointment_count(settings) == 0


def test_booking_on_time_off_is_refused(settings, ctx_for, register):
    from hpms.services.scheduling import availability

    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        availability.add_time_off(ctx, provider=c.provider, start="2026-06-17", reason="CME")
        availability.add_time_off(ctx, start="2026-07-03", reason="Independence Day")
    with pytest.raises(ValidationError) as err:
        book(ctx_for, c, "2026-06-17 10:00")
    assert "on time off (CME)" in err.value.message and err.value.retry_with == ("override",)
    with pytest.raises(ValidationError) as err:
        book(ctx_for, c, "2026-07-03 10:00")
    assert "on practice holiday (Independence Day)" in err.value.message
    assert appointment_count(settings) == 0


def test_override_needs_its_permission_and_is_audited(settings, ctx_for, register, make_user):
    c = clinic(ctx_for, register)
    make_user("desk", "front_desk")
    make_user("doc", "provider")
    with pytest.raises(PermissionDenied) as err:
        book(ctx_for, c, "2026-06-16 18:00", user="desk", override=True)
    assert err.value.exit_code == ExitCode.DENIED and "book over the schedule's rules" in err.value.message
    assert appointment_count(settings) == 0
    seq = last_seq(settings)
    a = book_one(ctx_for, c, "2026-06-16 18:00", override=True)
    assert a.override is True and hm(a.start) == "2026-06-16 18:00 -0400"
    ev = appointment_events(settings, seq)
    assert len(ev) == 1 and ev[0]["detail"].startswith("override: outside working hours")
    b = book_one(ctx_for, c, "2026-06-15 08:00", user="doc", override=True)
    assert b.override is True
    assert "is in the past" in appointment_events(settings, seq)[-1]["detail"]
    # override waives rules, never overlaps
    with pytest.raises(ConflictError):
        book(ctx_for, c, "2026-06-16 18:15", override=True, patient=register(first_name="Other").mrn)


def test_front_desk_books_inside_hours(settings, ctx_for, register, make_user):
    c = clinic(ctx_for, register)
    make_user("desk", "front_desk")
    a = book_one(ctx_for, c, "2026-06-16 09:00", user="desk")
    assert _stored(settings, a.id)["booked_by"] == scalar(settings, "SELECT id FROM hpms_user WHERE username='desk'")


def test_inactive_patient_or_provider_is_refused(settings, ctx_for, register):
    from hpms.services.scheduling import resources

    c = clinic(ctx_for, register)
    with ctx_for() as ctx:
        resources.update_provider(ctx, c.provider, active=False)
    with pytest.raises(ValidationError) as err:
        book(ctx_for, c, "2026-06-16 09:00")
    assert err.value.field == "provider"


# ---- overlaps ------------------------------------------------------------------------------


def test_overlaps_of_provider_patient_and_room_are_refused(settings, ctx_for, register):
    from hpms.services.scheduling import resources

    c = clinic(ctx_for, register)
    other = register(first_name="Olga", last_name="Other")
    with ctx_for(clock=fixed_clock) as ctx:
        b = provider(ctx, "Ben", "Byron", NPI_B)
        from hpms.services.scheduling import availability

        availability.set_hours(ctx, b.id, days="MO-FR", start="8", end="17", effective_from="2026-01-01")
        resources.add_room(ctx, location="Main", name="Exam 1")
    a = book_one(ctx_for, c, "2026-06-16 09:00", room="Exam 1")
    assert a.room == "Exam 1"
    cases = [
        (dict(patient=other.mrn), "2026-06-16 09:15", "Ada Lovelace already has appointment"),
        (dict(provider=b.id), "2026-06-16 08:45", "the patient already has appointment"),
        (dict(provider=b.id, patient=other.mrn, room="exam 1"), "2026-06-16 09:29", "room 'Exam 1' is taken"),
    ]
    for kw, at, why in cases:
        with pytest.raises(ConflictError) as err:
            book(ctx_for, c, at, **kw)
        assert err.value.exit_code == ExitCode.CONFLICT
        assert why in err.value.message and f"{a.id} at 2026-06-16 09:00-09:30" in err.value.message
    assert appointment_count(settings) == 1
    # adjacent visits are fine, before and after
    book_one(ctx_for, c, "2026-06-16 09:30", room="Exam 1", patient=other.mrn)
    book_one(ctx_for, c, "2026-06-16 08:30", room="Exam 1", provider=b.id)
    assert appointment_count(settings) == 3


def test_the_buffer_after_a_visit_holds_provider_and_room_not_patient(settings, ctx_for, register):
    from hpms.services.scheduling import availability, resources

    c = clinic(ctx_for, register, buffer=10)
    other = register(first_name="Olga", last_name="Other")
    with ctx_for(clock=fixed_clock) as ctx:
        b = provider(ctx, "Ben", "Byron", NPI_B)
        availability.set_hours(ctx, b.id, days="MO-FR", start="8", end="17", effective_from="2026-01-01")
        quick = resources.add_type(ctx, name="Quick", duration_min=10)
    a = book_one(ctx_for, c, "2026-06-16 09:00")
    row = _stored(settings, a.id)
    assert _utc(row["block_end_utc"]) - _utc(row["end_utc"]) == dt.timedelta(minutes=10)
    with pytest.raises(ConflictError) as err:
        book(ctx_for, c, "2026-06-16 09:35", patient=other.mrn, type=quick.id)
    assert "Ada Lovelace already has appointment" in err.value.message
    # a visit ending right when the next begins is fine even though its own buffer is not
    with pytest.raises(ConflictError):
        book(ctx_for, c, "2026-06-16 08:25", patient=other.mrn)  # its buffer runs into 09:00
    book_one(ctx_for, c, "2026-06-16 08:20", patient=other.mrn)
    book_one(ctx_for, c, "2026-06-16 09:40", patient=other.mrn, type=quick.id)
    # the patient is not held by the buffer: another provider may see them at 09:30
    book_one(ctx_for, c, "2026-06-16 09:30", provider=b.id, type=quick.id)
    assert appointment_count(settings) == 4


def test_two_locations_in_two_zones(settings, ctx_for, register):
    from hpms.services.platform import org
    from hpms.services.scheduling import availability, listing, resources

    c = clinic(ctx_for, register)
    other = register(first_name="Olga", last_name="Other")
    with ctx_for(clock=fixed_clock) as ctx:
        org.add_location(ctx, name="West", tz=LA)
        org.add_location(ctx, name="Berlin", tz=BERLIN)
        resources.update_provider(ctx, c.provider, locations=["Main", "West", "Berlin"])
        for loc in ("West", "Berlin"):
            availability.set_hours(
                ctx, c.provider, location=loc, days="MO-FR", start="8", end="17", effective_from="2026-01-01"
            )
    with pytest.raises(ValidationError) as err:
        book(ctx_for, c, "2026-06-16 09:00")
    assert err.value.field == "location"
    main = book_one(ctx_for, c, "2026-06-16 09:00", location="Main")
    west = book_one(ctx_for, c, "2026-06-16 09:00", location="West", patient=other.mrn)
    ber = book_one(ctx_for, c, "2026-06-17 09:00", location="Berlin")
    assert hm(main.start) == "2026-06-16 09:00 -0400" and main.start == utc(2026, 6, 16, 13)
    assert hm(west.start) == "2026-06-16 09:00 -0700" and west.start == utc(2026, 6, 16, 16)
    assert hm(ber.start) == "2026-06-17 09:00 +0200" and ber.start == utc(2026, 6, 17, 7)
    # 12:00 in New York is 09:00 in Los Angeles: the provider is already seeing Olga there
    with pytest.raises(ConflictError) as err:
        book(ctx_for, c, "2026-06-16 12:00", location="Main", patient=register(first_name="Third").mrn)
    assert f"appointment {west.id} at 2026-06-16 12:00-12:30" in err.value.message
    # 16:30 in Berlin on the 16th is 10:30 in New York: also busy (Main at 10:30 is free otherwise)
    book_one(ctx_for, c, "2026-06-16 10:30", location="Main", patient=other.mrn)
    with pytest.raises(ConflictError):
        book(ctx_for, c, "2026-06-16 16:30", location="Berlin")
    with ctx_for(clock=fixed_clock) as ctx:
        sheet = listing.list_appointments(ctx, day="2026-06-16")
    assert [(a.location, a.start.strftime("%H:%M"), a.tz) for a in sheet] == [
        ("Main", "09:00", NY),
        ("Main", "10:30", NY),
        ("West", "09:00", LA),
    ]


# ---- the database guard --------------------------------------------------------------------


def _raw(c, start, minutes=30, **kw):
    from hpms.models import Appointment

    values = dict(
        org_id=1,
        patient_id=c.patient,
        provider_id=c.provider,
        location_id=c.location,
        type_id=c.type,
        start_utc=start,
        end_utc=start + dt.timedelta(minutes=minutes),
        block_end_utc=start + dt.timedelta(minutes=minutes),
        booked_at=NOW,
        updated_at=NOW,
    )
    values.update(kw)
    return Appointment(**values)


@pytest.mark.parametrize("clash", ["provider", "patient", "room"])
def test_the_database_refuses_overlaps_the_service_did_not_see(settings, ctx_for, register, clash):
    from hpms.services.scheduling import availability, resources

    c = clinic(ctx_for, register)
    other = register(first_name="Olga", last_name="Other")
    with ctx_for(clock=fixed_clock) as ctx:
        b = provider(ctx, "Ben", "Byron", NPI_B)
        availability.set_hours(ctx, b.id, days="MO-FR", start="8", end="17", effective_from="2026-01-01")
        room = resources.add_room(ctx, location="Main", name="Exam 1")
    a = book_one(ctx_for, c, "2026-06-16 09:00", room="Exam 1")
    kw = {
        "provider": dict(patient_id=other.id),
        "patient": dict(provider_id=b.id),
        "room": dict(patient_id=other.id, provider_id=b.id, room_id=room.id),
    }[clash]
    with pytest.raises(sa.exc.IntegrityError) as err:
        with ctx_for(clock=fixed_clock) as ctx:
            ctx.session.add(_raw(c, utc(2026, 6, 16, 13, 29), **kw))
            ctx.session.flush()
    assert f"ex_appointment_{clash}" in str(err.value.orig)
    # the same on an update that moves a row onto the booked time
    from hpms.models import Appointment

    with ctx_for(clock=fixed_clock) as ctx:
        moved = _raw(c, utc(2026, 6, 16, 14), **kw)
        ctx.session.add(moved)
        ctx.session.flush()
        moved_id = moved.id
    with pytest.raises(sa.exc.IntegrityError) as err:
        with ctx_for(clock=fixed_clock) as ctx:
            ctx.session.execute(
                sa.update(Appointment)
                .where(Appointment.id == moved_id)
                .values(
                    start_utc=utc(2026, 6, 16, 13, 15),
                    end_utc=utc(2026, 6, 16, 13, 45),
                    block_end_utc=utc(2026, 6, 16, 13, 45),
                )
            )
            ctx.session.flush()
    assert f"ex_appointment_{clash}" in str(err.value.orig)
    assert appointment_count(settings) == 2
    # adjacent rows and rows that no longer hold their time are accepted
    with ctx_for(clock=fixed_clock) as ctx:
        ctx.session.add(_raw(c, utc(2026, 6, 16, 13, 30), **kw))
        ctx.session.add(_raw(c, utc(2026, 6, 16, 13, 0), status="cancelled", **kw))
        ctx.session.add(_raw(c, utc(2026, 6, 16, 13, 0), status="no_show", **kw))
        ctx.session.flush()
    with ctx_for(clock=fixed_clock) as ctx:
        from hpms.services.scheduling import appointments

        appointments.cancel(ctx, a.id, reason="moved away")
    with ctx_for(clock=fixed_clock) as ctx:
        ctx.session.add(_raw(c, utc(2026, 6, 16, 13, 0), **kw))
        ctx.session.flush()
    assert appointment_count(settings) == 6


def test_a_raced_overlap_becomes_a_conflict_error():
    """The database's refusal is translated into a ConflictError naming what was taken."""
    from hpms.services.platform.conflicts import overlap_error

    class Exc:
        orig = 'conflicting key value violates exclusion constraint "ex_appointment_room"'

    err = overlap_error(Exc())
    assert isinstance(err, ConflictError) and "the room" in err.message
    Exc.orig = "UNIQUE constraint failed: provider.npi"
    assert overlap_error(Exc()) is None


# ---- series --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "first", "expected"),
    [
        (
            NY,
            "2026-10-26 09:00",
            [
                ("2026-10-26 09:00 -0400", utc(2026, 10, 26, 13)),
                ("2026-11-02 09:00 -0500", utc(2026, 11, 2, 14)),
                ("2026-11-09 09:00 -0500", utc(2026, 11, 9, 14)),
            ],
        ),
        (
            BERLIN,
            "2026-10-19 09:00",
            [
                ("2026-10-19 09:00 +0200", utc(2026, 10, 19, 7)),
                ("2026-10-26 09:00 +0100", utc(2026, 10, 26, 8)),
                ("2026-11-02 09:00 +0100", utc(2026, 11, 2, 8)),
            ],
        ),
        (
            NY,
            "2027-03-01 09:00",
            [
                ("2027-03-01 09:00 -0500", utc(2027, 3, 1, 14)),
                ("2027-03-08 09:00 -0500", utc(2027, 3, 8, 14)),
                ("2027-03-15 09:00 -0400", utc(2027, 3, 15, 13)),
            ],
        ),
    ],
)
def test_a_weekly_series_keeps_its_local_time_across_a_change_of_clocks(
    settings, ctx_for, register, tz, first, expected
):
    c = clinic(ctx_for, register, tz=tz)
    out = book(ctx_for, c, first, repeat="RRULE:FREQ=WEEKLY;COUNT=3")
    assert out.series_id is not None and out.skipped == []
    assert [(hm(a.start), a.start) for a in out.booked] == expected
    assert [(a.series_id, a.series_index) for a in out.booked] == [(out.series_id, i) for i in (1, 2, 3)]
    starts = [_utc(r["start_utc"]) for r in query(settings, "SELECT start_utc FROM appointment ORDER BY start_utc")]
    assert starts == [u for _, u in expected]
    assert query(settings, "SELECT rrule, tz FROM appointment_series") == [{"rrule": "FREQ=WEEKLY;COUNT=3", "tz": tz}]


def test_a_series_with_collisions_books_nothing_unless_asked(settings, ctx_for, register):
    c = clinic(ctx_for, register)
    other = register(first_name="Olga", last_name="Other")
    x = book_one(ctx_for, c, "2026-06-23 09:15", patient=other.mrn)
    y = book_one(ctx_for, c, "2026-07-07 08:45", patient=other.mrn)
    seq = last_seq(settings)
    with pytest.raises(ConflictError) as err:
        book(ctx_for, c, "2026-06-16 09:00", repeat="FREQ=WEEKLY;COUNT=5")
    msg = err.value.message
    assert msg.startswith("2 of 5 occurrences cannot be booked, nothing booked")
    assert f"#2 2026-06-23 09:00: Ada Lovelace already has appointment {x.id}" in msg
    assert f"#4 2026-07-07 09:00: Ada Lovelace already has appointment {y.id}" in msg
    assert "#1" not in msg and "#3" not in msg and "#5" not in msg
    assert appointment_count(settings) == 2 and scalar(settings, "SELECT count(*) FROM appointment_series") == 0
    assert appointment_events(settings, seq) == []
    out = book(ctx_for, c, "2026-06-16 09:00", repeat="FREQ=WEEKLY;COUNT=5", skip_conflicts=True)
    assert [a.series_index for a in out.booked] == [1, 3, 5]
    assert [(s.index, hm(s.start)) for s in out.skipped] == [
        (2, "2026-06-23 09:00 -0400"),
        (4, "2026-07-07 09:00 -0400"),
    ]
    assert appointment_count(settings) == 5
    assert len(appointment_events(settings, seq)) == 3


def test_a_series_running_into_closed_days_is_a_validation_error(settings, ctx_for, register):
    c = clinic(ctx_for, register)
    with pytest.raises(ValidationError) as err:
        book(ctx_for, c, "2026-06-19 09:00", repeat="FREQ=DAILY;COUNT=3")
    assert err.value.field == "repeat"
    assert "#2 2026-06-20 09:00: outside working hours" in err.value.message
    assert "#3 2026-06-21 09:00: outside working hours" in err.value.message
    out = book(ctx_for, c, "2026-06-19 09:00", repeat="FREQ=DAILY;COUNT=4", skip_conflicts=True)
    assert [hm(a.start) for a in out.booked] == ["2026-06-19 09:00 -0400", "2026-06-22 09:00 -0400"]


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        ("FREQ=WEEKLY", "needs COUNT= or UNTIL="),
        ("BYDAY=MO;COUNT=3", "is not an RRULE"),
        ("FREQ=FORTNIGHTLY;COUNT=3", "is not a valid RRULE"),
        ("FREQ=WEEKLY;COUNT=3;BYDAY=XX", "is not a valid RRULE"),
        ("DTSTART:20260616T090000\nRRULE:FREQ=WEEKLY;COUNT=2", "leave DTSTART out"),
        ("FREQ=WEEKLY;COUNT=105", "more than 104 occurrences"),
        ("FREQ=WEEKLY;UNTIL=20260601T000000", "gives no occurrence"),
    ],
)
def test_invalid_series_rules_are_refused(settings, ctx_for, register, rule, why):
    c = clinic(ctx_for, register)
    with pytest.raises(ValidationError) as err:
        book(ctx_for, c, "2026-06-16 09:00", repeat=rule)
    assert err.value.field == "repeat" and why in err.value.message
    assert appointment_count(settings) == 0


def test_a_series_ending_with_until(settings, ctx_for, register):
    c = clinic(ctx_for, register)
    out = book(ctx_for, c, "2026-06-16 09:00", repeat="FREQ=WEEKLY;UNTIL=20260630T235959")
    assert [hm(a.start)[:10] for a in out.booked] == ["2026-06-16", "2026-06-23", "2026-06-30"]


def test_occurrences_of_one_series_may_not_collide(settings, ctx_for, register):
    c = clinic(ctx_for, register)
    with pytest.raises(ConflictError) as err:
        book(ctx_for, c, "2026-06-16 09:00", repeat="FREQ=MINUTELY;INTERVAL=20;COUNT=2")
    assert "overlaps occurrence 1 of this series" in err.value.message


def test_a_series_occurrence_in_the_spring_gap_is_named(settings, ctx_for, register):
    c = clinic(ctx_for, register, days="daily", start="00:00", end="23:59")
    with pytest.raises(ValidationError) as err:
        book(ctx_for, c, "2027-03-13 02:30", repeat="FREQ=DAILY;COUNT=2")
    assert "#2 2027-03-14 03:00: 2027-03-14 02:30 does not exist" in err.value.message
    out = book(ctx_for, c, "2027-03-13 02:30", repeat="FREQ=DAILY;COUNT=3", skip_conflicts=True)
    assert [hm(a.start) for a in out.booked] == ["2027-03-13 02:30 -0500", "2027-03-15 02:30 -0400"]
    assert [(s.index, hm(s.start)) for s in out.skipped] == [(2, "2027-03-14 03:00 -0400")]


# ---- lifecycle -----------------------------------------------------------------------------

EARLY = utc(2026, 6, 15, 11)  # 07:00 in New York: everything booked today is still ahead
LATE = utc(2026, 6, 15, 22)  # 18:00 in New York: everything booked today has started

PATHS = {
    "booked": [],
    "confirmed": ["confirm"],
    "arrived": ["checkin"],
    "in_room": ["checkin", "room"],
    "completed": ["checkin", "complete"],
    "no_show": ["noshow"],
    "cancelled": ["cancel"],
}
ALLOWED = [
    ("booked", "confirm", "confirmed", "confirmed_at"),
    ("booked", "checkin", "arrived", "arrived_at"),
    ("confirmed", "checkin", "arrived", "arrived_at"),
    ("arrived", "room", "in_room", "roomed_at"),
    ("in_room", "room", "in_room", "roomed_at"),
    ("arrived", "complete", "completed", "completed_at"),
    ("in_room", "complete", "completed", "completed_at"),
    ("booked", "noshow", "no_show", "no_show_at"),
    ("confirmed", "noshow", "no_show", "no_show_at"),
    ("booked", "cancel", "cancelled", "cancelled_at"),
    ("confirmed", "cancel", "cancelled", "cancelled_at"),
]
REFUSED = [
    ("confirmed", "confirm"),
    ("arrived", "confirm"),
    ("cancelled", "confirm"),
    ("completed", "checkin"),
    ("arrived", "checkin"),
    ("no_show", "checkin"),
    ("booked", "room"),
    ("completed", "room"),
    ("booked", "complete"),
    ("confirmed", "complete"),
    ("completed", "complete"),
    ("arrived", "noshow"),
    ("cancelled", "noshow"),
    ("completed", "cancel"),
    ("cancelled", "cancel"),
    ("no_show", "cancel"),
    ("in_room", "cancel"),
    ("arrived", "cancel"),
]


def _act(ctx_for, appointment_id, action, when=LATE, **kw):
    from hpms.services.scheduling import appointments, lifecycle

    with ctx_for(clock=clock(when)) as ctx:
        if action == "cancel":
            return appointments.cancel(ctx, appointment_id, reason="patient called", **kw)[0]
        if action == "room":
            kw.setdefault("room", "Exam 1")
        return lifecycle.transition(ctx, appointment_id, action, **kw)


@pytest.fixture
def day_clinic(ctx_for, register):
    from hpms.services.scheduling import resources

    c = clinic(ctx_for, register)
    with ctx_for() as ctx:
        resources.add_room(ctx, location="Main", name="Exam 1")
        resources.add_room(ctx, location="Main", name="Exam 2")
    slots = iter(f"2026-06-15 {h:02d}:{m:02d}" for h in range(8, 17) for m in (0, 30))

    def visit(status: str) -> int:
        a = book_one(ctx_for, c, next(slots), when=clock(EARLY))
        for step in PATHS[status]:
            _act(ctx_for, a.id, step)
        return a.id

    visit.clinic = c
    return visit


def test_every_allowed_transition_sets_status_and_timestamp(settings, ctx_for, day_clinic):
    for source, action, target, stamp in ALLOWED:
        aid = day_clinic(source)
        moment = LATE + dt.timedelta(minutes=len(stamp))
        seq = last_seq(settings)
        out = _act(ctx_for, aid, action, when=moment, **({"room": "Exam 2"} if action == "room" else {}))
        assert out.status == target, (source, action)
        assert getattr(out, stamp) == moment, (source, action)
        assert out.version == len(PATHS[source]) + 2
        ev = appointment_events(settings, seq)
        assert [(e["action"], e["patient_id"], e["detail"]) for e in ev] == [
            ("update", day_clinic.clinic.patient, f"{source} -> {target}")
        ], (source, action)


def test_refused_transitions_are_conflicts(settings, ctx_for, day_clinic):
    for source, action in REFUSED:
        aid = day_clinic(source)
        before = _stored(settings, aid)
        with pytest.raises(ConflictError) as err:
            _act(ctx_for, aid, action)
        assert err.value.exit_code == ExitCode.CONFLICT
        assert f"is {source.replace('_', ' ')}" in err.value.message, (source, action)
        assert _stored(settings, aid) == before


def test_room_needs_a_free_room(settings, ctx_for, day_clinic):
    a = day_clinic("arrived")
    with pytest.raises(ValidationError) as err:
        _act(ctx_for, a, "room", room=" ")
    assert err.value.field == "room"
    roomed = _act(ctx_for, a, "room", room="Exam 1")
    assert (roomed.room, roomed.status) == ("Exam 1", "in_room")
    moved = _act(ctx_for, a, "room", room="exam 2")
    assert (moved.room, moved.status) == ("Exam 2", "in_room")


def test_checkin_only_on_the_day_and_noshow_only_after_start(settings, ctx_for, register):
    c = clinic(ctx_for, register)
    tomorrow = book_one(ctx_for, c, "2026-06-16 09:00")
    with pytest.raises(ValidationError) as err:
        _act(ctx_for, tomorrow.id, "checkin", when=NOW)
    assert err.value.field == "appointment" and "2026-06-16, not today (2026-06-15)" in err.value.message
    with pytest.raises(ConflictError) as err:
        _act(ctx_for, tomorrow.id, "noshow", when=NOW)
    assert "has not started yet (2026-06-16 09:00)" in err.value.message
    # the visit's day is the location's day: 01:00 UTC on the 16th is still the 15th in New York
    late_today = book_one(ctx_for, c, "2026-06-15 16:30")
    with pytest.raises(ValidationError):
        _act(ctx_for, late_today.id, "checkin", when=utc(2026, 6, 16, 4, 1))
    assert _act(ctx_for, late_today.id, "checkin", when=utc(2026, 6, 16, 3, 59)).status == "arrived"
    assert _act(ctx_for, tomorrow.id, "noshow", when=utc(2026, 6, 16, 13)).no_show_at == utc(2026, 6, 16, 13)


def test_late_cancellation_follows_the_policy_window(settings, ctx_for, register):
    from hpms.services.scheduling import appointments, availability

    c = clinic(ctx_for, register)
    soon = book_one(ctx_for, c, "2026-06-16 09:00")  # 22.5 h ahead
    later = book_one(ctx_for, c, "2026-06-17 09:00")  # 46.5 h ahead
    much_later = book_one(ctx_for, c, "2026-06-18 09:00")  # 70.5 h ahead
    forced = book_one(ctx_for, c, "2026-06-19 09:00")
    kept = book_one(ctx_for, c, "2026-06-22 09:00")
    seq = last_seq(settings)
    assert _act(ctx_for, soon.id, "cancel", when=NOW).late_cancel is True
    assert _act(ctx_for, later.id, "cancel", when=NOW).late_cancel is False
    with ctx_for() as ctx:
        availability.set_policy(ctx, late_cancel_hours=72)
    out = _act(ctx_for, much_later.id, "cancel", when=NOW)
    assert (out.late_cancel, out.cancel_reason, out.cancelled_at) == (True, "patient called", NOW)
    assert _act(ctx_for, forced.id, "cancel", when=NOW, late=True).late_cancel is True
    with ctx_for() as ctx:
        availability.set_policy(ctx, late_cancel_hours=0)
    assert _act(ctx_for, kept.id, "cancel", when=NOW).late_cancel is False
    ev = appointment_events(settings, seq)
    assert [(e["entity_id"], "late_cancel" in e["fields_list"]) for e in ev] == [
        (str(soon.id), True),
        (str(later.id), False),
        (str(much_later.id), True),
        (str(forced.id), True),
        (str(kept.id), False),
    ]
    assert {e["patient_id"] for e in ev} == {c.patient}
    with pytest.raises(ValidationError) as err:
        with ctx_for(clock=fixed_clock) as ctx:
            appointments.cancel(ctx, soon.id, reason="  ")
    assert err.value.field == "reason"


def _series(ctx_for, c, start="2026-06-16 09:00", count=4):
    out = book(ctx_for, c, start, repeat=f"FREQ=WEEKLY;COUNT={count}")
    return [a.id for a in out.booked]


def test_cancel_this_and_following(settings, ctx_for, register):
    from hpms.services.scheduling import appointments

    c = clinic(ctx_for, register)
    ids = _series(ctx_for, c)
    _act(ctx_for, ids[3], "confirm", when=NOW)
    before = appointment_count(settings)
    seq = last_seq(settings)
    with ctx_for(clock=fixed_clock) as ctx:
        out = appointments.cancel(ctx, ids[1], reason="moving away", this_and_following=True)
    assert [a.id for a in out] == ids[1:]
    assert appointment_count(settings) == before
    statuses = {r["id"]: r["status"] for r in query(settings, "SELECT id, status FROM appointment")}
    assert statuses == {ids[0]: "booked", ids[1]: "cancelled", ids[2]: "cancelled", ids[3]: "cancelled"}
    ev = appointment_events(settings, seq)
    assert sorted(e["entity_id"] for e in ev) == sorted(str(i) for i in ids[1:])
    assert all(e["patient_id"] == c.patient for e in ev)
    single = book_one(ctx_for, c, "2026-06-17 09:00")
    with pytest.raises(ValidationError) as err:
        with ctx_for(clock=fixed_clock) as ctx:
            appointments.cancel(ctx, single.id, reason="x", this_and_following=True)
    assert err.value.field == "this_and_following"


def test_reschedule_moves_in_place(settings, ctx_for, register):
    from hpms.services.scheduling import appointments, lifecycle

    c = clinic(ctx_for, register)
    a = book_one(ctx_for, c, "2026-06-16 09:00")
    _act(ctx_for, a.id, "confirm", when=NOW)
    seq = last_seq(settings)
    with ctx_for(clock=fixed_clock) as ctx:
        [moved] = appointments.reschedule(ctx, a.id, at="2026-06-18 14:00", expected_version=2)
    assert moved.id == a.id and hm(moved.start) == "2026-06-18 14:00 -0400"
    assert (moved.status, moved.confirmed_at, moved.version) == ("booked", None, 3)
    assert appointment_count(settings) == 1
    assert _utc(_stored(settings, a.id)["start_utc"]) == utc(2026, 6, 18, 18)
    ev = appointment_events(settings, seq)
    assert [(e["action"], e["entity_id"], e["patient_id"], e["fields_list"]) for e in ev] == [
        ("update", str(a.id), c.patient, ["start", "status"])
    ]
    # stale versions are refused everywhere
    for call in (
        lambda ctx: appointments.reschedule(ctx, a.id, at="2026-06-18 15:00", expected_version=2),
        lambda ctx: appointments.cancel(ctx, a.id, reason="x", expected_version=1),
        lambda ctx: lifecycle.transition(ctx, a.id, "confirm", expected_version=2),
    ):
        with pytest.raises(ConflictError) as err:
            with ctx_for(clock=fixed_clock) as ctx:
                call(ctx)
        assert "changed meanwhile (version 3" in err.value.message
    # a move onto its own old time (overlapping itself) is fine; onto closed time is not
    with ctx_for(clock=fixed_clock) as ctx:
        appointments.reschedule(ctx, a.id, at="2026-06-18 14:15")
    with pytest.raises(ValidationError) as err:
        with ctx_for(clock=fixed_clock) as ctx:
            appointments.reschedule(ctx, a.id, at="2026-06-20 09:00")
    assert err.value.field == "at"
    _act(ctx_for, a.id, "checkin", when=utc(2026, 6, 18, 18))
    with pytest.raises(ConflictError):
        with ctx_for(clock=fixed_clock) as ctx:
            appointments.reschedule(ctx, a.id, at="2026-06-19 09:00")


def test_reschedule_this_and_following_shifts_wall_clock_and_leaves_no_copies(settings, ctx_for, register):
    from hpms.services.scheduling import appointments

    c = clinic(ctx_for, register)
    ids = _series(ctx_for, c, "2026-10-19 09:00")
    other = _series(ctx_for, c, "2026-10-19 11:00", count=2)
    before = appointment_count(settings)
    seq = last_seq(settings)
    with ctx_for(clock=fixed_clock) as ctx:
        out = appointments.reschedule(ctx, ids[1], at="2026-10-26 10:00", this_and_following=True)
    assert [a.id for a in out] == ids[1:]
    assert [hm(a.start) for a in out] == ["2026-10-26 10:00 -0400", "2026-11-02 10:00 -0500", "2026-11-09 10:00 -0500"]
    assert appointment_count(settings) == before
    rows = {r["id"]: _utc(r["start_utc"]) for r in query(settings, "SELECT id, start_utc FROM appointment")}
    assert rows[ids[0]] == utc(2026, 10, 19, 13)
    assert rows[ids[3]] == utc(2026, 11, 9, 15)
    assert rows[other[0]] == utc(2026, 10, 19, 15) and rows[other[1]] == utc(2026, 10, 26, 15)
    assert sorted(e["entity_id"] for e in appointment_events(settings, seq)) == sorted(str(i) for i in ids[1:])
    # moving by an hour onto the rows' own old times (a shift of the whole run) works too
    with ctx_for(clock=fixed_clock) as ctx:
        out = appointments.reschedule(ctx, ids[1], at="2026-10-26 10:15", this_and_following=True)
    assert [hm(a.start)[11:16] for a in out] == ["10:15"] * 3
    with ctx_for(clock=fixed_clock) as ctx:
        out = appointments.reschedule(ctx, ids[1], at="2026-10-26 09:45", this_and_following=True)
    assert [hm(a.start)[11:16] for a in out] == ["09:45"] * 3
    assert appointment_count(settings) == before


def test_reschedule_of_a_series_is_all_or_nothing(settings, ctx_for, register):
    from hpms.services.scheduling import appointments

    c = clinic(ctx_for, register)
    ids = _series(ctx_for, c)
    blocker = book_one(ctx_for, c, "2026-07-07 10:00", patient=register(first_name="Olga").mrn)
    snap = query(settings, "SELECT id, start_utc, version FROM appointment ORDER BY id")
    with pytest.raises(ConflictError) as err:
        with ctx_for(clock=fixed_clock) as ctx:
            appointments.reschedule(ctx, ids[0], at="2026-06-16 10:00", this_and_following=True)
    assert err.value.message.startswith("1 of 4 occurrences cannot be moved, nothing moved")
    assert f"appointment {blocker.id}" in err.value.message
    assert query(settings, "SELECT id, start_utc, version FROM appointment ORDER BY id") == snap


def test_reschedule_to_another_location_renders_its_zone(settings, ctx_for, register):
    from hpms.services.platform import org
    from hpms.services.scheduling import appointments, availability, resources

    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        org.add_location(ctx, name="West", tz=LA)
        resources.update_provider(ctx, c.provider, locations=["Main", "West"])
        availability.set_hours(
            ctx, c.provider, location="West", days="MO-FR", start="8", end="17", effective_from="2026-01-01"
        )
    a = book_one(ctx_for, c, "2026-06-16 09:00", location="Main")
    with ctx_for(clock=fixed_clock) as ctx:
        [moved] = appointments.reschedule(ctx, a.id, at="2026-06-16 09:00", location="West")
    assert (moved.id, moved.location, moved.tz, hm(moved.start)) == (a.id, "West", LA, "2026-06-16 09:00 -0700")
    assert moved.start == utc(2026, 6, 16, 16)


# ---- find_slot -----------------------------------------------------------------------------


def _slots(ctx_for, when=fixed_clock, **kw):
    from hpms.services.scheduling import slots

    with ctx_for(clock=when) as ctx:
        return slots.find_slot(ctx, **kw)


def _fmt(slots, with_provider=False):
    return [
        (s.start.strftime("%m-%d %H:%M"), s.provider) if with_provider else s.start.strftime("%m-%d %H:%M")
        for s in slots
    ]


def test_find_slot_earliest_inside_hours(settings, ctx_for, register):
    c = clinic(ctx_for, register)
    assert _fmt(_slots(ctx_for, type=c.type, count=3)) == ["06-15 10:30", "06-15 10:45", "06-15 11:00"]
    late = _slots(ctx_for, type=c.type, provider=c.provider, after="2026-06-15 16:20", count=3)
    assert _fmt(late) == ["06-15 16:30", "06-16 08:00", "06-16 08:15"]
    s = late[0]
    assert (s.provider_id, s.provider, s.location, s.room, hm(s.end)) == (
        c.provider,
        "Ada Lovelace",
        "Main",
        None,
        "2026-06-15 17:00 -0400",
    )
    fri = _slots(ctx_for, type=c.type, after="2026-06-19 16:31", count=1)
    assert _fmt(fri) == ["06-22 08:00"]
    window = _slots(ctx_for, type=c.type, after="2026-06-16 08:00", before="2026-06-16 09:00", count=50)
    assert _fmt(window) == ["06-16 08:00", "06-16 08:15", "06-16 08:30", "06-16 08:45"]
    with pytest.raises(ValidationError) as err:
        _slots(ctx_for, type=c.type, after="2026-06-16 09:00", before="2026-06-16 08:00")
    assert err.value.field == "before"
    with pytest.raises(ValidationError) as err:
        _slots(ctx_for, type=c.type, count=0)
    assert err.value.field == "count"


def test_find_slot_skips_time_off_and_bookings_with_buffers(settings, ctx_for, register):
    from hpms.services.scheduling import availability, resources

    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        availability.add_time_off(ctx, provider=c.provider, start="2026-06-16")
        availability.add_time_off(ctx, location="Main", start="2026-06-17 08:00", end="2026-06-17 10:00")
        long = resources.add_type(ctx, name="Long", duration_min=30, buffer_min=15)
    assert _fmt(_slots(ctx_for, type=c.type, after="2026-06-16 00:00", count=1)) == ["06-17 10:00"]
    book_one(ctx_for, c, "2026-06-18 09:00")
    book_one(ctx_for, c, "2026-06-18 10:00", type=long.id)
    got = _fmt(_slots(ctx_for, type=long.id, after="2026-06-18 08:00", count=6))
    # 08:15 ends with its buffer exactly at 09:00; 09:30 + buffer reaches 10:15 > 10:00
    assert got == ["06-18 08:00", "06-18 08:15", "06-18 10:45", "06-18 11:00", "06-18 11:15", "06-18 11:30"]
    got = _fmt(_slots(ctx_for, type=c.type, after="2026-06-18 08:00", count=5))
    assert got == ["06-18 08:00", "06-18 08:15", "06-18 08:30", "06-18 09:30", "06-18 10:45"]


def test_find_slot_respects_the_patients_other_visits(settings, ctx_for, register):
    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        b = provider(ctx, "Ben", "Byron", NPI_B)
        from hpms.services.scheduling import availability

        availability.set_hours(ctx, b.id, days="MO-FR", start="8", end="17", effective_from="2026-01-01")
    book_one(ctx_for, c, "2026-06-16 08:00")
    got = _fmt(_slots(ctx_for, type=c.type, provider=b.id, after="2026-06-16 08:00", count=2, patient=c.mrn))
    assert got == ["06-16 08:30", "06-16 08:45"]


def test_find_slot_with_rooms(settings, ctx_for, register):
    from hpms.services.scheduling import availability, resources

    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        b = provider(ctx, "Ben", "Byron", NPI_B)
        availability.set_hours(ctx, b.id, days="MO-FR", start="8", end="17", effective_from="2026-01-01")
        proc = resources.add_type(ctx, name="Procedure", duration_min=30, needs_room=True)
        resources.add_room(ctx, location="Main", name="Proc 1", kind="procedure")
        resources.add_room(ctx, location="Main", name="Scope cart", kind="equipment")
    a = book_one(ctx_for, c, "2026-06-16 08:00", type=proc.id)
    assert a.room == "Proc 1"
    slots = _slots(ctx_for, type=proc.id, provider=b.id, after="2026-06-16 08:00", count=2)
    assert _fmt(slots) == ["06-16 08:30", "06-16 08:45"] and {s.room for s in slots} == {"Proc 1"}
    assert _fmt(_slots(ctx_for, type=c.type, provider=b.id, after="2026-06-16 08:00", count=1)) == ["06-16 08:00"]
    with pytest.raises(ConflictError) as err:
        book(ctx_for, c, "2026-06-16 08:15", provider=b.id, type=proc.id, patient=register(first_name="O").mrn)
    assert "no free room at Main" in err.value.message


def test_find_slot_step_follows_the_policy(settings, ctx_for, register):
    from hpms.services.scheduling import availability

    c = clinic(ctx_for, register)
    with ctx_for() as ctx:
        availability.set_policy(ctx, slot_step_min=30)
    assert _fmt(_slots(ctx_for, type=c.type, count=3)) == ["06-15 10:30", "06-15 11:00", "06-15 11:30"]
    with ctx_for() as ctx:
        availability.set_policy(ctx, slot_step_min=60)
    assert _fmt(_slots(ctx_for, type=c.type, count=2)) == ["06-15 11:00", "06-15 12:00"]
    odd = clock(utc(2026, 6, 15, 14, 31, 20))
    with ctx_for() as ctx:
        availability.set_policy(ctx, slot_step_min=5)
    assert _fmt(_slots(ctx_for, when=odd, type=c.type, count=2)) == ["06-15 10:35", "06-15 10:40"]


def test_find_slot_any_provider_merges_in_time_order(settings, ctx_for, register):
    from hpms.services.scheduling import availability

    c = clinic(ctx_for, register, start="09:00")
    with ctx_for(clock=fixed_clock) as ctx:
        availability.set_policy(ctx, slot_step_min=30)
        b = provider(ctx, "Ben", "Byron", NPI_B)
        availability.set_hours(ctx, b.id, days="MO-FR", start="8", end="17", effective_from="2026-01-01")
    got = _fmt(_slots(ctx_for, type=c.type, any_provider=True, after="2026-06-16 00:00", count=6), True)
    assert got == [
        ("06-16 08:00", "Ben Byron"),
        ("06-16 08:30", "Ben Byron"),
        ("06-16 09:00", "Ada Lovelace"),
        ("06-16 09:00", "Ben Byron"),
        ("06-16 09:30", "Ada Lovelace"),
        ("06-16 09:30", "Ben Byron"),
    ]
    with pytest.raises(ValidationError):
        _slots(ctx_for, type=c.type, any_provider=True, provider=b.id)


def test_find_slot_at_two_locations_renders_each_zone(settings, ctx_for, register):
    from hpms.services.platform import org
    from hpms.services.scheduling import availability, resources

    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        org.add_location(ctx, name="West", tz=LA)
        resources.update_provider(ctx, c.provider, locations=["Main", "West"])
        availability.set_hours(
            ctx, c.provider, location="West", days="SA", start="8", end="12", effective_from="2026-01-01"
        )
    slots = _slots(ctx_for, type=c.type, provider=c.provider, after="2026-06-19 16:30", count=3)
    assert [(hm(s.start), s.location) for s in slots] == [
        ("2026-06-19 16:30 -0400", "Main"),
        ("2026-06-20 08:00 -0700", "West"),
        ("2026-06-20 08:15 -0700", "West"),
    ]
