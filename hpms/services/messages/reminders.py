"""Appointment reminders: the practice's rules (e.g. an email 72 hours before and an SMS 24
hours before; none for some types), and the messages they put in the outbox when a visit is
booked, moved or cancelled, in that same transaction.

A reminder goes only between the practice's quiet hours (08:00 to 20:00 unless set), in the
patient's time zone, else the location's: one that would fall outside them goes at the last
allowed time before, or, when that has passed, at the next allowed time if the visit is still
more than an hour away. A reminder that cannot go (no consent to the channel, no address, the
visit too close) is kept as `skipped` with the reason, and is never sent."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col

from hpms.errors import ConflictError, NotFoundError, ValidationError
from hpms.services.messages import outbox
from hpms.services.messages import templates as t
from hpms.services.platform import audit
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.models import ReminderRule
    from hpms.services.platform.context import Ctx


class Visit(Protocol):
    """What reminders read of an appointment (an ORM row, or the values of one just inserted)."""

    id: int | None
    patient_id: int
    provider_id: int
    location_id: int
    type_id: int
    start_utc: dt.datetime


RULE_CHANNELS = ("email", "sms", "preferred", "none")
MIN_LEAD = dt.timedelta(hours=1)  # no reminder for a visit less than an hour away
MAX_HOURS = 24 * 30


@dataclass(frozen=True)
class RuleOut:
    id: int
    type: str | None  # None: the practice's rule
    hours_before: int
    channel: str

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "type": self.type, "hours_before": self.hours_before, "channel": self.channel}


@dataclass(frozen=True)
class Planned:
    """One reminder of a visit: when and how, or why not (`skip`)."""

    rule_id: int
    channel: str
    recipient: str | None
    due_at: dt.datetime | None
    skip: str | None = None


# ---- rules ---------------------------------------------------------------------------------


def list_rules(ctx: Ctx) -> list[RuleOut]:
    from hpms.models import AppointmentType, ReminderRule

    require(ctx.actor, "messages.read")
    rows = ctx.session.execute(
        sa.select(ReminderRule, AppointmentType.name)
        .outerjoin(AppointmentType, col(AppointmentType.id) == ReminderRule.type_id)
        .where(ReminderRule.org_id == ctx.org_id)
        .order_by(col(AppointmentType.name).nulls_first(), col(ReminderRule.hours_before).desc(), ReminderRule.id)
    ).all()
    return [RuleOut(r.id, name, r.hours_before, r.channel) for r, name in rows if r.id is not None]


def add_rule(ctx: Ctx, *, hours_before: int | None, channel: str, type_ref: str | None = None) -> RuleOut:
    """A reminder `hours_before` visits (of type `type_ref`, else of every type without rules
    of its own) by `channel`; channel `none` (no hours) means no reminders for that type.
    Raises ValidationError naming the field, NotFoundError, ConflictError."""
    from hpms.models import ReminderRule
    from hpms.services.lookups import find_type

    require(ctx.actor, "messages.setup")
    channel = (channel or "").strip().lower()
    if channel not in RULE_CHANNELS:
        raise ValidationError("channel", f"{channel!r} is not a channel (one of: {', '.join(RULE_CHANNELS)})")
    kind = find_type(ctx, type_ref, field="type") if type_ref is not None and str(type_ref).strip() else None
    if channel == "none":
        if kind is None:
            raise ValidationError("type", "is required with channel none (the type that gets no reminders)")
        if hours_before:
            raise ValidationError("hours_before", "takes no hours with channel none")
        hours_before = 0
    elif hours_before is None or not 1 <= hours_before <= MAX_HOURS:
        raise ValidationError("hours_before", f"must be a whole number of hours from 1 to {MAX_HOURS}")
    type_id = kind.id if kind else None
    existing = (
        ctx.session.execute(
            sa.select(ReminderRule).where(
                ReminderRule.org_id == ctx.org_id,
                ReminderRule.type_id.is_(None) if type_id is None else ReminderRule.type_id == type_id,  # type: ignore[union-attr]
            )
        )
        .scalars()
        .all()
    )
    for r in existing:
        if r.hours_before == hours_before and r.channel == channel:
            raise ConflictError(f"that rule exists (rule {r.id})", field="hours_before")
        if (r.channel == "none") != (channel == "none"):
            name = kind.name if kind else ""
            why = (
                f"no reminders (rule {r.id}): remove that rule first"
                if r.channel == "none"
                else "rules: remove them first"
            )
            raise ConflictError(f"the type {name!r} has {why}", field="channel")
    rule = ReminderRule(
        org_id=ctx.org_id, type_id=type_id, hours_before=hours_before, channel=channel, created_at=ctx.now()
    )
    ctx.session.add(rule)
    ctx.session.flush()
    assert rule.id is not None
    audit.record(ctx, audit.Event("create", "reminder_rule", rule.id, fields=["type_id", "hours_before", "channel"]))
    return RuleOut(rule.id, kind.name if kind else None, hours_before, channel)


def remove_rule(ctx: Ctx, rule_id: int) -> RuleOut:
    """Remove a rule (reminders already queued stay). Raises NotFoundError."""
    from hpms.models import AppointmentType, ReminderRule

    require(ctx.actor, "messages.setup")
    rule = ctx.session.get(ReminderRule, rule_id)
    if rule is None or rule.org_id != ctx.org_id:
        raise NotFoundError(f"no reminder rule {rule_id}", field="rule")
    kind = ctx.session.get(AppointmentType, rule.type_id) if rule.type_id else None
    out = RuleOut(rule_id, kind.name if kind else None, rule.hours_before, rule.channel)
    ctx.session.delete(rule)
    ctx.session.flush()
    audit.record(ctx, audit.Event("delete", "reminder_rule", rule_id))
    return out


def set_quiet_hours(ctx: Ctx, *, until: str, since: str) -> dict[str, str]:
    """Reminders go between `until` (e.g. 08:00) and `since` (e.g. 20:00), local time.
    Raises ValidationError naming the field."""
    from hpms.models import MessagingProfile
    from hpms.services.platform.localtime import parse_time

    require(ctx.actor, "messages.setup")
    start, end = parse_time("quiet_until", until), parse_time("quiet_from", since)
    if end <= start:
        raise ValidationError("quiet_from", f"must be after {start:%H:%M} (the end of the quiet night)")
    if (dt.datetime.combine(dt.date.min, end) - dt.datetime.combine(dt.date.min, start)) < dt.timedelta(hours=1):
        raise ValidationError("quiet_from", "leaves less than an hour a day to send reminders")
    profile = ctx.session.get(MessagingProfile, ctx.org_id)
    if profile is None:
        profile = MessagingProfile(org_id=ctx.org_id)
        ctx.session.add(profile)
    profile.quiet_until, profile.quiet_from, profile.updated_at = f"{start:%H:%M}", f"{end:%H:%M}", ctx.now()
    ctx.session.flush()
    audit.record(ctx, audit.Event("update", "messaging_profile", ctx.org_id, fields=["quiet_until", "quiet_from"]))
    return {"quiet_until": profile.quiet_until, "quiet_from": profile.quiet_from}


def _rules_for(ctx: Ctx, type_id: int) -> list[ReminderRule]:
    from hpms.models import ReminderRule

    rows = (
        ctx.session.execute(
            sa.select(ReminderRule).where(
                ReminderRule.org_id == ctx.org_id,
                sa.or_(ReminderRule.type_id == type_id, ReminderRule.type_id.is_(None)),  # type: ignore[union-attr]
            )
        )
        .scalars()
        .all()
    )
    own = [r for r in rows if r.type_id == type_id]
    chosen = own if own else [r for r in rows if r.type_id is None]
    return sorted((r for r in chosen if r.channel != "none"), key=lambda r: -r.hours_before)


# ---- planning ------------------------------------------------------------------------------


def allowed_time(
    due: dt.datetime, *, zone: str, until: dt.time, since: dt.time, now: dt.datetime, start: dt.datetime | None
) -> dt.datetime | None:
    """When a reminder due at `due` may go: `due` itself inside the allowed hours [until,
    since) of `zone`; else the last allowed minute before it; if that has passed, now when now is
    allowed, else the next allowed start; None when the visit (`start`) would then be less than
    an hour away (no such limit without a `start`). DST is handled in the zone's own clock."""
    tz = ZoneInfo(zone)
    candidate = max(due, now)
    local = candidate.astimezone(tz)
    if not until <= local.time() < since:
        if local.time() >= since:  # late evening: the end of today's allowed hours
            back = dt.datetime.combine(local.date(), since, tzinfo=tz) - dt.timedelta(minutes=1)
        else:  # small hours: the end of yesterday's
            back = dt.datetime.combine(local.date() - dt.timedelta(days=1), since, tzinfo=tz) - dt.timedelta(minutes=1)
        back_utc = back.astimezone(dt.UTC)
        if back_utc >= now:
            candidate = back_utc
        else:
            day = local.date() if local.time() < until else local.date() + dt.timedelta(days=1)
            candidate = dt.datetime.combine(day, until, tzinfo=tz).astimezone(dt.UTC)
    if start is not None and start - candidate < MIN_LEAD:
        return None
    return candidate


def quiet_hours(ctx: Ctx) -> tuple[dt.time, dt.time]:
    """(until, since): messages to patients go from `until` to `since`, local time."""
    from hpms.models import MessagingProfile
    from hpms.services.platform.localtime import parse_time

    profile = ctx.session.get(MessagingProfile, ctx.org_id)
    until = parse_time("quiet_until", profile.quiet_until if profile else "08:00")
    since = parse_time("quiet_from", profile.quiet_from if profile else "20:00")
    return until, since


def plan(ctx: Ctx, appt: Visit) -> list[Planned]:
    """The reminders of a visit under the practice's rules, with their time, or why not."""
    from hpms.models import Location, Patient

    rules = _rules_for(ctx, appt.type_id)
    if not rules:
        return []
    patient = ctx.session.get(Patient, appt.patient_id)
    location = ctx.session.get(Location, appt.location_id)
    assert patient is not None and location is not None
    until, since = quiet_hours(ctx)
    zone = patient.tz or location.tz
    out: list[Planned] = []
    for rule in rules:
        assert rule.id is not None
        channel = rule.channel
        if channel == "preferred":
            channel = patient.preferred_channel if patient.preferred_channel in ("email", "sms") else ""
            if not channel:
                out.append(Planned(rule.id, "email", None, None, "the patient has no preferred channel (email or sms)"))
                continue
        recipient, skip = address_on(patient, channel)
        due = None
        wanted = appt.start_utc - dt.timedelta(hours=rule.hours_before)
        if skip is None and wanted < ctx.now():
            skip = f"the visit was booked after this reminder's time ({rule.hours_before} h before)"
        if skip is None:
            due = allowed_time(
                wanted,
                zone=zone,
                until=until,
                since=since,
                now=ctx.now(),
                start=appt.start_utc,
            )
            if due is None:
                skip = "the visit is too close for this reminder"
        out.append(Planned(rule.id, channel, recipient, due, skip))
    return out


def address_on(patient: object, channel: str) -> tuple[str | None, str | None]:
    """The patient's address on `channel`, or why it cannot be used."""
    from hpms.services.platform import validation as v

    if channel == "email":
        if not getattr(patient, "consent_email", False):
            return None, "the patient has not agreed to email"
        email = getattr(patient, "email", None)
        return (email, None) if email else (None, "the patient has no email address")
    if not getattr(patient, "consent_sms", False):
        return None, "the patient has not agreed to SMS"
    phone = getattr(patient, "phone", None)
    if not phone:
        return None, "the patient has no phone number"
    try:
        return v.parse_e164("phone", phone), None
    except ValidationError as exc:
        return None, f"the patient's phone number cannot take an SMS: {exc.message}"


def values_of(ctx: Ctx, appt: Visit) -> dict[str, str]:
    """The placeholders' values of a visit's messages (its manage link only when the portal's
    public address is set)."""
    from hpms.models import AppointmentType, Location, Organization, Patient, Provider
    from hpms.services.lookups import provider_name
    from hpms.services.portal import links

    patient = ctx.session.get(Patient, appt.patient_id)
    location = ctx.session.get(Location, appt.location_id)
    provider = ctx.session.get(Provider, appt.provider_id)
    kind = ctx.session.get(AppointmentType, appt.type_id)
    org = ctx.session.get(Organization, ctx.org_id)
    assert patient and location and provider and kind and org
    local = appt.start_utc.astimezone(ZoneInfo(location.tz))
    address = ", ".join(x for x in (location.address_line1, location.city) if x)
    return {
        "first_name": patient.preferred_name or patient.first_name,
        "last_name": patient.last_name,
        "practice": org.name,
        "date": f"{local:%a} {local.day} {local:%b %Y}",
        "time": f"{local:%H:%M}",
        "location": location.name,
        "location_address": address,
        "location_phone": location.phone or "",
        "provider": provider_name(provider),
        "type": kind.name,
        "manage_link": links.manage_url(
            ctx, appointment_id=appt.id or 0, patient_id=appt.patient_id, start=appt.start_utc
        ),
    }


def keep_skipped(
    ctx: Ctx, appt: Visit, *, channel: str, recipient: str | None, template: str, reason: str, key: str
) -> None:
    """Keep a message that cannot go as `skipped` with its reason (never sent)."""
    from hpms.models import Message

    ctx.session.add(
        Message(
            org_id=ctx.org_id,
            patient_id=appt.patient_id,
            appointment_id=appt.id,
            channel=channel,
            template=template,
            recipient=recipient or "",
            body="",
            state="skipped",
            error=reason,
            due_at=ctx.now(),
            next_attempt_at=ctx.now(),
            dedupe_key=key,
            created_at=ctx.now(),
            created_by=ctx.actor.user_id,
        )
    )


# ---- the hooks of the scheduling services ------------------------------------------------


def queue_many(ctx: Ctx, appts: list[Any], *, fresh: bool = False, has_rules: bool | None = None) -> int:
    """`queue_for` each visit (`fresh`: just booked, so none has reminders to withdraw). One
    look at the rules when the practice has none, none when the caller read `has_rules` (whether
    any rule sends) in this transaction."""
    from hpms.models import ReminderRule

    if not appts:
        return 0
    if has_rules is None:
        has_rules = (
            ctx.session.execute(
                sa.select(ReminderRule.id)
                .where(ReminderRule.org_id == ctx.org_id, ReminderRule.channel != "none")
                .limit(1)
            ).first()
            is not None
        )
    if not has_rules:
        if not fresh:
            for a in appts:
                cancel_for(ctx, a)
        return 0
    return sum(queue_for(ctx, a, fresh=fresh) for a in appts)


def queue_for(ctx: Ctx, appt: Visit, *, fresh: bool = False) -> int:
    """(Re)plan the reminders of a visit just booked or moved, in the caller's transaction:
    its reminders still queued are withdrawn, then one message per rule is queued (or kept as
    skipped with its reason). Returns how many were queued."""
    assert appt.id is not None
    if not fresh:
        cancel_for(ctx, appt)
    planned = plan(ctx, appt)
    if not planned:
        return 0
    values = values_of(ctx, appt)
    queued = 0
    for p in planned:
        key = f"reminder:{appt.id}:{p.rule_id}:{appt.start_utc:%Y%m%dT%H%M}"
        if p.skip is not None:
            keep_skipped(
                ctx, appt, channel=p.channel, recipient=p.recipient, template="reminder", reason=p.skip, key=key
            )
            continue
        assert p.recipient is not None and p.due_at is not None
        subject, body = t.render(t.get_template(ctx, "reminder", p.channel), values)
        msg = outbox.enqueue(
            ctx,
            channel=p.channel,
            recipient=p.recipient,
            subject=subject,
            body=body,
            template="reminder",
            patient_id=appt.patient_id,
            due_at=p.due_at,
            dedupe_key=key,
        )
        msg.appointment_id = appt.id
        queued += 1
    ctx.session.flush()
    return queued


def cancel_for(ctx: Ctx, appt: Visit) -> int:
    """Withdraw the reminders of a visit that are still waiting (on cancel, and before a move)."""
    from hpms.models import Message

    res = ctx.session.execute(
        sa.update(Message)
        .where(
            Message.org_id == ctx.org_id,
            Message.appointment_id == appt.id,
            col(Message.state).in_(("queued", "skipped")),
        )
        .values(state="cancelled", dedupe_key=None)
        .execution_options(synchronize_session=False)
    )
    return int(res.rowcount or 0)
