"""The waitlist: patients who want an earlier visit, and the freed slots offered to them.

A cancellation or a move of a future visit records the time it gave back (a freed slot).
Offers pair open entries with freed slots that are still free and fit the entry (type
duration, provider, location, date window), longest-waiting patient first, earliest slot first.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hpms.errors import Action, ConflictError, NotFoundError, ValidationError
from hpms.models import (
    Appointment,
    AppointmentType,
    FreedSlot,
    Location,
    OfferOut,
    Patient,
    Provider,
    WaitlistEntry,
    WaitlistOut,
)
from hpms.models.scheduling import BLOCKING_STATUSES
from hpms.services.lookups import find_location, find_patient, find_provider, find_type, provider_name
from hpms.services.platform import audit
from hpms.services.platform import localtime as lt
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require
from hpms.services.scheduling.appointments import BookingOut, book
from hpms.services.scheduling.availability import Interval, merge, subtract, why_closed
from hpms.services.scheduling.guards import LOOKBACK

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hpms.services.platform.context import Ctx


def _load(ctx: Ctx, entry_id: str | int) -> WaitlistEntry:
    text = str(entry_id).strip()
    e = ctx.session.get(WaitlistEntry, int(text)) if text.isdigit() else None
    if e is None or e.org_id != ctx.org_id:
        raise NotFoundError(f"no waitlist entry {text!r}", action=Action("waitlist", "list"))
    return e


def _out(session: Session, e: WaitlistEntry) -> WaitlistOut:
    pat = session.get(Patient, e.patient_id)
    t = session.get(AppointmentType, e.type_id)
    assert pat is not None and t is not None  # foreign keys of the entry
    prov = session.get(Provider, e.provider_id) if e.provider_id else None
    loc = session.get(Location, e.location_id) if e.location_id else None
    return WaitlistOut(
        id=e.id,
        patient_id=pat.id,
        patient=f"{pat.first_name} {pat.last_name}",
        type=t.name,
        provider=provider_name(prov) if prov else None,
        location=loc.name if loc else None,
        earliest=e.earliest,
        latest=e.latest,
        note=e.note,
        status=e.status,
        appointment_id=e.appointment_id,
        created_at=e.created_at,
    )


def add(
    ctx: Ctx,
    *,
    patient: str | int | None,
    type: str | int | None,
    provider: str | int | None = None,
    location: str | int | None = None,
    earliest: str | dt.date | None = None,
    latest: str | dt.date | None = None,
    note: str | None = None,
) -> WaitlistOut:
    """Put a patient on the waitlist for an appointment type, optionally with one provider, at
    one location, between the days `earliest` and `latest`."""
    require(ctx.actor, "waitlist.write")
    pat = find_patient(ctx, patient, field="patient", active=True)
    t = find_type(ctx, type)
    prov = find_provider(ctx, provider) if provider else None
    loc = find_location(ctx, location, field="location") if location else None
    today = ctx.now().date()
    e0 = lt.parse_day("earliest", earliest, today=today) if earliest else None
    e1 = lt.parse_day("latest", latest, today=today) if latest else None
    if e0 and e1 and e1 < e0:
        raise ValidationError("latest", f"{e1} is before the earliest day, {e0}")
    if e1 and e1 < today:
        raise ValidationError("latest", f"{e1} is in the past")
    dup = ctx.session.execute(
        sa.select(WaitlistEntry.id).where(
            WaitlistEntry.patient_id == pat.id, WaitlistEntry.type_id == t.id, WaitlistEntry.status == "open"
        )
    ).first()
    if dup:
        raise ConflictError(f"patient {pat.mrn} is already waiting for {t.name!r} (entry {dup.id})")
    e = WaitlistEntry(
        org_id=ctx.org_id,
        patient_id=pat.id,
        type_id=t.id,
        provider_id=prov.id if prov else None,
        location_id=loc.id if loc else None,
        earliest=e0,
        latest=e1,
        note=v.optional_text("note", note, 500),
        created_at=ctx.now(),
    )
    ctx.session.add(e)
    ctx.session.flush()
    audit.record(
        ctx,
        audit.Event(
            "create",
            "waitlist_entry",
            e.id,
            patient_id=pat.id,
            fields=["patient", "type", "provider", "location", "earliest", "latest"],
        ),
    )
    return _out(ctx.session, e)


def list_entries(ctx: Ctx, *, status: str | None = "open") -> list[WaitlistOut]:
    require(ctx.actor, "waitlist.read")
    q = (
        sa.select(WaitlistEntry)
        .where(WaitlistEntry.org_id == ctx.org_id)
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
    )
    if status and status != "all":
        st = v.parse_choice("status", status, ("open", "filled", "removed"))
        q = q.where(WaitlistEntry.status == st)
    rows = [_out(ctx.session, e) for e in ctx.session.execute(q).scalars()]
    audit.record_list(ctx, "waitlist_entry", (r.patient_id for r in rows), len(rows))
    return rows


def remove(ctx: Ctx, entry_id: str | int) -> WaitlistOut:
    require(ctx.actor, "waitlist.write")
    e = _load(ctx, entry_id)
    if e.status != "open":
        raise ConflictError(f"waitlist entry {e.id} is {e.status}")
    e.status = "removed"
    ctx.session.flush()
    audit.record(
        ctx, audit.Event("update", "waitlist_entry", e.id, patient_id=e.patient_id, fields=["status"], detail="removed")
    )
    return _out(ctx.session, e)


def _still_free(session: Session, slot: FreedSlot) -> list[Interval]:
    """The part of a freed slot no blocking appointment of its provider has taken since."""
    busy = session.execute(
        sa.select(Appointment.start_utc, Appointment.block_end_utc).where(
            Appointment.provider_id == slot.provider_id,
            Appointment.status.in_(BLOCKING_STATUSES),
            Appointment.start_utc < slot.end_utc,
            Appointment.start_utc >= slot.start_utc - LOOKBACK,
            Appointment.block_end_utc > slot.start_utc,
        )
    ).all()
    return subtract([(slot.start_utc, slot.end_utc)], merge((s, e) for s, e in busy))


def offers(ctx: Ctx, *, limit: int = 50) -> list[OfferOut]:
    """Open entries x freed future slots that still fit, best first (longest wait, then earliest)."""
    require(ctx.actor, "waitlist.read")
    session = ctx.session
    now = ctx.now()
    slots = list(
        session.execute(
            sa.select(FreedSlot)
            .where(FreedSlot.org_id == ctx.org_id, FreedSlot.status == "open", FreedSlot.start_utc > now)
            .order_by(FreedSlot.start_utc)
        ).scalars()
    )
    entries = list(
        session.execute(
            sa.select(WaitlistEntry)
            .where(WaitlistEntry.org_id == ctx.org_id, WaitlistEntry.status == "open")
            .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
        ).scalars()
    )
    if not slots or not entries:
        return []
    free = {s.id: _still_free(session, s) for s in slots}
    types = {t.id: t for t in session.execute(sa.select(AppointmentType)).scalars()}
    locs = {loc.id: loc for loc in session.execute(sa.select(Location).where(Location.org_id == ctx.org_id)).scalars()}
    provs: dict[int, Provider] = {}
    pats: dict[int, Patient] = {}
    out: list[OfferOut] = []
    for e in entries:
        t = types[e.type_id]
        need = dt.timedelta(minutes=t.duration_min)
        for s in slots:
            if e.provider_id and e.provider_id != s.provider_id:
                continue
            if e.location_id and e.location_id != s.location_id:
                continue
            loc = locs[s.location_id]
            fit = next(((a, b) for a, b in free[s.id] if b - a >= need and a > now), None)
            if fit is None:
                continue
            day = lt.to_local(fit[0], loc.tz).date()
            if (e.earliest and day < e.earliest) or (e.latest and day > e.latest):
                continue
            if why_closed(session, ctx.org_id, s.provider_id, loc, fit[0], fit[0] + need):
                continue
            busy = session.execute(
                sa.select(Appointment.id).where(
                    Appointment.patient_id == e.patient_id,
                    Appointment.status.in_(BLOCKING_STATUSES),
                    Appointment.start_utc < fit[0] + need,
                    Appointment.end_utc > fit[0],
                )
            ).first()
            if busy:
                continue
            prov = provs.get(s.provider_id) or provs.setdefault(s.provider_id, session.get(Provider, s.provider_id))
            pat = pats.get(e.patient_id) or pats.setdefault(e.patient_id, session.get(Patient, e.patient_id))
            out.append(
                OfferOut(
                    entry_id=e.id,
                    slot_id=s.id,
                    patient_id=pat.id,
                    patient=f"{pat.first_name} {pat.last_name}",
                    type=t.name,
                    start=lt.to_local(fit[0], loc.tz),
                    end=lt.to_local(fit[0] + need, loc.tz),
                    provider_id=prov.id,
                    provider=provider_name(prov),
                    location=loc.name,
                    waiting_since=e.created_at,
                )
            )
            if len(out) >= limit:
                break
        if len(out) >= limit:
            break
    audit.record_list(ctx, "waitlist_entry", (o.patient_id for o in out), len(out), f"{len(out)} offers")
    return out


def fill(
    ctx: Ctx,
    entry_id: str | int,
    *,
    slot: str | int | None = None,
    at: str | dt.datetime | None = None,
    provider: str | int | None = None,
    location: str | int | None = None,
    room: str | int | None = None,
) -> BookingOut:
    """Book a waiting patient: into a freed slot (its id from `offers`) or at a time given (at
    the location given, else the entry's, else the provider's)."""
    require(ctx.actor, "waitlist.write")
    e = _load(ctx, entry_id)
    if e.status != "open":
        raise ConflictError(f"waitlist entry {e.id} is {e.status}")
    if (slot is None) == (at is None):
        raise ValidationError(
            "slot",
            "give either a freed slot or a time (at)",
            action=Action("waitlist", "offers", purpose="find freed slots with"),
        )
    session = ctx.session
    freed = None
    where: str | int | None
    if slot is not None:
        text = str(slot).strip()
        freed = session.get(FreedSlot, int(text)) if text.isdigit() else None
        if freed is None or freed.org_id != ctx.org_id:
            raise NotFoundError(f"no freed slot {text!r}", field="slot", action=Action("waitlist", "offers"))
        if freed.status != "open":
            raise ConflictError(f"slot {freed.id} was already filled", field="slot")
        start = next((a for a, b in _still_free(session, freed)), None)
        if start is None:
            raise ConflictError(f"slot {freed.id} has been booked since it was freed", field="slot")
        at = start
        provider = freed.provider_id
        where = freed.location_id
    else:
        where = location if location is not None and str(location).strip() else e.location_id
        provider = provider or e.provider_id
        if provider is None:
            raise ValidationError("provider", "is required (the entry names no provider)")
    pat = session.get(Patient, e.patient_id)
    assert pat is not None  # a foreign key of the entry
    result = book(
        ctx, patient=pat.mrn, provider=provider, type=e.type_id, at=at, location=where, room=room, reason=e.note
    )
    appt = result.booked[0]
    e.status = "filled"
    e.appointment_id = appt.id
    if freed is not None:
        freed.status = "filled"
    session.flush()
    audit.record(
        ctx,
        audit.Event(
            "update",
            "waitlist_entry",
            e.id,
            patient_id=e.patient_id,
            fields=["status", "appointment_id"],
            detail=f"filled by appointment {appt.id}",
        ),
    )
    return result
