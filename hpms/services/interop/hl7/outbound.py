"""The HL7 outbox sender: one pass over the due messages (for a scheduled job) or a loop (the
worker), under a lock of its own beside the message outbox's, so that both workers can run.

A pass turns the claims of a sender that died into `unknown` (the one it had in hand) or
queues them again (those after it), as the message outbox does, then claims due messages
(committed) and hands them over one at a time: over MLLP, waiting for the receiver's ACK, or
into the receiver's folder; each result is committed before the next goes. A patient's
messages to one receiver go in the order they were written: one waits while an earlier one
is queued, being sent or of unknown fate, and goes once that one is sent, failed or
cancelled.

ACK AA (or CA): sent. AE, AR: failed for good, with the receiver's words (staff resend it once
the cause is fixed). No ACK in time, a refused or dropped connection, an answer that is not an
ACK of this message: tried again after 1, 2, 4... minutes (at most 6 hours apart), up to
MAX_ATTEMPTS times."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.errors import ConflictError, HpmsError, NotFoundError, ValidationError
from hpms.interop.hl7v2 import build, mllp
from hpms.interop.hl7v2 import parse as hl7parse
from hpms.services.billing.lock import acquire_lock, heartbeat, release_lock, repeat_locked
from hpms.services.messages import outbox
from hpms.services.messages.sender import _contexts  # the same transactions as the message sender's
from hpms.services.platform import audit
from hpms.services.platform.context import Clock
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.config import Settings
    from hpms.models import Hl7MessageOut
    from hpms.services.platform.context import Ctx

HL7_LOCK = "hl7-outbox"
MAX_ATTEMPTS = 20  # about three days of tries at the longest delay: an interface down for a weekend
ACK_TIMEOUT_S = 30.0
CLAIM_BATCH = 50
_HOLDING = ("queued", "sending", "unknown")  # an earlier message in these states holds the later ones
# what waits for staff: refused or out of tries, or of unknown fate; `resend` queues them again
FOR_STAFF = ("failed", "unknown")


@dataclass
class Hl7SendSummary:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    found_unknown: int = 0
    due: int = 0  # due and not sent

    def add(self, other: Hl7SendSummary) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.found_unknown += other.found_unknown
        self.due = other.due

    def as_dict(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
            "found_unknown": self.found_unknown,
            "due": self.due,
        }


@dataclass(frozen=True)
class Claimed:
    id: int
    receiver_id: int
    patient_id: int | None
    event: str
    control_id: str
    body: str
    attempts: int


@dataclass(frozen=True)
class Destination:
    kind: str
    host: str | None
    port: int | None
    folder: str | None


@dataclass(frozen=True)
class Outcome:
    """How a hand-over went: `ack` the receiver's code (None: no answer, or a folder), `error`
    what went wrong, `permanent` whether trying again can help."""

    ack: str | None = None
    error: str | None = None
    permanent: bool = False


@functools.cache
def _pick() -> sa.Select[Any]:
    from hpms.models import Hl7Message, Hl7Receiver

    m, r = Hl7Message.__table__, Hl7Receiver.__table__
    earlier = m.alias("earlier")
    holds = sa.exists().where(
        earlier.c.receiver_id == m.c.receiver_id,
        earlier.c.patient_id == m.c.patient_id,
        earlier.c.id < m.c.id,
        earlier.c.state.in_(_HOLDING),
    )
    return (
        sa.select(m.c.id)
        .join(r, r.c.id == m.c.receiver_id)
        .where(
            m.c.org_id == sa.bindparam("org"),
            m.c.state == "queued",
            m.c.next_attempt_at <= sa.bindparam("now"),
            r.c.active.is_(True),
            ~holds,
        )
        .order_by(m.c.next_attempt_at, m.c.id)
        .limit(sa.bindparam("n"))
        .with_for_update(skip_locked=True, of=m)
    )


def claim(ctx: Ctx, *, limit: int = CLAIM_BATCH) -> list[Claimed]:
    """Take up to `limit` due messages (each the first not yet settled of its patient at its
    receiver), marking them `sending` for this process; the caller commits before sending."""
    from hpms.models import Hl7Message

    m = Hl7Message.__table__
    now = ctx.now()
    ids = list(ctx.session.execute(_pick(), {"org": ctx.org_id, "now": now, "n": limit}).scalars())
    if not ids:
        return []
    rows = ctx.session.execute(
        sa.update(m)
        .where(m.c.id.in_(ids), m.c.state == "queued")
        .values(state="sending", claimed_by=outbox.claimer(), claimed_at=now, attempts=m.c.attempts + 1)
        .returning(m.c.id, m.c.receiver_id, m.c.patient_id, m.c.event, m.c.control_id, m.c.body, m.c.attempts)
    ).all()
    order = {i: n for n, i in enumerate(ids)}
    return sorted((Claimed(*r) for r in rows), key=lambda c: order[c.id])


def deliver(dest: Destination, message: Claimed, *, timeout: float = ACK_TIMEOUT_S) -> Outcome:
    """Hand one message to its receiver and read the answer."""
    if dest.kind == "folder":
        return _to_folder(dest, message)
    assert dest.host is not None and dest.port is not None
    try:
        answer = asyncio.run(mllp.exchange(dest.host, dest.port, message.body, timeout=timeout))
    except mllp.NoAck as exc:
        return Outcome(error=str(exc))
    try:
        ack = hl7parse.ack(answer)
    except hl7parse.ParseError as exc:
        return Outcome(error=f"the receiver's answer is not an ACK: {exc}")
    if ack.control_id != message.control_id:
        return Outcome(error=f"the receiver acknowledged control id {ack.control_id[:20]!r}, not this message's")
    if ack.code in ("AA", "CA"):
        return Outcome(ack=ack.code)
    said = ack.text or "no reason given"
    return Outcome(ack=ack.code, error=f"the receiver answered {ack.code}: {said}"[:500], permanent=True)


def _to_folder(dest: Destination, message: Claimed) -> Outcome:
    """One file per message, named by its control id (a resend replaces it), written whole or
    not at all, 0600."""
    from hpms.fileio import PRIVATE, write_atomically

    assert dest.folder is not None
    path = Path(dest.folder) / f"hpms-{message.control_id}-{message.event}.hl7"
    try:
        write_atomically(path, message.body.encode("utf-8"), field="folder", mode=PRIVATE)
    except (HpmsError, OSError) as exc:
        text = exc.message if isinstance(exc, HpmsError) else (exc.strerror or str(exc))
        return Outcome(error=f"cannot write into {dest.folder}: {text}"[:500])
    return Outcome()


def settle(ctx: Ctx, claimed: Claimed, outcome: Outcome) -> str:
    """Record how a claimed message went (see the module docstring); returns its new state.
    Only this process's claim is settled."""
    from hpms.models import Hl7Message, Hl7Receiver

    row = ctx.session.get(Hl7Message, claimed.id, populate_existing=True)
    if row is None or row.state != "sending" or row.claimed_by != outbox.claimer():
        return row.state if row is not None else "missing"
    now = ctx.now()
    row.claimed_by = None
    if outcome.ack is not None:
        row.ack_code, row.ack_at = outcome.ack, now
        receiver = ctx.session.get(Hl7Receiver, row.receiver_id)
        if receiver is not None:
            receiver.last_ack_at, receiver.last_ack_code = now, outcome.ack
    if outcome.error is None:
        row.state, row.sent_at, row.error = "sent", now, None
        detail = f"HL7 {row.event} sent" + (f", ACK {outcome.ack}" if outcome.ack else "")
    elif outcome.permanent or row.attempts >= MAX_ATTEMPTS:
        row.state, row.error = "failed", outcome.error[:500]
        detail = f"HL7 {row.event} failed after {row.attempts} attempt(s)"
    else:
        row.state, row.error = "queued", outcome.error[:500]
        row.next_attempt_at = now + outbox.retry_delay(row.attempts)
        detail = f"HL7 {row.event} attempt {row.attempts} failed; retry at {row.next_attempt_at:%Y-%m-%d %H:%M} UTC"
    ctx.session.flush()
    audit.record(ctx, audit.Event("send", "hl7_message", row.id, patient_id=row.patient_id, detail=detail))
    return row.state


def _destinations(ctx: Ctx) -> dict[int, Destination]:
    from hpms.models import Hl7Receiver

    r = Hl7Receiver.__table__
    rows = ctx.session.execute(
        sa.select(r.c.id, r.c.kind, r.c.host, r.c.port, r.c.folder).where(r.c.org_id == ctx.org_id)
    ).all()
    return {i: Destination(k, h, p, f) for i, k, h, p, f in rows}


Context = Callable[[], AbstractContextManager["Ctx"]]


def send_due(
    settings: Settings,
    *,
    limit: int | None = None,
    timeout: float = ACK_TIMEOUT_S,
    env: dict[str, str] | None = None,
    clock: Clock | None = None,
) -> Hl7SendSummary:
    """Send what is due, at most `limit` messages. Raises ValidationError naming `limit`,
    LockHeldError (another sender runs), PermissionDenied."""
    if limit is not None and limit < 1:
        raise ValidationError("limit", f"must be at least 1 (got {limit}); leave it out to send all that is due")
    context = _contexts(settings, env, clock)
    summary = Hl7SendSummary()
    with context() as ctx:
        require(ctx.actor, "hl7.send")
        acquire_lock(ctx, HL7_LOCK)
        summary.found_unknown = outbox.sweep_dead_claims(ctx, model=_model())
    try:
        _pass(context, summary, limit=limit, timeout=timeout)
    finally:
        with context() as ctx:
            release_lock(ctx, HL7_LOCK)
    return summary


def work(
    settings: Settings,
    *,
    stop: threading.Event,
    interval_s: float = 30.0,
    timeout: float = ACK_TIMEOUT_S,
    env: dict[str, str] | None = None,
    clock: Clock | None = None,
    on_pass: Callable[[Hl7SendSummary], None] | None = None,
) -> Hl7SendSummary:
    """Send what is due every `interval_s` seconds until `stop` is set (looked at between two
    messages). Holds the HL7 outbox lock the whole time. Raises LockHeldError, PermissionDenied."""
    context = _contexts(settings, env, clock)
    return repeat_locked(
        context,
        HL7_LOCK,
        permission="hl7.send",
        stop=stop,
        interval_s=interval_s,
        new=Hl7SendSummary,
        sweep=lambda ctx: outbox.sweep_dead_claims(ctx, model=_model()),
        one_pass=lambda summary: _pass(context, summary, stop=stop, timeout=timeout),
        on_pass=on_pass,
    )


def _model() -> type[Any]:
    from hpms.models import Hl7Message

    return Hl7Message


def _pass(
    context: Context,
    summary: Hl7SendSummary,
    *,
    limit: int | None = None,
    stop: threading.Event | None = None,
    timeout: float = ACK_TIMEOUT_S,
) -> None:
    """Claim (committed), hand over and settle one at a time (each committed), until nothing
    is due or `limit` went; claims not handed over go back to the queue."""
    done = 0
    while (limit is None or done < limit) and not (stop is not None and stop.is_set()):
        pending: list[Claimed] = []
        with context() as ctx:
            if done:
                heartbeat(ctx, HL7_LOCK)
            n = CLAIM_BATCH if limit is None else min(CLAIM_BATCH, limit - done)
            pending = claim(ctx, limit=n)
            ctx.session.commit()  # the claims hold before the first goes
            if not pending:
                break
            where = _destinations(ctx)
            try:
                while pending and not (stop is not None and stop.is_set()):
                    claimed = pending.pop(0)
                    done += 1
                    state = settle(ctx, claimed, deliver(where[claimed.receiver_id], claimed, timeout=timeout))
                    ctx.session.commit()  # its result holds before the next goes
                    if state == "sent":
                        summary.sent += 1
                    elif state == "failed":
                        summary.failed += 1
                    else:
                        summary.retried += 1
            finally:
                if pending:  # stopped, or an error: what did not go waits for the next sender
                    ctx.session.rollback()
                    outbox.release(ctx, [c.id for c in pending], model=_model())
                    ctx.session.commit()
    with context() as ctx:
        summary.due = _due(ctx)


def _due(ctx: Ctx) -> int:
    from hpms.models import Hl7Message

    return int(
        ctx.session.execute(
            sa.select(sa.func.count()).where(
                Hl7Message.org_id == ctx.org_id, Hl7Message.state == "queued", Hl7Message.next_attempt_at <= ctx.now()
            )
        ).scalar_one()
    )


# ---- staff -------------------------------------------------------------------------------


def list_messages(
    ctx: Ctx, *, state: str | None = None, receiver: str | None = None, limit: int = 50
) -> list[Hl7MessageOut]:
    """The HL7 outbox, newest first; `state` filters (comma-separated). Audited as a read of
    the patients they concern. Raises ValidationError naming `state` or `limit`, NotFoundError
    naming the receiver."""
    from hpms.models import Hl7Message, Hl7MessageOut, Hl7Receiver, Patient
    from hpms.models.hl7 import HL7_STATES
    from hpms.services.interop.hl7.receivers import find

    require(ctx.actor, "interfaces.read")
    if limit < 1 or limit > 100000:
        raise ValidationError("limit", "must be between 1 and 100000")
    stmt = (
        sa.select(Hl7Message, Hl7Receiver.name, Hl7Receiver.active, Patient.mrn)
        .join(Hl7Receiver, col(Hl7Receiver.id) == Hl7Message.receiver_id)
        .outerjoin(Patient, col(Patient.id) == Hl7Message.patient_id)
        .where(Hl7Message.org_id == ctx.org_id)
    )
    if state is not None:
        wanted = [s.strip().lower() for s in state.split(",") if s.strip()]
        for s in wanted:
            if s not in HL7_STATES:
                raise ValidationError("state", f"{s!r} is not a state (one of: {', '.join(HL7_STATES)})")
        stmt = stmt.where(col(Hl7Message.state).in_(wanted))
    if receiver is not None:
        stmt = stmt.where(Hl7Message.receiver_id == find(ctx, receiver))
    rows = ctx.session.execute(stmt.order_by(col(Hl7Message.id).desc()).limit(limit)).all()
    out = [
        Hl7MessageOut.model_validate(m).model_copy(
            update={
                "receiver": name,
                "receiver_active": active,
                "mrn": mrn,
                "message_type": build.message_type(m.event),
            }
        )
        for m, name, active, mrn in rows
    ]
    ids = sorted({m.patient_id for m, *_ in rows if m.patient_id is not None})
    audit.record(ctx, audit.Event("list", "hl7_message", patient_ids=ids, detail=f"{len(out)} message(s)"))
    return out


def for_staff(ctx: Ctx, *, limit: int = 50) -> list[Hl7MessageOut]:
    """The messages that wait for staff (FOR_STAFF: failed, or of unknown fate), newest first,
    also those of a receiver since removed (`receiver_active` False). Audited as `list_messages`.
    Raises ValidationError naming `limit`."""
    return list_messages(ctx, state=",".join(FOR_STAFF), limit=limit)


def resend(ctx: Ctx, message_id: int) -> Hl7MessageOut:
    """Queue again a message that failed, or whose fate is unknown, with the same control id
    (a receiver that keeps the control ids it has seen takes it once). Raises NotFoundError,
    ConflictError (another state, or its receiver was removed)."""
    from hpms.models import Hl7Message, Hl7MessageOut, Hl7Receiver

    require(ctx.actor, "hl7.admin")
    row = ctx.session.get(Hl7Message, message_id)
    if row is None or row.org_id != ctx.org_id:
        raise NotFoundError(f"no HL7 message {message_id}")
    if row.state not in FOR_STAFF:
        raise ConflictError(f"HL7 message {message_id} is {row.state}: only a failed or unknown one is sent again")
    to = ctx.session.get(Hl7Receiver, row.receiver_id)
    assert to is not None  # a foreign key of the message
    if not to.active:
        # queued for a receiver that is gone it would wait for ever
        raise ConflictError(
            f"HL7 message {message_id} is for the receiver {to.name!r}, which was removed",
            hint="add the receiver again to send to it",
        )
    row.state, row.attempts, row.next_attempt_at, row.error = "queued", 0, ctx.now(), None
    ctx.session.flush()
    audit.record(ctx, audit.Event("requeue", "hl7_message", row.id, patient_id=row.patient_id))
    return Hl7MessageOut.model_validate(row).model_copy(
        update={"receiver": to.name, "receiver_active": True, "message_type": build.message_type(row.event)}
    )


def status(ctx: Ctx) -> list[dict[str, object]]:
    """Per receiver: its messages queued (with those being sent), failed (with those of unknown
    fate) and sent, and its last ACK."""
    from hpms.models import Hl7Message, Hl7Receiver

    require(ctx.actor, "interfaces.read")
    counts: dict[tuple[int, str], int] = {
        (rid, st): int(n)
        for rid, st, n in ctx.session.execute(
            sa.select(Hl7Message.receiver_id, Hl7Message.state, sa.func.count())
            .where(Hl7Message.org_id == ctx.org_id)
            .group_by(Hl7Message.receiver_id, Hl7Message.state)
        )
    }
    rows = ctx.session.execute(
        sa.select(Hl7Receiver)
        .where(Hl7Receiver.org_id == ctx.org_id, col(Hl7Receiver.active).is_(True))
        .order_by(Hl7Receiver.name)
    ).scalars()
    out: list[dict[str, object]] = []
    for r in rows:
        assert r.id is not None

        def n(*states: str, rid: int = r.id) -> int:
            return sum(counts.get((rid, s), 0) for s in states)

        out.append(
            {
                "receiver": r.name,
                "kind": r.kind,
                "to": f"{r.host}:{r.port}" if r.kind == "mllp" else r.folder,
                "events": r.events,
                "queued": n("queued", "sending"),
                "failed": n(*FOR_STAFF),
                "sent": n("sent"),
                "last_ack_at": r.last_ack_at,
                "last_ack_code": r.last_ack_code,
            }
        )
    return out
