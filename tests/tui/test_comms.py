"""What the scheduler shows of the messages: a patient's communication log (with an icon per
entry, and a call or note added from it), and where each visit stands with the patient in the
day grid (confirmed by the patient's reply, not confirmed, the reminder failed)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from textual.widgets import DataTable, Input, Static

from tests.tui.conftest import fixed_clock, setup_clock
from tests.tui.helpers import (
    Clock,
    cell_text,
    goto_cell,
    loaded,
    make_app,
    pilot_test,
    scalar,
    settled,
    static_text,
    wait_for,
)

PHONE, E164, EMAIL = "212-555-0142", "+12125550142", "pat@example.org"


@dataclass
class Messaged:
    afternoon: int  # Doe, Hopper, 14:00: confirmed by the patient's SMS reply
    note: str


@pytest.fixture
def messaged(clinic, ctx_for) -> Messaged:
    """Doe agrees to email and SMS; reminders go 48 h (email) and 24 h (SMS) before. Doe's 09:00
    visit gets both, its SMS fails for good; Doe's 14:00 visit gets both sent, and Doe answers
    C by SMS (which confirms it); staff note a call. Roe's 11:00 visit (booked before there were
    rules) has no reminder."""
    from hpms.models import Appointment
    from hpms.services.messages import comms, inbound, outbox, reminders
    from hpms.services.people import patients
    from hpms.services.scheduling import appointments

    with ctx_for(clock=setup_clock) as ctx:
        patients.update(ctx, clinic.doe.mrn, phone=PHONE, email=EMAIL, consent_sms=True, consent_email=True)
        reminders.add_rule(ctx, hours_before=48, channel="email")
        reminders.add_rule(ctx, hours_before=24, channel="sms")
        early = ctx.session.get(Appointment, clinic.early)
        assert reminders.queue_for(ctx, early) == 2
        afternoon = appointments.book(
            ctx, patient=clinic.doe.mrn, provider=str(clinic.hopper), type=str(clinic.visit), at="2026-06-15 14:00"
        ).booked[0]
    with ctx_for(clock=fixed_clock) as ctx:
        # due in this order: 09:00 email, 14:00 email, 09:00 SMS, 14:00 SMS
        for failing in (False, False, True, False):
            claimed = outbox.claim_next(ctx)
            assert claimed is not None
            state = outbox.settle(ctx, claimed.id, error="21610: unreachable" if failing else None, permanent=failing)
            assert state == ("failed" if failing else "sent")
    with ctx_for(clock=fixed_clock) as ctx:
        reply = inbound.receive(ctx, inbound.Incoming(channel="sms", sender=E164, body="C", provider_id="SMreply1"))
        assert (reply.outcome, reply.appointment_id) == ("confirmed", afternoon.id)
        note = comms.add(ctx, clinic.doe.mrn, kind="note", text="Prefers mornings")
    return Messaged(afternoon=afternoon.id, note=note.summary)


def _rows(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


@pilot_test
async def test_the_grid_marks_confirmed_by_reply_unconfirmed_and_failed_reminders(settings, clinic, messaged):
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        states = {b.id: b.confirmation for b in s.view.blocks}
        assert states == {
            messaged.afternoon: "confirmed_by_patient",
            clinic.later: "unconfirmed",
            clinic.early: "reminder_failed",
        }
        assert cell_text(s, "14:00", 0).startswith("← 14:00 Doe, Pat")  # Hopper's column
        assert cell_text(s, "11:00", 0).startswith("· 11:00 Roe, Rita")
        await goto_cell(pilot, s, "09:00", clinic.lovelace)
        assert cell_text(s, "09:00", 1).startswith("! 09:00 Doe, Pat")
        assert "booked · not confirmed, the reminder failed" in static_text(s, "#detail")
        await goto_cell(pilot, s, "14:00", clinic.hopper)
        assert "confirmed · by the patient's reply" in static_text(s, "#detail")
        await pilot.press("question_mark")
        await wait_for(
            pilot,
            lambda: any("← confirmed by the patient's reply" in str(w.content) for w in app.screen.query(Static)),
            what="the legend in the help",
        )


@pilot_test
async def test_the_patient_view_shows_the_log_and_adds_a_call(settings, clinic, messaged):
    from hpms.tui.screens.dialogs import CommEntryDialog
    from hpms.tui.screens.panels import PatientScreen

    clock = Clock()
    clock.at(10, 45)  # the call comes after the rest of the log
    app = make_app(settings, clock=clock)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        await goto_cell(pilot, s, "14:00", clinic.hopper)
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PatientScreen), what="the patient view")
        panel = app.screen
        table = panel.query_one("#comms", DataTable)
        await wait_for(pilot, lambda: table.row_count >= 6, what="the communication log")
        rows = _rows(table)
        # icon, when, what, way, state, summary, by
        seen = {(r[0], r[2], r[3], r[4]) for r in rows}
        assert ("✓", "email", "to", "sent") in seen
        assert ("✗", "sms", "to", "failed") in seen
        assert ("✓", "sms", "to", "sent") in seen
        assert ("←", "sms", "from", "confirmed") in seen
        assert ("✎", "note", "", "") in seen
        assert rows[-1][4] == "failed"  # newest first: the failure is a week old
        assert any(r[5] == messaged.note for r in rows)
        assert all(r[1].startswith(("Mon 15 Jun 2026", "Mon 08 Jun 2026")) for r in rows), rows

        # a call, first with a time in the future: refused at its input, nothing written
        before = scalar(settings, "SELECT count(*) FROM comm_entry")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, CommEntryDialog), what="the entry dialog")
        dialog = app.screen
        dialog.query_one("#text", Input).value = "Asked to move the visit"
        dialog.query_one("#at", Input).value = "2099-01-01 10:00"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: dialog.query(".field-error"), what="the error at the time")
        assert "is in the future" in str(dialog.query_one(".field-error", Static).content)
        assert dialog.query_one("#at", Input).has_class("-invalid")
        assert scalar(settings, "SELECT count(*) FROM comm_entry") == before

        dialog.query_one("#at", Input).value = ""
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is panel, what="the dialog closed")
        await wait_for(pilot, lambda: table.row_count == len(rows) + 1, what="the call in the log")
        await settled(pilot)
        assert _rows(table)[0][:3] == ["☎", "Mon 15 Jun 2026 10:45", "call"]
        assert _rows(table)[0][3] == "from" and _rows(table)[0][5] == "Asked to move the visit"
        assert scalar(settings, "SELECT count(*) FROM comm_entry") == before + 1
