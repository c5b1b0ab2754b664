"""`hpms hl7`: HL7 v2 interfaces: the receivers of SIU and ADT messages, their sender, the MLLP
listener for ADT messages from other systems, and what it staged for review."""

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

app = typer.Typer(
    help="HL7 v2 interfaces: SIU and ADT messages to other systems over MLLP or into a folder, ADT messages in.\n\n"
    "`receivers`: where the messages go; `inbound`: what the listener received and staged for review.",
    no_args_is_help=True,
)
receivers_app = typer.Typer(
    help="The systems that get hpms's HL7 messages: an MLLP listener (host, port) or a folder.", no_args_is_help=True
)
app.add_typer(receivers_app, name="receivers")
inbound_app = typer.Typer(
    help="ADT messages received: those staged for review (the patient was uncertain), applied or dismissed.",
    no_args_is_help=True,
)
app.add_typer(inbound_app, name="inbound")

RECEIVER_COLUMNS = [
    ("name", "Name"),
    ("kind", "Kind"),
    ("host", "Host"),
    ("port", "Port"),
    ("folder", "Folder"),
    ("events", "Events"),
    ("receiving_app", "App"),
    ("receiving_facility", "Facility"),
    ("last_ack_at", "Last ACK"),
]
MESSAGE_COLUMNS = [
    ("id", "ID"),
    ("created_at", "Queued"),
    ("receiver", "Receiver"),
    ("mrn", "MRN"),
    ("event", "Event"),
    ("control_id", "Control ID"),
    ("state", "State"),
    ("attempts", "Tries"),
    ("ack_code", "ACK"),
    ("error", "Problem"),
]
INBOUND_COLUMNS = [
    ("id", "ID"),
    ("received_at", "Received"),
    ("sending_app", "From"),
    ("control_id", "Control ID"),
    ("event", "Event"),
    ("outcome", "Outcome"),
    ("mrn", "MRN"),
    ("note", "Why"),
]
NameArg = Annotated[str, typer.Argument(help="The receiver's name.")]
IdArg = Annotated[int, typer.Argument(help="Message id (see `hpms hl7 list`).")]
InboundIdArg = Annotated[int, typer.Argument(help="Id of the message received (see `hpms hl7 inbound list`).")]


@receivers_app.command("add")
def receivers_add(
    name: NameArg,
    host: Annotated[str | None, typer.Option("--host", help="Host of the receiver's MLLP listener.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Its TCP port.")] = None,
    folder: Annotated[
        str | None, typer.Option("--folder", help="Write each message into this folder instead (one file each).")
    ] = None,
    events: Annotated[str, typer.Option("--events", help="The events it gets: siu, adt or siu,adt.")] = "siu,adt",
    receiving_app: Annotated[
        str | None, typer.Option("--app", help="Its application name in MSH-5 (default: NAME in capitals).")
    ] = None,
    receiving_facility: Annotated[
        str | None, typer.Option("--facility", help="Its facility in MSH-6 (default: NAME in capitals).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a receiver of HL7 messages, over MLLP (--host and --port) or into --folder (admin).

    From now on each visit booked, moved, changed, cancelled or missed (siu) and each patient
    registered, changed or merged (adt) queues a message for it; `hpms hl7 send` sends them.

    Example: hpms hl7 receivers add ehr --host 10.0.0.5 --port 2575 --events siu,adt
    """
    from hpms.services.interop.hl7 import receivers

    with service_context() as ctx:
        out = receivers.add(
            ctx,
            name=name,
            host=host,
            port=port,
            folder=folder,
            events=events,
            receiving_app=receiving_app,
            receiving_facility=receiving_facility,
        )
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"receiver {out.name} added ({out.events})")


@receivers_app.command("list")
def receivers_list(as_json: JsonOpt = False) -> None:
    """The receivers of HL7 messages.

    Example: hpms hl7 receivers list --json
    """
    from hpms.services.interop.hl7 import receivers

    with service_context() as ctx:
        rows = receivers.list_receivers(ctx)
        zone = display_zone(ctx)
    emit_table(rows, RECEIVER_COLUMNS, as_json=as_json, title="HL7 receivers", zone=zone)


@receivers_app.command("remove")
def receivers_remove(name: NameArg, as_json: JsonOpt = False) -> None:
    """Stop sending to a receiver; what was still queued for it is withdrawn (admin).

    Example: hpms hl7 receivers remove ehr
    """
    from hpms.services.interop.hl7 import receivers

    with service_context() as ctx:
        out = receivers.remove(ctx, name)
    if as_json:
        print_json(out)
    else:
        info(f"receiver {out['name']} removed; {out['withdrawn']} queued message(s) withdrawn")


def _said(summary: object) -> str:
    d = summary.as_dict()  # type: ignore[attr-defined]
    return (
        f"sent {d['sent']}, {d['retried']} to retry later, {d['failed']} failed"
        + (f", {d['found_unknown']} left unknown by a sender that stopped" if d["found_unknown"] else "")
        + f"; still due: {d['due']}"
    )


@app.command("send")
def send(
    limit: Annotated[int | None, typer.Option("--limit", help="Send at most this many (default: all due).")] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for each acknowledgement.", min=0.1)
    ] = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Send the HL7 messages that are due (for cron; admin or a service account).

    Takes the HL7 outbox lock (exit 75 while another sender runs). Each message goes to its
    receiver over MLLP and waits for the ACK (AA: sent; AE or AR: failed, with the receiver's
    words), or is written into the receiver's folder. No answer in time or no connection:
    tried again later with a growing delay. A patient's messages go in order.

    Example: hpms hl7 send --json
    """
    from hpms.services.interop.hl7 import outbound

    summary = outbound.send_due(settings(), limit=limit, timeout=timeout)
    if as_json:
        print_json(summary.as_dict())
    else:
        info(_said(summary))


@app.command("worker")
def worker(
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between two looks at the HL7 outbox.", min=0.1)
    ] = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Send the HL7 outbox continuously (a long-running service; admin or a service account).

    Holds the HL7 outbox lock while it runs (exit 75 if a sender holds it). SIGTERM or Ctrl-C
    stop it after the message in hand; it then prints its totals.

    Example: hpms hl7 worker --interval 15
    """
    from hpms.services.interop.hl7 import outbound

    stop = stop_on_signals()

    def said(summary: outbound.Hl7SendSummary) -> None:
        if summary.sent or summary.failed or summary.retried or summary.found_unknown:
            info(_said(summary))

    totals = outbound.work(settings(), stop=stop, interval_s=interval, on_pass=said)
    if as_json:
        print_json(totals.as_dict())
    else:
        info(f"stopped: {_said(totals)}")


@app.command("listen")
def listen(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port to listen on (0: any free one).")] = 2575,
    as_json: JsonOpt = False,
) -> None:
    """Take ADT messages (A04, A08, A31) over MLLP until SIGTERM or Ctrl-C (admin or a service account).

    Each message is recorded, then applied: the patient is updated when the match is certain
    (an MRN of this practice, or the exact name and date of birth), registered when nobody
    similar is on file, else staged for review (`hpms hl7 inbound list`). Answers ACK AA, AE
    (recorded, refused) or AR (not taken, nothing written). One line per message on stderr,
    naming ids, never a patient. With --json, one JSON line on stdout once it listens (the
    address and port: useful with --port 0).

    Example: hpms hl7 listen --host 127.0.0.1 --port 2575
    """
    from hpms.errors import ValidationError
    from hpms.services.interop.hl7 import inbound, listener

    if not 0 <= port <= 65535:
        raise ValidationError("port", f"{port} is not a TCP port (0-65535)")
    if not host.strip():
        raise ValidationError("host", "is empty")
    stop = stop_on_signals()

    def ready(bound_host: str, bound_port: int) -> None:
        if as_json:  # one line, flushed: a supervisor reads where it listens as it starts
            import json

            print(json.dumps({"listening": True, "host": bound_host, "port": bound_port}), flush=True)
        info(f"hpms hl7 listen: on {bound_host}:{bound_port}")

    def said(answer: inbound.Answer) -> None:
        which = f"message {answer.inbound_id} " if answer.inbound_id else ""
        info(f"hl7: {which}{answer.outcome or 'not taken'}: ACK {answer.code}")

    answered = listener.listen(settings(), host=host, port=port, stop=stop, on_ready=ready, on_message=said)
    info(f"stopped: {answered} message(s) answered")


@app.command("list")
def list_(
    state: Annotated[
        str | None, typer.Option("--state", help="Only these states, comma-separated (queued, sent, failed...).")
    ] = None,
    receiver: Annotated[str | None, typer.Option("--receiver", help="Only this receiver's.")] = None,
    limit: LimitOpt = DEFAULT_LIMIT,
    as_json: JsonOpt = False,
) -> None:
    """The HL7 outbox, newest first: what was queued, sent, or needs a look (failed, unknown).

    Example: hpms hl7 list --state failed,unknown
    """
    from hpms.services.interop.hl7 import outbound

    with service_context() as ctx:
        rows = outbound.list_messages(ctx, state=state, receiver=receiver, limit=limit)
        zone = display_zone(ctx)
    emit_table(rows, MESSAGE_COLUMNS, as_json=as_json, title="HL7 messages", zone=zone)
    note_cut(len(rows), limit, what="messages", as_json=as_json)


@app.command("resend")
def resend(message: IdArg, as_json: JsonOpt = False) -> None:
    """Queue again a message that failed (or whose fate is unknown), with its control id (admin).

    Example: hpms hl7 resend 12
    """
    from hpms.services.interop.hl7 import outbound

    with service_context() as ctx:
        out = outbound.resend(ctx, message)
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"HL7 message {out.id} queued again")


@inbound_app.command("list")
def inbound_list(
    show_all: Annotated[bool, typer.Option("--all", help="Every message received, not only those to review.")] = False,
    limit: LimitOpt = DEFAULT_LIMIT,
    as_json: JsonOpt = False,
) -> None:
    """The ADT messages staged for review (newest first), with why the patient was uncertain.

    Example: hpms hl7 inbound list --all --json
    """
    from hpms.services.interop.hl7 import inbound

    with service_context() as ctx:
        rows = inbound.list_inbound(ctx, everything=show_all, limit=limit)
        zone = display_zone(ctx)
    emit_table(rows, INBOUND_COLUMNS, as_json=as_json, title="HL7 messages received", zone=zone)
    note_cut(len(rows), limit, what="messages", as_json=as_json)


@inbound_app.command("accept")
def inbound_accept(
    message: InboundIdArg,
    patient: Annotated[str | None, typer.Option("--patient", help="The patient (MRN) it is about.")] = None,
    new: Annotated[bool, typer.Option("--new", help="It is about a patient not on file: register them.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply a staged message to the patient it is about, or as a new patient (admin, front desk).

    Example: hpms hl7 inbound accept 3 --patient 0100001
    """
    from hpms.services.interop.hl7 import inbound

    with service_context() as ctx:
        out = inbound.accept(ctx, message, patient=patient, new=new)
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"HL7 message {out.id} applied: {out.outcome}")


@inbound_app.command("dismiss")
def inbound_dismiss(message: InboundIdArg, as_json: JsonOpt = False) -> None:
    """Let a staged message go without applying it (admin, front desk).

    Example: hpms hl7 inbound dismiss 3
    """
    from hpms.services.interop.hl7 import inbound

    with service_context() as ctx:
        out = inbound.dismiss(ctx, message)
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"HL7 message {out.id} dismissed")
