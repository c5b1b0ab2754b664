"""Finding what a request names: a patient by MRN or id, a provider by id, NPI or name, a
location, room, appointment type, payer, claim, appointment or encounter. Every service looks
things up here, so a reference means the same everywhere and a miss reads the same.

Each function raises NotFoundError (the field it came from, when given, and the list to look
in as the next step) or ValidationError (an empty or ambiguous reference). No permission
check: the calling service made its own. Tables of the domains that load on first use
(scheduling, billing) are imported where they are used, so that a patients command does not
build them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hpms.errors import Action, NotFoundError, ValidationError
from hpms.models import Location, Patient, Payer
from hpms.services.platform import validation as v

if TYPE_CHECKING:
    from hpms.models import Appointment, AppointmentType, Claim, Encounter, Provider, Room
    from hpms.services.platform.context import Ctx


def _required(ref: object, field: str | None) -> str:
    text = "" if ref is None else str(ref).strip()
    if not text:
        raise ValidationError(field, "is required")
    return text


# ---- people --------------------------------------------------------------------------------


def find_patient(
    ctx: Ctx, ref: str | int | None, *, field: str | None = None, include_merged: bool = False, active: bool = False
) -> Patient:
    """A patient by MRN or numeric id (the MRN wins). A merged patient is refused, naming the
    one it was merged into (unless `include_merged`); with `active`, so is an inactive one."""
    text = _required(ref, field)
    session = ctx.session
    row = session.execute(
        sa.select(Patient).where(Patient.org_id == ctx.org_id, Patient.mrn == text)
    ).scalar_one_or_none()
    if row is None and text.isdigit():
        row = session.get(Patient, int(text))
        if row is not None and row.org_id != ctx.org_id:
            row = None
    if row is None:
        raise NotFoundError(
            f"no patient {text!r}",
            field=field,
            action=Action("patients", "search", target="QUERY", purpose="find one with"),
        )
    if row.merged_into_id and not include_merged:
        keep = session.get(Patient, row.merged_into_id)
        assert keep is not None
        raise NotFoundError(
            f"patient {text!r} was merged into MRN {keep.mrn}",
            field=field,
            action=Action("patients", "show", target=keep.mrn, purpose="use"),
        )
    if active and not row.active:
        raise ValidationError(field, f"patient {row.mrn} is inactive")
    return row


def find_payer(ctx: Ctx, ref: str | int | None, *, field: str | None = None) -> Payer:
    """A payer by X12 payer id, internal id or exact name (case-insensitive)."""
    text = _required(ref, field)
    s = ctx.session
    row = s.execute(sa.select(Payer).where(Payer.org_id == ctx.org_id, Payer.payer_id == text)).scalar_one_or_none()
    if row is None and text.isdigit():
        row = s.get(Payer, int(text))
        row = row if row is not None and row.org_id == ctx.org_id else None
    if row is None:
        row = (
            s.execute(sa.select(Payer).where(Payer.org_id == ctx.org_id, sa.func.lower(Payer.name) == text.lower()))
            .scalars()
            .first()
        )
    if row is None:
        raise NotFoundError(f"no payer {text!r}", field=field, action=Action("payers", "list"))
    return row


# ---- the practice --------------------------------------------------------------------------


def find_location(ctx: Ctx, ref: str | int | None, *, field: str | None = None) -> Location:
    """A location by id or (case-insensitive) name."""
    text = _required(ref, field)
    session = ctx.session
    loc = session.get(Location, int(text)) if text.isdigit() else None
    if loc is None:
        loc = session.execute(
            sa.select(Location).where(Location.org_id == ctx.org_id, sa.func.lower(Location.name) == text.lower())
        ).scalar_one_or_none()
    if loc is None or loc.org_id != ctx.org_id:
        raise NotFoundError(f"no location {text!r}", field=field, action=Action("locations", "list"))
    return loc


def find_locations(ctx: Ctx, refs: Iterable[str | int] | None, *, field: str | None = "location") -> list[Location]:
    """The locations named (each once, in order); none named means the practice's only one
    (ValidationError when it has several)."""
    refs = [r for r in (refs or []) if str(r).strip()]
    if not refs:
        every = ctx.session.execute(sa.select(Location).where(Location.org_id == ctx.org_id)).scalars().all()
        if len(every) == 1:
            return list(every)
        raise ValidationError(field, "is required: the practice has several locations (give each one)")
    out: list[Location] = []
    for r in refs:
        loc = find_location(ctx, r, field=field)
        if loc not in out:
            out.append(loc)
    return out


def resolve_location(ctx: Ctx, location: str | int | None = None, *, field: str | None = "location") -> Location:
    """The location named, else the configured default location, else the practice's first."""
    if location is not None and str(location).strip():
        return find_location(ctx, location, field=field)
    default = ctx.settings.default_location if ctx.settings else None
    if default:
        try:
            return find_location(ctx, default)
        except NotFoundError:
            pass
    loc = (
        ctx.session.execute(sa.select(Location).where(Location.org_id == ctx.org_id).order_by(Location.id))
        .scalars()
        .first()
    )
    if loc is None:
        raise NotFoundError("the practice has no location", action=Action("locations", "add", purpose="add one with"))
    return loc


def display_zone(ctx: Ctx) -> str:
    """The time zone that times are shown in when no location is in question: the default
    location's, else the practice's first location's, else UTC."""
    try:
        return resolve_location(ctx).tz
    except NotFoundError:
        return "UTC"


# ---- scheduling ----------------------------------------------------------------------------


def provider_name(p: Any) -> str:
    """ "First Last, credentials" of a provider (or of a row with those columns)."""
    name = f"{p.first_name} {p.last_name}"
    return f"{name}, {p.credentials}" if p.credentials else name


def find_provider(ctx: Ctx, ref: str | int | None, *, field: str | None = "provider") -> Provider:
    """A provider by id, NPI, or name (last name, or first and last; "Dr." ignored). A name that
    matches several is a ValidationError naming their ids."""
    from hpms.models import Provider  # the scheduling tables load on first use

    text = _required(ref, field)
    session = ctx.session
    if text.isdigit():
        p = session.get(Provider, int(text)) if len(text) < 10 else None
        if p is None and len(text) == 10:
            p = session.execute(
                sa.select(Provider).where(Provider.org_id == ctx.org_id, Provider.npi == text)
            ).scalar_one_or_none()
        if p is not None and p.org_id == ctx.org_id:
            return p
        raise NotFoundError(f"no provider {text!r}", field=field, action=Action("providers", "list"))
    words = v.fold(re.sub(r"^(dr\.?|doctor)\s+", "", text, flags=re.I).split(",")[0]).split()
    rows = session.execute(sa.select(Provider).where(Provider.org_id == ctx.org_id)).scalars().all()
    matches = [
        p
        for p in rows
        if words == v.fold(p.last_name).split() or words == v.fold(f"{p.first_name} {p.last_name}").split()
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFoundError(f"no provider {text!r}", field=field, action=Action("providers", "list"))
    ids = ", ".join(str(p.id) for p in matches)
    raise ValidationError(field, f"{text!r} matches several providers (ids {ids}); give the id")


def find_room(ctx: Ctx, ref: str | int | None, *, location_id: int | None = None, field: str | None = "room") -> Room:
    """A room by id or (case-insensitive) name, at `location_id` when given."""
    from hpms.models import Room  # the scheduling tables load on first use

    text = _required(ref, field)
    room = None
    if text.isdigit():
        room = ctx.session.get(Room, int(text))
        if room is not None and location_id is not None and room.location_id != location_id:
            raise ValidationError(field, f"room {room.name!r} is at another location")
    if room is None:
        q = sa.select(Room).where(Room.org_id == ctx.org_id, sa.func.lower(Room.name) == text.lower())
        if location_id is not None:
            q = q.where(Room.location_id == location_id)
        found = ctx.session.execute(q).scalars().all()
        if len(found) > 1:
            raise ValidationError(field, f"{text!r} names rooms at several locations; give the id or the location")
        room = found[0] if found else None
    if room is None or room.org_id != ctx.org_id:
        raise NotFoundError(f"no room {text!r}", field=field, action=Action("rooms", "list"))
    return room


def find_type(ctx: Ctx, ref: str | int | None, *, field: str | None = "type") -> AppointmentType:
    """An appointment type by id or (case-insensitive) name."""
    from hpms.models import AppointmentType  # the scheduling tables load on first use

    text = _required(ref, field)
    t = ctx.session.get(AppointmentType, int(text)) if text.isdigit() else None
    if t is None:
        t = ctx.session.execute(
            sa.select(AppointmentType).where(
                AppointmentType.org_id == ctx.org_id, sa.func.lower(AppointmentType.name) == text.lower()
            )
        ).scalar_one_or_none()
    if t is None or t.org_id != ctx.org_id:
        raise NotFoundError(f"no appointment type {text!r}", field=field, action=Action("appointment-types", "list"))
    return t


def load_appointment(ctx: Ctx, ref: str | int | None | None, *, field: str | None = None) -> Appointment:
    """An appointment by id."""
    from hpms.models import Appointment  # the scheduling tables load on first use

    text = _required(ref, field)
    appt = ctx.session.get(Appointment, int(text)) if text.isdigit() else None
    if appt is None or appt.org_id != ctx.org_id:
        raise NotFoundError(f"no appointment {text!r}", field=field, action=Action("appointments", "list"))
    return appt


# ---- billing -------------------------------------------------------------------------------


def load_encounter(
    ctx: Ctx, ref: str | int | None | None, *, lock: bool = False, field: str | None = None
) -> Encounter:
    """An encounter by id; `lock` holds its row until the transaction ends, so that two changes
    of one encounter run one after the other."""
    from hpms.models import Encounter  # the billing tables load on first use

    text = _required(ref, field)
    enc = ctx.session.get(Encounter, int(text), with_for_update=lock or None) if text.isdigit() else None
    if enc is None or enc.org_id != ctx.org_id:
        raise NotFoundError(f"no encounter {text!r}", field=field, action=Action("encounters", "list"))
    return enc


def load_claim(ctx: Ctx, ref: str | int | None | None, *, field: str | None = None) -> Claim:
    """A claim by id or control number."""
    from hpms.models import Claim  # the billing tables load on first use

    text = _required(ref, field)
    c = ctx.session.get(Claim, int(text)) if text.isdigit() else None
    if c is None:
        c = ctx.session.execute(
            sa.select(Claim).where(Claim.org_id == ctx.org_id, Claim.control_number == text)
        ).scalar_one_or_none()
    if c is None or c.org_id != ctx.org_id:
        raise NotFoundError(f"no claim {text!r}", field=field, action=Action("claims", "list"))
    return c
