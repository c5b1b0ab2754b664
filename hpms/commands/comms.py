"""`hpms comms`: a patient's communication log (messages, calls, letters, notes)."""

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
    note_cut,
    service_context,
)

app = typer.Typer(help="A patient's communication log: messages sent, calls, letters and notes.", no_args_is_help=True)

PatientArg = Annotated[str, typer.Argument(help="MRN of the patient.")]
ICONS = {
    "sent": "✓",
    "delivered": "✓",
    "queued": "…",
    "sending": "…",
    "failed": "✗",
    "unknown": "?",
    "skipped": "–",
    "cancelled": "–",
}
COLUMNS = [
    ("at", "When"),
    ("icon", ""),
    ("kind", "What"),
    ("direction", "Way"),
    ("state", "State"),
    ("summary", "Summary"),
    ("by", "By"),
]


@app.command("log")
def log(patient: PatientArg, limit: LimitOpt = DEFAULT_LIMIT, as_json: JsonOpt = False) -> None:
    """Every message to the patient and every contact staff recorded, newest first.

    Example: hpms comms log 0100001
    """
    from hpms.services.messages import comms

    with service_context() as ctx:
        rows = [e.as_dict() for e in comms.log(ctx, patient, limit=limit)]
        zone = display_zone(ctx)
    if not as_json:
        rows = [{**r, "icon": ICONS.get(str(r["state"]), "•")} for r in rows]
    emit_table(rows, COLUMNS, as_json=as_json, title="Communication log", zone=zone)
    note_cut(len(rows), limit, what="entries", as_json=as_json)


@app.command("add")
def add(
    patient: PatientArg,
    kind: Annotated[str, typer.Option("--kind", help="call, letter, note or visit.")],
    text: Annotated[str, typer.Option("--text", help="What was said or done.")],
    direction: Annotated[
        str, typer.Option("--direction", help="in (the patient reached us), out (we reached them) or none.")
    ] = "none",
    at: Annotated[str | None, typer.Option("--at", help="When, local time (default: now).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a call, a letter, a note or a visit in the patient's communication log.

    Example: hpms comms add 0100001 --kind call --direction in --text "Asked to move Tuesday's visit"
    """
    from hpms.services.messages import comms

    with service_context() as ctx:
        out = comms.add(ctx, patient, kind=kind, text=text, direction=direction, at=at)
    emit_object(out.as_dict(), as_json=as_json)
