"""Changes made elsewhere show up by themselves; a role that may not book is told so."""

from __future__ import annotations

import datetime as dt
import time

from tests.tui.conftest import NOW
from tests.tui.helpers import (
    appointment_count,
    cell_text,
    goto_cell,
    loaded,
    make_app,
    notifications,
    pilot_test,
    settled,
    static_text,
    stored,
    wait_for,
)


@pilot_test
async def test_bookings_from_elsewhere_appear_without_a_key_press(settings, clinic, ctx_for):
    from hpms.services.scheduling import appointments

    app = make_app(settings, poll_seconds=0.2)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        assert cell_text(s, "13:00", 0) == ""
        first = s.view

        with ctx_for(clock=lambda: NOW + dt.timedelta(seconds=1)) as ctx:
            appointments.book(
                ctx, patient=clinic.doe.mrn, provider=str(clinic.hopper), type=str(clinic.visit), at="2026-06-15 13:00"
            )
        t0 = time.monotonic()
        await wait_for(
            pilot,
            lambda: cell_text(s, "13:00", 0).startswith("· 13:00 Doe, Pat"),
            timeout=2,
            what="the outside booking on the grid",
        )
        assert time.monotonic() - t0 < 2
        assert s.view is not first

        # a cancellation elsewhere takes the block away again
        with ctx_for(clock=lambda: NOW + dt.timedelta(seconds=2)) as ctx:
            appointments.cancel(ctx, clinic.later, reason="called in")
        await wait_for(pilot, lambda: cell_text(s, "11:00", 0) == "", timeout=2, what="the cancelled block to go")
        assert cell_text(s, "13:00", 0).startswith("· 13:00 Doe, Pat")


@pilot_test
async def test_a_biller_sees_the_schedule_but_may_not_book(settings, clinic, ctx_for, make_user, token_for):
    from hpms.tui.screens.dialogs import BookingDialog

    make_user("biller1", "biller")
    env = {"HPMS_USER": "biller1", "HPMS_TOKEN": token_for("biller1")}
    app = make_app(settings, env=env)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        assert s.view.can_book is False
        assert static_text(s, "#status").startswith(" biller1 (biller) · Main · refreshed 10:30:00")
        assert cell_text(s, "09:00", 1).startswith("· 09:00 Doe, Pat")
        assert cell_text(s, "11:00", 0).startswith("· 11:00 Roe, Rita")
        assert "n or Enter to book" not in static_text(s, "#detail")  # no offer to book

        before = appointment_count(settings)
        await goto_cell(pilot, s, "12:00", clinic.hopper)
        await pilot.press("n")
        await pilot.press("enter")
        await settled(pilot)
        assert not any(isinstance(x, BookingDialog) for x in app.screen_stack)
        assert notifications(app).count("your role may not book appointments") == 2

        # an update is refused by the service and shown, not crashed on
        await goto_cell(pilot, s, "11:00", clinic.hopper)
        await pilot.press("i")
        await wait_for(
            pilot, lambda: any("may not change appointments" in n for n in notifications(app)), what="the refusal"
        )
        await settled(pilot)
        assert cell_text(s, "11:00", 0).startswith("· 11:00 Roe, Rita")
    assert appointment_count(settings) == before
    assert stored(ctx_for, clinic.later).status == "booked"
