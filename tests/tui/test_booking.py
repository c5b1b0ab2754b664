"""Booking from the day view: the dialog end to end, a slot taken meanwhile, and a new
patient registered inside the dialog."""

from __future__ import annotations

from textual.widgets import Input, OptionList, Select

from tests.tui.conftest import NOW
from tests.tui.helpers import (
    appointment_count,
    cell_text,
    goto_cell,
    loaded,
    make_app,
    notifications,
    out_at,
    pilot_test,
    rows,
    settled,
    static_text,
    wait_for,
)


def booking_dialog(app):
    from hpms.tui.screens.dialogs import BookingDialog

    return app.screen if isinstance(app.screen, BookingDialog) else None


async def open_booking(pilot):
    """`n` on the cell under the cursor; waits until the dialog has its types."""
    await pilot.press("n")
    await wait_for(pilot, lambda: booking_dialog(pilot.app) is not None, what="the booking dialog")
    dialog = booking_dialog(pilot.app)
    await wait_for(pilot, lambda: dialog.types, what="the appointment types")
    await pilot.pause()
    return dialog


async def pick_patient(pilot, dialog, text: str, expect: str) -> None:
    """Type in the search, Enter to the results, Enter on the first one."""
    await pilot.press(*text)
    results = dialog.query_one("#results", OptionList)
    await wait_for(pilot, lambda: results.option_count == 1, what=f"one search result for {text!r}")
    assert expect in str(results.get_option_at_index(0).prompt)
    await pilot.press("enter")  # to the results
    assert dialog.focused is results and results.highlighted == 0
    await pilot.press("enter")  # pick
    await wait_for(pilot, lambda: dialog.patient is not None, what="the chosen patient")
    assert expect in static_text(dialog, "#chosen")


async def pick_type(pilot, dialog, name: str) -> None:
    """Enter opens the type Select (the prompt is highlighted), arrows down to `name`, Enter."""
    select = dialog.query_one("#type", Select)
    assert dialog.focused is select
    index = [t.name for t in dialog.types].index(name)
    await pilot.press("enter")
    await pilot.press(*["down"] * (index + 1))
    await pilot.press("enter")
    await wait_for(pilot, lambda: select.value == dialog.types[index].id, what=f"type {name} chosen")


@pilot_test
async def test_book_new_appointment_end_to_end(settings, clinic, ctx_for):
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        assert s.grid.minute == 10 * 60 + 30 and s.grid.column_key == clinic.hopper  # starts at "now"
        await pilot.press("right", "down")  # Ada Lovelace, 10:45: free
        assert s.grid.column_key == clinic.lovelace and s.grid.minute == 10 * 60 + 45
        assert "10:45 Ada Lovelace · free" in static_text(s, "#detail")
        dialog = await open_booking(pilot)
        assert "Book 2026-06-15 10:45 · Ada Lovelace" in str(dialog.query_one(".dialog-title").content)
        await pick_patient(pilot, dialog, "doe", "Doe, Pat")
        await pick_type(pilot, dialog, "Long visit")
        assert dialog.focused is dialog.query_one("#reason", Input)  # a type without a room goes to the reason
        await pilot.press(*"knee pain")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: booking_dialog(app) is None, what="the dialog to close")
        await wait_for(
            pilot, lambda: cell_text(s, "10:45", 1).startswith("· 10:45 Doe, Pat"), what="the new block on the grid"
        )
        assert cell_text(s, "11:00", 1) == "  Long visit"
        assert cell_text(s, "11:15", 1) == "  booked"
        await pilot.press("down", "down", "down")  # 11:30: the last quarter of the 60 minutes
        assert "10:45-11:45 Doe, Pat (MRN" in static_text(s, "#detail")
        assert "· Long visit · booked · knee pain" in static_text(s, "#detail")
        await pilot.press("down")  # 11:45: free again
        assert "11:45 Ada Lovelace · free" in static_text(s, "#detail")
        assert any("booked #" in n and "Mon 10:45" in n for n in notifications(app))

    [a] = out_at(ctx_for, "2026-06-15 10:45", clinic.lovelace)
    assert (a.patient_id, a.type, a.duration_min, a.reason, a.status) == (
        clinic.doe.id,
        "Long visit",
        60,
        "knee pain",
        "booked",
    )
    assert appointment_count(settings) == 3
    [row] = rows(settings, "SELECT booked_by, location_id FROM appointment WHERE id = :i", i=a.id)
    assert row["location_id"] == clinic.location


@pilot_test
async def test_slot_taken_while_the_dialog_is_open(settings, clinic, ctx_for):
    from hpms.services.scheduling import appointments

    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        await goto_cell(pilot, s, "12:00", clinic.hopper)
        dialog = await open_booking(pilot)
        await pick_patient(pilot, dialog, "doe", "Doe, Pat")
        await pick_type(pilot, dialog, "Visit")

        # meanwhile, at another desk
        with ctx_for(clock=lambda: NOW) as ctx:
            other = appointments.book(
                ctx, patient=clinic.roe.mrn, provider=str(clinic.hopper), type=str(clinic.visit), at="2026-06-15 12:00"
            ).booked[0]

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: static_text(dialog, "#error").startswith("Taken:"), what="the conflict")
        assert "cannot be booked" in static_text(dialog, "#error")
        assert booking_dialog(app) is dialog  # still open: the user picks another time
        assert appointment_count(settings) == 3
        assert [a.id for a in out_at(ctx_for, "2026-06-15 12:00")] == [other.id]

        await pilot.press("escape")
        await wait_for(pilot, lambda: booking_dialog(app) is None, what="the dialog to close")
        await wait_for(
            pilot,
            lambda: cell_text(s, "12:00", 0).startswith("· 12:00 Roe, Rita"),
            what="the other desk's booking on the grid",
        )
        await settled(pilot)
    assert appointment_count(settings) == 3


@pilot_test
async def test_register_a_new_patient_inside_the_booking_dialog(settings, clinic, ctx_for):
    from hpms.tui.screens.dialogs import RegisterDialog

    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        await goto_cell(pilot, s, "14:00", clinic.lovelace)
        dialog = await open_booking(pilot)
        await pilot.press(*"newman alfred")
        await settled(pilot)
        assert dialog.query_one("#results", OptionList).option_count == 0
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, RegisterDialog), what="the registration form")
        form = app.screen
        assert form.query_one("#last_name", Input).value == "Newman"
        assert form.query_one("#first_name", Input).value == "Alfred"
        assert form.focused is form.query_one("#dob", Input)
        await pilot.press(*"1970-02-03")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is dialog, what="back in the booking dialog")
        assert "Newman, Alfred · 1970-02-03" in static_text(dialog, "#chosen")
        await pick_type(pilot, dialog, "Visit")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: booking_dialog(app) is None, what="the dialog to close")
        await wait_for(
            pilot, lambda: cell_text(s, "14:00", 1).startswith("· 14:00 Newman, Alfred"), what="the new block"
        )
        assert any("registered Alfred Newman" in n for n in notifications(app))

    [p] = rows(settings, "SELECT id, mrn, dob FROM patient WHERE last_name = 'Newman' AND first_name = 'Alfred'")
    assert str(p["dob"]) == "1970-02-03"
    [a] = out_at(ctx_for, "2026-06-15 14:00", clinic.lovelace)
    assert (a.patient_id, a.mrn, a.type) == (p["id"], p["mrn"], "Visit")


@pilot_test
async def test_register_with_r_in_the_results_list(settings, clinic, ctx_for):
    """A namesake of a known patient: r in the results opens the form with the typed name;
    Enter walks the fields and registers."""
    from hpms.tui.screens.dialogs import RegisterDialog

    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        await goto_cell(pilot, s, "15:00", clinic.hopper)
        dialog = await open_booking(pilot)
        await pilot.press(*"doe")
        results = dialog.query_one("#results", OptionList)
        await wait_for(pilot, lambda: results.option_count == 1, what="Pat Doe in the results")
        await pilot.press("enter", "r")
        await wait_for(pilot, lambda: isinstance(app.screen, RegisterDialog), what="the registration form")
        form = app.screen
        assert form.query_one("#last_name", Input).value == "Doe"
        await pilot.press("shift+tab")
        assert form.focused is form.query_one("#first_name", Input)
        await pilot.press(*"Jane", "enter", *"1990-12-31", "enter", *"555-010-0002", "enter")
        await wait_for(pilot, lambda: app.screen is dialog, what="back in the booking dialog")
        assert "Doe, Jane · 1990-12-31" in static_text(dialog, "#chosen")
        await pick_type(pilot, dialog, "Visit")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: cell_text(s, "15:00", 0).startswith("· 15:00 Doe, Jane"), what="the block")

    [p] = rows(settings, "SELECT id FROM patient WHERE last_name = 'Doe' AND first_name = 'Jane'")
    assert [a.patient_id for a in out_at(ctx_for, "2026-06-15 15:00", clinic.hopper)] == [p["id"]]
