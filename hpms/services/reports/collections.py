"""Money that came in and what was adjusted away: payments, adjustments (by ledger kind and by
the payer's reason codes), denials by reason, and the revenue-cycle KPIs.

Payments and adjustments come from the ledger (`ledger_entry`, by effective date; reversing
entries carry the opposite amount under the same kind, so a reversed payment nets to nothing).
Denials and reason codes come from what the payer said in its remittance advice (`remit_claim`,
`remit_adjustment`), dated by the remittance's payment date. Amounts paid or adjusted are shown
as positive numbers. The formulas are documented in docs/reports.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from hpms.codes.carc import DENIAL_GROUPS, DENIED_STATUS, NOT_DENIAL, carc_text, normalize
from hpms.errors import ValidationError
from hpms.models import Payer, Provider
from hpms.models.billing import Claim, ClaimLine, Encounter
from hpms.models.ledger import LedgerEntry
from hpms.models.receivables import PaymentApplication, RemitAdjustment, RemitClaim, Remittance
from hpms.services.payments import ledger
from hpms.services.reports.base import Column, Params, report, utc_bounds
from hpms.services.reports.revenue import encounter_ids as _encounter_ids
from hpms.services.reports.revenue import first_pass, money, provider_name

if TYPE_CHECKING:
    from hpms.services.platform.context import Ctx

MONEY_PARAMS = ("from", "to", "period", "location", "provider", "payer")
PAYMENT_KINDS = ("insurance_payment", "patient_payment", "refund")
ADJUSTMENT_KINDS = ("contractual_adjustment", "other_adjustment", "write_off")
DATE_GROUPS = ("day", "week", "month")
PAYMENTS_BY = (*DATE_GROUPS, "payer", "provider", "code")
ADJUSTMENTS_BY = PAYMENTS_BY
DAYS_IN_AR_WINDOW = 90  # days of charges averaged for days in A/R
REVERSAL = "22"  # CLP02: reversal of a previous payment
NO_PAYER, NO_ENCOUNTER, NO_LINE = "(no payer)", "(no encounter)", "(no claim line)"


def parse_by(value: Any, allowed: tuple[str, ...]) -> str:
    if value is None or value == "":
        return "month"
    text = str(value).strip().lower()
    if text not in allowed:
        raise ValidationError("by", f"{value!r} is not a grouping ({', '.join(allowed)})")
    return text


def _date_label(day: dt.date, by: str) -> str:
    if by == "day":
        return day.isoformat()
    if by == "week":
        return (day - dt.timedelta(days=day.weekday())).isoformat()
    return f"{day:%Y-%m}"


def _ledger(
    ctx: Ctx,
    params: Params,
    q: sa.Select,
    kinds: tuple[str, ...],
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> sa.Select:
    """Restrict a ledger query to the org, the kinds, the effective dates and the filters."""
    q = q.where(LedgerEntry.org_id == ctx.org_id, col(LedgerEntry.kind).in_(kinds))
    start = params.start if start is None else start
    end = params.end if end is None else end
    if start is not None:
        q = q.where(LedgerEntry.effective_date >= start)
    q = q.where(LedgerEntry.effective_date <= end)
    if params.payer_id:
        q = q.where(LedgerEntry.payer_id == params.payer_id)
    encounters = _encounter_ids(ctx, params)
    if encounters is not None:
        q = q.where(col(LedgerEntry.encounter_id).in_(encounters))
    return q


def _scan(column: Any) -> Any:
    """`col + 0`: the same value, but SQLite no longer walks the org_id index row by row (then
    reading the table for each row) where a plain scan of the table is several times faster."""
    return column + 0


def _payer_names(ctx: Ctx) -> dict[int, str]:
    return dict(ctx.session.execute(sa.select(Payer.id, Payer.name).where(Payer.org_id == ctx.org_id)).all())


def _provider_names(ctx: Ctx) -> dict[int, str]:
    return {
        r.id: provider_name(r.last_name, r.first_name, r.credentials)
        for r in ctx.session.execute(
            sa.select(Provider.id, Provider.last_name, Provider.first_name, Provider.credentials).where(
                Provider.org_id == ctx.org_id
            )
        )
    }


def _by_kind(ctx: Ctx, params: Params, kinds: tuple[str, ...], by: str) -> dict[str, dict[str, list[int]]]:
    """{group label: {kind: [summed cents, entries]}} of the ledger entries in the range."""
    key: Any  # the column grouped by
    if by in DATE_GROUPS:
        key = LedgerEntry.effective_date
        q = sa.select(key, LedgerEntry.kind, sa.func.sum(LedgerEntry.amount_cents), sa.func.count())
    elif by == "payer":
        key = LedgerEntry.payer_id
        q = sa.select(key, LedgerEntry.kind, sa.func.sum(LedgerEntry.amount_cents), sa.func.count())
    elif by == "provider":
        key = Encounter.provider_id
        q = (
            sa.select(key, LedgerEntry.kind, sa.func.sum(LedgerEntry.amount_cents), sa.func.count())
            .select_from(LedgerEntry)
            .outerjoin(Encounter, Encounter.id == LedgerEntry.encounter_id)
        )
    else:  # code
        key = ClaimLine.code
        q = (
            sa.select(key, LedgerEntry.kind, sa.func.sum(LedgerEntry.amount_cents), sa.func.count())
            .select_from(LedgerEntry)
            .outerjoin(ClaimLine, ClaimLine.id == LedgerEntry.claim_line_id)
        )
    q = _ledger(ctx, params, q.group_by(key, LedgerEntry.kind), kinds)
    names = _payer_names(ctx) if by == "payer" else _provider_names(ctx) if by == "provider" else {}
    out: dict[str, dict[str, list[int]]] = {}
    for value, kind, cents, n in ctx.session.execute(q):
        if by in DATE_GROUPS:
            label = _date_label(value, by)
        elif value is None:
            label = {"payer": NO_PAYER, "provider": NO_ENCOUNTER, "code": NO_LINE}[by]
        else:
            label = value if by == "code" else names.get(value, str(value))
        slot = out.setdefault(label, {}).setdefault(kind, [0, 0])
        slot[0] += int(cents or 0)
        slot[1] += int(n)
    return out


def _ordered(groups: dict, by: str) -> list[str]:
    if by in DATE_GROUPS:
        return sorted(groups)
    none = (NO_PAYER, NO_ENCOUNTER, NO_LINE)
    return sorted(groups, key=lambda k: (k in none, k.lower(), k))


# ---- payments ------------------------------------------------------------------------------


@report(
    "payments",
    "Payments",
    "Insurance and patient payments and refunds by effective date, grouped by day, week, month "
    "(default), payer, provider or code.",
    [
        Column("group", "Group"),
        Column("insurance", "Insurance payments", "money"),
        Column("patient", "Patient payments", "money"),
        Column("refunds", "Refunds", "money"),
        Column("net", "Net payments", "money"),
        Column("entries", "Entries", "int"),
    ],
    params=(*MONEY_PARAMS, "by"),
    permission="reports.revenue",
    chart=("group", "net"),
)
def payments(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """One row per group with a payment or refund entry dated in the range (reversals
    included: they net out). insurance = -(sum of insurance_payment), patient = -(sum of
    patient_payment), refunds = sum of refund, net = insurance + patient - refunds. Groups: the
    effective date (YYYY-MM-DD), its week's Monday, its month (YYYY-MM), the payer of the entry,
    the provider of its encounter, or the procedure code of its claim line."""
    by = parse_by(params.extra.get("by"), PAYMENTS_BY)
    groups = _by_kind(ctx, params, PAYMENT_KINDS, by)
    for label in _ordered(groups, by):
        g = groups[label]
        ins = -g.get("insurance_payment", [0, 0])[0]
        pat = -g.get("patient_payment", [0, 0])[0]
        ref = g.get("refund", [0, 0])[0]
        n = sum(v[1] for v in g.values())
        yield label, money(ins), money(pat), money(ref), money(ins + pat - ref), n


# ---- adjustments ---------------------------------------------------------------------------


@report(
    "adjustments",
    "Adjustments",
    "Contractual adjustments, other adjustments and write-offs by effective date, grouped by day, week, "
    "month (default), payer, provider or code.",
    [
        Column("group", "Group"),
        Column("contractual", "Contractual", "money"),
        Column("other", "Other adjustments", "money"),
        Column("write_off", "Write-offs", "money"),
        Column("total", "Total", "money"),
        Column("entries", "Entries", "int"),
    ],
    params=(*MONEY_PARAMS, "by"),
    permission="reports.revenue",
    chart=("group", "total"),
)
def adjustments(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """One row per group with an adjustment entry dated in the range; each amount is the
    negated sum of its kind (reversals included), total = contractual + other + write-offs."""
    by = parse_by(params.extra.get("by"), ADJUSTMENTS_BY)
    groups = _by_kind(ctx, params, ADJUSTMENT_KINDS, by)
    for label in _ordered(groups, by):
        g = groups[label]
        co, oa, wo = (-g.get(k, [0, 0])[0] for k in ADJUSTMENT_KINDS)
        yield label, money(co), money(oa), money(wo), money(co + oa + wo), sum(v[1] for v in g.values())


def _remit_day_filter(
    ctx: Ctx, params: Params, q: sa.Select, start: dt.date | None = None, end: dt.date | None = None
) -> sa.Select:
    """Remittances paid in the range: by their payment date (BPR16), or the day they were
    imported when they carry none."""
    start = params.start if start is None else start
    end = params.end if end is None else end
    lo, hi = utc_bounds(ctx, Params(start=start, end=end, tz=params.tz))
    return q.where(
        Remittance.org_id == ctx.org_id,
        sa.or_(
            col(Remittance.payment_date).between(start, end),
            sa.and_(col(Remittance.payment_date).is_(None), Remittance.created_at >= lo, Remittance.created_at < hi),
        ),
    )


def _remit_filters(ctx: Ctx, params: Params, q: sa.Select) -> sa.Select:
    """Payer: the remittance's payer, else that of the matched claim; location and provider:
    those of the matched claim's encounter."""
    if params.payer_id:
        q = q.where(sa.func.coalesce(Remittance.payer_id, Claim.payer_id) == params.payer_id)
    encounters = _encounter_ids(ctx, params)
    if encounters is not None:
        q = q.where(col(Claim.encounter_id).in_(encounters))
    return q


@report(
    "adjustments-by-reason",
    "Adjustments by reason",
    "What payers adjusted in the remittances paid in the range, by CAS group code and reason code (CARC), "
    "with the reason.",
    [
        Column("group_code", "Group"),
        Column("reason_code", "CARC"),
        Column("reason", "Reason"),
        Column("claims", "Claims", "int"),
        Column("amount", "Amount", "money"),
    ],
    params=MONEY_PARAMS,
    permission="reports.revenue",
)
def adjustments_by_reason(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """One row per group code and CARC: claim payments (CLP) carrying it, and the sum of its
    CAS amounts (positive: taken off the payment). PR rows are the patient's share (deductible,
    coinsurance, copay), not money lost; the contractual and other adjustments in the ledger
    are the CO, OA and PI rows."""
    q = (
        sa.select(
            RemitAdjustment.group_code,
            RemitAdjustment.reason_code,
            sa.func.count(sa.distinct(RemitAdjustment.remit_claim_id)),
            sa.func.sum(RemitAdjustment.amount_cents),
        )
        .select_from(RemitAdjustment)
        .join(RemitClaim, RemitClaim.id == RemitAdjustment.remit_claim_id)
        .join(Remittance, Remittance.id == RemitClaim.remittance_id)
        .outerjoin(Claim, Claim.id == RemitClaim.claim_id)
        .where(RemitAdjustment.org_id == ctx.org_id)
        .group_by(RemitAdjustment.group_code, RemitAdjustment.reason_code)
    )
    per: dict[tuple[str, str], list[int]] = {}
    for group, reason, claims, cents in ctx.session.execute(
        _remit_filters(ctx, params, _remit_day_filter(ctx, params, q))
    ):
        p = per.setdefault(((group or "").strip().upper(), normalize(reason)), [0, 0])
        p[0] += int(claims)
        p[1] += int(cents or 0)
    for (group, reason), (claims, cents) in sorted(per.items(), key=lambda kv: (kv[0][0], _code_key(kv[0][1]))):
        yield group, reason, carc_text(reason), claims, money(cents)


def _code_key(code: str) -> tuple[int, int, str]:
    return (0, int(code), "") if code.isdigit() else (1, 0, code)


# ---- denials -------------------------------------------------------------------------------


def _adjudications(
    ctx: Ctx, params: Params, start: dt.date | None = None, end: dt.date | None = None
) -> Iterator[tuple[int, int | None, int | None, str, int, bool]]:
    """The claim payments (CLP) of the remittances paid in the range, reversals (CLP02 22)
    left out: (remit claim id, claim id or None, payer id, payer name as sent, charge, denied)."""
    lost = _denial_reason_exists()
    q = (
        sa.select(
            RemitClaim.id,
            RemitClaim.claim_id,
            sa.func.coalesce(Remittance.payer_id, Claim.payer_id),
            Remittance.payer_name,
            RemitClaim.status_code,
            RemitClaim.charge_cents,
            RemitClaim.paid_cents,
            lost,
        )
        .select_from(RemitClaim)
        .join(Remittance, Remittance.id == RemitClaim.remittance_id)
        .outerjoin(Claim, Claim.id == RemitClaim.claim_id)
        .where(_scan(RemitClaim.org_id) == ctx.org_id, RemitClaim.status_code != REVERSAL)
    )
    q = _remit_filters(ctx, params, _remit_day_filter(ctx, params, q, start, end))
    for rid, claim_id, payer_id, payer_name, status, charge, paid, adjusted in ctx.session.execute(
        q.execution_options(yield_per=10000)
    ):
        denied = (status or "").strip() == DENIED_STATUS or (int(paid) == 0 and bool(adjusted))
        yield rid, claim_id, payer_id, payer_name, charge, denied


def _is_denial_reason() -> sa.ColumnElement[bool]:
    """SQL for `hpms.codes.carc.is_denial_reason` on a remit_adjustment row (reason codes are
    stored normalised)."""
    return sa.and_(
        RemitAdjustment.group_code.in_(DENIAL_GROUPS),
        RemitAdjustment.reason_code.not_in(NOT_DENIAL),
        RemitAdjustment.amount_cents != 0,
    )


def _denial_reason_exists() -> sa.Exists:
    """Whether the claim payment carries an adjustment with a denial reason: with nothing paid,
    that makes it a denial (`hpms.codes.carc.is_denial`, as posting decides)."""
    return (
        sa.select(RemitAdjustment.remit_claim_id)
        .where(RemitAdjustment.remit_claim_id == RemitClaim.id, _is_denial_reason())
        .exists()
    )


@report(
    "denials-by-carc",
    "Denials by reason",
    "Denied claims in the remittances paid in the range, by reason code (CARC) and payer: claims, billed, "
    "adjusted amount.",
    [
        Column("reason_code", "CARC"),
        Column("reason", "Reason"),
        Column("payer", "Payer"),
        Column("claims", "Denied claims", "int"),
        Column("billed", "Billed", "money"),
        Column("amount", "Adjusted", "money"),
    ],
    params=MONEY_PARAMS,
    permission="reports.revenue",
)
def denials_by_carc(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """A claim payment is a denial when its status (CLP02) is 4 (denied), or it paid nothing and
    carries an adjustment with a denial reason (group CO, OA or PI with a reason that is not a
    pricing reduction such as 45; `hpms.codes.carc.is_denial`, the rule posting uses). Each
    denial counts once under every denial reason it carries (or under an empty code when the
    payer gave none); billed is the charge of the claim payment (CLP03), adjusted the sum of
    the CAS amounts with that code."""
    payers = _payer_names(ctx)
    denials: dict[int, tuple[str, int]] = {}
    for rid, _claim, payer_id, payer_name, charge, denied in _adjudications(ctx, params):
        if denied:
            denials[rid] = (payers.get(payer_id) or payer_name or NO_PAYER, int(charge))
    if not denials:
        return
    reasons: dict[int, dict[str, int]] = {}
    ids = list(denials)
    for start in range(0, len(ids), 5000):
        for rid, reason, cents in ctx.session.execute(
            sa.select(
                RemitAdjustment.remit_claim_id, RemitAdjustment.reason_code, sa.func.sum(RemitAdjustment.amount_cents)
            )
            .where(RemitAdjustment.remit_claim_id.in_(ids[start : start + 5000]), _is_denial_reason())
            .group_by(RemitAdjustment.remit_claim_id, RemitAdjustment.reason_code)
        ):
            r = reasons.setdefault(rid, {})
            code = normalize(reason)
            r[code] = r.get(code, 0) + int(cents or 0)
    per: dict[tuple[str, str], list[int]] = {}
    for rid, (payer, charge) in denials.items():
        for code, cents in (reasons.get(rid) or {"": 0}).items():
            p = per.setdefault((code, payer), [0, 0, 0])
            p[0] += 1
            p[1] += charge
            p[2] += cents
    for (code, payer), (n, billed, cents) in sorted(
        per.items(), key=lambda kv: (-kv[1][0], -kv[1][2], _code_key(kv[0][0]), kv[0][1])
    ):
        yield code, carc_text(code) if code else "(no reason given)", payer, n, money(billed), money(cents)


# ---- KPIs ----------------------------------------------------------------------------------


def _ratio(num: Any, den: Any, scale: int = 100, places: str = "0.1") -> Decimal | None:
    if not den:
        return None
    return (Decimal(num) * scale / Decimal(den)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def _ledger_totals(ctx: Ctx, params: Params, window_start: dt.date) -> tuple[int, int]:
    """In one pass over the ledger: the A/R at the end of the range (every entry dated up to
    it) and the charges dated in [window_start, end]."""
    eff, amount, kind = LedgerEntry.effective_date, LedgerEntry.amount_cents, LedgerEntry.kind

    def total(*conditions: Any) -> sa.ColumnElement[int]:
        return sa.func.coalesce(sa.func.sum(sa.case((sa.and_(*conditions), amount), else_=0)), 0)

    cols = [sa.func.coalesce(sa.func.sum(amount), 0), total(kind == "charge", eff >= window_start)]
    q = sa.select(*cols).where(_scan(LedgerEntry.org_id) == ctx.org_id, eff <= params.end)
    if params.payer_id:
        q = q.where(LedgerEntry.payer_id == params.payer_id)
    encounters = _encounter_ids(ctx, params)
    if encounters is not None:
        q = q.where(col(LedgerEntry.encounter_id).in_(encounters))
    ar, window = (int(v or 0) for v in ctx.session.execute(q).one())
    return ar, window


def _round(value: Decimal | None, places: str = "0.01") -> Decimal | None:
    return None if value is None else value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


@report(
    "kpis",
    "Revenue-cycle KPIs",
    "Days in A/R, clean-claim rate, denial rate and net collection rate for the range: numerator, denominator, value.",
    [
        Column("kpi", "KPI"),
        Column("numerator", "Numerator", "number"),
        Column("denominator", "Denominator", "number"),
        Column("value", "Value", "number"),
        Column("unit", "Unit"),
    ],
    params=MONEY_PARAMS,
    permission="reports.revenue",
)
def kpis(ctx: Ctx, params: Params) -> Iterator[tuple]:
    """Four rows (see docs/reports.md for the definitions). Money numerators and denominators
    are in currency units (two places), counts are whole numbers; a value is empty when its
    denominator is zero."""
    end = params.end
    window_start = end - dt.timedelta(days=DAYS_IN_AR_WINDOW - 1)
    ar, window_charges = _ledger_totals(ctx, params, window_start)
    daily = Decimal(window_charges) / DAYS_IN_AR_WINDOW
    days = _round(Decimal(ar) / daily, "0.1") if daily else None
    yield "Days in A/R", money(ar), _round(money(window_charges) / DAYS_IN_AR_WINDOW), days, "days"

    passes = first_pass(ctx, params)
    clean, submitted = sum(c for _, c in passes.values()), len(passes)
    yield "Clean-claim rate", clean, submitted, _ratio(clean, submitted), "%"

    adjudicated: dict[tuple[str, int], bool] = {}
    for rid, claim_id, _payer, _name, _charge, denied in _adjudications(ctx, params):
        key = ("claim", claim_id) if claim_id is not None else ("remit", rid)
        adjudicated[key] = adjudicated.get(key, False) or denied
    n_denied = sum(adjudicated.values())
    yield "Denial rate", n_denied, len(adjudicated), _ratio(n_denied, len(adjudicated)), "%"

    paid, net_charges = _net_collection(ctx, params)
    yield "Net collection rate", money(paid), money(net_charges), _ratio(paid, net_charges), "%"


def _net_collection(ctx: Ctx, params: Params) -> tuple[int, int]:
    """(collected, net charges) of the visits charged in the range: the charges dated in the
    range less their contractual adjustments, and what was collected for those same visits
    whenever it came in (insurance payments, patient payments applied to them). Cash for older
    visits does not count, so a short range is not skewed by it and the rate stays between 0
    and 100 % but for overpayments; visits not yet paid keep a recent range's rate low. With a
    payer, that payer's charges, adjustments and payments only."""
    e = LedgerEntry
    cohort = sa.select(e.encounter_id).where(
        _scan(e.org_id) == ctx.org_id,
        e.kind == "charge",
        e.effective_date >= params.start,
        e.effective_date <= params.end,
        col(e.encounter_id).is_not(None),
    )
    if params.payer_id:
        cohort = cohort.where(e.payer_id == params.payer_id)
    encounters = _encounter_ids(ctx, params)
    if encounters is not None:
        cohort = cohort.where(col(e.encounter_id).in_(encounters))
    visits = cohort.distinct().scalar_subquery()

    def total(kind: str) -> sa.ColumnElement[int]:
        return sa.func.coalesce(sa.func.sum(sa.case((e.kind == kind, e.amount_cents), else_=0)), 0)

    q = sa.select(total("charge"), total("contractual_adjustment"), total("insurance_payment")).where(
        e.org_id == ctx.org_id,
        col(e.encounter_id).in_(visits),
        col(e.kind).in_(("charge", "contractual_adjustment", "insurance_payment")),
    )
    if params.payer_id:
        q = q.where(e.payer_id == params.payer_id)
    charges, contractual, insurance = (int(v) for v in ctx.session.execute(q).one())
    patient = 0
    if not params.payer_id:
        # a patient payment counts for the visits it was applied to; one never applied (a payment
        # or refund recorded against a visit) for its own visit
        a = PaymentApplication
        applied = int(
            ctx.session.execute(
                sa.select(sa.func.coalesce(sa.func.sum(a.amount_cents), 0))
                .join(e, e.id == a.payment_entry_id)
                .where(a.org_id == ctx.org_id, col(a.encounter_id).in_(visits), ledger.live_payment(e))
            ).scalar_one()
        )
        direct = int(
            ctx.session.execute(
                sa.select(sa.func.coalesce(sa.func.sum(e.amount_cents), 0)).where(
                    e.org_id == ctx.org_id,
                    col(e.kind).in_(("patient_payment", "refund")),
                    col(e.encounter_id).in_(visits),
                    col(e.reverses_id).is_(None),
                    ledger.live_payment(e),
                    ~sa.exists().where(a.payment_entry_id == e.id),
                )
            ).scalar_one()
        )
        patient = applied - direct
    return -insurance + patient, charges + contractual
