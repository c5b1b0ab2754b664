"""Patient payments: recording (for a visit or as credit), oldest-visit-first application,
credit applied after a later transfer, refunds limited to the credit, bad input that writes
nothing, permissions, audit, and the patient ledger and balance."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from hpms.errors import Action, NotFoundError, PermissionDenied, ValidationError
from tests.services import accounts
from tests.services.conftest import fixed_clock
from tests.services.helpers import audit_rows, counts, last_seq, query

D = dt.date


@pytest.fixture
def acct(ctx_for):
    """Ida owes 20.00 on each of three visits (March, April, May); Otis has one visit owing 30.00."""
    payer = accounts.setup(ctx_for)
    ida = accounts.patient(ctx_for, "Ida", "Quill")
    otis = accounts.patient(ctx_for, "Otis", "Reed")
    visits = [
        accounts.visit(ctx_for, ida, payer, day, paid="60.00", adjusted="20.00", to_patient="20.00")
        for day in (D(2026, 5, 1), D(2026, 3, 1), D(2026, 4, 1))
    ]  # created out of date order on purpose
    other = accounts.visit(ctx_for, otis, payer, D(2026, 2, 1), paid="50.00", adjusted="20.00", to_patient="30.00")
    return {
        "payer": payer,
        "ida": ida,
        "otis": otis,
        "may": visits[0],
        "march": visits[1],
        "april": visits[2],
        "otis_visit": other,
    }


def _applied(settings, payment_id: int) -> list[tuple[int, int]]:
    return [
        (r["encounter_id"], r["amount_cents"])
        for r in query(
            settings,
            "SELECT encounter_id, amount_cents FROM payment_application WHERE payment_entry_id = :p ORDER BY id",
            p=payment_id,
        )
    ]


def test_credit_pays_the_oldest_visits_first(settings, ctx_for, acct):
    from hpms.services.payments import payments

    with ctx_for(clock=fixed_clock) as ctx:
        first = payments.record(ctx, patient=acct["ida"], amount="50.00", method="cash")
    assert first.kind == "patient_payment" and first.amount == Decimal("50.00") and first.method == "cash"
    assert _applied(settings, first.id) == [(acct["march"], 2000), (acct["april"], 2000), (acct["may"], 1000)]
    assert first.unapplied == Decimal("0.00") and first.encounter_id is None
    assert first.balance == Decimal("10.00") and first.credit == Decimal("0.00")
    with ctx_for(clock=fixed_clock) as ctx:
        second = payments.record(ctx, patient=acct["ida"], amount="30", method="card", reference="RCPT-9")
    assert _applied(settings, second.id) == [(acct["may"], 1000)]
    assert second.unapplied == Decimal("20.00")
    assert (second.balance, second.credit) == (Decimal("-20.00"), Decimal("20.00"))
    row = query(settings, "SELECT * FROM ledger_entry WHERE id = :i", i=second.id)[0]
    assert (row["kind"], row["amount_cents"], row["responsibility"], row["method"], row["reference"]) == (
        "patient_payment",
        -3000,
        "patient",
        "card",
        "RCPT-9",
    )
    with ctx_for(clock=fixed_clock) as ctx:
        assert payments.credit(ctx, acct["otis"]).balance == Decimal("30.00")  # the other patient is untouched


def test_credit_pays_a_later_transfer(settings, ctx_for, acct):
    from hpms.services.payments import payments

    with ctx_for(clock=fixed_clock) as ctx:
        pay = payments.record(ctx, patient=acct["ida"], amount="75.00", method="check", reference="1042")
    assert pay.credit == Decimal("15.00")
    june = accounts.visit(ctx_for, acct["ida"], acct["payer"], D(2026, 6, 1), paid="80.00", adjusted="20.00")
    accounts.transfer(ctx_for, acct["ida"], june, "12.00", D(2026, 6, 10))
    with ctx_for(clock=fixed_clock) as ctx:
        made = payments.apply_credit(ctx, acct["ida"])
    assert [(a.encounter_id, a.amount) for a in made] == [(june, Decimal("12.00"))]
    with ctx_for(clock=fixed_clock) as ctx:
        assert payments.apply_credit(ctx, acct["ida"]) == []  # nothing open left: a rerun applies nothing
        c = payments.credit(ctx, acct["ida"])
    assert (c.balance, c.credit) == (Decimal("-3.00"), Decimal("3.00"))
    accounts.transfer(ctx_for, acct["ida"], june, "5.00", D(2026, 6, 12))
    with ctx_for(clock=fixed_clock) as ctx:
        made = payments._apply_credit(ctx, payments._patient(ctx, acct["ida"]).id)  # as the 835 posting calls it
    assert [(a.encounter_id, a.amount) for a in made] == [(june, Decimal("3.00"))]
    assert _applied(settings, pay.id)[-2:] == [(june, 1200), (june, 300)]


def test_copay_for_a_visit_is_applied_to_it_whole(settings, ctx_for, acct):
    from hpms.services.payments import payments

    june = accounts.visit(
        ctx_for, acct["ida"], acct["payer"], D(2026, 6, 14)
    )  # billed, nothing owed by the patient yet
    with ctx_for(clock=fixed_clock) as ctx:
        copay = payments.record(ctx, patient=acct["ida"], amount="25.00", method="card", apply_to=str(june))
    assert copay.encounter_id == june and _applied(settings, copay.id) == [(june, 2500)]
    assert [(a.encounter_id, a.amount) for a in copay.applied] == [(june, Decimal("25.00"))]
    assert copay.credit == Decimal("0.00") and copay.balance == Decimal("35.00")  # 60.00 owed less the copay
    accounts.transfer(ctx_for, acct["ida"], june, "25.00", D(2026, 6, 15))  # the payer says: copay 25.00
    with ctx_for(clock=fixed_clock) as ctx:
        assert payments.apply_credit(ctx, acct["ida"]) == []
        assert payments.credit(ctx, acct["ida"]).balance == Decimal("60.00")
        opens = {v.encounter_id: v.open_cents for v in payments.open_visits(ctx.session, ctx.org_id, copay.patient_id)}
    assert opens[june] == 0 and opens[acct["march"]] == 2000


def test_refund_is_limited_to_the_credit(settings, ctx_for, acct):
    from hpms.services.payments import payments

    with ctx_for(clock=fixed_clock) as ctx:
        payments.record(ctx, patient=acct["ida"], amount="65.00", method="cash")
    before = counts(settings, "ledger_entry", "payment_application")
    with pytest.raises(ValidationError) as err, ctx_for(clock=fixed_clock) as ctx:
        payments.refund(ctx, patient=acct["ida"], amount="5.01", method="check")
    assert err.value.field == "amount" and "5.00" in err.value.message
    assert counts(settings, "ledger_entry", "payment_application") == before
    with ctx_for(clock=fixed_clock) as ctx:
        r = payments.refund(ctx, patient=acct["ida"], amount="5.00", method="check", reference="CHK 77")
    assert (r.kind, r.amount, r.credit, r.balance) == ("refund", Decimal("5.00"), Decimal("0.00"), Decimal("0.00"))
    row = query(settings, "SELECT amount_cents, responsibility, method FROM ledger_entry WHERE id = :i", i=r.id)[0]
    assert row == {"amount_cents": 500, "responsibility": "patient", "method": "check"}
    with pytest.raises(ValidationError), ctx_for(clock=fixed_clock) as ctx:
        payments.refund(ctx, patient=acct["ida"], amount="0.01", method="cash")


@pytest.mark.parametrize(
    "kw, field, words",
    [
        ({"amount": "-5.00"}, "amount", "negative"),
        ({"amount": "0"}, "amount", "zero"),
        ({"amount": "0.00"}, "amount", "zero"),
        ({"amount": "ten"}, "amount", "not an amount"),
        ({"amount": "1.005"}, "amount", "two decimal"),
        ({"amount": ""}, "amount", "required"),
        ({"method": "bitcoin"}, "method", "unknown method"),
        ({"method": None}, "method", "required"),
        ({"apply_to": "abc"}, "apply_to", "not an encounter id"),
        ({"apply_to": "OTHER"}, "apply_to", "is not patient"),
        ({"date": "2026-13-01"}, "date", "not a date"),
        ({"date": "2026-07-01"}, "date", "future"),
        ({"reference": "x" * 201}, "reference", "longer"),
    ],
)
def test_bad_payment_input_writes_nothing(settings, ctx_for, acct, kw, field, words):
    from hpms.services.payments import payments

    args = {"patient": acct["ida"], "amount": "10.00", "method": "cash"}
    args.update(kw)
    if args.get("apply_to") == "OTHER":
        args["apply_to"] = str(acct["otis_visit"])
    before = counts(settings, "ledger_entry", "payment_application", "audit_event")
    with pytest.raises(ValidationError) as err, ctx_for(clock=fixed_clock) as ctx:
        payments.record(ctx, **args)
    assert err.value.field == field and words in err.value.message, err.value
    assert counts(settings, "ledger_entry", "payment_application", "audit_event") == before


def test_unknown_patient_or_encounter(settings, ctx_for, acct):
    from hpms.services.payments import payments

    before = counts(settings, "ledger_entry", "payment_application")
    with pytest.raises(NotFoundError, match="no patient") as err, ctx_for(clock=fixed_clock) as ctx:
        payments.record(ctx, patient="9999999", amount="10.00", method="cash")
    assert err.value.field == "patient"
    with pytest.raises(NotFoundError, match="no encounter 99999") as err, ctx_for(clock=fixed_clock) as ctx:
        payments.record(ctx, patient=acct["ida"], amount="10.00", method="cash", apply_to="99999")
    assert err.value.field == "apply_to"
    assert err.value.action == Action("encounters", "list", give=(("patient", acct["ida"]),))
    with pytest.raises(NotFoundError) as err, ctx_for(clock=fixed_clock) as ctx:
        payments.refund(ctx, patient="nobody", amount="1.00", method="cash")
    assert err.value.field == "patient"
    assert counts(settings, "ledger_entry", "payment_application") == before


def test_permissions(settings, ctx_for, acct, make_user):
    from hpms.services.payments import payments

    make_user("fd", "front_desk")
    make_user("doc", "provider")
    with ctx_for("fd", clock=fixed_clock) as ctx:
        payments.record(ctx, patient=acct["ida"], amount="90.00", method="cash")
    with pytest.raises(PermissionDenied), ctx_for("fd", clock=fixed_clock) as ctx:
        payments.refund(ctx, patient=acct["ida"], amount="5.00", method="cash")
    for call in (
        lambda c: payments.record(c, patient=acct["ida"], amount="1.00", method="cash"),
        lambda c: payments.apply_credit(c, acct["ida"]),
        lambda c: payments.list_payments(c),
        lambda c: payments.credit(c, acct["ida"]),
    ):
        with pytest.raises(PermissionDenied), ctx_for("doc", clock=fixed_clock) as ctx:
            call(ctx)


def test_list_and_audit(settings, ctx_for, acct):
    from hpms.services.payments import payments

    with ctx_for(clock=fixed_clock) as ctx:
        payments.record(ctx, patient=acct["ida"], amount="10.00", method="cash", date="2026-06-01")
        payments.record(ctx, patient=acct["otis"], amount="40.00", method="card", date="2026-06-10")
        payments.refund(ctx, patient=acct["otis"], amount="10.00", method="card")
    seq = last_seq(settings)
    with ctx_for(clock=fixed_clock) as ctx:
        rows = payments.list_payments(ctx)
        assert [(r.mrn, r.kind, r.amount) for r in rows] == [
            (acct["ida"], "patient_payment", Decimal("10.00")),
            (acct["otis"], "patient_payment", Decimal("40.00")),
            (acct["otis"], "refund", Decimal("10.00")),
        ]
        assert [r.mrn for r in payments.list_payments(ctx, patient=acct["otis"])] == [acct["otis"]] * 2
        assert [r.date for r in payments.list_payments(ctx, since="2026-06-05", until="2026-06-10")] == [D(2026, 6, 10)]
        with pytest.raises(ValidationError, match="before") as err:
            payments.list_payments(ctx, since="2026-06-10", until="2026-06-01")
        assert err.value.field == "end"  # the range's last day, `--to` on the command line
    reads = [r for r in audit_rows(settings, seq) if r["action"] == "read"]
    assert reads and all(r["entity"] == "ledger_entry" for r in reads)
    assert "10.00" not in " ".join(str(r["fields"]) for r in reads)


def test_patient_ledger_and_balance(settings, ctx_for, acct):
    from hpms.services.payments import ledger, payments
    from hpms.services.people import patients

    with ctx_for(clock=fixed_clock) as ctx:
        payments.record(ctx, patient=acct["otis"], amount="12.50", method="cash", date="2026-06-02")
    with ctx_for(clock=fixed_clock) as ctx:
        lines = ledger.entries(ctx, acct["otis"])
        shown = patients.show(ctx, acct["otis"], account=True)
    assert [ln.kind for ln in lines] == [
        "charge",
        "insurance_payment",
        "contractual_adjustment",
        "transfer_to_patient",
        "transfer_to_patient",
        "patient_payment",
    ]
    assert [ln.balance for ln in lines] == [Decimal(x) for x in ("100.00", "50.00", "30.00", "0.00", "30.00", "17.50")]
    assert [ln.patient_balance for ln in lines][-1] == Decimal("17.50")
    assert lines[-2].insurance_balance == Decimal("0.00")
    assert lines[0].code == "99213" and lines[0].payer == "Acme Health" and lines[0].claim.startswith("C")
    assert "99213" in lines[0].description and "2026-02-01" in lines[0].description
    assert lines[-1].patient == Decimal("-12.50") and lines[-1].insurance is None and lines[-1].method == "cash"
    assert (shown.balance, shown.credit) == (Decimal("17.50"), Decimal("0.00"))
    with ctx_for(clock=fixed_clock) as ctx:
        assert not hasattr(patients.show(ctx, acct["otis"]), "balance")


def test_copay_at_check_in_by_appointment(settings, ctx_for, register):
    from hpms.services.billing import encounters
    from hpms.services.payments import payments
    from tests.services.sched import book_one, clinic

    c = clinic(ctx_for, register)
    appt = book_one(ctx_for, c, "2026-06-16 09:00")
    with ctx_for(clock=fixed_clock) as ctx:
        early = payments.record(ctx, patient=c.mrn, amount="20.00", method="cash", appointment=appt.id)
    assert early.encounter_id is None and early.credit == Decimal("20.00")  # no encounter yet: credit
    with ctx_for(clock=fixed_clock) as ctx:
        enc = encounters.create(ctx, appointment=appt.id)
    with ctx_for(clock=fixed_clock) as ctx:
        copay = payments.record(ctx, patient=c.mrn, amount="25.00", method="card", appointment=str(appt.id))
    assert copay.encounter_id == enc.id and _applied(settings, copay.id) == [(enc.id, 2500)]
    other = register(first_name="Zed", last_name="Other")
    before = counts(settings, "ledger_entry", "payment_application")
    with (
        pytest.raises(ValidationError, match="appointment .* is not patient") as err,
        ctx_for(clock=fixed_clock) as ctx,
    ):
        payments.record(ctx, patient=other.mrn, amount="5.00", method="cash", appointment=appt.id)
    assert err.value.field == "appointment"
    with pytest.raises(NotFoundError, match="no appointment") as err, ctx_for(clock=fixed_clock) as ctx:
        payments.record(ctx, patient=c.mrn, amount="5.00", method="cash", appointment="9999")
    assert err.value.field == "appointment"
    with pytest.raises(ValidationError, match="not both") as err, ctx_for(clock=fixed_clock) as ctx:
        payments.record(ctx, patient=c.mrn, amount="5.00", method="cash", appointment=appt.id, apply_to=enc.id)
    assert err.value.field == "appointment"
    assert counts(settings, "ledger_entry", "payment_application") == before


def test_a_reversed_payment_is_no_credit(settings, ctx_for, acct):
    from hpms.services.payments import ledger, payments

    with ctx_for(clock=fixed_clock) as ctx:
        payments.record(ctx, patient=acct["ida"], amount="60.00", method="cash")
        extra = payments.record(ctx, patient=acct["ida"], amount="30.00", method="check", reference="bounced")
    assert extra.credit == Decimal("30.00")
    with ctx_for(clock=fixed_clock) as ctx:
        ledger.reverse(ctx, extra.id, "check bounced")
        assert payments.credit(ctx, acct["ida"]).credit == Decimal("0.00")
    june = accounts.visit(ctx_for, acct["ida"], acct["payer"], D(2026, 6, 1), paid="90.00", to_patient="10.00")
    with ctx_for(clock=fixed_clock) as ctx:
        assert payments.apply_credit(ctx, acct["ida"]) == []
        assert payments.credit(ctx, acct["ida"]).balance == Decimal("10.00")
    with pytest.raises(ValidationError, match="credit 0.00"), ctx_for(clock=fixed_clock) as ctx:
        payments.refund(ctx, patient=acct["ida"], amount="1.00", method="cash")
    assert june


def test_a_reversed_payment_no_longer_pays_the_visit_it_was_applied_to(settings, ctx_for, acct):
    from hpms.services.payments import ledger, payments

    june = accounts.visit(ctx_for, acct["ida"], acct["payer"], D(2026, 6, 14))
    accounts.transfer(ctx_for, acct["ida"], june, "25.00", D(2026, 6, 15))
    with ctx_for(clock=fixed_clock) as ctx:
        copay = payments.record(ctx, patient=acct["ida"], amount="25.00", method="check", apply_to=str(june))
        opens = {v.encounter_id: v.open_cents for v in payments.open_visits(ctx.session, ctx.org_id, copay.patient_id)}
    assert opens[june] == 0
    with ctx_for(clock=fixed_clock) as ctx:
        ledger.reverse(ctx, copay.id, "check bounced")
    with ctx_for(clock=fixed_clock) as ctx:
        opens = {v.encounter_id: v.open_cents for v in payments.open_visits(ctx.session, ctx.org_id, copay.patient_id)}
        c = payments.credit(ctx, acct["ida"])
    assert opens[june] == 2500  # owed again
    assert c.credit == Decimal("0.00")  # not minus the application of a payment that no longer exists
