"""Where each coming visit stands with the patient: confirmed by their reply, confirmed (by
staff, or some other way), not confirmed yet, or not confirmed while its reminder failed.

The states of a whole day's visits come from one query (the scheduler's day view asks for them
on every load), using the indexes on the messages and the replies by appointment."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col

from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

BY_PATIENT = "confirmed_by_patient"  # confirmed, and a reply of the patient's confirmed it
CONFIRMED = "confirmed"  # confirmed by staff (the patient called, say)
UNCONFIRMED = "unconfirmed"  # booked, not confirmed
REMINDER_FAILED = "reminder_failed"  # not confirmed, and the latest reminder that went out failed
STATES = (BY_PATIENT, CONFIRMED, UNCONFIRMED, REMINDER_FAILED)

OPEN_STATUSES = ("booked", "confirmed")  # a visit past these (arrived, cancelled...) has no state
SETTLED = ("sent", "delivered", "failed", "unknown")  # a reminder whose outcome is known
FAILED = ("failed", "unknown")


def states(ctx: Ctx, appointment_ids: Iterable[int]) -> dict[int, str]:
    """{appointment id: state} of the booked and confirmed visits among `appointment_ids` (the
    others are left out), in one query. The latest reminder is the one due last among those
    that were sent or failed (one still queued has no outcome yet). Not audited: it reads no
    patient's data beyond what the caller shows and audits (the scheduler's day view).
    Raises PermissionDenied."""
    from hpms.models import Appointment, InboundMessage, Message

    require(ctx.actor, "messages.read")
    ids = sorted({int(i) for i in appointment_ids})
    if not ids:
        return {}
    latest = (
        sa.select(Message.state)
        .where(
            Message.appointment_id == Appointment.id,
            Message.template == "reminder",
            col(Message.state).in_(SETTLED),
        )
        .order_by(col(Message.due_at).desc(), col(Message.id).desc())
        .limit(1)
        .correlate(Appointment)
        .scalar_subquery()
    )
    replied = (
        sa.select(InboundMessage.id)
        .where(InboundMessage.appointment_id == Appointment.id, InboundMessage.outcome == "confirmed")
        .correlate(Appointment)
        .exists()
    )
    rows = ctx.session.execute(
        sa.select(Appointment.id, Appointment.status, Appointment.confirmed_at, replied, latest).where(
            Appointment.org_id == ctx.org_id,
            col(Appointment.id).in_(ids),
            col(Appointment.status).in_(OPEN_STATUSES),
        )
    ).all()
    out: dict[int, str] = {}
    for aid, status, confirmed_at, by_reply, reminder in rows:
        if status == "confirmed" or confirmed_at is not None:
            out[aid] = BY_PATIENT if by_reply else CONFIRMED
        else:
            out[aid] = REMINDER_FAILED if reminder in FAILED else UNCONFIRMED
    return out
