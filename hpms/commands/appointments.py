"""`hpms appointments`: book, move and cancel visits, walk them through the day, the day sheet,
slot search and the calendar feed. Every rule lives in hpms.services.scheduling.appointments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hpms.commands._common import JsonOpt, emit_object, emit_table, info, print_json, service_context, to_jsonable

app = typer.Typer(
    help="Appointments: booking, rescheduling, the visit lifecycle and the day sheet.", no_args_is_help=True
)

SHEET_COLUMNS = [
    ("id", "ID"),
    ("time", "Time"),
    ("until", "Until"),
    ("location", "Location"),
    ("provider", "Provider"),
    ("patient", "Patient"),
    ("mrn", "MRN"),
    ("type", "Type"),
    ("status", "Status"),
    ("room", "Room"),
]
SLOT_COLUMNS = [
    ("start", "Start"),
    ("end", "End"),
    ("provider", "Provider"),
    ("location", "Location"),
    ("room", "Room"),
]

IdArg = Annotated[str, typer.Argument(help="Appointment id.")]
Patient = Annotated[str | None, typer.Option("--patient", help="MRN or numeric id of the patient.")]
Provider = Annotated[str | None, typer.Option("--provider", help="Provider id, NPI or name.")]
Location = Annotated[str | None, typer.Option("--location", help="Location id or name (default: the provider's).")]
Room = Annotated[str | None, typer.Option("--room", help="Room id or name.")]
At = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="Start, 'YYYY-MM-DD HH:MM' in the location's time zone (or with an offset: 2026-11-01T01:30-05:00).",
    ),
]
Override = Annotated[
    bool,
    typer.Option(
        "--override", help="Book outside working hours, on time off or in the past (admin, provider; audited)."
    ),
]
ThisAndFollowing = Annotated[
    bool, typer.Option("--this-and-following", help="Also the later visits of the same series.")
]
ExpectedVersion = Annotated[
    int | None, typer.Option("--expected-version", help="Refuse (exit 4) if the visit changed since this version.")
]


def _when(appt: Any) -> str:
    start = appt.start
    return f"{start:%Y-%m-%d %H:%M} {start.tzname() or ''}".rstrip()


def _describe(appt: Any) -> str:
    return (
        f"appointment {appt.id}: {_when(appt)} {appt.type} with {appt.provider} for {appt.patient} "
        f"({appt.mrn}) at {appt.location}" + (f", room {appt.room}" if appt.room else "")
    )


def _report_skipped(result: Any) -> None:
    for s in result.skipped:
        info(f"skipped #{s.index} {s.start:%Y-%m-%d %H:%M}: {s.problem}")


@app.command("book")
def book(
    patient: Patient = None,
    provider: Provider = None,
    type_: Annotated[str | None, typer.Option("--type", help="Appointment type, by name or id.")] = None,
    at: At = None,
    location: Location = None,
    room: Room = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Reason for the visit.")] = None,
    repeat: Annotated[
        str | None,
        typer.Option("--repeat", help="Book a series: an RRULE with COUNT or UNTIL, e.g. 'FREQ=WEEKLY;COUNT=6'."),
    ] = None,
    override: Override = False,
    skip_conflicts: Annotated[
        bool, typer.Option("--skip-conflicts", help="With --repeat: book the occurrences that fit, skip the others.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Book a visit (or a series with --repeat) and print its id. A taken slot is refused
    (exit 4); a series with any taken occurrence books nothing unless --skip-conflicts.
    --json prints the visit, or with --repeat {series_id, booked, skipped}.

    Example: hpms appointments book --patient 0100001 --provider Okafor --type "Follow-up" --at "next monday 9:30"
    """
    from hpms.services.scheduling import appointments

    with service_context() as ctx:
        result = appointments.book(
            ctx,
            patient=patient,
            provider=provider,
            type=type_,
            at=at,
            location=location,
            room=room,
            reason=reason,
            repeat=repeat,
            override=override,
            skip_conflicts=skip_conflicts,
        )
    _report_skipped(result)
    if as_json:
        emit_object(result if repeat else result.booked[0], as_json=True)
        return
    for appt in result.booked:
        typer.echo(appt.id)
    if repeat:
        first = result.booked[0]
        info(
            f"booked {len(result.booked)} visit(s) of series {result.series_id} from {_when(first)}"
            + (f"; {len(result.skipped)} skipped" if result.skipped else "")
        )
    else:
        info("booked " + _describe(result.booked[0]))


@app.command("reschedule")
def reschedule(
    appointment: IdArg,
    at: At = None,
    provider: Annotated[str | None, typer.Option("--provider", help="Move to this provider.")] = None,
    location: Annotated[str | None, typer.Option("--location", help="Move to this location.")] = None,
    room: Room = None,
    this_and_following: ThisAndFollowing = False,
    override: Override = False,
    expected_version: ExpectedVersion = None,
    as_json: JsonOpt = False,
) -> None:
    """Move a visit (with --this-and-following, it and the rest of its series by the same
    shift) to a new time, and optionally to another provider, location or room. --json prints
    the visit (an array with --this-and-following).

    Example: hpms appointments reschedule 42 --at "next tuesday 14:00"
    """
    from hpms.services.scheduling import appointments

    with service_context() as ctx:
        moved = appointments.reschedule(
            ctx,
            appointment,
            at=at,
            provider=provider,
            location=location,
            room=room,
            this_and_following=this_and_following,
            override=override,
            expected_version=expected_version,
        )
    if as_json:
        emit_object(moved if this_and_following else moved[0], as_json=True)
        return
    for appt in moved:
        info("moved " + _describe(appt))


@app.command("cancel")
def cancel(
    appointment: IdArg,
    reason: Annotated[str | None, typer.Option("--reason", help="Why the visit is cancelled (required).")] = None,
    late: Annotated[
        bool,
        typer.Option("--late", help="Flag it as a late cancellation (automatic inside the practice's notice window)."),
    ] = False,
    this_and_following: ThisAndFollowing = False,
    expected_version: ExpectedVersion = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel a visit (or it and the rest of its series); its time is offered to the waitlist.
    --json prints the visit (an array with --this-and-following).

    Example: hpms appointments cancel 42 --reason "patient called, feeling better"
    """
    from hpms.services.scheduling import appointments

    with service_context() as ctx:
        done = appointments.cancel(
            ctx,
            appointment,
            reason=reason,
            late=late,
            this_and_following=this_and_following,
            expected_version=expected_version,
        )
    if as_json:
        emit_object(done if this_and_following else done[0], as_json=True)
        return
    for appt in done:
        info(
            f"cancelled appointment {appt.id} ({_when(appt)})" + (" as a late cancellation" if appt.late_cancel else "")
        )


def _transition(
    appointment: str,
    action: str,
    verb: str,
    as_json: bool,
    *,
    room: str | None = None,
    expected_version: int | None = None,
) -> None:
    from hpms.services.scheduling import appointments

    with service_context() as ctx:
        appt = appointments.transition(ctx, appointment, action, room=room, expected_version=expected_version)
    if as_json:
        emit_object(appt, as_json=True)
    else:
        info(f"appointment {appt.id} {verb}" + (f" (room {appt.room})" if action == "room" and appt.room else ""))


@app.command("confirm")
def confirm(appointment: IdArg, expected_version: ExpectedVersion = None, as_json: JsonOpt = False) -> None:
    """Mark a booked visit as confirmed by the patient.

    Example: hpms appointments confirm 42
    """
    _transition(appointment, "confirm", "confirmed", as_json, expected_version=expected_version)


@app.command("checkin")
def checkin(appointment: IdArg, expected_version: ExpectedVersion = None, as_json: JsonOpt = False) -> None:
    """Check a patient in for today's visit (the patient has arrived).

    Example: hpms appointments checkin 42
    """
    _transition(appointment, "checkin", "checked in", as_json, expected_version=expected_version)


@app.command("room")
def room(
    appointment: IdArg,
    room: Annotated[str | None, typer.Option("--room", help="Room id or name.")] = None,
    expected_version: ExpectedVersion = None,
    as_json: JsonOpt = False,
) -> None:
    """Put an arrived patient in a room.

    Example: hpms appointments room 42 --room "Exam 2"
    """
    _transition(appointment, "room", "roomed", as_json, room=room, expected_version=expected_version)


@app.command("complete")
def complete(appointment: IdArg, expected_version: ExpectedVersion = None, as_json: JsonOpt = False) -> None:
    """Mark a visit as completed.

    Example: hpms appointments complete 42
    """
    _transition(appointment, "complete", "completed", as_json, expected_version=expected_version)


@app.command("noshow")
def noshow(appointment: IdArg, expected_version: ExpectedVersion = None, as_json: JsonOpt = False) -> None:
    """Mark a visit whose time has come as a no-show.

    Example: hpms appointments noshow 42
    """
    _transition(appointment, "noshow", "marked no-show", as_json, expected_version=expected_version)


def _sheet(rows: list, *, with_date: bool) -> list[dict]:
    fmt = "%Y-%m-%d %H:%M" if with_date else "%H:%M"
    return [
        {
            "id": r.id,
            "time": r.start.strftime(fmt),
            "until": r.end.strftime("%H:%M"),
            "location": r.location,
            "provider": r.provider,
            "patient": r.patient,
            "mrn": r.mrn,
            "type": r.type,
            "status": r.status,
            "room": r.room,
        }
        for r in rows
    ]


@app.command("list")
def list_(
    date: Annotated[
        str | None, typer.Option("--date", help="The day: today (default), tomorrow, +N or YYYY-MM-DD.")
    ] = None,
    week: Annotated[bool, typer.Option("--week", help="The whole week (Monday to Sunday) of --date.")] = False,
    start: Annotated[str | None, typer.Option("--from", help="First day of a range (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day of a range (YYYY-MM-DD).")] = None,
    provider: Provider = None,
    location: Annotated[str | None, typer.Option("--location", help="Only this location.")] = None,
    patient: Patient = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only these statuses, comma-separated (booked, "
            "confirmed, arrived, in_room, completed, no_show, "
            "cancelled).",
        ),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include cancelled visits.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The day sheet: visits of a day (or week, or date range), times in each location's zone.

    Each patient's latest insurance eligibility answer is shown too (active, inactive, error:
    reason, pending, not checked) to users who may read it.

    Example: hpms appointments list --date tomorrow --provider Okafor
    """
    from hpms.services.scheduling import appointments

    with service_context() as ctx:
        rows = appointments.list_appointments(
            ctx,
            day=date,
            week=week,
            start=start,
            end=end,
            provider=provider,
            location=location,
            patient=patient,
            status=status,
            include_cancelled=all_,
        )
        from hpms.services.billing import eligibility as elig

        statuses = elig.for_appointments(ctx, rows)
    if statuses is not None:
        sheet = [to_jsonable(x) for x in rows] if as_json else _sheet(rows, with_date=bool(week or start or end))
        for line, x in zip(sheet, rows):
            line["eligibility"] = statuses[x.patient_id]
        emit_table(sheet, SHEET_COLUMNS + [("eligibility", "Eligibility")], as_json=as_json, title="Appointments")
        return
    if as_json:
        emit_table(rows, [], as_json=True)
        return
    emit_table(_sheet(rows, with_date=bool(week or start or end)), SHEET_COLUMNS, as_json=False, title="Appointments")


@app.command("show")
def show(appointment: IdArg, as_json: JsonOpt = False) -> None:
    """Show one visit with its whole lifecycle.

    Example: hpms appointments show 42 --json
    """
    from hpms.services.scheduling import appointments

    with service_context() as ctx:
        appt = appointments.show(ctx, appointment)
    emit_object(appt, as_json=as_json)


@app.command("history")
def history(patient: Patient = None, as_json: JsonOpt = False) -> None:
    """A patient's visits, newest first, every status.

    Example: hpms appointments history --patient 0100001
    """
    from hpms.services.scheduling import appointments

    with service_context() as ctx:
        rows = appointments.history(ctx, patient)
    if as_json:
        emit_table(rows, [], as_json=True)
        return
    emit_table(_sheet(rows, with_date=True), SHEET_COLUMNS, as_json=False, title="Visits")


@app.command("find-slot")
def find_slot(
    type_: Annotated[str | None, typer.Option("--type", help="Appointment type, by name or id.")] = None,
    provider: Provider = None,
    any_provider: Annotated[
        bool, typer.Option("--any-provider", help="Search every active provider (the default without --provider).")
    ] = False,
    location: Annotated[str | None, typer.Option("--location", help="Only this location.")] = None,
    after: Annotated[str | None, typer.Option("--after", help="Not before this time (default: now).")] = None,
    before: Annotated[str | None, typer.Option("--before", help="Ending by this time (default: 90 days on).")] = None,
    count: Annotated[int, typer.Option("--count", help="How many slots (1-500).")] = 5,
    patient: Annotated[str | None, typer.Option("--patient", help="Also keep clear of this patient's visits.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The earliest free slots for an appointment type: inside working hours, clear of time
    off and of other bookings, with a free room when the type needs one.

    Example: hpms appointments find-slot --type "New patient" --any-provider --after "tomorrow 8:00" --count 3
    """
    from hpms.services.scheduling import appointments

    with service_context() as ctx:
        slots = appointments.find_slot(
            ctx,
            type=type_,
            provider=provider,
            any_provider=any_provider,
            location=location,
            after=after,
            before=before,
            count=count,
            patient=patient,
        )
    if as_json:
        emit_table(slots, [], as_json=True)
        return
    rows = [
        {
            "start": s.start.strftime("%Y-%m-%d %H:%M"),
            "end": s.end.strftime("%H:%M"),
            "provider": s.provider,
            "location": s.location,
            "room": s.room,
        }
        for s in slots
    ]
    emit_table(rows, SLOT_COLUMNS, as_json=False, title="Free slots")


@app.command("ical")
def ical(
    provider: Provider = None,
    start: Annotated[str | None, typer.Option("--from", help="First day (default: 30 days ago).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day (default: 180 days on).")] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this .ics file (replaced atomically) instead of stdout."),
    ] = None,
    with_names: Annotated[
        bool, typer.Option("--with-names", help="Put patient names in the events (audited).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """A provider's appointments as an iCalendar (RFC 5545) feed, without patient names unless
    --with-names.

    Example: hpms appointments ical --provider Okafor -o /srv/calendars/okafor.ics
    """
    from hpms.services.scheduling import appointments

    with service_context() as ctx:
        data = appointments.ical(ctx, provider=provider, start=start, end=end, with_names=with_names)
    events = data.count(b"BEGIN:VEVENT")
    if output is not None:
        from hpms.fileio import write_atomically

        write_atomically(output, data, field="output")
        if as_json:
            print_json({"path": str(output), "events": events, "bytes": len(data)})
        else:
            info(f"wrote {events} event(s) to {output}")
        return
    if as_json:
        print_json({"path": None, "events": events, "ical": data.decode("utf-8")})
        return
    typer.echo(data, nl=False)
