"""Registering a likely duplicate from the booking dialog: the patients on file are shown
with why they match; register anyway, use the one on file, or go back to the form."""

from __future__ import annotations

from textual.widgets import Input, OptionList

from tests.tui.helpers import (
    goto_cell,
    loaded,
    make_app,
    notifications,
    pilot_test,
    rows,
    scalar,
    settled,
    static_text,
    wait_for,
)
from tests.tui.test_booking import open_booking


def patient_count(settings) -> int:
    return scalar(settings, "SELECT count(*) FROM patient")


async def register_duplicate(pilot, clinic, name: str, dob: str, phone: str = ""):
    """From a free cell: the booking dialog, Ctrl+N with `name`, the DOB (and phone), save;
    returns (booking dialog, form, duplicates dialog) once the candidates are shown."""
    from hpms.tui.screens.dialogs import DuplicateDialog, RegisterDialog

    app = pilot.app
    s = await loaded(pilot)
    await goto_cell(pilot, s, "14:00", clinic.lovelace)
    dialog = await open_booking(pilot)
    await pilot.press(*name)
    await settled(pilot)
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: isinstance(app.screen, RegisterDialog), what="the registration form")
    form = app.screen
    await pilot.press(*dob)
    if phone:
        await pilot.press("tab", *phone)
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: isinstance(app.screen, DuplicateDialog), what="the likely duplicates")
    return dialog, form, app.screen


def candidate_lines(dup) -> list[str]:
    lst = dup.query_one("#candidates", OptionList)
    return [str(lst.get_option_at_index(i).prompt) for i in range(lst.option_count)]


@pilot_test
async def test_a_duplicate_is_shown_with_its_mrn_and_cancel_writes_nothing(settings, clinic):
    from hpms.tui.screens.dialogs import RegisterDialog

    before = patient_count(settings)
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        dialog, form, dup = await register_duplicate(pilot, clinic, "doe pat", "1980-01-02")
        doe = clinic.doe
        assert candidate_lines(dup) == [
            f"Doe, Pat · born 1980-01-02 · MRN {doe.mrn} · 555-010-0001 · same date of birth, similar name"
        ]
        assert (
            static_text(dup, "#message")
            == f"likely the same person as MRN {doe.mrn} (same date of birth, similar name)"
        )
        assert dup.focused is dup.query_one("#candidates", OptionList)

        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is form, what="back at the form")
        assert isinstance(form, RegisterDialog)
        assert static_text(form, "#error") == "Not registered: a likely duplicate."
        assert [form.query_one(f"#{k}", Input).value for k in ("last_name", "first_name", "dob")] == [
            "Doe",
            "Pat",
            "1980-01-02",
        ]
        assert patient_count(settings) == before

        await pilot.press("escape")  # the form too: back to the booking dialog, no patient
        await wait_for(pilot, lambda: app.screen is dialog, what="back in the booking dialog")
        assert dialog.patient is None
        await settled(pilot)
    assert patient_count(settings) == before


@pilot_test
async def test_same_phone_is_a_reason_and_register_anyway_writes_one_patient(settings, clinic):
    before = patient_count(settings)
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        dialog, form, dup = await register_duplicate(pilot, clinic, "okafor liam", "2001-07-04", "555.010.0001")
        assert candidate_lines(dup) == [
            f"Doe, Pat · born 1980-01-02 · MRN {clinic.doe.mrn} · 555-010-0001 · same phone"
        ]
        assert patient_count(settings) == before

        await pilot.click("#register")
        await wait_for(pilot, lambda: app.screen is dialog, what="back in the booking dialog")
        await wait_for(
            pilot,
            lambda: "Okafor, Liam" in static_text(dialog, "#chosen"),
            what="the new patient chosen in the booking dialog",
        )
        assert "Okafor, Liam · 2001-07-04" in static_text(dialog, "#chosen")
        assert clinic.doe.mrn not in static_text(dialog, "#chosen")
        assert any("registered Liam Okafor" in n for n in notifications(app))
        await settled(pilot)

    assert patient_count(settings) == before + 1
    [p] = rows(settings, "SELECT mrn, phone, dob FROM patient WHERE last_name = 'Okafor' AND first_name = 'Liam'")
    assert p["mrn"] != clinic.doe.mrn and str(p["dob"]) == "2001-07-04"
    assert dialog.patient.mrn == p["mrn"]


@pilot_test
async def test_a_registers_anyway_from_the_keyboard(settings, clinic):
    before = patient_count(settings)
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        dialog, _form, _dup = await register_duplicate(pilot, clinic, "doe pat", "1980-01-02")
        await pilot.press("a")
        await wait_for(pilot, lambda: app.screen is dialog, what="back in the booking dialog")
        await settled(pilot)
    assert patient_count(settings) == before + 1
    mrns = [r["mrn"] for r in rows(settings, "SELECT mrn FROM patient WHERE last_name = 'Doe' AND first_name = 'Pat'")]
    assert sorted(mrns) == sorted([clinic.doe.mrn, dialog.patient.mrn])


@pilot_test
async def test_use_this_patient_writes_none_and_chooses_the_one_on_file(settings, clinic):
    before = patient_count(settings)
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        dialog, _form, _dup = await register_duplicate(pilot, clinic, "doe pat", "1980-01-02")
        await pilot.press("enter")  # on the highlighted candidate
        await wait_for(pilot, lambda: app.screen is dialog, what="back in the booking dialog")
        assert static_text(dialog, "#chosen") == f"Patient: Doe, Pat · 1980-01-02 · MRN {clinic.doe.mrn}"
        assert dialog.patient.id == clinic.doe.id
        assert not any(n.startswith("registered") for n in notifications(app))
        await settled(pilot)
    assert patient_count(settings) == before


@pilot_test
async def test_use_this_patient_button_then_booking_books_the_one_on_file(settings, clinic, ctx_for):
    from tests.tui.helpers import out_at
    from tests.tui.test_booking import booking_dialog, pick_type

    before = patient_count(settings)
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        dialog, _form, _dup = await register_duplicate(pilot, clinic, "doe pat", "1980-01-02")
        await pilot.click("#use")
        await wait_for(pilot, lambda: app.screen is dialog, what="back in the booking dialog")
        await pick_type(pilot, dialog, "Visit")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: booking_dialog(app) is None, what="the dialog to close")
        await settled(pilot)
    assert patient_count(settings) == before
    assert [a.patient_id for a in out_at(ctx_for, "2026-06-15 14:00", clinic.lovelace)] == [clinic.doe.id]
