"""Patients' online booking: the practice's policy (lead time, horizon, daily cap, new
patients, per-provider overrides), the open times in the location's zone, a race for one time,
and the patient's own cancel and move inside the cancellation window."""

from __future__ import annotations

import datetime as dt
import threading
from contextlib import contextmanager

import pytest

from hpms.errors import ConflictError, NotFoundError, PermissionDenied, SlotTaken, ValidationError
from tests.services.conftest import NOW, fixed_clock
from tests.services.helpers import audit_rows, counts, last_seq, query, scalar, snapshot
from tests.services.sched import NPI_B, clinic, hm, provider, utc

# NOW is Monday 2026-06-15 10:30 in New York (the test practice's zone)

ONLINE_TABLES = (
    "appointment",
    "freed_slot",
    "message",
    "online_booking",
    "online_booking_policy",
    "online_booking_profile",
)


def written(settings) -> dict:
    """What a refused request must leave as it was: the shared snapshot, the scheduling and
    online booking tables, and every visit's status, time and version."""
    snap = snapshot(settings)
    snap.update(counts(settings, *ONLINE_TABLES))
    snap["visits"] = query(settings, "SELECT id, status, start_utc, version FROM appointment ORDER BY id")
    return snap


@pytest.fixture
def as_patient(settings):
    """as_patient(patient_id, clock=...) -> one committed transaction as that signed-in patient."""
    from hpms.db import get_engine, session_scope
    from hpms.services.platform.context import patient_context

    @contextmanager
    def make(patient_id: int, clock=fixed_clock):
        with session_scope(get_engine(settings)) as session:
            yield patient_context(session, settings, patient_id, clock=clock)

    return make


@pytest.fixture
def c(ctx_for, register):
    return clinic(ctx_for, register)


def policy(ctx_for, **kw):
    from hpms.services.scheduling import online

    kw.setdefault("type_ref", "Visit")
    with ctx_for(clock=fixed_clock) as ctx:
        return online.set_policy(ctx, **kw)


def slots(as_patient, pid, clock=fixed_clock, **kw):
    from hpms.services.scheduling import online

    kw.setdefault("type", "Visit")
    kw.setdefault("location", "Main")
    with as_patient(pid, clock) as ctx:
        return online.open_slots(ctx, **kw)


def book(as_patient, pid, start, clock=fixed_clock, **kw):
    from hpms.services.scheduling import online

    kw.setdefault("type", "Visit")
    kw.setdefault("location", "Main")
    with as_patient(pid, clock) as ctx:
        return online.book_online(ctx, start=start, **kw)


def test_a_type_without_a_policy_is_closed_online(settings, c, as_patient):
    with pytest.raises(NotFoundError) as err:
        slots(as_patient, c.patient)
    assert err.value.field == "type" and "not open to online booking" in err.value.message
    before = written(settings)
    with pytest.raises(NotFoundError):
        book(as_patient, c.patient, "2026-06-17 09:00", provider=c.provider)
    assert written(settings) == before


def test_default_policy_opens_from_24_hours_ahead_in_the_locations_zone(settings, c, ctx_for, as_patient):
    out = policy(ctx_for, enabled=True)
    assert out.policies[0].lead_minutes == 24 * 60 and out.policies[0].horizon_days == 60
    got = slots(as_patient, c.patient, days=2)
    assert hm(got[0].start) == "2026-06-16 10:30 -0400"  # now + 24 h, on the 15-minute grid
    assert {s.provider_id for s in got} == {c.provider}
    assert all(s.start >= NOW + dt.timedelta(hours=24) for s in got)


def test_lead_time_refuses_a_time_too_soon_and_writes_nothing(settings, c, ctx_for, as_patient):
    policy(ctx_for, lead_minutes=120)
    assert hm(slots(as_patient, c.patient, days=1)[0].start) == "2026-06-15 12:30 -0400"
    before = written(settings)
    with pytest.raises(ValidationError) as err:
        book(as_patient, c.patient, "2026-06-15 11:00", provider=c.provider)
    assert err.value.field == "start" and "too soon" in err.value.message and "2 hours" in err.value.message
    assert written(settings) == before


def test_horizon_limits_how_far_ahead(settings, c, ctx_for, as_patient):
    policy(ctx_for, lead_minutes=0, horizon_days=2)
    got = slots(as_patient, c.patient, days=7, limit=500)
    assert max(s.start.date() for s in got) == dt.date(2026, 6, 17)
    assert slots(as_patient, c.patient, start_date="2026-06-17", days=5)  # the last day open
    with pytest.raises(ValidationError) as err:
        slots(as_patient, c.patient, start_date="2026-06-20", days=5)
    assert err.value.field == "start_date"
    assert err.value.message == "2026-06-20 is too far ahead: online booking opens up to 2026-06-17"
    before = written(settings)
    with pytest.raises(ValidationError) as err:
        book(as_patient, c.patient, "2026-06-18 09:00", provider=c.provider)
    assert err.value.field == "start" and "too far ahead" in err.value.message
    assert written(settings) == before


def test_daily_cap_counts_online_bookings_per_provider_day(settings, c, ctx_for, register, as_patient):
    from tests.services.sched import book as staff_book

    policy(ctx_for, lead_minutes=0, daily_cap=1)
    other = register(first_name="Oda", last_name="Nile")
    staff_book(ctx_for, c, "2026-06-16 14:00")  # the front desk's bookings do not count
    appt = book(as_patient, c.patient, "2026-06-16 09:00", provider=c.provider)
    assert appt.patient_id == c.patient and hm(appt.start) == "2026-06-16 09:00 -0400"
    assert scalar(settings, "SELECT count(*) FROM online_booking") == 1
    days = {s.start.date() for s in slots(as_patient, other.id, days=3)}
    assert dt.date(2026, 6, 16) not in days and dt.date(2026, 6, 17) in days
    before = written(settings)
    with pytest.raises(SlotTaken) as err:
        book(as_patient, other.id, "2026-06-16 10:00", provider=c.provider)
    assert "no more online bookings on 2026-06-16" in err.value.message and err.value.exit_code == 4
    assert err.value.alternatives and all(a.start.date() != dt.date(2026, 6, 16) for a in err.value.alternatives)
    assert written(settings) == before


def _seen(settings, ctx_for, c):
    """Make the clinic's patient an existing one: a visit checked in and completed."""
    from hpms.db import get_engine
    from tests.services.sched import book as staff_book

    appt = staff_book(ctx_for, c, "2026-06-15 15:00").booked[0]
    import sqlalchemy as sa

    with get_engine(settings).begin() as conn:
        conn.execute(sa.text("UPDATE appointment SET status = 'completed' WHERE id = :i"), {"i": appt.id})


def test_a_type_closed_to_new_patients(settings, c, ctx_for, register, as_patient):
    policy(ctx_for, new_patients_allowed=False)
    newcomer = register(first_name="Nova", last_name="Newman")
    with pytest.raises(ValidationError) as err:
        slots(as_patient, newcomer.id)
    assert err.value.field == "type" and "new patients" in err.value.message
    before = written(settings)
    with pytest.raises(ValidationError):
        book(as_patient, newcomer.id, "2026-06-17 09:00", provider=c.provider)
    assert written(settings) == before
    _seen(settings, ctx_for, c)
    assert slots(as_patient, c.patient, days=3)


def test_a_disabled_type_is_closed(settings, c, ctx_for, as_patient):
    policy(ctx_for, enabled=True)
    policy(ctx_for, enabled=False)
    with pytest.raises(NotFoundError) as err:
        slots(as_patient, c.patient)
    assert err.value.field == "type"


def test_opening_a_type_online_makes_it_self_bookable(settings, c, ctx_for):
    from hpms.services.scheduling import resources

    with ctx_for(clock=fixed_clock) as ctx:
        assert [t.self_bookable for t in resources.list_types(ctx) if t.name == "Visit"] == [False]
    seq = last_seq(settings)
    policy(ctx_for, enabled=True)
    with ctx_for(clock=fixed_clock) as ctx:
        assert [t.self_bookable for t in resources.list_types(ctx) if t.name == "Visit"] == [True]
    events = [(r["action"], r["entity"], r["fields_list"]) for r in audit_rows(settings, seq)]
    assert ("update", "appointment_type", ["self_bookable"]) in events
    seq = last_seq(settings)
    policy(ctx_for, lead_minutes=60)  # already self-bookable: the type is not touched again
    assert [r["entity"] for r in audit_rows(settings, seq)] == ["online_booking_policy"]


def test_a_type_not_self_bookable_is_closed_whatever_its_policy(settings, c, ctx_for, as_patient):
    from hpms.services.portal import access

    policy(ctx_for, enabled=True)
    with ctx_for(clock=fixed_clock) as ctx:
        assert [t.name for t in access.booking_choices(ctx).types] == ["Visit"]
    from hpms.db import get_engine

    with get_engine(settings).begin() as conn:  # a type's switch turned off behind the policy's back
        conn.exec_driver_sql("UPDATE appointment_type SET self_bookable = false")
    with ctx_for(clock=fixed_clock) as ctx:
        assert access.booking_choices(ctx).types == []
    before = written(settings)
    with pytest.raises(NotFoundError) as err:
        slots(as_patient, c.patient)
    assert err.value.field == "type" and err.value.message == "Visit is not open to online booking"
    with pytest.raises(NotFoundError):
        book(as_patient, c.patient, "2026-06-17 09:00", provider=c.provider)
    assert written(settings) == before


def test_a_type_open_only_through_a_provider_is_offered(settings, c, ctx_for, as_patient):
    from hpms.services.portal import access

    policy(ctx_for, provider_ref=c.provider, enabled=True, lead_minutes=0)
    with ctx_for(clock=fixed_clock) as ctx:
        assert [t.name for t in access.booking_choices(ctx).types] == ["Visit"]
    got = slots(as_patient, c.patient, start_date="2026-06-16", days=1)
    assert got and {s.provider_id for s in got} == {c.provider}
    policy(ctx_for, provider_ref=c.provider, enabled=False)
    with ctx_for(clock=fixed_clock) as ctx:
        assert access.booking_choices(ctx).types == []


def _second_provider(ctx_for, start="08:00", end="17:00"):
    from hpms.services.scheduling import availability

    with ctx_for(clock=fixed_clock) as ctx:
        b = provider(ctx, first="Bo", last="Baker", npi=NPI_B)
        availability.set_hours(ctx, b.id, days="MO-FR", start=start, end=end, effective_from="2026-01-01")
        return b.id


def test_provider_override_and_first_available_across_providers(settings, c, ctx_for, as_patient):
    from hpms.services.scheduling import availability

    with ctx_for(clock=fixed_clock) as ctx:  # the first provider works only 08:00-09:00
        availability.set_hours(ctx, c.provider, days="MO-FR", start="08:00", end="09:00", effective_from="2026-01-01")
    b = _second_provider(ctx_for)
    policy(ctx_for, lead_minutes=0)
    got = slots(as_patient, c.patient, start_date="2026-06-16", days=1, limit=500)
    assert {s.provider_id for s in got} == {c.provider, b}
    assert [s.start for s in got] == sorted(s.start for s in got)
    assert hm(got[0].start) == "2026-06-16 08:00 -0400"
    assert {s.provider_id for s in got if s.start.hour >= 9} == {b}
    # the second provider closed online by an override; the first one's lead time overridden
    out = policy(ctx_for, provider_ref=b, enabled=False)
    assert [(p.provider_id, p.enabled) for p in out.policies] == [(None, True), (b, False)]
    policy(ctx_for, provider_ref=c.provider, lead_minutes=48 * 60)
    got = slots(as_patient, c.patient, days=5, limit=500)
    assert {s.provider_id for s in got} == {c.provider}
    assert hm(got[0].start) == "2026-06-18 08:00 -0400"
    with pytest.raises(NotFoundError) as err:
        slots(as_patient, c.patient, provider=b)
    assert err.value.field == "provider"


def test_dst_day_in_the_locations_zone(settings, ctx_for, register, as_patient):
    c = clinic(ctx_for, register, days="daily", start="08:00", end="10:00")
    policy(ctx_for, lead_minutes=0)
    when = lambda: utc(2026, 10, 30, 12, 0)  # noqa: E731
    got = slots(as_patient, c.patient, clock=when, start_date="2026-10-31", days=2, limit=500)
    by_day: dict[dt.date, list[str]] = {}
    for s in got:
        by_day.setdefault(s.start.date(), []).append(hm(s.start))
    assert by_day[dt.date(2026, 10, 31)][0] == "2026-10-31 08:00 -0400"
    assert by_day[dt.date(2026, 11, 1)][0] == "2026-11-01 08:00 -0500"  # clocks went back overnight
    assert len(by_day[dt.date(2026, 11, 1)]) == len(by_day[dt.date(2026, 10, 31)]) == 7
    appt = book(as_patient, c.patient, "2026-11-01 08:00", clock=when, provider=c.provider)
    assert hm(appt.start) == "2026-11-01 08:00 -0500"
    assert scalar(settings, "SELECT count(*) FROM appointment WHERE id = :i", i=appt.id) == 1


def test_two_patients_racing_for_one_time_one_wins(settings, c, ctx_for, register, as_patient):
    policy(ctx_for, lead_minutes=0)
    rival = register(first_name="Rita", last_name="Rival")
    gate = threading.Barrier(2)
    results: dict[int, object] = {}

    def run(pid: int) -> None:
        gate.wait()
        try:
            results[pid] = book(as_patient, pid, "2026-06-16 09:00", provider=c.provider)
        except Exception as exc:  # noqa: BLE001 - the loser's error is the result under test
            results[pid] = exc

    threads = [threading.Thread(target=run, args=(pid,)) for pid in (c.patient, rival.id)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    won = [r for r in results.values() if not isinstance(r, Exception)]
    lost = [r for r in results.values() if isinstance(r, Exception)]
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], SlotTaken) and lost[0].exit_code == 4
    assert all(hm(a.start) != "2026-06-16 09:00 -0400" for a in lost[0].alternatives)
    assert lost[0].alternatives
    rows = query(settings, "SELECT patient_id FROM appointment WHERE status = 'booked'")
    assert len(rows) == 1 and scalar(settings, "SELECT count(*) FROM online_booking") == 1


def _cancel(as_patient, pid, appt_id, clock=fixed_clock):
    from hpms.services.scheduling import online

    with as_patient(pid, clock) as ctx:
        return online.cancel_online(ctx, appt_id)


def test_cancel_inside_the_window_is_refused_and_nothing_written(settings, c, ctx_for, as_patient):
    policy(ctx_for, lead_minutes=0, cancel_window=48)
    appt = book(as_patient, c.patient, "2026-06-16 11:00", provider=c.provider)
    before = written(settings)
    with pytest.raises(ConflictError) as err:
        _cancel(as_patient, c.patient, appt.id)
    assert "less than 48 hours away" in err.value.message and err.value.exit_code == 4
    assert written(settings) == before
    from hpms.services.scheduling import online

    with pytest.raises(ConflictError) as moved, as_patient(c.patient) as ctx:
        online.reschedule_online(ctx, appt.id, start="2026-06-19 10:00")
    assert "can no longer be moved online" in moved.value.message
    assert written(settings) == before
    assert scalar(settings, "SELECT status FROM appointment WHERE id = :i", i=appt.id) == "booked"


def test_late_cancellation_is_recorded_and_frees_the_time(settings, c, ctx_for, as_patient):
    policy(ctx_for, lead_minutes=0, cancel_window=2)  # the late-cancel notice stays 24 hours
    appt = book(as_patient, c.patient, "2026-06-16 09:00", provider=c.provider)
    seq = last_seq(settings)
    out = _cancel(as_patient, c.patient, appt.id)
    assert out.status == "cancelled" and out.late_cancel is True
    assert out.cancel_reason == "cancelled online by the patient"
    assert scalar(settings, "SELECT count(*) FROM freed_slot WHERE appointment_id = :i", i=appt.id) == 1
    events = [e for e in audit_rows(settings, seq) if e["entity"] == "appointment"]
    assert [(e["action"], e["username"], e["user_id"]) for e in events] == [("update", f"patient:{c.patient}", None)]
    assert "late_cancel" in events[0]["fields_list"]


def test_cancel_outside_the_late_notice_is_not_late(settings, c, ctx_for, as_patient):
    policy(ctx_for, lead_minutes=0, cancel_window=2)
    appt = book(as_patient, c.patient, "2026-06-18 09:00", provider=c.provider)
    assert _cancel(as_patient, c.patient, appt.id).late_cancel is False


def test_booking_is_audited_with_the_patient_as_actor(settings, c, ctx_for, as_patient):
    policy(ctx_for, lead_minutes=0)
    seq = last_seq(settings)
    appt = book(as_patient, c.patient, "2026-06-16 09:00", provider=c.provider)
    events = audit_rows(settings, seq)
    assert {(e["entity"], e["action"]) for e in events} >= {("appointment", "create"), ("online_booking", "create")}
    assert {e["username"] for e in events} == {f"patient:{c.patient}"}
    assert all(e["patient_id"] == c.patient for e in events if e["entity"] in ("appointment", "online_booking"))
    assert scalar(settings, "SELECT booked_by FROM appointment WHERE id = :i", i=appt.id) is None


def test_reschedule_online_moves_and_frees_the_old_time(settings, c, ctx_for, as_patient):
    from hpms.services.scheduling import online

    policy(ctx_for, lead_minutes=0, cancel_window=24)
    appt = book(as_patient, c.patient, "2026-06-17 09:00", provider=c.provider)
    with as_patient(c.patient) as ctx:
        moved = online.reschedule_online(ctx, appt.id, start="2026-06-18 10:00")
    assert moved.id == appt.id and hm(moved.start) == "2026-06-18 10:00 -0400"
    assert scalar(settings, "SELECT count(*) FROM freed_slot WHERE appointment_id = :i", i=appt.id) == 1
    before = written(settings)
    with pytest.raises(SlotTaken) as err, as_patient(c.patient) as ctx:
        online.reschedule_online(ctx, appt.id, start="2026-06-18 20:00")  # after hours
    assert err.value.field == "slot"
    with pytest.raises(ValidationError) as bad, as_patient(c.patient) as ctx:
        online.reschedule_online(ctx, appt.id, start="2026-06-18 10:07")  # off the grid
    assert bad.value.field == "start"
    assert written(settings) == before


def test_a_patient_cannot_reach_another_patients_records(settings, c, ctx_for, register, as_patient):
    from hpms.services.scheduling import appointments, online

    policy(ctx_for, lead_minutes=0, cancel_window=0)
    appt = book(as_patient, c.patient, "2026-06-17 09:00", provider=c.provider)
    other = register(first_name="Eve", last_name="Snoop")
    before = written(settings)
    messages = []
    for ref in (appt.id, 999999):
        with pytest.raises(NotFoundError) as err, as_patient(other.id) as ctx:
            online.cancel_online(ctx, ref)
        messages.append(err.value.message.replace(str(ref), "N"))
        with pytest.raises(NotFoundError), as_patient(other.id) as ctx:
            online.reschedule_online(ctx, ref, start="2026-06-18 10:00")
    assert messages[0] == messages[1]  # the same answer whether the visit exists or not
    # staff operations answer a patient "not found", revealing nothing
    with pytest.raises(NotFoundError) as err, as_patient(other.id) as ctx:
        appointments.show(ctx, appt.id)
    assert err.value.message == "not found"
    with pytest.raises(NotFoundError), as_patient(other.id) as ctx:
        appointments.list_appointments(ctx, day="2026-06-17")
    assert written(settings) == before
    with as_patient(other.id) as ctx:
        assert online.my_visits(ctx) == []
    with as_patient(c.patient) as ctx:
        assert [v.id for v in online.my_visits(ctx)] == [appt.id]


def test_staff_may_not_use_the_patients_operations(settings, c, ctx_for):
    from hpms.services.scheduling import online

    policy(ctx_for, lead_minutes=0)
    with pytest.raises(PermissionDenied) as err, ctx_for(clock=fixed_clock) as ctx:
        online.open_slots(ctx, type="Visit", location="Main")
    assert "only a signed-in patient" in err.value.message and err.value.exit_code == 5


def test_policy_settings_are_checked_before_anything_is_written(settings, c, ctx_for):
    from hpms.services.scheduling import online

    before = written(settings)
    cases = [
        (dict(type_ref="Visit", lead_minutes=-1), "lead_minutes"),
        (dict(type_ref="Visit", horizon_days=0), "horizon_days"),
        (dict(type_ref="Visit", daily_cap="many"), "daily_cap"),
        (dict(type_ref="Visit", lead_minutes=30, cancel_window=10_000), "cancel_window"),
        (dict(lead_minutes=30), "type"),
        (dict(type_ref="Visit"), "options"),
    ]
    for kw, field in cases:
        with pytest.raises(ValidationError) as err, ctx_for() as ctx:
            online.set_policy(ctx, **kw)
        assert err.value.field == field, kw
    with pytest.raises(NotFoundError), ctx_for() as ctx:
        online.clear_policy(ctx, type_ref="Visit")
    assert written(settings) == before


def test_only_an_active_known_patient_signs_in(settings, c, ctx_for, register):
    from hpms.db import get_engine, session_scope
    from hpms.errors import AuthError
    from hpms.services.platform.context import patient_context

    gone = register(first_name="Ina", last_name="Active")
    with get_engine(settings).begin() as conn:
        conn.exec_driver_sql(f"UPDATE patient SET active = false WHERE id = {int(gone.id)}")
    for pid in (gone.id, 999999):
        with pytest.raises(AuthError) as err, session_scope(get_engine(settings)) as session:
            patient_context(session, settings, pid)
        assert err.value.exit_code == 5 and err.value.message == "this patient account cannot sign in"


def test_a_booking_not_yet_committed_wins_through_the_database_guard(settings, c, ctx_for, register, as_patient):
    """Certain rather than likely: the front desk's booking of the same time is in a transaction
    not yet committed while the patient books. On PostgreSQL the patient's check cannot see it,
    so the insert waits on the exclusion constraint and fails when the desk commits; on SQLite
    the patient's transaction waits for the write lock and then finds the time taken."""
    import time

    from hpms.services.scheduling import appointments

    policy(ctx_for, lead_minutes=0)
    desk_patient = register(first_name="Dee", last_name="Desk")
    results: list[object] = []

    def patient_books() -> None:
        try:
            results.append(book(as_patient, c.patient, "2026-06-16 09:00", provider=c.provider))
        except Exception as exc:  # noqa: BLE001 - the error is the result under test
            results.append(exc)

    with ctx_for(clock=fixed_clock) as ctx:
        appointments.book(ctx, patient=desk_patient.mrn, provider=c.provider, type="Visit", at="2026-06-16 09:00")
        ctx.session.flush()
        t = threading.Thread(target=patient_books)
        t.start()
        time.sleep(0.5)  # the patient's booking is now waiting on the desk's (lock or constraint)
        assert not results
    t.join(timeout=60)
    assert len(results) == 1 and isinstance(results[0], SlotTaken), results
    # SQLite: the check after the lock sees the time gone; PostgreSQL: the constraint refuses it
    assert ("is not open" if settings.is_sqlite else "was just taken") in results[0].message
    assert results[0].alternatives
    assert scalar(settings, "SELECT count(*) FROM appointment WHERE status = 'booked'") == 1
    assert scalar(settings, "SELECT count(*) FROM online_booking") == 0
