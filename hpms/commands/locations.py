"""`hpms locations`: the practice's sites and their time zones."""

from __future__ import annotations

from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_object, emit_table, info, service_context

app = typer.Typer(help="Locations (sites) of the practice.", no_args_is_help=True)

COLUMNS = [("id", "ID"), ("name", "Name"), ("tz", "Time zone"), ("city", "City"), ("phone", "Phone"), ("npi", "NPI")]

Name = Annotated[str | None, typer.Option("--name", help="Name of the location.")]
Tz = Annotated[str | None, typer.Option("--tz", help="IANA time zone, e.g. America/Chicago.")]
Line1 = Annotated[str | None, typer.Option("--address-line1", help="Street address.")]
Line2 = Annotated[str | None, typer.Option("--address-line2", help="Suite, floor...")]
City = Annotated[str | None, typer.Option("--city")]
State = Annotated[str | None, typer.Option("--state")]
Postal = Annotated[str | None, typer.Option("--postal-code")]
Country = Annotated[str | None, typer.Option("--country", help="Two-letter country code.")]
Phone = Annotated[str | None, typer.Option("--phone")]
Npi = Annotated[str | None, typer.Option("--npi", help="Group (type 2) NPI, validated.")]
Pos = Annotated[
    str | None, typer.Option("--place-of-service", help="CMS place-of-service code of its visits (11 office).")
]


@app.command("add")
def add(
    name: Name = None,
    tz: Tz = None,
    address_line1: Line1 = None,
    address_line2: Line2 = None,
    city: City = None,
    state: State = None,
    postal_code: Postal = None,
    country: Country = None,
    phone: Phone = None,
    npi: Npi = None,
    place_of_service: Pos = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a location (admin).

    Example: hpms locations add --name "Lakeside Clinic" --tz America/Chicago --city Chicago --phone 312-555-0100
    """
    from hpms.services.platform import org

    with service_context() as ctx:
        loc = org.add_location(
            ctx,
            name=name,
            tz=tz,
            address_line1=address_line1,
            address_line2=address_line2,
            city=city,
            state=state,
            postal_code=postal_code,
            country=country,
            phone=phone,
            npi=npi,
            place_of_service=place_of_service,
        )
    if as_json:
        emit_object(loc, as_json=True)
    else:
        info(f"added location {loc.id} {loc.name!r} ({loc.tz})")


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List the locations.

    Example: hpms locations list --json
    """
    from hpms.services.platform import org

    with service_context() as ctx:
        rows = org.list_locations(ctx)
    emit_table(rows, COLUMNS, as_json=as_json, title="Locations")


@app.command("show")
def show(location: Annotated[str, typer.Argument(help="Location id or name.")], as_json: JsonOpt = False) -> None:
    """Show one location.

    Example: hpms locations show "Lakeside Clinic"
    """
    from hpms.services.platform import org

    with service_context() as ctx:
        loc = org.show_location(ctx, location)
    emit_object(loc, as_json=as_json)


@app.command("update")
def update(
    location: Annotated[str, typer.Argument(help="Location id or name.")],
    name: Name = None,
    tz: Tz = None,
    address_line1: Line1 = None,
    address_line2: Line2 = None,
    city: City = None,
    state: State = None,
    postal_code: Postal = None,
    country: Country = None,
    phone: Phone = None,
    npi: Npi = None,
    place_of_service: Pos = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a location's details (admin).

    Example: hpms locations update 1 --phone 212-555-0100 --npi 1234567893
    """
    from hpms.services.platform import org

    with service_context() as ctx:
        loc = org.update_location(
            ctx,
            location,
            name=name,
            tz=tz,
            address_line1=address_line1,
            address_line2=address_line2,
            city=city,
            state=state,
            postal_code=postal_code,
            country=country,
            phone=phone,
            npi=npi,
            place_of_service=place_of_service,
        )
    emit_object(loc, as_json=as_json)
