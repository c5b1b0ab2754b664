"""`hpms eligibility`: Insurance eligibility: write 270 requests for scheduled patients, import 271 answers. Every rule lives in hpms.services."""

from __future__ import annotations

import typer

app = typer.Typer(help="Insurance eligibility: write 270 requests for scheduled patients, import 271 answers.", no_args_is_help=True)
