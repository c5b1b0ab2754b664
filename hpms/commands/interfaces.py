"""`hpms interfaces`: the state of the practice's interfaces with other systems."""

from __future__ import annotations

import typer

from hpms.commands._common import JsonOpt, display_zone, emit_table, service_context

app = typer.Typer(
    help="The interfaces with other systems: what each HL7 receiver has queued, failed and sent.", no_args_is_help=True
)

COLUMNS = [
    ("receiver", "Receiver"),
    ("kind", "Kind"),
    ("to", "To"),
    ("events", "Events"),
    ("queued", "Queued"),
    ("failed", "Failed"),
    ("sent", "Sent"),
    ("last_ack_at", "Last ACK"),
    ("last_ack_code", "ACK"),
]


@app.command("status")
def status(as_json: JsonOpt = False) -> None:
    """Per HL7 receiver: messages queued (or being sent), failed (or of unknown fate), sent, and the last ACK.

    Example: hpms interfaces status --json
    """
    from hpms.services.interop.hl7 import outbound

    with service_context() as ctx:
        rows = outbound.status(ctx)
        zone = display_zone(ctx)
    emit_table(rows, COLUMNS, as_json=as_json, title="Interfaces", zone=zone)
