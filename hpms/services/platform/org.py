"""Initialization of a practice, its organization and locations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hpms.codes.pos import PLACES_OF_SERVICE
from hpms.errors import ConflictError, ValidationError
from hpms.models import Location, LocationOut, Organization, OrganizationOut, User, UserRole
from hpms.services.lookups import find_location
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.context import context_for
from hpms.services.platform.counters import MRN_COUNTER, MRN_START, reserve
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hpms.config import Settings
    from hpms.services.platform.context import Ctx

LOCATION_FIELDS = (
    "name",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "country",
    "tz",
    "phone",
    "npi",
    "place_of_service",
)


def get_organization(session: Session) -> Organization | None:
    return session.execute(sa.select(Organization).order_by(Organization.id).limit(1)).scalar_one_or_none()


def bootstrap(
    session: Session,
    settings: Settings,
    *,
    practice: str,
    tz: str,
    location_name: str | None,
    admin_username: str,
    admin_full_name: str | None = None,
    is_demo: bool = False,
) -> tuple[OrganizationOut, bool]:
    """Create the organization, its first location and the first admin, unless the database
    already has an organization. Returns (organization, created). Raises ValidationError."""
    existing = get_organization(session)
    if existing is not None:
        return OrganizationOut.model_validate(existing, from_attributes=True), False
    practice = v.require_text("practice", practice, 200)
    tz = v.parse_tz("tz", tz)
    admin_username = v.parse_username("admin user", admin_username)
    org = Organization(name=practice, is_demo=is_demo)
    session.add(org)
    session.flush()
    session.add(Location(org_id=org.id, name=v.require_text("location", location_name or practice, 200), tz=tz))
    user = User(org_id=org.id, username=admin_username, full_name=admin_full_name)
    session.add(user)
    session.flush()
    session.add(UserRole(user_id=user.id, role="admin"))
    session.flush()
    reserve(session, MRN_COUNTER, 0, start=MRN_START)  # the row exists before concurrent registrations
    ctx = context_for(session, settings, admin_username)
    audit.record(ctx, audit.Event("init", "organization", org.id, detail="practice initialized"))
    return OrganizationOut.model_validate(org, from_attributes=True), True


def organization(ctx: Ctx) -> OrganizationOut:
    require(ctx.actor, "org.read")
    org = ctx.session.get(Organization, ctx.org_id)
    assert org is not None  # the actor belongs to it
    return OrganizationOut.model_validate(org, from_attributes=True)


def _location_values(data: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not partial or "name" in data:
        out["name"] = v.require_text("name", data.get("name"), 200)
    if not partial or "tz" in data:
        out["tz"] = v.parse_tz("tz", data.get("tz"))
    for f in ("address_line1", "address_line2", "city", "state", "postal_code"):
        if f in data:
            out[f] = v.optional_text(f, data[f], 200)
    if "country" in data:
        out["country"] = v.parse_country("country", data["country"])
    if "phone" in data:
        out["phone"] = v.parse_phone("phone", data["phone"])
    if "npi" in data:
        out["npi"] = v.parse_npi("npi", data["npi"])
    if data.get("place_of_service") is not None:
        pos = str(data["place_of_service"]).strip().zfill(2)
        if pos not in PLACES_OF_SERVICE:
            raise ValidationError(
                "place_of_service", f"{data['place_of_service']!r} is not a CMS place-of-service code"
            )
        out["place_of_service"] = pos
    return out


def add_location(ctx: Ctx, **data: Any) -> LocationOut:
    """Add a location. Raises ValidationError, PermissionDenied, ConflictError."""
    require(ctx.actor, "location.write")
    values = _location_values(data)
    clash = ctx.session.execute(
        sa.select(Location.id).where(
            Location.org_id == ctx.org_id, sa.func.lower(Location.name) == values["name"].lower()
        )
    ).first()
    if clash:
        raise ConflictError(f"a location named {values['name']!r} already exists", field="name")
    loc = Location(org_id=ctx.org_id, **values)
    ctx.session.add(loc)
    ctx.session.flush()
    audit.record(ctx, audit.Event("create", "location", loc.id, fields=list(values)))
    return LocationOut.model_validate(loc, from_attributes=True)


def list_locations(ctx: Ctx) -> list[LocationOut]:
    require(ctx.actor, "location.read")
    rows = ctx.session.scalars(sa.select(Location).where(Location.org_id == ctx.org_id).order_by(Location.id))
    return [LocationOut.model_validate(r, from_attributes=True) for r in rows]


def show_location(ctx: Ctx, ref: str | int) -> LocationOut:
    require(ctx.actor, "location.read")
    return LocationOut.model_validate(find_location(ctx, ref), from_attributes=True)


def update_location(ctx: Ctx, ref: str | int, **data: Any) -> LocationOut:
    """Change a location's fields. Raises NotFoundError, ValidationError, ConflictError (name
    taken), PermissionDenied."""
    require(ctx.actor, "location.write")
    loc = find_location(ctx, ref)
    values = _location_values({k: val for k, val in data.items() if val is not None}, partial=True)
    if not values:
        raise ValidationError("options", "nothing to change")
    if "name" in values:
        clash = ctx.session.execute(
            sa.select(Location.id).where(
                Location.org_id == ctx.org_id,
                Location.id != loc.id,
                sa.func.lower(Location.name) == values["name"].lower(),
            )
        ).first()
        if clash:
            raise ConflictError(f"a location named {values['name']!r} already exists", field="name")
    for k, val in values.items():
        setattr(loc, k, val)
    ctx.session.flush()
    audit.record(ctx, audit.Event("update", "location", loc.id, fields=list(values)))
    return LocationOut.model_validate(loc, from_attributes=True)
