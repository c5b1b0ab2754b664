"""`hpms providers`: the clinicians who see patients, and where they work."""

from __future__ import annotations

from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_object, emit_table, info, service_context

app = typer.Typer(help="Providers (clinicians) and the locations they work at.", no_args_is_help=True)

COLUMNS = [
    ("id", "ID"),
    ("name", "Name"),
    ("npi", "NPI"),
    ("taxonomy", "Taxonomy"),
    ("locations", "Locations"),
    ("username", "User"),
    ("color", "Color"),
    ("active", "Active"),
]
SHOW_FIELDS = [
    "id",
    "name",
    "first_name",
    "last_name",
    "credentials",
    "npi",
    "taxonomy",
    "username",
    "locations",
    "color",
    "active",
    "version",
]

ProviderArg = Annotated[str, typer.Argument(help="Provider id, NPI or name (last name, or first and last).")]
First = Annotated[str | None, typer.Option("--first-name", help="Given name.")]
Last = Annotated[str | None, typer.Option("--last-name", help="Family name.")]
Credentials = Annotated[str | None, typer.Option("--credentials", help="MD, DO, NP, PA-C...")]
Npi = Annotated[str | None, typer.Option("--npi", help="Individual (type 1) NPI, validated.")]
Taxonomy = Annotated[str | None, typer.Option("--taxonomy", help="Provider taxonomy code, e.g. 207Q00000X.")]
Locations = Annotated[
    list[str] | None,
    typer.Option(
        "--location", help="Location id or name the provider works at (repeatable; default: the only location)."
    ),
]
User = Annotated[str | None, typer.Option("--user", help="hpms user name of the provider's own login.")]
Color = Annotated[str | None, typer.Option("--color", help="Calendar color: #rrggbb or a name such as teal.")]


@app.command("add")
def add(
    first_name: First = None,
    last_name: Last = None,
    credentials: Credentials = None,
    npi: Npi = None,
    taxonomy: Taxonomy = None,
    location: Locations = None,
    user: User = None,
    color: Color = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a provider (admin).

    Example: hpms providers add --first-name Grace --last-name Okafor --credentials MD --npi 1234567893 --location Main
    """
    from hpms.services.scheduling import resources

    with service_context() as ctx:
        out = resources.add_provider(
            ctx,
            first_name=first_name,
            last_name=last_name,
            credentials=credentials,
            npi=npi,
            taxonomy=taxonomy,
            color=color,
            username=user,
            locations=list(location or []),
        )
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"added provider {out.id} {out.name} at {', '.join(out.locations)}")


@app.command("list")
def list_(
    location: Annotated[str | None, typer.Option("--location", help="Only providers working at this location.")] = None,
    include_inactive: Annotated[bool, typer.Option("--all", help="Also inactive providers.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the providers, by name.

    Example: hpms providers list --location Main --json
    """
    from hpms.services.scheduling import resources

    with service_context() as ctx:
        rows = resources.list_providers(ctx, location=location, include_inactive=include_inactive)
    emit_table(rows, COLUMNS, as_json=as_json, title="Providers")


@app.command("show")
def show(provider: ProviderArg, as_json: JsonOpt = False) -> None:
    """Show one provider.

    Example: hpms providers show Okafor
    """
    from hpms.services.scheduling import resources

    with service_context() as ctx:
        out = resources.show_provider(ctx, provider)
    emit_object(out, as_json=as_json, fields=SHOW_FIELDS)


@app.command("update")
def update(
    provider: ProviderArg,
    first_name: First = None,
    last_name: Last = None,
    credentials: Credentials = None,
    npi: Npi = None,
    taxonomy: Taxonomy = None,
    location: Annotated[
        list[str] | None,
        typer.Option("--location", help="Location id or name (repeatable); replaces the provider's list of locations."),
    ] = None,
    user: User = None,
    color: Color = None,
    active: Annotated[
        str | None, typer.Option("--active", help="yes or no: an inactive provider cannot be booked.")
    ] = None,
    expected_version: Annotated[
        int | None,
        typer.Option("--expected-version", help="Refuse (exit 4) if the provider changed since this version."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a provider's details (admin); give only what changes ("" clears an optional field).

    Example: hpms providers update Okafor --location Main --location Lakeside --active yes
    """
    from hpms.services.scheduling import resources

    with service_context() as ctx:
        out = resources.update_provider(
            ctx,
            provider,
            locations=list(location) if location else None,
            expected_version=expected_version,
            first_name=first_name,
            last_name=last_name,
            credentials=credentials,
            npi=npi,
            taxonomy=taxonomy,
            color=color,
            username=user,
            active=active,
        )
    emit_object(out, as_json=as_json, fields=SHOW_FIELDS)
