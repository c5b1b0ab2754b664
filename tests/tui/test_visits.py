"""The day of a visit with single keys: check-in, to room, complete; no-show; cancel;
reschedule by moving the block."""

from __future__ import annotations

import datetime as dt

from textual.widgets import Input, OptionList

from tests.tui.conftest import NOW
from tests.tui.helpers import (
    Clock,
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
    utc,
    wait_for,
)


def status_is(screen, status: str):
    return lambda: screen.grid.block is not None and screen.grid.block.status == status


@pilot_test
async def test_check_in_room_and_complete_with_single_keys(settings, clinic, ctx_for):
    from hpms.tui.screens.dialogs import ChoiceDialog

    clock = Clock()
    app = make_app(settings, clock=clock)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        await goto_cell(pilot, s, "11:00", clinic.hopper)
        assert s.grid.block.id == clinic.later
        assert cell_text(s, "11:00", 0).startswith("· 11:00 Roe, Rita")

        clock.at(10, 50)
        await pilot.press("i")
        await wait_for(pilot, status_is(s, "arrived"), what="checked in")
        assert cell_text(s, "11:00", 0).startswith("A 11:00 Roe, Rita")
        assert "· arrived" in static_text(s, "#detail")

        clock.at(10, 58)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceDialog), what="the room choice")
        rooms = app.screen.query_one(OptionList)
        assert [str(rooms.get_option_at_index(i).prompt) for i in range(rooms.option_count)] == ["Room 1", "Room 2"]
        for _ in range(3):
            if rooms.highlighted == 1:
                break
            await pilot.press("down")
        await pilot.press("enter")
        await wait_for(pilot, status_is(s, "in_room"), what="roomed")
        assert cell_text(s, "11:00", 0).startswith("R 11:00 Roe, Rita")
        assert static_text(s, "#detail").endswith("in room · Room 2")

        clock.at(11, 25)
        await pilot.press("e")
        await wait_for(pilot, status_is(s, "completed"), what="completed")
        assert cell_text(s, "11:00", 0).startswith("■ 11:00 Roe, Rita")
        assert notifications(app)[-3:] == [
            f"#{clinic.later} Rita Roe: checked in",
            f"#{clinic.later} Rita Roe: in room",
            f"#{clinic.later} Rita Roe: completed",
        ]

    a = stored(ctx_for, clinic.later)
    assert (a.status, a.room_id, a.version) == ("completed", clinic.room2, 4)
    assert utc(a.arrived_at) == dt.datetime(2026, 6, 15, 14, 50, tzinfo=dt.UTC)
    assert utc(a.roomed_at) == dt.datetime(2026, 6, 15, 14, 58, tzinfo=dt.UTC)
    assert utc(a.completed_at) == dt.datetime(2026, 6, 15, 15, 25, tzinfo=dt.UTC)


@pilot_test
async def test_no_show_on_a_visit_that_has_started(settings, clinic, ctx_for):
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        # 11:00 has not started at 10:30: refused, nothing written
        await goto_cell(pilot, s, "11:00", clinic.hopper)
        await pilot.press("N")
        await wait_for(pilot, lambda: any("has not started yet" in n for n in notifications(app)), what="the refusal")
        await settled(pilot)
        assert stored(ctx_for, clinic.later).status == "booked"
        assert cell_text(s, "11:00", 0).startswith("· 11:00 Roe, Rita")

        await goto_cell(pilot, s, "09:00", clinic.lovelace)  # started at 09:00, before "now"
        await pilot.press("N")
        await wait_for(pilot, status_is(s, "no_show"), what="no-show")
        assert cell_text(s, "09:00", 1).startswith("N 09:00 Doe, Pat")
        assert "no show" in static_text(s, "#detail")

    a = stored(ctx_for, clinic.early)
    assert (a.status, a.version, utc(a.no_show_at)) == ("no_show", 2, NOW)


@pilot_test
async def test_cancel_asks_the_reason(settings, clinic, ctx_for):
    from hpms.tui.screens.dialogs import TextDialog

    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        await goto_cell(pilot, s, "11:00", clinic.hopper)
        # no reason: nothing happens
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, TextDialog), what="the reason prompt")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is s, what="the prompt to close")
        await settled(pilot)
        assert stored(ctx_for, clinic.later).status == "booked"

        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, TextDialog), what="the reason prompt")
        assert "Cancel 11:00 Roe, Rita" in str(app.screen.query_one(".dialog-title").content)
        assert app.screen.focused is app.screen.query_one(Input)
        await pilot.press(*"patient has the flu", "enter")
        await wait_for(pilot, lambda: s.grid.block is None, what="the block to leave the grid")
        assert cell_text(s, "11:00", 0) == "" and cell_text(s, "11:15", 0) == ""
        assert any("Roe, Rita: cancelled (late)" in n for n in notifications(app))

    a = stored(ctx_for, clinic.later)
    assert (a.status, a.cancel_reason, a.late_cancel, utc(a.cancelled_at)) == (
        "cancelled",
        "patient has the flu",
        True,
        NOW,
    )
    assert appointment_count(settings) == 2


@pilot_test
async def test_reschedule_by_moving_the_block(settings, clinic, ctx_for):
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        await goto_cell(pilot, s, "11:00", clinic.hopper)
        await pilot.press("r")
        assert static_text(s, "#detail").startswith(" MOVE Roe, Rita: 11:00 Grace Hopper")
        await pilot.press("down", "down", "right")
        assert static_text(s, "#detail").startswith(" MOVE Roe, Rita: 11:30 Ada Lovelace")
        assert cell_text(s, "11:30", 1) == "» Roe, Rita"  # the ghost
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: cell_text(s, "11:30", 1).startswith("· 11:30 Roe, Rita"), what="the block at its new place"
        )
        assert cell_text(s, "11:00", 0) == ""
        assert s.grid.moving is None
        assert s.grid.block.id == clinic.later
        assert any("moved to Mon 11:30" in n for n in notifications(app))

    a = stored(ctx_for, clinic.later)
    assert (a.id, a.provider_id, a.status, a.version) == (clinic.later, clinic.lovelace, "booked", 2)
    assert utc(a.start_utc) == dt.datetime(2026, 6, 15, 15, 30, tzinfo=dt.UTC)
    assert utc(a.end_utc) == dt.datetime(2026, 6, 15, 16, 0, tzinfo=dt.UTC)
    assert appointment_count(settings) == 2


@pilot_test
async def test_escape_aborts_a_move(settings, clinic, ctx_for):
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        await goto_cell(pilot, s, "11:00", clinic.hopper)
        await pilot.press("r", "down", "down", "right")
        assert s.grid.moving is not None
        await pilot.press("escape")
        assert s.grid.moving is None
        assert "move aborted" in notifications(app)
        await settled(pilot)
        assert cell_text(s, "11:00", 0).startswith("· 11:00 Roe, Rita")
        assert cell_text(s, "11:30", 1) == ""
        assert (s.grid.minute, s.grid.column_key) == (11 * 60, clinic.hopper)
        assert f"#{clinic.later} 11:00-11:30 Roe, Rita" in static_text(s, "#detail")

    a = stored(ctx_for, clinic.later)
    assert (a.provider_id, a.version, utc(a.start_utc)) == (
        clinic.hopper,
        1,
        dt.datetime(2026, 6, 15, 15, 0, tzinfo=dt.UTC),
    )


@pilot_test
async def test_enter_on_a_visit_opens_its_actions(settings, clinic, ctx_for):
    from hpms.tui.screens.dialogs import AppointmentDialog

    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        await goto_cell(pilot, s, "11:15", clinic.hopper)  # the second row of the block
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AppointmentDialog), what="the appointment's dialog")
        text = "\n".join(str(w.content) for w in app.screen.query("Static"))
        assert f"#{clinic.later}  Mon 15 Jun 2026 11:00-11:30" in text
        assert "Patient   Roe, Rita (MRN" in text and "Provider  Grace Hopper" in text
        assert "Status    booked" in text
        await pilot.press("c")
        await wait_for(pilot, status_is(s, "confirmed"), what="confirmed")
        assert cell_text(s, "11:00", 0).startswith("✓ 11:00 Roe, Rita")

        await pilot.press("n")  # not a free cell: a warning, no dialog
        await settled(pilot)
        assert app.screen is s
        assert "this time is taken; move to a free cell" in notifications(app)

    a = stored(ctx_for, clinic.later)
    assert (a.status, utc(a.confirmed_at), a.version) == ("confirmed", NOW, 2)
