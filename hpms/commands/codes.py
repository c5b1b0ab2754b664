"""`hpms codes`: look up ICD-10-CM, HCPCS and CPT codes and modifiers; import the HCPCS file
from CMS and the CPT descriptors the practice licenses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hpms.commands._common import (
    DEFAULT_LIMIT,
    JsonOpt,
    LimitOpt,
    emit_object,
    emit_table,
    info,
    note_cut,
    service_context,
)

app = typer.Typer(help="Diagnosis and procedure codes (ICD-10-CM, HCPCS, CPT) and modifiers.", no_args_is_help=True)

COLUMNS = [("system", "System"), ("display", "Code"), ("description", "Description"), ("billable", "Billable")]
SHOW_FIELDS = ["system", "code", "display", "description", "billable", "source", "note"]

System = Annotated[str | None, typer.Option("--system", help="Only this code set: icd10, hcpcs or cpt.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Validate the file and count; write nothing.")]


@app.command("search")
def search(
    text: Annotated[str, typer.Argument(help="A code or its start (E11, G04) or words of the description.")],
    limit: LimitOpt = DEFAULT_LIMIT,
    system: System = None,
    as_json: JsonOpt = False,
) -> None:
    """Find codes by code prefix or by words of the description (procedure codes first).

    Example: hpms codes search "type 2 diabetes kidney" --system icd10
    """
    from hpms.services.billing import codes

    with service_context(readonly=True) as ctx:
        rows = codes.search(ctx, text, limit=limit, system=system)
    emit_table(rows, COLUMNS, as_json=as_json, title="Codes")
    note_cut(len(rows), limit, what="codes", as_json=as_json)


@app.command("show")
def show(
    code: Annotated[str, typer.Argument(help="The code, with or without the dot: E11.9, E119, G0439, 99213.")],
    system: System = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one code: its description and, for ICD-10-CM, whether it is billable.

    Example: hpms codes show E11.9
    """
    from hpms.services.billing import codes

    with service_context(readonly=True) as ctx:
        out = codes.show(ctx, code, system=system)
    if out.note == codes.CPT_NOTE:
        out.note += " (hpms codes import-cpt FILE)"
    emit_object(out, as_json=as_json, fields=SHOW_FIELDS)


def _import(kind: str, file: Path, dry_run: bool, as_json: bool) -> None:
    from hpms.commands._progress import progress_for
    from hpms.services.billing import codes

    run = codes.import_hcpcs if kind == "HCPCS" else codes.import_cpt
    try:
        with service_context() as ctx:
            summary = run(ctx, file, dry_run=dry_run, progress=progress_for(f"importing {kind} codes"))
    except codes.InvalidRows as exc:
        if as_json:
            emit_object(
                {
                    "system": kind,
                    "file": str(file),
                    "rows": exc.rows,
                    "codes": 0,
                    "added": 0,
                    "updated": 0,
                    "unchanged": 0,
                    "dry_run": dry_run,
                    "errors": [e.as_dict() for e in exc.errors],
                },
                as_json=True,
            )
        for err in exc.errors[:200]:
            info(f"{file}:{err.line}: {err.field}: {err.message}")
        if len(exc.errors) > 200:
            info(f"... and {len(exc.errors) - 200} more")
        raise
    if as_json:
        emit_object(summary.as_dict(), as_json=True)
        return
    verb = "would import" if dry_run else "imported"
    extra = f"; {summary.truncated} description(s) cut to 300 characters" if summary.truncated else ""
    info(
        f"{verb} {summary.codes} {kind} code(s) from {summary.layout}: {summary.added} new, "
        f"{summary.updated} changed, {summary.unchanged} unchanged{extra}"
    )


@app.command("import-hcpcs")
def import_hcpcs(
    file: Annotated[
        Path,
        typer.Argument(
            help="The CMS quarterly HCPCS record file (HCPC20xx_..._ANWEB.txt), "
            "or a CSV/TSV with code and description columns."
        ),
    ],
    dry_run: DryRun = False,
    as_json: JsonOpt = False,
) -> None:
    """Import HCPCS Level II codes (admin, biller); any bad row means nothing is written.

    Example: hpms codes import-hcpcs HCPC2026_APR_ANWEB.txt --dry-run
    """
    _import("HCPCS", file, dry_run, as_json)


@app.command("import-cpt")
def import_cpt(
    file: Annotated[
        Path, typer.Argument(help="CSV (or TSV) with code and description columns, licensed from the AMA.")
    ],
    dry_run: DryRun = False,
    as_json: JsonOpt = False,
) -> None:
    """Import CPT descriptors from a file the practice licenses (admin, biller); any bad row means
    nothing is written.

    Example: hpms codes import-cpt cpt-2026.csv
    """
    _import("CPT", file, dry_run, as_json)


@app.command("modifiers")
def modifiers(as_json: JsonOpt = False) -> None:
    """List the procedure modifiers hpms accepts on a claim line.

    Example: hpms codes modifiers --json
    """
    from hpms.codes.procedures import MODIFIERS

    rows = [{"modifier": k, "description": v} for k, v in MODIFIERS.items()]
    emit_table(rows, [("modifier", "Modifier"), ("description", "Description")], as_json=as_json, title="Modifiers")
