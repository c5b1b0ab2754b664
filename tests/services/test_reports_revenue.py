"""The money and productivity reports (services, SQLite and PostgreSQL) on a small practice
built by hand: every expected number below is worked out in the comments, not computed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hpms.errors import PermissionDenied
from hpms.services import lookups
from tests.billing_fixtures import setup_practice
from tests.services.helpers import audit_rows, last_seq, query

NY = "America/New_York"
D = Decimal


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@dataclass
class Data:
    bob: str
    kid: str
    nora: str
    claims: dict[str, int]


def _claim(
    ctx,
    encounter_id: int,
    payer_id: int,
    cents: int,
    events: list[tuple[dt.datetime, str]],
    number: str,
    frequency: str = "1",
) -> int:
    from hpms.models.billing import Claim, ClaimEvent, Encounter

    enc = ctx.session.get(Encounter, encounter_id)
    c = Claim(
        org_id=ctx.org_id,
        encounter_id=encounter_id,
        patient_id=enc.patient_id,
        payer_id=payer_id,
        control_number=number,
        frequency=frequency,
        status=events[-1][1],
        total_cents=cents,
        created_at=events[0][0],
        updated_at=events[-1][0],
    )
    ctx.session.add(c)
    ctx.session.flush()
    for at, status in events:
        ctx.session.add(ClaimEvent(claim_id=c.id, at=at, status=status))
    ctx.session.flush()
    return c.id


def _appointment(ctx, patient: str, provider_id: int, type_id: int, start: dt.datetime, status: str) -> int:
    from hpms.models import Appointment, Patient

    pid = ctx.session.execute(sa.select(Patient.id).where(Patient.mrn == patient)).scalar_one()
    loc = ctx.session.execute(sa.text("SELECT id FROM location WHERE name = 'Main'")).scalar_one()
    a = Appointment(
        org_id=ctx.org_id,
        patient_id=pid,
        provider_id=provider_id,
        location_id=loc,
        type_id=type_id,
        start_utc=start,
        end_utc=start + dt.timedelta(minutes=30),
        block_end_utc=start + dt.timedelta(minutes=30),
        status=status,
    )
    ctx.session.add(a)
    ctx.session.flush()
    return a.id


@pytest.fixture
def data(settings, ctx_for) -> Data:
    """Dr Ann Smith MD and Dr Bo Lee at 'Main' (New York). Default fees: 99213 120.00,
    99214 180.00, 36415 15.00, 93000 45.50."""
    from hpms.services.platform import org
    from hpms.services.scheduling import resources

    p = setup_practice(ctx_for)
    with ctx_for() as ctx:
        org.update_location(ctx, "Main", tz=NY)
        resources.add_provider(ctx, first_name="Bo", last_name="Lee", npi="9876543213")
        visit = resources.add_type(ctx, name="Visit", duration_min=30).id
        smith = lookups.find_provider(ctx, "Smith").id
        lee = lookups.find_provider(ctx, "Lee").id

    def enc(mrn, provider, day, *proc, sign=True):
        from hpms.services.billing import encounters

        with ctx_for() as ctx:
            e = encounters.create(ctx, patient=mrn, provider=provider, date=day, dx="I10", proc=list(proc))
            if sign:
                encounters.sign(ctx, e.id)
        return e.id

    e0 = enc(p.kid, "Smith", "2025-11-01", "36415")  # 15.00, long ago
    e1 = enc(p.bob, "Smith", "2026-03-10", "99213", "36415")  # 135.00
    e2 = enc(p.kid, "Smith", "2026-03-20", "99214")  # 180.00, billed below
    e3 = enc(p.nora, "Lee", "2026-04-05", "93000:x2", "36415")  # 91.00 + 15.00 = 106.00
    enc(p.bob, "Smith", "2026-04-15", "99213", sign=False)  # a draft: no charge
    enc(p.bob, "Smith", "2026-05-02", "99214")  # after the range
    enc(p.nora, "Lee", "2026-03-10", "99213")  # 120.00, a walk-in (no appointment)
    with ctx_for() as ctx:
        s = ctx.session
        s.execute(sa.text("UPDATE encounter SET status = 'billed' WHERE id = :e"), {"e": e2})
        a1 = _appointment(ctx, p.bob, smith, visit, utc(2026, 2, 10, 16), "completed")  # Bob's first visit ever
        a2 = _appointment(ctx, p.bob, smith, visit, utc(2026, 3, 10, 16), "completed")  # 12:00 EDT
        _appointment(ctx, p.kid, smith, visit, utc(2026, 3, 20, 16), "completed")  # Kid's first
        a4 = _appointment(ctx, p.nora, lee, visit, utc(2026, 4, 5, 16), "completed")  # Nora's first
        _appointment(ctx, p.nora, smith, visit, utc(2026, 4, 15, 16), "completed")
        _appointment(ctx, p.kid, lee, visit, utc(2026, 4, 16, 16), "no_show")
        _appointment(ctx, p.bob, lee, visit, utc(2026, 5, 3, 16), "completed")  # after the range
        _appointment(ctx, p.nora, lee, visit, utc(2026, 3, 10, 18, 30), "cancelled")  # 14:30 EDT
        s.execute(sa.text("UPDATE encounter SET appointment_id = :a WHERE id = :e"), {"a": a2, "e": e1})
        s.execute(sa.text("UPDATE encounter SET appointment_id = :a WHERE id = :e"), {"a": a4, "e": e3})
        assert a1
        claims = {
            "c1": _claim(
                ctx,
                e1,
                p.acme,
                13500,
                [
                    (utc(2026, 3, 12, 15), "ready"),
                    (utc(2026, 3, 13, 15), "submitted"),
                    (utc(2026, 3, 15, 15), "accepted"),
                    (utc(2026, 5, 10, 15), "paid"),
                ],
                "000000001",
            ),
            "c2": _claim(
                ctx,
                e2,
                p.beta,
                18000,
                [
                    (utc(2026, 3, 22, 15), "ready"),
                    (utc(2026, 3, 23, 15), "submitted"),
                    (utc(2026, 3, 24, 15), "rejected"),
                ],
                "000000002",
            ),
            # the new original after the rejection
            "c3": _claim(
                ctx,
                e2,
                p.beta,
                18000,
                [
                    (utc(2026, 3, 25, 15), "ready"),
                    (utc(2026, 3, 26, 15), "submitted"),
                    (utc(2026, 4, 20, 15), "denied"),
                ],
                "000000003",
            ),
            "c4": _claim(ctx, e3, p.acme, 10600, [(utc(2026, 4, 6, 15), "ready")], "000000004"),
            "c6": _claim(
                ctx,
                e0,
                p.beta,
                1500,
                [(utc(2025, 11, 3, 15), "ready"), (utc(2025, 11, 4, 15), "submitted")],
                "000000006",
            ),
        }
    return Data(bob=p.bob, kid=p.kid, nora=p.nora, claims=claims)


def run(ctx_for, name, user=None, **kw) -> list[tuple]:
    from hpms.services import reports

    with ctx_for(user) as ctx:
        _, _, rows = reports.run(ctx, name, **kw)
        return list(rows)


SPRING = dict(start="2026-03-01", end="2026-04-30")


def test_charges_by_month_and_provider(ctx_for, data):
    rows = run(ctx_for, "charges", **SPRING)
    assert rows == [
        # March, Lee: the walk-in 99213 (signed)
        (dt.date(2026, 3, 1), "Lee, Bo", 1, 0, 1, D("120.00")),
        # March, Smith: e1 signed (99213 + 36415 = 135.00), e2 billed (99214 = 180.00)
        (dt.date(2026, 3, 1), "Smith, Ann MD", 1, 1, 3, D("315.00")),
        # April, Lee: 93000 x2 (91.00) + 36415 (15.00); Smith's April encounter is a draft
        (dt.date(2026, 4, 1), "Lee, Bo", 1, 0, 2, D("106.00")),
    ]
    assert run(ctx_for, "charges", provider="Lee", **SPRING) == [
        (dt.date(2026, 3, 1), "Lee, Bo", 1, 0, 1, D("120.00")),
        (dt.date(2026, 4, 1), "Lee, Bo", 1, 0, 2, D("106.00")),
    ]


def test_charges_by_code(ctx_for, data):
    assert run(ctx_for, "charges-by-code", **SPRING) == [
        ("36415", 2, 2, D("30.00")),  # e1 and e3
        ("93000", 2, 1, D("91.00")),  # one line of 2 units at 45.50
        ("99213", 2, 2, D("240.00")),  # e1 and the walk-in
        ("99214", 1, 1, D("180.00")),  # e2 (May's is out of range)
    ]


def test_claims_summary(ctx_for, data):
    assert run(ctx_for, "claims-summary", **SPRING) == [
        # c1 (submitted, accepted, later paid) and c4 (never sent): 135.00 + 106.00; c1 first
        # submitted in the range and clean
        ("Acme Health", 2, D("241.00"), 1, 1, 0, 0, 1, 1, 100.0),
        # c2 rejected, c3 denied (so accepted first); first submitted in the range: c2 (rejected)
        # and c3 (a new original for the same visit): neither is clean
        ("Beta Care", 2, D("360.00"), 2, 1, 1, 1, 2, 0, 0.0),
    ]
    assert run(ctx_for, "claims-summary", payer="BETA2", **SPRING) == [
        ("Beta Care", 2, D("360.00"), 2, 1, 1, 1, 2, 0, 0.0)
    ]
    # a range with only unsent claims: no rate
    assert run(ctx_for, "claims-summary", start="2026-04-01", end="2026-04-30") == [
        ("Acme Health", 1, D("106.00"), 0, 0, 0, 0, 0, 0, None)
    ]


def test_the_claims_summary_and_the_kpis_agree_on_the_clean_claim_rate(ctx_for, data):
    """One definition: the summary's clean and first-submitted columns add up to the KPI's
    numerator and denominator, for the whole range and for one payer."""
    for extra in ({}, {"payer": "BETA2"}, {"payer": "ACME1"}):
        rows = run(ctx_for, "claims-summary", **SPRING, **extra)
        [kpi] = [r for r in run(ctx_for, "kpis", **SPRING, **extra) if r[0] == "Clean-claim rate"]
        assert (kpi[1], kpi[2]) == (sum(r[8] for r in rows), sum(r[7] for r in rows))
        if len(rows) == 1:
            assert kpi[3] == D(str(rows[0][9])).quantize(D("0.1"))


Z = D("0.00")


def test_ar_aging_buckets_by_service_date(ctx_for, data):
    # as of 04-30: c1 accepted, 03-10 -> 51 days; c4 ready, 04-05 -> 25 days; c2 superseded by c3
    # (denied, 03-20 -> 41 days); c6 submitted, 2025-11-01 -> 180 days
    assert run(ctx_for, "ar-aging", **SPRING) == [
        ("Acme Health", 2, D("106.00"), D("135.00"), Z, Z, Z, D("241.00")),
        ("Beta Care", 2, Z, D("180.00"), Z, Z, D("15.00"), D("195.00")),
    ]
    # as of 03-31: c1 21 days, c3 11 days (c4 does not exist yet)
    assert run(ctx_for, "ar-aging", as_of="2026-03-31", **SPRING) == [
        ("Acme Health", 1, D("135.00"), Z, Z, Z, Z, D("135.00")),
        ("Beta Care", 2, D("180.00"), Z, Z, Z, D("15.00"), D("195.00")),
    ]
    # as of 05-31: c1 paid on 05-10; c4 56 days; c3 72 days
    assert run(ctx_for, "ar-aging", as_of="2026-05-31", **SPRING) == [
        ("Acme Health", 1, Z, D("106.00"), Z, Z, Z, D("106.00")),
        ("Beta Care", 2, Z, Z, D("180.00"), Z, D("15.00"), D("195.00")),
    ]


def test_ar_aging_of_a_past_day_does_not_change_afterwards(settings, ctx_for, data):
    before = run(ctx_for, "ar-aging", as_of="2026-04-30", **SPRING)
    with ctx_for() as ctx:
        from hpms.models.billing import ClaimEvent

        c4 = data.claims["c4"]
        ctx.session.execute(sa.text("UPDATE claim SET status = 'void' WHERE id = :c"), {"c": c4})
        ctx.session.add(ClaimEvent(claim_id=c4, at=utc(2026, 6, 1, 12), status="void"))
    assert run(ctx_for, "ar-aging", as_of="2026-04-30", **SPRING) == before
    assert run(ctx_for, "ar-aging", as_of="2026-06-02", **SPRING)[0][0] == "Beta Care"  # Acme has nothing left


def test_provider_productivity(ctx_for, data):
    assert run(ctx_for, "provider-productivity", **SPRING) == [
        # Lee: Nora's first visit (new); encounters e3 and the walk-in: 106.00 + 120.00
        ("Lee, Bo", 1, 1, 0, 2, D("226.00"), Z),
        # Smith: Bob (seen in February: established), Kid (first: new), Nora (saw Lee first);
        # encounters e1 and e2 (the April draft does not count)
        ("Smith, Ann MD", 3, 1, 2, 2, D("315.00"), Z),
    ]


def test_day_sheet_lists_the_day_per_provider_and_is_audited(settings, ctx_for, data):
    seq = last_seq(settings)
    rows = run(ctx_for, "day-sheet", start="2026-03-10")
    assert rows == [
        ("Lee, Bo", "14:30", "Cover, Nora", data.nora, "Visit", "cancelled", None, None),
        ("Lee, Bo", "", "Cover, Nora", data.nora, "", "encounter", D("120.00"), None),
        ("Smith, Ann MD", "12:00", "Jones, Bob", data.bob, "Visit", "completed", D("135.00"), None),
    ]
    events = [e for e in audit_rows(settings, seq) if e["entity"] == "report"]
    assert [e["action"] for e in events] == ["read"]
    named = query(settings, "SELECT id FROM patient WHERE mrn IN (:a, :b)", a=data.nora, b=data.bob)
    assert events[0]["patient_ids_list"] == sorted(r["id"] for r in named)
    assert events[0]["detail"].startswith("day-sheet 2026-03-10..") and events[0]["detail"].endswith(", 3 rows")


def test_appointments_list_one_row_per_appointment(ctx_for, data):
    rows = run(ctx_for, "appointments-list", start="2026-03-10", end="2026-03-20")
    assert [(r[0], r[1], r[3], r[4], r[7]) for r in rows] == [
        (dt.date(2026, 3, 10), "12:00", "Smith, Ann", "Jones, Bob", "completed"),
        (dt.date(2026, 3, 10), "14:30", "Lee, Bo", "Cover, Nora", "cancelled"),
        (dt.date(2026, 3, 20), "12:00", "Smith, Ann", "Jones, Kid", "completed"),
    ]
    assert {r[2] for r in rows} == {"Main"} and {r[6] for r in rows} == {"Visit"}


def test_money_reports_need_the_revenue_permission(ctx_for, make_user, data):
    make_user("desk", "front_desk")
    for name in ("charges", "charges-by-code", "claims-summary", "ar-aging", "provider-productivity"):
        with pytest.raises(PermissionDenied):
            run(ctx_for, name, user="desk", **SPRING)
    assert run(ctx_for, "day-sheet", user="desk", start="2026-03-10")
