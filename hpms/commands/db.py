"""`hpms db`: schema upgrade, checks, backup and restore."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, YesOpt, emit_object, info, settings

app = typer.Typer(help="Database upgrade, check, backup and restore.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(as_json: JsonOpt = False) -> None:
    """Upgrade the database schema to this version of hpms (admin).

    Example: hpms db upgrade
    """
    from hpms.services.platform import admin

    result = admin.upgrade(settings())
    if as_json:
        emit_object(result, as_json=True)
    else:
        info(
            f"schema {result['schema_before']} -> {result['schema']}"
            if result["changed"]
            else f"schema already at {result['schema']}"
        )


@app.command("check")
def check(as_json: JsonOpt = False) -> None:
    """Check that the schema is current and the database is intact (exit 1 if not).

    Example: hpms db check --json
    """
    from hpms.services.platform import admin

    result = admin.check(settings())
    emit_object(result, as_json=as_json)
    if not result["ok"]:
        raise typer.Exit(1)


@app.command("backup")
def backup(
    path: Annotated[Path, typer.Argument(help="File to write (written to a temp name, then renamed).")],
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy the SQLite database to PATH while hpms stays in use (online backup).

    For PostgreSQL use pg_dump (see docs/admin.md).

    Example: hpms db backup /var/backups/hpms/hpms-$(date +%F).db
    """
    from hpms.services.platform import admin

    result = admin.backup(settings(), path, overwrite=yes)
    if as_json:
        emit_object(result, as_json=True)
    else:
        info(f"backup written to {result['backup']} ({result['bytes']} bytes)")


@app.command("restore")
def restore(
    path: Annotated[Path, typer.Argument(help="A file made by `hpms db backup`.")],
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Replace the SQLite database with a backup; refuses to overwrite without --yes.

    Example: hpms db restore /var/backups/hpms/hpms-2026-11-25.db --yes
    """
    from hpms.services.platform import admin

    result = admin.restore(settings(), path, yes=yes)
    if as_json:
        emit_object(result, as_json=True)
    else:
        info(f"restored {result['restored']} from {result['from']} (schema {result['schema']})")
        if not result["schema_ok"]:
            info("the backup has an older schema: run `hpms db upgrade`")
