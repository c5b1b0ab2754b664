"""The web server's hooks for the SMS provider and the mail provider, over real HTTP: one
uvicorn server on loopback for the whole module (it reads the current test's settings on each
request), reminders really sent through the Twilio-compatible and SMTP loopback servers, whose
delivery reports and patients' replies come back signed as Twilio signs them, or as raw emails
with the shared secret as an inbound-parse webhook posts them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.cli.helpers import error_line, ok
from tests.conftest import count_rows
from tests.portal.live import Served, serve
from tests.portal.live import weekday as _weekday
from tests.services.conftest import register  # noqa: F401 - fixture
from tests.services.helpers import audit_rows, query
from tests.services.sched import book_one, clinic
from tests.sms_server import post_signed, sms_sink  # noqa: F401 - fixture
from tests.smtp_server import smtp_sink  # noqa: F401 - fixture

PHONE, E164, PRACTICE = "212-555-0142", "+12125550142", "+12125550100"
STATUS, INBOUND = "/hooks/sms/status", "/hooks/sms/inbound"


@pytest.fixture(scope="module")
def portal() -> Iterator[Served]:
    with serve() as served:
        yield served


@dataclass
class Practice:
    c: object
    portal: Served
    live: object

    def visit(self, ctx_for, days_ahead: int, hhmm: str = "10:00"):
        return book_one(ctx_for, self.c, f"{_weekday(days_ahead)} {hhmm}", when=lambda: dt.datetime.now(dt.UTC))

    def send_reminders(self, appt) -> None:
        """Send what is due a day before `appt` (its SMS reminder and any before it)."""
        from hpms.services.messages import sender

        at = appt.start.astimezone(dt.UTC) - dt.timedelta(hours=23)
        sender.send_due(self.live, clock=lambda: at)  # type: ignore[arg-type]

    def serve(self, **changes) -> None:
        self.portal.settings = dataclasses.replace(self.live, **changes)  # type: ignore[type-var]


@pytest.fixture
def practice(ctx_for, register, cli, settings, sms_sink, portal) -> Iterator[Practice]:  # noqa: F811
    """A clinic whose patient agrees to SMS, with 24-hour SMS reminders, served by the portal
    (its public URL is the portal's own address) and sending to the loopback SMS server."""
    from hpms.services.messages import reminders
    from hpms.services.people import patients

    c = clinic(ctx_for, register)
    with ctx_for() as ctx:
        patients.update(ctx, c.mrn, phone=PHONE, consent_sms=True)
        reminders.add_rule(ctx, hours_before=24, channel="sms")
    ok(cli("messages", "setup", "--sms-from", PRACTICE, "--json"))
    live = dataclasses.replace(settings, sms_url=sms_sink.url, public_url=portal.url)
    portal.settings = live
    try:
        yield Practice(c, portal, live)
    finally:
        portal.settings = None


def _messages(cli) -> dict[int, dict]:
    return {m["id"]: m for m in ok(cli("messages", "list", "--json"))}


def _sms_id(settings, sid: str) -> int:
    return query(settings, "SELECT id FROM message WHERE provider_id = :p", p=sid)[0]["id"]


def test_delivery_reports_mark_messages_delivered_and_never_go_back(practice, ctx_for, cli, settings, sms_sink):  # noqa: F811
    appt = practice.visit(ctx_for, 5)
    practice.send_reminders(appt)
    [request] = sms_sink.requests
    assert request["StatusCallback"] == practice.portal.url + STATUS  # asked for, at the public URL
    mid = _sms_id(settings, sms_sink.sids[0])
    seq = max(r["seq"] for r in audit_rows(settings))

    assert sms_sink.report(0, "sent") == (204, "")  # on its way: nothing to record
    assert _messages(cli)[mid]["state"] == "sent" and _messages(cli)[mid]["delivered_at"] is None
    before = dt.datetime.now(dt.UTC)
    assert sms_sink.report(0, "delivered") == (204, "")
    got = _messages(cli)[mid]
    assert got["state"] == "delivered" and got["error"] is None
    delivered_at = dt.datetime.fromisoformat(got["delivered_at"])
    assert delivered_at.tzinfo is not None and before - dt.timedelta(seconds=5) <= delivered_at
    # late or repeated reports change nothing
    assert sms_sink.report(0, "sent") == (204, "")
    assert sms_sink.report(0, "delivered") == (204, "")
    assert sms_sink.report(0, "undelivered", "30003") == (204, "")
    assert _messages(cli)[mid] == got
    updates = [r for r in audit_rows(settings, seq) if r["action"] == "update" and r["entity"] == "message"]
    assert len(updates) == 1
    assert updates[0]["entity_id"] == str(mid) or int(updates[0]["entity_id"]) == mid
    assert "SMS provider" in updates[0]["detail"] and updates[0]["patient_id"] is not None
    # a reply to a delivered reminder still finds its visit
    status, _ = post_signed(
        practice.portal.url + INBOUND, {"From": E164, "To": PRACTICE, "Body": "C", "MessageSid": "SMr1"}
    )
    assert status == 200
    assert query(settings, "SELECT status FROM appointment WHERE id = :i", i=appt.id)[0]["status"] == "confirmed"


def test_undelivered_messages_fail_with_the_carriers_code(practice, ctx_for, cli, settings, sms_sink):  # noqa: F811
    first = practice.visit(ctx_for, 5, "10:00")
    second = practice.visit(ctx_for, 5, "15:00")
    practice.send_reminders(second)  # both reminders go
    assert len(sms_sink.sids) == 2
    landline, unknown = (_sms_id(settings, sid) for sid in sms_sink.sids)
    del first
    assert sms_sink.report(0, "undelivered", "30006", "Landline or unreachable carrier") == (204, "")
    assert sms_sink.report(1, "failed", "30005") == (204, "")
    got = _messages(cli)
    assert got[landline]["state"] == "failed" and got[unknown]["state"] == "failed"
    assert "carrier error 30006" in got[landline]["error"] and "landline" in got[landline]["error"]
    assert "Landline or unreachable carrier" in got[landline]["error"]
    assert "carrier error 30005" in got[unknown]["error"] and "unknown" in got[unknown]["error"]
    failed = ok(cli("messages", "list", "--state", "failed", "--json"))
    assert {m["id"] for m in failed} == {landline, unknown}
    assert sms_sink.report(0, "undelivered", "30006") == (204, "")  # once is enough
    assert _messages(cli)[landline] == got[landline]
    # the handset got it after all
    assert sms_sink.report(1, "delivered") == (204, "")
    after = _messages(cli)[unknown]
    assert after["state"] == "delivered" and after["delivered_at"] is not None and after["error"] is None
    assert {m["id"] for m in ok(cli("messages", "list", "--state", "failed", "--json"))} == {landline}


def test_unsigned_or_wrongly_signed_callbacks_are_refused_and_write_nothing(practice, ctx_for, cli, settings, sms_sink):  # noqa: F811
    appt = practice.visit(ctx_for, 5)
    practice.send_reminders(appt)
    sid = sms_sink.sids[0]
    url = practice.portal.url + STATUS
    report = {"MessageSid": sid, "MessageStatus": "delivered"}
    reply = {"From": E164, "To": PRACTICE, "Body": "CANCEL", "MessageSid": "SMx1"}
    tables = ("message", "inbound_message", "audit_event")
    messages = _messages(cli)
    before = {t: count_rows(settings, t) for t in tables}
    refused = [
        post_signed(url, report, signature=""),  # none
        post_signed(url, report, signature="bm90IGEgc2lnbmF0dXJl"),
        post_signed(url, {**report, "MessageStatus": "undelivered"}, signature=_sig(url, report)),  # another form
        post_signed(url, report, signed_url=url + "?x=1"),  # another URL
        post_signed(practice.portal.url + INBOUND, reply, signature=""),
        post_signed(practice.portal.url + INBOUND, reply, signed_url=url),
    ]
    practice.serve(sms_url=practice.live.sms_url.replace("test-auth-token", "another-token"))  # type: ignore[attr-defined]
    refused.append(post_signed(url, report))
    practice.serve(sms_url=None)  # nothing to check a signature with
    refused.append(post_signed(url, report))
    assert [s for s, _ in refused] == [403] * 8
    assert "X-Twilio-Signature" in refused[0][1] and "not set up" in refused[-1][1]
    assert {t: count_rows(settings, t) for t in tables} == before
    assert _messages(cli) == messages
    assert query(settings, "SELECT status FROM appointment WHERE id = :i", i=appt.id)[0]["status"] == "booked"

    # behind a reverse proxy the provider signs the public URL, not the one this server sees
    practice.serve(public_url="https://clinic.example.org/")
    assert post_signed(url, report)[0] == 403
    assert post_signed(url, report, signed_url="https://clinic.example.org" + STATUS) == (204, "")
    assert _messages(cli)[_sms_id(settings, sid)]["state"] == "delivered"


def _sig(url: str, form: dict[str, str]) -> str:
    from tests.sms_server import twilio_signature

    return twilio_signature(url, form)


def test_unknown_message_or_status_and_incomplete_forms(practice, cli, settings):
    url = practice.portal.url + STATUS
    tables = ("message", "inbound_message", "audit_event")
    before = {t: count_rows(settings, t) for t in tables}
    status, body = post_signed(url, {"MessageSid": "SMnothere", "MessageStatus": "delivered"})
    assert status == 404 and "SMnothere" in body
    status, body = post_signed(url, {"MessageSid": "SMnothere", "MessageStatus": "exploded"})
    assert status == 400 and body.startswith("MessageStatus:") and "exploded" in body
    status, body = post_signed(url, {"MessageStatus": "delivered"})
    assert status == 400 and body.startswith("MessageSid:")
    status, body = post_signed(practice.portal.url + INBOUND, {"From": E164, "MessageSid": "SMq"})
    assert status == 400 and "From, Body and MessageSid" in body
    assert {t: count_rows(settings, t) for t in tables} == before


def test_replies_over_the_webhook(practice, ctx_for, cli, settings, sms_sink):  # noqa: F811
    appt = practice.visit(ctx_for, 5)
    practice.send_reminders(appt)
    inbound = practice.portal.url + INBOUND
    # a number hpms does not know: recorded for staff, nothing changed
    answer = post_signed(inbound, {"From": "+15559990000", "To": PRACTICE, "Body": "CANCEL", "MessageSid": "SMu1"})
    assert answer[0] == 200 and "<Response></Response>" in answer[1]
    assert query(settings, "SELECT status FROM appointment WHERE id = :i", i=appt.id)[0]["status"] == "booked"
    [stranger] = ok(cli("messages", "inbox", "--json"))
    assert stranger["outcome"] == "unknown_sender" and stranger["mrn"] is None
    # the patient confirms
    form = {"From": E164, "To": PRACTICE, "Body": "Yes, see you", "MessageSid": "SMc1", "AccountSid": "AC1"}
    assert post_signed(inbound, form) == answer
    assert query(settings, "SELECT status FROM appointment WHERE id = :i", i=appt.id)[0]["status"] == "confirmed"
    rows = query(settings, "SELECT outcome, appointment_id FROM inbound_message WHERE provider_id = 'SMc1'")
    assert rows == [{"outcome": "confirmed", "appointment_id": appt.id}]
    # the provider delivers it again: nothing twice
    assert post_signed(inbound, form)[0] == 200
    assert count_rows(settings, "inbound_message") == 2


def test_content_type_of_twiml_and_health(practice):
    import httpx

    with httpx.Client(base_url=practice.portal.url, timeout=30) as client:
        health = client.get("/healthz")
        assert (health.status_code, health.text) == (200, "ok")
        assert client.get("/hooks/sms/status").status_code == 405
        assert client.get("/nothing").status_code == 404
        form = {"From": "+15559990001", "To": PRACTICE, "Body": "hi", "MessageSid": "SMh1"}
        signed = _sig(practice.portal.url + INBOUND, form)
        got = client.post(INBOUND, data=form, headers={"X-Twilio-Signature": signed})
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/xml")
    assert got.text.endswith("<Response></Response>")


def test_serve_refuses_bad_options_and_users_without_the_permissions(cli, settings, make_user, token_for):
    before = count_rows(settings, "audit_event")
    for port in ("0", "65536", "-1"):
        error_line(cli("portal", "serve", "--port", port), 2, "--port", "1-65535")
    r = cli("portal", "serve", "--port", "http")
    assert r.exit_code == 2 and "--port" in r.stderr
    error_line(cli("portal", "serve", "--host", "no.such.host.invalid", "--port", "8080"), 2, "--host")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        error_line(cli("portal", "serve", "--port", busy), 74, "in use")
    assert count_rows(settings, "audit_event") == before
    make_user("desk", "front_desk")
    env = {"HPMS_USER": "desk", "HPMS_TOKEN": token_for("desk")}
    error_line(cli("portal", "serve", "--port", "8080", env=env), 5, "desk", "may not send the outbox")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_serve_runs_until_sigterm(settings, backend):
    import json
    import signal
    import subprocess
    import sys

    import httpx

    from tests.cli.conftest import subprocess_env
    from tests.conftest import REPO

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = subprocess_env(settings.home, HPMS_PUBLIC_URL="https://clinic.example.org")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpms", "portal", "serve", "--port", str(port), "--json"],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline, health = time.monotonic() + 60, None
        while health is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            except httpx.TransportError:
                time.sleep(0.05)
        assert health is not None and (health.status_code, health.text) == (200, "ok")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    data = json.loads(out)
    assert data["url"] == f"http://127.0.0.1:{port}" and data["stopped"] is True
    assert data["status_callback"] == "https://clinic.example.org/hooks/sms/status"
    assert data["email_inbound"] == "https://clinic.example.org/hooks/email/inbound"
    assert "inbound_email_secret is not set" in err
    assert "sms_url is not set" in err and "GET /healthz" in err  # the warning, and uvicorn's access log


# ---- inbound email: a mail provider's inbound-parse webhook ---------------------------------

EMAIL, SECRET, EMAIL_HOOK = "pat@example.org", "hook-s3cret", "/hooks/email/inbound"


@pytest.fixture
def mail_practice(ctx_for, register, cli, settings, smtp_sink, portal):  # noqa: F811
    """A clinic whose patient agrees to email, with 48-hour email reminders sent to the loopback
    SMTP server, served by the portal with an inbound-email secret; yields (clinic, send)."""
    from hpms.services.messages import reminders, sender
    from hpms.services.people import patients

    c = clinic(ctx_for, register)
    with ctx_for() as ctx:
        patients.update(ctx, c.mrn, email=EMAIL, consent_email=True)
        reminders.add_rule(ctx, hours_before=48, channel="email")
    ok(cli("messages", "setup", "--email-from", "desk@clinic.example", "--json"))
    live = dataclasses.replace(settings, smtp_url=smtp_sink.url, inbound_email_secret=SECRET)
    portal.settings = live

    def send(appt) -> None:
        at = appt.start.astimezone(dt.UTC) - dt.timedelta(hours=47)
        sender.send_due(live, clock=lambda: at)

    try:
        yield c, send
    finally:
        portal.settings = None


def _reply(body: str, message_id: str, *, sender: str = EMAIL, in_reply_to: str | None = None) -> bytes:
    head = f"From: Pat Doe <{sender}>\r\nTo: desk@clinic.example\r\nSubject: Re: Your visit\r\n"
    head += f"Message-ID: {message_id}\r\n" + (f"In-Reply-To: {in_reply_to}\r\n" if in_reply_to else "")
    return (head + "\r\n" + body + "\r\n\r\n> Your visit on ...\r\n").encode()


def _post_email(url: str, raw: bytes, *, secret: str | None = SECRET, form: bool = False, **headers: str):
    import httpx

    auth = ("mailhook", secret) if secret is not None else None
    with httpx.Client(timeout=30) as client:
        if form:  # as SendGrid's Inbound Parse posts it with "raw" on: multipart, the MIME in `email`
            got = client.post(
                url, data={"email": raw.decode(), "to": "desk@clinic.example"}, files={"x": b""}, auth=auth
            )
        else:
            got = client.post(url, content=raw, headers={"Content-Type": "message/rfc822", **headers}, auth=auth)
    return got.status_code, got.text


def test_confirm_by_email_confirms_the_visit_it_answers(mail_practice, ctx_for, cli, settings, smtp_sink, portal):  # noqa: F811
    c, send = mail_practice
    first, second = (
        book_one(ctx_for, c, f"{_weekday(5)} {hhmm}", when=lambda: dt.datetime.now(dt.UTC))
        for hhmm in ("10:00", "15:00")
    )
    send(second)  # both reminders go
    mails = {("10:00" in r.message.get_content()): r.message for r in smtp_sink.received}
    assert len(mails) == 2
    url = portal.url + EMAIL_HOOK
    # a reply to the first visit's reminder, the raw message as the body
    got = _post_email(url, _reply("Confirm, thanks", "<r1@mail.example>", in_reply_to=mails[True]["Message-ID"]))
    assert got == (200, "ok")
    assert query(settings, "SELECT status FROM appointment WHERE id = :i", i=first.id)[0]["status"] == "confirmed"
    assert query(settings, "SELECT status FROM appointment WHERE id = :i", i=second.id)[0]["status"] == "booked"
    # the same reply delivered again changes nothing; a reply in a form field (multipart) works too
    assert _post_email(url, _reply("Confirm, thanks", "<r1@mail.example>"))[0] == 200
    raw = _reply("yes", "<r2@mail.example>", in_reply_to=mails[False]["Message-ID"])
    assert _post_email(url, raw, form=True) == (200, "ok")
    assert query(settings, "SELECT status FROM appointment WHERE id = :i", i=second.id)[0]["status"] == "confirmed"
    rows = query(settings, "SELECT channel, outcome, appointment_id FROM inbound_message ORDER BY id")
    assert rows == [
        {"channel": "email", "outcome": "confirmed", "appointment_id": first.id},
        {"channel": "email", "outcome": "confirmed", "appointment_id": second.id},
    ]


def test_email_hook_refuses_a_wrong_or_missing_secret_and_writes_nothing(mail_practice, ctx_for, cli, settings, portal):  # noqa: F811
    url = portal.url + EMAIL_HOOK
    raw = _reply("CANCEL", "<x1@mail.example>")
    tables = ("message", "inbound_message", "audit_event", "appointment")
    before = {t: count_rows(settings, t) for t in tables}
    refused = [
        _post_email(url, raw, secret=None),
        _post_email(url, raw, secret="hook-s3cre"),
        _post_email(url, raw, secret=SECRET + "x", form=True),
        _post_email(url, raw, secret=None, Authorization="Basic !!notbase64"),
        _post_email(url, raw, secret=None, Authorization=f"Bearer {SECRET}"),
    ]
    portal.settings = dataclasses.replace(portal.settings, inbound_email_secret=None)  # type: ignore[type-var]
    refused.append(_post_email(url, raw))  # not set up: nothing to check against
    assert [s for s, _ in refused] == [403] * 6
    assert "secret" in refused[0][1] and "not set up" in refused[-1][1]
    assert {t: count_rows(settings, t) for t in tables} == before


def test_email_hook_unknown_sender_and_malformed_messages(mail_practice, cli, settings, portal):  # noqa: F811
    url = portal.url + EMAIL_HOOK
    tables = ("message", "inbound_message", "audit_event", "appointment")
    before = {t: count_rows(settings, t) for t in tables}
    bad = [
        (_post_email(url, b""), "email: is empty"),
        (_post_email(url, b"Subject: hi\r\nMessage-ID: <m1@x>\r\n\r\nC\r\n"), "email: is not an email with a From"),
        (_post_email(url, b"From: pat@example.org\r\n\r\nC\r\n"), "email: the email has no Message-ID"),
        (_post_email(url, b"{}", form=True), "email: is not an email with a From"),
    ]
    for (status, text), said in bad:
        assert status == 400 and text.startswith(said), (status, text)
    import httpx

    empty_form = httpx.post(url, data={"to": "desk@clinic.example"}, auth=("u", SECRET), timeout=30)
    assert empty_form.status_code == 400 and "field email" in empty_form.text
    assert {t: count_rows(settings, t) for t in tables} == before
    # a sender hpms does not know: taken (200), recorded for staff, nothing else changed
    assert _post_email(url, _reply("CANCEL", "<u1@mail.example>", sender="stranger@else.example")) == (200, "ok")
    [stranger] = ok(cli("messages", "inbox", "--json"))
    assert (stranger["outcome"], stranger["mrn"], stranger["channel"]) == ("unknown_sender", None, "email")
    assert count_rows(settings, "appointment") == before["appointment"]
    assert count_rows(settings, "message") == before["message"]
