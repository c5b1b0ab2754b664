"""`hpms statements`: patient statements, one file per patient with activity, insurance paid,
adjustments, amount due and aging, and by email. Every rule lives in hpms.services."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hpms.commands._common import JsonOpt, display_zone, emit_object, emit_table, info, service_context

if TYPE_CHECKING:
    from hpms.services.payments.statements import StatementEmailRunOut

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
    email: Annotated[
        bool, typer.Option("--email", help="Also email each statement to its patient (pdf or html only).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write one statement per patient who owes at least --min-balance with an amount open longer
    than --older-than; files are named statement-NNNNNN.EXT. With --email, each is also put in
    the outbox for its patient (see `hpms statements send`), in the same transaction.

    Example: hpms statements generate --min-balance 5.00 --older-than 30d --out /var/spool/hpms/statements
    """
    from hpms.commands._progress import progress_for
    from hpms.services.payments import statements

    with service_context() as ctx:
        run = statements.generate(
            ctx,
            out=out,
            min_balance=min_balance,
            older_than=older_than,
            fmt=fmt,
            progress=progress_for("Statements"),
            email=email,
        )
    if as_json:
        emit_object(run, as_json=True)
        return
    info(f"{run.statements} statement(s), {run.amount_due} due in all, written to {run.directory}")
    if run.emailed is not None:
        _say_emailed(run.emailed)


@app.command("send")
def send(
    statement_ids: Annotated[
        list[int] | None,
        typer.Argument(metavar="STATEMENT", help="Statement ids (default: the statements of the latest run)."),
    ] = None,
    patient: Annotated[
        str | None, typer.Option("--patient", help="The latest statement of this patient (MRN or id).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say who would get one; queue nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Email statements already generated: one message per patient, to the patient's address,
    with the statement's file attached (pdf or html) and the practice's `statement` wording
    (see `hpms messages templates`). Patients without an email address or consent to email are
    skipped and named; a statement queued before is not queued again. `hpms messages send`
    then sends them.

    Example: hpms statements send --dry-run
    """
    from hpms.services.payments import statements

    with service_context() as ctx:
        run = statements.email_statements(ctx, statement_ids=statement_ids, patient=patient, dry_run=dry_run)
    if as_json:
        emit_object(run, as_json=True)
    else:
        _say_emailed(run)


def _say_emailed(run: StatementEmailRunOut) -> None:
    for r in run.statements:
        if r.outcome == "skipped":
            info(f"statement {r.statement_id} (patient {r.mrn}) not emailed: {r.reason}")
    verb = "would queue" if run.dry_run else "queued"
    info(
        f"{verb} {run.queued} statement(s) by email"
        + (f", {run.already_queued} queued before" if run.already_queued else "")
        + f", {run.skipped} skipped"
    )


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
