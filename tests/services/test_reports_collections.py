"""Payments, adjustments, denials and the revenue-cycle KPIs (services, SQLite and PostgreSQL),
plus the collections added to provider productivity and the day sheet. The practice is the
one of test_reports_revenue (claims c1..c6) with claim lines, ledger entries posted through
hpms.services.payments.ledger and remittance rows inserted by hand; every expected number is worked
out in the comments."""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hpms.codes.carc import CARC, carc_text, group_text
from hpms.errors import NotFoundError, PermissionDenied, ValidationError
from hpms.models.billing import Claim
from hpms.services import lookups
from tests.services import test_reports_revenue as rev

D = Decimal
Z = D("0.00")
SPRING = rev.SPRING
data = rev.data  # the practice of the revenue reports (fixture)
run = rev.run
utc = rev.utc


@dataclass
class Money:
    bob: str
    kid: str
    nora: str
    claims: dict[str, int]
    lines: dict[str, int]


def _line(ctx, claim_id: int, seq: int, code: str, cents: int, day: str, units: int = 1) -> int:
    from hpms.models.billing import ClaimLine

    ln = ClaimLine(
        claim_id=claim_id,
        seq=seq,
        code=code,
        units=units,
        pointers="1",
        charge_cents=cents,
        service_date=dt.date.fromisoformat(day),
    )
    ctx.session.add(ln)
    ctx.session.flush()
    return ln.id


def _remittance(
    ctx,
    file_id: int,
    n: int,
    payer_id: int,
    paid_on: str | None,
    claims: list[dict],
    created: dt.datetime = utc(2026, 4, 1, 12),
) -> None:
    """One 835 payment: `claims` are CLPs with their CAS rows (group, reason, cents[, line])."""
    from hpms.models.receivables import RemitAdjustment, RemitClaim, Remittance

    r = Remittance(
        org_id=ctx.org_id,
        remit_file_id=file_id,
        isa_control=f"{n:09d}",
        st_control="0001",
        payer_identifier=str(payer_id),
        payer_name="",
        payer_id=payer_id,
        trace_number=f"T{n}",
        payment_cents=sum(c["paid"] for c in claims),
        payment_date=dt.date.fromisoformat(paid_on) if paid_on else None,
        claims=len(claims),
        created_at=created,
    )
    ctx.session.add(r)
    ctx.session.flush()
    for seq, c in enumerate(claims, 1):
        rc = RemitClaim(
            org_id=ctx.org_id,
            remittance_id=r.id,
            seq=seq,
            patient_control_number=f"P{n}{seq}",
            status_code=c["status"],
            charge_cents=c["charge"],
            paid_cents=c["paid"],
            claim_id=c.get("claim"),
            posted_at=created,
            detail="{}",
        )
        ctx.session.add(rc)
        ctx.session.flush()
        for adj in c.get("cas", ()):
            group, reason, cents, *line = adj
            ctx.session.add(
                RemitAdjustment(
                    org_id=ctx.org_id,
                    remit_claim_id=rc.id,
                    claim_id=c.get("claim"),
                    claim_line_id=line[0] if line else None,
                    group_code=group,
                    reason_code=reason,
                    amount_cents=cents,
                )
            )
    ctx.session.flush()


@pytest.fixture
def money(ctx_for, data) -> Money:
    """Ledger (effective dates; charges positive, payments and adjustments negative):

    charges: c1 99213 120.00 + 36415 15.00 (03-10); c3 99214 180.00 (03-20); c4 93000 x2
    91.00 + 36415 15.00 (04-05); c6 36415 15.00 (2025-11-01); Nora's walk-in 120.00 (03-10,
    no claim, patient)
    c1 (Acme, Smith): insurance 80.00 (99213) + 10.00 (36415) on 04-10, contractual 20.00 +
    5.00, 10.00 moved to the patient; Bob's copay 10.00 on 03-10
    c3 (Beta, Smith): denied, written off 180.00 on 04-25; Kid paid 7.00 on 03-10
    c4 (Acme, Lee): 50.00 paid on 04-20 and reversed on 04-22, then 60.00 paid and 31.00 +
    15.00 contractual on 04-22
    walk-in (Lee): Nora paid 25.00 on 03-10, refunded 5.00 and 3.00 adjusted on 03-15
    Bob paid 12.00 as credit (no visit) on 04-12, applied to e1
    """
    from hpms.models import Encounter
    from hpms.models.receivables import PaymentApplication, RemitFile
    from hpms.services.payments import ledger

    c = data.claims
    with ctx_for() as ctx:
        lines = {
            "1a": _line(ctx, c["c1"], 1, "99213", 12000, "2026-03-10"),
            "1b": _line(ctx, c["c1"], 2, "36415", 1500, "2026-03-10"),
            "3": _line(ctx, c["c3"], 1, "99214", 18000, "2026-03-20"),
            "4a": _line(ctx, c["c4"], 1, "93000", 9100, "2026-04-05", units=2),
            "4b": _line(ctx, c["c4"], 2, "36415", 1500, "2026-04-05"),
            "6": _line(ctx, c["c6"], 1, "36415", 1500, "2025-11-01"),
        }
        walk_in = ctx.session.execute(
            sa.select(Encounter.id).where(
                Encounter.appointment_id.is_(None), Encounter.service_date == dt.date(2026, 3, 10)
            )
        ).scalar_one()
        e1, e2 = (
            ctx.session.execute(sa.select(Claim.encounter_id).where(Claim.id == c[k])).scalar_one()
            for k in ("c1", "c3")
        )

        def post(kind, amount, patient, day, **kw):
            return ledger.post(ctx, kind, amount, patient=patient, effective_date=day, **kw)

        for key, claim, amount, day in (
            ("1a", "c1", "120.00", "2026-03-10"),
            ("1b", "c1", "15.00", "2026-03-10"),
            ("3", "c3", "180.00", "2026-03-20"),
            ("4a", "c4", "91.00", "2026-04-05"),
            ("4b", "c4", "15.00", "2026-04-05"),
            ("6", "c6", "15.00", "2025-11-01"),
        ):
            patient = data.bob if claim == "c1" else data.nora if claim == "c4" else data.kid
            post("charge", amount, patient, day, claim_line=lines[key])
        post("charge", "120.00", data.nora, "2026-03-10", encounter=walk_in)
        post("insurance_payment", "-80.00", data.bob, "2026-04-10", claim_line=lines["1a"])
        post("insurance_payment", "-10.00", data.bob, "2026-04-10", claim_line=lines["1b"])
        post("contractual_adjustment", "-20.00", data.bob, "2026-04-10", claim_line=lines["1a"])
        post("contractual_adjustment", "-5.00", data.bob, "2026-04-10", claim_line=lines["1b"])
        post("transfer_to_patient", "10.00", data.bob, "2026-04-10", claim_line=lines["1a"])
        post("patient_payment", "-10.00", data.bob, "2026-03-10", encounter=e1)
        post("patient_payment", "-7.00", data.kid, "2026-03-10", encounter=e2)
        post("write_off", "-180.00", data.kid, "2026-04-25", claim=c["c3"])
        wrong = post("insurance_payment", "-50.00", data.nora, "2026-04-20", claim_line=lines["4a"])
        post("insurance_payment", "-60.00", data.nora, "2026-04-22", claim_line=lines["4a"])
        post("contractual_adjustment", "-31.00", data.nora, "2026-04-22", claim_line=lines["4a"])
        post("contractual_adjustment", "-15.00", data.nora, "2026-04-22", claim_line=lines["4b"])
        post("patient_payment", "-25.00", data.nora, "2026-03-10", encounter=walk_in)
        post("refund", "5.00", data.nora, "2026-03-15", encounter=walk_in)
        post("other_adjustment", "-3.00", data.nora, "2026-03-15", encounter=walk_in)
        credit = post("patient_payment", "-12.00", data.bob, "2026-04-12")
        ctx.session.add(
            PaymentApplication(
                org_id=ctx.org_id,
                payment_entry_id=credit,
                encounter_id=e1,
                amount_cents=1200,
                applied_at=utc(2026, 4, 12, 16),
            )
        )
    with ctx_for(clock=lambda: utc(2026, 4, 22, 15)) as ctx:
        ledger.reverse(ctx, wrong, "posted twice")  # effective 04-22
    acme, beta = _payers(ctx_for)
    with ctx_for() as ctx:
        f = RemitFile(org_id=ctx.org_id, filename="x.835", sha256="0" * 64, imported_at=utc(2026, 4, 1))
        ctx.session.add(f)
        ctx.session.flush()
        _remittance(
            ctx,
            f.id,
            1,
            acme,
            "2026-04-10",
            [
                dict(
                    claim=c["c1"],
                    status="1",
                    charge=13500,
                    paid=9000,
                    cas=[
                        ("CO", "45", 2000, lines["1a"]),
                        ("CO", "45", 500, lines["1b"]),
                        ("PR", "2", 1000, lines["1a"]),
                    ],
                )
            ],
        )
        _remittance(
            ctx,
            f.id,
            2,
            beta,
            "2026-04-20",
            [dict(claim=c["c3"], status="4", charge=18000, paid=0, cas=[("CO", "50", 18000)])],
        )
        _remittance(
            ctx,
            f.id,
            3,
            acme,
            "2026-04-20",
            [dict(claim=c["c4"], status="1", charge=10600, paid=5000, cas=[("CO", "45", 5600)])],
        )
        _remittance(
            ctx,
            f.id,
            4,
            acme,
            "2026-04-22",
            [
                dict(claim=c["c4"], status="22", charge=-10600, paid=-5000, cas=[("CO", "45", -5600)]),
                dict(claim=c["c4"], status="1", charge=10600, paid=6000, cas=[("CO", "45", 3100), ("CO", "097", 1500)]),
            ],
        )
        # no payment date: dated by its import (04-28); all to the deductible: not a denial
        _remittance(
            ctx,
            f.id,
            5,
            beta,
            None,
            [dict(claim=c["c6"], status="1", charge=1500, paid=0, cas=[("PR", "1", 1500)])],
            created=utc(2026, 4, 28, 15),
        )
        # a denial not matched to a claim, no reason given
        _remittance(ctx, f.id, 6, beta, "2026-04-29", [dict(status="4", charge=5000, paid=0)])
        # after the range
        _remittance(
            ctx,
            f.id,
            7,
            acme,
            "2026-05-05",
            [dict(claim=c["c4"], status="4", charge=10600, paid=0, cas=[("CO", "16", 10600)])],
        )
    return Money(bob=data.bob, kid=data.kid, nora=data.nora, claims=c, lines=lines)


def _payers(ctx_for) -> tuple[int, int]:

    with ctx_for() as ctx:
        return lookups.find_payer(ctx, "ACME1").id, lookups.find_payer(ctx, "BETA2").id


# ---- payments ------------------------------------------------------------------------------


def test_payments_by_month_net_out_the_reversal(ctx_for, money):
    assert run(ctx_for, "payments", **SPRING) == [
        # March: copays 10.00 + 7.00 and Nora's 25.00; Nora's 5.00 refund
        ("2026-03", Z, D("42.00"), D("5.00"), D("37.00"), 4),
        # April: 80.00 + 10.00 (c1), 50.00 - 50.00 + 60.00 (c4); Bob's 12.00 credit
        ("2026-04", D("150.00"), D("12.00"), Z, D("162.00"), 6),
    ]


def test_payments_by_day_and_week(ctx_for, money):
    assert run(ctx_for, "payments", by="day", **SPRING) == [
        ("2026-03-10", Z, D("42.00"), Z, D("42.00"), 3),
        ("2026-03-15", Z, Z, D("5.00"), D("-5.00"), 1),
        ("2026-04-10", D("90.00"), Z, Z, D("90.00"), 2),
        ("2026-04-12", Z, D("12.00"), Z, D("12.00"), 1),
        ("2026-04-20", D("50.00"), Z, Z, D("50.00"), 1),
        ("2026-04-22", D("10.00"), Z, Z, D("10.00"), 2),  # the reversal and the right payment
    ]
    assert run(ctx_for, "payments", by="week", **SPRING) == [
        ("2026-03-09", Z, D("42.00"), D("5.00"), D("37.00"), 4),  # Tue 03-10 and Sun 03-15
        ("2026-04-06", D("90.00"), D("12.00"), Z, D("102.00"), 3),  # Fri 04-10 and Sun 04-12
        ("2026-04-20", D("60.00"), Z, Z, D("60.00"), 3),
    ]


def test_payments_by_payer_provider_and_code(ctx_for, money):
    assert run(ctx_for, "payments", by="payer", **SPRING) == [
        ("Acme Health", D("150.00"), Z, Z, D("150.00"), 5),
        ("(no payer)", Z, D("54.00"), D("5.00"), D("49.00"), 5),  # patient payments carry no payer
    ]
    assert run(ctx_for, "payments", by="provider", **SPRING) == [
        # c4 (60.00), Nora's 25.00 less the 5.00 refund
        ("Lee, Bo", D("60.00"), D("25.00"), D("5.00"), D("80.00"), 5),
        # c1 (90.00), the copays 10.00 + 7.00
        ("Smith, Ann MD", D("90.00"), D("17.00"), Z, D("107.00"), 4),
        ("(no encounter)", Z, D("12.00"), Z, D("12.00"), 1),  # the credit (the ledger's link only)
    ]
    assert run(ctx_for, "payments", by="code", **SPRING) == [
        ("36415", D("10.00"), Z, Z, D("10.00"), 1),
        ("93000", D("60.00"), Z, Z, D("60.00"), 3),
        ("99213", D("80.00"), Z, Z, D("80.00"), 1),
        ("(no claim line)", Z, D("54.00"), D("5.00"), D("49.00"), 5),
    ]


def test_payments_filters(ctx_for, money):
    assert run(ctx_for, "payments", payer="ACME1", **SPRING) == [("2026-04", D("150.00"), Z, Z, D("150.00"), 5)]
    assert run(ctx_for, "payments", provider="Lee", by="payer", **SPRING) == [
        ("Acme Health", D("60.00"), Z, Z, D("60.00"), 3),
        ("(no payer)", Z, D("25.00"), D("5.00"), D("20.00"), 2),
    ]
    # a location selects the entries linked to its encounters: Bob's credit has none
    assert run(ctx_for, "payments", location="Main", **SPRING) == [
        ("2026-03", Z, D("42.00"), D("5.00"), D("37.00"), 4),
        ("2026-04", D("150.00"), Z, Z, D("150.00"), 5),
    ]
    assert run(ctx_for, "payments", period="2026-05") == []


# ---- adjustments ---------------------------------------------------------------------------


def test_adjustments_by_month_and_payer(ctx_for, money):
    assert run(ctx_for, "adjustments", **SPRING) == [
        ("2026-03", Z, D("3.00"), Z, D("3.00"), 1),  # Nora's small balance
        # contractual 20.00 + 5.00 (c1) + 31.00 + 15.00 (c4); c3 written off
        ("2026-04", D("71.00"), Z, D("180.00"), D("251.00"), 5),
    ]
    assert run(ctx_for, "adjustments", by="payer", **SPRING) == [
        ("Acme Health", D("71.00"), Z, Z, D("71.00"), 4),
        ("Beta Care", Z, Z, D("180.00"), D("180.00"), 1),
        ("(no payer)", Z, D("3.00"), Z, D("3.00"), 1),
    ]
    assert run(ctx_for, "adjustments", by="provider", **SPRING) == [
        ("Lee, Bo", D("46.00"), D("3.00"), Z, D("49.00"), 3),
        ("Smith, Ann MD", D("25.00"), Z, D("180.00"), D("205.00"), 3),
    ]
    # by the claim line's procedure code: 36415 is 5.00 (c1) + 15.00 (c4); the write-off of c3
    # and Nora's 3.00 are on no claim line
    assert run(ctx_for, "adjustments", by="code", **SPRING) == [
        ("36415", D("20.00"), Z, Z, D("20.00"), 2),
        ("93000", D("31.00"), Z, Z, D("31.00"), 1),
        ("99213", D("20.00"), Z, Z, D("20.00"), 1),
        ("(no claim line)", Z, D("3.00"), D("180.00"), D("183.00"), 2),
    ]


def test_adjustments_by_reason(ctx_for, money):
    assert run(ctx_for, "adjustments-by-reason", **SPRING) == [
        # c1 25.00, c4 56.00 then reversed (-56.00), c4 again 31.00: four claim payments
        ("CO", "45", carc_text("45"), 4, D("56.00")),
        ("CO", "50", carc_text("50"), 1, D("180.00")),
        ("CO", "97", carc_text("97"), 1, D("15.00")),  # sent as "097"
        ("PR", "1", "Deductible amount", 1, D("15.00")),  # no payment date: imported 04-28
        ("PR", "2", "Coinsurance amount", 1, D("10.00")),
    ]
    # May: the CO-16 denial
    assert run(ctx_for, "adjustments-by-reason", period="2026-05") == [("CO", "16", carc_text("16"), 1, D("106.00"))]
    assert run(ctx_for, "adjustments-by-reason", payer="BETA2", **SPRING) == [
        ("CO", "50", carc_text("50"), 1, D("180.00")),
        ("PR", "1", "Deductible amount", 1, D("15.00")),
    ]


# ---- denials and KPIs ----------------------------------------------------------------------


def test_denials_by_carc(ctx_for, money):
    assert run(ctx_for, "denials-by-carc", **SPRING) == [
        ("50", carc_text("50"), "Beta Care", 1, D("180.00"), D("180.00")),  # c3
        ("", "(no reason given)", "Beta Care", 1, D("50.00"), Z),  # the unmatched CLP02 4
    ]
    # the deductible-only claim payment (c6, PR-1) and the paid ones are not denials
    assert run(ctx_for, "denials-by-carc", provider="Lee", **SPRING) == []
    assert run(ctx_for, "denials-by-carc", period="2026-05") == [
        ("16", carc_text("16"), "Acme Health", 1, D("106.00"), D("106.00"))
    ]


def test_kpis(ctx_for, money):
    rows = run(ctx_for, "kpis", **SPRING)
    assert rows == [
        # A/R on 04-30: c1 135 - 90 - 25 - 10 = 10; c3 180 - 180 - 7 = -7; c4 106 - 60 - 46 = 0;
        # c6 15; walk-in 120 - 25 + 5 - 3 = 97; Bob's credit -12 -> 103.00. Charges 01-31..04-30
        # (90 days): 541.00, 6.01 a day; 103 / (541 / 90) = 17.13
        ("Days in A/R", D("103.00"), D("6.01"), D("17.1"), "days"),
        # first submitted in the range: c1 (clean), c2 (rejected), c3 (a new original for e2)
        ("Clean-claim rate", 1, 3, D("33.3"), "%"),
        # adjudicated: c1, c3 (denied), c4 (reversal left out), c6 (PR only), the unmatched
        # denial -> 2 / 5
        ("Denial rate", 2, 5, D("40.0"), "%"),
        # the visits charged in the range (e1, e2, e4, the walk-in; not c6's of 2025): insurance
        # 90 + 60 (50 reversed) = 150; patients 10 + 7 + 25 - 5 (refund) + 12 (credit applied to
        # e1) = 49 -> 199; charges 541 - contractual 71 = 470 -> 42.34
        ("Net collection rate", D("199.00"), D("470.00"), D("42.3"), "%"),
    ]


def test_the_net_collection_rate_counts_the_visits_of_the_range_only(ctx_for, money):
    """April alone: only c4 (04-05) was charged; payments that came in April for March's visits
    (c1's 90.00, Bob's credit) do not count, so the rate is not pushed over 100 %."""
    [row] = [r for r in run(ctx_for, "kpis", start="2026-04-01", end="2026-04-30") if r[0] == "Net collection rate"]
    # c4: charges 106 - contractual 46 = 60; paid 60 (the 50 was reversed)
    assert row == ("Net collection rate", D("60.00"), D("60.00"), D("100.0"), "%")
    # a range of payments and no charges has no rate (rather than an unbounded one)
    [row] = [r for r in run(ctx_for, "kpis", start="2026-04-10", end="2026-04-12") if r[0] == "Net collection rate"]
    assert row == ("Net collection rate", Z, Z, None, "%")


def test_nothing_paid_because_of_the_deductible_is_no_denial_in_the_reports(ctx_for, money):
    """CO-45 prices the claim and the rest goes to the deductible: paid 0, no denial reason."""
    from hpms.models.receivables import RemitFile

    acme, _ = _payers(ctx_for)
    before = run(ctx_for, "kpis", start="2026-04-01", end="2026-04-30")
    with ctx_for() as ctx:
        f = RemitFile(org_id=ctx.org_id, filename="y.835", sha256="1" * 64, imported_at=utc(2026, 4, 15))
        ctx.session.add(f)
        ctx.session.flush()
        _remittance(
            ctx,
            f.id,
            8,
            acme,
            "2026-04-15",
            [dict(status="1", charge=13500, paid=0, cas=[("CO", "45", 2500), ("PR", "1", 11000)])],
        )
    after = run(ctx_for, "kpis", start="2026-04-01", end="2026-04-30")
    [(_, d0, n0, *_)] = [r for r in before if r[0] == "Denial rate"]
    [(_, d1, n1, *_)] = [r for r in after if r[0] == "Denial rate"]
    assert (d1, n1) == (d0, n0 + 1)  # adjudicated, not denied
    assert all(r[0] != "45" for r in run(ctx_for, "denials-by-carc", start="2026-04-01", end="2026-04-30"))


def test_kpis_with_nothing_have_no_values(ctx_for, money):
    assert run(ctx_for, "kpis", start="2024-01-01", end="2024-01-31") == [
        ("Days in A/R", Z, Z, None, "days"),
        ("Clean-claim rate", 0, 0, None, "%"),
        ("Denial rate", 0, 0, None, "%"),
        ("Net collection rate", Z, Z, None, "%"),
    ]


def test_kpis_for_one_payer(ctx_for, money):
    rows = {r[0]: r[1:] for r in run(ctx_for, "kpis", payer="BETA2", **SPRING)}
    # Beta: c3 180 - 180 = 0 and c6 15 (Kid's 7.00 carries no payer) -> 15.00; charges 180.00
    # in the window: 2.00 a day -> 7.5 days
    assert rows["Days in A/R"] == (D("15.00"), D("2.00"), D("7.5"), "days")
    assert rows["Clean-claim rate"] == (0, 2, D("0.0"), "%")
    assert rows["Denial rate"] == (2, 3, D("66.7"), "%")  # c3, c6, the unmatched one


# ---- provider productivity and the day sheet -----------------------------------------------


def test_provider_productivity_has_collections(ctx_for, money):
    assert run(ctx_for, "provider-productivity", **SPRING) == [
        ("Lee, Bo", 1, 1, 0, 2, D("226.00"), D("80.00")),
        # 107.00 linked to Smith's encounters and Bob's 12.00 credit applied to e1
        ("Smith, Ann MD", 3, 1, 2, 2, D("315.00"), D("119.00")),
    ]
    assert run(ctx_for, "provider-productivity", period="2026-03")[1][-1] == D("17.00")  # the copays


def test_day_sheet_has_the_payments_of_the_day(ctx_for, money):
    assert run(ctx_for, "day-sheet", start="2026-03-10") == [
        ("Lee, Bo", "14:30", "Cover, Nora", money.nora, "Visit", "cancelled", None, None),
        ("Lee, Bo", "", "Cover, Nora", money.nora, "", "encounter", D("120.00"), D("25.00")),
        ("Smith, Ann MD", "12:00", "Jones, Bob", money.bob, "Visit", "completed", D("135.00"), D("10.00")),
        # Kid paid 7.00 toward her 03-20 visit
        ("Smith, Ann MD", "", "", "", "", "payments", None, D("7.00")),
    ]
    # a day with only a refund
    assert run(ctx_for, "day-sheet", start="2026-03-15") == [("Lee, Bo", "", "", "", "", "payments", None, D("-5.00"))]
    # credit applied to an earlier visit
    assert run(ctx_for, "day-sheet", start="2026-04-12") == [
        ("Smith, Ann MD", "", "", "", "", "payments", None, D("12.00"))
    ]


# ---- parameters, permissions, formats ------------------------------------------------------

NEW = ("payments", "adjustments", "adjustments-by-reason", "denials-by-carc", "kpis")


def test_bad_parameters_are_refused(ctx_for, money):
    with pytest.raises(ValidationError) as e:
        run(ctx_for, "payments", by="fortnight", **SPRING)
    assert e.value.field == "by" and "day, week, month, payer, provider, code" in e.value.message
    with pytest.raises(ValidationError) as e:
        run(ctx_for, "adjustments", by="type", **SPRING)
    assert e.value.field == "by"
    with pytest.raises(ValidationError, match="before") as e:
        run(ctx_for, "kpis", start="2026-04-30", end="2026-03-01")
    assert e.value.field == "end"
    with pytest.raises(ValidationError) as e:
        run(ctx_for, "denials-by-carc", period="someday")
    assert e.value.field == "period"
    with pytest.raises(ValidationError, match="not both") as e:
        run(ctx_for, "kpis", period="2026-03", start="2026-03-01")
    assert e.value.field == "period"
    with pytest.raises(NotFoundError) as e:
        run(ctx_for, "payments", payer="NOPE9", **SPRING)
    assert e.value.field == "payer"


def test_new_reports_need_the_revenue_permission(ctx_for, make_user, money):
    make_user("desk", "front_desk")
    for name in NEW:
        with pytest.raises(PermissionDenied):
            run(ctx_for, name, user="desk", **SPRING)


@pytest.mark.parametrize("name", NEW)
def test_every_format(ctx_for, money, tmp_path, name):
    from openpyxl import load_workbook

    from hpms.services import reports
    from hpms.services.reports.export import FORMATS, write

    for fmt in FORMATS:
        path = tmp_path / f"{name}.{fmt}"
        with ctx_for() as ctx:
            rep, params, rows = reports.run(ctx, name, **SPRING)
            n = write(path, fmt, rep, params, rows, io.StringIO())
        assert n > 0 and path.stat().st_size > 0
        if fmt == "json":
            data = json.loads(path.read_text(encoding="utf-8"))
            assert len(data) == n and set(data[0]) == {c.key for c in rep.columns}
        if fmt == "xlsx":
            ws = load_workbook(path).active
            assert [c.value for c in next(ws.iter_rows())] == [c.header for c in rep.columns]
    if name == "kpis":
        text = (tmp_path / "kpis.csv").read_text(encoding="utf-8").splitlines()
        assert text[1] == "Days in A/R,103.00,6.01,17.10,days"


def test_carc_texts():
    assert carc_text("45").startswith("Charge exceeds the fee schedule")
    assert carc_text(" 0253 ") == CARC["253"]
    assert carc_text("999") == "CARC 999" and carc_text("A1") == "CARC A1"
    assert group_text("co") == "Contractual obligation"
    assert len(CARC) >= 40
