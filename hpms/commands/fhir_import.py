"""`hpms fhir import`: FHIR R4 Bundles and NDJSON into hpms. Every rule lives in
hpms.services.interop.fhir_import."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_table, info, print_json, service_context

COUNT_COLUMNS = [
    ("resource_type", "Resource"),
    ("created", "Created"),
    ("updated", "Updated"),
    ("unchanged", "Unchanged"),
    ("skipped", "Skipped"),
    ("refused", "Refused"),
]


def import_(
    file: Annotated[
        Path, typer.Argument(help="A Bundle (.json), NDJSON file (.ndjson, one resource a line) or a folder of them.")
    ],
    source: Annotated[
        str | None,
        typer.Option(
            "--source", help="Name of the system the files come from (default: fhir); ids are kept per source."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report; write nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import patients, payers and coverage, providers and visit history from FHIR R4 files;
    importing the same files again changes nothing.

    Resources of other types are counted as skipped; a resource that cannot be imported is
    refused with its reason and the rest are imported (exit 0: see the refusals in the report).

    Example: hpms fhir import examples/fhir/
    """
    from hpms.services.interop import fhir_import

    with service_context() as ctx:
        report = fhir_import.import_files(ctx, file, source=source, dry_run=dry_run)
    if as_json:
        print_json(report)
        return
    emit_table(report.counts, COUNT_COLUMNS, as_json=False)
    for r in report.refused:
        also = f" (MRN {r.existing_mrn} on file)" if r.existing_mrn and r.existing_mrn not in r.reason else ""
        info(f"refused: {r.file}: {r.path}: {r.reason}{also}")
    for n in report.notes:
        info(f"note: {n.file}: {n.path}: {n.note}")
    total = {k: sum(getattr(c, k) for c in report.counts) for k in ("created", "updated", "unchanged", "refused")}
    verb = "would import" if dry_run else "imported"
    info(
        f"{verb} {len(report.files)} file(s): {total['created']} created, {total['updated']} updated, "
        f"{total['unchanged']} unchanged, {total['refused']} refused"
    )
