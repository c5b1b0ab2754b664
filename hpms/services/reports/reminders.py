"""The reminders report: what became of the reminders of the visits in a range, per channel and
overall, how many patients confirmed by reply, and the no-show rate of visits with and without
a reminder. Every figure comes from a few grouped queries; the formulas are in docs/reports.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.models import Appointment, InboundMessage, Location, Message
from hpms.models.messages import CHANNELS
from hpms.services.platform import localtime as lt
from hpms.services.reports.base import Column, Params, location_filter, report

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

SENT_STATES = ("sent", "delivered")
# a visit that happened or was missed: its outcome is known (booked or confirmed visits whose
# time has passed have no outcome recorded yet and are left out, as are cancelled ones)
OUTCOME_STATUSES = ("arrived", "in_room", "completed", "no_show")
OVERALL = "all"


@dataclass
class _Counts:
    reminders: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    confirmed: int = 0
    visits: int = 0
    no_shows: int = 0


def _rate(part: int, whole: int) -> Decimal | None:
    """100 * part / whole to one decimal (half up), None when whole is 0."""
    if not whole:
        return None
    return (Decimal(100 * part) / Decimal(whole)).quantize(Decimal("0.1"), rounding="ROUND_HALF_UP")


def _visits(ctx: Ctx, params: Params) -> sa.ColumnElement[bool]:
    """The appointments starting on a local day of the range, in the zone of their location:
    one condition per zone the practice uses, so the database does the filtering."""
    zones = ctx.session.scalars(sa.select(Location.tz).where(Location.org_id == ctx.org_id).distinct()).all()
    conds = []
    for tz in zones:
        lo, _ = lt.day_bounds_utc(params.start, tz)
        _, hi = lt.day_bounds_utc(params.end, tz)
        conds.append(sa.and_(Location.tz == tz, Appointment.start_utc >= lo, Appointment.start_utc < hi))
    return sa.or_(*conds) if conds else sa.false()


def _scope(ctx: Ctx, params: Params, q: sa.Select) -> sa.Select:
    q = q.join(Location, Location.id == Appointment.location_id).where(
        Appointment.org_id == ctx.org_id, _visits(ctx, params)
    )
    q = location_filter(q, params)
    if params.provider_id:
        q = q.where(Appointment.provider_id == params.provider_id)
    return q


def _sent_on(channel: str | None) -> Any:
    """EXISTS a reminder of the visit that went (sent or delivered), on `channel` or any."""
    q = sa.select(sa.literal(1)).where(
        Message.appointment_id == Appointment.id,
        Message.template == "reminder",
        col(Message.state).in_(SENT_STATES),
    )
    if channel:
        q = q.where(Message.channel == channel)
    return q.exists()


@report(
    "reminders",
    "Appointment reminders",
    "Reminders of the visits in the range per channel and overall: sent, delivered, failed, "
    "skipped (by reason), confirmed by reply, and the no-show rate with and without a reminder.",
    [
        Column("channel", "Channel"),
        Column("reminders", "Reminders", "int"),
        Column("sent", "Sent", "int"),
        Column("delivered", "Delivered", "int"),
        Column("failed", "Failed", "int"),
        Column("skipped", "Skipped", "int"),
        Column("skip_reasons", "Skip reasons"),
        Column("confirmed", "Confirmed by reply", "int"),
        Column("visits_with", "Visits with a reminder", "int"),
        Column("no_shows_with", "No-shows with a reminder", "int"),
        Column("no_show_rate_with", "No-show rate with %", "percent"),
        Column("visits_without", "Visits without a reminder", "int"),
        Column("no_shows_without", "No-shows without a reminder", "int"),
        Column("no_show_rate_without", "No-show rate without %", "percent"),
    ],
    params=("from", "to", "period", "location", "provider"),
)
def reminders(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """One row per channel (email, sms) and a last row `all`, over the reminders (messages of
    template reminder) of the appointments starting on a local day of the range.

    reminders = every reminder, whatever its state; sent = state sent or delivered; delivered =
    state delivered; failed = state failed; skipped = state skipped, with skip reasons = each
    reason and its count ("reason: n", most frequent first, joined by "; ");
    confirmed = visits the patient confirmed by replying (a reply recorded with outcome
    confirmed) that had a reminder sent, on the reply's channel for a channel row;
    visits = appointments starting before now with a known outcome (arrived, in room, completed
    or no-show); visits with = those with a reminder sent (on that channel for a channel row);
    visits without = those with no reminder sent on any channel (the same on every row);
    no-show rate % = 100 * no-shows / visits, one decimal (None when there are no visits)."""
    per = {c: _Counts() for c in (*CHANNELS, OVERALL)}
    skip_reason = sa.case((Message.state == "skipped", Message.error), else_=None)
    q = _scope(
        ctx,
        params,
        sa.select(Message.channel, Message.state, skip_reason, sa.func.count())
        .select_from(Message)
        .join(Appointment, Appointment.id == Message.appointment_id)
        .where(Message.template == "reminder"),
    ).group_by(Message.channel, Message.state, skip_reason)
    for channel, state, reason, n in ctx.session.execute(q):
        for key in (channel, OVERALL):
            c = per[key]
            c.reminders += n
            c.sent += n if state in SENT_STATES else 0
            c.delivered += n if state == "delivered" else 0
            c.failed += n if state == "failed" else 0
            if state == "skipped":
                c.skipped += n
                why = reason or "no reason given"
                c.reasons[why] = c.reasons.get(why, 0) + n

    confirmed = sa.select(InboundMessage.appointment_id, InboundMessage.channel).where(
        InboundMessage.org_id == ctx.org_id, InboundMessage.outcome == "confirmed"
    )
    replies = confirmed.subquery()
    for channel in (*CHANNELS, None):
        q = _scope(
            ctx,
            params,
            sa.select(sa.func.count(sa.distinct(Appointment.id)))
            .select_from(Appointment)
            .join(replies, replies.c.appointment_id == Appointment.id)
            .where(_sent_on(channel)),
        )
        if channel:
            q = q.where(replies.c.channel == channel)
        per[channel or OVERALL].confirmed = ctx.session.scalar(q) or 0

    flags = [_sent_on(c).label(c) for c in CHANNELS]
    no_show = sa.case((Appointment.status == "no_show", 1), else_=0).label("no_show")
    inner = _scope(
        ctx,
        params,
        sa.select(*flags, no_show)
        .select_from(Appointment)
        .where(col(Appointment.status).in_(OUTCOME_STATUSES), Appointment.start_utc < ctx.now()),
    ).subquery()
    by = [inner.c[c] for c in CHANNELS]
    q = sa.select(*by, sa.func.count(), sa.func.sum(inner.c.no_show)).group_by(*by)
    without = [0, 0]
    for *sent, visits, missed in ctx.session.execute(q):
        missed = int(missed or 0)
        if not any(sent):
            without[0] += visits
            without[1] += missed
            continue
        for key, went in (*zip(CHANNELS, sent), (OVERALL, True)):
            if went:
                per[key].visits += visits
                per[key].no_shows += missed

    for key in (*CHANNELS, OVERALL):
        c = per[key]
        why = "; ".join(f"{r}: {n}" for r, n in sorted(c.reasons.items(), key=lambda kv: (-kv[1], kv[0])))
        yield (
            key,
            c.reminders,
            c.sent,
            c.delivered,
            c.failed,
            c.skipped,
            why or None,
            c.confirmed,
            c.visits,
            c.no_shows,
            _rate(c.no_shows, c.visits),
            without[0],
            without[1],
            _rate(without[1], without[0]),
        )
