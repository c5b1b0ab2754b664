"""The hooks of the scheduling and registration services: each event writes one HL7 message
per receiver that takes its group (siu, adt) into the HL7 outbox, in the event's transaction.
With no receiver the hooks cost one indexed read per transaction (nothing on a booking: it reads
that in its own lookup statement).

Visits: booked S12, moved S13, changed (confirmed, checked in, roomed, completed) S14,
cancelled S15, not shown S26. Patients: registered A04, changed A08, merged A40."""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from hpms.interop.hl7v2 import build
from hpms.services.interop.hl7 import receivers
from hpms.services.platform import audit

if TYPE_CHECKING:
    from hpms.models import Patient
    from hpms.services.interop.hl7.receivers import Active
    from hpms.services.platform.context import Ctx

# Set while an inbound ADT is applied: what another system said is not echoed back to it.
_quiet: contextvars.ContextVar[bool] = contextvars.ContextVar("hpms_hl7_quiet", default=False)
SIU_TRANSITIONS = {"confirm": "S14", "checkin": "S14", "room": "S14", "complete": "S14", "noshow": "S26"}


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)


def _taking(ctx: Ctx, group: str, known: bool | None) -> tuple[Active, ...]:
    if known is False or _quiet.get():
        return ()
    return tuple(r for r in receivers.active(ctx) if group in r.events)


def sending_facility(ctx: Ctx) -> str:
    from hpms.models import Organization

    if ctx.settings.hl7_sending_facility:
        return ctx.settings.hl7_sending_facility
    org = ctx.session.get(Organization, ctx.org_id)
    return (org.name if org else "hpms")[:20]


def patient_record(ctx: Ctx, p: Patient) -> build.PatientRecord:
    return build.PatientRecord(
        mrn=p.mrn,
        assigning_authority=ctx.settings.hl7_assigning_authority,
        last_name=p.last_name,
        first_name=p.first_name,
        middle_name=p.middle_name,
        dob=p.dob,
        sex_at_birth=p.sex_at_birth,
        address_line1=p.address_line1,
        address_line2=p.address_line2,
        city=p.city,
        state=p.state,
        postal_code=p.postal_code,
        country=p.country,
        phone=p.phone,
        email=p.email,
    )


def _visit_record(ctx: Ctx, a: Any) -> build.VisitRecord:
    from hpms.models import AppointmentType, Location, Provider, Room

    kind = ctx.session.get(AppointmentType, a.type_id)
    loc = ctx.session.get(Location, a.location_id)
    prov = ctx.session.get(Provider, a.provider_id)
    room = ctx.session.get(Room, a.room_id) if a.room_id else None
    assert kind is not None and loc is not None and prov is not None  # foreign keys of the visit
    return build.VisitRecord(
        appointment_id=a.id,
        status=a.status,
        start=a.start_utc,
        end=a.end_utc,
        type_id=a.type_id,
        type_name=kind.name,
        location_name=loc.name,
        provider_npi=prov.npi,
        provider_last=prov.last_name,
        provider_first=prov.first_name,
        room=room.name if room else None,
        reason=a.reason,
        entered_by=ctx.actor.username,
    )


def _enqueue(
    ctx: Ctx,
    to: Sequence[Active],
    event: str,
    patient_id: int,
    appointment_id: int | None,
    write: Any,
) -> int:
    """One message per receiver: a row first (its id is the control id), then its text."""
    from hpms.models import Hl7Message

    now = ctx.now()
    rows = []
    for r in to:
        row = Hl7Message(
            org_id=ctx.org_id,
            receiver_id=r.id,
            patient_id=patient_id,
            appointment_id=appointment_id,
            event=event,
            control_id="",
            body="",
            next_attempt_at=now,
            created_at=now,
            created_by=ctx.actor.user_id,
        )
        ctx.session.add(row)
        rows.append((r, row))
    ctx.session.flush()
    app, facility = ctx.settings.hl7_sending_app, sending_facility(ctx)
    for r, row in rows:
        row.control_id = str(row.id)
        header = build.Header(app, facility, r.receiving_app, r.receiving_facility, row.control_id, now)
        row.body = write(header)
    audit.record_many(
        ctx,
        [audit.Event("queue", "hl7_message", row.id, patient_id=patient_id, detail=f"HL7 {event}") for _, row in rows],
    )
    return len(rows)


def visits(ctx: Ctx, appts: Sequence[Any], event: str, *, known: bool | None = None) -> int:
    """Queue SIU^`event` of each visit (an ORM row, or the values of one just inserted) for the
    receivers that take visits. `known`: whether there are any, when the caller read it in this
    transaction. Returns how many messages were queued."""
    from hpms.models import Patient

    to = _taking(ctx, "siu", known)
    if not to or not appts:
        return 0
    queued = 0
    for a in appts:
        pat = ctx.session.get(Patient, a.patient_id)
        assert pat is not None
        patient, visit = patient_record(ctx, pat), _visit_record(ctx, a)
        queued += _enqueue(
            ctx, to, event, a.patient_id, a.id, functools.partial(build.siu, event=event, visit=visit, patient=patient)
        )
    return queued


def transition(ctx: Ctx, appt: Any, action: str) -> int:
    """The SIU message of a step of the visit lifecycle (S26 for a no-show, S14 for the others)."""
    event = SIU_TRANSITIONS.get(action)
    return visits(ctx, [appt], event) if event else 0


def patient(ctx: Ctx, p: Patient, event: str, *, merged_mrn: str | None = None) -> int:
    """Queue ADT^`event` (A04, A08, A40 with the MRN merged into `p`) for the receivers that
    take patients."""
    to = _taking(ctx, "adt", None)
    if not to:
        return 0
    assert p.id is not None
    record = patient_record(ctx, p)
    return _enqueue(ctx, to, event, p.id, None, lambda h: build.adt(h, event, record, merged_mrn=merged_mrn))
