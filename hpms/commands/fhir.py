"""`hpms fhir`: FHIR R4 exchange with other systems (export, import)."""

from __future__ import annotations

from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_object, info, service_context
from hpms.commands.fhir_import import import_

app = typer.Typer(
    help="FHIR R4 exchange with other systems: the practice's records out and in as FHIR resources.",
    no_args_is_help=True,
)
app.command("import")(import_)


@app.command("export")
def export(
    out: Annotated[
        str, typer.Option("--out", "-o", metavar="DIR", help="Directory to write into (created when missing).")
    ],
    patient: Annotated[
        str | None, typer.Option("--patient", metavar="MRN", help="MRN or id: only this patient.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="DAY", help="Only what changed on or after this day (YYYY-MM-DD, yesterday, -7)."
        ),
    ] = None,
    format_: Annotated[
        str,
        typer.Option(
            "--format", metavar="ndjson|bundle", help="ndjson (one file per resource type) or bundle (one per patient)."
        ),
    ] = "ndjson",
    include_ssn: Annotated[
        bool, typer.Option("--include-ssn", help="Add each patient's SSN (takes the right to reveal SSNs).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export patients, coverage, schedules, appointments, encounters and claims as FHIR R4 (admin).

    Files are 0600, written to temp names and renamed when all are done; one audit event names
    every patient exported. SSNs are left out unless --include-ssn is given.

    Example: hpms fhir export --since -7 -o /srv/fhir/export
    """
    from hpms.services.interop import fhir_export

    with service_context() as ctx:
        result = fhir_export.export(ctx, out=out, patient=patient, since=since, format=format_, include_ssn=include_ssn)
    if as_json:
        emit_object(result, as_json=True)
        return
    counts = ", ".join(f"{n} {kind}" for kind, n in result["counts"].items() if n)
    info(f"exported {result['patients']} patient(s) to {result['directory']} ({result['format']}): {counts}")
