"""The work list of portal requests (R from the day view): the pending registrations, the
highlighted one's details with the patient on file it likely duplicates, accepting refused on
that duplicate and then merged into it, and a rejection with its reason."""

from __future__ import annotations

from textual.widgets import DataTable

from tests.tui.conftest import fixed_clock
from tests.tui.helpers import loaded, make_app, notifications, pilot_test, rows, settled, static_text, wait_for

FORM = {"first_name": "Pat", "last_name": "Doe", "dob": "1980-01-02", "email": "pat@example.org"}


def _stage(ctx_for, **changes: str) -> int:
    from hpms.services.portal import intake

    with ctx_for(clock=fixed_clock) as ctx:
        out = intake.register_online(ctx, form={**FORM, **changes}, uploads=[], client="127.0.0.1")
    assert out.id
    return out.id


@pilot_test
async def test_the_work_list_merges_a_duplicate_and_rejects(settings, clinic, ctx_for):
    from hpms.tui.screens.dialogs import TextDialog
    from hpms.tui.screens.intake import IntakeScreen

    first = _stage(ctx_for)
    second = _stage(ctx_for, first_name="Sam", last_name="Lee", dob="1999-09-09")
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded(pilot)
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, IntakeScreen), what="the work list")
        panel = app.screen
        table = panel.query_one("#requests", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, what="the pending requests")
        assert [str(table.get_row_at(i)[0]) for i in range(2)] == [str(first), str(second)]
        await wait_for(
            pilot, lambda: clinic.doe.mrn in static_text(panel, "#request-detail"), what="the likely duplicate"
        )
        await pilot.press("a")  # refused: Pat Doe is on file
        await wait_for(pilot, lambda: any("likely the same person" in m for m in notifications(app)))
        assert rows(settings, "SELECT state FROM intake_request WHERE id = :i", i=first)[0]["state"] == "pending"
        await pilot.press("M")
        await wait_for(pilot, lambda: isinstance(app.screen, TextDialog), what="the MRN dialog")
        await pilot.press(*clinic.doe.mrn, "enter")
        await wait_for(pilot, lambda: table.row_count == 1, what="the list without the accepted one")
        assert any(f"applied to MRN {clinic.doe.mrn}" in m for m in notifications(app))
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, TextDialog), what="the reason dialog")
        await pilot.press(*"sent twice", "enter")
        await wait_for(pilot, lambda: table.row_count == 0, what="an empty list")
        await settled(pilot)
    decided = rows(settings, "SELECT id, state, decision_note, patient_id FROM intake_request ORDER BY id")
    assert [(r["state"], r["decision_note"]) for r in decided] == [("accepted", None), ("rejected", "sent twice")]
    assert decided[0]["patient_id"] == clinic.doe.id
