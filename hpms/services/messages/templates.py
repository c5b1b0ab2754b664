"""The practice's wording of its messages: one template per kind of message and channel, with
placeholders in braces ({first_name}, {date}...) from a fixed list per kind. A template is
checked when saved (an unknown placeholder is refused, naming it), so filling one in cannot
fail; and no placeholder carries a diagnosis or a procedure, so no message can hold them. A
reminder names no amount either; a statement's email may name the amount due (its PDF holds
the rest)."""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hpms.errors import NotFoundError, ValidationError
from hpms.services.platform import audit
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

# What a template may name, and what each holds.
PLACEHOLDERS: dict[str, str] = {
    "first_name": "the patient's preferred or first name",
    "last_name": "the patient's family name",
    "practice": "the practice's name",
    "date": "the visit's date, e.g. Tue 8 Dec 2026",
    "time": "the visit's time in its location's zone, e.g. 09:40",
    "location": "the location's name",
    "location_address": "the location's street address and city",
    "location_phone": "the location's phone number",
    "provider": "the provider's name",
    "type": "the kind of visit (appointment type)",
    "manage_link": "a signed link to cancel or move the visit online, valid until it starts (empty when the portal's "
    "public address is not set)",
}
SURVEY_PLACEHOLDERS: dict[str, str] = {
    **{k: v for k, v in PLACEHOLDERS.items() if k != "manage_link"},
    "survey_link": "a signed link to the visit's satisfaction survey, valid for 30 days",
}
STATEMENT_PLACEHOLDERS: dict[str, str] = {
    "first_name": "the patient's preferred or first name",
    "last_name": "the patient's family name",
    "practice": "the practice's name",
    "amount_due": "the amount due on the statement, e.g. 65.00",
    "statement_date": "the statement's date, e.g. 15 Jun 2026",
    "statement_number": "the statement's number, e.g. 000042",
    "location": "the name of the location the bill comes from",
    "location_phone": "that location's phone number",
}
PLACEHOLDERS_OF: dict[str, dict[str, str]] = {
    "reminder": PLACEHOLDERS,
    "statement": STATEMENT_PLACEHOLDERS,
    "survey": SURVEY_PLACEHOLDERS,
}
CHANNELS_OF: dict[str, tuple[str, ...]] = {
    "reminder": ("email", "sms"),
    "statement": ("email",),
    "survey": ("email", "sms"),
}
KINDS = tuple(PLACEHOLDERS_OF)
SMS_MAX_CHARS = 320  # two SMS segments

DEFAULTS: dict[tuple[str, str], tuple[str | None, str]] = {
    ("reminder", "email"): (
        "Your visit on {date} at {time}",
        "Dear {first_name},\n\nThis is a reminder of your visit with {provider} at {location} on {date} at "
        "{time}.\n\nTo confirm, reply CONFIRM; to cancel, reply CANCEL, or call us at {location_phone}.\n\n"
        "{practice}",
    ),
    ("reminder", "sms"): (
        None,
        "{practice}: visit {date} {time} at {location}. Reply C to confirm, CANCEL to cancel, STOP to opt out.",
    ),
    ("statement", "email"): (
        "Your statement from {practice}",
        "Dear {first_name},\n\nYour statement {statement_number} of {statement_date} is attached. The amount due "
        "is {amount_due}.\n\nFor a question about your bill, call us at {location_phone} or reply to this email."
        "\n\n{practice}",
    ),
    ("survey", "email"): (
        "How was your visit on {date}?",
        "Dear {first_name},\n\nThank you for your visit with {provider} on {date}. Would you tell us how it went? "
        "It takes a minute:\n\n{survey_link}\n\n{practice}",
    ),
    ("survey", "sms"): (None, "{practice}: how was your visit on {date}? Tell us in a minute: {survey_link}"),
}


@dataclass(frozen=True)
class Template:
    name: str
    channel: str
    subject: str | None
    body: str
    custom: bool  # saved by the practice (else the built-in wording)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "channel": self.channel,
            "subject": self.subject,
            "body": self.body,
            "custom": self.custom,
        }


def placeholders_in(field: str, text: str, kind: str = "reminder") -> list[str]:
    """The placeholders `text` names, in order. Raises ValidationError naming `field` for one
    that a `kind` of message does not know, a format spec or conversion, or a stray brace."""
    known_names = PLACEHOLDERS_OF[kind]
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValidationError(field, f"a brace is not closed or not doubled ({exc}); write {{{{ for a brace") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in known_names:
            known = ", ".join("{" + p + "}" for p in known_names)
            raise ValidationError(field, f"unknown placeholder {{{name}}} (known: {known})")
        if spec or conversion:
            raise ValidationError(field, f"placeholder {{{name}}} takes no format ({{{name}}} only)")
        names.append(name)
    return names


def _check(kind: str, channel: str) -> None:
    if kind not in KINDS:
        raise ValidationError("kind", f"{kind!r} is not a kind of message (one of: {', '.join(KINDS)})")
    if channel not in ("email", "sms"):
        raise ValidationError("channel", f"{channel!r} is not a channel (email or sms)")
    if channel not in CHANNELS_OF[kind]:
        raise ValidationError("channel", f"a {kind} goes by {' or '.join(CHANNELS_OF[kind])} only, not {channel}")


def get_template(ctx: Ctx, kind: str, channel: str) -> Template:
    """The practice's template, else the built-in one."""
    from hpms.models import MessageTemplate

    _check(kind, channel)
    row = ctx.session.get(MessageTemplate, (ctx.org_id, kind, channel))
    if row is not None:
        return Template(kind, channel, row.subject, row.body, True)
    subject, body = DEFAULTS[(kind, channel)]
    return Template(kind, channel, subject, body, False)


def list_templates(ctx: Ctx) -> list[Template]:
    require(ctx.actor, "messages.read")
    return [get_template(ctx, kind, channel) for kind in KINDS for channel in CHANNELS_OF[kind]]


def set_template(ctx: Ctx, kind: str, channel: str, *, body: str, subject: str | None = None) -> Template:
    """Save the practice's wording. Raises ValidationError naming the field (an unknown
    placeholder, a subject on an SMS, an SMS longer than two segments)."""
    from hpms.models import MessageTemplate

    require(ctx.actor, "messages.setup")
    _check(kind, channel)
    body = (body or "").strip()
    if not body:
        raise ValidationError("body", "is empty")
    placeholders_in("body", body, kind)
    if channel == "sms":
        if subject:
            raise ValidationError("subject", "an SMS has no subject")
        if len(body) > SMS_MAX_CHARS:
            raise ValidationError("body", f"is {len(body)} characters: an SMS template takes at most {SMS_MAX_CHARS}")
    elif subject is not None:
        subject = subject.strip() or None
        if subject:
            placeholders_in("subject", subject, kind)
    row = ctx.session.get(MessageTemplate, (ctx.org_id, kind, channel))
    if row is None:
        row = MessageTemplate(org_id=ctx.org_id, name=kind, channel=channel, body=body)
        ctx.session.add(row)
    row.body, row.subject, row.updated_at = body, subject if channel == "email" else None, ctx.now()
    ctx.session.flush()
    audit.record(ctx, audit.Event("update", "message_template", f"{kind}/{channel}", fields=["body", "subject"]))
    return get_template(ctx, kind, channel)


def reset_template(ctx: Ctx, kind: str, channel: str) -> Template:
    """Go back to the built-in wording. Raises NotFoundError when the practice has none of its own."""
    from hpms.models import MessageTemplate

    require(ctx.actor, "messages.setup")
    _check(kind, channel)
    row = ctx.session.get(MessageTemplate, (ctx.org_id, kind, channel))
    if row is None:
        raise NotFoundError(f"the practice has no {kind} template of its own for {channel}")
    ctx.session.delete(row)
    ctx.session.flush()
    audit.record(ctx, audit.Event("delete", "message_template", f"{kind}/{channel}"))
    return get_template(ctx, kind, channel)


def render(template: Template, values: dict[str, str]) -> tuple[str | None, str]:
    """(subject, body) with the placeholders filled in; a value missing is left empty."""
    full = {name: values.get(name) or "" for name in PLACEHOLDERS_OF.get(template.name, PLACEHOLDERS)}
    subject = template.subject.format_map(full) if template.subject else None
    return subject, template.body.format_map(full)
