"""A patient's communication log: every message to them (reminders, codes, statements by
email) with its state, every message from them (SMS and email replies, with what was made of
each), and what staff record of their contacts (calls, letters, notes), newest first. Reading
it is audited as a read of that patient's record."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col

from hpms.errors import ValidationError
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

KINDS = ("call", "letter", "note", "visit")
DIRECTIONS = ("in", "out", "none")


@dataclass(frozen=True)
class LogEntry:
    at: dt.datetime
    source: str  # message (sent by hpms), reply (from the patient) or staff (recorded by a person)
    id: int
    kind: str  # email, sms, call, letter, note, visit
    direction: str  # out, in, none
    state: str | None  # a message's state, a reply's outcome (confirmed, for_staff...); None for a staff entry
    summary: str  # the subject or the start of the text
    by: str | None  # the user who recorded or queued it

    def as_dict(self) -> dict[str, object]:
        return {
            "at": self.at,
            "source": self.source,
            "id": self.id,
            "kind": self.kind,
            "direction": self.direction,
            "state": self.state,
            "summary": self.summary,
            "by": self.by,
        }


def add(
    ctx: Ctx, patient: str, *, kind: str, text: str, direction: str = "none", at: str | dt.datetime | None = None
) -> LogEntry:
    """Record a contact with a patient. Raises ValidationError naming the field, NotFoundError."""
    from hpms.models import CommEntry
    from hpms.services.lookups import find_patient

    require(ctx.actor, "messages.write")
    pat = find_patient(ctx, patient, field="patient")
    kind = v.parse_choice("kind", kind, KINDS) or ""
    if not kind:
        raise ValidationError("kind", f"is required (one of: {', '.join(KINDS)})")
    direction = v.parse_choice("direction", direction, DIRECTIONS) or "none"
    text = v.require_text("text", text, 2000)
    when = ctx.now() if at is None or not str(at).strip() else _when(ctx, at)
    if when > ctx.now() + dt.timedelta(minutes=5):
        raise ValidationError("at", "is in the future")
    entry = CommEntry(org_id=ctx.org_id, patient_id=pat.id, kind=kind, direction=direction, text=text, at=when)
    entry.user_id = ctx.actor.user_id
    ctx.session.add(entry)
    ctx.session.flush()
    assert entry.id is not None
    audit.record(ctx, audit.Event("create", "comm_entry", entry.id, patient_id=pat.id, fields=["kind", "text"]))
    return LogEntry(when, "staff", entry.id, kind, direction, None, _summary(text), ctx.actor.username)


def _when(ctx: Ctx, at: str | dt.datetime) -> dt.datetime:
    from hpms.services.lookups import display_zone
    from hpms.services.platform import localtime as lt

    if isinstance(at, dt.datetime):
        return at.astimezone(dt.UTC)
    return lt.parse_local("at", at, display_zone(ctx), now=ctx.now())


def _summary(text: str, most: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= most else line[: most - 1] + "…"


def log(ctx: Ctx, patient: str, *, limit: int = 50) -> list[LogEntry]:
    """The patient's messages, replies and staff entries, newest first (at most `limit`).
    Raises NotFoundError, ValidationError (limit)."""
    from hpms.models import CommEntry, InboundMessage, Message, User
    from hpms.services.lookups import find_patient

    require(ctx.actor, "messages.read")
    if limit < 1 or limit > 10000:
        raise ValidationError("limit", "must be between 1 and 10000")
    pat = find_patient(ctx, patient, field="patient", include_merged=True)
    messages = ctx.session.execute(
        sa.select(
            Message.id,
            Message.created_at,
            Message.sent_at,
            Message.channel,
            Message.state,
            Message.subject,
            Message.body,
            Message.error,
            User.username,
        )
        .outerjoin(User, col(User.id) == Message.created_by)
        .where(Message.org_id == ctx.org_id, Message.patient_id == pat.id)
        .order_by(col(Message.id).desc())
        .limit(limit)
    ).all()
    staff = ctx.session.execute(
        sa.select(CommEntry, User.username)
        .outerjoin(User, col(User.id) == CommEntry.user_id)
        .where(CommEntry.org_id == ctx.org_id, CommEntry.patient_id == pat.id)
        .order_by(col(CommEntry.at).desc())
        .limit(limit)
    ).all()
    replies = ctx.session.execute(
        sa.select(
            InboundMessage.id,
            InboundMessage.received_at,
            InboundMessage.channel,
            InboundMessage.outcome,
            InboundMessage.subject,
            InboundMessage.body,
        )
        .where(InboundMessage.org_id == ctx.org_id, InboundMessage.patient_id == pat.id)
        .order_by(col(InboundMessage.received_at).desc(), col(InboundMessage.id).desc())
        .limit(limit)
    ).all()
    out = [
        LogEntry(
            sent or created,
            "message",
            mid,
            channel,
            "out",
            state,
            _summary(subject or body or (error or "")),
            by,
        )
        for mid, created, sent, channel, state, subject, body, error, by in messages
    ]
    out += [
        LogEntry(at, "reply", rid, channel, "in", outcome, _summary(body or subject or ""), None)
        for rid, at, channel, outcome, subject, body in replies
    ]
    out += [
        LogEntry(e.at, "staff", e.id, e.kind, e.direction, None, _summary(e.text), by)
        for e, by in staff
        if e.id is not None
    ]
    out.sort(key=lambda e: (e.at, e.id), reverse=True)
    out = out[:limit]
    audit.record(ctx, audit.Event("read", "comm_log", patient_id=pat.id, detail=f"{len(out)} entries"))
    return out
