"""`hpms rooms`: exam and procedure rooms (and equipment) at each location."""

from __future__ import annotations

from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_object, emit_table, info, service_context

app = typer.Typer(help="Rooms and equipment at each location.", no_args_is_help=True)

COLUMNS = [("id", "ID"), ("location", "Location"), ("name", "Name"), ("kind", "Kind"), ("active", "Active")]


@app.command("add")
def add(
    location: Annotated[
        str | None, typer.Option("--location", help="Location id or name (default: the only one).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Name of the room, unique at its location.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="exam (default), procedure, equipment or other.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a room at a location (admin).

    Example: hpms rooms add --location Main --name "Exam 1" --kind exam
    """
    from hpms.services.scheduling import resources

    with service_context() as ctx:
        out = resources.add_room(ctx, location=location, name=name, kind=kind)
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"added room {out.id} {out.name!r} ({out.kind}) at {out.location}")


@app.command("list")
def list_(
    location: Annotated[str | None, typer.Option("--location", help="Only the rooms of this location.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the rooms, by location and name.

    Example: hpms rooms list --location Main
    """
    from hpms.services.scheduling import resources

    with service_context() as ctx:
        rows = resources.list_rooms(ctx, location=location)
    emit_table(rows, COLUMNS, as_json=as_json, title="Rooms")
