"""The invitation to the satisfaction survey: when a visit is completed, one message with a
signed link to its survey goes through the outbox `survey_delay_hours` later, inside the
practice's quiet hours and only on a channel the patient agreed to (the reminders' rules).

Off unless both `survey_delay_hours` and the portal's public address are set: a survey
without a link to answer it is not sent."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from hpms.services.messages import outbox, reminders
from hpms.services.messages import templates as t

if TYPE_CHECKING:
    from hpms.services.messages.reminders import Visit
    from hpms.services.platform.context import Ctx

TEMPLATE = "survey"


def _channel(patient: object) -> tuple[str, str | None, str | None]:
    """(channel, address, why not): the preferred channel when the patient agreed to it, else
    email, else SMS; the first refusal is the reason when none can be used."""
    preferred = getattr(patient, "preferred_channel", None)
    order = [preferred] if preferred in ("email", "sms") else []
    order += [c for c in ("email", "sms") if c not in order]
    first_reason: str | None = None
    for channel in order:
        address, why = reminders.address_on(patient, channel)
        if address is not None:
            return channel, address, None
        first_reason = first_reason or why
    return order[0], None, first_reason


def queue_for(ctx: Ctx, appt: Visit) -> bool:
    """Queue the survey of a visit just completed, in the caller's transaction (once per visit:
    a second call changes nothing). True when a message was queued; one that cannot go (no
    consent, no address) is kept as skipped with the reason."""
    from hpms.models import Location, Patient
    from hpms.services.portal import links

    delay = ctx.settings.survey_delay_hours
    if delay is None or not ctx.settings.portal_public_url or appt.id is None:
        return False
    patient = ctx.session.get(Patient, appt.patient_id)
    location = ctx.session.get(Location, appt.location_id)
    assert patient is not None and location is not None  # foreign keys of the visit
    key = f"survey:{appt.id}"
    channel, address, why = _channel(patient)
    if address is None:
        reminders.keep_skipped(
            ctx, appt, channel=channel, recipient=None, template=TEMPLATE, reason=why or "no address", key=key
        )
        ctx.session.flush()
        return False
    until, since = reminders.quiet_hours(ctx)
    now = ctx.now()
    due = reminders.allowed_time(
        now + dt.timedelta(hours=delay), zone=patient.tz or location.tz, until=until, since=since, now=now, start=None
    )
    assert due is not None  # no visit to come limits it
    values = reminders.values_of(ctx, appt)
    values["survey_link"] = links.survey_url(ctx, appointment_id=appt.id, patient_id=appt.patient_id, sent_at=due)
    subject, body = t.render(t.get_template(ctx, TEMPLATE, channel), values)
    msg = outbox.enqueue(
        ctx,
        channel=channel,
        recipient=address,
        subject=subject,
        body=body,
        template=TEMPLATE,
        patient_id=appt.patient_id,
        due_at=due,
        dedupe_key=key,
    )
    msg.appointment_id = appt.id
    ctx.session.flush()
    return True
