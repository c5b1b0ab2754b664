"""`hpms tokens`: bearer tokens of API clients (the FHIR API)."""

from __future__ import annotations

from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_object, emit_table, info, service_context

app = typer.Typer(
    help="Bearer tokens of API clients (an EHR reading the FHIR API), each acting with one role.",
    no_args_is_help=True,
)

COLUMNS = [
    ("id", "Id"),
    ("name", "Name"),
    ("role", "Role"),
    ("state", "State"),
    ("created_at", "Created"),
    ("expires_at", "Expires"),
    ("last_used_at", "Last used"),
]


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="What the client is (unique), e.g. ehr-sync.")],
    role: Annotated[
        str, typer.Option("--role", metavar="ROLE", help="The role it acts with (provider, front_desk, service...).")
    ],
    expires: Annotated[
        int | None, typer.Option("--expires", metavar="DAYS", help="Days until it expires (default 90; 0 never).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token (admin); it is printed once, only its hash is kept.

    Example: hpms tokens create --name ehr-sync --role provider --expires 30
    """
    from hpms.services.interop import api_tokens

    with service_context() as ctx:
        out = api_tokens.create_token(ctx, name=name, role=role, expires_days=expires)
    if as_json:
        emit_object(out, as_json=True)
        return
    typer.echo(out.token)
    until = f"until {out.expires_at:%Y-%m-%d}" if out.expires_at else "with no expiry"
    info(f"token {out.id} ({out.name}, role {out.role}) works {until}; it is shown only now")


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List the tokens: role, state (active, expired, revoked), expiry, last use (admin, auditor).

    Example: hpms tokens list
    """
    from hpms.services.interop import api_tokens

    with service_context() as ctx:
        rows = api_tokens.list_tokens(ctx)
    emit_table(rows, COLUMNS, as_json=as_json, title="API tokens")


@app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (see `hpms tokens list`).")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke a token: every request with it is refused from now on (admin).

    Example: hpms tokens revoke 1
    """
    from hpms.services.interop import api_tokens

    with service_context() as ctx:
        out = api_tokens.revoke_token(ctx, token_id)
    if as_json:
        emit_object(out, as_json=True)
        return
    info(f"token {out.id} ({out.name}) revoked")
