"""`hpms init`: create (or upgrade) the database, the key file, the practice and its first admin."""

from __future__ import annotations

from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_object, info, settings


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def init(
    practice: Annotated[str | None, typer.Option("--practice", help="Name of the practice.")] = None,
    tz: Annotated[
        str | None, typer.Option("--tz", help="IANA time zone of the first location (default: this machine's).")
    ] = None,
    location: Annotated[
        str | None, typer.Option("--location", help="Name of the first location (default: the practice name).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or upgrade the hpms database; the OS user running it becomes the first admin.

    Safe to run again: an existing practice is kept and only the schema is upgraded. Says where
    the encryption key file is: back it up, apart from the database.

    Example: hpms init --practice "Riverside Family Medicine" --tz America/New_York
    """
    from hpms.services.platform import admin  # deferred: sqlmodel

    result = admin.init(settings(), practice=practice, tz=tz, location=location)
    if as_json:
        emit_object(result, as_json=True)
        return
    if result["created"]:
        info(f"initialized {result['organization']!r} in {result['database']}; admin: {result['admin']}")
    else:
        info(f"already initialized ({result['organization']!r}); schema {result['schema']}")
    info(key_notice(result["key_file"], created=bool(result["key_created"])))
    if result["created"]:
        info("next: `hpms locations list`, `hpms users add NAME --role front_desk`, `hpms patients register --help`")


def key_notice(key_file: str | None, *, created: bool) -> str:
    """Where the encryption key is, and that a backup of the database needs it, kept apart."""
    if key_file is None:
        return "encryption key: from HPMS_KEY; keep a copy of it apart from the database backups"
    what = "created" if created else "in"
    return (
        f"encryption key: {what} {key_file}; back it up, apart from the database "
        "(a database backup cannot be read without it; kept together, one theft opens both)"
    )
