"""Patients' replies, by SMS or email: recorded first, then acted on once.

CONFIRM (C, YES, Y) confirms the visit the reply answers, CANCEL cancels it (its time goes to
the waitlist as any cancellation's does), STOP (UNSUBSCRIBE, STOPALL, END, QUIT) withdraws the
patient's consent to that channel and withdraws what is still queued on it; anything else goes
to the staff's list. The visit a reply answers is that of the message it replies to (an
email's In-Reply-To), else of the last reminder sent to that address for a visit still to
come. A sender whose address no patient has changes nothing, and a second delivery of the same message
(same provider id) neither."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.errors import NotFoundError, ValidationError
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.models import InboundMessage
    from hpms.services.platform.context import Ctx

CONFIRM = frozenset({"CONFIRM", "CONFIRMED", "C", "YES", "Y"})
CANCEL = frozenset({"CANCEL", "CANCELLED", "CANCELED"})
STOP = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT"})
# In the Message-IDs of the emails sent (email.py): make_msgid puts the id string last, before the @.
_OUR_ID = re.compile(r"hpms-(\d+)[.@]")


@dataclass(frozen=True)
class Incoming:
    channel: str
    sender: str
    body: str
    provider_id: str
    subject: str | None = None
    in_reply_to: str | None = None


def parse(raw: bytes) -> Incoming:
    """A message as a provider hands it over: Twilio's webhook fields (form-encoded, or as a
    JSON object) for an SMS, or an email (RFC 5322). Raises ValidationError naming `input`."""
    text = raw.decode("utf-8", "replace").strip()
    if not text:
        raise ValidationError("input", "is empty")
    fields: dict[str, Any] | None = None
    if text.startswith("{"):
        try:
            fields = json.loads(text)
        except ValueError as exc:
            raise ValidationError("input", f"is not valid JSON: {exc}") from None
        if not isinstance(fields, dict):
            raise ValidationError("input", "is not a JSON object")
    elif "=" in text.split("\n", 1)[0] and ":" not in text.split("=", 1)[0]:
        fields = {k: vals[0] for k, vals in urllib.parse.parse_qs(text, keep_blank_values=True).items()}
    if fields is not None:
        return sms_from_fields(fields)
    return email_from_bytes(raw)


def email_from_bytes(raw: bytes, *, field: str = "input") -> Incoming:
    """An email (RFC 5322) as a mail provider hands it over. Raises ValidationError naming
    `field`."""
    if not raw.strip():
        raise ValidationError(field, "is empty")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    sender = parseaddr(str(msg.get("From") or ""))[1]
    if not sender or "@" not in sender:
        what = "an email with a From address" if field != "input" else None
        said = (
            f"is not {what}" if what else "is neither an SMS (From, Body, MessageSid) nor an email with a From address"
        )
        raise ValidationError(field, said)
    try:
        part = msg.get_body(preferencelist=("plain",)) if msg.is_multipart() else msg
        body = part.get_content() if part is not None else ""
    except (LookupError, ValueError, KeyError) as exc:  # an unknown charset, a broken part
        raise ValidationError(field, f"the email's text cannot be read: {exc}") from None
    provider_id = str(msg.get("Message-ID") or "").strip()
    if not provider_id:
        raise ValidationError(field, "the email has no Message-ID")
    replies = " ".join(str(msg.get(h) or "") for h in ("In-Reply-To", "References")).strip() or None
    return Incoming("email", sender, _reply_text(body), provider_id, str(msg.get("Subject") or "") or None, replies)


def sms_from_fields(fields: Mapping[str, Any], *, field: str = "input") -> Incoming:
    """An SMS from the fields of Twilio's inbound webhook (From, Body, MessageSid). Raises
    ValidationError naming `field`."""
    sender, body, sid = fields.get("From"), fields.get("Body"), fields.get("MessageSid") or fields.get("SmsSid")
    if not sender or body is None or not sid:
        raise ValidationError(field, "an SMS needs From, Body and MessageSid")
    return Incoming("sms", str(sender), str(body), str(sid))


def _reply_text(body: str) -> str:
    """What the patient wrote: the lines above the quoted message."""
    lines = []
    for line in body.splitlines():
        if line.startswith(">") or re.match(r"^On .+ wrote:$", line.strip()):
            break
        lines.append(line)
    return "\n".join(lines).strip()


def keyword(body: str) -> str:
    """The first word, upper-cased, without punctuation: what the reply asks for."""
    words = re.findall(r"[A-Za-z]+", body)
    return words[0].upper() if words else ""


@dataclass(frozen=True)
class InboundOut:
    id: int
    channel: str
    sender: str
    outcome: str
    patient_id: int | None
    mrn: str | None
    appointment_id: int | None
    note: str | None
    received_at: dt.datetime
    body: str
    duplicate: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "channel": self.channel,
            "sender": self.sender,
            "outcome": self.outcome,
            "patient_id": self.patient_id,
            "mrn": self.mrn,
            "appointment_id": self.appointment_id,
            "note": self.note,
            "received_at": self.received_at,
            "body": self.body,
            "duplicate": self.duplicate,
        }


def receive(ctx: Ctx, incoming: Incoming) -> InboundOut:
    """Record a patient's message and act on it (see the module docstring), in the caller's
    transaction. Raises PermissionDenied."""
    from hpms.models import InboundMessage

    require(ctx.actor, "messages.inbound")
    seen = ctx.session.execute(
        sa.select(InboundMessage).where(
            InboundMessage.org_id == ctx.org_id, InboundMessage.provider_id == incoming.provider_id
        )
    ).scalar_one_or_none()
    if seen is not None:
        return _out(ctx, seen, duplicate=True)
    sender = _normal_sender(incoming)
    row = InboundMessage(
        org_id=ctx.org_id,
        channel=incoming.channel,
        sender=sender,
        subject=incoming.subject[:200] if incoming.subject else None,
        body=incoming.body,
        provider_id=incoming.provider_id[:200],
        received_at=ctx.now(),
        outcome="for_staff",
    )
    ctx.session.add(row)
    ctx.session.flush()
    _act(ctx, row, incoming)
    ctx.session.flush()
    audit.record(
        ctx,
        audit.Event(
            "receive", "inbound_message", row.id, patient_id=row.patient_id, detail=f"{row.channel}: {row.outcome}"
        ),
    )
    return _out(ctx, row)


def _normal_sender(incoming: Incoming) -> str:
    if incoming.channel == "email":
        return incoming.sender.strip().lower()
    try:
        return v.parse_e164("sender", incoming.sender) or incoming.sender
    except ValidationError:
        return incoming.sender.strip()


def _act(ctx: Ctx, row: InboundMessage, incoming: Incoming) -> None:
    from hpms.models import Appointment

    answered = _answered(ctx, row, incoming)
    patients = _patients_at(ctx, row)
    if answered is not None:
        row.reply_to_id, row.patient_id, row.appointment_id = answered
    elif len(patients) == 1:
        row.patient_id = patients[0]
    if row.patient_id is None and not patients:
        row.outcome, row.note = "unknown_sender", "no patient has this address: nothing was changed"
        return
    word = keyword(row.body)
    if word in STOP and row.patient_id is not None:
        _withdraw_consent(ctx, row)
        return
    if word not in CONFIRM and word not in CANCEL:
        row.outcome, row.note = "for_staff", None if word else "an empty reply"
        return
    appt = ctx.session.get(Appointment, row.appointment_id) if row.appointment_id else None
    if appt is None:
        row.outcome, row.note = "for_staff", f"{word} but no reminder of a coming visit was sent to this address"
        return
    if word in CONFIRM:
        _confirm(ctx, row, appt)
    else:
        _cancel(ctx, row, appt)


def _answered(ctx: Ctx, row: InboundMessage, incoming: Incoming) -> tuple[int, int | None, int | None] | None:
    """(message, patient, appointment) of the reminder this replies to."""
    from hpms.models import Appointment, Message

    if incoming.in_reply_to:
        for found in _OUR_ID.findall(incoming.in_reply_to):
            msg = ctx.session.get(Message, int(found))
            if msg is not None and msg.org_id == ctx.org_id and msg.recipient.lower() == row.sender:
                return msg.id or 0, msg.patient_id, msg.appointment_id
    hit = ctx.session.execute(
        sa.select(Message.id, Message.patient_id, Message.appointment_id)
        .join(Appointment, col(Appointment.id) == Message.appointment_id)
        .where(
            Message.org_id == ctx.org_id,
            Message.channel == row.channel,
            sa.func.lower(Message.recipient) == row.sender,
            col(Message.state).in_(("sent", "delivered")),
            Appointment.start_utc > ctx.now(),
            col(Appointment.status).in_(("booked", "confirmed")),
        )
        .order_by(col(Message.sent_at).desc(), col(Message.id).desc())
        .limit(1)
    ).first()
    return (hit[0], hit[1], hit[2]) if hit else None


def _patients_at(ctx: Ctx, row: InboundMessage) -> list[int]:
    """The active patients with this address."""
    from hpms.models import Patient

    cond: Any
    if row.channel == "email":
        cond = Patient.email_norm == row.sender
    else:
        digits = v.phone_digits(row.sender)
        if not digits:
            return []
        cond = sa.or_(Patient.phone_digits == digits, Patient.phone_alt_digits == digits)
    found = ctx.session.execute(
        sa.select(Patient.id).where(Patient.org_id == ctx.org_id, cond, Patient.merged_into_id.is_(None))  # type: ignore[union-attr]
    ).all()
    return [r[0] for r in found]


def _confirm(ctx: Ctx, row: InboundMessage, appt: Any) -> None:
    from hpms.services.scheduling.lifecycle import set_status

    if appt.status == "confirmed":
        row.outcome, row.note = "no_change", "the visit was confirmed already"
        return
    if appt.status != "booked":
        row.outcome, row.note = "for_staff", f"CONFIRM for a visit that is {appt.status}"
        return
    set_status(ctx, appt, "confirm")
    ctx.session.flush()
    audit.record(
        ctx,
        audit.Event(
            "update",
            "appointment",
            appt.id,
            patient_id=appt.patient_id,
            fields=["status"],
            detail=f"booked -> confirmed by the patient's {row.channel} reply",
        ),
    )
    from hpms.services.interop.hl7 import events as hl7_events

    hl7_events.transition(ctx, appt, "confirm")  # as the front desk's confirmation: S14 out
    row.outcome = "confirmed"


def _cancel(ctx: Ctx, row: InboundMessage, appt: Any) -> None:
    from hpms.services.scheduling.appointments import cancel_visits

    if appt.status == "cancelled":
        row.outcome, row.note = "no_change", "the visit was cancelled already"
        return
    if appt.status not in ("booked", "confirmed"):
        row.outcome, row.note = "for_staff", f"CANCEL for a visit that is {appt.status}"
        return
    cancel_visits(ctx, [appt], reason=f"cancelled by the patient's {row.channel} reply")
    row.outcome = "cancelled"


def _withdraw_consent(ctx: Ctx, row: InboundMessage) -> None:
    from hpms.models import Message, Patient

    patient = ctx.session.get(Patient, row.patient_id)
    assert patient is not None
    field = "consent_sms" if row.channel == "sms" else "consent_email"
    was = getattr(patient, field)
    setattr(patient, field, False)
    ctx.session.execute(
        sa.update(Message)
        .where(
            Message.org_id == ctx.org_id,
            Message.patient_id == patient.id,
            Message.channel == row.channel,
            Message.state == "queued",
        )
        .values(state="cancelled", error=f"the patient answered {keyword(row.body)}")
        .execution_options(synchronize_session=False)
    )
    if was:
        audit.record(
            ctx,
            audit.Event(
                "update",
                "patient",
                patient.id,
                patient_id=patient.id,
                fields=[field],
                detail=f"withdrawn by the patient's {row.channel} reply",
            ),
        )
    row.outcome, row.note = "unsubscribed", None if was else "consent was withdrawn already"


def _out(ctx: Ctx, row: InboundMessage, *, duplicate: bool = False) -> InboundOut:
    from hpms.models import Patient

    mrn = None
    if row.patient_id is not None:
        p = ctx.session.get(Patient, row.patient_id)
        mrn = p.mrn if p else None
    assert row.id is not None
    return InboundOut(
        row.id,
        row.channel,
        row.sender,
        row.outcome,
        row.patient_id,
        mrn,
        row.appointment_id,
        row.note,
        row.received_at,
        row.body,
        duplicate,
    )


def for_staff(ctx: Ctx, *, include_handled: bool = False, limit: int = 50) -> list[InboundOut]:
    """Replies staff must read (anything but a keyword, a keyword without a visit, unknown
    senders), oldest first. Audited as a read of the patients they concern."""
    from hpms.models import InboundMessage

    require(ctx.actor, "messages.read")
    if limit < 1 or limit > 10000:
        raise ValidationError("limit", "must be between 1 and 10000")
    stmt = sa.select(InboundMessage).where(InboundMessage.org_id == ctx.org_id)
    if not include_handled:
        stmt = stmt.where(
            col(InboundMessage.outcome).in_(("for_staff", "unknown_sender")), col(InboundMessage.handled_at).is_(None)
        )
    rows = ctx.session.execute(stmt.order_by(InboundMessage.received_at, InboundMessage.id).limit(limit)).scalars()
    out = [_out(ctx, r) for r in rows]
    ids = sorted({o.patient_id for o in out if o.patient_id is not None})
    audit.record(ctx, audit.Event("list", "inbound_message", patient_ids=ids, detail=f"{len(out)} replies"))
    return out


def mark_handled(ctx: Ctx, inbound_id: int) -> InboundOut:
    """Staff read and dealt with a reply. Raises NotFoundError."""
    from hpms.models import InboundMessage

    require(ctx.actor, "messages.write")
    row = ctx.session.get(InboundMessage, inbound_id)
    if row is None or row.org_id != ctx.org_id:
        raise NotFoundError(f"no reply {inbound_id}")
    if row.handled_at is None:
        row.handled_at, row.handled_by = ctx.now(), ctx.actor.user_id
        audit.record(
            ctx, audit.Event("update", "inbound_message", row.id, patient_id=row.patient_id, fields=["handled"])
        )
    return _out(ctx, row)
