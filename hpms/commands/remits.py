"""`hpms remits`: remittance advice (835): import payments and adjustments, match what could not
be matched. Every rule lives in hpms.services.payments.remits."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, display_zone, emit_table, info, print_json, service_context

app = typer.Typer(
    help="Remittance advice (835): import payments and adjustments, match what could not be matched.",
    no_args_is_help=True,
)

UNMATCHED_COLUMNS = [
    ("row", "Row"),
    ("payer", "Payer"),
    ("trace_number", "Trace"),
    ("control_number", "Control #"),
    ("status_code", "CLP02"),
    ("patient", "Patient"),
    ("service_date", "DOS"),
    ("charge", "Charge"),
    ("paid", "Paid"),
    ("file", "File"),
]
LIST_COLUMNS = [
    ("id", "ID"),
    ("file_id", "File #"),
    ("imported_at", "Imported"),
    ("payer", "Payer"),
    ("trace_number", "Trace"),
    ("payment_date", "Paid on"),
    ("method", "Method"),
    ("payment", "Payment"),
    ("claims", "Claims"),
    ("posted", "Posted"),
    ("unmatched", "Unmatched"),
    ("file", "File"),
]


def _report(out, as_json: bool) -> None:
    if as_json:
        print_json(asdict(out))
        return
    for w in out.warnings:
        info(f"warning: {w}")
    if out.duplicate or (out.already_posted and not out.remittances):
        return
    verb = "would post" if out.dry_run else "posted"
    info(
        f"{out.file}: {out.remittances} payment(s) {out.payment:.2f}; {verb} {out.posted} of {out.claims} "
        f"claim(s): paid {out.paid:.2f}, adjusted {out.adjusted:.2f}, patient responsibility "
        f"{out.patient_responsibility:.2f}; {out.reversals} reversal(s), {out.denied} denied"
    )
    if out.provider_adjustments:
        info(f"provider-level adjustments (PLB): {out.provider_adjustments:.2f}")
    if out.unmatched:
        info(f"{len(out.unmatched)} claim(s) not billed by hpms, kept for `hpms remits match`:")
        for u in out.unmatched:
            info(f"  row {u['row']}: CLP01 {u['control_number']} {u['patient'] or ''} paid {u['paid']:.2f}")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="The 835 file from the payer or clearinghouse.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and show what would be posted; post nothing.")
    ] = False,
    keep_unmatched: Annotated[
        bool,
        typer.Option(
            "--keep-unmatched", help="Keep the claims of a file none of whose claims hpms billed, for manual matching."
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Post a payment whose trace number was posted for another "
            "amount or date, or one paid to another payee.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Post an 835 remittance: payments, adjustments and patient responsibility to the ledger.
    The file is posted whole or not at all; the same file or payment (payer, trace number,
    amount, date) is never posted twice, whatever envelope it comes in.

    Example: hpms remits import ~/era/2026-11-27.835
    """
    from hpms.services.payments import remits

    with service_context() as ctx:
        out = remits.import_file(ctx, file, dry_run=dry_run, keep_unmatched=keep_unmatched, force=force)
    _report(out, as_json)


@app.command("unmatched")
def unmatched(as_json: JsonOpt = False) -> None:
    """Claim payments no hpms claim matched, kept for manual matching, oldest first.

    Example: hpms remits unmatched --json
    """
    from hpms.services.payments import remits

    with service_context() as ctx:
        rows = remits.unmatched(ctx)
    emit_table(rows, UNMATCHED_COLUMNS, as_json=as_json, title="Unmatched claim payments")


@app.command("match")
def match(
    row: Annotated[str, typer.Argument(metavar="CLAIM_ROW", help="The row number from `hpms remits unmatched`.")],
    claim: Annotated[str, typer.Argument(metavar="CLAIM_ID", help="The claim it pays: id or control number.")],
    as_json: JsonOpt = False,
) -> None:
    """Post an unmatched claim payment against the claim it is for.

    Example: hpms remits match 17 000000042
    """
    from hpms.services.payments import remits

    with service_context() as ctx:
        out = remits.match(ctx, row, claim)
    _report(out, as_json)


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """Imported payments (one per 835 transaction set), newest first.

    Example: hpms remits list
    """
    from hpms.services.payments import remits

    with service_context() as ctx:
        rows = remits.list_remittances(ctx)
        zone = display_zone(ctx)
    emit_table(rows, LIST_COLUMNS, as_json=as_json, title="Remittances", zone=zone)
