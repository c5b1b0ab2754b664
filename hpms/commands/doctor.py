"""`hpms doctor`: pre-flight checks of the installation, one line each."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, print_json, settings


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(
    folder: Annotated[
        list[Path] | None,
        typer.Option("--folder", help="An output folder to check as well (repeat it); the claim files' are checked."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the installation before it is relied on (exit 1 when a check fails).

    The database and its schema, the key file (0600) and its last export, the audit trail,
    the practice's tax id and clearinghouse ids, provider NPIs and taxonomy codes, payer ids and
    claim filing indicators, location NPIs and addresses, the last billing run and backup, and
    that the output folders take new files. Warnings do not fail.

    Example: hpms doctor --folder /var/spool/hpms/claims
    """
    from hpms.commands._errors import command_line
    from hpms.services import doctor as checks

    report = checks.run(settings(), folders=folder or [])
    if as_json:
        print_json(report.as_dict())
    else:
        width = max(len(c.name) for c in report.checks)
        for c in report.checks:
            label = c.status.upper() if c.status in (checks.FAIL, checks.WARN) else c.status
            line = f"{label:<7} {c.name:<{width}}  {c.detail}"
            if c.action is not None and c.status in (checks.FAIL, checks.WARN):
                line += f"; {command_line(c.action)}"
            sys.stdout.write(line + "\n")
    if not report.ok:
        raise typer.Exit(1)
