"""`hpms waitlist`: patients who want an earlier visit, and the freed slots offered to them.
Every rule lives in hpms.services.scheduling.waitlist."""

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
    service_context,
)

app = typer.Typer(
    help="The waitlist: patients waiting for an earlier visit, and freed slots to offer them.", no_args_is_help=True
)

COLUMNS = [
    ("id", "ID"),
    ("patient", "Patient"),
    ("type", "Type"),
    ("provider", "Provider"),
    ("location", "Location"),
    ("earliest", "Earliest"),
    ("latest", "Latest"),
    ("status", "Status"),
    ("created_at", "Waiting since"),
    ("appointment_id", "Appointment"),
    ("note", "Note"),
]
OFFER_COLUMNS = [
    ("entry_id", "Entry"),
    ("slot_id", "Slot"),
    ("patient", "Patient"),
    ("type", "Type"),
    ("start", "Start"),
    ("end", "End"),
    ("provider", "Provider"),
    ("location", "Location"),
    ("waiting_since", "Waiting since"),
]

EntryArg = Annotated[str, typer.Argument(help="Waitlist entry id.")]


@app.command("add")
def add(
    patient: Annotated[str | None, typer.Option("--patient", help="MRN or numeric id of the patient.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Appointment type wanted, by name or id.")] = None,
    provider: Annotated[str | None, typer.Option("--provider", help="Only with this provider.")] = None,
    location: Annotated[str | None, typer.Option("--location", help="Only at this location.")] = None,
    earliest: Annotated[str | None, typer.Option("--earliest", help="Not before this day (YYYY-MM-DD).")] = None,
    latest: Annotated[str | None, typer.Option("--latest", help="Not after this day (YYYY-MM-DD).")] = None,
    note: Annotated[str | None, typer.Option("--note", help="A note for the front desk.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Put a patient on the waitlist for an appointment type and print the entry id.

    Example: hpms waitlist add --patient 0100001 --type "Follow-up" --provider Okafor --latest +30
    """
    from hpms.services.scheduling import waitlist

    with service_context() as ctx:
        entry = waitlist.add(
            ctx,
            patient=patient,
            type=type_,
            provider=provider,
            location=location,
            earliest=earliest,
            latest=latest,
            note=note,
        )
    if as_json:
        emit_object(entry, as_json=True)
        return
    typer.echo(entry.id)
    info(f"added {entry.patient} to the waitlist for {entry.type!r} (entry {entry.id})")


@app.command("list")
def list_(
    status: Annotated[str, typer.Option("--status", help="open (default), filled, removed or all.")] = "open",
    as_json: JsonOpt = False,
) -> None:
    """Waitlist entries, longest waiting first.

    Example: hpms waitlist list --status all
    """
    from hpms.services.scheduling import waitlist

    with service_context() as ctx:
        rows = waitlist.list_entries(ctx, status=status)
        zone = display_zone(ctx)
    emit_table(rows, COLUMNS, as_json=as_json, title="Waitlist", zone=zone)


@app.command("remove")
def remove(entry: EntryArg, as_json: JsonOpt = False) -> None:
    """Take a patient off the waitlist (the entry stays on file as removed).

    Example: hpms waitlist remove 7
    """
    from hpms.services.scheduling import waitlist

    with service_context() as ctx:
        out = waitlist.remove(ctx, entry)
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"removed waitlist entry {out.id} ({out.patient}, {out.type!r})")


@app.command("offers")
def offers(
    limit: LimitOpt = DEFAULT_LIMIT,
    as_json: JsonOpt = False,
) -> None:
    """Freed slots that fit waiting patients, longest waiting patient first, earliest slot first.

    Example: hpms waitlist offers --json
    """
    from hpms.services.scheduling import waitlist

    with service_context() as ctx:
        rows = waitlist.offers(ctx, limit=limit)
        zone = display_zone(ctx)
    if as_json:
        emit_table(rows, [], as_json=True)
        return
    flat = [
        {**o.model_dump(), "start": o.start.strftime("%Y-%m-%d %H:%M"), "end": o.end.strftime("%H:%M")} for o in rows
    ]
    emit_table(flat, OFFER_COLUMNS, as_json=False, title="Waitlist offers", zone=zone)
    note_cut(len(rows), limit, what="offers")


@app.command("fill")
def fill(
    entry: EntryArg,
    slot: Annotated[str | None, typer.Option("--slot", help="A freed slot id from `hpms waitlist offers`.")] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Or a start time, 'YYYY-MM-DD HH:MM' in the location's time zone.")
    ] = None,
    provider: Annotated[
        str | None, typer.Option("--provider", help="With --at: the provider (default: the entry's).")
    ] = None,
    location: Annotated[
        str | None,
        typer.Option("--location", help="With --at: the location (default: the entry's, else the provider's)."),
    ] = None,
    room: Annotated[str | None, typer.Option("--room", help="Room id or name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Book a waiting patient, into a freed slot or at a time given, and print the appointment id.

    Example: hpms waitlist fill 7 --slot 12
    """
    from hpms.services.scheduling import waitlist

    with service_context() as ctx:
        result = waitlist.fill(ctx, entry, slot=slot, at=at, provider=provider, location=location, room=room)
    appt = result.booked[0]
    if as_json:
        emit_object(appt, as_json=True)
        return
    typer.echo(appt.id)
    start = appt.start
    info(
        f"filled waitlist entry {entry}: booked appointment {appt.id} on {start:%Y-%m-%d %H:%M} "
        f"with {appt.provider} for {appt.patient}"
    )
