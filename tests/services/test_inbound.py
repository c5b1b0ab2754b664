"""Patients' replies: CONFIRM, CANCEL and STOP acted on for the right visit (the one the reply
answers), anything else to the staff's inbox, unknown senders and second deliveries change
nothing. Reminders are really sent first (through the loopback SMS and SMTP servers)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from tests.cli.helpers import error_line, ok
from tests.services.helpers import query
from tests.services.sched import book_one, clinic
from tests.sms_server import sms_sink  # noqa: F401 - fixture
from tests.smtp_server import smtp_sink  # noqa: F401 - fixture

PHONE, E164, EMAIL = "212-555-0142", "+12125550142", "pat@example.org"


def _weekday(days_ahead: int) -> dt.date:
    day = dt.date.today() + dt.timedelta(days=days_ahead)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


@pytest.fixture
def practice(ctx_for, register, cli, settings, sms_sink, smtp_sink):  # noqa: F811
    """A clinic whose patient agrees to SMS and email, with 24-hour SMS and 48-hour email
    reminders; send(at) sends what is due at `at` to the loopback servers."""
    from hpms.services.messages import reminders, sender
    from hpms.services.people import patients

    c = clinic(ctx_for, register)
    with ctx_for() as ctx:
        patients.update(ctx, c.mrn, phone=PHONE, email=EMAIL, consent_sms=True, consent_email=True)
        reminders.add_rule(ctx, hours_before=24, channel="sms")
        reminders.add_rule(ctx, hours_before=48, channel="email")
    ok(cli("messages", "setup", "--sms-from", "+12125550100", "--email-from", "desk@clinic.example", "--json"))
    live = dataclasses.replace(settings, sms_url=sms_sink.url, smtp_url=smtp_sink.url)

    def send(at: dt.datetime) -> None:
        sender.send_due(live, clock=lambda: at)

    return c, send


def _visit(ctx_for, c, day: dt.date, hhmm: str = "10:00"):
    return book_one(ctx_for, c, f"{day} {hhmm}", when=lambda: dt.datetime.now(dt.UTC))


def _sms(body: str, sid: str, sender: str = E164) -> bytes:
    from urllib.parse import urlencode

    return urlencode({"From": sender, "To": "+12125550100", "Body": body, "MessageSid": sid}).encode()


def _receive(ctx_for, raw: bytes):
    from hpms.services.messages import inbound

    with ctx_for() as ctx:
        return inbound.receive(ctx, inbound.parse(raw))


def _status(settings, appt_id: int) -> str:
    return query(settings, "SELECT status FROM appointment WHERE id = :i", i=appt_id)[0]["status"]


def _all_due_sent(send, appt):
    send(appt.start.astimezone(dt.UTC) - dt.timedelta(hours=23))


def test_confirm_confirms_the_visit_the_reminder_was_for(practice, ctx_for, settings, sms_sink):  # noqa: F811
    c, send = practice
    appt = _visit(ctx_for, c, _weekday(5))
    _all_due_sent(send, appt)
    assert sms_sink.sent_to() == [E164]
    got = _receive(ctx_for, _sms("c", "SM1"))
    assert (got.outcome, got.appointment_id, got.mrn) == ("confirmed", appt.id, c.mrn)
    assert _status(settings, appt.id) == "confirmed"
    again = _receive(ctx_for, _sms("c", "SM1"))
    assert again.duplicate and again.id == got.id
    assert query(settings, "SELECT count(*) AS n FROM inbound_message")[0]["n"] == 1
    yes = _receive(ctx_for, _sms("Yes!", "SM2"))
    assert (yes.outcome, yes.note) == ("no_change", "the visit was confirmed already")


def test_a_confirmation_by_reply_tells_the_ehr_as_the_front_desks_does(practice, ctx_for, settings, tmp_path):
    from hpms.interop.hl7v2 import parse as hl7parse
    from hpms.services.interop.hl7 import receivers

    c, send = practice
    with ctx_for() as ctx:
        receivers.add(ctx, name="ehr", folder=str(tmp_path), events="siu")
    appt = _visit(ctx_for, c, _weekday(5))
    _all_due_sent(send, appt)
    assert _receive(ctx_for, _sms("C", "SM3")).outcome == "confirmed"
    rows = query(settings, "SELECT event, body FROM hl7_message WHERE appointment_id = :i ORDER BY id", i=appt.id)
    assert [r["event"] for r in rows] == ["S12", "S14"]
    sent = hl7parse.split(rows[-1]["body"])
    assert (sent.value("MSH", 9, 2), sent.value("PID", 3)) == ("S14", c.mrn)
    _receive(ctx_for, _sms("yes", "SM4"))  # confirmed already: nothing more goes out
    assert query(settings, "SELECT count(*) AS n FROM hl7_message")[0]["n"] == 2


def test_cancel_goes_to_the_visit_last_reminded_and_an_email_to_the_one_it_answers(
    practice,
    ctx_for,
    settings,
    smtp_sink,  # noqa: F811
):
    c, send = practice
    first = _visit(ctx_for, c, _weekday(5), "10:00")
    second = _visit(ctx_for, c, _weekday(5), "15:00")
    _all_due_sent(send, second)  # both visits' reminders have gone; the 15:00 one's SMS last
    got = _receive(ctx_for, _sms("CANCEL please", "SM9"))
    assert (got.outcome, got.appointment_id) == ("cancelled", second.id)
    assert (_status(settings, first.id), _status(settings, second.id)) == ("booked", "cancelled")
    reason = query(settings, "SELECT cancel_reason FROM appointment WHERE id = :i", i=second.id)[0]
    assert reason["cancel_reason"] == "cancelled by the patient's sms reply"
    # the email reminder of the first visit, answered by email: that visit is the one
    mail = next(r for r in smtp_sink.received if "10:00" in r.message.get_content())
    reply = (
        f"From: Pat Doe <{EMAIL.upper()}>\r\nTo: desk@clinic.example\r\nSubject: Re: {mail.message['Subject']}\r\n"
        f"Message-ID: <reply-1@mail.example>\r\nIn-Reply-To: {mail.message['Message-ID']}\r\n\r\n"
        "Confirm\r\n\r\nOn Mon, the clinic wrote:\r\n> Your visit\r\n"
    ).encode()
    got = _receive(ctx_for, reply)
    assert (got.channel, got.outcome, got.appointment_id) == ("email", "confirmed", first.id)
    assert _status(settings, first.id) == "confirmed"


def test_stop_withdraws_consent_and_what_is_queued(practice, ctx_for, settings):
    c, send = practice
    appt = _visit(ctx_for, c, _weekday(6))
    send(appt.start.astimezone(dt.UTC) - dt.timedelta(hours=47))  # the email has gone; the SMS waits
    first = _visit(ctx_for, c, _weekday(8))  # its SMS is queued
    del first
    queued = query(settings, "SELECT count(*) AS n FROM message WHERE channel = 'sms' AND state = 'queued'")
    assert queued[0]["n"] == 2
    got = _receive(ctx_for, _sms("STOP", "SM3"))
    assert got.outcome == "unsubscribed"
    row = query(settings, "SELECT consent_sms, consent_email FROM patient WHERE mrn = :m", m=c.mrn)[0]
    assert (bool(row["consent_sms"]), bool(row["consent_email"])) == (False, True)
    left = query(settings, "SELECT state, error FROM message WHERE channel = 'sms'")
    assert {(r["state"], r["error"]) for r in left} == {("cancelled", "the patient answered STOP")}


def test_anything_else_goes_to_the_inbox_until_handled(practice, ctx_for, cli):
    c, send = practice
    appt = _visit(ctx_for, c, _weekday(5))
    _all_due_sent(send, appt)
    got = _receive(ctx_for, _sms("Where do I park?", "SM4"))
    assert got.outcome == "for_staff"
    inbox = ok(cli("messages", "inbox", "--json"))
    assert [(r["id"], r["body"], r["mrn"]) for r in inbox] == [(got.id, "Where do I park?", c.mrn)]
    ok(cli("messages", "handled", str(got.id), "--json"))
    assert ok(cli("messages", "inbox", "--json")) == []
    assert len(ok(cli("messages", "inbox", "--all", "--json"))) == 1
    error_line(cli("messages", "handled", "999"), 3, "no reply 999")


def test_an_unknown_sender_changes_nothing(practice, ctx_for, settings):
    c, send = practice
    appt = _visit(ctx_for, c, _weekday(5))
    _all_due_sent(send, appt)
    got = _receive(ctx_for, _sms("CANCEL", "SM5", sender="+13125550199"))
    assert (got.outcome, got.patient_id) == ("unknown_sender", None)
    assert _status(settings, appt.id) == "booked"


def test_a_keyword_without_a_reminded_visit_is_for_staff(practice, ctx_for, settings):
    c, _ = practice
    appt = _visit(ctx_for, c, _weekday(5))  # nothing sent yet
    got = _receive(ctx_for, _sms("C", "SM6"))
    assert got.outcome == "for_staff" and "no reminder of a coming visit" in (got.note or "")
    assert _status(settings, appt.id) == "booked"


def test_the_command_reads_a_file_or_stdin(practice, ctx_for, cli, tmp_path, settings):
    c, send = practice
    appt = _visit(ctx_for, c, _weekday(5))
    _all_due_sent(send, appt)
    f = tmp_path / "sms.txt"
    f.write_bytes(_sms("C", "SM7"))
    out = ok(cli("messages", "inbound", str(f), "--json"))
    assert out["outcome"] == "confirmed"
    r = cli("messages", "inbound", "-", input='{"From": "+12125550142", "Body": "hello", "MessageSid": "SM8"}')
    assert r.exit_code == 0 and "for staff" in r.stderr


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"", ["is empty"]),
        (b"{not json", ["not valid JSON"]),
        (b"From=%2B12125550142&Body=C", ["From, Body and MessageSid"]),
        (b"Subject: hi\r\n\r\nno sender", ["neither an SMS"]),
    ],
)
def test_bad_input_writes_nothing(cli, tmp_path, counts_of, payload, words):
    f = tmp_path / "in.txt"
    f.write_bytes(payload)
    before = counts_of("inbound_message", "audit_event")
    error_line(cli("messages", "inbound", str(f)), 2, *words)
    assert counts_of("inbound_message", "audit_event") == before


@pytest.fixture
def counts_of(settings):
    from tests.conftest import count_rows

    return lambda *tables: {t: count_rows(settings, t) for t in tables}


def test_only_staff_and_the_service_take_replies_in(cli, as_user_env, tmp_path):
    f = tmp_path / "sms.txt"
    f.write_bytes(_sms("C", "SM10"))
    error_line(cli("messages", "inbound", str(f), env=as_user_env("billy", "biller")), 5, "take in patients' replies")


@pytest.fixture
def as_user_env(make_user, token_for):
    def make(username: str, *roles: str) -> dict[str, str]:
        make_user(username, *roles)
        return {"HPMS_USER": username, "HPMS_TOKEN": token_for(username)}

    return make
