"""Fixtures for the scheduler (TUI) tests: SQLite only, a small clinic, a fixed clock.

The app under test is driven with Textual's Pilot. "Now" is Monday 2026-06-15 10:30 in
New York (14:30 UTC); the clinic is set up a week earlier so that visits earlier that
morning could be booked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

NOW = dt.datetime(2026, 6, 15, 14, 30, tzinfo=dt.UTC)  # 10:30 America/New_York, a Monday
SETUP = dt.datetime(2026, 6, 8, 12, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 6, 15)


def fixed_clock() -> dt.datetime:
    return NOW


def setup_clock() -> dt.datetime:
    return SETUP


@pytest.fixture
def backend() -> str:
    """Overrides the sqlite/postgresql parameter of tests/conftest.py: the TUI tests use a
    SQLite file (the service layer is tested on both backends elsewhere)."""
    return "sqlite"


@dataclass
class Clinic:
    location: int
    hopper: int  # provider column 0 (columns are sorted by last name)
    lovelace: int  # provider column 1
    visit: int  # type "Visit", 30 min
    long: int  # type "Long visit", 60 min
    room1: int
    room2: int
    doe: object  # PatientOut "Pat Doe"
    roe: object  # PatientOut "Rita Roe"
    early: int  # Doe, Lovelace, 09:00 (started before "now")
    later: int  # Roe, Hopper, 11:00


@pytest.fixture
def clinic(settings, ctx_for) -> Clinic:
    """Location 'Main' (New York): Grace Hopper and Ada Lovelace working MO-FR 08:00-17:00,
    types Visit (30 min) and Long visit (60 min), two rooms, two patients and two visits on
    the test day."""
    from hpms.services import lookups
    from hpms.services.people import patients
    from hpms.services.scheduling import appointments, availability, resources

    with ctx_for(clock=setup_clock) as ctx:
        loc = lookups.find_location(ctx, "Main")
        hopper = resources.add_provider(ctx, first_name="Grace", last_name="Hopper", npi="9876543213")
        lovelace = resources.add_provider(ctx, first_name="Ada", last_name="Lovelace", npi="1234567893")
        for p in (hopper, lovelace):
            availability.set_hours(ctx, p.id, days="MO-FR", start="08:00", end="17:00", effective_from="2026-01-01")
        visit = resources.add_type(ctx, name="Visit", duration_min=30)
        long = resources.add_type(ctx, name="Long visit", duration_min=60)
        room1 = resources.add_room(ctx, location="Main", name="Room 1")
        room2 = resources.add_room(ctx, location="Main", name="Room 2")
        doe = patients.register(ctx, first_name="Pat", last_name="Doe", dob="1980-01-02", phone="555-010-0001")
        roe = patients.register(ctx, first_name="Rita", last_name="Roe", dob="1975-03-04")
        early = appointments.book(
            ctx,
            patient=doe.mrn,
            provider=str(lovelace.id),
            type=str(visit.id),
            at="2026-06-15 09:00",
            reason="follow-up",
        ).booked[0]
        later = appointments.book(
            ctx, patient=roe.mrn, provider=str(hopper.id), type=str(visit.id), at="2026-06-15 11:00"
        ).booked[0]
    return Clinic(
        location=loc.id,
        hopper=hopper.id,
        lovelace=lovelace.id,
        visit=visit.id,
        long=long.id,
        room1=room1.id,
        room2=room2.id,
        doe=doe,
        roe=roe,
        early=early.id,
        later=later.id,
    )
