"""Reminder rules and the reminders they queue: per practice and per type, quiet hours in the
patient's zone (else the location's) across DST, consent and preferred channel, skipped ones
kept with their reason, re-timed on a move and withdrawn on cancel."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.services.conftest import fixed_clock
from tests.services.sched import NY, book_one, clinic, utc

UNTIL, SINCE = dt.time(8, 0), dt.time(20, 0)


def _allowed(due, *, now, start, zone=NY):
    from hpms.services.messages.reminders import allowed_time

    return allowed_time(due, zone=zone, until=UNTIL, since=SINCE, now=now, start=start)


def test_a_due_time_inside_the_hours_stays():
    due = utc(2026, 6, 16, 14, 0)  # 10:00 in New York
    assert _allowed(due, now=utc(2026, 6, 1), start=due + dt.timedelta(hours=24)) == due


def test_late_evening_and_small_hours_go_to_the_last_allowed_minute_before():
    start = utc(2026, 6, 20, 14, 0)
    late = utc(2026, 6, 17, 2, 30)  # 22:30 in New York, 16 June
    assert _allowed(late, now=utc(2026, 6, 1), start=start) == utc(2026, 6, 16, 23, 59)  # 19:59 EDT
    night = utc(2026, 6, 17, 7, 0)  # 03:00 in New York, 17 June
    assert _allowed(night, now=utc(2026, 6, 1), start=start) == utc(2026, 6, 16, 23, 59)


def test_when_the_last_allowed_minute_has_passed_it_waits_for_the_morning():
    now = utc(2026, 6, 17, 3, 0)  # 23:00 in New York
    start = utc(2026, 6, 17, 18, 0)  # 14:00 the next day
    assert _allowed(now, now=now, start=start) == utc(2026, 6, 17, 12, 0)  # 08:00 EDT


def test_no_reminder_within_the_hour_of_the_visit():
    now = utc(2026, 6, 17, 3, 0)  # 23:00 in New York
    start = utc(2026, 6, 17, 12, 30)  # 08:30: the morning's first allowed minute is 30 min before
    assert _allowed(now, now=now, start=start) is None
    assert _allowed(utc(2026, 6, 16, 15, 0), now=utc(2026, 6, 16, 15, 0), start=utc(2026, 6, 16, 15, 45)) is None


def test_quiet_hours_follow_the_zone_across_the_change_of_clocks():
    # 8 March 2026: New York moves from EST (-5) to EDT (-4) at 02:00.
    start = utc(2026, 3, 10, 15, 0)
    before = utc(2026, 3, 7, 3, 0)  # 22:00 EST on the 6th
    after = utc(2026, 3, 9, 2, 0)  # 22:00 EDT on the 8th
    assert _allowed(before, now=utc(2026, 3, 1), start=start) == utc(2026, 3, 7, 0, 59)  # 19:59 EST
    assert _allowed(after, now=utc(2026, 3, 1), start=start) == utc(2026, 3, 8, 23, 59)  # 19:59 EDT


@pytest.fixture
def visit(ctx_for, register, settings):
    """A clinic whose patient agrees to email and SMS; returns (clinic, appointment)."""
    from hpms.services.people import patients

    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        patients.update(ctx, c.mrn, email="pat@example.org", phone="212-555-0142", consent_email=True, consent_sms=True)
    return c


def _queue(ctx_for, appt_id, when=fixed_clock):
    from hpms.models import Appointment
    from hpms.services.messages import reminders

    with ctx_for(clock=when) as ctx:
        appt = ctx.session.get(Appointment, appt_id)
        return reminders.queue_for(ctx, appt)


def _messages(settings) -> list[dict]:
    from tests.services.helpers import query

    return query(
        settings,
        "SELECT id, channel, recipient, state, due_at, error, subject, body, appointment_id FROM message ORDER BY id",
    )


def _rules(ctx_for, *specs):
    from hpms.services.messages import reminders

    with ctx_for(clock=fixed_clock) as ctx:
        return [reminders.add_rule(ctx, **spec) for spec in specs]


def test_rules_queue_one_reminder_each_with_the_practice_wording(ctx_for, visit, settings):
    _rules(ctx_for, {"hours_before": 72, "channel": "email"}, {"hours_before": 24, "channel": "sms"})
    appt = book_one(ctx_for, visit, "2026-06-22 10:00")  # Monday, 14:00 UTC: booking queues them
    email, sms = _messages(settings)
    assert (email["channel"], email["recipient"], email["state"]) == ("email", "pat@example.org", "queued")
    assert str(email["due_at"]).startswith("2026-06-19 14:00")
    assert email["subject"] == "Your visit on Mon 22 Jun 2026 at 10:00"
    assert "Dear Pat," in email["body"] and "Ada Lovelace" in email["body"]
    assert (sms["channel"], sms["recipient"]) == ("sms", "+12125550142")
    assert str(sms["due_at"]).startswith("2026-06-21 14:00")
    assert "Mon 22 Jun 2026 10:00" in sms["body"]
    assert email["appointment_id"] == sms["appointment_id"] == appt.id


def test_a_move_re_times_and_a_cancel_withdraws(ctx_for, visit, settings):
    from hpms.models import Appointment
    from hpms.services.messages import reminders
    from hpms.services.scheduling import appointments

    _rules(ctx_for, {"hours_before": 24, "channel": "email"})
    appt = book_one(ctx_for, visit, "2026-06-22 10:00")
    with ctx_for(clock=fixed_clock) as ctx:
        appointments.reschedule(ctx, appt.id, at="2026-06-23 11:00")
    first, second = _messages(settings)
    assert first["state"] == "cancelled" and second["state"] == "queued"
    assert str(second["due_at"]).startswith("2026-06-22 15:00")
    with ctx_for(clock=fixed_clock) as ctx:
        appointments.cancel(ctx, appt.id, reason="patient called")
        assert reminders.cancel_for(ctx, ctx.session.get(Appointment, appt.id)) == 0  # already withdrawn
    assert [m["state"] for m in _messages(settings)] == ["cancelled", "cancelled"]


def test_no_consent_or_no_address_is_skipped_with_the_reason(ctx_for, register, settings):
    from hpms.services.people import patients

    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        patients.update(ctx, c.mrn, email="pat@example.org", consent_email=False, consent_sms=True)
    _rules(
        ctx_for,
        {"hours_before": 48, "channel": "email"},
        {"hours_before": 24, "channel": "sms"},
        {"hours_before": 2, "channel": "preferred"},
    )
    book_one(ctx_for, c, "2026-06-22 10:00")
    got = {m["channel"] + str(i): (m["state"], m["error"]) for i, m in enumerate(_messages(settings))}
    assert got == {
        "email0": ("skipped", "the patient has not agreed to email"),
        "sms1": ("skipped", "the patient has no phone number"),
        "email2": ("skipped", "the patient has no preferred channel (email or sms)"),
    }


def test_a_type_with_own_rules_or_none(ctx_for, visit, settings):
    from hpms.errors import ConflictError, ValidationError

    _rules(ctx_for, {"hours_before": 24, "channel": "email"})
    _rules(ctx_for, {"hours_before": 0, "channel": "none", "type_ref": "Visit"})
    book_one(ctx_for, visit, "2026-06-22 10:00")
    assert _messages(settings) == []
    with pytest.raises(ConflictError):
        _rules(ctx_for, {"hours_before": 12, "channel": "sms", "type_ref": "Visit"})
    with pytest.raises(ValidationError) as err:
        _rules(ctx_for, {"hours_before": 0, "channel": "email"})
    assert err.value.field == "hours_before"
    with pytest.raises(ValidationError) as err:
        _rules(ctx_for, {"hours_before": 5, "channel": "fax"})
    assert err.value.field == "channel"


def test_the_patient_zone_sets_the_hours(ctx_for, visit, settings):
    from hpms.models import Patient
    from hpms.services.lookups import find_patient

    _rules(ctx_for, {"hours_before": 24, "channel": "email"})
    with ctx_for(clock=fixed_clock) as ctx:
        p: Patient = find_patient(ctx, visit.mrn)
        p.tz = "Asia/Tokyo"  # 24 h before 10:00 New York is 23:00 in Tokyo
    book_one(ctx_for, visit, "2026-06-22 10:00")
    [m] = _messages(settings)
    assert str(m["due_at"]).startswith("2026-06-21 10:59")  # 19:59 in Tokyo


def test_a_reminder_whose_time_passed_before_the_booking_is_skipped(ctx_for, visit, settings):
    _rules(ctx_for, {"hours_before": 240, "channel": "email"}, {"hours_before": 24, "channel": "email"})
    book_one(ctx_for, visit, "2026-06-19 10:00")  # four days after the clock's now
    late, due = _messages(settings)
    assert late["state"] == "skipped" and "booked after this reminder's time (240 h before)" in late["error"]
    assert due["state"] == "queued"


def test_without_rules_a_booking_queues_nothing(ctx_for, visit, settings):
    book_one(ctx_for, visit, "2026-06-22 10:00")
    assert _messages(settings) == []


def test_requeue_by_hand_replaces_what_was_queued(ctx_for, visit, settings):
    _rules(ctx_for, {"hours_before": 24, "channel": "email"})
    appt = book_one(ctx_for, visit, "2026-06-22 10:00")
    assert _queue(ctx_for, appt.id) == 1
    assert [m["state"] for m in _messages(settings)] == ["cancelled", "queued"]
