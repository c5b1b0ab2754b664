"""The interfaces' work list (I from the day view): the HL7 messages a receiver refused, with
its words, the time in the location's zone and a receiver since removed marked; r queues one
again (refused for the removed receiver, and for a role that may not resend); the ADT messages
received that wait for review, applied to an MRN, registered as new or dismissed; a role that
may not read the interfaces sees the refusal, not a traceback."""

from __future__ import annotations

import asyncio

from textual.widgets import DataTable

from tests import hl7_server
from tests.tui.conftest import fixed_clock
from tests.tui.helpers import loaded, make_app, notifications, pilot_test, settled, static_text, wait_for

hl7_receiver = hl7_server.hl7_receiver  # the loopback receiver, a fixture of these tests

REFUSED = "the receiver answered AE: PID-3 unknown patient"


async def _send(settings):
    """The HL7 sender's pass (out of the test's event loop: it runs one of its own)."""
    from hpms.services.interop.hl7 import outbound

    return await asyncio.to_thread(outbound.send_due, settings, timeout=0.5)


async def _refused_bookings(settings, ctx_for, clinic, rx, receivers_: tuple[str, ...] = ("ehr",)) -> None:
    """Each receiver (MLLP to `rx`) gets the SIU^S12 of a visit of Pat Doe and answers AE."""
    from hpms.services.interop.hl7 import receivers
    from hpms.services.scheduling import appointments

    with ctx_for() as ctx:
        for name in receivers_:
            receivers.add(ctx, name=name, host="127.0.0.1", port=rx.port, events="siu")
    with ctx_for(clock=fixed_clock) as ctx:
        appointments.book(
            ctx, patient=clinic.doe.mrn, provider=str(clinic.hopper), type=str(clinic.visit), at="2026-06-15 14:00"
        )
    rx.answers = ["AE"] * len(receivers_)
    assert (await _send(settings)).failed == len(receivers_)


def _received(settings, control: str, *, mrn: str, last: str, first: str, dob: str) -> int:
    """An ADT^A04 from another system naming an MRN no patient has: staged for review."""
    from hpms.services.interop.hl7 import inbound

    text = (
        f"MSH|^~\\&|ADTAPP|GENHOSP|HPMS|CLINIC|20260615120000+0000||ADT^A04^ADT_A01|{control}|P|2.5.1\r"
        "EVN|A04|20260615120000+0000\r"
        f"PID|1||{mrn}^^^HPMS^MR||{last}^{first}||{dob}|F|||12 Elm St^^Albany^NY^12207^US\r"
        "PV1|1|O\r"
    )
    answer = inbound.receive(settings, text.encode(), clock=fixed_clock)
    assert answer.outcome == "staged" and answer.inbound_id is not None
    return answer.inbound_id


def _cells(table: DataTable, row: int) -> list[str]:
    return [str(c) for c in table.get_row_at(row)]


async def _open(pilot):
    from hpms.tui.screens.interfaces import InterfacesScreen

    await loaded(pilot)
    await pilot.press("I")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, InterfacesScreen), what="the interfaces")
    return pilot.app.screen


@pilot_test
async def test_failed_messages_are_sent_again_and_received_ones_reviewed(settings, clinic, ctx_for, hl7_receiver):
    from hpms.services.interop.hl7 import inbound, outbound, receivers
    from hpms.tui.screens.dialogs import TextDialog

    await _refused_bookings(settings, ctx_for, clinic, hl7_receiver, ("ehr", "lab"))
    with ctx_for() as ctx:
        receivers.remove(ctx, "lab")  # its refused message stays failed
        ehr_id, lab_id = sorted(m.id for m in outbound.for_staff(ctx))
    same = _received(settings, "X1", mrn="0999991", last="Doe", first="Pat", dob="19800102")
    new = _received(settings, "X2", mrn="0999992", last="Rivera", first="Lucia", dob="19750304")
    gone = _received(settings, "X3", mrn="0999993", last="Nobody", first="Ann", dob="19900101")
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        panel = await _open(pilot)
        out = panel.query_one("#failed", DataTable)
        staged = panel.query_one("#staged", DataTable)
        await wait_for(pilot, lambda: out.row_count == 2 and staged.row_count == 3, what="the two lists")
        # newest first; queued at 10:30 New York (14:30 UTC)
        assert _cells(out, 0) == [
            str(lab_id), "2026-06-15 10:30", "lab (removed)", "SIU^S12", clinic.doe.mrn, "failed", "1", REFUSED
        ]  # fmt: skip
        assert _cells(out, 1)[:4] == [str(ehr_id), "2026-06-15 10:30", "ehr", "SIU^S12"]
        assert [_cells(staged, i)[0] for i in range(3)] == [str(gone), str(new), str(same)]
        assert _cells(staged, 2)[2:4] == ["ADTAPP (GENHOSP)", "ADT^A04"]
        assert "MRN 0999991 is not a patient of this practice" in _cells(staged, 2)[5]
        detail = static_text(panel, "#interface-detail")
        assert f"Out #{lab_id} SIU^S12 to lab (removed)" in detail and REFUSED in detail

        await pilot.press("r")  # the removed receiver's: refused, nothing changes
        await wait_for(pilot, lambda: any("which was removed" in m for m in notifications(app)), what="the refusal")
        await settled(pilot)
        assert out.row_count == 2
        await pilot.press("down", "r")
        await wait_for(pilot, lambda: out.row_count == 1, what="the list without the message sent again")
        assert any(f"HL7 message {ehr_id} (SIU^S12 to ehr) queued again" in m for m in notifications(app))
        assert _cells(out, 0)[0] == str(lab_id)

        await pilot.press("tab")  # to the messages received
        await wait_for(pilot, lambda: staged.has_focus, what="the list of messages received")
        assert f"In #{gone} ADT^A04 from ADTAPP (GENHOSP)" in static_text(panel, "#interface-detail")
        await pilot.press("x")
        await wait_for(pilot, lambda: staged.row_count == 2, what="the list without the dismissed one")
        assert any(f"HL7 message received {gone} dismissed" in m for m in notifications(app))
        await pilot.press("n")  # the newest now: Lucia Rivera, nobody on file
        await wait_for(pilot, lambda: staged.row_count == 1, what="the list without the registered one")
        assert any(f"HL7 message received {new}: registered as a new patient" in m for m in notifications(app))
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, TextDialog), what="the MRN dialog")
        await pilot.press(*"0000000", "enter")  # nobody: refused, still to review
        await wait_for(pilot, lambda: any("0000000" in m for m in notifications(app)), what="the unknown MRN")
        await settled(pilot)
        assert staged.row_count == 1
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, TextDialog), what="the MRN dialog")
        await pilot.press(*clinic.doe.mrn, "enter")
        await wait_for(pilot, lambda: staged.row_count == 0, what="an empty list to review")
        assert any(f"HL7 message received {same}: applied to the patient" in m for m in notifications(app))
        assert "No message received waits for review" in static_text(panel, "#interface-detail")
        await settled(pilot)

    with ctx_for() as ctx:
        assert [(m.id, m.state, m.attempts) for m in outbound.list_messages(ctx)] == [
            (lab_id, "failed", 1),
            (ehr_id, "queued", 0),
        ]
        assert [m.id for m in outbound.for_staff(ctx)] == [lab_id]
        handled = {r.id: (r.outcome, r.mrn) for r in inbound.list_inbound(ctx, everything=True)}
        assert inbound.list_inbound(ctx) == []
    assert handled[gone] == ("dismissed", None)
    assert handled[new][0] == "created" and handled[new][1] not in (None, clinic.doe.mrn, clinic.roe.mrn)
    assert handled[same] == ("updated", clinic.doe.mrn)
    assert (await _send(settings)).sent == 1  # the one queued again goes, to ehr only
    assert len(hl7_receiver.received) == 3


@pilot_test
async def test_a_role_that_may_not_is_refused_on_screen(settings, clinic, ctx_for, hl7_receiver, make_user, token_for):
    from hpms.services.interop.hl7 import outbound

    await _refused_bookings(settings, ctx_for, clinic, hl7_receiver)
    make_user("desk", "front_desk")  # reads the interfaces and reviews, may not resend
    app = make_app(settings, env={"HPMS_USER": "desk", "HPMS_TOKEN": token_for("desk")})
    async with app.run_test(size=(120, 36)) as pilot:
        panel = await _open(pilot)
        out = panel.query_one("#failed", DataTable)
        await wait_for(pilot, lambda: out.row_count == 1, what="the message not delivered")
        await pilot.press("r")
        await wait_for(
            pilot, lambda: any("may not set up the HL7 interfaces" in m for m in notifications(app)), what="refusal"
        )
        await settled(pilot)
        assert out.row_count == 1
    with ctx_for() as ctx:
        assert [m.state for m in outbound.list_messages(ctx)] == ["failed"]

    make_user("biller1", "biller")  # may not read the interfaces at all
    app = make_app(settings, env={"HPMS_USER": "biller1", "HPMS_TOKEN": token_for("biller1")})
    async with app.run_test(size=(120, 36)) as pilot:
        panel = await _open(pilot)
        await wait_for(
            pilot,
            lambda: any("may not read the state of the interfaces" in m for m in notifications(app)),
            what="the refusal to list",
        )
        await settled(pilot)
        assert panel.query_one("#failed", DataTable).row_count == 0
        assert "not shown" in static_text(panel, "#interface-detail")
        await pilot.press("r")
        await wait_for(pilot, lambda: "no message to send again here" in notifications(app), what="nothing chosen")
