"""`hpms appointment-types`: kinds of visit, with their length and buffer."""

from __future__ import annotations

from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_object, emit_table, info, service_context

app = typer.Typer(
    help="Appointment types: length, buffer, room and billing code of each kind of visit.", no_args_is_help=True
)

COLUMNS = [
    ("id", "ID"),
    ("name", "Name"),
    ("duration_min", "Minutes"),
    ("buffer_min", "Buffer"),
    ("self_bookable", "Self-bookable"),
    ("needs_room", "Room"),
    ("default_code", "Code"),
    ("color", "Color"),
    ("active", "Active"),
]


@app.command("add")
def add(
    name: Annotated[str | None, typer.Option("--name", help="Name of the type, unique in the practice.")] = None,
    duration: Annotated[
        str | None, typer.Option("--duration", metavar="MIN", help="Length in minutes (5-480).")
    ] = None,
    buffer: Annotated[
        str | None,
        typer.Option("--buffer", metavar="MIN", help="Minutes kept free after the visit (0-120, default 0)."),
    ] = None,
    color: Annotated[
        str | None, typer.Option("--color", help="Calendar color: #rrggbb or a name such as teal.")
    ] = None,
    self_bookable: Annotated[bool, typer.Option("--self-bookable", help="Patients may book it themselves.")] = False,
    needs_room: Annotated[bool, typer.Option("--needs-room", help="Every visit of this type takes a room.")] = False,
    code: Annotated[str | None, typer.Option("--code", help="Default CPT/HCPCS code billed, e.g. 99213.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an appointment type (admin).

    Example: hpms appointment-types add --name "Follow-up" --duration 20 --buffer 5 --code 99213
    """
    from hpms.services.scheduling import resources

    with service_context() as ctx:
        out = resources.add_type(
            ctx,
            name=name,
            duration_min=duration,
            buffer_min=buffer if buffer is not None else 0,
            color=color,
            self_bookable=self_bookable,
            needs_room=needs_room,
            default_code=code,
        )
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(
            f"added appointment type {out.id} {out.name!r} ({out.duration_min} min"
            f"{f' + {out.buffer_min} min buffer' if out.buffer_min else ''})"
        )


@app.command("list")
def list_(
    include_inactive: Annotated[bool, typer.Option("--all", help="Also inactive types.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the appointment types, by name.

    Example: hpms appointment-types list --json
    """
    from hpms.services.scheduling import resources

    with service_context() as ctx:
        rows = resources.list_types(ctx, include_inactive=include_inactive)
    emit_table(rows, COLUMNS, as_json=as_json, title="Appointment types")
