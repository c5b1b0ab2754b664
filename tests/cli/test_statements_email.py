"""Statements by email: `hpms statements generate --email` and `hpms statements send` queue one
message per patient with the statement attached (encrypted until sent), delivered by a real
SMTP server on loopback; patients without consent or an address are skipped with the reason;
a statement is never queued twice; bad input is refused with nothing queued."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.cli.helpers import error_line, ok
from tests.services import accounts

D = dt.date
FROM = "billing@riverside.example"
REPLY = "accounts@riverside.example"
QUEUE = ("message", "message_attachment", "audit_event")


@pytest.fixture
def owing(cli, ctx_for):
    """Ida (agrees to email) owes 40.00, Otis (has an address, no consent) 30.00, Una (agrees,
    no address) 25.00; the practice sends from FROM with replies to REPLY."""
    payer = accounts.setup(ctx_for)
    ida = accounts.patient(ctx_for, "Ida", "Quill", email="ida.quill@example.org", consent_email=True)
    otis = accounts.patient(ctx_for, "Otis", "Reed", email="otis.reed@example.org")
    una = accounts.patient(ctx_for, "Una", "Stone", consent_email=True)
    accounts.visit(ctx_for, ida, payer, D(2026, 3, 1), paid="60.00", adjusted="20.00", to_patient="20.00")
    accounts.visit(ctx_for, ida, payer, D(2026, 4, 1), paid="60.00", adjusted="20.00", to_patient="20.00")
    accounts.visit(ctx_for, otis, payer, D(2026, 2, 1), paid="50.00", adjusted="20.00", to_patient="30.00")
    accounts.visit(ctx_for, una, payer, D(2026, 2, 1), paid="55.00", adjusted="20.00", to_patient="25.00")
    ok(cli("messages", "setup", "--email-from", FROM, "--reply-to", REPLY, "--json"))
    return {"ida": ida, "otis": otis, "una": una}


def _messages(cli) -> list[dict]:
    return ok(cli("messages", "list", "--json"))


def test_generate_email_and_send_to_the_mail_server(cli, owing, smtp_sink, tmp_path, raw_sql, counts):
    out = tmp_path / "statements"
    out.mkdir()
    run = ok(cli("statements", "generate", "--out", str(out), "--older-than", "0d", "--email", "--json"))
    assert run["statements"] == 3
    emailed = run["emailed"]
    by_mrn = {r["mrn"]: r for r in emailed["statements"]}
    assert (emailed["queued"], emailed["skipped"], emailed["already_queued"]) == (1, 2, 0)
    assert by_mrn[owing["ida"]]["outcome"] == "queued"
    assert by_mrn[owing["otis"]]["outcome"] == by_mrn[owing["una"]]["outcome"] == "skipped"
    assert by_mrn[owing["otis"]]["reason"] == "the patient has not agreed to email"
    assert by_mrn[owing["una"]]["reason"] == "the patient has no email address"
    ida = by_mrn[owing["ida"]]
    filename = next(f["filename"] for f in run["files"] if f["mrn"] == owing["ida"])
    # the file is kept encrypted in the outbox, not as its base64
    [(name, kind, size, data_enc)] = raw_sql(
        f"SELECT filename, content_type, size, data_enc FROM message_attachment WHERE message_id = {ida['message_id']}"
    )
    assert (name, kind) == (filename, "application/pdf") and size == (out / filename).stat().st_size
    assert "JVBERi0" not in data_enc and ":" in data_enc  # base64 of "%PDF-"; key id prefix
    # one audit event per statement queued, naming the patient and the statement
    events = [e for e in ok(cli("audit", "log", "--json")) if e["entity"] == "statement" and e["action"] == "email"]
    assert [(e["entity_id"], e["patient_id"] is not None) for e in events] == [(str(ida["statement_id"]), True)]
    assert f"message {ida['message_id']}" in events[0]["detail"]

    sent = ok(cli("messages", "send", "--json", env={"HPMS_SMTP_URL": smtp_sink.url}))
    assert (sent["sent"], sent["failed"], sent["retried"]) == (1, 0, 0)
    [got] = smtp_sink.received
    assert got.rcpt_tos == ["ida.quill@example.org"] and got.mail_from == FROM
    mail = got.message
    assert (mail["To"], mail["From"], mail["Reply-To"], mail["Cc"]) == ("ida.quill@example.org", FROM, REPLY, None)
    assert mail["Subject"].startswith("Your statement from ") and len(mail["Subject"]) > len("Your statement from ")
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Dear Ida," in text and "40.00" in text and f"{ida['statement_id']:06d}" in text
    assert "Quill" not in text and "99213" not in text  # only what the template names
    [part] = list(mail.iter_attachments())
    assert part.get_filename() == filename and part.get_content_type() == "application/pdf"
    pdf = part.get_content()
    assert pdf.startswith(b"%PDF") and pdf == (out / filename).read_bytes()
    listed = {m["id"]: m for m in _messages(cli)}
    assert listed[ida["message_id"]]["state"] == "sent" and listed[ida["message_id"]]["template"] == "statement"

    # sending the same statements again queues nothing twice
    before = counts(*QUEUE[:2])
    again = ok(cli("statements", "send", "--json"))
    assert (again["queued"], again["already_queued"], again["skipped"]) == (0, 1, 2)
    assert {r["mrn"]: r["outcome"] for r in again["statements"]}[owing["ida"]] == "already_queued"
    assert ok(cli("statements", "send", str(ida["statement_id"]), "--json"))["already_queued"] == 1
    assert counts(*QUEUE[:2]) == before
    r = cli("statements", "send")
    assert r.exit_code == 0 and "queued 0 statement(s) by email, 1 queued before, 2 skipped" in r.stderr
    assert f"patient {owing['otis']}) not emailed: the patient has not agreed to email" in r.stderr


def test_send_a_statement_generated_earlier_as_html(cli, owing, smtp_sink, tmp_path, counts):
    out = tmp_path / "st"
    out.mkdir()
    run = ok(cli("statements", "generate", "--out", str(out), "--older-than", "0d", "--format", "html", "--json"))
    assert run["emailed"] is None and counts("message")["message"] == 0
    ok(cli("patients", "update", owing["otis"], "--consent-email", "--json"))
    before = counts(*QUEUE)
    dry = ok(cli("statements", "send", "--patient", owing["otis"], "--dry-run", "--json"))
    assert dry["dry_run"] and [(r["mrn"], r["outcome"]) for r in dry["statements"]] == [(owing["otis"], "would_queue")]
    assert counts("message", "message_attachment") == {k: before[k] for k in ("message", "message_attachment")}
    done = ok(cli("statements", "send", "--patient", owing["otis"], "--json"))
    assert [(r["outcome"], r["recipient"]) for r in done["statements"]] == [("queued", "otis.reed@example.org")]
    ok(cli("messages", "send", "--json", env={"HPMS_SMTP_URL": smtp_sink.url}))
    [got] = smtp_sink.received
    assert got.rcpt_tos == ["otis.reed@example.org"]
    [part] = list(got.message.iter_attachments())
    assert part.get_content_type() == "text/html" and part.get_filename().endswith(".html")
    assert f"MRN {owing['otis']}" in part.get_content() and owing["ida"] not in part.get_content()
    assert "30.00" in got.message.get_body(preferencelist=("plain",)).get_content()


def test_the_practice_wording_is_used_and_checked_when_saved(cli, owing, tmp_path, counts):
    before = counts("message_template", "audit_event")
    for body, words in (
        ("Your {diagnosis} bill", ["--body", "unknown placeholder {diagnosis}", "{amount_due}"]),
        ("See you {date}", ["--body", "unknown placeholder {date}"]),
    ):
        error_line(cli("messages", "template", "statement", "email", "--body", body), 2, *words)
    error_line(cli("messages", "template", "statement", "sms", "--body", "x"), 2, "CHANNEL", "email only")
    # a reminder may not name an amount
    error_line(cli("messages", "template", "reminder", "email", "--body", "{amount_due}"), 2, "{amount_due}")
    assert counts("message_template", "audit_event") == before
    ok(
        cli(
            "messages",
            "template",
            "statement",
            "email",
            "--subject",
            "Statement {statement_number}",
            "--body",
            "Hello {first_name}, you owe {amount_due} to {practice} ({location_phone}).",
            "--json",
        )
    )
    out = tmp_path / "st"
    out.mkdir()
    ok(cli("statements", "generate", "--out", str(out), "--older-than", "0d", "--json"))
    done = ok(cli("statements", "send", "--json"))
    [queued] = [r for r in done["statements"] if r["outcome"] == "queued"]
    [msg] = [m for m in _messages(cli) if m["id"] == queued["message_id"]]
    assert msg["subject"] == f"Statement {queued['statement_id']:06d}"


def test_bad_input_queues_nothing(cli, owing, tmp_path, counts):
    out = tmp_path / "st"
    out.mkdir()
    before = counts("statement", *QUEUE)
    error_line(
        cli("statements", "generate", "--out", str(out), "--older-than", "0d", "--format", "txt", "--email"),
        2,
        "--format",
        "does not go by email",
    )
    assert counts("statement", *QUEUE) == before and list(out.iterdir()) == []
    ok(cli("statements", "generate", "--out", str(out), "--older-than", "0d", "--json"))
    before = counts("statement", *QUEUE)
    error_line(cli("statements", "send", "--patient", "9999999"), 3, "--patient")
    error_line(cli("statements", "send", "4242"), 3, "STATEMENT", "no statement 4242")
    error_line(cli("statements", "send", "1", "--patient", owing["ida"]), 2, "--patient", "not both")
    assert counts("statement", *QUEUE) == before
    r = cli("patients", "register", "--first-name", "Zed", "--last-name", "Young", "--dob", "1990-01-01", "--json")
    zed = ok(r)["mrn"]
    before = counts("statement", *QUEUE)
    error_line(cli("statements", "send", "--patient", zed), 3, "--patient", "has no statement")
    assert counts("statement", *QUEUE) == before


def test_only_statement_staff_send_them(cli, owing, as_user, counts, tmp_path):
    out = tmp_path / "st"
    out.mkdir()
    ok(cli("statements", "generate", "--out", str(out), "--older-than", "0d", "--json"))
    before = counts("message")
    error_line(cli("statements", "send", env=as_user("desk", "front_desk")), 5, "desk")
    assert counts("message") == before
