"""The visit lifecycle: confirm, check in, room, complete and no-show, each allowed from some
statuses only and timestamped; and the checks a cancellation shares with them (the status it
starts from, the version the caller saw)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpms.errors import ConflictError, ValidationError
from hpms.models import Appointment, AppointmentOut, Location
from hpms.services.interop.hl7 import events as hl7_events
from hpms.services.lookups import find_room, load_appointment
from hpms.services.platform import audit
from hpms.services.platform import localtime as lt
from hpms.services.platform.permissions import require
from hpms.services.scheduling.guards import flush, overlap, span
from hpms.services.scheduling.listing import outputs

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

# action -> (statuses it may start from, status it leads to, timestamp it sets)
TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "confirm": (frozenset({"booked"}), "confirmed", "confirmed_at"),
    "checkin": (frozenset({"booked", "confirmed"}), "arrived", "arrived_at"),
    "room": (frozenset({"arrived", "in_room"}), "in_room", "roomed_at"),
    "complete": (frozenset({"arrived", "in_room"}), "completed", "completed_at"),
    "noshow": (frozenset({"booked", "confirmed"}), "no_show", "no_show_at"),
    "cancel": (frozenset({"booked", "confirmed"}), "cancelled", "cancelled_at"),
}
_DONE = {
    "checkin": "checked in",
    "noshow": "marked no-show",
    "room": "roomed",
    "complete": "completed",
    "confirm": "confirmed",
    "cancel": "cancelled",
}


def check_transition(appt: Appointment, action: str) -> None:
    """ConflictError unless the visit's status allows `action`."""
    sources, _, _ = TRANSITIONS[action]
    if appt.status not in sources:
        raise ConflictError(
            f"appointment {appt.id} is {appt.status.replace('_', ' ')}; it cannot be {_DONE[action]}",
            hint=f"allowed from: {', '.join(sorted(sources))}",
        )


def check_version(appt: Appointment, expected_version: int | None) -> None:
    """ConflictError when the visit changed since the version the caller saw."""
    if expected_version is not None and appt.version != expected_version:
        raise ConflictError(
            f"appointment {appt.id} changed meanwhile (version {appt.version}, expected {expected_version})",
            hint="show it again and retry",
        )


def set_status(ctx: Ctx, appt: Appointment, action: str) -> str:
    """Apply `action` (status, its timestamp, a new version); returns the status it left."""
    _, target, stamp = TRANSITIONS[action]
    old = appt.status
    appt.status = target
    setattr(appt, stamp, ctx.now())
    appt.version += 1
    appt.updated_at = ctx.now()
    return old


def transition(
    ctx: Ctx,
    appointment_id: str | int,
    action: str,
    *,
    room: str | int | None = None,
    expected_version: int | None = None,
) -> AppointmentOut:
    """confirm, checkin, room, complete, noshow: validated against the current status and
    timestamped. A check-in is for today's visits, a no-show for one whose time has come;
    rooming takes a free room of the visit's location; completing one queues its satisfaction
    survey when the practice sends them."""
    if action not in TRANSITIONS or action == "cancel":
        raise ValueError(action)
    require(ctx.actor, "appointment.update")
    appt = load_appointment(ctx, appointment_id)
    assert appt.id is not None
    check_version(appt, expected_version)
    check_transition(appt, action)
    loc = ctx.session.get(Location, appt.location_id)
    assert loc is not None  # a foreign key of the appointment
    now = ctx.now()
    if action == "checkin":
        today = lt.local_now(now, loc.tz).date()
        day = lt.to_local(appt.start_utc, loc.tz).date()
        if day != today:
            raise ValidationError("appointment", f"appointment {appt.id} is on {day}, not today ({today})")
    if action == "noshow" and appt.start_utc > now:
        raise ConflictError(f"appointment {appt.id} has not started yet ({lt.fmt_local(appt.start_utc, loc.tz)})")
    fields = ["status"]
    if action == "room":
        if room is None or not str(room).strip():
            raise ValidationError("room", "is required")
        r = find_room(ctx, room, location_id=loc.id)
        assert r.id is not None
        if r.id != appt.room_id:
            hit = overlap(
                ctx.session,
                Appointment.room_id,
                r.id,
                appt.start_utc,
                appt.block_end_utc,
                Appointment.block_end_utc,
                (appt.id,),
            )
            if hit:
                raise ConflictError(
                    f"room {r.name!r} is taken by appointment {hit.id} at {span(hit, loc.tz)}", field="room"
                )
            appt.room_id = r.id
            fields.append("room")
    old = set_status(ctx, appt, action)
    flush(ctx.session)
    audit.record(
        ctx,
        audit.Event(
            "update",
            "appointment",
            appt.id,
            patient_id=appt.patient_id,
            fields=fields,
            detail=f"{old} -> {appt.status}",
        ),
    )
    if action == "complete":
        from hpms.services.messages import survey_invites

        survey_invites.queue_for(ctx, appt)
    hl7_events.transition(ctx, appt, action)
    return outputs(ctx, [appt.id])[0]
