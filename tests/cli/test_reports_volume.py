"""`hpms reports show appointments-volume --by provider --json` on a hand-built data set."""

from __future__ import annotations

import datetime as dt

from tests.cli.helpers import error_line, ok


def test_show_volume_by_provider(cli, ctx_for):
    from hpms.models import Appointment
    from hpms.services import lookups
    from hpms.services.people import patients
    from hpms.services.platform import localtime as lt
    from hpms.services.scheduling import resources

    with ctx_for() as ctx:
        pat = patients.register(ctx, first_name="Pat", last_name="Doe", dob="1980-01-01").id
        ada = resources.add_provider(ctx, first_name="Ada", last_name="Lovelace", npi="1234567893").id
        bob = resources.add_provider(ctx, first_name="Bob", last_name="Babbage", npi="9876543213").id
        visit = resources.add_type(ctx, name="Visit", duration_min=30).id
        loc = lookups.find_location(ctx, "Main")
        for pid, when, booked, status in [
            (ada, "2026-06-01 09:00", "2026-05-29 09:00", "completed"),  # lead 3
            (ada, "2026-06-02 09:00", "2026-06-01 09:00", "no_show"),  # lead 1
            (ada, "2026-06-03 09:00", "2026-05-01 09:00", "cancelled"),  # not booked
            (bob, "2026-06-04 09:00", "2026-06-04 08:00", "booked"),  # lead 0
        ]:
            start = lt.wall_to_utc(dt.datetime.fromisoformat(when), loc.tz)
            ctx.session.add(
                Appointment(
                    org_id=ctx.org_id,
                    patient_id=pat,
                    provider_id=pid,
                    location_id=loc.id,
                    type_id=visit,
                    start_utc=start,
                    end_utc=start + dt.timedelta(minutes=30),
                    block_end_utc=start + dt.timedelta(minutes=30),
                    status=status,
                    booked_at=lt.wall_to_utc(dt.datetime.fromisoformat(booked), loc.tz),
                    cancelled_at=start if status == "cancelled" else None,
                )
            )
    got = ok(
        cli(
            "reports",
            "show",
            "appointments-volume",
            "--by",
            "provider",
            "--from",
            "2026-06-01",
            "--to",
            "2026-06-30",
            "--json",
        )
    )
    assert got == [
        # Ada: 2 booked, 1 completed, 1 no-show, 1 cancelled, lead (3 + 1) / 2 = 2
        {"group": "Ada Lovelace", "booked": 2, "completed": 1, "no_show": 1, "cancelled": 1, "avg_lead_days": 2.0},
        {"group": "Bob Babbage", "booked": 1, "completed": 0, "no_show": 0, "cancelled": 0, "avg_lead_days": 0.0},
    ]
    r = cli("reports", "show", "appointments-volume", "--by", "decade", "--period", "2026-06")
    error_line(r, 2, "--by")
