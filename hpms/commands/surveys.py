"""`hpms surveys`: patient satisfaction responses (score 1 to 5) for completed visits. Every
rule lives in hpms.services.people.surveys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, display_zone, emit_object, emit_table, info, service_context

app = typer.Typer(help="Patient satisfaction surveys: one score (1-5) per completed visit.", no_args_is_help=True)

COLUMNS = [
    ("id", "ID"),
    ("appointment_id", "Appointment"),
    ("visit", "Visit"),
    ("mrn", "MRN"),
    ("patient", "Patient"),
    ("provider", "Provider"),
    ("score", "Score"),
    ("responded_at", "Responded"),
    ("comment", "Comment"),
]


@app.command("record")
def record(
    appointment: Annotated[str | None, typer.Option("--appointment", help="The completed visit's id.")] = None,
    score: Annotated[
        str | None, typer.Option("--score", help="The patient's score, 1 (poor) to 5 (excellent).")
    ] = None,
    comment: Annotated[
        str | None, typer.Option("--comment", help="The patient's comment (up to 1000 characters).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a patient's survey response to a completed visit and print its id.

    Example: hpms surveys record --appointment 42 --score 5 --comment "Very kind staff"
    """
    from hpms.services.people import surveys

    with service_context() as ctx:
        out = surveys.record(ctx, appointment=appointment, score=score, comment=comment)
    if as_json:
        emit_object(out, as_json=True)
        return
    typer.echo(out.id)
    info(f"recorded score {out.score} for appointment {out.appointment_id} ({out.provider})")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV with the header appointment_id,score[,comment][,responded_at].")],
    as_json: JsonOpt = False,
) -> None:
    """Import survey responses from a CSV file: every row is checked first; one bad row (its line
    and column are named) and nothing is imported.

    Example: hpms surveys import responses.csv
    """
    from hpms.services.people import surveys

    with service_context() as ctx:
        out = surveys.import_csv(ctx, file)
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(f"imported {out.imported} survey response(s)")


@app.command("list")
def list_(
    start: Annotated[str | None, typer.Option("--from", help="First day responses were received (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Survey responses, oldest first (reading them is audited).

    Example: hpms surveys list --from -30 --to today --json
    """
    from hpms.services.people import surveys

    with service_context() as ctx:
        rows = surveys.list_responses(ctx, start=start, end=end)
        zone = display_zone(ctx)
    emit_table(rows, COLUMNS, as_json=as_json, title="Survey responses", zone=zone)
