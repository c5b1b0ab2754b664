"""The scheduler shows each patient's latest insurance eligibility: in a visit's dialog and on
the patient panel."""

from __future__ import annotations

from tests.tui.conftest import DAY, NOW
from tests.tui.helpers import goto_cell, loaded, make_app, pilot_test, static_text, wait_for


def add_check(ctx_for, patient_id: int, status: str, reason: str | None = None) -> None:
    from hpms.models import EligibilityCheck

    with ctx_for() as ctx:
        ctx.session.add(
            EligibilityCheck(
                org_id=ctx.org_id,
                patient_id=patient_id,
                service_date=DAY,
                status=status,
                reason=reason,
                requested_at=NOW,
                responded_at=NOW,
                trace_number="1",
            )
        )


@pilot_test
async def test_visit_dialog_and_patient_panel_show_the_eligibility_status(settings, clinic, ctx_for):
    from hpms.tui.screens.dialogs import AppointmentDialog
    from hpms.tui.screens.panels import PatientScreen

    add_check(ctx_for, clinic.roe.id, "error", "subscriber/insured not found (correct and resubmit) [2100C]")
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        s = await loaded(pilot)
        assert {b.patient_id: b.eligibility for b in s.view.blocks} == {
            clinic.roe.id: "error: subscriber/insured not found",
            clinic.doe.id: "not checked",
        }
        await goto_cell(pilot, s, "11:00", clinic.hopper)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AppointmentDialog), what="the appointment's dialog")
        text = "\n".join(str(w.content) for w in app.screen.query("Static"))
        assert "Insurance error: subscriber/insured not found" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is s, what="the day view again")

        await goto_cell(pilot, s, "09:00", clinic.lovelace)
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PatientScreen), what="the patient panel")
        await wait_for(pilot, lambda: "eligibility" in static_text(app.screen, "#coverage"), what="the coverage")
        assert "eligibility: not checked" in static_text(app.screen, "#coverage")
