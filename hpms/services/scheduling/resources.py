"""Providers, rooms and appointment types: what the schedule is made of."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.errors import Action, ConflictError, NotFoundError, ValidationError
from hpms.models import (
    AppointmentType,
    AppointmentTypeOut,
    Location,
    Provider,
    ProviderLocation,
    ProviderOut,
    Room,
    RoomOut,
    User,
)
from hpms.models.scheduling import ROOM_KINDS
from hpms.services.lookups import find_locations, find_provider, provider_name
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hpms.services.platform.context import Ctx

_COLOR = re.compile(r"^(#[0-9a-fA-F]{6}|[a-z][a-z_]{1,15})$")
_PROC_CODE = re.compile(r"^([0-9]{4}[0-9A-Z]|[A-Z][0-9]{4})$")
MAX_DURATION_MIN = 480
MAX_BUFFER_MIN = 120


# ---- providers -----------------------------------------------------------------------------


def _provider_out(ctx: Ctx, p: Provider) -> ProviderOut:
    locs = (
        ctx.session.execute(
            sa.select(Location.name)
            .join(ProviderLocation, ProviderLocation.location_id == Location.id)
            .where(ProviderLocation.provider_id == p.id)
            .order_by(Location.id)
        )
        .scalars()
        .all()
    )
    user = ctx.session.get(User, p.user_id) if p.user_id else None
    username = user.username if user is not None else None
    return ProviderOut(
        id=p.id,
        name=provider_name(p),
        first_name=p.first_name,
        last_name=p.last_name,
        credentials=p.credentials,
        npi=p.npi,
        taxonomy=p.taxonomy,
        username=username,
        locations=list(locs),
        color=p.color,
        active=p.active,
        version=p.version,
    )


def _provider_values(ctx: Ctx, data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """The columns a provider's fields give, checked (`username` is the field `user`)."""
    out: dict[str, Any] = {}
    for f, n in (("first_name", 100), ("last_name", 100)):
        if not partial or f in data:
            out[f] = v.require_text(f, data.get(f), n)
    if "credentials" in data:
        out["credentials"] = v.optional_text("credentials", data["credentials"], 32)
    if "npi" in data:
        out["npi"] = v.parse_npi("npi", data["npi"])
    if "taxonomy" in data:
        out["taxonomy"] = v.parse_taxonomy("taxonomy", data["taxonomy"])
    if "color" in data:
        out["color"] = parse_color("color", data["color"])
    if "username" in data:
        name = v.clean(data["username"])
        if name is None:
            out["user_id"] = None
        else:
            user = ctx.session.execute(
                sa.select(User).where(User.username == name, User.org_id == ctx.org_id)
            ).scalar_one_or_none()
            if user is None:
                raise NotFoundError(f"no user {name!r}", field="user", action=Action("users", "list"))
            out["user_id"] = user.id
    if "active" in data:
        out["active"] = v.parse_bool("active", data["active"])
    return out


def parse_color(field: str, value: str | None) -> str | None:
    value = v.clean(value)
    if value is None:
        return None
    if not _COLOR.match(value.lower() if not value.startswith("#") else value):
        raise ValidationError(field, f"{value!r} is not a color (#rrggbb or a name such as teal)")
    return value.lower()


def _check_unique(ctx: Ctx, values: dict[str, Any], provider_id: int | None) -> None:
    if values.get("npi"):
        q = sa.select(Provider.id).where(Provider.org_id == ctx.org_id, Provider.npi == values["npi"])
        if provider_id:
            q = q.where(Provider.id != provider_id)
        if ctx.session.execute(q).first():
            raise ConflictError(f"another provider has NPI {values['npi']}", field="npi")
    if values.get("user_id"):
        q = sa.select(Provider.id).where(Provider.user_id == values["user_id"])
        if provider_id:
            q = q.where(Provider.id != provider_id)
        if ctx.session.execute(q).first():
            raise ConflictError("that user is already linked to another provider", field="user")


def add_provider(ctx: Ctx, *, locations: list[str] | None = None, **data: Any) -> ProviderOut:
    """Add a provider. Raises ValidationError, NotFoundError, ConflictError, PermissionDenied."""
    require(ctx.actor, "provider.write")
    values = _provider_values(ctx, data, partial=False)
    locs = find_locations(ctx, locations)
    _check_unique(ctx, values, None)
    p = Provider(org_id=ctx.org_id, **values)
    ctx.session.add(p)
    ctx.session.flush()
    for loc in locs:
        ctx.session.add(ProviderLocation(provider_id=p.id, location_id=loc.id))
    ctx.session.flush()
    audit.record(ctx, audit.Event("create", "provider", p.id, fields=sorted(values) + ["locations"]))
    return _provider_out(ctx, p)


def update_provider(
    ctx: Ctx,
    ref: str | int,
    *,
    locations: list[str] | None = None,
    expected_version: int | None = None,
    **data: Any,
) -> ProviderOut:
    """Change a provider; `locations` (when given) replaces the list of sites."""
    require(ctx.actor, "provider.write")
    p = find_provider(ctx, ref, field="provider")
    data = {k: val for k, val in data.items() if val is not None}
    values = _provider_values(ctx, data, partial=True)
    if not values and locations is None:
        raise ValidationError("options", "nothing to change")
    if expected_version is not None and expected_version != p.version:
        raise ConflictError(
            f"provider {p.id} changed meanwhile (version {p.version}, expected {expected_version})",
            hint="show it again and retry",
        )
    _check_unique(ctx, values, p.id)
    for k, val in values.items():
        setattr(p, k, val)
    fields = sorted(values)
    if locations is not None:
        locs = find_locations(ctx, locations)
        ctx.session.execute(sa.delete(ProviderLocation).where(ProviderLocation.provider_id == p.id))
        for loc in locs:
            ctx.session.add(ProviderLocation(provider_id=p.id, location_id=loc.id))
        fields.append("locations")
    p.version += 1
    p.updated_at = ctx.now()
    ctx.session.flush()
    audit.record(ctx, audit.Event("update", "provider", p.id, fields=fields))
    return _provider_out(ctx, p)


def list_providers(ctx: Ctx, *, location: str | int | None = None, include_inactive: bool = False) -> list[ProviderOut]:
    require(ctx.actor, "provider.read")
    q = sa.select(Provider).where(Provider.org_id == ctx.org_id).order_by(Provider.last_name, Provider.first_name)
    if not include_inactive:
        q = q.where(Provider.active.is_(True))
    if location is not None:
        loc = find_locations(ctx, [location])[0]
        q = q.where(
            col(Provider.id).in_(sa.select(ProviderLocation.provider_id).where(ProviderLocation.location_id == loc.id))
        )
    return [_provider_out(ctx, p) for p in ctx.session.execute(q).scalars()]


def show_provider(ctx: Ctx, ref: str | int) -> ProviderOut:
    require(ctx.actor, "provider.read")
    return _provider_out(ctx, find_provider(ctx, ref, field="provider"))


_PL = ProviderLocation.__table__
_PROVIDER_LOCATIONS = (
    sa.select(_PL.c.location_id).where(_PL.c.provider_id == sa.bindparam("provider_id")).order_by(_PL.c.location_id)
)


def provider_location_ids(session: Session, provider_id: int) -> list[int]:
    """The ids of the locations a provider works at, in order."""
    return list(session.connection().execute(_PROVIDER_LOCATIONS, {"provider_id": provider_id}).scalars())


# ---- rooms ---------------------------------------------------------------------------------


def _room_out(room: Room, loc: Location) -> RoomOut:
    return RoomOut(
        id=room.id, location=loc.name, location_id=loc.id, name=room.name, kind=room.kind, active=room.active
    )


def add_room(ctx: Ctx, *, location: str | int | None, name: str | None, kind: str | None = None) -> RoomOut:
    require(ctx.actor, "schedule.setup")
    loc = find_locations(ctx, [location] if location else None)[0]
    name = v.require_text("name", name, 100)
    kind = v.parse_choice("kind", kind, ROOM_KINDS) or "exam"
    clash = ctx.session.execute(
        sa.select(Room.id).where(Room.location_id == loc.id, sa.func.lower(Room.name) == name.lower())
    ).first()
    if clash:
        raise ConflictError(f"{loc.name} already has a room named {name!r}", field="name")
    room = Room(org_id=ctx.org_id, location_id=loc.id, name=name, kind=kind)
    ctx.session.add(room)
    ctx.session.flush()
    audit.record(ctx, audit.Event("create", "room", room.id, fields=["location", "name", "kind"]))
    return _room_out(room, loc)


def list_rooms(ctx: Ctx, *, location: str | int | None = None) -> list[RoomOut]:
    require(ctx.actor, "schedule.read")
    q = (
        sa.select(Room, Location)
        .join(Location, Location.id == Room.location_id)
        .where(Room.org_id == ctx.org_id)
        .order_by(Location.id, Room.name)
    )
    if location is not None:
        q = q.where(Room.location_id == find_locations(ctx, [location])[0].id)
    return [_room_out(r, loc) for r, loc in ctx.session.execute(q)]


# ---- appointment types ---------------------------------------------------------------------


def _type_out(t: AppointmentType) -> AppointmentTypeOut:
    return AppointmentTypeOut.model_validate(t, from_attributes=True)


def _int_in(field: str, value: object, lo: int, hi: int) -> int:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValidationError(field, f"{value!r} is not a whole number of minutes") from None
    if not lo <= n <= hi:
        raise ValidationError(field, f"must be between {lo} and {hi} minutes")
    return n


def add_type(
    ctx: Ctx,
    *,
    name: str | None,
    duration_min: int | str | None,
    buffer_min: int | str | None = 0,
    color: str | None = None,
    self_bookable: bool = False,
    needs_room: bool = False,
    default_code: str | None = None,
) -> AppointmentTypeOut:
    """Add an appointment type (the fields of `duration_min`, `buffer_min` and `default_code`
    are `duration`, `buffer` and `code`, the names the faces ask for them by)."""
    require(ctx.actor, "schedule.setup")
    name = v.require_text("name", name, 100)
    duration = _int_in("duration", duration_min, 5, MAX_DURATION_MIN)
    buffer = _int_in("buffer", buffer_min if buffer_min is not None else 0, 0, MAX_BUFFER_MIN)
    code = v.clean(default_code)
    if code is not None:
        code = code.upper()
        if not _PROC_CODE.match(code):
            raise ValidationError("code", f"{code!r} is not a CPT or HCPCS code (5 characters, e.g. 99213 or G0438)")
    clash = ctx.session.execute(
        sa.select(AppointmentType.id).where(
            AppointmentType.org_id == ctx.org_id, sa.func.lower(AppointmentType.name) == name.lower()
        )
    ).first()
    if clash:
        raise ConflictError(f"an appointment type named {name!r} already exists", field="name")
    t = AppointmentType(
        org_id=ctx.org_id,
        name=name,
        duration_min=duration,
        buffer_min=buffer,
        color=parse_color("color", color),
        self_bookable=bool(self_bookable),
        needs_room=bool(needs_room),
        default_code=code,
    )
    ctx.session.add(t)
    ctx.session.flush()
    audit.record(ctx, audit.Event("create", "appointment_type", t.id, fields=["name", "duration_min"]))
    return _type_out(t)


def list_types(ctx: Ctx, *, include_inactive: bool = False) -> list[AppointmentTypeOut]:
    require(ctx.actor, "schedule.read")
    q = sa.select(AppointmentType).where(AppointmentType.org_id == ctx.org_id).order_by(AppointmentType.name)
    if not include_inactive:
        q = q.where(AppointmentType.active.is_(True))
    return [_type_out(t) for t in ctx.session.execute(q).scalars()]
