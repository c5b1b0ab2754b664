"""Patients' online booking: the practice's policy per appointment type (per-provider overrides,
lead time, horizon, daily cap, new patients), the times it opens online, and a signed-in
patient's own booking, move and cancellation inside the practice's cancellation window.

The slot search, the booking with its overlap guards, the move and the cancellation (late flag,
waitlist, reminders) are the staff services' own: the patient's operations check the policy,
then call them on the patient's behalf, so a patient and the front desk racing for one time
meet at the same database guard."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.errors import ConflictError, HpmsError, NotFoundError, SlotTaken, ValidationError
from hpms.services.lookups import find_location, find_provider, find_type, provider_name
from hpms.services.platform import audit
from hpms.services.platform import localtime as lt
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.models import (
        Appointment,
        AppointmentOut,
        AppointmentType,
        Location,
        OnlineBookingPolicy,
        Patient,
        Provider,
        SlotOut,
    )
    from hpms.services.platform.context import Ctx

# A type's row takes these for what it is not given; a provider's row inherits the type's.
DEFAULT_LEAD_MINUTES = 24 * 60
DEFAULT_HORIZON_DAYS = 60
DEFAULT_CANCEL_WINDOW_HOURS = 24
MAX_LEAD_MINUTES = 30 * 24 * 60
MAX_HORIZON_DAYS = 366
MAX_DAILY_CAP = 1000
MAX_CANCEL_WINDOW_HOURS = 14 * 24
MAX_DAYS = 62  # days one search of open times may span
ALTERNATIVES = 5  # other open times offered with a time just taken
# a patient who has been seen (checked in at least once) is an existing patient
SEEN_STATUSES = ("arrived", "in_room", "completed")
POLICY_FIELDS = ("enabled", "lead_minutes", "horizon_days", "daily_cap", "new_patients_allowed")


@dataclass(frozen=True)
class Policy:
    """The policy in force for one type and provider."""

    enabled: bool
    lead_minutes: int
    horizon_days: int
    daily_cap: int  # 0: no cap
    new_patients_allowed: bool


CLOSED = Policy(False, DEFAULT_LEAD_MINUTES, DEFAULT_HORIZON_DAYS, 0, True)


@dataclass(frozen=True)
class PolicyOut:
    """One stored row: the type's (provider None) or a provider's override (None: as the type's)."""

    id: int
    type_id: int
    type: str
    provider_id: int | None
    provider: str | None
    enabled: bool | None
    lead_minutes: int | None
    horizon_days: int | None
    daily_cap: int | None
    new_patients_allowed: bool | None

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "type_id": self.type_id,
            "type": self.type,
            "provider_id": self.provider_id,
            "provider": self.provider,
            "enabled": self.enabled,
            "lead_minutes": self.lead_minutes,
            "horizon_days": self.horizon_days,
            "daily_cap": self.daily_cap,
            "new_patients_allowed": self.new_patients_allowed,
        }


@dataclass(frozen=True)
class PoliciesOut:
    cancel_window_hours: int
    policies: list[PolicyOut]

    def as_dict(self) -> dict[str, object]:
        return {"cancel_window_hours": self.cancel_window_hours, "policies": [p.as_dict() for p in self.policies]}


# ---- the practice's settings (staff) -------------------------------------------------------


def _whole(field: str, value: int | str | None, lo: int, hi: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValidationError(field, f"{value!r} is not a whole number")
    try:
        n = int(str(value).strip())
    except ValueError:
        raise ValidationError(field, f"{value!r} is not a whole number") from None
    if not lo <= n <= hi:
        raise ValidationError(field, f"must be a whole number from {lo} to {hi}")
    return n


def cancel_window_hours(ctx: Ctx) -> int:
    from hpms.models import OnlineBookingProfile

    profile = ctx.session.get(OnlineBookingProfile, ctx.org_id)
    return profile.cancel_window_hours if profile else DEFAULT_CANCEL_WINDOW_HOURS


def _policy_rows(ctx: Ctx, type_id: int | None = None) -> list[tuple[OnlineBookingPolicy, str, Provider | None]]:
    from hpms.models import AppointmentType, OnlineBookingPolicy, Provider

    q = (
        sa.select(OnlineBookingPolicy, AppointmentType.name, Provider)
        .join(AppointmentType, AppointmentType.id == OnlineBookingPolicy.type_id)
        .outerjoin(Provider, col(Provider.id) == OnlineBookingPolicy.provider_id)
        .where(OnlineBookingPolicy.org_id == ctx.org_id)
        .order_by(AppointmentType.name, col(OnlineBookingPolicy.provider_id).nulls_first(), OnlineBookingPolicy.id)
    )
    if type_id is not None:
        q = q.where(OnlineBookingPolicy.type_id == type_id)
    return [(r, name, prov) for r, name, prov in ctx.session.execute(q)]


def _out(row: OnlineBookingPolicy, type_name: str, prov: Provider | None) -> PolicyOut:
    assert row.id is not None
    return PolicyOut(
        id=row.id,
        type_id=row.type_id,
        type=type_name,
        provider_id=row.provider_id,
        provider=provider_name(prov) if prov is not None else None,
        enabled=row.enabled,
        lead_minutes=row.lead_minutes,
        horizon_days=row.horizon_days,
        daily_cap=row.daily_cap,
        new_patients_allowed=row.new_patients_allowed,
    )


def show_policies(ctx: Ctx, *, type_ref: str | int | None = None) -> PoliciesOut:
    """The cancellation window and the stored policies (of one type when given). Raises NotFoundError."""
    require(ctx.actor, "online.read")
    type_id = find_type(ctx, type_ref).id if type_ref is not None and str(type_ref).strip() else None
    rows = _policy_rows(ctx, type_id)
    return PoliciesOut(cancel_window_hours(ctx), [_out(r, n, p) for r, n, p in rows])


def _find_row(ctx: Ctx, type_id: int, provider_id: int | None) -> OnlineBookingPolicy | None:
    from hpms.models import OnlineBookingPolicy

    cond = (
        col(OnlineBookingPolicy.provider_id).is_(None)
        if provider_id is None
        else OnlineBookingPolicy.provider_id == provider_id
    )
    return ctx.session.execute(
        sa.select(OnlineBookingPolicy).where(
            OnlineBookingPolicy.org_id == ctx.org_id, OnlineBookingPolicy.type_id == type_id, cond
        )
    ).scalar_one_or_none()


def set_policy(
    ctx: Ctx,
    *,
    type_ref: str | int | None = None,
    provider_ref: str | int | None = None,
    enabled: bool | None = None,
    lead_minutes: int | str | None = None,
    horizon_days: int | str | None = None,
    daily_cap: int | str | None = None,
    new_patients_allowed: bool | None = None,
    cancel_window: int | str | None = None,
) -> PoliciesOut:
    """Set the policy of a type (or a provider's override of it: what is not given stays as the
    type's) and/or the practice's cancellation window (hours). A type's new row takes the
    defaults for what is not given. Everything is checked before anything is written.
    Raises ValidationError naming the field, NotFoundError."""
    from hpms.models import OnlineBookingPolicy, OnlineBookingProfile

    require(ctx.actor, "online.setup")
    given_type = type_ref is not None and str(type_ref).strip() != ""
    lead = _whole("lead_minutes", lead_minutes, 0, MAX_LEAD_MINUTES)
    horizon = _whole("horizon_days", horizon_days, 1, MAX_HORIZON_DAYS)
    cap = _whole("daily_cap", daily_cap, 0, MAX_DAILY_CAP)
    window = _whole("cancel_window", cancel_window, 0, MAX_CANCEL_WINDOW_HOURS)
    values: dict[str, Any] = {
        k: v
        for k, v in (
            ("enabled", enabled),
            ("lead_minutes", lead),
            ("horizon_days", horizon),
            ("daily_cap", cap),
            ("new_patients_allowed", new_patients_allowed),
        )
        if v is not None
    }
    if provider_ref is not None and str(provider_ref).strip() and not given_type:
        raise ValidationError("type", "is required with a provider (the type whose policy the provider overrides)")
    if values and not given_type:
        raise ValidationError("type", "is required (the appointment type the policy is for)")
    if given_type and not values:
        raise ValidationError("options", "nothing to change: give at least one of the policy's settings")
    if not given_type and window is None:
        raise ValidationError("options", "nothing to change")
    now = ctx.now()
    if given_type:
        atype = find_type(ctx, type_ref)
        prov = find_provider(ctx, provider_ref) if provider_ref is not None and str(provider_ref).strip() else None
        assert atype.id is not None
        row = _find_row(ctx, atype.id, prov.id if prov else None)
        verb = "update"
        if row is None:
            verb = "create"
            row = OnlineBookingPolicy(org_id=ctx.org_id, type_id=atype.id, provider_id=prov.id if prov else None)
            if prov is None:  # the type's own row is complete; a provider's inherits
                row.enabled, row.lead_minutes, row.horizon_days = True, DEFAULT_LEAD_MINUTES, DEFAULT_HORIZON_DAYS
                row.daily_cap, row.new_patients_allowed = 0, True
            ctx.session.add(row)
        for k, v in values.items():
            setattr(row, k, v)
        row.updated_at = now
        ctx.session.flush()
        assert row.id is not None
        audit.record(ctx, audit.Event(verb, "online_booking_policy", row.id, fields=sorted(values)))
        if row.enabled and not atype.self_bookable:  # opening a type online makes it one patients book
            atype.self_bookable = True
            ctx.session.flush()
            audit.record(ctx, audit.Event("update", "appointment_type", atype.id, fields=["self_bookable"]))
    if window is not None:
        profile = ctx.session.get(OnlineBookingProfile, ctx.org_id)
        if profile is None:
            profile = OnlineBookingProfile(org_id=ctx.org_id)
            ctx.session.add(profile)
        profile.cancel_window_hours, profile.updated_at = window, now
        ctx.session.flush()
        audit.record(ctx, audit.Event("update", "online_booking_profile", ctx.org_id, fields=["cancel_window_hours"]))
    return PoliciesOut(
        cancel_window_hours(ctx),
        [_out(r, n, p) for r, n, p in _policy_rows(ctx, atype.id if given_type else None)],
    )


def clear_policy(ctx: Ctx, *, type_ref: str | int | None, provider_ref: str | int | None = None) -> PolicyOut:
    """Remove a type's policy (the type is then closed online; providers' overrides stay) or a
    provider's override. Raises NotFoundError, ValidationError."""
    require(ctx.actor, "online.setup")
    atype = find_type(ctx, type_ref)
    prov = find_provider(ctx, provider_ref) if provider_ref is not None and str(provider_ref).strip() else None
    assert atype.id is not None
    row = _find_row(ctx, atype.id, prov.id if prov else None)
    if row is None:
        whose = f" for {provider_name(prov)}" if prov else ""
        raise NotFoundError(f"{atype.name} has no online booking policy{whose}", field="provider" if prov else "type")
    out = _out(row, atype.name, prov)
    ctx.session.delete(row)
    ctx.session.flush()
    audit.record(ctx, audit.Event("delete", "online_booking_policy", out.id))
    return out


def policy_for(ctx: Ctx, type_id: int, provider_id: int) -> Policy:
    """The policy in force for a type with a provider: the provider's override over the type's
    row; closed when the type has neither."""
    return policies_for(ctx, type_id, [provider_id])[provider_id]


def policies_for(ctx: Ctx, type_id: int, provider_ids: list[int]) -> dict[int, Policy]:
    """`policy_for` of each provider, read at once."""
    from hpms.models import OnlineBookingPolicy

    rows = (
        ctx.session.execute(
            sa.select(OnlineBookingPolicy).where(
                OnlineBookingPolicy.org_id == ctx.org_id,
                OnlineBookingPolicy.type_id == type_id,
                sa.or_(
                    col(OnlineBookingPolicy.provider_id).is_(None),
                    col(OnlineBookingPolicy.provider_id).in_(provider_ids),
                ),
            )
        )
        .scalars()
        .all()
    )
    base = next((r for r in rows if r.provider_id is None), None)
    own = {r.provider_id: r for r in rows if r.provider_id is not None}
    out = {}
    for pid in provider_ids:
        values = {f: getattr(CLOSED, f) for f in POLICY_FIELDS}
        for r in (base, own.get(pid)):
            if r is not None:
                values.update({f: getattr(r, f) for f in POLICY_FIELDS if getattr(r, f) is not None})
        out[pid] = Policy(**values)
    return out


# ---- the patient's operations --------------------------------------------------------------


@contextmanager
def on_behalf(ctx: Ctx, *actions: str) -> Iterator[None]:
    """Run a staff service as the patient: these of its checks pass for the time of the call,
    and the audit trail names the patient."""
    actor = ctx.actor
    ctx.actor = actor.model_copy(update={"grants": frozenset(actions)})
    try:
        yield
    finally:
        ctx.actor = actor


def _patient(ctx: Ctx, action: str) -> Patient:
    from hpms.models import Patient

    require(ctx.actor, action)  # staff are refused here; a patient passes
    assert ctx.actor.patient_id is not None
    pat = ctx.session.get(Patient, ctx.actor.patient_id)
    if pat is None or pat.org_id != ctx.org_id or pat.merged_into_id or not pat.active:
        raise NotFoundError("not found")
    return pat


def _own(ctx: Ctx, pat: Patient, ref: str | int | None) -> Appointment:
    """The patient's own visit; any other (or none) is the same NotFoundError."""
    from hpms.models import Appointment

    text = str(ref).strip() if ref is not None else ""
    appt = ctx.session.get(Appointment, int(text)) if text.isdigit() else None
    if appt is None or appt.org_id != ctx.org_id or appt.patient_id != pat.id:
        raise NotFoundError(f"no appointment {text!r}", field="appointment")
    return appt


def is_new_patient(ctx: Ctx, patient_id: int) -> bool:
    """A patient never yet seen (no visit checked in)."""
    from hpms.models import Appointment

    seen = ctx.session.execute(
        sa.select(Appointment.id)
        .where(Appointment.patient_id == patient_id, col(Appointment.status).in_(SEEN_STATUSES))
        .limit(1)
    ).first()
    return seen is None


def _bookable_type(ctx: Ctx, ref: str | int | None) -> AppointmentType:
    try:
        atype = find_type(ctx, ref)
    except NotFoundError:
        raise NotFoundError(
            f"no appointment type {str(ref or '').strip()!r} open to online booking", field="type"
        ) from None
    if not atype.active:
        raise NotFoundError(f"no appointment type {atype.name!r} open to online booking", field="type")
    if not atype.self_bookable:  # the type's own switch: closed online whatever its policies say
        raise NotFoundError(f"{atype.name} is not open to online booking", field="type")
    return atype


def _providers_at(ctx: Ctx, loc: Location, provider: str | int | None) -> list[Provider]:
    from hpms.models import Provider, ProviderLocation

    if provider is not None and str(provider).strip():
        try:
            prov = find_provider(ctx, provider)
        except NotFoundError:
            raise NotFoundError(f"no provider {str(provider).strip()!r}", field="provider") from None
        works = ctx.session.get(ProviderLocation, (prov.id, loc.id))
        if works is None or not prov.active:
            raise NotFoundError(f"{provider_name(prov)} does not see patients at {loc.name}", field="provider")
        return [prov]
    return list(
        ctx.session.execute(
            sa.select(Provider)
            .join(ProviderLocation, ProviderLocation.provider_id == Provider.id)
            .where(Provider.org_id == ctx.org_id, Provider.active.is_(True), ProviderLocation.location_id == loc.id)
            .order_by(Provider.id)
        ).scalars()
    )


def _window(ctx: Ctx, policy: Policy, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """[earliest, latest) start a policy opens online: the lead time from now, to the end of the
    local day `horizon_days` ahead."""
    now = ctx.now()
    today = lt.local_now(now, tz).date()
    _, hi = lt.day_bounds_utc(today + dt.timedelta(days=policy.horizon_days), tz)
    return now + dt.timedelta(minutes=policy.lead_minutes), hi


def _online_per_day(
    ctx: Ctx, provider_id: int, lo: dt.datetime, hi: dt.datetime, tz: str, exclude: int | None = None
) -> dict[dt.date, int]:
    """Visits booked online that hold the provider's time, by local day."""
    from hpms.models import Appointment, OnlineBooking
    from hpms.models.scheduling import BLOCKING_STATUSES

    q = (
        sa.select(Appointment.start_utc)
        .join(OnlineBooking, OnlineBooking.appointment_id == Appointment.id)
        .where(
            Appointment.provider_id == provider_id,
            Appointment.start_utc >= lo,
            Appointment.start_utc < hi,
            col(Appointment.status).in_(BLOCKING_STATUSES),
        )
    )
    if exclude is not None:
        q = q.where(Appointment.id != exclude)
    out: dict[dt.date, int] = {}
    for (start,) in ctx.session.execute(q):
        day = lt.to_local(start, tz).date()
        out[day] = out.get(day, 0) + 1
    return out


def _policy_checked(ctx: Ctx, pat: Patient, atype: AppointmentType, prov: Provider) -> Policy:
    """The policy of the type with the provider, or why the patient may not book it online."""
    assert atype.id is not None and prov.id is not None and pat.id is not None
    policy = policy_for(ctx, atype.id, prov.id)
    refusal = _refusal(ctx, pat, atype, prov, policy, {})
    if refusal is not None:
        raise refusal
    return policy


def _refusal(
    ctx: Ctx, pat: Patient, atype: AppointmentType, prov: Provider, policy: Policy, new: dict[int, bool]
) -> HpmsError | None:
    """Why the patient may not book the type with the provider online under `policy` (None: they
    may); `new` keeps whether the patient is new once it was read."""
    assert pat.id is not None
    if not policy.enabled:
        return NotFoundError(f"{atype.name} with {provider_name(prov)} is not open to online booking", field="provider")
    if not policy.new_patients_allowed:
        if pat.id not in new:
            new[pat.id] = is_new_patient(ctx, pat.id)
        if new[pat.id]:
            return ValidationError("type", f"{atype.name} is not open online to new patients")
    return None


def open_slots(
    ctx: Ctx,
    *,
    type: str | int | None,
    location: str | int | None,
    provider: str | int | None = None,
    start_date: str | dt.date | None = None,
    days: int | str = 14,
    limit: int | str = 50,
) -> list[SlotOut]:
    """The times open to the signed-in patient online, earliest first, in the location's zone:
    the slot search's free times from `start_date` (the location's today by default) for `days`
    days, with the provider or, without one, with every provider at the location (first
    available), inside each provider's policy (lead time, horizon, daily cap, new patients).
    Raises NotFoundError (type not open online, provider not there), ValidationError."""
    from hpms.services.scheduling.slots import free_slots

    pat = _patient(ctx, "online.slots")
    atype = _bookable_type(ctx, type)
    loc = _location(ctx, location)
    n_days = _whole("days", days, 1, MAX_DAYS)
    count = _whole("limit", limit, 1, 500)
    assert n_days is not None and count is not None and atype.id is not None
    today = lt.local_now(ctx.now(), loc.tz).date()
    first = lt.parse_day("start_date", start_date, today=today) if start_date else today
    if first < today:
        raise ValidationError("start_date", f"{first:%Y-%m-%d} is in the past: choose today or a later day")
    span_lo, _ = lt.day_bounds_utc(first, loc.tz)
    _, span_hi = lt.day_bounds_utc(first + dt.timedelta(days=n_days - 1), loc.tz)
    providers = _providers_at(ctx, loc, provider)
    policies = policies_for(ctx, atype.id, [p.id for p in providers if p.id is not None])
    open_to: list[tuple[Provider, Policy]] = []
    refusal: HpmsError | None = None
    new: dict[int, bool] = {}
    for prov in providers:
        assert prov.id is not None
        why = _refusal(ctx, pat, atype, prov, policies[prov.id], new)
        if why is None:
            open_to.append((prov, policies[prov.id]))
        else:
            refusal = refusal if isinstance(refusal, ValidationError) else why
    if not open_to:
        if isinstance(refusal, ValidationError) or (provider is not None and refusal is not None):
            raise refusal
        raise NotFoundError(f"{atype.name} is not open to online booking at {loc.name}", field="type")
    last_day = today + dt.timedelta(days=max(policy.horizon_days for _, policy in open_to))
    if first > last_day:
        said = f"{first:%Y-%m-%d} is too far ahead: online booking opens up to {last_day:%Y-%m-%d}"
        raise ValidationError("start_date", said)
    # One search over every provider's window, stopped at the times the page shows; a day a
    # provider's daily cap of online bookings has filled is skipped.
    searches: list[tuple[Provider, Location, dt.datetime, dt.datetime]] = []
    caps: dict[int, tuple[int, dict[dt.date, int]]] = {}
    for prov, policy in open_to:
        assert prov.id is not None
        lo, hi = _window(ctx, policy, loc.tz)
        lo, hi = max(lo, span_lo), min(hi, span_hi)
        if hi <= lo:
            continue
        searches.append((prov, loc, lo, hi))
        if policy.daily_cap:
            taken = _online_per_day(ctx, prov.id, lo - dt.timedelta(days=1), hi + dt.timedelta(days=1), loc.tz)
            caps[prov.id] = (policy.daily_cap, taken)

    def keep(start: dt.datetime, provider_id: int) -> bool:
        if provider_id not in caps:
            return True
        cap, taken = caps[provider_id]
        return taken.get(lt.to_local(start, loc.tz).date(), 0) < cap

    with on_behalf(ctx, "schedule.read"):
        return free_slots(ctx, atype, searches, count=count, patient_id=pat.id, keep=keep if caps else None)


def _location(ctx: Ctx, ref: str | int | None) -> Location:
    if ref is None or not str(ref).strip():
        raise ValidationError("location", "is required")
    try:
        return find_location(ctx, ref, field="location")
    except NotFoundError:
        raise NotFoundError(f"no location {str(ref).strip()!r}", field="location") from None


def _check_time(
    ctx: Ctx, policy: Policy, prov: Provider, loc: Location, start: dt.datetime, exclude: int | None = None
) -> None:
    """The policy's lead time, horizon and daily cap for a visit of `prov` at `start`."""
    from hpms.models import Provider

    assert prov.id is not None
    if policy.daily_cap:
        # Online bookings of one provider take turns while a cap counts them, so that two
        # patients cannot both take the day's last place (SQLite's writers take turns anyway).
        ctx.session.execute(sa.select(Provider.id).where(Provider.id == prov.id).with_for_update())
    lo, hi = _window(ctx, policy, loc.tz)
    when = lt.fmt_local(start, loc.tz)
    if start < lo:
        hours = policy.lead_minutes / 60
        said = f"{hours:g} hours" if policy.lead_minutes % 60 == 0 else f"{policy.lead_minutes} minutes"
        raise ValidationError("start", f"{when} is too soon: online booking closes {said} before a visit")
    if start >= hi:
        raise ValidationError(
            "start", f"{when} is too far ahead: online booking opens {policy.horizon_days} days ahead"
        )
    if policy.daily_cap:
        day = lt.to_local(start, loc.tz).date()
        d_lo, d_hi = lt.day_bounds_utc(day, loc.tz)
        if _online_per_day(ctx, prov.id, d_lo, d_hi, loc.tz, exclude).get(day, 0) >= policy.daily_cap:
            raise SlotTaken(
                f"{provider_name(prov)} has no more online bookings on {day:%Y-%m-%d}",
                alternatives=[],
            )


def _alternatives(
    ctx: Ctx, atype: AppointmentType, loc: Location, provider: str | int | None, start: dt.datetime
) -> list[object]:
    """A few other open times near the one refused (never an error of their own)."""
    try:
        day = lt.to_local(start, loc.tz).date()
        assert atype.id is not None and loc.id is not None
        return list(
            open_slots(ctx, type=atype.id, location=loc.id, provider=provider, start_date=day, limit=ALTERNATIVES)
        )
    except HpmsError:
        return []


def book_online(
    ctx: Ctx,
    *,
    type: str | int | None,
    provider: str | int | None,
    location: str | int | None,
    start: str | dt.datetime | None,
    reason: str | None = None,
) -> AppointmentOut:
    """Book a time open online for the signed-in patient: the policy is checked again now, the
    time must be a free slot of the search, and the booking goes through the staff booking and
    its overlap guard. A time another booking took (or that is no longer open) raises SlotTaken
    with other open times; also NotFoundError, ValidationError naming the field."""
    from hpms.models import OnlineBooking
    from hpms.services.scheduling import appointments
    from hpms.services.scheduling.slots import free_slots

    pat = _patient(ctx, "online.book")
    atype = _bookable_type(ctx, type)
    loc = _location(ctx, location)
    if provider is None or not str(provider).strip():
        raise ValidationError("provider", "is required (the provider of the time chosen)")
    prov = _providers_at(ctx, loc, provider)[0]
    policy = _policy_checked(ctx, pat, atype, prov)
    at = lt.parse_local("start", start, loc.tz, now=ctx.now())
    try:
        _check_time(ctx, policy, prov, loc, at)
    except SlotTaken as exc:
        exc.alternatives = _alternatives(ctx, atype, loc, None, at)
        raise
    duration = dt.timedelta(minutes=atype.duration_min)
    with on_behalf(ctx, "schedule.read"):  # the slot search of what is already looked up above
        free = free_slots(ctx, atype, [(prov, loc, at, at + duration)], count=1, patient_id=pat.id)
    if not free or free[0].start != lt.to_local(at, loc.tz):
        raise SlotTaken(
            f"{lt.fmt_local(at, loc.tz)} is not open with {provider_name(prov)}",
            alternatives=_alternatives(ctx, atype, loc, None, at),
        )
    try:
        with ctx.session.begin_nested(), on_behalf(ctx, "appointment.book"):
            booking = appointments.book(
                ctx, patient=pat.id, provider=prov.id, type=atype.id, at=at, location=loc.id, reason=reason
            )
    except ConflictError as exc:  # another booking got there first: the database guard said so
        raise SlotTaken(
            f"{lt.fmt_local(at, loc.tz)} was just taken", alternatives=_alternatives(ctx, atype, loc, None, at)
        ) from exc
    appt = booking.booked[0]
    ctx.session.add(OnlineBooking(appointment_id=appt.id, org_id=ctx.org_id, patient_id=pat.id, booked_at=ctx.now()))
    ctx.session.flush()
    audit.record(ctx, audit.Event("create", "online_booking", appt.id, patient_id=pat.id, fields=["appointment"]))
    return appt


def _check_window(ctx: Ctx, appt: Appointment, doing: str) -> None:
    hours = cancel_window_hours(ctx)
    if ctx.now() >= appt.start_utc - dt.timedelta(hours=hours):
        raise ConflictError(
            f"appointment {appt.id} is less than {hours} hours away: it can no longer be {doing} online",
            field="appointment",
            hint="the practice can still change it",
        )


def cancel_online(ctx: Ctx, appointment_id: str | int | None, *, reason: str | None = None) -> AppointmentOut:
    """Cancel the signed-in patient's own visit, unless it is inside the practice's cancellation
    window; the staff cancellation flags it late (inside the late-cancel notice) and gives the
    time to the waitlist. Raises NotFoundError (not theirs), ConflictError, ValidationError."""
    from hpms.services.scheduling import appointments

    pat = _patient(ctx, "online.cancel")
    appt = _own(ctx, pat, appointment_id)
    assert appt.id is not None
    _check_window(ctx, appt, "cancelled")
    with on_behalf(ctx, "appointment.update"):
        return appointments.cancel(ctx, appt.id, reason=(reason or "").strip() or "cancelled online by the patient")[0]


def reschedule_online(
    ctx: Ctx, appointment_id: str | int | None, *, start: str | dt.datetime | None, provider: str | int | None = None
) -> AppointmentOut:
    """Move the signed-in patient's own visit to another time open online (same type and
    location; another provider there when given), unless the visit is inside the cancellation
    window. The staff move checks working hours and the overlap guard and gives the old time to
    the waitlist. Raises NotFoundError, ConflictError, SlotTaken, ValidationError."""
    from hpms.models import AppointmentType, Location, Organization, Provider
    from hpms.services.scheduling import appointments

    pat = _patient(ctx, "online.reschedule")
    appt = _own(ctx, pat, appointment_id)
    assert appt.id is not None
    _check_window(ctx, appt, "moved")
    atype = ctx.session.get(AppointmentType, appt.type_id)
    loc = ctx.session.get(Location, appt.location_id)
    assert atype is not None and loc is not None  # foreign keys of the appointment
    if provider is not None and str(provider).strip():
        prov = _providers_at(ctx, loc, provider)[0]
    else:
        current = ctx.session.get(Provider, appt.provider_id)
        assert current is not None
        prov = current
    policy = _policy_checked(ctx, pat, atype, prov)
    at = lt.parse_local("start", start, loc.tz, now=ctx.now())
    org = ctx.session.get(Organization, ctx.org_id)
    assert org is not None
    local = lt.to_local(at, loc.tz)
    if (local.hour * 60 + local.minute) % org.slot_step_min or local.second or local.microsecond:
        raise ValidationError("start", f"{lt.fmt_local(at, loc.tz)} is not one of the times open online")
    try:
        _check_time(ctx, policy, prov, loc, at, exclude=appt.id)
    except SlotTaken as exc:
        exc.alternatives = _alternatives(ctx, atype, loc, None, at)
        raise
    try:
        with ctx.session.begin_nested(), on_behalf(ctx, "appointment.update"):
            moved = appointments.reschedule(ctx, appt.id, at=at, provider=prov.id, location=loc.id)
    except (ConflictError, ValidationError) as exc:
        if exc.field != "at":  # the visit itself cannot move (its status): not a matter of the time
            raise
        raise SlotTaken(
            f"{lt.fmt_local(at, loc.tz)} is not open with {provider_name(prov)}",
            alternatives=_alternatives(ctx, atype, loc, None, at),
        ) from exc
    return moved[0]


def my_visits(ctx: Ctx, *, include_past: bool = False) -> list[AppointmentOut]:
    """The signed-in patient's own visits (upcoming unless `include_past`), earliest first."""
    from hpms.services.scheduling.listing import history

    pat = _patient(ctx, "online.visits")
    with on_behalf(ctx, "appointment.read"):
        rows = history(ctx, pat.id)
    now = ctx.now()
    return sorted((r for r in rows if include_past or r.end >= now), key=lambda r: r.start)
