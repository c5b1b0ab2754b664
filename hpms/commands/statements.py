"""`hpms statements`: Patient statements: one file per patient with activity, insurance paid, adjustments, amount due and aging. Every rule lives in hpms.services."""

from __future__ import annotations

import typer

app = typer.Typer(help="Patient statements: one file per patient with activity, insurance paid, adjustments, amount due and aging.", no_args_is_help=True)
