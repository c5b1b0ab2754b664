"""Money and productivity reports: charges, claims, A/R aging, provider productivity, the day
sheet, and the appointment list (one row per appointment, for exports).

A claim's outstanding amount in the A/R aging is its billed total; payments, adjustments and
the KPIs built on them are in hpms.services.reports.collections. The formulas are documented
in docs/reports.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.db import Prepared
from hpms.models import Appointment, AppointmentType, Location, Patient, Payer, Provider
from hpms.models.billing import Claim, ClaimEvent, Encounter, EncounterLine
from hpms.models.ledger import LedgerEntry
from hpms.models.receivables import PaymentApplication
from hpms.services.platform import localtime as lt
from hpms.services.reports.base import Column, Params, report, utc_bounds

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

BILLABLE = ("signed", "billed")  # encounters whose lines are charges
# statuses a claim has only after it was sent, and those that mean the payer took it in
SENT = ("submitted", "accepted", "rejected", "paid", "partially_paid", "patient_resp", "denied", "closed")
ACCEPTED = ("accepted", "paid", "partially_paid", "patient_resp", "denied")
SETTLED = ("void", "closed", "paid", "patient_resp")  # nothing outstanding from the payer
BUCKETS = ((0, 30), (31, 60), (61, 90), (91, 120), (121, None))
PAYMENT_KINDS = ("insurance_payment", "patient_payment", "refund")  # collections: payments net of refunds


def money(cents: int | None) -> Decimal:
    """Summed cents (None when nothing was summed) as a two-place Decimal."""
    return Decimal(int(cents or 0)).scaleb(-2)


def provider_name(last: str, first: str, credentials: str | None = None) -> str:
    return f"{last}, {first}" + (f" {credentials}" if credentials else "")


def _encounter_filter(q: sa.Select, params: Params) -> sa.Select:
    q = q.where(
        Encounter.status.in_(BILLABLE), Encounter.service_date >= params.start, Encounter.service_date <= params.end
    )
    if params.location_id:
        q = q.where(Encounter.location_id == params.location_id)
    if params.provider_id:
        q = q.where(Encounter.provider_id == params.provider_id)
    return q


# ---- charges -------------------------------------------------------------------------------


@report(
    "charges",
    "Charges",
    "Charges by service month and provider: signed and billed encounters, lines, charges.",
    [
        Column("month", "Month", "date"),
        Column("provider", "Provider"),
        Column("signed", "Encounters signed", "int"),
        Column("billed", "Encounters billed", "int"),
        Column("lines", "Lines", "int"),
        Column("charges", "Charges", "money"),
    ],
    permission="reports.revenue",
    chart=("month", "charges"),
)
def charges(ctx: Ctx, params: Params) -> Iterator[tuple]:
    q = (
        sa.select(
            Encounter.service_date,
            Provider.last_name,
            Provider.first_name,
            Provider.credentials,
            Encounter.status,
            sa.func.count(sa.distinct(Encounter.id)),
            sa.func.count(EncounterLine.id),
            sa.func.coalesce(sa.func.sum(EncounterLine.charge_cents), 0),
        )
        .select_from(Encounter)
        .join(Provider, Provider.id == Encounter.provider_id)
        .outerjoin(EncounterLine, EncounterLine.encounter_id == Encounter.id)
        .where(Encounter.org_id == ctx.org_id)
        .group_by(
            Encounter.service_date,
            Provider.id,
            Provider.last_name,
            Provider.first_name,
            Provider.credentials,
            Encounter.status,
        )
    )
    totals: dict[tuple[dt.date, str], list[int]] = {}
    for day, last, first, cred, status, encounters, lines, cents in ctx.session.execute(_encounter_filter(q, params)):
        t = totals.setdefault((day.replace(day=1), provider_name(last, first, cred)), [0, 0, 0, 0])
        t[0 if status == "signed" else 1] += encounters
        t[2] += lines
        t[3] += int(cents)
    for (month, prov), (signed_n, billed_n, lines, cents) in sorted(totals.items()):
        yield month, prov, signed_n, billed_n, lines, money(cents)


@report(
    "charges-by-code",
    "Charges by procedure code",
    "Charges per procedure code (signed and billed encounters): units, lines, charges.",
    [
        Column("code", "Code"),
        Column("units", "Units", "int"),
        Column("lines", "Lines", "int"),
        Column("charges", "Charges", "money"),
    ],
    permission="reports.revenue",
)
def charges_by_code(ctx: Ctx, params: Params) -> Iterator[tuple]:
    q = (
        sa.select(
            EncounterLine.code,
            sa.func.sum(EncounterLine.units),
            sa.func.count(EncounterLine.id),
            sa.func.sum(EncounterLine.charge_cents),
        )
        .select_from(EncounterLine)
        .join(Encounter, Encounter.id == EncounterLine.encounter_id)
        .where(Encounter.org_id == ctx.org_id)
        .group_by(EncounterLine.code)
        .order_by(EncounterLine.code)
    )
    for code, units, lines, cents in ctx.session.execute(_encounter_filter(q, params)):
        yield code, int(units or 0), int(lines), money(cents)


# ---- claims --------------------------------------------------------------------------------


def _claims_query(ctx: Ctx, params: Params, *cols: Any) -> sa.Select:
    q = (
        sa.select(*cols)
        .select_from(Claim)
        .join(Encounter, Encounter.id == Claim.encounter_id)
        .where(Claim.org_id == ctx.org_id)
    )
    if params.payer_id:
        q = q.where(Claim.payer_id == params.payer_id)
    if params.location_id:
        q = q.where(Encounter.location_id == params.location_id)
    if params.provider_id:
        q = q.where(Encounter.provider_id == params.provider_id)
    return q


def encounter_ids(ctx: Ctx, params: Params) -> sa.Select | None:
    """The encounters of the location / provider asked for, as a subquery (None: no such filter)."""
    if not params.location_id and not params.provider_id:
        return None
    q = sa.select(Encounter.id).where(Encounter.org_id == ctx.org_id)
    if params.location_id:
        q = q.where(Encounter.location_id == params.location_id)
    if params.provider_id:
        q = q.where(Encounter.provider_id == params.provider_id)
    return q


def first_pass(ctx: Ctx, params: Params) -> dict[int, tuple[int, bool]]:
    """The clean-claim rate's claims, {claim id: (payer id, clean)}: every claim (not a void,
    frequency 8) first submitted in the range, and whether it was clean: accepted (accepted,
    paid, partially paid, patient responsibility or denied in its history or status) on that
    first submission, that is submitted once, never rejected, not a replacement (frequency 7)
    and the first claim of its encounter and payer (not a new original after a rejection).
    The one definition used by both the claims summary and the KPIs (docs/reports.md)."""
    lo, hi = utc_bounds(ctx, params)
    candidates = sa.select(ClaimEvent.claim_id).where(
        ClaimEvent.status == "submitted", ClaimEvent.at >= lo, ClaimEvent.at < hi
    )
    sub = sa.case((ClaimEvent.status == "submitted", 1), else_=0)
    first_sub = sa.func.min(sa.case((ClaimEvent.status == "submitted", ClaimEvent.at), else_=None))
    q = (
        sa.select(
            Claim.id,
            Claim.encounter_id,
            Claim.payer_id,
            Claim.status,
            Claim.frequency,
            sa.func.sum(sub),
            sa.func.sum(sa.case((ClaimEvent.status == "rejected", 1), else_=0)),
            sa.func.sum(sa.case((ClaimEvent.status.in_(ACCEPTED), 1), else_=0)),
        )
        .select_from(Claim)
        .join(ClaimEvent, ClaimEvent.claim_id == Claim.id)
        .where(Claim.org_id + 0 == ctx.org_id, Claim.frequency != "8", col(Claim.id).in_(candidates))
        .group_by(Claim.id, Claim.encounter_id, Claim.payer_id, Claim.status, Claim.frequency)
        .having(first_sub >= lo)
    )
    if params.payer_id:
        q = q.where(Claim.payer_id == params.payer_id)
    encounters = encounter_ids(ctx, params)
    if encounters is not None:
        q = q.where(Claim.encounter_id.in_(encounters))
    rows = ctx.session.execute(q).all()
    # the first claim of each encounter and payer: a later one is billed again (a new original)
    firsts: dict[tuple[int, int], int] = {}
    ids = sorted({r[1] for r in rows})
    for i in range(0, len(ids), 5000):
        for e, p, first in ctx.session.execute(
            sa.select(Claim.encounter_id, Claim.payer_id, sa.func.min(Claim.id))
            .where(Claim.encounter_id.in_(ids[i : i + 5000]), Claim.frequency != "8")
            .group_by(Claim.encounter_id, Claim.payer_id)
        ):
            firsts[(e, p)] = first
    out: dict[int, tuple[int, bool]] = {}
    for claim_id, enc_id, payer_id, status, frequency, n_sub, n_rej, n_acc in rows:
        accepted = int(n_acc) > 0 or status in ACCEPTED
        resubmission = claim_id != firsts.get((enc_id, payer_id)) or frequency == "7" or int(n_sub) > 1
        out[claim_id] = (payer_id, accepted and not resubmission and int(n_rej) == 0)
    return out


@report(
    "claims-summary",
    "Claims summary",
    "Claims created in the range by payer: billed, submitted, accepted, rejected, denied; and the clean-claim "
    "rate of the claims first submitted in the range (as in the KPIs).",
    [
        Column("payer", "Payer"),
        Column("claims", "Claims", "int"),
        Column("billed", "Total billed", "money"),
        Column("submitted", "Submitted", "int"),
        Column("accepted", "Accepted", "int"),
        Column("rejected", "Rejected", "int"),
        Column("denied", "Denied", "int"),
        Column("first_submitted", "First submitted in range", "int"),
        Column("clean", "Clean", "int"),
        Column("clean_rate", "Clean-claim rate %", "percent"),
    ],
    params=("from", "to", "period", "location", "provider", "payer"),
    permission="reports.revenue",
)
def claims_summary(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """Void claims (frequency 8) are not counted: they cancel a claim, they bill nothing. A claim
    was submitted, accepted, rejected or denied if its history (or its status) ever says so.
    The clean-claim columns are `first_pass`: the claims first submitted in the range and the
    clean ones among them, so the rate is the KPI's for the same range and payer."""
    lo, hi = utc_bounds(ctx, params)
    base = _claims_query(ctx, params, Claim.id).where(
        Claim.created_at >= lo, Claim.created_at < hi, Claim.frequency != "8"
    )
    seen: dict[int, set[str]] = {}
    for claim_id, status in ctx.session.execute(
        sa.select(ClaimEvent.claim_id, ClaimEvent.status).where(ClaimEvent.claim_id.in_(base.scalar_subquery()))
    ):
        seen.setdefault(claim_id, set()).add(status)
    q = (
        _claims_query(ctx, params, Claim.id, Claim.status, Claim.total_cents, Payer.name)
        .join(Payer, Payer.id == Claim.payer_id)
        .where(Claim.created_at >= lo, Claim.created_at < hi, Claim.frequency != "8")
    )
    per: dict[str, list[int]] = {}
    for claim_id, status, cents, payer in ctx.session.execute(q):
        history = seen.get(claim_id, set()) | {status}
        p = per.setdefault(payer, [0] * 8)
        p[0] += 1
        p[1] += int(cents)
        p[2] += bool(history & set(SENT))
        p[3] += bool(history & set(ACCEPTED))
        p[4] += "rejected" in history
        p[5] += "denied" in history
    names: dict[int, str] = dict(
        ctx.session.execute(sa.select(Payer.id, Payer.name).where(Payer.org_id == ctx.org_id)).all()
    )
    for payer_id, is_clean in first_pass(ctx, params).values():
        p = per.setdefault(names[payer_id], [0] * 8)
        p[6] += 1
        p[7] += is_clean
    for payer, (n, cents, sent, accepted, rejected, denied, first, clean) in sorted(per.items()):
        yield (
            payer,
            n,
            money(cents),
            sent,
            accepted,
            rejected,
            denied,
            first,
            clean,
            (100.0 * clean / first if first else None),
        )


def _as_of(ctx: Ctx, params: Params) -> dt.date:
    value = params.extra.get("as_of")
    if not value:
        return params.end
    today = lt.local_now(ctx.now(), params.tz).date()
    return lt.parse_day("as_of", value, today=today)


def _bucket(age: int) -> int:
    for i, (_low, high) in enumerate(BUCKETS):
        if high is None or age <= high:
            return i
    return len(BUCKETS) - 1


@report(
    "ar-aging",
    "A/R aging",
    "Outstanding claims by payer as of a day (as-of, default the end of the range), aged by date of service.",
    [
        Column("payer", "Payer"),
        Column("claims", "Claims", "int"),
        Column("d0_30", "0-30", "money"),
        Column("d31_60", "31-60", "money"),
        Column("d61_90", "61-90", "money"),
        Column("d91_120", "91-120", "money"),
        Column("d120", "120+", "money"),
        Column("total", "Total", "money"),
    ],
    params=("as-of", "from", "to", "period", "location", "provider", "payer"),
    permission="reports.revenue",
)
def ar_aging(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """The claims as they stood at the end of the as-of day (from their history, so a later
    change does not alter a past as-of date): created by then, not void, closed or paid by then,
    and not superseded by then by a newer claim of the same encounter and payer (a new original
    after a rejection, a replacement). Void claims (frequency 8) bill nothing and are skipped.
    The outstanding amount is the claim total: payments are not recorded yet."""
    as_of = _as_of(ctx, params)
    _, cutoff = lt.day_bounds_utc(as_of, params.tz)
    q = (
        _claims_query(
            ctx,
            params,
            Claim.id,
            Claim.encounter_id,
            Claim.payer_id,
            Claim.status,
            Claim.total_cents,
            Claim.created_at,
            Encounter.service_date,
        )
        .where(Claim.created_at < cutoff, Claim.frequency != "8")
        .order_by(Claim.created_at, Claim.id)
    )
    claims = ctx.session.execute(q).all()
    ids = [c.id for c in claims]
    last: dict[int, str] = {}  # status at the cut-off
    any_event: set[int] = set()
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        for claim_id, at, status in ctx.session.execute(
            sa.select(ClaimEvent.claim_id, ClaimEvent.at, ClaimEvent.status)
            .where(ClaimEvent.claim_id.in_(chunk))
            .order_by(ClaimEvent.claim_id, ClaimEvent.at, ClaimEvent.id)
        ):
            any_event.add(claim_id)
            if at < cutoff:
                last[claim_id] = status
    latest: dict[tuple[int, int], sa.Row] = {}  # (encounter, payer) -> newest claim by then
    for c in claims:
        latest[(c.encounter_id, c.payer_id)] = c
    names: dict[int, str] = dict(
        ctx.session.execute(sa.select(Payer.id, Payer.name).where(Payer.org_id == ctx.org_id)).all()
    )
    per: dict[str, list[int]] = {}
    for c in latest.values():
        status = last.get(c.id) or ("ready" if c.id in any_event else c.status)
        if status in SETTLED:
            continue
        p = per.setdefault(names.get(c.payer_id, str(c.payer_id)), [0] * (len(BUCKETS) + 2))
        p[0] += 1
        p[1 + _bucket((as_of - c.service_date).days)] += int(c.total_cents)
        p[-1] += int(c.total_cents)
    for payer, p in sorted(per.items()):
        yield payer, p[0], *(money(v) for v in p[1:])


# ---- providers -----------------------------------------------------------------------------


@report(
    "provider-productivity",
    "Provider productivity",
    "Per provider: completed visits, new and established patients, encounters, charges, collections.",
    [
        Column("provider", "Provider"),
        Column("completed", "Completed visits", "int"),
        Column("new", "New patients", "int"),
        Column("established", "Established", "int"),
        Column("encounters", "Encounters", "int"),
        Column("charges", "Charges", "money"),
        Column("collections", "Collections", "money"),
    ],
    permission="reports.revenue",
)
def provider_productivity(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """A completed visit is a new-patient visit when it is the patient's first completed visit
    ever (with any provider); the others are established-patient visits. Collections are the
    payments dated in the range that were posted against the provider's encounters (of any
    date of service), net of refunds: -(insurance payments + patient payments + refunds), plus
    the part of patient credit payments applied to those encounters."""
    lo, hi = utc_bounds(ctx, params)
    first = (
        sa.select(Appointment.patient_id, sa.func.min(Appointment.start_utc).label("first_start"))
        .where(Appointment.org_id == ctx.org_id, Appointment.status == "completed")
        .group_by(Appointment.patient_id)
        .subquery()
    )
    q = (
        sa.select(Appointment.provider_id, Appointment.start_utc, Location.tz, first.c.first_start)
        .join(Location, Location.id == Appointment.location_id)
        .join(first, first.c.patient_id == Appointment.patient_id)
        .where(
            Appointment.org_id == ctx.org_id,
            Appointment.status == "completed",
            Appointment.start_utc >= lo - dt.timedelta(days=1),
            Appointment.start_utc < hi + dt.timedelta(days=1),
        )
    )
    if params.location_id:
        q = q.where(Appointment.location_id == params.location_id)
    if params.provider_id:
        q = q.where(Appointment.provider_id == params.provider_id)
    per: dict[int, list[int]] = {}
    for provider_id, start, tz, first_start in ctx.session.execute(q.execution_options(yield_per=5000)):
        if not params.start <= lt.to_local(start, tz).date() <= params.end:
            continue
        p = per.setdefault(provider_id, [0, 0, 0, 0, 0, 0])
        p[0] += 1
        if start == first_start:
            p[1] += 1
        else:
            p[2] += 1
    eq = (
        sa.select(
            Encounter.provider_id,
            sa.func.count(sa.distinct(Encounter.id)),
            sa.func.coalesce(sa.func.sum(EncounterLine.charge_cents), 0),
        )
        .select_from(Encounter)
        .outerjoin(EncounterLine, EncounterLine.encounter_id == Encounter.id)
        .where(Encounter.org_id == ctx.org_id)
        .group_by(Encounter.provider_id)
    )
    for provider_id, encounters, cents in ctx.session.execute(_encounter_filter(eq, params)):
        p = per.setdefault(provider_id, [0, 0, 0, 0, 0, 0])
        p[3], p[4] = int(encounters), int(cents)
    for (provider_id,), cents in _collections(ctx, params, params.start, params.end, Encounter.provider_id).items():
        per.setdefault(provider_id, [0, 0, 0, 0, 0, 0])[5] = cents
    if not per:
        return
    names = {
        r.id: provider_name(r.last_name, r.first_name, r.credentials)
        for r in ctx.session.execute(
            sa.select(Provider.id, Provider.last_name, Provider.first_name, Provider.credentials).where(
                col(Provider.id).in_(list(per))
            )
        )
    }
    for provider_id, p in sorted(per.items(), key=lambda kv: names.get(kv[0], "")):
        yield names.get(provider_id, str(provider_id)), *p[:4], money(p[4]), money(p[5])


def _collections(ctx: Ctx, params: Params, first: dt.date, last: dt.date, *keys: Any) -> dict[tuple, int]:
    """What was collected against encounters with payments dated first..last, per `keys`
    (encounter columns), in cents (positive): payments and refunds linked to an encounter
    (negated, so refunds count against), plus patient payments posted as credit (no encounter)
    for the part applied to an encounter (`payment_application`)."""

    def narrow(q: sa.Select) -> sa.Select:
        q = q.where(
            LedgerEntry.org_id == ctx.org_id, LedgerEntry.effective_date >= first, LedgerEntry.effective_date <= last
        ).group_by(*keys)
        if params.location_id:
            q = q.where(Encounter.location_id == params.location_id)
        if params.provider_id:
            q = q.where(Encounter.provider_id == params.provider_id)
        return q

    linked = narrow(
        sa.select(*keys, -sa.func.sum(LedgerEntry.amount_cents))
        .select_from(LedgerEntry)
        .join(Encounter, Encounter.id == LedgerEntry.encounter_id)
        .where(col(LedgerEntry.kind).in_(PAYMENT_KINDS))
    )
    applied = narrow(
        sa.select(*keys, sa.func.sum(PaymentApplication.amount_cents))
        .select_from(PaymentApplication)
        .join(LedgerEntry, LedgerEntry.id == PaymentApplication.payment_entry_id)
        .join(Encounter, Encounter.id == PaymentApplication.encounter_id)
        .where(LedgerEntry.kind == "patient_payment", col(LedgerEntry.encounter_id).is_(None))
    )
    out: dict[tuple, int] = {}
    for q in (linked, applied):
        for *key, cents in ctx.session.execute(q):
            out[tuple(key)] = out.get(tuple(key), 0) + int(cents or 0)
    return out


_ENCOUNTER_CHARGES = (
    sa.select(EncounterLine.encounter_id, sa.func.sum(EncounterLine.charge_cents).label("cents"))
    .group_by(EncounterLine.encounter_id)
    .subquery()
)


@report(
    "day-sheet",
    "Day sheet",
    "One day (from) per provider: each appointment's time, patient, type, status, encounter charges "
    "and payments received that day.",
    [
        Column("provider", "Provider"),
        Column("time", "Time"),
        Column("patient", "Patient"),
        Column("mrn", "MRN"),
        Column("type", "Type"),
        Column("status", "Status"),
        Column("charges", "Charges", "money"),
        Column("payments", "Payments", "money"),
    ],
    params=("from", "location", "provider"),
    patient_data=True,
)
def day_sheet(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """Charges are those of the appointment's encounter when it is signed or billed; encounters
    of the day without an appointment are listed after the provider's appointments. Payments
    are those dated that day (net of refunds) posted against the row's encounter or, for
    patient credit, applied to it; payments of
    the day on the provider's other encounters (earlier visits) make one last row per provider,
    status `payments`, so that the column adds up to what the provider's patients paid that day."""
    day = params.start
    lo, hi = lt.day_bounds_utc(day, params.tz)
    paid: dict[int, tuple[int, int]] = {}  # encounter -> (provider, cents paid that day)
    for (enc_id, prov_id), cents in _collections(ctx, params, day, day, Encounter.id, Encounter.provider_id).items():
        if cents:
            paid[enc_id] = (prov_id, cents)

    def payment(enc_id: int | None) -> Decimal | None:
        hit = paid.pop(enc_id, None) if enc_id is not None else None
        return money(hit[1]) if hit else None

    enc = sa.orm.aliased(Encounter)
    q = (
        sa.select(
            Provider.last_name,
            Provider.first_name,
            Provider.credentials,
            Appointment.start_utc,
            Location.tz,
            Patient.last_name,
            Patient.first_name,
            Patient.mrn,
            AppointmentType.name,
            Appointment.status,
            _ENCOUNTER_CHARGES.c.cents,
            enc.id,
        )
        .select_from(Appointment)
        .join(Provider, Provider.id == Appointment.provider_id)
        .join(Location, Location.id == Appointment.location_id)
        .join(Patient, Patient.id == Appointment.patient_id)
        .join(AppointmentType, AppointmentType.id == Appointment.type_id)
        .outerjoin(enc, sa.and_(enc.appointment_id == Appointment.id, enc.status.in_(BILLABLE)))
        .outerjoin(_ENCOUNTER_CHARGES, _ENCOUNTER_CHARGES.c.encounter_id == enc.id)
        .where(
            Appointment.org_id == ctx.org_id,
            Appointment.start_utc >= lo - dt.timedelta(days=1),
            Appointment.start_utc < hi + dt.timedelta(days=1),
        )
    )
    if params.location_id:
        q = q.where(Appointment.location_id == params.location_id)
    if params.provider_id:
        q = q.where(Appointment.provider_id == params.provider_id)
    rows: list[tuple] = []
    for plast, pfirst, cred, start, tz, last, first, mrn, type_name, status, cents, enc_id in ctx.session.execute(q):
        local = lt.to_local(start, tz)
        if local.date() != day:
            continue
        rows.append(
            (
                0,
                provider_name(plast, pfirst, cred),
                local.strftime("%H:%M"),
                f"{last}, {first}",
                mrn,
                type_name,
                status,
                money(cents) if cents is not None else None,
                payment(enc_id),
            )
        )
    wq = (
        sa.select(
            Provider.last_name,
            Provider.first_name,
            Provider.credentials,
            Patient.last_name,
            Patient.first_name,
            Patient.mrn,
            _ENCOUNTER_CHARGES.c.cents,
            Encounter.id,
        )
        .select_from(Encounter)
        .join(Provider, Provider.id == Encounter.provider_id)
        .join(Patient, Patient.id == Encounter.patient_id)
        .outerjoin(_ENCOUNTER_CHARGES, _ENCOUNTER_CHARGES.c.encounter_id == Encounter.id)
        .where(
            Encounter.org_id == ctx.org_id,
            col(Encounter.appointment_id).is_(None),
            Encounter.service_date == day,
            Encounter.status.in_(BILLABLE),
        )
    )
    if params.location_id:
        wq = wq.where(Encounter.location_id == params.location_id)
    if params.provider_id:
        wq = wq.where(Encounter.provider_id == params.provider_id)
    for plast, pfirst, cred, last, first, mrn, cents, enc_id in ctx.session.execute(wq):
        rows.append(
            (
                1,
                provider_name(plast, pfirst, cred),
                "",
                f"{last}, {first}",
                mrn,
                "",
                "encounter",
                money(cents),
                payment(enc_id),
            )
        )
    other: dict[int, int] = {}
    for prov_id, cents in paid.values():
        other[prov_id] = other.get(prov_id, 0) + cents
    if other:
        for r in ctx.session.execute(
            sa.select(Provider.id, Provider.last_name, Provider.first_name, Provider.credentials).where(
                col(Provider.id).in_(list(other))
            )
        ):
            rows.append(
                (
                    2,
                    provider_name(r.last_name, r.first_name, r.credentials),
                    "",
                    "",
                    "",
                    "",
                    "payments",
                    None,
                    money(other[r.id]),
                )
            )
    rows.sort(key=lambda r: (r[1], r[0], r[2], r[3]))
    for row in rows:
        yield row[1:]


# ---- appointment list ----------------------------------------------------------------------


@report(
    "appointments-list",
    "Appointment list",
    "One row per appointment: local day and time, location, provider, patient, MRN, type, status.",
    [
        Column("day", "Day", "date"),
        Column("time", "Start"),
        Column("location", "Location"),
        Column("provider", "Provider"),
        Column("patient", "Patient"),
        Column("mrn", "MRN"),
        Column("type", "Type"),
        Column("status", "Status"),
    ],
    patient_data=True,
)
def appointments_list(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """Streams (fetchmany, a server-side cursor on PostgreSQL): a million rows do not sit in memory."""
    lo, hi = utc_bounds(ctx, params)
    conn = ctx.session.connection()  # Core rows: no ORM row processing
    sqlite = conn.dialect.name == "sqlite"
    # SQLite keeps naive UTC text: parsed below, cheaper than the column type's per-row hook
    start_col = sa.type_coerce(Appointment.start_utc, sa.String) if sqlite else Appointment.start_utc
    q = (
        sa.select(
            start_col,
            Location.tz,
            Location.name,
            # "Last, First" joined by the database: two fewer columns and f-strings per row
            (Provider.last_name + ", " + Provider.first_name).label("provider"),
            (Patient.last_name + ", " + Patient.first_name).label("patient"),
            Patient.mrn,
            AppointmentType.name,
            Appointment.status,
        )
        .select_from(Appointment)
        .join(Location, Location.id == Appointment.location_id)
        .join(Provider, Provider.id == Appointment.provider_id)
        .join(Patient, Patient.id == Appointment.patient_id)
        .join(AppointmentType, AppointmentType.id == Appointment.type_id)
        .where(
            Appointment.org_id == ctx.org_id,
            Appointment.start_utc >= lo - dt.timedelta(days=1),
            Appointment.start_utc < hi + dt.timedelta(days=1),
        )
        .order_by(Appointment.start_utc, Appointment.id)
    )
    if params.location_id:
        q = q.where(Appointment.location_id == params.location_id)
    if params.provider_id:
        q = q.where(Appointment.provider_id == params.provider_id)
    first, last_day = params.start, params.end
    zones: dict[str, object] = {}
    utc = dt.UTC
    fromiso = dt.datetime.fromisoformat
    # on the driver cursor: SQLAlchemy's rows would cost more than the rest of the export
    parts = Prepared(q).stream(conn, size=10_000)
    # rows come in start order and many share a start: its local day and time are computed once
    seen_start: Any = None
    seen_tz = ""
    day: dt.date = first
    hhmm = ""
    keep = False
    for part in parts:  # lists of rows: no per-row fetch call
        for start, tz, loc, provider, patient, mrn, type_name, status in part:
            if start != seen_start or tz != seen_tz:
                seen_start, seen_tz = start, tz
                z = zones.get(tz) or zones.setdefault(tz, lt.zone(tz))
                local = (fromiso(start).replace(tzinfo=utc) if sqlite else start).astimezone(z)
                day = local.date()
                hhmm = f"{local.hour:02d}:{local.minute:02d}"
                keep = first <= day <= last_day
            if not keep:
                continue
            yield (day, hhmm, loc, provider, patient, mrn, type_name, status)
