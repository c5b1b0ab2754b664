"""Shared CLI pieces: option aliases, the service context, output (JSON / table / plain),
and confirmation of destructive commands."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import threading

    from hpms.config import Settings
    from hpms.services.platform.context import Ctx

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
# Every list that cuts takes --limit with this default, and says so when it cut (`note_cut`).
DEFAULT_LIMIT = 50
LimitOpt = Annotated[int, typer.Option("--limit", help="At most this many.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do it without asking.")]


def settings() -> Settings:
    from hpms.config import load_settings

    return load_settings()


@contextmanager
def service_context(*, readonly: bool = False) -> Iterator[Ctx]:
    """One transaction as the authenticated user (see hpms.services.platform.context.open_context)."""
    from hpms.services.platform.context import open_context  # deferred: sqlmodel costs ~400 ms to import

    with open_context(settings(), readonly=readonly) as ctx:
        yield ctx


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or Ctrl-C, for a long-running command to stop at its next
    safe point (after the message in hand)."""
    import signal
    import threading

    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, request_stop)
    return stop


def display_zone(ctx: Ctx) -> str:
    """The zone tables show times in (see hpms.services.lookups.display_zone)."""
    from hpms.services.lookups import display_zone as zone_of

    return zone_of(ctx)


def to_jsonable(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, dt.datetime):
        return json_datetime(obj)
    if isinstance(obj, dt.date):
        return obj.isoformat()
    if isinstance(obj, decimal.Decimal):
        return f"{obj:.2f}"
    return obj


def json_datetime(value: dt.datetime) -> str:
    """ISO-8601 with its offset; a UTC time ends in `Z`, as pydantic writes them."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def note_cut(shown: int, limit: int, total: int | None = None, *, what: str = "rows", as_json: bool = False) -> None:
    """Say on stderr that a list was cut at `limit`: "showing 50 of 305 patients (--limit)",
    or, when the total is not counted, that there may be more. JSON goes without it."""
    if as_json:
        return
    if total is not None:
        if total > shown:
            info(f"showing {shown} of {total} {what} (--limit)")
    elif shown >= limit:
        info(f"showing the first {shown} {what}; there may be more (--limit)")


_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?")


def local_minute(value: dt.datetime | str, zone: str | None) -> str:
    """A time as a person reads it in a table: in `zone` (UTC when none), to the minute. A
    time without an offset is a wall-clock time already and is only cut to the minute."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        from zoneinfo import ZoneInfo

        value = value.astimezone(ZoneInfo(zone or "UTC"))
    return value.strftime("%Y-%m-%d %H:%M")


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False) + "\n")


def info(message: str) -> None:
    """Talk for humans: stderr, so stdout stays data."""
    sys.stderr.write(message + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(_cell(v) for v in value)
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _human(row: Any, columns: Sequence[tuple[str, str]], zone: str | None) -> dict[str, Any]:
    """One row for a table: times in the zone, to the minute; the rest as JSON would have it."""
    raw = row.model_dump() if hasattr(row, "model_dump") else dict(row)
    out: dict[str, Any] = {}
    for key, _ in columns:
        value = raw.get(key)
        if isinstance(value, dt.datetime) or (isinstance(value, str) and _ISO.fullmatch(value)):
            out[key] = local_minute(value, zone)
        else:
            out[key] = to_jsonable(value)
    return out


def emit_table(
    rows: Sequence[Any],
    columns: Sequence[tuple[str, str]],
    *,
    as_json: bool,
    title: str | None = None,
    zone: str | None = None,
) -> None:
    """A list: JSON array, a rich table on a TTY, or tab-separated lines (with a header).
    Times show in `zone` (the location's or the practice's; UTC when none), to the minute."""
    if as_json:
        print_json(list(rows))
        return
    data = [_human(r, columns, zone) for r in rows]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for _, label in columns:
            table.add_column(label)
        for r in data:
            table.add_row(*(_cell(r.get(key)) for key, _ in columns))
        Console().print(table)
        if not data:
            info("(none)")
        return
    sys.stdout.write("\t".join(label for _, label in columns) + "\n")
    for r in data:
        sys.stdout.write("\t".join(_cell(r.get(key)).replace("\t", " ") for key, _ in columns) + "\n")


def emit_object(obj: Any, *, as_json: bool, fields: Sequence[str] | None = None) -> None:
    """One object: JSON, or `key: value` lines."""
    if as_json:
        print_json(obj)
        return
    data = to_jsonable(obj)
    keys = fields or list(data)
    width = max((len(k) for k in keys), default=0)
    for k in keys:
        sys.stdout.write(f"{k.ljust(width)}  {_cell(data.get(k))}\n")


def confirm(question: str, yes: bool) -> None:
    """Go on when --yes was given or a TTY user agrees; never prompt without a TTY."""
    if yes:
        return
    from hpms.errors import UsageError

    if sys.stdin.isatty() and sys.stdout.isatty():
        if typer.confirm(question, default=False):
            return
        raise UsageError("cancelled")
    raise UsageError(f"{question.rstrip('?')} refused without --yes", hint="add --yes to confirm")
