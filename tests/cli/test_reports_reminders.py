"""`hpms reports show/export reminders` on a hand-built set of visits, reminders and replies."""

from __future__ import annotations

import csv
import datetime as dt
import io

from tests.cli.helpers import error_line, ok

# (day in March 2025, status, [(channel, state, skip reason)], confirming reply's channel)
VISITS = [
    (3, "completed", [("email", "sent", None), ("sms", "delivered", None)], "sms"),  # A1
    (4, "no_show", [("email", "failed", None), ("sms", "skipped", "no consent to SMS")], None),  # A2
    (5, "no_show", [("email", "delivered", None)], None),  # A3
    (6, "completed", [], "email"),  # A4: confirmed without a reminder: not counted
    (7, "arrived", [("sms", "sent", None)], "sms"),  # A5
    (
        10,
        "no_show",
        [("email", "skipped", "no email address"), ("sms", "skipped", "the visit is too close for this reminder")],
        None,
    ),  # A6
    (11, "cancelled", [("email", "cancelled", None)], None),  # A7: no outcome
    (12, "booked", [("email", "sent", None)], None),  # A8: past, no outcome recorded
    (33, "no_show", [("email", "sent", None)], None),  # A9: 2 April, out of the range
]


def _build(ctx_for) -> None:
    from hpms.models import Appointment, InboundMessage, Message
    from hpms.services import lookups
    from hpms.services.people import patients
    from hpms.services.platform import localtime as lt
    from hpms.services.scheduling import resources

    with ctx_for() as ctx:
        pat = patients.register(ctx, first_name="Pat", last_name="Doe", dob="1980-01-01").id
        ada = resources.add_provider(ctx, first_name="Ada", last_name="Lovelace", npi="1234567893").id
        visit = resources.add_type(ctx, name="Visit", duration_min=30).id
        loc = lookups.find_location(ctx, "Main")
        now = ctx.now()
        for n, (day, status, msgs, reply) in enumerate(VISITS):
            # 23:30 local: the UTC date is often the next day, the local day is what counts
            start = lt.wall_to_utc(dt.datetime(2025, 3, 1, 23, 30) + dt.timedelta(days=day - 1), loc.tz)
            appt = Appointment(
                org_id=ctx.org_id,
                patient_id=pat,
                provider_id=ada,
                location_id=loc.id,
                type_id=visit,
                start_utc=start,
                end_utc=start + dt.timedelta(minutes=30),
                block_end_utc=start + dt.timedelta(minutes=30),
                status=status,
                booked_at=start - dt.timedelta(days=7),
                cancelled_at=start if status == "cancelled" else None,
            )
            ctx.session.add(appt)
            ctx.session.flush()
            for i, (channel, state, why) in enumerate([*msgs, ("email", "sent", None)]):
                ctx.session.add(
                    Message(
                        org_id=ctx.org_id,
                        patient_id=pat,
                        appointment_id=appt.id,
                        channel=channel,
                        # the last one of each visit is no reminder (a statement): never counted
                        template="reminder" if i < len(msgs) else "statement",
                        recipient="pat@example.com" if channel == "email" else "+15555550100",
                        body="See you soon",
                        state=state,
                        error=why,
                        due_at=start - dt.timedelta(days=1),
                        next_attempt_at=start - dt.timedelta(days=1),
                        sent_at=start - dt.timedelta(days=1) if state in ("sent", "delivered") else None,
                        created_at=start - dt.timedelta(days=7),
                    )
                )
            if reply:
                ctx.session.add(
                    InboundMessage(
                        org_id=ctx.org_id,
                        channel=reply,
                        sender="pat@example.com" if reply == "email" else "+15555550100",
                        body="C",
                        provider_id=f"in-{n}",
                        received_at=start - dt.timedelta(hours=20),
                        patient_id=pat,
                        appointment_id=appt.id,
                        outcome="confirmed",
                    )
                )
                # a second, repeated confirmation of the same visit changes no figure
                ctx.session.add(
                    InboundMessage(
                        org_id=ctx.org_id,
                        channel=reply,
                        sender="x",
                        body="YES",
                        provider_id=f"in-{n}-again",
                        received_at=start - dt.timedelta(hours=19),
                        patient_id=pat,
                        appointment_id=appt.id,
                        outcome="confirmed",
                    )
                )
        assert start < now


EXPECTED = [
    {
        "channel": "email",
        "reminders": 6,  # A1 A2 A3 A6 A7 A8
        "sent": 3,  # A1 A3 A8
        "delivered": 1,
        "failed": 1,
        "skipped": 1,
        "skip_reasons": "no email address: 1",
        "confirmed": 0,  # A4's reply had no reminder before it
        "visits_with": 2,  # A1 A3 (A8 has no outcome)
        "no_shows_with": 1,
        "no_show_rate_with": "50.00",
        "visits_without": 3,  # A2 A4 A6
        "no_shows_without": 2,
        "no_show_rate_without": "66.70",
    },
    {
        "channel": "sms",
        "reminders": 4,
        "sent": 2,
        "delivered": 1,
        "failed": 0,
        "skipped": 2,
        "skip_reasons": "no consent to SMS: 1; the visit is too close for this reminder: 1",
        "confirmed": 2,  # A1 A5
        "visits_with": 2,  # A1 A5
        "no_shows_with": 0,
        "no_show_rate_with": "0.00",
        "visits_without": 3,
        "no_shows_without": 2,
        "no_show_rate_without": "66.70",
    },
    {
        "channel": "all",
        "reminders": 10,
        "sent": 5,
        "delivered": 2,
        "failed": 1,
        "skipped": 3,
        "skip_reasons": "no consent to SMS: 1; no email address: 1; the visit is too close for this reminder: 1",
        "confirmed": 2,
        "visits_with": 3,  # A1 A3 A5
        "no_shows_with": 1,
        "no_show_rate_with": "33.30",
        "visits_without": 3,
        "no_shows_without": 2,
        "no_show_rate_without": "66.70",
    },
]
RANGE = ("--from", "2025-03-01", "--to", "2025-03-31")


def test_reminders_report_figures_in_json_csv_and_xlsx(cli, ctx_for, tmp_path, as_user):
    _build(ctx_for)
    assert ok(cli("reports", "show", "reminders", *RANGE, "--json")) == EXPECTED
    assert ok(cli("reports", "export", "reminders", *RANGE, "--format", "json")) == EXPECTED

    r = cli("reports", "export", "reminders", *RANGE)
    assert r.exit_code == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0][:3] == ["Channel", "Reminders", "Sent"]
    assert rows[0][-1] == "No-show rate without %"
    assert rows[1:] == [
        ["email", "6", "3", "1", "1", "1", "no email address: 1", "0", "2", "1", "50.0", "3", "2", "66.7"],
        [
            "sms",
            "4",
            "2",
            "1",
            "0",
            "2",
            "no consent to SMS: 1; the visit is too close for this reminder: 1",
            "2",
            "2",
            "0",
            "0.0",
            "3",
            "2",
            "66.7",
        ],
        [
            "all",
            "10",
            "5",
            "2",
            "1",
            "3",
            "no consent to SMS: 1; no email address: 1; the visit is too close for this reminder: 1",
            "2",
            "3",
            "1",
            "33.3",
            "3",
            "2",
            "66.7",
        ],
    ]

    got = ok(cli("reports", "export", "reminders", *RANGE, "-o", str(tmp_path / "rem-{from}.xlsx"), "--json"))
    assert got["rows"] == 3 and got["path"].endswith("rem-2025-03-01.xlsx")
    from openpyxl import load_workbook

    ws = load_workbook(tmp_path / "rem-2025-03-01.xlsx").active
    values = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
    assert [v[:6] for v in values] == [["email", 6, 3, 1, 1, 1], ["sms", 4, 2, 1, 0, 2], ["all", 10, 5, 2, 1, 3]]
    assert [v[7:] for v in values] == [
        [0, 2, 1, 50.0, 3, 2, 66.7],
        [2, 2, 0, 0.0, 3, 2, 66.7],
        [2, 3, 1, 33.3, 3, 2, 66.7],
    ]
    assert type(values[0][1]) is int

    # an empty range: every figure 0, rates empty
    empty = ok(cli("reports", "show", "reminders", "--period", "2024-01", "--json"))
    assert [e["reminders"] for e in empty] == [0, 0, 0]
    assert {e["no_show_rate_with"] for e in empty} == {None}

    # a bad range: exit 2 naming the option, no file
    out = tmp_path / "bad"
    out.mkdir()
    r = cli("reports", "export", "reminders", "--from", "2025-03-31", "--to", "2025-03-01", "-o", str(out / "r.xlsx"))
    error_line(r, 2, "--to")
    r = cli("reports", "export", "reminders", "--from", "someday", "-o", str(out / "r.csv"))
    error_line(r, 2, "--from")
    assert list(out.iterdir()) == []

    # the permission of the other schedule reports: front desk yes, auditor no
    desk = as_user("desk", "front_desk")
    assert ok(cli("reports", "show", "reminders", *RANGE, "--json", env=desk)) == EXPECTED
    r = cli("reports", "export", "reminders", *RANGE, "-o", str(out / "r.csv"), env=as_user("aud", "auditor"))
    error_line(r, 5)
    assert list(out.iterdir()) == []
