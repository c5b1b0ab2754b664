"""`hpms audit`: read and verify the tamper-evident audit trail."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from hpms.commands._common import (
    DEFAULT_LIMIT,
    JsonOpt,
    LimitOpt,
    display_zone,
    emit_object,
    emit_table,
    info,
    note_cut,
    service_context,
)

app = typer.Typer(help="The audit trail of every touch of patient data.", no_args_is_help=True)

COLUMNS = [
    ("seq", "#"),
    ("at", "When"),
    ("username", "User"),
    ("action", "Action"),
    ("entity", "Entity"),
    ("entity_id", "Id"),
    ("patients", "Patient(s)"),
    ("fields", "Fields"),
    ("detail", "Detail"),
]


def _patients_cell(row, mrns: dict[int, str]) -> str:
    """The MRN of the patient, or of those a list/search returned (shortened past ten)."""
    ids = [row.patient_id] if row.patient_id is not None else (row.patient_ids or [])
    text = ",".join(mrns.get(i, f"id {i}") for i in ids[:10])
    return f"{text},... ({len(ids)})" if len(ids) > 10 else text


@app.command("log")
def log(
    patient: Annotated[str | None, typer.Option("--patient", help="MRN or id: events about this patient.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Events by this user.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="From this date (YYYY-MM-DD, UTC) on.")] = None,
    limit: LimitOpt = DEFAULT_LIMIT,
    as_json: JsonOpt = False,
) -> None:
    """Show audit events, newest first (admin, auditor).

    Example: hpms audit log --patient 0100001 --since -30
    """
    from hpms.services.platform import audit_query

    with service_context() as ctx:
        if as_json:
            emit_table(audit_query.log(ctx, patient=patient, username=user, since=since, limit=limit), [], as_json=True)
            return
        found = audit_query.page(ctx, patient=patient, username=user, since=since, limit=limit)
        zone = display_zone(ctx)
    flat = [{**r.model_dump(), "patients": _patients_cell(r, found.mrns)} for r in found.rows]
    emit_table(flat, COLUMNS, as_json=False, title="Audit log", zone=zone)
    note_cut(len(found.rows), limit, found.total, what="events")


@app.command("verify")
def verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="A checkpoint file: also report events removed behind it."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the sealed chain: exit 0 when intact, 1 naming the first bad event otherwise.

    Every event is sealed with a key derived from the practice key (not kept in the database),
    so an edited, inserted, re-chained or removed event is found; with --checkpoint, a chain
    cut back behind a checkpoint taken earlier is found too. --json always prints the report.

    Example: hpms audit verify --checkpoint audit-checkpoint.json
    """
    from hpms.services.platform import audit

    cp = None
    if checkpoint is not None:
        from hpms.fileio import read_input

        cp = audit.parse_checkpoint(read_input(checkpoint, field="checkpoint").decode("utf-8", "replace"))
    with service_context() as ctx:
        result = audit.verify(ctx, checkpoint=cp)
    if as_json:
        emit_object(result.as_dict(), as_json=True)
    elif result.ok:
        behind = f", checkpoint at event {cp.seq} ({cp.at}) matches" if cp is not None else ""
        info(f"audit trail intact: {result.events} events{behind}")
    if not result.ok:
        from hpms.errors import ExitCode

        if not as_json:
            where = f" at event {result.first_bad_seq}" if result.first_bad_seq is not None else ""
            info(f"hpms: error: audit trail broken{where}: {result.problem}")
        raise typer.Exit(int(ExitCode.INTERNAL))


@app.command("checkpoint")
def checkpoint(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the checkpoint to this file (0600) instead of stdout."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify the chain and print its head (sequence, seal, time), signed with the practice key.

    Keep checkpoints away from the database (another machine, write-once storage): a later
    `hpms audit verify --checkpoint FILE` then shows events removed behind one, even if the
    database was rewound as a whole. Refused (exit 4) while the chain is broken.

    Example: hpms audit checkpoint -o audit-checkpoint.json
    """
    import json

    from hpms.services.platform import audit

    if output is not None:
        from hpms.fileio import check_directory

        check_directory(output.parent if str(output.parent) else Path("."), field="output")
    with service_context() as ctx:
        cp = audit.checkpoint(ctx)
    text = json.dumps(cp.as_dict(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    from hpms.fileio import write_atomically

    write_atomically(output, text.encode(), field="output", mode=0o600)
    if as_json:
        emit_object({**cp.as_dict(), "file": str(output)}, as_json=True)
    else:
        info(f"checkpoint at event {cp.seq} ({cp.at}) written to {output}")
