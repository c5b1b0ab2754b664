"""The money ledger: sign rules per kind, links, reversals, append-only rows on both backends,
and a property test that balances are always the sum of the entries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from hpms.db import get_engine
from hpms.errors import ConflictError, NotFoundError, PermissionDenied, ValidationError
from tests.services.helpers import audit_rows, last_seq, query

DOS = dt.date(2026, 6, 1)


def _world(ctx, tag: str = "") -> dict:
    """Two patients, a payer, an encounter and a claim with two lines per patient (rows written
    directly: the ledger only needs them to exist)."""
    from hpms.models import Claim, ClaimLine, Encounter, Payer, Provider
    from hpms.services.people import patients

    s = ctx.session
    payer = Payer(org_id=ctx.org_id, name=f"Acme {tag}", payer_id=f"ACME{tag}")
    other = Payer(org_id=ctx.org_id, name=f"Beta {tag}", payer_id=f"BETA{tag}")
    prov = Provider(org_id=ctx.org_id, first_name="Ann", last_name="Smith")
    s.add_all([payer, other, prov])
    s.flush()
    loc = s.execute(sa.text("SELECT id FROM location")).scalar()
    out = {"payer": payer.id, "other_payer": other.id, "patients": []}
    for i, name in enumerate(("Ida", "Otis")):
        p = patients.register(ctx, first_name=name, last_name=f"Quill{tag}", dob="1980-01-01")
        enc = Encounter(
            org_id=ctx.org_id,
            patient_id=p.id,
            provider_id=prov.id,
            location_id=loc,
            service_date=DOS,
            status="billed",
            total_cents=20000,
        )
        s.add(enc)
        s.flush()
        claim = Claim(
            org_id=ctx.org_id,
            encounter_id=enc.id,
            patient_id=p.id,
            payer_id=payer.id,
            control_number=f"C{tag}{i}",
            status="submitted",
            total_cents=20000,
        )
        s.add(claim)
        s.flush()
        lines = [
            ClaimLine(claim_id=claim.id, seq=n, code="99213", pointers="1", charge_cents=10000, service_date=DOS)
            for n in (1, 2)
        ]
        s.add_all(lines)
        s.flush()
        out["patients"].append(
            {"id": p.id, "mrn": p.mrn, "encounter": enc.id, "claim": claim.id, "lines": [ln.id for ln in lines]}
        )
    return out


@pytest.fixture
def world(ctx_for):
    with ctx_for() as ctx:
        return _world(ctx)


def test_each_kind_posts_with_its_sign(settings, ctx_for, world):
    from hpms.services.payments import ledger

    a = world["patients"][0]
    line = a["lines"][0]
    with ctx_for() as ctx:
        ledger.post(ctx, "charge", Decimal("100.00"), patient=a["mrn"], claim_line=line)
        ledger.post(ctx, "insurance_payment", Decimal("-60.00"), patient=a["mrn"], claim_line=line)
        ledger.post(ctx, "contractual_adjustment", Decimal("-20.00"), patient=a["mrn"], claim_line=line)
        ledger.post(ctx, "transfer_to_patient", Decimal("15.00"), patient=a["mrn"], claim_line=line)
        ledger.post(ctx, "patient_payment", Decimal("-20.00"), patient=a["mrn"])
        ledger.post(ctx, "refund", Decimal("5.00"), patient=a["mrn"])
        ledger.post(ctx, "other_adjustment", Decimal("-1.50"), patient=a["mrn"], claim=a["claim"])
        ledger.post(ctx, "write_off", "-3.50", patient=a["mrn"], encounter=a["encounter"])
    with ctx_for() as ctx:
        assert ledger.balance(ctx, claim_line=line) == Decimal("20.00")  # the transfer nets to zero
        assert ledger.balance(ctx, claim_line=line, responsibility="insurance") == Decimal("5.00")
        assert ledger.balance(ctx, claim_line=line, responsibility="patient") == Decimal("15.00")
        assert ledger.balance(ctx, patient=a["mrn"]) == Decimal("0.00")
        assert ledger.balance(ctx, claim=a["claim"]) == Decimal("18.50")
        assert ledger.balance(ctx, encounter=a["encounter"]) == Decimal("15.00")
        assert ledger.balance(ctx, payer=world["payer"]) == Decimal("18.50")
        assert ledger.balance(ctx, patient=world["patients"][1]["mrn"]) == Decimal("0.00")
    rows = query(
        settings,
        "SELECT kind, amount_cents, responsibility, claim_id, encounter_id, payer_id, pair_id "
        "FROM ledger_entry ORDER BY id",
    )
    assert [(r["kind"], r["amount_cents"], r["responsibility"]) for r in rows][:5] == [
        ("charge", 10000, "insurance"),
        ("insurance_payment", -6000, "insurance"),
        ("contractual_adjustment", -2000, "insurance"),
        ("transfer_to_patient", -1500, "insurance"),
        ("transfer_to_patient", 1500, "patient"),
    ]
    assert rows[0]["claim_id"] == a["claim"] and rows[0]["encounter_id"] == a["encounter"]  # implied links
    assert rows[0]["payer_id"] == world["payer"]
    assert rows[4]["pair_id"] is not None
    assert rows[5]["responsibility"] == "patient" and rows[5]["payer_id"] is None


@pytest.mark.parametrize(
    ("kind", "amount"),
    [
        ("charge", "-1.00"),
        ("insurance_payment", "1.00"),
        ("contractual_adjustment", "2.00"),
        ("other_adjustment", "3.00"),
        ("patient_payment", "4.00"),
        ("refund", "-5.00"),
        ("write_off", "6.00"),
        ("transfer_to_patient", "-7.00"),
        ("charge", "0"),
        ("charge", "1.001"),
        ("charge", 1.5),
        ("charge", "abc"),
        ("bogus", "1.00"),
    ],
)
def test_sign_rules_and_bad_amounts_are_refused(settings, ctx_for, world, kind, amount):
    from hpms.services.payments import ledger

    a = world["patients"][0]
    with pytest.raises(ValidationError):
        with ctx_for() as ctx:
            ledger.post(ctx, kind, amount, patient=a["mrn"], claim=a["claim"])
    assert query(settings, "SELECT count(*) AS n FROM ledger_entry") == [{"n": 0}]


def test_links_must_agree(settings, ctx_for, world):
    from hpms.services.payments import ledger

    a, b = world["patients"]
    with ctx_for() as ctx:
        with pytest.raises(ValidationError):
            ledger.post(ctx, "charge", "1.00", patient=a["mrn"], claim=b["claim"])
        with pytest.raises(ValidationError):
            ledger.post(ctx, "charge", "1.00", patient=a["mrn"], encounter=b["encounter"])
        with pytest.raises(ValidationError):
            ledger.post(ctx, "charge", "1.00", patient=a["mrn"], claim=a["claim"], claim_line=b["lines"][0])
        with pytest.raises(ValidationError):
            ledger.post(
                ctx, "insurance_payment", "-1.00", patient=a["mrn"], claim=a["claim"], payer=world["other_payer"]
            )
        with pytest.raises(ValidationError):  # an insurance payment needs a payer
            ledger.post(ctx, "insurance_payment", "-1.00", patient=a["mrn"])
        with pytest.raises(ValidationError):
            ledger.post(ctx, "patient_payment", "-1.00", patient=a["mrn"], responsibility="insurance")
        with pytest.raises(NotFoundError):
            ledger.post(ctx, "charge", "1.00", patient=a["mrn"], claim=999999)
        with pytest.raises(NotFoundError):
            ledger.post(ctx, "charge", "1.00", patient="no-such-mrn")
    assert query(settings, "SELECT count(*) AS n FROM ledger_entry") == [{"n": 0}]


def test_reversal_cancels_once_and_a_reversal_is_not_reversed(settings, ctx_for, world):
    from hpms.services.payments import ledger

    a = world["patients"][0]
    with ctx_for() as ctx:
        charge = ledger.post(ctx, "charge", "80.00", patient=a["mrn"], claim_line=a["lines"][0])
        paid = ledger.post(ctx, "insurance_payment", "-50.00", patient=a["mrn"], claim=a["claim"])
    seq = last_seq(settings)
    with ctx_for() as ctx:
        rev = ledger.reverse(ctx, paid, "posted to the wrong claim")
        assert ledger.balance(ctx, claim=a["claim"]) == Decimal("80.00")
    row = query(settings, "SELECT kind, amount_cents, reverses_id, reference FROM ledger_entry WHERE id = :i", i=rev)
    assert row == [
        {
            "kind": "insurance_payment",
            "amount_cents": 5000,
            "reverses_id": paid,
            "reference": "posted to the wrong claim",
        }
    ]
    events = audit_rows(settings, seq)
    assert [(e["action"], e["entity"], e["patient_id"]) for e in events] == [("reverse", "ledger_entry", a["id"])]
    for target in (paid, rev):
        with pytest.raises(ConflictError):
            with ctx_for() as ctx:
                ledger.reverse(ctx, target, "again")
    with pytest.raises(ValidationError):
        with ctx_for() as ctx:
            ledger.reverse(ctx, charge, " ")
    with pytest.raises(NotFoundError):
        with ctx_for() as ctx:
            ledger.reverse(ctx, 999999, "x")
    assert query(settings, "SELECT count(*) AS n FROM ledger_entry") == [{"n": 3}]


def test_reversing_a_transfer_reverses_both_sides(settings, ctx_for, world):
    from hpms.services.payments import ledger

    a = world["patients"][0]
    with ctx_for() as ctx:
        ledger.post(ctx, "charge", "100.00", patient=a["mrn"], claim=a["claim"])
        moved = ledger.post(ctx, "transfer_to_patient", "30.00", patient=a["mrn"], claim=a["claim"])
        assert ledger.balance(ctx, patient=a["mrn"], responsibility="patient") == Decimal("30.00")
    with ctx_for() as ctx:
        ledger.reverse(ctx, moved - 1, "deductible met")  # the insurance side: its pair goes too
        assert ledger.balance(ctx, patient=a["mrn"], responsibility="patient") == Decimal("0.00")
        assert ledger.balance(ctx, patient=a["mrn"], responsibility="insurance") == Decimal("100.00")
    with pytest.raises(ConflictError):
        with ctx_for() as ctx:
            ledger.reverse(ctx, moved, "again")


def test_audit_events_carry_the_patient(settings, ctx_for, world):
    from hpms.services.payments import ledger

    a = world["patients"][0]
    seq = last_seq(settings)
    with ctx_for() as ctx:
        entry = ledger.post(ctx, "charge", "10.00", patient=a["mrn"])
    events = audit_rows(settings, seq)
    assert [(e["action"], e["entity"], e["entity_id"], e["patient_id"]) for e in events] == [
        ("create", "ledger_entry", str(entry), a["id"])
    ]


def test_permissions(settings, ctx_for, world, make_user):
    from hpms.services.payments import ledger

    a = world["patients"][0]
    make_user("fran", "front_desk")
    make_user("pat", "provider")
    with pytest.raises(PermissionDenied):
        with ctx_for("fran") as ctx:
            ledger.post(ctx, "charge", "10.00", patient=a["mrn"])
    with ctx_for("fran") as ctx:
        assert ledger.balance(ctx, patient=a["mrn"]) == Decimal("0.00")
    with pytest.raises(PermissionDenied):
        with ctx_for("pat") as ctx:
            ledger.balance(ctx, patient=a["mrn"])


def test_as_of_uses_the_effective_date(settings, ctx_for, world):
    from hpms.services.payments import ledger

    a = world["patients"][0]
    with ctx_for() as ctx:
        ledger.post(ctx, "charge", "10.00", patient=a["mrn"], effective_date="2026-01-10")
        ledger.post(ctx, "patient_payment", "-4.00", patient=a["mrn"], effective_date=dt.date(2026, 2, 10))
        assert ledger.balance(ctx, patient=a["mrn"], as_of="2026-01-31") == Decimal("10.00")
        assert ledger.balance(ctx, patient=a["mrn"], as_of="2026-02-10") == Decimal("6.00")


@pytest.mark.parametrize("sql", ["UPDATE ledger_entry SET amount_cents = 1", "DELETE FROM ledger_entry"])
def test_the_database_refuses_edits(settings, ctx_for, world, sql):
    from hpms.services.payments import ledger

    a = world["patients"][0]
    with ctx_for() as ctx:
        ledger.post(ctx, "charge", "10.00", patient=a["mrn"])
    with pytest.raises(sa.exc.DatabaseError) as err:
        with get_engine(settings).begin() as conn:
            conn.execute(sa.text(sql))
    assert "append-only" in str(err.value)
    assert query(settings, "SELECT amount_cents FROM ledger_entry") == [{"amount_cents": 1000}]


# --- property: balances are the sum of the entries, whatever the sequence of postings ---

KIND_SIGNS = {
    "charge": 1,
    "insurance_payment": -1,
    "contractual_adjustment": -1,
    "other_adjustment": -1,
    "patient_payment": -1,
    "refund": 1,
    "write_off": -1,
    "transfer_to_patient": 1,
}

step = st.one_of(
    st.tuples(
        st.just("post"),
        st.sampled_from(sorted(KIND_SIGNS)),
        st.integers(1, 50_000),
        st.integers(0, 1),
        st.sampled_from(["patient", "claim", "line0", "line1"]),
    ),
    st.tuples(st.just("reverse"), st.integers(0, 1000)),
)


class _Rollback(Exception):
    pass


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=12))
def test_balances_always_equal_the_sum_of_the_entries(settings, ctx_for, steps):
    from hpms.models.ledger import LedgerEntry
    from hpms.services.payments import ledger

    with pytest.raises(_Rollback):  # every example starts from the same empty ledger
        with ctx_for() as ctx:
            w = _world(ctx, "X")
            entries: dict[int, dict] = {}  # the model: id -> row, kept in Python
            reversed_ids: set[int] = set()
            for s in steps:
                if s[0] == "post":
                    _, kind, cents, who, where = s
                    p = w["patients"][who]
                    link = {
                        "patient": {},
                        "claim": {"claim": p["claim"]},
                        "line0": {"claim_line": p["lines"][0]},
                        "line1": {"claim_line": p["lines"][1]},
                    }[where]
                    if (
                        kind in ("insurance_payment", "contractual_adjustment", "transfer_to_patient")
                        and where == "patient"
                    ):
                        link = {"payer": w["payer"]}
                    amount = Decimal(KIND_SIGNS[kind] * cents).scaleb(-2)
                    ledger.post(ctx, kind, amount, patient=p["mrn"], **link)
                elif entries:
                    ids = sorted(entries)
                    target = ids[s[1] % len(ids)]
                    row = entries[target]
                    if (
                        row["reverses_id"] is not None
                        or target in reversed_ids
                        or (row["kind"] == "transfer_to_patient" and row["partner"] in reversed_ids)
                    ):
                        with pytest.raises(ConflictError):
                            ledger.reverse(ctx, target, "property")
                    else:
                        ledger.reverse(ctx, target, "property")
                # reload the model from what was written (the rows are immutable: only new ones appear)
                for e in ctx.session.execute(
                    sa.select(LedgerEntry).where(LedgerEntry.id.notin_(entries or [0]))
                ).scalars():
                    entries[e.id] = {
                        "kind": e.kind,
                        "cents": e.amount_cents,
                        "patient": e.patient_id,
                        "claim": e.claim_id,
                        "line": e.claim_line_id,
                        "encounter": e.encounter_id,
                        "payer": e.payer_id,
                        "resp": e.responsibility,
                        "reverses_id": e.reverses_id,
                        "partner": e.pair_id,
                    }
                    if e.reverses_id is not None:
                        reversed_ids.add(e.reverses_id)
                for eid, row in entries.items():  # a transfer's two sides know each other
                    if row["partner"] is not None:
                        entries[row["partner"]]["partner"] = eid

                def total(**match) -> Decimal:
                    cents = sum(r["cents"] for r in entries.values() if all(r[k] == v for k, v in match.items()))
                    return Decimal(cents).scaleb(-2)

                for p in w["patients"]:
                    assert ledger.balance(ctx, patient=p["mrn"]) == total(patient=p["id"])
                    assert ledger.balance(ctx, encounter=p["encounter"]) == total(encounter=p["encounter"])
                    assert ledger.balance(ctx, claim=p["claim"]) == total(claim=p["claim"])
                    for line in p["lines"]:
                        assert ledger.balance(ctx, claim_line=line) == total(line=line)
                    for resp in ("insurance", "patient"):
                        assert ledger.balance(ctx, patient=p["mrn"], responsibility=resp) == total(
                            patient=p["id"], resp=resp
                        )
                assert ledger.balance(ctx, payer=w["payer"]) == total(payer=w["payer"])
                # no drift: the whole ledger is the sum of the patients', and of what was posted
                # minus what was reversed
                grand = ledger.balance(ctx)
                assert grand == sum((ledger.balance(ctx, patient=p["mrn"]) for p in w["patients"]), Decimal("0.00"))
                live = sum(r["cents"] for i, r in entries.items() if r["reverses_id"] is None and i not in reversed_ids)
                assert grand == Decimal(live).scaleb(-2)
                assert grand.as_tuple().exponent == -2
            raise _Rollback
