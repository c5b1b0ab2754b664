"""`hpms statements`: patient statements, one file per patient with activity, insurance paid,
adjustments, amount due and aging. Every rule lives in hpms.services."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, display_zone, emit_object, emit_table, info, service_context

app = typer.Typer(
    help="Patient statements: one file per patient with activity, insurance paid, adjustments, amount due and aging.",
    no_args_is_help=True,
)

COLUMNS = [
    ("id", "ID"),
    ("created_at", "Created"),
    ("mrn", "MRN"),
    ("patient", "Patient"),
    ("period_from", "From"),
    ("period_to", "To"),
    ("amount_due", "Due"),
    ("path", "File"),
]


@app.command("generate")
def generate(
    out: Annotated[Path | None, typer.Option("--out", help="Directory the statement files are written to.")] = None,
    min_balance: Annotated[str, typer.Option("--min-balance", help="Only patients owing at least this.")] = "5.00",
    older_than: Annotated[
        str, typer.Option("--older-than", help="Only patients with an amount open this long, e.g. 30d.")
    ] = "30d",
    fmt: Annotated[str, typer.Option("--format", help="pdf, html or txt.")] = "pdf",
    as_json: JsonOpt = False,
) -> None:
    """Write one statement per patient who owes at least --min-balance with an amount open longer
    than --older-than; files are named statement-NNNNNN.EXT.

    Example: hpms statements generate --min-balance 5.00 --older-than 30d --out /var/spool/hpms/statements
    """
    from hpms.commands._progress import progress_for
    from hpms.services.payments import statements

    with service_context() as ctx:
        run = statements.generate(
            ctx, out=out, min_balance=min_balance, older_than=older_than, fmt=fmt, progress=progress_for("Statements")
        )
    if as_json:
        emit_object(run, as_json=True)
    else:
        info(f"{run.statements} statement(s), {run.amount_due} due in all, written to {run.directory}")


@app.command("list")
def list_(
    patient: Annotated[str | None, typer.Option("--patient", help="MRN or numeric id of the patient.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Statements generated, newest first.

    Example: hpms statements list --patient 0100001 --json
    """
    from hpms.services.payments import statements

    with service_context() as ctx:
        rows = statements.list_statements(ctx, patient=patient)
        zone = display_zone(ctx)
    emit_table(rows, COLUMNS, as_json=as_json, title="Patient statements", zone=zone)
