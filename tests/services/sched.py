"""Building blocks for the scheduling tests: clocks, a small clinic, direct reads."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tests.services.conftest import fixed_clock
from tests.services.helpers import audit_rows, scalar

NY = "America/New_York"
BERLIN = "Europe/Berlin"
LA = "America/Los_Angeles"
NPI_A, NPI_B, NPI_C = "1234567893", "9876543213", "1111111112"
JAN = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)  # before the spring changes of clocks


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def clock(value: dt.datetime):
    return lambda: value


def hm(value: dt.datetime) -> str:
    """Local wall-clock rendering with the offset, e.g. '2026-06-16 09:00 -0400'."""
    return value.strftime("%Y-%m-%d %H:%M %z")


@dataclass
class Clinic:
    provider: int
    type: int
    patient: int
    mrn: str
    location: int


def provider(ctx, first="Ada", last="Lovelace", npi=NPI_A, locations=None, **kw):
    from hpms.services.scheduling import resources

    return resources.add_provider(ctx, first_name=first, last_name=last, npi=npi, locations=locations, **kw)


def clinic(
    ctx_for,
    register,
    *,
    tz: str | None = None,
    days="MO-FR",
    start="08:00",
    end="17:00",
    effective_from="2026-01-01",
    duration=30,
    buffer=0,
    at=fixed_clock,
) -> Clinic:
    """One location ('Main', re-zoned to `tz` when given), one provider working `days`, one
    appointment type 'Visit' and one patient."""
    from hpms.services import lookups
    from hpms.services.platform import org
    from hpms.services.scheduling import availability, resources

    pat = register(first_name="Pat", last_name="Doe")
    with ctx_for(clock=at) as ctx:
        if tz:
            org.update_location(ctx, "Main", tz=tz)
        p = provider(ctx)
        t = resources.add_type(ctx, name="Visit", duration_min=duration, buffer_min=buffer)
        availability.set_hours(ctx, p.id, days=days, start=start, end=end, effective_from=effective_from)
        loc = lookups.find_location(ctx, "Main")
        return Clinic(provider=p.id, type=t.id, patient=pat.id, mrn=pat.mrn, location=loc.id)


def book(ctx_for, c: Clinic, at: str, *, user=None, when=fixed_clock, **kw):
    from hpms.services.scheduling import appointments

    kw.setdefault("patient", c.mrn)
    kw.setdefault("provider", c.provider)
    kw.setdefault("type", c.type)
    with ctx_for(user, clock=when) as ctx:
        return appointments.book(ctx, at=at, **kw)


def book_one(ctx_for, c: Clinic, at: str, **kw):
    return book(ctx_for, c, at, **kw).booked[0]


def open_utc(ctx_for, provider_id: int, location: str | int, day: dt.date, until: dt.date | None = None):
    from hpms.services import lookups
    from hpms.services.scheduling import availability

    with ctx_for(clock=fixed_clock) as ctx:
        loc = lookups.find_location(ctx, location)
        return availability.open_time(ctx.session, ctx.org_id, provider_id, loc, day, until or day)


def appointment_count(settings) -> int:
    return scalar(settings, "SELECT count(*) FROM appointment")


def appointment_events(settings, after_seq: int = 0) -> list[dict]:
    return [r for r in audit_rows(settings, after_seq) if r["entity"] == "appointment"]
