"""Freed slots, waitlist offers and filling them, and patient merge moving visits and entries."""

from __future__ import annotations

import datetime as dt

import pytest

from hpms.errors import ConflictError, NotFoundError, ValidationError
from tests.services.conftest import NOW, fixed_clock
from tests.services.helpers import audit_rows, last_seq, query, scalar
from tests.services.sched import LA, NPI_B, book, book_one, clinic, clock, hm, provider, utc


def _freed(settings):
    rows = query(
        settings,
        "SELECT provider_id, location_id, start_utc, end_utc, appointment_id, status, freed_at "
        "FROM freed_slot ORDER BY id",
    )
    for r in rows:
        for k in ("start_utc", "end_utc", "freed_at"):
            v = r[k]
            if isinstance(v, str):
                v = dt.datetime.fromisoformat(v)
            r[k] = v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)
    return rows


def _cancel(ctx_for, appointment_id, when=fixed_clock, **kw):
    from hpms.services.scheduling import appointments

    with ctx_for(clock=when) as ctx:
        return appointments.cancel(ctx, appointment_id, reason="patient called", **kw)


def _wait(ctx_for, mrn, type_id, since: dt.datetime, **kw):
    from hpms.services.scheduling import waitlist

    with ctx_for(clock=clock(since)) as ctx:
        return waitlist.add(ctx, patient=mrn, type=type_id, **kw)


def _offers(ctx_for, when=fixed_clock):
    from hpms.services.scheduling import waitlist

    with ctx_for(clock=when) as ctx:
        return waitlist.offers(ctx)


def test_cancelling_or_moving_a_future_visit_frees_its_time(settings, ctx_for, register):
    from hpms.services.scheduling import appointments, lifecycle

    c = clinic(ctx_for, register, buffer=10)
    a = book_one(ctx_for, c, "2026-06-16 09:00")
    b = book_one(ctx_for, c, "2026-06-17 09:00")
    past = book_one(ctx_for, c, "2026-06-15 11:00")
    _cancel(ctx_for, past.id, when=clock(utc(2026, 6, 15, 16)))  # it had already begun
    assert _freed(settings) == []
    _cancel(ctx_for, a.id)
    with ctx_for(clock=fixed_clock) as ctx:
        appointments.reschedule(ctx, b.id, at="2026-06-18 09:00")
    assert _freed(settings) == [
        dict(
            provider_id=c.provider,
            location_id=c.location,
            start_utc=utc(2026, 6, 16, 13),
            end_utc=utc(2026, 6, 16, 13, 40),
            appointment_id=a.id,
            status="open",
            freed_at=NOW,
        ),
        dict(
            provider_id=c.provider,
            location_id=c.location,
            start_utc=utc(2026, 6, 17, 13),
            end_utc=utc(2026, 6, 17, 13, 40),
            appointment_id=b.id,
            status="open",
            freed_at=NOW,
        ),
    ]
    # completing or marking a no-show frees nothing
    t = book_one(ctx_for, c, "2026-06-15 15:00")
    with ctx_for(clock=clock(utc(2026, 6, 15, 19, 5))) as ctx:
        lifecycle.transition(ctx, t.id, "noshow")
    assert len(_freed(settings)) == 2


@pytest.fixture
def world(ctx_for, register):
    """A clinic with a second provider, a second location, a 60-minute type and six waiting patients."""
    from hpms.services.platform import org
    from hpms.services.scheduling import availability, resources

    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        ben = provider(ctx, "Ben", "Byron", NPI_B)
        availability.set_hours(ctx, ben.id, days="MO-FR", start="8", end="17", effective_from="2026-01-01")
        org.add_location(ctx, name="West", tz=LA)
        long = resources.add_type(ctx, name="Long", duration_min=60)
    names = ("Early", "Later", "Lengthy", "Benfan", "Westie", "Window")
    pats = {n: register(first_name=n, last_name="Waiting") for n in names}
    e = {
        "Later": _wait(ctx_for, pats["Later"].mrn, c.type, utc(2026, 6, 10, 12)),
        "Early": _wait(ctx_for, pats["Early"].mrn, c.type, utc(2026, 6, 1, 12), note="any morning"),
        "Lengthy": _wait(ctx_for, pats["Lengthy"].mrn, long.id, utc(2026, 5, 1, 12)),
        "Benfan": _wait(ctx_for, pats["Benfan"].mrn, c.type, utc(2026, 5, 2, 12), provider=ben.id),
        "Westie": _wait(ctx_for, pats["Westie"].mrn, c.type, utc(2026, 5, 3, 12), location="West"),
        "Window": _wait(ctx_for, pats["Window"].mrn, c.type, utc(2026, 5, 4, 12), earliest="2026-06-17"),
    }
    return c, ben, long, pats, e


def test_offers_match_type_provider_location_and_window_longest_wait_first(settings, ctx_for, world):
    c, ben, long, pats, e = world
    assert _offers(ctx_for) == []  # nothing freed yet
    a = book_one(ctx_for, c, "2026-06-16 09:00")
    _cancel(ctx_for, a.id)
    seq = last_seq(settings)
    offers = _offers(ctx_for)
    assert [(o.entry_id, o.patient) for o in offers] == [
        (e["Early"].id, "Early Waiting"),
        (e["Later"].id, "Later Waiting"),
    ]
    o = offers[0]
    slot_id = scalar(settings, "SELECT id FROM freed_slot")
    assert (o.slot_id, o.type, o.provider_id, o.provider, o.location) == (
        slot_id,
        "Visit",
        c.provider,
        "Ada Lovelace",
        "Main",
    )
    assert (hm(o.start), hm(o.end)) == ("2026-06-16 09:00 -0400", "2026-06-16 09:30 -0400")
    assert o.waiting_since == utc(2026, 6, 1, 12)
    reads = audit_rows(settings, seq)
    assert [(r["action"], r["entity"], r["patient_ids_list"]) for r in reads] == [
        ("read", "waitlist_entry", sorted([pats["Early"].id, pats["Later"].id]))
    ]
    # a later slot inside the window of "Window", and one of Ben's
    b = book_one(ctx_for, c, "2026-06-17 09:00")
    _cancel(ctx_for, b.id)
    x = book_one(ctx_for, c, "2026-06-17 11:00", provider=ben.id)
    _cancel(ctx_for, x.id)
    got = [(o.patient.split()[0], hm(o.start)[5:16]) for o in _offers(ctx_for)]
    assert got == [
        ("Benfan", "06-17 11:00"),
        ("Window", "06-17 09:00"),
        ("Window", "06-17 11:00"),
        ("Early", "06-16 09:00"),
        ("Early", "06-17 09:00"),
        ("Early", "06-17 11:00"),
        ("Later", "06-16 09:00"),
        ("Later", "06-17 09:00"),
        ("Later", "06-17 11:00"),
    ]


def test_latest_bounds_the_window_and_past_slots_are_not_offered(settings, ctx_for, register):
    c = clinic(ctx_for, register)
    pat = register(first_name="Soon", last_name="Waiting")
    _wait(ctx_for, pat.mrn, c.type, utc(2026, 6, 1, 12), latest="2026-06-16")
    for at in ("2026-06-16 16:00", "2026-06-17 09:00"):
        _cancel(ctx_for, book_one(ctx_for, c, at).id)
    assert [hm(o.start)[:16] for o in _offers(ctx_for)] == ["2026-06-16 16:00"]
    # once the freed time has passed it is no longer offered
    assert _offers(ctx_for, when=clock(utc(2026, 6, 16, 20, 1))) == []


def test_a_long_freed_slot_partly_rebooked_offers_the_rest(settings, ctx_for, world):
    c, ben, long, pats, e = world
    a = book_one(ctx_for, c, "2026-06-16 09:00", type=long.id)
    _cancel(ctx_for, a.id)
    first = [(o.patient.split()[0], hm(o.start)[11:16]) for o in _offers(ctx_for)]
    assert first == [("Lengthy", "09:00"), ("Early", "09:00"), ("Later", "09:00")]
    book_one(ctx_for, c, "2026-06-16 09:00", patient=register_other(ctx_for, c))
    second = [(o.patient.split()[0], hm(o.start)[11:16]) for o in _offers(ctx_for)]
    assert second == [("Early", "09:30"), ("Later", "09:30")]


def register_other(ctx_for, c):
    from hpms.services.people import patients

    with ctx_for(clock=fixed_clock) as ctx:
        return patients.register(ctx, first_name="Olga", last_name="Other", dob="1970-01-01").mrn


def test_fill_books_and_marks_entry_and_slot_filled(settings, ctx_for, world):
    from hpms.services.scheduling import waitlist

    c, ben, long, pats, e = world
    a = book_one(ctx_for, c, "2026-06-16 09:00")
    _cancel(ctx_for, a.id)
    slot_id = scalar(settings, "SELECT id FROM freed_slot")
    seq = last_seq(settings)
    with ctx_for(clock=fixed_clock) as ctx:
        out = waitlist.fill(ctx, e["Early"].id, slot=slot_id)
    [appt] = out.booked
    assert (appt.patient_id, appt.provider_id, appt.reason, hm(appt.start)) == (
        pats["Early"].id,
        c.provider,
        "any morning",
        "2026-06-16 09:00 -0400",
    )
    assert query(settings, "SELECT status, appointment_id FROM waitlist_entry WHERE id = :i", i=e["Early"].id) == [
        {"status": "filled", "appointment_id": appt.id}
    ]
    assert _freed(settings)[0]["status"] == "filled"
    ev = [(r["action"], r["entity"], r["patient_id"]) for r in audit_rows(settings, seq)]
    assert ev == [("create", "appointment", pats["Early"].id), ("update", "waitlist_entry", pats["Early"].id)]
    assert _offers(ctx_for) == []
    for entry, why in ((e["Early"].id, "is filled"), (e["Later"].id, "already filled")):
        with pytest.raises(ConflictError) as err:
            with ctx_for(clock=fixed_clock) as ctx:
                waitlist.fill(ctx, entry, slot=slot_id)
        assert why in err.value.message
    with ctx_for(clock=fixed_clock) as ctx:
        listed = waitlist.list_entries(ctx, status="filled")
    assert [(x.id, x.appointment_id) for x in listed] == [(e["Early"].id, appt.id)]


def test_a_slot_booked_meanwhile_is_not_offered_nor_filled(settings, ctx_for, world):
    from hpms.services.scheduling import waitlist

    c, ben, long, pats, e = world
    a = book_one(ctx_for, c, "2026-06-16 09:00")
    _cancel(ctx_for, a.id)
    slot_id = scalar(settings, "SELECT id FROM freed_slot")
    book_one(ctx_for, c, "2026-06-16 09:00", patient=register_other(ctx_for, c))
    assert _offers(ctx_for) == []
    with pytest.raises(ConflictError) as err:
        with ctx_for(clock=fixed_clock) as ctx:
            waitlist.fill(ctx, e["Early"].id, slot=slot_id)
    assert "has been booked since it was freed" in err.value.message
    assert scalar(settings, "SELECT status FROM waitlist_entry WHERE id = :i", i=e["Early"].id) == "open"


def test_fill_at_a_time_and_entry_upkeep(settings, ctx_for, world):
    from hpms.services.scheduling import waitlist

    c, ben, long, pats, e = world
    with pytest.raises(ValidationError) as err:
        with ctx_for(clock=fixed_clock) as ctx:
            waitlist.fill(ctx, e["Early"].id, at="2026-06-18 10:00")
    assert err.value.field == "provider"
    with pytest.raises(ValidationError) as err:
        with ctx_for(clock=fixed_clock) as ctx:
            waitlist.fill(ctx, e["Early"].id)
    assert err.value.field == "slot"
    with ctx_for(clock=fixed_clock) as ctx:
        out = waitlist.fill(ctx, e["Benfan"].id, at="2026-06-18 10:00")
        assert (out.booked[0].provider, hm(out.booked[0].start)) == ("Ben Byron", "2026-06-18 10:00 -0400")
        with pytest.raises(ConflictError):
            waitlist.add(ctx, patient=pats["Later"].mrn, type=c.type)
        removed = waitlist.remove(ctx, e["Later"].id)
        assert removed.status == "removed"
        with pytest.raises(ConflictError):
            waitlist.remove(ctx, e["Later"].id)
        with pytest.raises(NotFoundError):
            waitlist.remove(ctx, 999)
        assert waitlist.add(ctx, patient=pats["Later"].mrn, type=c.type).status == "open"
        with pytest.raises(ValidationError) as err:
            waitlist.add(ctx, patient=pats["Later"].mrn, type=long.id, latest="2026-06-14")
        assert err.value.field == "latest"
        with pytest.raises(ValidationError) as err:
            waitlist.add(ctx, patient=pats["Later"].mrn, type=long.id, earliest="2026-07-02", latest="2026-07-01")
        assert err.value.field == "latest"
        open_ = [x.patient for x in waitlist.list_entries(ctx)]
    assert open_ == ["Lengthy Waiting", "Westie Waiting", "Window Waiting", "Early Waiting", "Later Waiting"]


# ---- merge ---------------------------------------------------------------------------------


def test_merge_moves_appointments_and_waitlist_entries(settings, ctx_for, register):
    from hpms.services.people import patients
    from hpms.services.scheduling import listing

    c = clinic(ctx_for, register)
    dup = register(first_name="Pat", last_name="Doe", phone="555-201-3344")
    mine = book_one(ctx_for, c, "2026-06-16 09:00")
    theirs = book_one(ctx_for, c, "2026-06-17 09:00", patient=dup.mrn)
    series = book(ctx_for, c, "2026-06-18 09:00", patient=dup.mrn, repeat="FREQ=WEEKLY;COUNT=2")
    entry = _wait(ctx_for, dup.mrn, c.type, NOW)
    with ctx_for(clock=fixed_clock) as ctx:
        kept = patients.merge(ctx, c.mrn, dup.mrn)
    assert kept.id == c.patient
    rows = query(settings, "SELECT id, patient_id FROM appointment ORDER BY id")
    assert rows == [{"id": i, "patient_id": c.patient} for i in [mine.id, theirs.id] + [a.id for a in series.booked]]
    assert query(settings, "SELECT id, patient_id FROM waitlist_entry") == [{"id": entry.id, "patient_id": c.patient}]
    merged = [r for r in audit_rows(settings) if r["action"] == "merge" and r["patient_id"] == c.patient]
    assert "appointment=3" in merged[0]["detail"] and "waitlist_entry=1" in merged[0]["detail"]
    with ctx_for(clock=fixed_clock) as ctx:
        assert [a.id for a in listing.history(ctx, c.mrn)] == [a.id for a in reversed(series.booked)] + [
            theirs.id,
            mine.id,
        ]


def test_merge_refuses_two_visits_at_the_same_time(settings, ctx_for, register):
    from hpms.services.people import patients
    from hpms.services.scheduling import availability

    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        ben = provider(ctx, "Ben", "Byron", NPI_B)
        availability.set_hours(ctx, ben.id, days="MO-FR", start="8", end="17", effective_from="2026-01-01")
    dup = register(first_name="Pat", last_name="Doe")
    book_one(ctx_for, c, "2026-06-16 09:00")
    book_one(ctx_for, c, "2026-06-16 09:15", patient=dup.mrn, provider=ben.id)
    before = query(settings, "SELECT id, patient_id FROM appointment ORDER BY id")
    with pytest.raises(ConflictError) as err:
        with ctx_for(clock=fixed_clock) as ctx:
            patients.merge(ctx, c.mrn, dup.mrn)
    assert "same time" in err.value.message
    assert query(settings, "SELECT id, patient_id FROM appointment ORDER BY id") == before
    assert scalar(settings, "SELECT active FROM patient WHERE id = :i", i=dup.id) in (True, 1)
