"""Help, the panels over the day view, changing the day and the location."""

from __future__ import annotations

import re

import pytest
from textual.widgets import DataTable, OptionList, Select, Static

from tests.tui.conftest import setup_clock
from tests.tui.helpers import (
    cell_text,
    grid_lines,
    loaded,
    make_app,
    notifications,
    pilot_test,
    row_text,
    settled,
    static_text,
    wait_for,
)

KEY_NAMES = {
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "plus": "+",
    "equals_sign": "=",
    "minus": "-",
    "question_mark": "?",
    "f5": "F5",
    "ctrl+r": "Ctrl+R",
    "escape": "Esc",
}


@pilot_test
async def test_help_lists_the_keys(settings, clinic):
    from hpms.tui.app import DayScreen
    from hpms.tui.screens.panels import HelpScreen

    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        text = "\n".join(str(w.content) for w in app.screen.query(Static))
        for key, word in (
            ("c", "confirm"),
            ("i", "check in"),
            ("m", "room"),
            ("e", "complete"),
            ("d", "dashboard"),
            ("N", "no-show"),
            ("x", "cancel"),
            ("r", "reschedule"),
            ("p", "patient"),
            ("w", "week"),
            ("f", "flow"),
            ("s", "slot"),
            ("v", "waitlist"),
            ("g", "date"),
            ("L", "location"),
            ("t", "today"),
            ("?", "help"),
            ("q", "quit"),
            ("Ctrl+S", "book"),
            ("Ctrl+N", "register"),
        ):
            assert re.search(rf"(^|\s){re.escape(key)}\s+[^\n]{{0,30}}?{word}", text), f"{key} {word}"
        # every key of the day view is listed (the first name of each binding is enough)
        for binding in DayScreen.BINDINGS:
            if binding.action in ("abort_move",):
                continue  # part of the reschedule line
            key = binding.key.split(",")[0]
            shown = KEY_NAMES.get(key, key)
            assert re.search(rf"(^|\s){re.escape(shown)}(\s|$)", text), f"{binding.action}: {shown} not in the help"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is s, what="back to the day view")
        assert s.grid.has_focus


async def back_with_escape(pilot, s) -> None:
    await pilot.press("escape")
    await wait_for(pilot, lambda: pilot.app.screen is s, what="back to the day view")
    await settled(pilot)
    assert s.grid.has_focus
    assert cell_text(s, "11:00", 0).startswith("· 11:00 Roe, Rita")


def table_rows(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


@pilot_test
async def test_week_flow_find_slot_and_waitlist_open_and_close(settings, clinic):
    from hpms.tui.screens.dialogs import BookingDialog
    from hpms.tui.screens.panels import FindSlotScreen, FlowScreen, WaitlistScreen, WeekScreen

    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)

        await pilot.press("w")  # the week of the provider under the cursor (Grace Hopper)
        await wait_for(pilot, lambda: isinstance(app.screen, WeekScreen), what="the week")
        week = app.screen
        await wait_for(pilot, lambda: week.query_one(DataTable).row_count == 7, what="the week's rows")
        assert static_text(week, "#title") == " Grace Hopper · week 2026-W25"
        monday = table_rows(week.query_one(DataTable))[0]
        assert monday[:3] == ["Mon 15 Jun", "Main", "08:00-17:00"] and monday[4] == "1"
        await back_with_escape(pilot, s)

        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, FlowScreen), what="the flow board")
        flow = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: flow.row_count == 2, what="the flow board's rows")
        assert [r[:3] for r in table_rows(flow)] == [
            ["expected", "09:00", "Doe, Pat"],
            ["expected", "11:00", "Roe, Rita"],
        ]
        await back_with_escape(pilot, s)

        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, FindSlotScreen), what="find a slot")
        finder = app.screen
        select = finder.query_one("#type", Select)
        await wait_for(pilot, lambda: finder.focused is select and len(select._options) == 3, what="the types")
        index = [str(label) for label, _ in select._options].index("Visit (30 min)")
        await pilot.press("enter", *["down"] * index, "enter")
        slots = finder.query_one("#slots", DataTable)
        await wait_for(pilot, lambda: slots.row_count > 0, what="free slots")
        assert table_rows(slots)[0][:2] == ["Mon 15 Jun 10:30", "Grace Hopper"]
        assert finder.focused is slots
        await pilot.press("enter")  # books the highlighted slot: the booking dialog opens on it
        await wait_for(pilot, lambda: isinstance(app.screen, BookingDialog), what="the booking dialog")
        assert str(app.screen.query_one(".dialog-title").content) == "Book 2026-06-15 10:30 · Grace Hopper"
        await back_with_escape(pilot, s)

        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, WaitlistScreen), what="the waitlist")
        await settled(pilot)
        assert app.screen.query_one("#entries", DataTable).row_count == 0
        await back_with_escape(pilot, s)


@pilot_test
async def test_go_to_date_and_previous_next_day(settings, clinic):
    from hpms.tui.screens.dialogs import TextDialog

    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        assert static_text(s, "#topbar").startswith(" Main · Mon 15 Jun 2026 (today)")

        async def goto(text: str) -> None:
            await pilot.press("g")
            await wait_for(pilot, lambda: isinstance(app.screen, TextDialog), what="the date prompt")
            await pilot.press(*text, "enter")
            await wait_for(pilot, lambda: app.screen is s, what="the prompt to close")
            await settled(pilot)

        await goto("2026-06-17")
        assert static_text(s, "#topbar").startswith(" Main · Wed 17 Jun 2026 · providers")
        assert "Roe, Rita" not in "\n".join(grid_lines(s))
        await pilot.press("right_square_bracket")
        await settled(pilot)
        assert static_text(s, "#topbar").startswith(" Main · Thu 18 Jun 2026 ·")
        await pilot.press("left_square_bracket", "left_square_bracket", "left_square_bracket")
        await settled(pilot)
        assert static_text(s, "#topbar").startswith(" Main · Mon 15 Jun 2026 (today)")
        assert cell_text(s, "11:00", 0).startswith("· 11:00 Roe, Rita")

        await goto("soon")
        assert any("'soon' is not a date" in n for n in notifications(app))
        assert static_text(s, "#topbar").startswith(" Main · Mon 15 Jun 2026")

        # the words mean the clinic's today, not the day on screen
        await goto("2026-06-19")
        assert static_text(s, "#topbar").startswith(" Main · Fri 19 Jun 2026")
        await goto("today")
        assert static_text(s, "#topbar").startswith(" Main · Mon 15 Jun 2026 (today)")
        await goto("2026-06-19")
        await goto("tomorrow")
        assert static_text(s, "#topbar").startswith(" Main · Tue 16 Jun 2026")
        await goto("+7")
        assert static_text(s, "#topbar").startswith(" Main · Mon 22 Jun 2026")

        await pilot.press("t")
        await settled(pilot)
        assert static_text(s, "#topbar").startswith(" Main · Mon 15 Jun 2026 (today)")


@pytest.fixture
def annex(settings, ctx_for, clinic):
    """A second location, 'Annex' in Chicago, where Alan Turing works."""
    from hpms.services.platform import org
    from hpms.services.scheduling import availability, resources

    with ctx_for(clock=setup_clock) as ctx:
        loc = org.add_location(ctx, name="Annex", tz="America/Chicago")
        turing = resources.add_provider(
            ctx, first_name="Alan", last_name="Turing", npi="1111111112", locations=["Annex"]
        )
        availability.set_hours(
            ctx, turing.id, location="Annex", days="MO-FR", start="07:00", end="12:00", effective_from="2026-01-01"
        )
    return loc.id


@pilot_test
async def test_switch_location(settings, clinic, annex):
    from hpms.tui.screens.dialogs import ChoiceDialog

    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        assert "Grace Hopper" in grid_lines(s)[0]
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceDialog), what="the location choice")
        options = app.screen.query_one(OptionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert labels == ["Main (America/New_York)", "Annex (America/Chicago)"]
        for _ in range(3):
            if options.highlighted == 1:
                break
            await pilot.press("down")
        await pilot.press("enter")
        await wait_for(pilot, lambda: s.view.location_id == annex, what="the Annex day")
        await settled(pilot)
        assert static_text(s, "#topbar") == (" Annex · Mon 15 Jun 2026 (today) · providers · 15 min · America/Chicago")
        header = grid_lines(s)[0]
        assert "Alan Turing" in header and "Grace Hopper" not in header
        assert s.grid.minute == 9 * 60 + 30  # now in Chicago
        assert "09:30 Alan Turing · free" in static_text(s, "#detail")
        assert " · Annex · refreshed 09:30:00" in static_text(s, "#status")


@pilot_test
async def test_room_columns_and_time_step(settings, clinic, ctx_for):
    from hpms.services.scheduling import appointments

    with ctx_for(clock=setup_clock) as ctx:  # a visit with a room
        appointments.book(
            ctx,
            patient=clinic.doe.mrn,
            provider=str(clinic.hopper),
            type=str(clinic.visit),
            at="2026-06-15 14:00",
            room="Room 2",
        )
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        await pilot.press("o")
        await wait_for(pilot, lambda: s.view.mode == "room" and not s._loading, what="the room columns")
        await settled(pilot)
        assert " · rooms · 15 min · " in static_text(s, "#topbar")
        assert re.findall(r"Room 1|Room 2|No room", grid_lines(s)[0]) == ["Room 1", "Room 2", "No room"]
        assert cell_text(s, "14:00", 1).startswith("· 14:00 Doe, Pat")
        assert cell_text(s, "11:00", 2).startswith("· 11:00 Roe, Rita")  # no room yet
        assert cell_text(s, "09:00", 2).startswith("· 09:00 Doe, Pat")

        await pilot.press("n")  # booking needs provider columns
        assert "switch to the provider columns (o) to book" in notifications(app)

        await pilot.press("o", "minus")
        await wait_for(pilot, lambda: s.view.mode == "provider" and not s._loading, what="the provider columns")
        await settled(pilot)
        assert " · providers · 30 min · " in static_text(s, "#topbar")
        assert s.grid.step == 30
        assert cell_text(s, "11:00", 0).startswith("· 11:00 Roe, Rita")
        assert row_text(s, "11:30").startswith("   :30")
        await pilot.press("plus", "plus")
        assert s.grid.step == 10 and " · 10 min · " in static_text(s, "#topbar")


@pilot_test
async def test_dashboard_shows_todays_figures_and_charts(settings, clinic):
    from textual_plotext import PlotextPlot

    from hpms.tui.screens.panels import DashboardScreen

    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="the dashboard")
        dash = app.screen
        await wait_for(pilot, lambda: "Appointments" in static_text(dash, "#kpis"), what="the figures")
        kpis = static_text(dash, "#kpis")
        # the clinic's day: two booked visits (09:00, 11:00), nothing arrived or done yet
        assert "Appointments 2 " in kpis and "completed 0" in kpis and "no-shows 0" in kpis
        assert len(dash.query(PlotextPlot)) == 2
        await back_with_escape(pilot, s)
