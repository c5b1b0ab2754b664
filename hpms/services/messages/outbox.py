"""The outbox: messages are queued in the caller's transaction (with the event that causes
them), claimed by a sender that commits the claim before it hands a message over, and settled
after: sent, retried later with a growing delay, or failed for good.

A sender claims a few due messages at once and hands them over one at a time in the order it
claimed them (oldest due first), committing each result before the next goes. A sender that
dies leaves its claims `sending`; the next sender, finding the claimer gone, takes the first of
them in that order as the one in hand: it cannot know whether the provider got it, so the row
becomes `unknown` for staff to look at and is never sent again on its own. The claims after it
had not gone and are queued again: nothing goes twice, nothing is lost unseen."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import os
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.db import Prepared
from hpms.errors import NotFoundError, ValidationError
from hpms.fileio import pid_alive
from hpms.services.platform import audit
from hpms.services.platform import validation as v
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.models import Message, MessageOut
    from hpms.services.messages.transport import Attachment
    from hpms.services.platform.context import Ctx

MAX_ATTEMPTS = 6
FIRST_RETRY = dt.timedelta(minutes=1)
LONGEST_RETRY = dt.timedelta(hours=6)
# A claim this old whose claimer cannot be asked (another host) is taken as dead.
STALE_CLAIM = dt.timedelta(minutes=15)
OUTBOX_LOCK = "outbox"
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024  # all the files of one email together
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


def retry_delay(attempts: int) -> dt.timedelta:
    """The wait before attempt `attempts + 1`: 1, 2, 4, 8... minutes, at most 6 hours."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LONGEST_RETRY)


def claimer() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def enqueue(
    ctx: Ctx,
    *,
    channel: str,
    recipient: str,
    body: str,
    template: str,
    subject: str | None = None,
    patient_id: int | None = None,
    due_at: dt.datetime | None = None,
    dedupe_key: str | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> Message:
    """Queue one message in the caller's transaction (it goes only if that commits), with its
    files (email only: (filename, content type, bytes), kept encrypted until sent). With a
    `dedupe_key`, a second call for the same event returns the first message. Raises
    ValidationError naming the field."""
    from hpms.models import Message, MessageAttachment
    from hpms.models.messages import ATTACHMENT_KIND

    if channel not in ("email", "sms"):
        raise ValidationError("channel", f"{channel!r} is not a channel (email or sms)")
    recipient = (
        v.parse_email("recipient", recipient) if channel == "email" else v.parse_e164("recipient", recipient)
    ) or ""
    if not recipient:
        raise ValidationError("recipient", "is required")
    if not body.strip():
        raise ValidationError("body", "is empty")
    files = _check_attachments(channel, attachments)
    if dedupe_key is not None:
        found = ctx.session.execute(
            sa.select(Message).where(Message.org_id == ctx.org_id, Message.dedupe_key == dedupe_key)
        ).scalar_one_or_none()
        if found is not None:
            return found
    when = due_at or ctx.now()
    msg = Message(
        org_id=ctx.org_id,
        patient_id=patient_id,
        channel=channel,
        template=template,
        recipient=recipient,
        subject=subject,
        body=body,
        due_at=when,
        next_attempt_at=when,
        dedupe_key=dedupe_key,
        created_at=ctx.now(),
        created_by=ctx.actor.user_id,
    )
    ctx.session.add(msg)
    ctx.session.flush()
    assert msg.id is not None
    for filename, content_type, data in files:
        ctx.session.add(
            MessageAttachment(
                message_id=msg.id,
                filename=filename,
                content_type=content_type,
                size=len(data),
                data_enc=ctx.crypto.encrypt(base64.b64encode(data).decode("ascii"), ATTACHMENT_KIND),
            )
        )
    if files:
        ctx.session.flush()
    detail = f"{channel} {template}" + (f" with {len(files)} attachment(s)" if files else "")
    audit.record(ctx, audit.Event("queue", "message", msg.id, patient_id=patient_id, detail=detail))
    return msg


def _check_attachments(channel: str, attachments: Sequence[tuple[str, str, bytes]]) -> list[tuple[str, str, bytes]]:
    """The files of a message, checked: a name without folders, a content type such as
    application/pdf, bytes, all of them together at most MAX_ATTACHMENT_BYTES."""
    files = list(attachments or ())
    if not files:
        return []
    if channel != "email":
        raise ValidationError("attachments", f"only an email carries files, not {channel}")
    total = 0
    out = []
    for filename, content_type, data in files:
        name = (filename or "").strip()
        if not name or "/" in name or "\\" in name or len(name) > 200 or any(ord(c) < 32 for c in name):
            raise ValidationError("attachments", f"{filename!r} is not a file name (no folders, at most 200 chars)")
        kind = (content_type or "").strip().lower()
        if len(kind) > 100 or not _CONTENT_TYPE.match(kind):
            raise ValidationError("attachments", f"{content_type!r} is not a content type such as application/pdf")
        if not isinstance(data, bytes | bytearray):
            raise ValidationError("attachments", f"the content of {name} is not bytes")
        total += len(data)
        out.append((name, kind, bytes(data)))
    if total > MAX_ATTACHMENT_BYTES:
        raise ValidationError(
            "attachments",
            f"come to {total} bytes: an email takes at most {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB of files",
        )
    return out


def attachments_of(ctx: Ctx, message_id: int) -> tuple[Attachment, ...]:
    """The files of a message, decrypted, in the order they were queued. Raises
    EncryptionKeyError when the key they were encrypted with is not held."""
    from hpms.models import MessageAttachment
    from hpms.models.messages import ATTACHMENT_KIND
    from hpms.services.messages.transport import Attachment

    rows = (
        ctx.session.execute(
            sa.select(MessageAttachment)
            .where(MessageAttachment.message_id == message_id)
            .order_by(col(MessageAttachment.id))
        )
        .scalars()
        .all()
    )
    return tuple(
        Attachment(r.filename, r.content_type, base64.b64decode(ctx.crypto.decrypt(r.data_enc, ATTACHMENT_KIND)))
        for r in rows
    )


def sweep_dead_claims(ctx: Ctx, *, model: type[Any] | None = None) -> int:
    """The claims of a sender that is gone: the first in the order it hands them over (the one
    it may have had in hand) becomes `unknown`, the others are queued again as they were.
    Returns how many became unknown. `model`: another outbox table with the same claim columns
    (the HL7 outbox); the message outbox by default."""
    from hpms.models import Message as Default

    Message = model or Default
    host = socket.gethostname()
    rows = ctx.session.execute(
        sa.select(Message.id, Message.claimed_by, Message.claimed_at)
        .where(Message.org_id == ctx.org_id, Message.state == "sending")
        .order_by(Message.next_attempt_at, Message.id)
    ).all()
    first: dict[str, int] = {}
    later: list[int] = []
    for mid, by, at in rows:
        h, _, pid = (by or ":").rpartition(":")
        gone = (h == host and pid.isdigit() and not pid_alive(int(pid))) or (
            at is not None and ctx.now() - at > STALE_CLAIM and h != host
        )
        if gone:
            if (by or "") in first:
                later.append(mid)
            else:
                first[by or ""] = mid
    if first:
        ctx.session.execute(
            sa.update(Message)
            .where(col(Message.id).in_(list(first.values())), Message.state == "sending")
            .values(
                state="unknown",
                error="the sender stopped after handing it over and before recording it: it may or may not have gone",
            )
            .execution_options(synchronize_session=False)
        )
    if later:
        ctx.session.execute(
            sa.update(Message)
            .where(col(Message.id).in_(later), Message.state == "sending")
            .values(state="queued", claimed_by=None, claimed_at=None, attempts=Message.attempts - 1)
            .execution_options(synchronize_session=False)
        )
    return len(first)


@dataclass(frozen=True)
class Claimed:
    """A message handed to a sender: what to send and where."""

    id: int
    channel: str
    recipient: str
    subject: str | None
    body: str
    attempts: int
    files: int = 0  # attachments to load (`attachments_of`) before it is handed over


@functools.cache
def _statements() -> tuple[sa.Executable, sa.Executable, Prepared]:
    """The claim, the count of the claimed emails' files and the settling of a sent message
    (run on the driver cursor, see settle_sent), built once: the sender runs them for every
    message, and building a statement costs more than running it."""
    from hpms.models import Message, MessageAttachment

    m, a = Message.__table__, MessageAttachment.__table__
    # Picked once, in a CTE that is materialized: PostgreSQL may rescan an `IN (subquery ...
    # LIMIT n)` for every row it updates (and claim them all); a materialized CTE runs once.
    pick = (
        sa.select(m.c.id)
        .where(
            m.c.org_id == sa.bindparam("org"),
            m.c.state == "queued",
            m.c.next_attempt_at <= sa.bindparam("now"),
            m.c.channel.in_(sa.bindparam("channels", expanding=True)),
        )
        .order_by(m.c.next_attempt_at, m.c.id)
        .limit(sa.bindparam("n"))
        .with_for_update(skip_locked=True)  # PostgreSQL: skip a row another sender holds; SQLite: none
        .cte("pick")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    claim = (
        sa.update(m)
        .where(m.c.id.in_(sa.select(pick.c.id)), m.c.state == "queued")
        .values(
            state="sending", claimed_by=sa.bindparam("me"), claimed_at=sa.bindparam("now"), attempts=m.c.attempts + 1
        )
        .returning(m.c.id, m.c.channel, m.c.recipient, m.c.subject, m.c.body, m.c.attempts, m.c.next_attempt_at)
    )
    # the files of the claimed emails, counted in one query for the whole claim
    files = (
        sa.select(a.c.message_id, sa.func.count())
        .where(a.c.message_id.in_(sa.bindparam("ids", expanding=True)))
        .group_by(a.c.message_id)
    )
    sent = (
        sa.update(m)
        .where(m.c.id == sa.bindparam("mid"), m.c.state == "sending", m.c.claimed_by == sa.bindparam("me"))
        .values(state="sent", sent_at=sa.bindparam("now"), provider_id=sa.bindparam("pid"), error=None, claimed_by=None)
        .returning(m.c.patient_id, m.c.channel)
    )
    return claim, files, Prepared(sent)


def claim(ctx: Ctx, *, channels: tuple[str, ...] = ("email", "sms"), limit: int = 1) -> list[Claimed]:
    """Take up to `limit` due messages for this process, marking them `sending`, in the order
    they are to be handed over (oldest due first); the caller commits before sending, hands
    them over in this order and settles each before the next goes (see the module
    docstring). One statement picks the rows and returns what to send (on PostgreSQL rows
    another sender holds are skipped; SQLite writers hold the database's write lock), one more
    counts the files of the emails among them."""
    if not channels or limit < 1:
        return []
    statement, count_files, _ = _statements()
    ctx.session.flush()  # the statements run on the connection, beside the session's objects
    conn = ctx.session.connection()
    params = {"org": ctx.org_id, "now": ctx.now(), "channels": list(channels), "me": claimer(), "n": limit}
    rows = sorted(conn.execute(statement, params).all(), key=lambda r: (r[6], r[0]))
    emails = [r[0] for r in rows if r[1] == "email"]
    files = {int(k): int(n) for k, n in conn.execute(count_files, {"ids": emails})} if emails else {}
    return [Claimed(r[0], r[1], r[2], r[3], r[4], r[5], int(files.get(r[0], 0))) for r in rows]


def claim_next(ctx: Ctx, *, channels: tuple[str, ...] = ("email", "sms")) -> Claimed | None:
    """Take the next due message (`claim` of one); None when nothing is due."""
    taken = claim(ctx, channels=channels, limit=1)
    return taken[0] if taken else None


def settle(
    ctx: Ctx,
    message_id: int,
    *,
    provider_id: str | None = None,
    error: str | None = None,
    permanent: bool = False,
) -> str:
    """Record how a claimed message went: sent (no error), or failed: retried later unless
    `permanent` or out of attempts. Returns the new state. Only this process's claim is
    settled; a message no longer `sending` for it keeps its state."""
    from hpms.models import Message

    if error is None and settle_sent(ctx, message_id, provider_id=provider_id):
        return "sent"
    # the statements above ran beside the session's objects: read the row as it is now
    msg = ctx.session.get(Message, message_id, populate_existing=True)
    if error is None or msg is None or msg.state != "sending" or msg.claimed_by != claimer():
        return msg.state if msg is not None else "missing"
    msg.claimed_by = None
    if permanent or msg.attempts >= MAX_ATTEMPTS:
        msg.state, msg.error = "failed", error[:500]
        detail = f"failed for good after {msg.attempts} attempt(s)"
    else:
        msg.state, msg.error = "queued", error[:500]
        msg.next_attempt_at = ctx.now() + retry_delay(msg.attempts)
        detail = f"attempt {msg.attempts} failed; retry at {msg.next_attempt_at:%Y-%m-%d %H:%M} UTC"
    ctx.session.flush()
    audit.record(ctx, audit.Event("send", "message", msg.id, patient_id=msg.patient_id, detail=detail))
    return msg.state


def settle_sent(ctx: Ctx, message_id: int, *, provider_id: str | None) -> bool:
    """Record that a claimed message went (`sent`, with the provider's id of it) and its audit
    event, in the caller's transaction; False, and nothing written, when it is no longer
    `sending` for this process. Runs on the driver cursor, so it may run in
    hpms.db.commit_pipelined: the update and the audit trail's head lock then go to the server
    together and the event and the commit after them, two round trips in all."""
    _, _, sent = _statements()
    params = {"mid": message_id, "me": claimer(), "now": ctx.now(), "pid": provider_id}
    rows = sent.start(ctx.session.connection(), params)

    def event() -> list[audit.Event]:
        done = rows()  # one row when the claim was still ours
        return [
            audit.Event("send", "message", message_id, patient_id=r.patient_id, detail=f"sent by {r.channel}")
            for r in done
        ]

    return audit.record_after(ctx, event) > 0


def release(ctx: Ctx, message_ids: int | Sequence[int], *, model: type[Any] | None = None) -> None:
    """Put claimed messages back in the queue untouched (a dry run, a stop before they went);
    `model` as in `sweep_dead_claims`."""
    from hpms.models import Message as Default

    Message = model or Default
    ids = [message_ids] if isinstance(message_ids, int) else list(message_ids)
    if not ids:
        return
    ctx.session.execute(
        sa.update(Message)
        .where(col(Message.id).in_(ids), Message.state == "sending", Message.claimed_by == claimer())
        .values(state="queued", claimed_by=None, claimed_at=None, attempts=Message.attempts - 1)
        .execution_options(synchronize_session=False)
    )


def list_messages(
    ctx: Ctx, *, state: str | None = None, patient: str | None = None, limit: int = 50
) -> list[MessageOut]:
    """Messages, newest first; `state` filters (queued, sending, sent, failed, cancelled,
    unknown). Audited as a read of the patients they concern."""
    from hpms.models import Message, MessageOut, Patient
    from hpms.models.messages import STATES
    from hpms.services.lookups import find_patient

    require(ctx.actor, "messages.read")
    if limit < 1 or limit > 100000:
        raise ValidationError("limit", "must be between 1 and 100000")
    stmt = sa.select(Message, Patient.mrn).outerjoin(Patient, col(Patient.id) == Message.patient_id)
    stmt = stmt.where(Message.org_id == ctx.org_id)
    if state is not None:
        wanted = [s.strip().lower() for s in state.split(",") if s.strip()]
        for s in wanted:
            if s not in STATES:
                raise ValidationError("state", f"{s!r} is not a message state (one of: {', '.join(STATES)})")
        stmt = stmt.where(col(Message.state).in_(wanted))
    if patient:
        stmt = stmt.where(Message.patient_id == find_patient(ctx, patient, field="patient").id)
    rows = ctx.session.execute(stmt.order_by(col(Message.id).desc()).limit(limit)).all()
    out = [MessageOut.model_validate(m).model_copy(update={"mrn": mrn}) for m, mrn in rows]
    ids = sorted({m.patient_id for m in out if m.patient_id is not None})
    audit.record(ctx, audit.Event("list", "message", patient_ids=ids, detail=f"{len(out)} message(s)"))
    return out


def cancel(ctx: Ctx, message_id: int) -> MessageOut:
    """Withdraw a queued message (or one whose fate is unknown). Raises NotFoundError,
    ConflictError when it is being sent or already settled."""
    from hpms.errors import ConflictError
    from hpms.models import Message, MessageOut

    require(ctx.actor, "messages.write")
    msg = ctx.session.get(Message, message_id)
    if msg is None or msg.org_id != ctx.org_id:
        raise NotFoundError(f"no message {message_id}")
    if msg.state not in ("queued", "unknown"):
        raise ConflictError(f"message {message_id} is {msg.state}: only a queued message can be cancelled")
    msg.state = "cancelled"
    audit.record(ctx, audit.Event("cancel", "message", msg.id, patient_id=msg.patient_id))
    return MessageOut.model_validate(msg)


def requeue(ctx: Ctx, message_id: int) -> MessageOut:
    """Send again a message that failed or whose fate is unknown (staff checked it did not
    arrive). Raises NotFoundError, ConflictError."""
    from hpms.errors import ConflictError
    from hpms.models import Message, MessageOut

    require(ctx.actor, "messages.write")
    msg = ctx.session.get(Message, message_id)
    if msg is None or msg.org_id != ctx.org_id:
        raise NotFoundError(f"no message {message_id}")
    if msg.state not in ("failed", "unknown"):
        raise ConflictError(f"message {message_id} is {msg.state}: only a failed or unknown message is sent again")
    msg.state, msg.attempts, msg.next_attempt_at, msg.error = "queued", 0, ctx.now(), None
    audit.record(ctx, audit.Event("requeue", "message", msg.id, patient_id=msg.patient_id))
    return MessageOut.model_validate(msg)
