"""`hpms coverage`: a patient's insurance policies."""

from __future__ import annotations

from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_object, emit_table, info, service_context

app = typer.Typer(help="Patients' insurance coverage.", no_args_is_help=True)

COLUMNS = [
    ("id", "ID"),
    ("priority", "Priority"),
    ("payer_name", "Payer"),
    ("member_id", "Member id"),
    ("group_number", "Group"),
    ("relationship", "Relationship"),
    ("valid_from", "From"),
    ("valid_to", "To"),
]
MedicareSecondaryType = Annotated[
    str | None,
    typer.Option(
        "--medicare-secondary-type",
        help="Medicare as secondary payer: why another payer is primary (SBR05): 12 working aged, 13 end-stage renal "
        "disease, 14 no-fault, 15 workers' compensation, 16 public health service, 41 black lung, 42 veterans, "
        "43 disability, 47 other liability.",
    ),
]


@app.command("add")
def add(
    patient: Annotated[str, typer.Argument(help="MRN or id of the patient.")],
    payer: Annotated[str | None, typer.Option("--payer", help="X12 payer id, id or name of the payer.")] = None,
    member_id: Annotated[
        str | None, typer.Option("--member-id", help="Member id on the card (stored encrypted).")
    ] = None,
    group: Annotated[str | None, typer.Option("--group", help="Group number.")] = None,
    relationship: Annotated[
        str,
        typer.Option("--relationship", help="Patient's relationship to the subscriber: self, spouse, child, other."),
    ] = "self",
    subscriber: Annotated[
        str | None, typer.Option("--subscriber", help="Subscriber's name when not self ('First Last').")
    ] = None,
    subscriber_dob: Annotated[str | None, typer.Option("--subscriber-dob", help="Subscriber's date of birth.")] = None,
    priority: Annotated[str, typer.Option("--priority", help="primary, secondary or tertiary.")] = "primary",
    valid_from: Annotated[str | None, typer.Option("--from", help="First day covered, YYYY-MM-DD.")] = None,
    valid_to: Annotated[str | None, typer.Option("--to", help="Last day covered, YYYY-MM-DD.")] = None,
    medicare_secondary_type: MedicareSecondaryType = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an insurance coverage to a patient.

    Example: hpms coverage add 0100001 --payer 60054 --member-id XJH123456789 --group G100 --priority primary
    """
    from hpms.services.people import coverage

    with service_context() as ctx:
        out = coverage.add_coverage(
            ctx,
            patient=patient,
            payer=payer,
            member_id=member_id,
            group_number=group,
            relationship=relationship,
            subscriber=subscriber,
            subscriber_dob=subscriber_dob,
            priority=priority,
            valid_from=valid_from,
            valid_to=valid_to,
            medicare_secondary_type=medicare_secondary_type,
        )
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"added {out.priority} coverage {out.id} with {out.payer_name}")


@app.command("list")
def list_(
    patient: Annotated[str, typer.Argument(help="MRN or id of the patient.")],
    include_inactive: Annotated[bool, typer.Option("--include-inactive", help="Also ended coverage.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List a patient's coverage, primary first.

    Example: hpms coverage list 0100001
    """
    from hpms.services.people import coverage

    with service_context() as ctx:
        rows = coverage.list_coverage(ctx, patient, include_inactive=include_inactive)
    emit_table(rows, COLUMNS, as_json=as_json, title="Coverage")


@app.command("update")
def update(
    coverage_id: Annotated[int, typer.Argument(help="Coverage id (see `hpms coverage list`).")],
    group: Annotated[str | None, typer.Option("--group", help="Group number ('none' clears it).")] = None,
    medicare_secondary_type: MedicareSecondaryType = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a coverage's group number or Medicare secondary type ('none' clears it); claims
    waiting for a file are written with the new values.

    Example: hpms coverage update 12 --medicare-secondary-type 12
    """
    from hpms.services.people import coverage

    with service_context() as ctx:
        out = coverage.update_coverage(
            ctx, coverage_id, group_number=group, medicare_secondary_type=medicare_secondary_type
        )
    emit_object(out, as_json=as_json)


@app.command("end")
def end(
    coverage_id: Annotated[int, typer.Argument(help="Coverage id (see `hpms coverage list`).")],
    on: Annotated[str | None, typer.Option("--on", help="Last covered day (default today).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """End a coverage; it stays on file for past claims.

    Example: hpms coverage end 12 --on today
    """
    from hpms.services.people import coverage

    with service_context() as ctx:
        out = coverage.end_coverage(ctx, coverage_id, on=on)
    emit_object(out, as_json=as_json)
