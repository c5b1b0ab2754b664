"""The outbox and `hpms messages`: email through a real SMTP server on loopback, one recipient
per message, retries with a growing delay, permanent failures kept for staff, a sender killed
with SIGKILL half-way that sends nothing twice, and the lock that keeps two senders apart."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.cli.conftest import subprocess_env
from tests.cli.helpers import error_line, ok, tsv, with_denied
from tests.conftest import REPO

FROM = "frontdesk@riverside.example"
REPLY = "replies@riverside.example"


@pytest.fixture
def outbox(cli, ctx_for, patient):
    """queue(recipient, ...) puts an email in the outbox for the test patient; returns its id."""
    from hpms.services.lookups import find_patient
    from hpms.services.messages import outbox as box

    ok(cli("messages", "setup", "--email-from", FROM, "--reply-to", REPLY, "--json"))

    def queue(recipient: str = "ana.muller@example.org", *, body: str = "See you tomorrow at 9:00.", **kw) -> int:
        with ctx_for() as ctx:
            pid = find_patient(ctx, patient).id
            msg = box.enqueue(
                ctx,
                channel="email",
                recipient=recipient,
                subject="Your visit",
                body=body,
                template="reminder",
                patient_id=pid,
                **kw,
            )
            assert msg.id is not None
            return msg.id

    return queue


def _states(cli) -> dict[int, str]:
    return {m["id"]: m["state"] for m in ok(cli("messages", "list", "--json"))}


def test_email_goes_to_one_recipient_with_the_practice_identity(cli, outbox, smtp_sink, patient):
    first = outbox("ana.muller@example.org")
    second = outbox("other@example.org", body="Second message")
    env = {"HPMS_SMTP_URL": smtp_sink.url}
    data = ok(cli("messages", "send", "--json", env=env))
    assert (data["sent"], data["retried"], data["failed"], data["due"]) == (2, 0, 0, {})
    assert len(smtp_sink.received) == 2
    for got, to, body in zip(
        smtp_sink.received, ["ana.muller@example.org", "other@example.org"], ["See you", "Second"], strict=True
    ):
        assert got.rcpt_tos == [to] and got.mail_from == FROM
        assert got.message["To"] == to and got.message["Cc"] is None and got.message["Bcc"] is None
        assert got.message["From"] == FROM and got.message["Reply-To"] == REPLY
        assert got.message["Subject"] == "Your visit"
        assert got.message.get_content().startswith(body)
    listed = {m["id"]: m for m in ok(cli("messages", "list", "--json"))}
    assert listed[first]["state"] == listed[second]["state"] == "sent"
    assert listed[first]["provider_id"] == smtp_sink.received[0].message["Message-ID"]
    assert f"hpms-{first}" in listed[first]["provider_id"]
    assert listed[first]["mrn"] == patient and listed[first]["sent_at"].endswith("Z")
    # a second pass has nothing to send
    assert ok(cli("messages", "send", "--json", env=env))["sent"] == 0
    assert len(smtp_sink.received) == 2
    sends = [e for e in ok(cli("audit", "log", "--json")) if e["entity"] == "message" and e["action"] == "send"]
    assert len(sends) == 2 and all(e["patient_id"] for e in sends)


def test_a_refused_address_fails_for_good_and_a_busy_one_is_retried_later(cli, outbox, smtp_sink, settings):
    from hpms.services.messages import sender

    bad = outbox("nobody@example.org")
    busy = outbox("busy@example.org")
    smtp_sink.refuse.add("nobody@example.org")
    smtp_sink.busy["busy@example.org"] = 1
    env = {"HPMS_SMTP_URL": smtp_sink.url}
    data = ok(cli("messages", "send", "--json", env=env))
    assert (data["sent"], data["retried"], data["failed"]) == (0, 1, 1)
    listed = {m["id"]: m for m in ok(cli("messages", "list", "--json"))}
    assert listed[bad]["state"] == "failed" and "550" in listed[bad]["error"]
    assert listed[busy]["state"] == "queued" and listed[busy]["attempts"] == 1 and "451" in listed[busy]["error"]
    retry_at = dt.datetime.fromisoformat(listed[busy]["next_attempt_at"])
    assert dt.timedelta(seconds=50) < retry_at - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=1)
    # not due yet: nothing is sent now; a minute later it goes, and the refused one never again
    assert ok(cli("messages", "send", "--json", env=env))["sent"] == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    summary = sender.send_due(dataclasses.replace(settings, smtp_url=smtp_sink.url), clock=lambda: later)
    assert (summary.sent, summary.failed) == (1, 0)
    assert _states(cli) == {bad: "failed", busy: "sent"}
    assert [r.rcpt_tos for r in smtp_sink.received] == [["busy@example.org"]]
    r = cli("messages", "list", "--state", "failed")
    header, rows = tsv(r.stdout)
    assert [row[header.index("ID")] for row in rows] == [str(bad)]


def test_retry_delays_grow_to_a_cap():
    from hpms.services.messages.outbox import retry_delay

    assert [retry_delay(n).total_seconds() / 60 for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert retry_delay(30) == dt.timedelta(hours=6)


def test_without_a_mail_server_messages_wait(cli, outbox, counts):
    mid = outbox()
    r = cli("messages", "send")
    assert r.exit_code == 0, r.stderr
    assert "email is not set up (smtp_url: is not set: email cannot be sent)" in r.stderr
    assert _states(cli) == {mid: "queued"}
    r = cli("messages", "send", "--json", env={"HPMS_SMTP_URL": "smtpx://mail.example"})
    assert ok(r)["not_set_up"]["email"].startswith("smtp_url: scheme 'smtpx' is not one of")
    assert _states(cli) == {mid: "queued"}


def test_dry_run_counts_and_sends_nothing(cli, outbox, smtp_sink):
    outbox()
    outbox("b@example.org", due_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    data = ok(cli("messages", "send", "--dry-run", "--json", env={"HPMS_SMTP_URL": smtp_sink.url}))
    assert data["dry_run"] is True and data["due"] == {"email": 1} and data["sent"] == 0
    assert smtp_sink.received == []


def test_one_message_per_event(ctx_for, outbox, cli):
    first = outbox(dedupe_key="reminder:1:72h")
    assert outbox(dedupe_key="reminder:1:72h") == first
    assert list(_states(cli)) == [first]


def test_bad_messages_are_refused_naming_the_field(ctx_for, outbox, counts):
    from hpms.errors import ValidationError
    from hpms.services.messages import outbox as box

    before = counts("message")
    for kw, field in (
        ({"channel": "fax", "recipient": "a@example.org", "body": "x"}, "channel"),
        ({"channel": "email", "recipient": "not-an-address", "body": "x"}, "recipient"),
        ({"channel": "email", "recipient": "a@example.org", "body": "  "}, "body"),
    ):
        with pytest.raises(ValidationError) as err, ctx_for() as ctx:
            box.enqueue(ctx, template="t", **kw)
        assert err.value.field == field
    assert counts("message") == before


def test_files_go_with_an_email_only_and_up_to_a_size(ctx_for, outbox, counts, smtp_sink, cli):
    from hpms.errors import ValidationError
    from hpms.services.messages import outbox as box
    from hpms.services.messages.outbox import MAX_ATTACHMENT_BYTES

    before = counts("message", "message_attachment", "audit_event")
    big = b"x" * (MAX_ATTACHMENT_BYTES // 2 + 1)
    for kw, words in (
        (
            {"channel": "sms", "recipient": "+15552013344", "attachments": [("a.pdf", "application/pdf", b"%PDF")]},
            "sms",
        ),
        ({"attachments": [("a.pdf", "application/pdf", big), ("b.pdf", "application/pdf", big)]}, "5 MB"),
        ({"attachments": [("../a.pdf", "application/pdf", b"%PDF")]}, "not a file name"),
        ({"attachments": [("a.pdf", "pdf", b"%PDF")]}, "content type"),
    ):
        args = {"channel": "email", "recipient": "a@example.org", **kw}
        with pytest.raises(ValidationError) as err, ctx_for() as ctx:
            box.enqueue(ctx, template="t", body="See attached.", **args)
        assert err.value.field == "attachments" and words in err.value.message
    assert counts("message", "message_attachment", "audit_event") == before
    data = bytes(range(256)) * 40
    mid = outbox(attachments=[("scan.bin", "application/octet-stream", data), ("note.txt", "text/plain", b"hi")])
    assert counts("message_attachment")["message_attachment"] == 2
    assert ok(cli("messages", "send", "--json", env={"HPMS_SMTP_URL": smtp_sink.url}))["sent"] == 1
    [got] = smtp_sink.received
    parts = list(got.message.iter_attachments())
    assert [(p.get_filename(), p.get_content_type()) for p in parts] == [
        ("scan.bin", "application/octet-stream"),
        ("note.txt", "text/plain"),
    ]
    assert parts[0].get_content() == data and parts[1].get_content().strip() == "hi"
    assert got.message.get_body(preferencelist=("plain",)).get_content().startswith("See you tomorrow")
    assert _states(cli) == {mid: "sent"}


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_send_limit_must_be_positive(cli, outbox, smtp_sink, counts, limit):
    mid = outbox()
    before = counts("message", "audit_event")
    r = cli("messages", "send", "--limit", limit, env={"HPMS_SMTP_URL": smtp_sink.url})
    error_line(r, 2, "--limit", "at least 1")
    assert smtp_sink.received == [] and counts("message", "audit_event") == before
    assert _states(cli) == {mid: "queued"}


def test_the_claims_of_a_dead_sender_after_the_one_in_hand_are_sent_by_the_next(cli, outbox, raw_sql, smtp_sink):
    """A sender claims several messages at once: when it dies, the first of its claims in the
    order it hands them over may have gone (unknown), the others had not and go with the next
    run, once; a sender that is told to stop puts back what it had not handed over."""
    ids = [outbox(f"p{i}@example.org", body=f"message {i}") for i in range(4)]
    dead = f"{socket.gethostname()}:999999999"  # no such process
    listed = ", ".join(str(i) for i in ids[:3])
    raw_sql(f"UPDATE message SET state = 'sending', claimed_by = '{dead}', attempts = 1 WHERE id IN ({listed})")
    data = ok(cli("messages", "send", "--json", env={"HPMS_SMTP_URL": smtp_sink.url}))
    assert (data["found_unknown"], data["sent"]) == (1, 3)
    states = _states(cli)
    assert [states[i] for i in ids] == ["unknown", "sent", "sent", "sent"]
    rows = raw_sql(f"SELECT id, attempts FROM message WHERE id IN ({listed}) ORDER BY id")
    assert [r[1] for r in rows] == [1, 1, 1]  # the two put back were tried once, not twice
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.received) == ["p1@example.org", "p2@example.org", "p3@example.org"]


def test_a_stopped_sender_puts_back_what_it_had_not_handed_over(settings, outbox, smtp_sink, cli, monkeypatch):
    import threading

    from hpms.services.messages import sender
    from hpms.services.messages.email import SmtpTransport

    ids = [outbox(f"s{i}@example.org") for i in range(5)]
    stop = threading.Event()
    sent_once = SmtpTransport.send

    def send_then_stop(self, **kw):  # the stop comes while the first message is in hand
        stop.set()
        return sent_once(self, **kw)

    monkeypatch.setattr(SmtpTransport, "send", send_then_stop)  # the real server still takes it
    summary = sender.work(dataclasses.replace(settings, smtp_url=smtp_sink.url), stop=stop, interval_s=0)
    assert summary.sent == 1 and len(smtp_sink.received) == 1
    listed = {m["id"]: m for m in ok(cli("messages", "list", "--json"))}
    assert [listed[i]["state"] for i in ids] == ["sent", "queued", "queued", "queued", "queued"]
    assert [listed[i]["attempts"] for i in ids] == [1, 0, 0, 0, 0]


def test_a_second_sender_is_locked_out(cli, outbox, raw_sql, smtp_sink):
    outbox()
    now = dt.datetime.now(dt.UTC).isoformat()
    raw_sql(
        "INSERT INTO job_lock (name, holder, host, pid, acquired_at, heartbeat_at) "
        f"VALUES ('outbox', 'cron', '{socket.gethostname()}', {os.getpid()}, '{now}', '{now}')"
    )
    error_line(
        cli("messages", "send", env={"HPMS_SMTP_URL": smtp_sink.url}), 75, "another outbox sender holds the lock (cron"
    )
    assert smtp_sink.received == []


def test_cancel_and_retry(cli, outbox, smtp_sink, counts):
    queued = outbox()
    failed = outbox("nobody@example.org")
    smtp_sink.refuse.add("nobody@example.org")
    assert ok(cli("messages", "cancel", str(queued), "--json"))["state"] == "cancelled"
    ok(cli("messages", "send", "--json", env={"HPMS_SMTP_URL": smtp_sink.url}))
    assert _states(cli) == {queued: "cancelled", failed: "failed"}
    before = counts("message", "audit_event")
    error_line(cli("messages", "cancel", str(failed)), 4, "only a queued message can be cancelled")
    error_line(cli("messages", "cancel", "9999"), 3, "no message 9999")
    error_line(cli("messages", "retry", str(queued)), 4, "only a failed or unknown message")
    assert counts("message", "audit_event") == before
    smtp_sink.refuse.clear()
    assert ok(cli("messages", "retry", str(failed), "--json"))["state"] == "queued"
    assert ok(cli("messages", "send", "--json", env={"HPMS_SMTP_URL": smtp_sink.url}))["sent"] == 1


def test_who_may_do_what(cli, outbox, as_user, counts, smtp_sink):
    outbox()
    desk = as_user("desk", "front_desk")
    before = counts("message", "audit_event")
    error_line(cli("messages", "send", env={**desk, "HPMS_SMTP_URL": smtp_sink.url}), 5, "may not send the outbox")
    error_line(cli("messages", "setup", "--email-from", "x@example.org", env=desk), 5, "set up messaging")
    assert counts("message", "audit_event") == with_denied(before, 2)
    assert len(ok(cli("messages", "list", "--json", env=desk))) == 1
    assert smtp_sink.received == []


def test_list_bad_state_names_the_option(cli, outbox):
    error_line(cli("messages", "list", "--state", "lost"), 2, "--state", "'lost' is not a message state")
    error_line(cli("messages", "setup", "--email-from", "nope"), 2, "--email-from")


def test_a_sender_killed_while_the_server_holds_a_message_sends_nothing_twice(settings, outbox, smtp_sink, cli):
    ids = [outbox(f"p{i}@example.org", body=f"message {i}") for i in range(5)]
    smtp_sink.hold_s = 0.4
    env = subprocess_env(
        settings.home, None if settings.is_sqlite else settings.database_url, HPMS_SMTP_URL=smtp_sink.url
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpms", "messages", "send", "--json"],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while len(smtp_sink.received) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(smtp_sink.received) == 2, "the sender finished before it could be killed"
    smtp_sink.hold_s = 0.0
    data = ok(cli("messages", "send", "--json", env={"HPMS_SMTP_URL": smtp_sink.url}))
    assert data["found_unknown"] == 1 and data["sent"] == 3
    states = _states(cli)
    assert sorted(states.values()) == ["sent", "sent", "sent", "sent", "unknown"]
    received = smtp_sink.ids()
    assert len(received) == len(set(received)) == 5  # each message reached the server exactly once
    unknown = next(i for i, s in states.items() if s == "unknown")
    assert unknown == ids[1] and any(f"hpms-{unknown}" in mid for mid in received)
    # staff decide: it arrived, so it stays as it is; nothing is sent on its own
    assert ok(cli("messages", "send", "--json", env={"HPMS_SMTP_URL": smtp_sink.url}))["sent"] == 0
    assert len(smtp_sink.ids()) == 5


_DIE_IN_SETTLE = """
import os, signal, sys
from hpms.services.messages import outbox
real, settled = outbox.settle_sent, []
def settle_then_die(ctx, message_id, **kw):  # inside the settle's transaction, its COMMIT not sent
    went = real(ctx, message_id, **kw)
    settled.append(message_id)
    if len(settled) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return went
outbox.settle_sent = settle_then_die
from hpms.cli import main
sys.argv = ["hpms", "messages", "send", "--json"]
main()
"""

_DIE_AFTER_COMMIT = """
import contextlib, os, signal, sys
import hpms.db
real, committed = hpms.db.commit_pipelined, []
@contextlib.contextmanager
def commit_then_die(session):  # the settle committed, the next message not handed over yet
    with real(session):
        yield
    committed.append(1)
    if len(committed) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
hpms.db.commit_pipelined = commit_then_die
from hpms.cli import main
sys.argv = ["hpms", "messages", "send", "--json"]
main()
"""


@pytest.mark.parametrize(
    ("script", "fates", "went"),
    [
        # the second message went and its result was not committed: its fate is unknown
        (_DIE_IN_SETTLE, ["sent", "unknown", "sent", "sent", "sent"], [0, 1, 2, 3, 4]),
        # the second message's result held; the third, next in hand, had not gone (but the
        # next sender cannot know that): unknown, and never sent on its own
        (_DIE_AFTER_COMMIT, ["sent", "sent", "unknown", "sent", "sent"], [0, 1, 3, 4]),
    ],
    ids=["in-the-settle", "after-its-commit"],
)
def test_a_sender_killed_while_it_settles_sends_nothing_twice(settings, outbox, smtp_sink, cli, script, fates, went):
    ids = [outbox(f"k{i}@example.org", body=f"message {i}") for i in range(5)]
    env = subprocess_env(
        settings.home, None if settings.is_sqlite else settings.database_url, HPMS_SMTP_URL=smtp_sink.url
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert len(smtp_sink.received) == 2
    data = ok(cli("messages", "send", "--json", env={"HPMS_SMTP_URL": smtp_sink.url}))
    assert (data["found_unknown"], data["sent"]) == (1, len(went) - 2)
    states = _states(cli)
    assert [states[i] for i in ids] == fates
    received = smtp_sink.ids()
    assert len(received) == len(went)
    for k, mid in enumerate(ids):  # each message reached the server once, or never
        assert sum(f".hpms-{mid}@" in r for r in received) == (1 if k in went else 0), mid
    assert ok(cli("messages", "send", "--json", env={"HPMS_SMTP_URL": smtp_sink.url}))["sent"] == 0
    assert len(smtp_sink.ids()) == len(went)
    assert ok(cli("audit", "verify", "--json"))["ok"] is True
