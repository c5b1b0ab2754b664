"""How the scheduler says the services' errors: at the form input at fault, with a readable
label elsewhere, hints as they are, next steps as the scheduler's keys, never a command line
or an option name."""

from __future__ import annotations

import sqlite3

import pytest
from textual.widgets import Input, Static

from hpms.errors import Action, ConflictError, NotFoundError, ValidationError
from hpms.tui.errors import MESSAGE, say
from tests.tui.helpers import loaded, make_app, notifications, pilot_test, wait_for

# ---- the words -------------------------------------------------------------------------------


def test_a_field_on_the_form_is_not_named_and_one_elsewhere_is_labelled():
    err = ValidationError("dob", "'13/45' is not a date (use YYYY-MM-DD)")
    assert say(err, ["last_name", "dob"]) == say(err, ["dob"])
    assert say(err, ["dob"]).field == "dob"
    assert say(err, ["dob"]).text == "'13/45' is not a date (use YYYY-MM-DD)"
    assert say(err).field is None
    assert say(err).text == "date of birth: '13/45' is not a date (use YYYY-MM-DD)"
    assert say(ValidationError("last_name", "is required")).text == "last name: is required"
    assert say(ValidationError("at", "is in the past"), shown=["at"]).text == "is in the past"
    assert say(ValidationError("row 3", "bad")).text == "row 3: bad"
    assert say(ValidationError(None, "give a period")).text == "give a period"


@pytest.mark.parametrize(
    ("action", "words"),
    [
        (Action("appointments", "find-slot", purpose="find a free time with"), "press s in the day view"),
        (Action("appointments", "reschedule", target="5"), "press r in the day view to reschedule"),
        (Action("waitlist", "offers"), "press v in the day view"),
        (Action("patients", "register", purpose="add one with"), "press Ctrl+N in the booking dialog"),
    ],
)
def test_a_next_step_is_the_key_that_does_it(action, words):
    text = say(ConflictError("12:00 cannot be booked: the provider is busy", field="at", action=action)).text
    assert text.startswith("time: 12:00 cannot be booked: the provider is busy; ")
    assert words in text
    assert "hpms" not in text and "--" not in text and action.purpose not in text


def test_a_next_step_without_a_key_and_flags_to_retry_with_are_left_out():
    err = NotFoundError("no appointment type 'Consult'", field="type", action=Action("appointment-types", "list"))
    assert say(err, ["type"]).text == "no appointment type 'Consult'"
    err = ValidationError("at", "2026-06-15 07:00 is outside working hours", retry_with=("override",), hint="to book")
    assert say(err).text == "time: 2026-06-15 07:00 is outside working hours"
    assert say(ConflictError("changed meanwhile", hint="reload and try again")).text == (
        "changed meanwhile; reload and try again"
    )


def test_an_unexpected_error_shows_its_kind_and_first_line():
    assert say(RuntimeError("boom\nmore")).text == "RuntimeError: boom"
    assert say(KeyError()).text == "KeyError"


# ---- on screen -------------------------------------------------------------------------------


def field_messages(screen) -> list[str]:
    return [str(w.content) for w in screen.query(f".{MESSAGE}").results(Static)]


@pilot_test
async def test_registration_with_a_bad_date_of_birth_marks_that_input(settings, clinic):
    from hpms.tui.screens.dialogs import RegisterDialog

    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded(pilot)
        form = RegisterDialog("newman alfred")
        app.push_screen(form)
        await wait_for(pilot, lambda: app.screen is form and form.focused is form.query_one("#dob"), what="the form")
        await pilot.press(*"1980-13-01", "ctrl+s")
        await wait_for(pilot, lambda: field_messages(form), what="the message at the date of birth")
        dob = form.query_one("#dob", Input)
        assert form.focused is dob and dob.has_class("-invalid")
        [message] = field_messages(form)
        assert "'1980-13-01' is not a valid date" in message
        assert "dob" not in message and "--" not in message and "hpms" not in message
        assert form.children[0].children.index(dob) + 1 == form.children[0].children.index(
            form.query_one(f".{MESSAGE}")
        )  # right under its input
        assert any(n.startswith("date of birth: '1980-13-01'") for n in notifications(app))

        # the next error moves the mark
        dob.value = "1980-12-01"
        form.query_one("#last_name", Input).value = ""
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: form.focused is form.query_one("#last_name"), what="the last name at fault")
        assert field_messages(form) == ["is required"]
        assert not dob.has_class("-invalid")


@pilot_test
async def test_a_booking_refused_says_what_to_press(settings, clinic, monkeypatch):
    """The database refuses the slot another desk booked in the same instant (the overlap guard
    of the appointment table: a race a single test cannot time, so the refusal is raised as
    the booking service raises it)."""
    import sqlalchemy as sa

    from hpms.services.platform.conflicts import overlap_error
    from hpms.services.scheduling import appointments
    from tests.tui.test_booking import booking_dialog, open_booking, pick_patient, pick_type

    def refused(ctx, **kw):
        orig = sqlite3.IntegrityError("ex_appointment_provider: overlapping appointment")
        raise overlap_error(sa.exc.IntegrityError("INSERT INTO appointment ...", {}, orig))

    monkeypatch.setattr(appointments, "book", refused)
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded(pilot)
        dialog = await open_booking(pilot)
        await pilot.press("ctrl+s")  # nothing chosen yet: the dialog says so at the patient search
        await wait_for(pilot, lambda: field_messages(dialog) == ["choose a patient first"], what="the patient")
        assert dialog.focused is dialog.query_one("#patient")
        await pick_patient(pilot, dialog, "doe", "Doe, Pat")
        await pick_type(pilot, dialog, "Visit")
        await pilot.press("ctrl+s")
        error = dialog.query_one("#error", Static)
        await wait_for(pilot, lambda: str(error.content).startswith("Taken:"), what="the refusal")
        text = str(error.content)
        assert "someone else just now; press s in the day view to find a free slot" in text
        assert "hpms" not in text and "find-slot" not in text
        assert field_messages(dialog) == []  # the earlier mark is gone
        assert booking_dialog(app) is dialog
