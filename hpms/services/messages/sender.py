"""The sender: one pass over the due messages of the outbox, for a scheduled job
and for the worker, which repeats it. It takes the outbox lock, turns the claims of a sender
that died into `unknown` (and queues again those it had not handed over), then claims a few
due messages at a time (committed) and sends them one at a time: hand over, settle (committed
before the next message goes). The claims and settlements of a pass run on one connection,
and a message that went is settled in two round trips with its audit event and the commit
(PostgreSQL pipeline mode)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hpms.errors import HpmsError, ValidationError
from hpms.services.billing.lock import acquire_lock, heartbeat, release_lock, repeat_locked
from hpms.services.messages import outbox
from hpms.services.messages.transport import Attachment, SendError, Transport
from hpms.services.platform.context import Clock, open_context, system_clock
from hpms.services.platform.permissions import require

if TYPE_CHECKING:
    from hpms.config import Settings
    from hpms.services.platform.context import Ctx

HEARTBEAT_EVERY = 50  # messages between two renewals of the lock


@dataclass
class SendSummary:
    dry_run: bool = False
    sent: int = 0
    retried: int = 0  # failed this time, queued again for later
    failed: int = 0  # failed for good
    found_unknown: int = 0  # claims of a sender that died, now `unknown`
    due: dict[str, int] = field(default_factory=dict)  # due and not sent, by channel
    not_set_up: dict[str, str] = field(default_factory=dict)  # channel -> why it cannot send

    def add(self, other: SendSummary) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.found_unknown += other.found_unknown
        self.due = dict(other.due)
        self.not_set_up = dict(other.not_set_up)

    def as_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
            "found_unknown": self.found_unknown,
            "due": dict(self.due),
            "not_set_up": dict(self.not_set_up),
        }


TransportFactory = Callable[["Ctx", str], Transport]


def default_transport(ctx: Ctx, channel: str) -> Transport:
    """The provider of `channel` from the settings and the practice's messaging profile.
    Raises ValidationError saying what is missing."""
    from hpms.errors import ValidationError
    from hpms.models import MessagingProfile
    from hpms.services.messages.email import SmtpTransport, parse_smtp_url
    from hpms.services.messages.sms import TwilioTransport, parse_sms_url, status_callback_url

    profile = ctx.session.get(MessagingProfile, ctx.org_id)
    if channel == "sms":
        provider = parse_sms_url(ctx.settings.sms_url)
        if profile is None or not profile.sms_from:
            raise ValidationError("sms_from", "the practice has no number to send its SMS from")
        callback = status_callback_url(ctx.settings.public_url)
        return TwilioTransport(provider, sender=profile.sms_from, status_callback=callback)
    server = parse_smtp_url(ctx.settings.smtp_url)
    if profile is None or not profile.email_from:
        raise ValidationError("email_from", "the practice has no From address for its emails")
    return SmtpTransport(server, sender=profile.email_from, reply_to=profile.reply_to)


def send_due(
    settings: Settings,
    *,
    limit: int | None = None,
    dry_run: bool = False,
    transports: TransportFactory = default_transport,
    env: dict[str, str] | None = None,
    clock: Clock | None = None,
) -> SendSummary:
    """Send what is due, at most `limit` messages. Raises LockHeldError (another sender runs),
    PermissionDenied. A channel that is not set up leaves its messages queued, said in
    `not_set_up`."""
    if limit is not None and limit < 1:
        raise ValidationError("limit", f"must be at least 1 (got {limit}); leave it out to send all that is due")
    context = _contexts(settings, env, clock)
    summary = SendSummary(dry_run=dry_run)
    with context() as ctx:
        require(ctx.actor, "messages.send")
        if dry_run:
            summary.due = _due(ctx)
            return summary
        acquire_lock(ctx, outbox.OUTBOX_LOCK)
        summary.found_unknown = outbox.sweep_dead_claims(ctx)
    try:
        _send(settings, context, transports, summary, limit=limit)
    finally:
        with context() as ctx:
            release_lock(ctx, outbox.OUTBOX_LOCK)
    return summary


def work(
    settings: Settings,
    *,
    stop: threading.Event,
    interval_s: float = 30.0,
    transports: TransportFactory = default_transport,
    env: dict[str, str] | None = None,
    clock: Clock | None = None,
    on_pass: Callable[[SendSummary], None] | None = None,
) -> SendSummary:
    """Send what is due, again every `interval_s` seconds, until `stop` is set (it is looked at
    between two messages, so a message in hand is always settled first). Holds the outbox lock
    the whole time: one worker per database. Returns the totals. Raises LockHeldError,
    PermissionDenied."""
    context = _contexts(settings, env, clock)
    return repeat_locked(
        context,
        outbox.OUTBOX_LOCK,
        permission="messages.send",
        stop=stop,
        interval_s=interval_s,
        new=SendSummary,
        sweep=outbox.sweep_dead_claims,
        one_pass=lambda summary: _send(settings, context, transports, summary, stop=stop),
        on_pass=on_pass,
    )


Contexts = Callable[..., AbstractContextManager["Ctx"]]  # (connection=None): one transaction


def _contexts(settings: Settings, env: dict[str, str] | None, clock: Clock | None) -> Contexts:
    run_clock = clock or system_clock

    def context(connection: sa.Connection | None = None) -> AbstractContextManager[Ctx]:
        return open_context(settings, env=env, clock=run_clock, connection=connection)

    return context


def _send(
    settings: Settings,
    context: Contexts,
    transports: TransportFactory,
    summary: SendSummary,
    *,
    limit: int | None = None,
    stop: threading.Event | None = None,
) -> None:
    """One pass: claim up to HEARTBEAT_EVERY due messages in one statement (committed), then
    hand them over and settle them one at a time, in the order claimed, each result committed
    before the next message goes; again until none is due. A context (an authenticated
    session) serves one claim; the lock is renewed before the next. The claims and their
    settlements run on one connection held for the pass (one taken from the pool for each
    transaction would cost a round trip more, its ping). Claims not handed over (a stop, an
    error) are queued again, on a connection of their own."""
    from hpms.db import get_engine

    with _providers(context, transports, summary) as ready, get_engine(settings).connect() as held:
        done = 0
        while ready and (limit is None or done < limit) and not (stop is not None and stop.is_set()):
            pending: deque[outbox.Claimed] = deque()
            try:
                with context(held) as ctx:
                    if done:
                        heartbeat(ctx, outbox.OUTBOX_LOCK)
                    n = HEARTBEAT_EVERY if limit is None else min(HEARTBEAT_EVERY, limit - done)
                    pending.extend(outbox.claim(ctx, channels=tuple(ready), limit=n))
                    ctx.session.commit()  # the claims hold before the first goes
                    if not pending:
                        break
                    while pending and not (stop is not None and stop.is_set()):
                        claimed = pending.popleft()
                        done += 1
                        _hand_over(ctx, ready, claimed, summary)  # its result holds before the next goes
                    if pending:  # stopped: what was not handed over waits for the next sender
                        outbox.release(ctx, [c.id for c in pending])
                        pending.clear()
            finally:
                if pending:  # an error: give back what did not go (the one in hand stays `sending`)
                    _release_after_error(context, [c.id for c in pending])
    with context() as ctx:
        summary.due = _due(ctx)


def _release_after_error(context: Contexts, ids: list[int]) -> None:
    """Queue again claims that were not handed over, in a transaction of their own; should that
    fail too, the next sender queues them again once this process is gone."""
    try:
        with context() as ctx:
            outbox.release(ctx, ids)
    except (HpmsError, sa.exc.SQLAlchemyError):
        pass


def _hand_over(ctx: Ctx, ready: dict[str, Transport], claimed: outbox.Claimed, summary: SendSummary) -> None:
    """Send one claimed message and record how it went, committed before it returns."""
    from hpms.db import commit_pipelined

    error, permanent, provider_id = None, False, None
    try:
        files: tuple[Attachment, ...] = outbox.attachments_of(ctx, claimed.id) if claimed.files else ()
        provider_id = ready[claimed.channel].send(
            message_id=claimed.id,
            recipient=claimed.recipient,
            subject=claimed.subject,
            body=claimed.body,
            attachments=files,
        )
    except SendError as exc:
        error, permanent = exc.message, exc.permanent
    except HpmsError as exc:  # its files cannot be read (a key not held): kept for a later try
        error = f"its attachments cannot be read: {exc.message}"
    if error is None:
        with commit_pipelined(ctx.session):
            went = outbox.settle_sent(ctx, claimed.id, provider_id=provider_id)
        if went:
            summary.sent += 1
            return
    state = outbox.settle(ctx, claimed.id, provider_id=provider_id, error=error, permanent=permanent)
    ctx.session.commit()
    if state == "sent":
        summary.sent += 1
    elif state == "failed":
        summary.failed += 1
    else:
        summary.retried += 1


@contextmanager
def _providers(context: Contexts, factory: TransportFactory, summary: SendSummary) -> Iterator[dict[str, Transport]]:
    """The providers of the channels that can send now; the others are named in the summary."""
    from hpms.errors import ValidationError

    ready: dict[str, Transport] = {}
    with context() as ctx:
        for channel in ("email", "sms"):
            try:
                ready[channel] = factory(ctx, channel)
            except ValidationError as exc:
                summary.not_set_up[channel] = exc.message if not exc.field else f"{exc.field}: {exc.message}"
    try:
        yield ready
    finally:
        for t in ready.values():
            t.close()


def _due(ctx: Ctx) -> dict[str, int]:
    from hpms.models import Message

    rows = ctx.session.execute(
        sa.select(Message.channel, sa.func.count())
        .where(Message.org_id == ctx.org_id, Message.state == "queued", Message.next_attempt_at <= ctx.now())
        .group_by(Message.channel)
    ).all()
    return {ch: int(n) for ch, n in rows}


def set_profile(
    ctx: Ctx, *, email_from: str | None = None, reply_to: str | None = None, sms_from: str | None = None
) -> dict[str, object]:
    """Set the practice's From and Reply-To, and its SMS number. Raises ValidationError naming
    the field."""
    from hpms.errors import ValidationError
    from hpms.models import MessagingProfile
    from hpms.services.platform import audit
    from hpms.services.platform import validation as v

    require(ctx.actor, "messages.setup")
    profile = ctx.session.get(MessagingProfile, ctx.org_id)
    if profile is None:
        profile = MessagingProfile(org_id=ctx.org_id)
        ctx.session.add(profile)
    changed = []
    for name, value in (("email_from", email_from), ("reply_to", reply_to)):
        if value is not None:
            setattr(profile, name, v.parse_email(name, value))
            changed.append(name)
    if sms_from is not None:
        profile.sms_from = v.parse_e164("sms_from", sms_from)
        changed.append("sms_from")
    if not changed:
        raise ValidationError(None, "nothing to change")
    profile.updated_at = ctx.now()
    ctx.session.flush()
    audit.record(ctx, audit.Event("update", "messaging_profile", ctx.org_id, fields=changed))
    return get_profile(ctx)


def get_profile(ctx: Ctx) -> dict[str, object]:
    from hpms.models import MessagingProfile

    require(ctx.actor, "messages.read")
    p = ctx.session.get(MessagingProfile, ctx.org_id)
    return {
        "email_from": p.email_from if p else None,
        "reply_to": p.reply_to if p else None,
        "sms_from": p.sms_from if p else None,
        "smtp": _smtp_said(ctx.settings.smtp_url),
        "sms": _smtp_said(ctx.settings.sms_url),
    }


def _smtp_said(url: str | None) -> str | None:
    from hpms.config import redact_url

    return redact_url(url) if url else None


__all__ = ["send_due", "work", "SendSummary", "default_transport", "set_profile", "get_profile"]
