"""`hpms audit`: read and verify the tamper-evident audit trail."""

from __future__ import annotations

from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_object, emit_table, info, service_context

app = typer.Typer(help="The audit trail of every touch of patient data.", no_args_is_help=True)

COLUMNS = [
    ("seq", "#"),
    ("at", "When (UTC)"),
    ("username", "User"),
    ("action", "Action"),
    ("entity", "Entity"),
    ("entity_id", "Id"),
    ("patients", "Patient(s)"),
    ("fields", "Fields"),
    ("detail", "Detail"),
]


def _patients_cell(row) -> str:
    """One patient id, or the ids a list/search returned (shortened past ten)."""
    if row.patient_id is not None:
        return str(row.patient_id)
    ids = row.patient_ids or []
    text = ",".join(str(i) for i in ids[:10])
    return f"{text},... ({len(ids)})" if len(ids) > 10 else text


@app.command("log")
def log(
    patient: Annotated[str | None, typer.Option("--patient", help="MRN or id: events about this patient.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Events by this user.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="From this date (YYYY-MM-DD, UTC) on.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Show audit events, newest first (admin, auditor).

    Example: hpms audit log --patient 0100001 --since -30
    """
    from hpms.services.platform import audit_query

    with service_context() as ctx:
        rows = audit_query.log(ctx, patient=patient, username=user, since=since, limit=limit)
    if as_json:
        emit_table(rows, COLUMNS, as_json=True)
        return
    flat = [{**r.model_dump(), "patients": _patients_cell(r)} for r in rows]
    emit_table(flat, COLUMNS, as_json=False, title="Audit log")


@app.command("verify")
def verify(as_json: JsonOpt = False) -> None:
    """Check the hash chain: exit 0 when intact, 1 naming the first bad event otherwise.

    Example: hpms audit verify
    """
    from hpms.services.platform import audit

    with service_context() as ctx:
        result = audit.verify(ctx)
    if as_json:
        emit_object(result.as_dict(), as_json=True)
    elif result.ok:
        info(f"audit trail intact: {result.events} events")
    if not result.ok:
        from hpms.errors import ExitCode

        if not as_json:
            info(f"hpms: error: audit trail broken at event {result.first_bad_seq}: {result.problem}")
        raise typer.Exit(int(ExitCode.INTERNAL))
