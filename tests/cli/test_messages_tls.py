"""Email over TLS to a real server on loopback: STARTTLS then login, TLS from the first byte
(smtps), a certificate from a private CA trusted through SSL_CERT_FILE, and the failures that
keep a message queued for a later try (a refused login, a certificate that cannot be trusted)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from tests.cli.helpers import ok

FROM = "frontdesk@riverside.example"
# aiosmtpd warns of a login without STARTTLS; on smtps the whole connection is TLS already
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def queue(cli, ctx_for, patient):
    """queue() puts one email for the test patient in the outbox; returns its id."""
    from hpms.services.lookups import find_patient
    from hpms.services.messages import outbox as box

    ok(cli("messages", "setup", "--email-from", FROM, "--json"))

    def put() -> int:
        with ctx_for() as ctx:
            msg = box.enqueue(
                ctx,
                channel="email",
                recipient="ana.muller@example.org",
                subject="Your visit",
                body="See you tomorrow at 9:00.",
                template="reminder",
                patient_id=find_patient(ctx, patient).id,
            )
            assert msg.id is not None
            return msg.id

    return put


def _message(cli, mid: int) -> dict:
    return next(m for m in ok(cli("messages", "list", "--json")) if m["id"] == mid)


@pytest.mark.parametrize("mode", ["starttls", "smtps"])
def test_mail_goes_over_tls_with_a_login_to_a_server_of_a_private_ca(cli, queue, smtp_tls, tls_files, mode):
    sink = smtp_tls(mode)
    assert sink.url.startswith("smtp+starttls://clinic:" if mode == "starttls" else "smtps://clinic:")
    first, second = queue(), queue()
    env = {"HPMS_SMTP_URL": sink.url, "SSL_CERT_FILE": str(tls_files.ca_file)}
    data = ok(cli("messages", "send", "--json", env=env))
    assert (data["sent"], data["retried"], data["failed"]) == (2, 0, 0), _message(cli, first)["error"]
    assert sink.logins == ["clinic"]  # one connection, one login, for both messages
    assert [r.rcpt_tos for r in sink.received] == [["ana.muller@example.org"]] * 2
    assert sink.received[0].message["From"] == FROM
    assert _message(cli, first)["state"] == _message(cli, second)["state"] == "sent"
    # the password shows nowhere the outbox is described
    r = cli("messages", "setup", "--json", env=env)
    assert "s3cret" not in r.stdout and "clinic" in r.stdout


def test_a_refused_login_and_an_untrusted_certificate_wait_for_a_later_try(
    cli, queue, smtp_tls, tls_files, settings, monkeypatch
):
    from hpms.services.messages import sender

    sink = smtp_tls("starttls")
    mid = queue()
    wrong = sink.url_as("clinic", "not the password")
    data = ok(cli("messages", "send", "--json", env={"HPMS_SMTP_URL": wrong, "SSL_CERT_FILE": str(tls_files.ca_file)}))
    assert (data["sent"], data["retried"], data["failed"]) == (0, 1, 0)
    msg = _message(cli, mid)
    assert msg["state"] == "queued" and msg["attempts"] == 1
    assert msg["error"].startswith("the mail server refused the login: 535") and "not the password" not in msg["error"]
    assert sink.received == [] and sink.logins == []

    # the right login, but a client that does not trust the private CA: not sent, kept for later
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    summary = sender.send_due(dataclasses.replace(settings, smtp_url=sink.url), clock=lambda: later)
    assert (summary.sent, summary.retried, summary.failed) == (0, 1, 0)
    msg = _message(cli, mid)
    assert msg["state"] == "queued" and msg["attempts"] == 2
    assert "certificate that cannot be trusted" in msg["error"] and "127.0.0.1" in msg["error"]
    assert "verify failed" in msg["error"] or "self-signed" in msg["error"] or "issuer" in msg["error"]
    assert sink.received == []

    # once the CA is trusted, the next try goes
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files.ca_file))
    later += dt.timedelta(hours=1)
    summary = sender.send_due(dataclasses.replace(settings, smtp_url=sink.url), clock=lambda: later)
    assert summary.sent == 1 and sink.logins == ["clinic"]
    msg = _message(cli, mid)
    assert msg["state"] == "sent" and msg["attempts"] == 3 and msg["error"] is None
