"""`hpms schedule`: working hours, time off, a provider's week and the scheduling policy."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_object, emit_table, info, service_context, to_jsonable

app = typer.Typer(help="Working hours, time off, a provider's week and the scheduling policy.", no_args_is_help=True)
hours_app = typer.Typer(help="Providers' working hours: weekly wall-clock rules per location.", no_args_is_help=True)
timeoff_app = typer.Typer(help="Time off of a provider, and practice holidays.", no_args_is_help=True)
app.add_typer(hours_app, name="hours")
app.add_typer(timeoff_app, name="timeoff")

HOURS_COLUMNS = [
    ("id", "ID"),
    ("provider", "Provider"),
    ("location", "Location"),
    ("days", "Days"),
    ("start_time", "Start"),
    ("end_time", "End"),
    ("effective_from", "From"),
    ("effective_to", "To"),
    ("rrule", "Rule"),
]
TIMEOFF_COLUMNS = [
    ("id", "ID"),
    ("provider", "Provider"),
    ("location", "Location"),
    ("starts", "From"),
    ("ends", "To"),
    ("reason", "Reason"),
]
WEEK_COLUMNS = [
    ("date", "Date"),
    ("weekday", "Day"),
    ("location", "Location"),
    ("hours", "Hours"),
    ("free", "Free"),
    ("free_min", "Free min"),
    ("booked", "Booked"),
    ("time_off", "Time off"),
]

ProviderArg = Annotated[str, typer.Argument(help="Provider id, NPI or name (last name, or first and last).")]


# ---- working hours -------------------------------------------------------------------------


@hours_app.command("set")
def hours_set(
    provider: ProviderArg,
    location: Annotated[
        str | None, typer.Option("--location", help="Location id or name (default: the provider's only location).")
    ] = None,
    days: Annotated[str | None, typer.Option("--days", help="MO-FR, mon,wed,fri, weekdays, daily...")] = None,
    start: Annotated[str | None, typer.Option("--start", help="Start of the day, local HH:MM.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="End of the day, local HH:MM.")] = None,
    effective_from: Annotated[
        str | None, typer.Option("--from", help="First day the hours apply (default: today).")
    ] = None,
    effective_to: Annotated[
        str | None, typer.Option("--to", help="Last day the hours apply (default: open-ended).")
    ] = None,
    rrule: Annotated[
        str | None,
        typer.Option(
            "--rrule", help="An RRULE instead of --days, counted from --from, e.g. FREQ=WEEKLY;INTERVAL=2;BYDAY=FR."
        ),
    ] = None,
    add: Annotated[
        bool, typer.Option("--add", help="Add to the hours of those days instead of replacing them.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Set a provider's working hours at a location on some days, from a date on (admin, front desk).

    Earlier hours on those days end the day before (other days keep theirs) unless --add.
    Prints the rules then in force for that provider and location.

    Example: hpms schedule hours set Okafor --location Main --days MO-FR --start 08:00 --end 17:00
    """
    from hpms.services.scheduling import availability

    with service_context() as ctx:
        rows = availability.set_hours(
            ctx,
            provider,
            location=location,
            days=days,
            start=start,
            end=end,
            effective_from=effective_from,
            effective_to=effective_to,
            rrule=rrule,
            add=add,
        )
    emit_table(rows, HOURS_COLUMNS, as_json=as_json, title="Working hours")


@hours_app.command("list")
def hours_list(
    provider: Annotated[str | None, typer.Option("--provider", help="Only this provider's hours.")] = None,
    location: Annotated[str | None, typer.Option("--location", help="Only the hours at this location.")] = None,
    on: Annotated[str | None, typer.Option("--on", help="Only the rules in force on this date.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List working-hours rules (current and future ones, or those in force --on a date).

    Example: hpms schedule hours list --provider Okafor --on "next monday"
    """
    from hpms.services.scheduling import availability

    with service_context() as ctx:
        rows = availability.list_hours(ctx, provider=provider, location=location, on=on)
    emit_table(rows, HOURS_COLUMNS, as_json=as_json, title="Working hours")


@hours_app.command("remove")
def hours_remove(
    rule_id: Annotated[str, typer.Argument(help="Id of the rule (see `hpms schedule hours list`).")],
    as_json: JsonOpt = False,
) -> None:
    """Remove a working-hours rule (admin, front desk).

    Example: hpms schedule hours remove 12
    """
    from hpms.services.scheduling import availability

    with service_context() as ctx:
        out = availability.remove_hours(ctx, rule_id)
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(
            f"removed working hours {out.id}: {out.provider} at {out.location}, {out.days} "
            f"{out.start_time}-{out.end_time}"
        )


# ---- time off ------------------------------------------------------------------------------


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _timeoff_rows(rows) -> list[dict]:
    return [
        {
            "id": r.id,
            "provider": r.provider or "(practice holiday)",
            "location": r.location or "(all)",
            "starts": _when(r.starts),
            "ends": _when(r.ends),
            "reason": r.reason,
        }
        for r in rows
    ]


@timeoff_app.command("add")
def timeoff_add(
    provider: Annotated[str | None, typer.Option("--provider", help="The provider who is away.")] = None,
    holiday: Annotated[bool, typer.Option("--holiday", help="A practice holiday: every provider is away.")] = False,
    location: Annotated[str | None, typer.Option("--location", help="Only at this location (default: all).")] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="YYYY-MM-DD (whole day) or 'YYYY-MM-DD HH:MM' local.")
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--to", help="YYYY-MM-DD (that whole day included) or 'YYYY-MM-DD HH:MM' local (default: the --from day)."
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (shown in the schedule; no patient data).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add time off for a provider, or a practice holiday (admin, front desk).

    Appointments it overlaps stay booked and are listed in a warning, to be moved.

    Example: hpms schedule timeoff add --provider Okafor --from "next monday" --to "next friday" --reason vacation
    """
    from hpms.errors import ValidationError
    from hpms.services.scheduling import availability

    if bool(provider) == holiday:
        raise ValidationError("--provider", "give --provider PROVIDER or --holiday (exactly one)")
    with service_context() as ctx:
        out, affected = availability.add_time_off(
            ctx, provider=provider, location=location, start=start, end=end, reason=reason
        )
    if as_json:
        emit_object({"time_off": out, "affected_appointments": affected}, as_json=True)
    else:
        who = out.provider or "practice holiday"
        info(
            f"added time off {out.id} ({who}, {out.location or 'all locations'}): "
            f"{_when(out.starts)} to {_when(out.ends)}"
        )
    if affected:
        info(
            f"hpms: warning: the time off overlaps {len(affected)} booked appointment(s): "
            f"{', '.join(str(i) for i in affected)}; they stay booked until moved or cancelled"
        )


@timeoff_app.command("list")
def timeoff_list(
    provider: Annotated[
        str | None, typer.Option("--provider", help="Only this provider's (and practice) time off.")
    ] = None,
    location: Annotated[str | None, typer.Option("--location", help="Only time off at this location.")] = None,
    start: Annotated[str | None, typer.Option("--from", help="From this date (default: today).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Up to this date (default: no end).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List time off and practice holidays, from today on unless --from.

    Example: hpms schedule timeoff list --provider Okafor --from today --to +30
    """
    from hpms.services.scheduling import availability

    with service_context() as ctx:
        rows = availability.list_time_off(ctx, provider=provider, location=location, start=start, end=end)
    if as_json:
        emit_table(rows, TIMEOFF_COLUMNS, as_json=True)
    else:
        emit_table(_timeoff_rows(rows), TIMEOFF_COLUMNS, as_json=False, title="Time off")


@timeoff_app.command("remove")
def timeoff_remove(
    time_off_id: Annotated[str, typer.Argument(metavar="ID", help="Id of the time off.")], as_json: JsonOpt = False
) -> None:
    """Remove time off or a holiday (admin, front desk).

    Example: hpms schedule timeoff remove 7
    """
    from hpms.services.scheduling import availability

    with service_context() as ctx:
        out = availability.remove_time_off(ctx, time_off_id)
    if as_json:
        emit_object(out, as_json=True)
    else:
        info(
            f"removed time off {out.id} ({out.provider or 'practice holiday'}): "
            f"{_when(out.starts)} to {_when(out.ends)}"
        )


# ---- the week and the policy ---------------------------------------------------------------


@app.command("show")
def show(
    provider: ProviderArg,
    week: Annotated[
        str | None, typer.Option("--week", help="2026-W50, this (default), next, last, or any date in the week.")
    ] = None,
    location: Annotated[str | None, typer.Option("--location", help="Only this location.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a provider's week: per day and location the hours, free time, bookings and time off
    (no patient data).

    Example: hpms schedule show Okafor --week next
    """
    from hpms.services.scheduling import availability

    with service_context() as ctx:
        data = availability.week(ctx, provider, week_of=week, location=location)
    if as_json:
        emit_object(data, as_json=True)
        return
    rows = [
        {
            "date": d["date"],
            "weekday": d["weekday"],
            "location": d["location"],
            "hours": ", ".join(d["hours"]),
            "free": ", ".join(d["free"]),
            "free_min": d["free_min"],
            "booked": d["booked"],
            "time_off": "; ".join(t["reason"] or "time off" for t in d["time_off"]),
        }
        for d in data["days"]
    ]
    title = f"{data['provider']}: week {data['week']} ({to_jsonable(data['from'])} to {to_jsonable(data['to'])})"
    if not sys.stdout.isatty():
        info(title)
    emit_table(rows, WEEK_COLUMNS, as_json=False, title=title)


@app.command("policy")
def policy(
    late_cancel_hours: Annotated[
        str | None,
        typer.Option(
            "--late-cancel-hours", metavar="N", help="A cancellation this close to the visit counts as late (0-336)."
        ),
    ] = None,
    slot_step: Annotated[
        str | None,
        typer.Option(
            "--slot-step", metavar="MIN", help="Offered start times fall on this grid: 5, 10, 15, 20, 30 or 60."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the scheduling policy, or change it when options are given (admin).

    Example: hpms schedule policy --late-cancel-hours 24 --slot-step 15
    """
    from hpms.services.scheduling import availability

    with service_context() as ctx:
        if late_cancel_hours is None and slot_step is None:
            out = availability.get_policy(ctx)
        else:
            out = availability.set_policy(ctx, late_cancel_hours=late_cancel_hours, slot_step_min=slot_step)
    emit_object(out, as_json=as_json)
