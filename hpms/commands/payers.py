"""`hpms payers`: insurance companies and their X12 payer ids."""

from __future__ import annotations

from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_object, emit_table, info, service_context

app = typer.Typer(help="Payers (insurers) and their X12 payer ids.", no_args_is_help=True)

COLUMNS = [
    ("id", "ID"),
    ("payer_id", "Payer id"),
    ("name", "Name"),
    ("claim_filing", "Filing"),
    ("city", "City"),
    ("phone", "Phone"),
]
Line1 = Annotated[str | None, typer.Option("--address-line1")]
Line2 = Annotated[str | None, typer.Option("--address-line2")]
City = Annotated[str | None, typer.Option("--city")]
State = Annotated[str | None, typer.Option("--state")]
PostalCode = Annotated[str | None, typer.Option("--postal-code")]
Phone = Annotated[str | None, typer.Option("--phone")]
ClaimFiling = Annotated[
    str | None,
    typer.Option(
        "--claim-filing",
        help="Claim filing indicator (SBR09): a code (MB, MC, CI, BL, HM, CH, VA, WC, ...) or a name: "
        "medicare-b, medicaid, commercial, bcbs, hmo, tricare, va, workers-comp. Default CI.",
    ),
]


@app.command("add")
def add(
    name: Annotated[str | None, typer.Option("--name", help="Payer name as on the card.")] = None,
    payer_id: Annotated[
        str | None, typer.Option("--payer-id", help="X12 payer identifier (from the clearinghouse list).")
    ] = None,
    address_line1: Line1 = None,
    address_line2: Line2 = None,
    city: City = None,
    state: State = None,
    postal_code: PostalCode = None,
    phone: Phone = None,
    claim_filing: ClaimFiling = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a payer (admin, biller).

    Example: hpms payers add --name "Acme Health Plan" --payer-id 60054 --city Hartford --state CT --claim-filing CI
    """
    from hpms.services.people import coverage

    with service_context() as ctx:
        out = coverage.add_payer(
            ctx,
            name=name,
            payer_id=payer_id,
            address_line1=address_line1,
            address_line2=address_line2,
            city=city,
            state=state,
            postal_code=postal_code,
            phone=phone,
            claim_filing=claim_filing,
        )
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"added payer {out.id} {out.name!r} ({out.payer_id}, files as {out.claim_filing})")


@app.command("update")
def update(
    payer: Annotated[str, typer.Argument(help="X12 payer id, id or name.")],
    name: Annotated[str | None, typer.Option("--name", help="Payer name as on the card.")] = None,
    payer_id: Annotated[str | None, typer.Option("--payer-id", help="New X12 payer identifier.")] = None,
    address_line1: Line1 = None,
    address_line2: Line2 = None,
    city: City = None,
    state: State = None,
    postal_code: PostalCode = None,
    phone: Phone = None,
    claim_filing: ClaimFiling = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a payer (admin, biller); options not given are kept. Files written from now on
    use the new values.

    Example: hpms payers update MCRB1 --claim-filing medicare-b
    """
    from hpms.services.people import coverage

    with service_context() as ctx:
        out = coverage.update_payer(
            ctx,
            payer,
            name=name,
            payer_id=payer_id,
            address_line1=address_line1,
            address_line2=address_line2,
            city=city,
            state=state,
            postal_code=postal_code,
            phone=phone,
            claim_filing=claim_filing,
        )
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"updated payer {out.id} {out.name!r} ({out.payer_id}, files as {out.claim_filing})")


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List payers.

    Example: hpms payers list --json
    """
    from hpms.services.people import coverage

    with service_context() as ctx:
        rows = coverage.list_payers(ctx)
    emit_table(rows, COLUMNS, as_json=as_json, title="Payers")


@app.command("show")
def show(payer: Annotated[str, typer.Argument(help="X12 payer id, id or name.")], as_json: JsonOpt = False) -> None:
    """Show one payer.

    Example: hpms payers show 60054
    """
    from hpms.services.people import coverage

    with service_context() as ctx:
        out = coverage.show_payer(ctx, payer)
    emit_object(out, as_json=as_json)
