"""`hpms fees`: the fee schedules (a default one and one per payer). Every rule lives in
hpms.services.billing.fees."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, display_zone, emit_object, emit_table, info, service_context

app = typer.Typer(help="Fee schedules: the default prices and each payer's.", no_args_is_help=True)

COLUMNS = [
    ("code", "Code"),
    ("modifier", "Modifier"),
    ("schedule", "Schedule"),
    ("amount", "Amount"),
    ("updated_at", "Updated"),
]

PayerOpt = Annotated[
    str | None,
    typer.Option("--payer", help="A payer's schedule (X12 payer id, id or name) instead of the default one."),
]


@app.command("set")
def set_(
    code: Annotated[str, typer.Argument(help="Procedure code (HCPCS or CPT), e.g. 99213.")],
    amount: Annotated[
        str, typer.Argument(help="Price, e.g. 125.00 (more than 0, less than 100000, at most two decimal places).")
    ],
    payer: PayerOpt = None,
    modifier: Annotated[
        str | None, typer.Option("--modifier", help="Price of the code with this modifier (e.g. 25).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the price of a code (with an optional modifier) in the default schedule or a payer's;
    an existing price is replaced.

    Example: hpms fees set 99213 125.00 --payer ACME1
    """
    from hpms.services.billing import fees

    with service_context() as ctx:
        fee = fees.set_fee(ctx, code, amount, payer=payer, modifier=modifier)
    if as_json:
        emit_object(fee, as_json=True)
        return
    where = f"{fee.payer}'s schedule" if fee.payer else "the default schedule"
    info(f"{fee.code}{'-' + fee.modifier if fee.modifier else ''} costs {fee.amount:.2f} on {where}")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV file, UTF-8, header code,amount[,modifier][,payer].")],
    payer: Annotated[
        str | None,
        typer.Option("--payer", help="Schedule of the rows without a payer (default: the default schedule)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row; write nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import prices from a CSV file. Every row is checked first; any bad row (its line and
    column are reported) means nothing is written (exit 2).

    Example: hpms fees import fees-2027.csv --payer ACME1
    """
    from hpms.services.billing import fees

    try:
        with service_context() as ctx:
            result = fees.import_fees(ctx, file, payer=payer, dry_run=dry_run)
    except fees.InvalidFeeRows as exc:
        if as_json:
            emit_object(
                {
                    "rows": exc.rows,
                    "created": 0,
                    "updated": 0,
                    "unchanged": 0,
                    "dry_run": dry_run,
                    "errors": [{"line": e.line, "field": e.field, "message": e.message} for e in exc.errors],
                },
                as_json=True,
            )
        for err in exc.errors[:200]:
            info(f"{file}:{err.line}: {err.field}: {err.message}")
        if len(exc.errors) > 200:
            info(f"... and {len(exc.errors) - 200} more")
        raise
    if as_json:
        emit_object(result, as_json=True)
        return
    verb = "would import" if dry_run else "imported"
    info(f"{verb} {result.rows} price(s): {result.created} new, {result.updated} changed, {result.unchanged} unchanged")


@app.command("list")
def list_(
    payer: Annotated[
        str | None, typer.Option("--payer", help="Only this payer's schedule ('default' for the default one).")
    ] = None,
    code: Annotated[str | None, typer.Option("--code", help="Only this procedure code.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The prices: the default schedule first, then each payer's. Amounts in --json are strings
    ("125.00").

    Example: hpms fees list --payer default --code 99213
    """
    from hpms.services.billing import fees

    with service_context() as ctx:
        rows = fees.list_fees(ctx, payer=payer, code=code)
        zone = display_zone(ctx)
    if as_json:
        emit_table(rows, [], as_json=True)
        return
    table = [
        {
            "code": r.code,
            "modifier": r.modifier,
            "schedule": f"{r.payer} ({r.payer_code})" if r.payer else "default",
            "amount": f"{r.amount:.2f}",
            "updated_at": r.updated_at,
        }
        for r in rows
    ]
    emit_table(table, COLUMNS, as_json=False, title="Fees", zone=zone)
