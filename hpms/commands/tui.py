"""`hpms tui`: the full-screen front-desk scheduler."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("tui")(tui)


def tui(
    location: Annotated[str | None, typer.Option("--location", help="Location id or name (default: the configured one, else the first).")] = None,
    date: Annotated[str | None, typer.Option("--date", help="Day to open: YYYY-MM-DD, today, tomorrow.")] = None,
    step: Annotated[int, typer.Option("--step", help="Minutes per row: 5, 10, 15 or 30.")] = 15,
) -> None:
    """Open the full-screen scheduler (day view, booking, check-in, waitlist). Press ? inside for the keys.

    Example: hpms tui --location "Lakeside Clinic" --date tomorrow
    """
    import datetime as dt
    import sys

    from hpms.errors import UsageError, ValidationError

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("hpms tui needs a terminal", hint="use `hpms appointments list` in scripts")
    if step not in (5, 10, 15, 30):
        raise ValidationError("--step", "must be 5, 10, 15 or 30")
    from hpms.services.context import open_context
    from hpms.services.localtime import parse_day
    from hpms.services.schedule_view import resolve_location
    from hpms.commands._common import settings

    # Fail here, with the CLI's one-line errors, before the screen opens (no schema, unknown user...).
    with open_context(settings(), readonly=True) as ctx:
        loc = resolve_location(ctx, location)
    day = parse_day("--date", date, today=dt.date.today()) if date else None
    from hpms.tui.app import HpmsApp

    HpmsApp(location=str(loc.id), day=day, step=step).run()
