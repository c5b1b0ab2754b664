"""`hpms messages`: the outbox of emails and SMS to patients, and its sender."""

from __future__ import annotations

from typing import Annotated

import typer

from hpms.commands._common import (
    DEFAULT_LIMIT,
    JsonOpt,
    LimitOpt,
    display_zone,
    emit_object,
    emit_table,
    info,
    note_cut,
    print_json,
    service_context,
    settings,
    stop_on_signals,
)

app = typer.Typer(help="Messages to patients (email, SMS): the outbox and its sender.", no_args_is_help=True)

COLUMNS = [
    ("id", "ID"),
    ("created_at", "Queued"),
    ("mrn", "MRN"),
    ("channel", "Channel"),
    ("template", "Kind"),
    ("recipient", "To"),
    ("state", "State"),
    ("attempts", "Tries"),
    ("sent_at", "Sent"),
    ("error", "Problem"),
]
IdArg = Annotated[int, typer.Argument(help="Message id (see `hpms messages list`).")]


@app.command("send")
def send(
    limit: Annotated[int | None, typer.Option("--limit", help="Send at most this many (default: all due).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what is due; send nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Send the messages that are due (for cron; admin or a service account).

    Takes the outbox lock (exit 75 while another sender runs). Each message is claimed,
    handed to the mail server or SMS provider, and recorded; a failure is retried later with a
    growing delay, a permanent one (a bad address) is not. A sender killed half-way sends
    nothing twice: the message it held shows as `unknown` for staff to check.

    Example: hpms messages send --json
    """
    from hpms.services.messages import sender

    summary = sender.send_due(settings(), limit=limit, dry_run=dry_run)
    if as_json:
        print_json(summary.as_dict())
        return
    due = ", ".join(f"{n} {ch}" for ch, n in sorted(summary.due.items())) or "none"
    if dry_run:
        info(f"due now: {due}")
    else:
        info(
            f"sent {summary.sent}, {summary.retried} to retry later, {summary.failed} failed for good"
            + (f", {summary.found_unknown} left unknown by a sender that stopped" if summary.found_unknown else "")
            + f"; still due: {due}"
        )
    for channel, why in sorted(summary.not_set_up.items()):
        if summary.due.get(channel):
            info(f"{channel} is not set up ({why}): its messages wait in the outbox")


@app.command("worker")
def worker(
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between two looks at the outbox.", min=0.1)
    ] = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Send the outbox continuously (a long-running service; admin or a service account).

    Holds the outbox lock while it runs (exit 75 if a sender or another worker holds it).
    SIGTERM or Ctrl-C stop it after the message in hand; it then prints its totals.

    Example: hpms messages worker --interval 15
    """
    from hpms.services.messages import sender

    stop = stop_on_signals()

    def said(summary: sender.SendSummary) -> None:
        if summary.sent or summary.failed or summary.retried or summary.found_unknown:
            info(
                f"sent {summary.sent}, {summary.retried} to retry, {summary.failed} failed"
                + (f", {summary.found_unknown} unknown" if summary.found_unknown else "")
            )

    totals = sender.work(settings(), stop=stop, interval_s=interval, on_pass=said)
    if as_json:
        print_json(totals.as_dict())
    else:
        info(f"stopped: sent {totals.sent}, {totals.retried} to retry, {totals.failed} failed")


@app.command("list")
def list_(
    state: Annotated[
        str | None,
        typer.Option("--state", help="Only these states, comma-separated (queued, sent, failed, unknown...)."),
    ] = None,
    patient: Annotated[str | None, typer.Option("--patient", help="Only this patient's (MRN).")] = None,
    limit: LimitOpt = DEFAULT_LIMIT,
    as_json: JsonOpt = False,
) -> None:
    """The outbox, newest first: what was queued, sent, or needs a look (failed, unknown).

    Example: hpms messages list --state failed,unknown
    """
    from hpms.services.messages import outbox

    with service_context() as ctx:
        rows = outbox.list_messages(ctx, state=state, patient=patient, limit=limit)
        zone = display_zone(ctx)
    emit_table(rows, COLUMNS, as_json=as_json, title="Messages", zone=zone)
    note_cut(len(rows), limit, what="messages", as_json=as_json)


@app.command("cancel")
def cancel(message: IdArg, as_json: JsonOpt = False) -> None:
    """Withdraw a queued message (or one whose fate is unknown) so that it is never sent.

    Example: hpms messages cancel 12
    """
    from hpms.services.messages import outbox

    with service_context() as ctx:
        out = outbox.cancel(ctx, message)
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"message {out.id} cancelled")


@app.command("retry")
def retry(message: IdArg, as_json: JsonOpt = False) -> None:
    """Queue again a message that failed, or whose fate is unknown once you know it did not arrive.

    Example: hpms messages retry 12
    """
    from hpms.services.messages import outbox

    with service_context() as ctx:
        out = outbox.requeue(ctx, message)
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"message {out.id} queued again")


@app.command("setup")
def setup(
    email_from: Annotated[
        str | None, typer.Option("--email-from", help="From address of the practice's emails.")
    ] = None,
    reply_to: Annotated[str | None, typer.Option("--reply-to", help="Where patients' replies go.")] = None,
    sms_from: Annotated[str | None, typer.Option("--sms-from", help="The practice's number its SMS come from.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show or set the practice's sending identity (admin); the mail server is `smtp_url` in
    the config file (or HPMS_SMTP_URL), the SMS provider `sms_url` (or HPMS_SMS_URL).

    Example: hpms messages setup --email-from frontdesk@riverside.example --reply-to frontdesk@riverside.example
    """
    from hpms.services.messages import sender

    with service_context() as ctx:
        if email_from is None and reply_to is None and sms_from is None:
            out = sender.get_profile(ctx)
        else:
            out = sender.set_profile(ctx, email_from=email_from, reply_to=reply_to, sms_from=sms_from)
    emit_object(out, as_json=as_json)


@app.command("templates")
def templates(as_json: JsonOpt = False) -> None:
    """The wording of each kind of message on each channel, and the placeholders each kind may use.

    Example: hpms messages templates --json
    """
    from hpms.services.messages import templates as t

    with service_context() as ctx:
        rows = [x.as_dict() for x in t.list_templates(ctx)]
    if as_json:
        print_json({"templates": rows, "placeholders": t.PLACEHOLDERS_OF})
        return
    emit_table(
        rows,
        [("name", "Kind"), ("channel", "Channel"), ("custom", "Own"), ("subject", "Subject"), ("body", "Body")],
        as_json=False,
        title="Message templates",
    )
    for kind, names in t.PLACEHOLDERS_OF.items():
        info(f"{kind} placeholders: " + ", ".join("{" + p + "}" for p in names))


@app.command("template")
def template(
    kind: Annotated[str, typer.Argument(help="Kind of message: reminder, statement (email only) or survey.")],
    channel: Annotated[str, typer.Argument(help="email or sms.")],
    body: Annotated[str | None, typer.Option("--body", help="The text, with placeholders such as {date}.")] = None,
    body_file: Annotated[
        str | None, typer.Option("--body-file", help="Read the text from this file (- for stdin).")
    ] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="Subject line of an email.")] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Go back to the built-in wording.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Set the practice's wording of a message (admin); an unknown placeholder is refused.

    Example: hpms messages template reminder sms --body "{practice}: see you {date} at {time}. Reply C to confirm."
    """
    import sys

    from hpms.errors import UsageError
    from hpms.fileio import read_input
    from hpms.services.messages import templates as t

    if sum(x is not None for x in (body, body_file)) + reset != 1:
        raise UsageError("give one of --body, --body-file and --reset")
    if body_file is not None:
        raw = sys.stdin.buffer.read() if body_file == "-" else read_input(body_file, field="body_file")
        body = raw.decode("utf-8", "replace")
    with service_context() as ctx:
        if reset:
            out = t.reset_template(ctx, kind, channel)
        else:
            assert body is not None
            out = t.set_template(ctx, kind, channel, body=body, subject=subject)
    emit_object(out.as_dict(), as_json=as_json)


INBOX_COLUMNS = [
    ("id", "ID"),
    ("received_at", "Received"),
    ("channel", "Channel"),
    ("sender", "From"),
    ("mrn", "MRN"),
    ("appointment_id", "Visit"),
    ("outcome", "Outcome"),
    ("body", "Message"),
    ("note", "Note"),
]


@app.command("inbound")
def inbound(
    source: Annotated[str, typer.Argument(help="A file holding the message, or - for stdin.")],
    as_json: JsonOpt = False,
) -> None:
    """Take in a patient's reply: an SMS as the provider posts it (Twilio's fields, form-encoded
    or JSON) or an email (RFC 5322), e.g. piped from the mail server.

    CONFIRM/C/YES confirms the visit it answers, CANCEL cancels it, STOP/UNSUBSCRIBE withdraws
    consent to that channel; anything else goes to `hpms messages inbox`. A second delivery
    of the same message changes nothing.

    Example: hpms messages inbound reply.eml --json
    """
    import sys

    from hpms.fileio import read_input
    from hpms.services.messages import inbound as replies

    raw = sys.stdin.buffer.read() if source == "-" else read_input(source, field="source")
    incoming = replies.parse(raw)
    with service_context() as ctx:
        out = replies.receive(ctx, incoming)
    if as_json:
        emit_object(out.as_dict(), as_json=True)
        return
    who = f"patient {out.mrn}" if out.mrn else out.sender
    info(
        f"reply {out.id} from {who}: {out.outcome.replace('_', ' ')}"
        + (f" (visit {out.appointment_id})" if out.appointment_id else "")
        + (f"; {out.note}" if out.note else "")
        + (" (delivered before: nothing changed)" if out.duplicate else "")
    )


@app.command("inbox")
def inbox(
    all_: Annotated[bool, typer.Option("--all", help="Also replies acted on or already handled.")] = False,
    limit: LimitOpt = DEFAULT_LIMIT,
    as_json: JsonOpt = False,
) -> None:
    """Patients' replies for staff to read, oldest first: anything but a keyword, a keyword
    without a visit to act on, and senders hpms does not know.

    Example: hpms messages inbox
    """
    from hpms.services.messages import inbound as replies

    with service_context() as ctx:
        rows = [r.as_dict() for r in replies.for_staff(ctx, include_handled=all_, limit=limit)]
        zone = display_zone(ctx)
    emit_table(rows, INBOX_COLUMNS, as_json=as_json, title="Replies", zone=zone)
    note_cut(len(rows), limit, what="replies", as_json=as_json)


@app.command("handled")
def handled(
    reply: Annotated[int, typer.Argument(help="Reply id (see `hpms messages inbox`).")], as_json: JsonOpt = False
) -> None:
    """Mark a reply as read and dealt with; it leaves the inbox.

    Example: hpms messages handled 4
    """
    from hpms.services.messages import inbound as replies

    with service_context() as ctx:
        out = replies.mark_handled(ctx, reply)
    if as_json:
        emit_object(out.as_dict(), as_json=True)
    else:
        info(f"reply {out.id} handled")
