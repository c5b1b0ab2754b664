"""`hpms fhir`: FHIR R4 files in and out of hpms."""

from __future__ import annotations

import typer

from hpms.commands.fhir_import import import_

app = typer.Typer(help="FHIR R4 files: import Bundles and NDJSON.", no_args_is_help=True)
app.command("import")(import_)
