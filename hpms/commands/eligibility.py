"""`hpms eligibility`: Insurance eligibility: write 270 requests for scheduled patients, import 271
answers. Every rule lives in hpms.services.billing.eligibility."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_object, emit_table, info, service_context

app = typer.Typer(
    help="Insurance eligibility: write 270 requests for scheduled patients, import 271 answers.", no_args_is_help=True
)

COLUMNS = [
    ("id", "ID"),
    ("service_date", "Date"),
    ("mrn", "MRN"),
    ("patient", "Patient"),
    ("payer", "Payer"),
    ("status", "Status"),
    ("plan_name", "Plan"),
    ("copay", "Copay"),
    ("coinsurance_percent", "Coins %"),
    ("deductible_remaining", "Deductible left"),
    ("reason", "Reason"),
]

Date = Annotated[str | None, typer.Option("--date", help="Date of service: today, tomorrow, +N or YYYY-MM-DD.")]
PatientOpt = Annotated[str | None, typer.Option("--patient", help="MRN or numeric id of the patient.")]


@app.command("request")
def request(
    out: Annotated[Path, typer.Option("--out", help="The 270 file to write (replaced atomically).")],
    date: Date = None,
    patient: PatientOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a 270 eligibility request: the active coverages of every patient with a visit on
    --date (not cancelled or no-show), or of one --patient (today unless --date). Each question
    is recorded as a pending check until its 271 answer is imported.

    Example: hpms eligibility request --date tomorrow --out /srv/edi/outbox/elig-tomorrow.270
    """
    from hpms.services.billing import eligibility

    with service_context() as ctx:
        result = eligibility.request(ctx, date=date, patient=patient, out=out)
    if as_json:
        emit_object(result, as_json=True)
        return
    typer.echo(result.path)
    for s in result.skipped:
        info(f"skipped {s['mrn']}: {s['reason']}")
    info(
        f"asked {result.checks} question(s) about {result.patients} patient(s) of {result.payers} payer(s) "
        f"(ISA {result.isa_control:09d}); send the file, then `hpms eligibility import ANSWER.271`"
    )


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="The 271 answer file from the clearinghouse.")],
    as_json: JsonOpt = False,
) -> None:
    """Import a 271 eligibility answer: each answer updates its pending check (active, inactive or
    error with the payer's reason); answers that match nothing are listed. Importing the same
    file twice changes nothing.

    Example: hpms eligibility import /srv/edi/inbox/elig-answer.271
    """
    from hpms.services.billing import eligibility

    with service_context() as ctx:
        result = eligibility.import_271(ctx, file)
    if as_json:
        emit_object(result, as_json=True)
        return
    counts = ", ".join(f"{n} {s}" for s, n in sorted(result.statuses.items())) or "no status changed"
    typer.echo(
        f"{result.answers} answer(s): {result.updated} updated, {result.unchanged} unchanged, "
        f"{result.recorded} recorded, {len(result.unmatched)} unmatched ({counts})"
    )
    for u in result.unmatched:
        info(f"unmatched: payer {u['payer']}, {u['name'] or 'no name'} {u['member'] or ''}: {u['reason']}")
    for w in result.warnings:
        info(f"warning: {w}")


@app.command("list")
def list_(
    patient: PatientOpt = None,
    date: Date = None,
    as_json: JsonOpt = False,
) -> None:
    """Eligibility checks, newest first, with the payer's answer (reading them is audited).

    Example: hpms eligibility list --date tomorrow --json
    """
    from hpms.services.billing import eligibility

    with service_context() as ctx:
        rows = eligibility.list_checks(ctx, patient=patient, date=date)
    emit_table(rows, COLUMNS, as_json=as_json, title="Eligibility checks")
