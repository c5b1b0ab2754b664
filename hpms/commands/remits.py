"""`hpms remits`: Remittance advice (835): import payments and adjustments, match what could not be matched. Every rule lives in hpms.services."""

from __future__ import annotations

import typer

app = typer.Typer(help="Remittance advice (835): import payments and adjustments, match what could not be matched.", no_args_is_help=True)
