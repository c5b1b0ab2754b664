"""`hpms reminders`: the practice's appointment reminder rules and quiet hours."""

from __future__ import annotations

from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_object, emit_table, info, service_context

app = typer.Typer(
    help="Appointment reminders: rules by type (hours before, channel) and quiet hours.", no_args_is_help=True
)

COLUMNS = [("id", "ID"), ("type", "Type"), ("hours_before", "Hours before"), ("channel", "Channel")]


@app.command("rules")
def rules(as_json: JsonOpt = False) -> None:
    """The reminder rules: the practice's (no type), and those of types with rules of their own.

    Example: hpms reminders rules
    """
    from hpms.services.messages import reminders

    with service_context() as ctx:
        rows = [r.as_dict() for r in reminders.list_rules(ctx)]
    emit_table(
        [{**r, "type": r["type"] or "(every type)"} for r in rows] if not as_json else rows,
        COLUMNS,
        as_json=as_json,
        title="Reminder rules",
    )


@app.command("add")
def add(
    hours_before: Annotated[int | None, typer.Option("--hours", help="Hours before the visit (1-720).")] = None,
    channel: Annotated[
        str, typer.Option("--channel", help="email, sms, preferred (the patient's), or none (no reminders).")
    ] = "preferred",
    type_: Annotated[
        str | None, typer.Option("--type", help="Only visits of this type (default: every type without own rules).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a reminder rule (admin). A type with rules of its own uses only those; `--channel none`
    gives a type no reminders.

    Example: hpms reminders add --hours 72 --channel email
    """
    from hpms.services.messages import reminders

    with service_context() as ctx:
        out = reminders.add_rule(ctx, hours_before=hours_before, channel=channel, type_ref=type_)
    if as_json:
        emit_object(out.as_dict(), as_json=True)
    else:
        info(f"rule {out.id}: {out.channel} {out.hours_before} h before visits of {out.type or 'every type'}")


@app.command("remove")
def remove(
    rule: Annotated[int, typer.Argument(help="Rule id (see `hpms reminders rules`).")], as_json: JsonOpt = False
) -> None:
    """Remove a reminder rule (admin); reminders already queued stay.

    Example: hpms reminders remove 3
    """
    from hpms.services.messages import reminders

    with service_context() as ctx:
        out = reminders.remove_rule(ctx, rule)
    if as_json:
        emit_object(out.as_dict(), as_json=True)
    else:
        info(f"removed rule {out.id}")


@app.command("quiet")
def quiet(
    quiet_until: Annotated[str, typer.Option("--until", help="No reminder before this local time (08:00).")] = "08:00",
    quiet_from: Annotated[str, typer.Option("--from", help="No reminder from this local time on (20:00).")] = "20:00",
    as_json: JsonOpt = False,
) -> None:
    """Set the quiet hours (admin): reminders go between --until and --from, in the patient's
    time zone (else the location's).

    Example: hpms reminders quiet --until 9:00 --from 19:30
    """
    from hpms.services.messages import reminders

    with service_context() as ctx:
        out = reminders.set_quiet_hours(ctx, until=quiet_until, since=quiet_from)
    emit_object(out, as_json=as_json)
