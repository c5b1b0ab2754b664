"""`hpms payments`: Patient payments: record (copays at check-in too), list, refund; credit is applied oldest visit first. Every rule lives in hpms.services."""

from __future__ import annotations

import typer

app = typer.Typer(help="Patient payments: record (copays at check-in too), list, refund; credit is applied oldest visit first.", no_args_is_help=True)
