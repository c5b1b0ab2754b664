"""`hpms payments`: patient payments: record (copays at check-in too), list, refund; credit is
applied oldest visit first. Every rule lives in hpms.services."""

from __future__ import annotations

from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_object, emit_table, info, service_context

app = typer.Typer(
    help="Patient payments: record (copays at check-in too), list, refund; credit is applied oldest visit first.",
    no_args_is_help=True,
)

COLUMNS = [
    ("id", "ID"),
    ("date", "Date"),
    ("kind", "Kind"),
    ("mrn", "MRN"),
    ("patient", "Patient"),
    ("amount", "Amount"),
    ("method", "Method"),
    ("reference", "Reference"),
    ("encounter_id", "Encounter"),
    ("unapplied", "Unapplied"),
]
FIELDS = [
    "id",
    "kind",
    "mrn",
    "patient",
    "date",
    "amount",
    "method",
    "reference",
    "encounter_id",
    "unapplied",
    "balance",
    "credit",
]

PatientOpt = Annotated[str | None, typer.Option("--patient", help="MRN or numeric id of the patient.")]
AmountOpt = Annotated[str | None, typer.Option("--amount", help="The amount, positive, e.g. 25.00.")]
MethodOpt = Annotated[str | None, typer.Option("--method", help="cash, card, check or other.")]
ReferenceOpt = Annotated[
    str | None, typer.Option("--reference", help="Check number, card receipt... (up to 200 characters).")
]


def _applied(out) -> str:
    return ", ".join(f"{a.amount} to encounter {a.encounter_id} ({a.service_date})" for a in out.applied)


@app.command("record")
def record(
    patient: PatientOpt = None,
    amount: AmountOpt = None,
    method: MethodOpt = None,
    reference: ReferenceOpt = None,
    apply_to: Annotated[
        str | None,
        typer.Option(
            "--apply-to",
            help="Encounter id of the visit it pays (a copay "
            "at check-in); default: credit, applied to "
            "open visits oldest first.",
        ),
    ] = None,
    appointment: Annotated[
        str | None,
        typer.Option(
            "--appointment",
            help="Appointment id of a copay at check-in: pays its encounter when there is one, else kept as credit.",
        ),
    ] = None,
    date: Annotated[str | None, typer.Option("--date", help="Day it was received (YYYY-MM-DD, default today).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a patient payment and print its id.

    Example: hpms payments record --patient 0100001 --amount 25.00 --method card --apply-to 42
    """
    from hpms.services.payments import payments

    with service_context() as ctx:
        out = payments.record(
            ctx,
            patient=patient,
            amount=amount,
            method=method,
            reference=reference,
            apply_to=apply_to,
            appointment=appointment,
            date=date,
        )
    if as_json:
        emit_object(out, as_json=True)
        return
    typer.echo(out.id)
    applied = _applied(out)
    info(
        f"recorded {out.amount} ({out.method}) from MRN {out.mrn}"
        + (f"; applied {applied}" if applied else "")
        + f"; balance {out.balance}, credit {out.credit}"
    )


@app.command("list")
def list_(
    patient: PatientOpt = None,
    start: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Patient payments and refunds, oldest first (reading them is audited).

    Example: hpms payments list --patient 0100001 --from -30 --json
    """
    from hpms.services.payments import payments

    with service_context() as ctx:
        rows = payments.list_payments(ctx, patient=patient, since=start, until=end)
    emit_table(rows, COLUMNS, as_json=as_json, title="Patient payments")


@app.command("refund")
def refund(
    patient: PatientOpt = None,
    amount: AmountOpt = None,
    method: MethodOpt = None,
    reference: ReferenceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Refund a patient's unapplied credit (not more than the credit) and print the refund's id.

    Example: hpms payments refund --patient 0100001 --amount 10.00 --method check --reference 1042
    """
    from hpms.services.payments import payments

    with service_context() as ctx:
        out = payments.refund(ctx, patient=patient, amount=amount, method=method, reference=reference)
    if as_json:
        emit_object(out, as_json=True)
        return
    typer.echo(out.id)
    info(f"refunded {out.amount} ({out.method}) to MRN {out.mrn}; credit left {out.credit}")
