"""Where each visit stands with the patient: confirmed by their reply, confirmed by staff, not
confirmed, not confirmed with a failed latest reminder; a day's worth in one query."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from hpms.errors import PermissionDenied
from tests.services.sched import book_one, clinic

PHONE, EMAIL = "212-555-0142", "pat@example.org"
DAY = "2026-06-18"  # a Thursday; the services' clock says Monday 2026-06-15 10:30 in New York
SEND_AT = dt.datetime(2026, 6, 17, 23, 0, tzinfo=dt.UTC)  # every reminder is due, no visit has begun


def _at(value: dt.datetime):
    return lambda: value


def test_states_of_a_day_in_one_query(ctx_for, register, make_user):
    from hpms.models import Message
    from hpms.services.messages import confirmations, inbound, outbox, reminders
    from hpms.services.people import patients
    from hpms.services.scheduling import appointments, lifecycle, schedule_view

    c = clinic(ctx_for, register)
    with ctx_for() as ctx:
        patients.update(ctx, c.mrn, phone=PHONE, email=EMAIL, consent_sms=True, consent_email=True)
        reminders.add_rule(ctx, hours_before=48, channel="email")
        reminders.add_rule(ctx, hours_before=24, channel="sms")
    replied, by_staff, failed, retold, cancelled = (
        book_one(ctx_for, c, f"{DAY} {hh}:00").id for hh in ("09", "10", "11", "12", "13")
    )
    # how each reminder goes: the failed visit's SMS (its latest) fails; the retold visit's
    # email fails but its later SMS goes
    fails = {(failed, "sms"), (retold, "email")}
    email_of: dict[int, int] = {}
    with ctx_for(clock=_at(SEND_AT)) as ctx:
        while (claimed := outbox.claim_next(ctx)) is not None:
            msg = ctx.session.get(Message, claimed.id)
            assert msg is not None and msg.appointment_id is not None
            bad = (msg.appointment_id, msg.channel) in fails
            outbox.settle(ctx, claimed.id, error="550 no such mailbox" if bad else None, permanent=bad)
            if msg.channel == "email":
                email_of[msg.appointment_id] = claimed.id
    with ctx_for(clock=_at(SEND_AT)) as ctx:
        answer = inbound.receive(
            ctx,
            inbound.Incoming(
                channel="email",
                sender=EMAIL,
                body="Confirm\n\n> Your visit on Thursday",
                provider_id="<reply-1@example.org>",
                in_reply_to=f"<hpms-{email_of[replied]}.1.2@clinic.example>",
            ),
        )
        assert (answer.outcome, answer.appointment_id) == ("confirmed", replied)
        lifecycle.transition(ctx, by_staff, "confirm")
        appointments.cancel(ctx, cancelled, reason="moved away")

    ids = [replied, by_staff, failed, retold, cancelled, 999999]
    with ctx_for(clock=_at(SEND_AT)) as ctx:
        statements: list[str] = []
        engine = ctx.session.get_bind()

        def seen(_conn, _cursor, statement, *_args):
            statements.append(statement)

        sa.event.listen(engine, "before_cursor_execute", seen)
        try:
            states = confirmations.states(ctx, ids)
        finally:
            sa.event.remove(engine, "before_cursor_execute", seen)
        assert len(statements) == 1, statements
        assert states == {
            replied: "confirmed_by_patient",
            by_staff: "confirmed",
            failed: "reminder_failed",
            retold: "unconfirmed",
        }  # a cancelled visit and an unknown id have no state
        assert confirmations.states(ctx, []) == {}
        # the day view carries them, and leaves them out for the flow board
        view = schedule_view.day_view(ctx, location=c.location, day=dt.date(2026, 6, 18))
        assert {b.id: b.confirmation for b in view.blocks} == states
        board = schedule_view.flow_board(ctx, location=c.location, day=dt.date(2026, 6, 18))
        assert len(board["expected"]) == 4

    make_user("bill1", "biller")
    with ctx_for("bill1") as ctx:
        with pytest.raises(PermissionDenied):
            confirmations.states(ctx, ids)
        # a biller's day view has the visits, without where they stand
        view = schedule_view.day_view(ctx, location=c.location, day=dt.date(2026, 6, 18))
        assert len(view.blocks) == 4 and all(b.confirmation is None for b in view.blocks)
