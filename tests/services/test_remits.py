"""835 posting (SQLite and PostgreSQL): payments, adjustments and patient responsibility to the
ledger line by line, denials to the work list, reversals, idempotency, unmatched claims and
manual matching, the published samples, and every refusal writing nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from hpms.errors import Action, ConflictError, NotFoundError, ValidationError
from tests.billing_fixtures import DOS, setup_practice, signed
from tests.remit_fixtures import claim, interchange, line, payment
from tests.services.helpers import counts, query, scalar

TABLES = (
    "ledger_entry",
    "remit_file",
    "remittance",
    "remit_claim",
    "remit_adjustment",
    "claim_event",
    "worklist_item",
    "payment_application",
)
D = Decimal


@pytest.fixture
def billed(settings, ctx_for, tmp_path):
    """Bob's visit billed to ACME1 (99213-25 100.00 + 36415 15.00) and Kid's to BETA2 (99214
    180.00): returns {payer code: (claim id, control number)} and the practice."""
    from hpms.services.billing import runner as billing

    p = setup_practice(ctx_for)
    signed(ctx_for, p.bob, "E11.9,I10", "99213:25:1,2", "36415::2")
    signed(ctx_for, p.kid, "J06.9", "99214:1")
    out = tmp_path / "out"
    out.mkdir()
    assert billing.run(settings, out_dir=str(out)).claims == 2
    rows = query(settings, "SELECT id, payer_id, control_number FROM claim")
    by_payer = {r["payer_id"]: (r["id"], r["control_number"]) for r in rows}
    return {"ACME1": by_payer[p.acme], "BETA2": by_payer[p.beta]}, p


def call(ctx_for, fn, *a, **kw):
    with ctx_for() as ctx:
        return fn(ctx, *a, **kw)


def write(tmp_path, text: str, name: str = "era.835"):
    path = tmp_path / name
    path.write_text(text)
    return path


def post(ctx_for, path, **kw):
    from hpms.services.payments import remits

    return call(ctx_for, remits.import_file, path, **kw)


def balance(ctx_for, **kw) -> Decimal:
    from hpms.services.payments import ledger

    return call(ctx_for, ledger.balance, **kw)


def refused(settings, ctx_for, tmp_path, text, exc, words, **kw):
    before = counts(settings, *TABLES)
    with pytest.raises(exc) as info:
        post(ctx_for, write(tmp_path, text, "bad.835"), **kw)
    assert words in str(info.value), str(info.value)
    assert counts(settings, *TABLES) == before
    return info.value


def bob_paid(control, **kw):
    """ACME pays Bob's claim: 99213 72.00 (CO-45 18.00, PR-2 10.00), 36415 10.00 (CO-45 5.00)."""
    return claim(
        control,
        [
            line("99213", "100", "72", ("CO", "45", "18"), ("PR", "2", "10"), mods=["25"], date=DOS),
            line("36415", "15", "10", ("CO", "45", "5"), date=DOS),
        ],
        **kw,
    )


def test_the_billing_run_posts_each_claim_lines_charge(settings, ctx_for, billed):
    ids, p = billed
    rows = query(
        settings,
        "SELECT kind, amount_cents, responsibility, claim_id, claim_line_id, payer_id FROM ledger_entry ORDER BY id",
    )
    assert [(r["kind"], r["amount_cents"], r["responsibility"]) for r in rows] == [
        ("charge", 10000, "insurance"),
        ("charge", 1500, "insurance"),
        ("charge", 18000, "insurance"),
    ]
    assert all(r["claim_line_id"] is not None for r in rows)
    assert balance(ctx_for, claim=ids["ACME1"][0]) == D("115.00")
    assert balance(ctx_for, patient=p.bob, responsibility="patient") == D("0.00")


def test_a_payment_posts_line_by_line_and_moves_patient_responsibility(settings, ctx_for, billed, tmp_path):
    ids, p = billed
    claim_id, control = ids["ACME1"]
    out = post(ctx_for, write(tmp_path, interchange(payment([bob_paid(control)]))))
    assert (out.posted, out.claims, out.unmatched, out.denied) == (1, 1, [], 0)
    assert (out.paid, out.adjusted, out.patient_responsibility) == (D("82.00"), D("23.00"), D("10.00"))
    assert out.payment == D("82")
    # the claim is settled on the insurance side; the patient owes the coinsurance
    assert balance(ctx_for, claim=claim_id, responsibility="insurance") == D("0.00")
    assert balance(ctx_for, patient=p.bob, responsibility="patient") == D("10.00")
    assert balance(ctx_for, patient=p.bob) == D("10.00")
    lines = {
        r["code"]: r["id"] for r in query(settings, "SELECT id, code FROM claim_line WHERE claim_id = :c", c=claim_id)
    }
    assert balance(ctx_for, claim_line=lines["99213"]) == D("10.00")  # 100 - 72 - 18 (the 10 moved to the patient)
    assert balance(ctx_for, claim_line=lines["36415"]) == D("0.00")
    kinds = query(
        settings,
        "SELECT kind, amount_cents, responsibility, reference FROM ledger_entry "
        "WHERE claim_line_id = :l AND kind <> 'charge' ORDER BY id",
        l=lines["99213"],
    )
    assert [(k["kind"], k["amount_cents"], k["responsibility"], k["reference"]) for k in kinds] == [
        ("insurance_payment", -7200, "insurance", "TRN TRACE1"),
        ("contractual_adjustment", -1800, "insurance", "CO-45"),
        ("transfer_to_patient", -1000, "insurance", "PR-2"),
        ("transfer_to_patient", 1000, "patient", "PR-2"),
    ]
    adj = query(
        settings, "SELECT group_code, reason_code, amount_cents, claim_line_id FROM remit_adjustment ORDER BY id"
    )
    assert [(a["group_code"], a["reason_code"], a["amount_cents"]) for a in adj] == [
        ("CO", "45", 1800),
        ("PR", "2", 1000),
        ("CO", "45", 500),
    ]
    c = query(settings, "SELECT status, payer_claim_number FROM claim WHERE id = :c", c=claim_id)[0]
    assert (c["status"], c["payer_claim_number"]) == ("paid", "PCN1")
    rc = query(settings, "SELECT claim_id, posted_at, status_code, paid_cents FROM remit_claim")[0]
    assert rc["claim_id"] == claim_id and rc["posted_at"] is not None and rc["paid_cents"] == 8200
    assert scalar(settings, "SELECT count(*) FROM audit_event WHERE action = 'post' AND entity = 'remittance'") == 1


def test_the_same_file_or_the_same_payment_posts_nothing_the_second_time(settings, ctx_for, billed, tmp_path):
    ids, _ = billed
    text = interchange(payment([bob_paid(ids["ACME1"][1])]))
    path = write(tmp_path, text)
    post(ctx_for, path)
    before = counts(settings, *TABLES)
    again = post(ctx_for, path)
    assert again.duplicate and again.posted == 0 and "already posted as file 1" in again.warnings[0]
    assert again.already_posted[0]["file_id"] == 1
    # the same payment (interchange, payer, trace) in other bytes
    other = post(ctx_for, write(tmp_path, text.replace("~\n", "~"), "copy.835"))
    assert (other.duplicate, other.already_imported, other.posted) == (False, 1, 0)
    after = counts(settings, *TABLES)
    assert after["ledger_entry"] == before["ledger_entry"] and after["remit_claim"] == before["remit_claim"]


def test_a_payment_re_delivered_in_a_new_envelope_posts_nothing(settings, ctx_for, billed, tmp_path):
    """Same payer, trace number, amount and date under new ISA13/GS06 control numbers: the
    clearinghouse sent it again, nothing is posted and the summary names the file it came in."""
    ids, _ = billed
    first = post(ctx_for, write(tmp_path, interchange(payment([bob_paid(ids["ACME1"][1])]))))
    assert first.posted == 1
    before = counts(settings, *TABLES, "claim", "audit_event")
    again = post(
        ctx_for,
        write(
            tmp_path,
            interchange(payment([bob_paid(ids["ACME1"][1])], st="0042"), isa="000000999", gs="77"),
            "resent.835",
        ),
    )
    assert (again.duplicate, again.remittances, again.posted, again.already_imported) == (False, 0, 0, 1)
    assert again.already_posted == [
        {
            "trace_number": "TRACE1",
            "payer": "ACME HEALTH",
            "payment": D("82.00"),
            "payment_date": dt.date(2026, 11, 20),
            "file_id": 1,
            "file": "era.835",
        }
    ]
    assert "already posted as file 1 (era.835" in again.warnings[0]
    assert counts(settings, *TABLES, "claim", "audit_event") == before  # not even the file is recorded


def test_a_new_payment_reusing_a_trace_number_is_refused_unless_forced(settings, ctx_for, billed, tmp_path):
    ids, _ = billed
    post(ctx_for, write(tmp_path, interchange(payment([bob_paid(ids["ACME1"][1])]))))
    kid = claim(ids["BETA2"][1], [line("99214", "180", "150", ("CO", "45", "30"))], patient=("JONES", "KID", "M999"))
    other_amount = interchange(payment([kid]), isa="000000200")  # same payer and TRACE1, 150.00
    err = refused(settings, ctx_for, tmp_path, other_amount, ConflictError, "already posted in file 1 (era.835)")
    assert "82.00 on 2026-11-20" in err.message and "150.00 on 2026-11-20" in err.message
    assert err.exit_code == 4 and err.retry_with == ("force",) and "new payment" in err.hint
    other_day = interchange(payment([bob_paid(ids["ACME1"][1])], paid_on=dt.date(2026, 11, 27)), isa="000000201")
    refused(settings, ctx_for, tmp_path, other_day, ConflictError, "82.00 on 2026-11-27")
    forced = post(ctx_for, write(tmp_path, other_amount, "forced.835"), force=True)
    assert (forced.remittances, forced.posted, forced.already_posted) == (1, 1, [])
    assert balance(ctx_for, claim=ids["BETA2"][0], responsibility="insurance") == D("0.00")
    assert scalar(settings, "SELECT count(*) FROM remittance WHERE trace_number = 'TRACE1'") == 2


def test_the_same_trace_twice_in_one_file_for_two_amounts_is_refused(settings, ctx_for, billed, tmp_path):
    ids, _ = billed
    kid = claim(ids["BETA2"][1], [line("99214", "180", "150", ("CO", "45", "30"))], patient=("JONES", "KID", "M999"))
    text = interchange(payment([bob_paid(ids["ACME1"][1])]), payment([kid], st="0002"))
    refused(settings, ctx_for, tmp_path, text, ConflictError, "already posted in this file")


def test_a_claim_paid_nothing_because_of_the_deductible_is_not_a_denial(settings, ctx_for, billed, tmp_path):
    """Allowed 82.00 (CO-45 18.00) all to the deductible, the lab line to coinsurance: the payer
    paid nothing, the patient owes 97.00, and there is nothing to appeal."""
    from hpms.services.payments import denials

    ids, p = billed
    claim_id, control = ids["ACME1"]
    zero = claim(
        control,
        [
            line("99213", "100", "0", ("CO", "45", "18"), ("PR", "1", "82"), mods=["25"], date=DOS),
            line("36415", "15", "0", ("PR", "2", "15"), date=DOS),
        ],
    )
    out = post(ctx_for, write(tmp_path, interchange(payment([zero]))))
    assert (out.posted, out.denied, out.paid, out.patient_responsibility) == (1, 0, D("0"), D("97.00"))
    assert query(settings, "SELECT status FROM claim WHERE id = :c", c=claim_id)[0]["status"] == "patient_resp"
    assert call(ctx_for, denials.denied) == []
    assert scalar(settings, "SELECT count(*) FROM worklist_item WHERE rule_id = 'DENIAL'") == 0
    assert balance(ctx_for, patient=p.bob, responsibility="patient") == D("97.00")
    assert balance(ctx_for, claim=claim_id, responsibility="insurance") == D("0.00")


def test_a_claim_paid_nothing_for_a_denial_reason_is_denied_with_that_reason(settings, ctx_for, billed, tmp_path):
    """CO-45 prices the line, CO-97 refuses it: a denial (CLP02 1, paid 0), and the reason shown is
    the bundling one even though CO-45 and the coinsurance sit beside it."""
    from hpms.services.payments import denials

    ids, _ = billed
    claim_id, control = ids["ACME1"]
    zero = claim(
        control,
        [
            line("99213", "100", "0", ("CO", "45", "18"), ("CO", "97", "72"), ("PR", "2", "10"), mods=["25"], date=DOS),
            line("36415", "15", "0", ("CO", "45", "15"), date=DOS),
        ],
    )
    out = post(ctx_for, write(tmp_path, interchange(payment([zero]))))
    assert out.denied == 1
    assert query(settings, "SELECT status FROM claim WHERE id = :c", c=claim_id)[0]["status"] == "denied"
    [d] = call(ctx_for, denials.denied)
    assert d.reason == "97" and "CO-97" in d.message and "bundled" in d.message and "CO-45" not in d.message


def test_a_claim_paid_nothing_with_only_contractual_write_off_is_not_denied(settings, ctx_for, billed, tmp_path):
    ids, _ = billed
    claim_id, control = ids["ACME1"]
    zero = claim(
        control,
        [
            line("99213", "100", "0", ("CO", "45", "100"), mods=["25"], date=DOS),
            line("36415", "15", "0", ("CO", "24", "15"), date=DOS),
        ],
    )  # capitation
    out = post(ctx_for, write(tmp_path, interchange(payment([zero]))))
    assert out.denied == 0
    assert query(settings, "SELECT status FROM claim WHERE id = :c", c=claim_id)[0]["status"] == "paid"


def test_a_payment_to_another_payee_is_refused_unless_forced(settings, ctx_for, billed, tmp_path):
    ids, _ = billed
    other = ["N1*PE*SOMEONE ELSE MD*XX*1999999984", "REF*TJ*987654321"]
    text = interchange(payment([bob_paid(ids["ACME1"][1])], payee=other))
    err = refused(settings, ctx_for, tmp_path, text, ConflictError, "SOMEONE ELSE MD (NPI 1999999984")
    assert err.exit_code == 4 and "not to this practice" in err.message and err.retry_with == ("force",)
    # the practice's tax id alone is enough (a payer that names the payee by TIN)
    by_tin = interchange(payment([bob_paid(ids["ACME1"][1])], payee=["N1*PE*SPRINGFIELD CLINIC*FI*123456789"]))
    assert post(ctx_for, write(tmp_path, by_tin, "tin.835")).posted == 1
    forced = post(
        ctx_for,
        write(
            tmp_path,
            interchange(payment([bob_paid(ids["BETA2"][1])], trace="T2", payee=other), isa="000000300"),
            "forced.835",
        ),
        force=True,
    )
    assert any("SOMEONE ELSE MD" in w and "posted as asked" in w for w in forced.warnings)


def test_a_provider_paid_under_its_own_npi_is_this_practice(settings, ctx_for, billed, tmp_path):
    from tests.billing_fixtures import PROVIDER_NPI

    ids, _ = billed
    text = interchange(payment([bob_paid(ids["ACME1"][1])], payee=[f"N1*PE*ANN SMITH MD*XX*{PROVIDER_NPI}"]))
    assert post(ctx_for, write(tmp_path, text)).posted == 1


def test_claim_numbers_without_their_leading_zeros_still_match(settings, ctx_for, billed, tmp_path):
    ids, _ = billed
    claim_id, control = ids["ACME1"]
    assert control.startswith("0")
    out = post(ctx_for, write(tmp_path, interchange(payment([bob_paid(control.lstrip("0"))]))))
    assert (out.posted, out.unmatched) == (1, [])
    assert balance(ctx_for, claim=claim_id, responsibility="insurance") == D("0.00")


def test_a_denial_goes_to_the_work_list_and_follow_up_is_recorded(settings, ctx_for, billed, tmp_path):
    from hpms.services.billing import claims
    from hpms.services.payments import denials

    ids, _ = billed
    claim_id, control = ids["BETA2"]
    denial = claim(
        control,
        [line("99214", "180", "0", ("CO", "50", "180"), remarks=["N115"])],
        status="4",
        pcn="BETA-77",
        patient=("JONES", "KID", "M999"),
    )
    out = post(ctx_for, write(tmp_path, interchange(payment([denial], payer=("BETA CARE", "BETA2"), trace="T9"))))
    assert out.denied == 1 and out.paid == D("0")
    assert query(settings, "SELECT status FROM claim WHERE id = :c", c=claim_id)[0]["status"] == "denied"
    rows = call(ctx_for, denials.denied)
    assert len(rows) == 1
    d = rows[0]
    assert (d.claim_id, d.reason, d.payer_code, d.total) == (claim_id, "50", "BETA2", D("180.00"))
    assert "medical necessity" in d.reason_text.lower() or "medically necessary" in d.reason_text.lower()
    assert "N115" in d.message and d.appeals == 0
    assert call(ctx_for, denials.denied, reason="45") == []
    assert len(call(ctx_for, denials.denied, reason="CO-50", payer="BETA2")) == 1
    assert call(ctx_for, denials.denied, payer="ACME1") == []
    # the insurance side still owes the whole charge after a denial (CO-50 is posted as an adjustment)
    assert balance(ctx_for, claim=claim_id) == D("0.00")
    d2 = call(ctx_for, denials.appeal, control, note="appeal letter sent")
    assert d2.appeals == 1 and "appeal letter sent" in d2.last_follow_up
    with pytest.raises(ValidationError) as err:
        call(ctx_for, denials.appeal, control, note="  ")
    assert err.value.field == "note"
    # a replacement claim settles the denial
    new = call(ctx_for, claims.resubmit, claim_id)
    assert new.frequency == "7" and new.payer_claim_number == "BETA-77"
    assert call(ctx_for, denials.denied) == []
    assert len(call(ctx_for, denials.denied, include_settled=True)) == 1
    with pytest.raises(ConflictError, match="no open denial") as err:
        call(ctx_for, denials.appeal, claim_id, note="again")
    assert err.value.action == Action("claims", "denied")
    with pytest.raises(ValidationError) as err:
        call(ctx_for, denials.denied, reason="not a code!")
    assert err.value.field == "reason"
    with pytest.raises(NotFoundError) as err:
        call(ctx_for, denials.denied, payer="NOPE")
    assert err.value.field == "payer"


def test_a_reversal_takes_the_payment_back_with_reversing_entries(settings, ctx_for, billed, tmp_path):
    ids, p = billed
    claim_id, control = ids["ACME1"]
    post(ctx_for, write(tmp_path, interchange(payment([bob_paid(control)]))))
    undo = claim(
        control,
        [
            line("99213", "-100", "-72", ("CO", "45", "-18"), ("PR", "2", "-10"), mods=["25"], date=DOS),
            line("36415", "-15", "-10", ("CO", "45", "-5"), date=DOS),
        ],
        status="22",
    )
    out = post(ctx_for, write(tmp_path, interchange(payment([undo], trace="TRACE2"), isa="000000124"), "undo.835"))
    assert (out.posted, out.reversals) == (1, 1)
    assert balance(ctx_for, claim=claim_id) == D("115.00")
    assert balance(ctx_for, patient=p.bob, responsibility="patient") == D("0.00")
    reversed_ = scalar(settings, "SELECT count(*) FROM ledger_entry WHERE reverses_id IS NOT NULL")
    assert reversed_ == 6  # payment, adjustment and transfer pair of line 1; payment and adjustment of line 2
    assert query(settings, "SELECT status FROM claim WHERE id = :c", c=claim_id)[0]["status"] == "accepted"
    # a second reversal finds nothing left to take back: kept unposted, reported
    out2 = post(ctx_for, write(tmp_path, interchange(payment([undo], trace="TRACE3"), isa="000000125"), "u2.835"))
    assert out2.posted == 0 and any("reversal" in w for w in out2.warnings)


def test_claims_hpms_did_not_bill_are_kept_and_matched_by_hand(settings, ctx_for, billed, tmp_path):
    from hpms.services.payments import remits

    ids, p = billed
    stranger = claim("X-404", [line("99213", "90", "60", ("CO", "45", "30"))], pcn="P9", patient=("DOE", "JANE", "Z1"))
    out = post(ctx_for, write(tmp_path, interchange(payment([bob_paid(ids["ACME1"][1]), stranger]))))
    assert out.posted == 1 and [u["control_number"] for u in out.unmatched] == ["X-404"]
    rows = call(ctx_for, remits.unmatched)
    assert [(r["control_number"], r["paid"], r["patient"]) for r in rows] == [("X-404", D("60.00"), "DOE, JANE")]
    row = rows[0]["row"]
    before = counts(settings, *TABLES)
    with pytest.raises(NotFoundError) as err:
        call(ctx_for, remits.match, row, "999999")
    assert err.value.field == "claim"
    with pytest.raises(ValidationError) as err:
        call(ctx_for, remits.match, "x", ids["BETA2"][0])
    assert (err.value.field, err.value.action) == ("row", Action("remits", "unmatched"))
    with pytest.raises(NotFoundError, match="no claim payment row") as err:
        call(ctx_for, remits.match, 987654, ids["BETA2"][0])
    assert (err.value.field, err.value.action) == ("row", Action("remits", "unmatched"))
    assert counts(settings, *TABLES) == before
    done = call(ctx_for, remits.match, row, ids["BETA2"][1])
    assert done.posted == 1 and done.paid == D("60.00")
    assert any("matches no claim line" in w for w in done.warnings)  # 99213 is not on Kid's claim
    assert call(ctx_for, remits.unmatched) == []
    assert balance(ctx_for, claim=ids["BETA2"][0]) == D("90.00")  # 180 - 60 - 30
    with pytest.raises(ConflictError, match="was posted"):
        call(ctx_for, remits.match, row, ids["BETA2"][0])
    listed = call(ctx_for, remits.list_remittances)
    assert [(r["claims"], r["posted"], r["unmatched"]) for r in listed] == [(2, 2, 0)]


def test_a_dry_run_posts_nothing(settings, ctx_for, billed, tmp_path):
    ids, _ = billed
    before = counts(settings, *TABLES)
    out = post(ctx_for, write(tmp_path, interchange(payment([bob_paid(ids["ACME1"][1])]))), dry_run=True)
    assert out.dry_run and out.posted == 1 and out.paid == D("82.00")
    after = counts(settings, *TABLES)
    assert {k: after[k] for k in TABLES} == {k: before[k] for k in TABLES}


def test_provider_level_adjustments_are_part_of_the_balance(settings, ctx_for, billed, tmp_path):
    ids, _ = billed
    text = interchange(payment([bob_paid(ids["ACME1"][1])], plb=[("L6", "-1.50"), ("WO", "20")]))
    out = post(ctx_for, write(tmp_path, text))
    assert out.payment == D("63.5") and out.provider_adjustments == D("18.5")
    assert query(settings, "SELECT payment_cents, provider_adjustment_cents FROM remittance")[0] == {
        "payment_cents": 6350,
        "provider_adjustment_cents": 1850,
    }


# ---- refusals: a clear message and nothing written --------------------------------------------


def test_a_bpr_total_that_does_not_add_up_is_refused(settings, ctx_for, billed, tmp_path):
    ids, _ = billed
    text = interchange(payment([bob_paid(ids["ACME1"][1])], bpr="99.99"))
    refused(settings, ctx_for, tmp_path, text, ValidationError, "does not balance")


def test_a_truncated_file_is_refused(settings, ctx_for, billed, tmp_path):
    ids, _ = billed
    text = interchange(payment([bob_paid(ids["ACME1"][1])]))
    refused(settings, ctx_for, tmp_path, text[: len(text) // 2], ValidationError, "not a valid 835")


def test_wrong_segment_terminators_are_refused(settings, ctx_for, billed, tmp_path):
    ids, _ = billed
    good = interchange(payment([bob_paid(ids["ACME1"][1])]))
    isa, rest = good.split("~", 1)
    # the ISA names "~" but the segments after it end with "|"
    err = refused(settings, ctx_for, tmp_path, isa + "~" + rest.replace("~", "|"), ValidationError, "not a valid 835")
    assert "segment 2" in str(err)
    # a terminator that is a letter
    refused(settings, ctx_for, tmp_path, good.replace("*:~", "*:A", 1), ValidationError, "segment terminator")


def test_a_file_that_is_not_x12_is_refused(settings, ctx_for, billed, tmp_path):
    refused(settings, ctx_for, tmp_path, "patient,amount\nbob,12.00\n", ValidationError, "not a valid 835")
    refused(settings, ctx_for, tmp_path, "   \n", ValidationError, "is empty")


def test_a_file_for_claims_hpms_never_billed_is_refused(settings, ctx_for, billed, tmp_path):
    stranger = claim("NOT-OURS", [line("99213", "90", "60", ("CO", "45", "30"))])
    text = interchange(payment([stranger]))
    err = refused(settings, ctx_for, tmp_path, text, NotFoundError, "none of the 1 claims")
    assert err.retry_with == ("keep_unmatched",)
    kept = post(ctx_for, write(tmp_path, text), keep_unmatched=True)
    assert kept.posted == 0 and len(kept.unmatched) == 1


def test_a_missing_file_is_refused(ctx_for, billed, tmp_path):
    with pytest.raises(ValidationError, match="does not exist"):
        post(ctx_for, tmp_path / "nope.835")


def test_only_billers_import_remittances(settings, ctx_for, billed, tmp_path, make_user):
    from hpms.errors import PermissionDenied
    from hpms.services.payments import remits

    ids, _ = billed
    path = write(tmp_path, interchange(payment([bob_paid(ids["ACME1"][1])])))
    desk = make_user("desk", "front_desk")
    before = counts(settings, *TABLES)
    with ctx_for(desk) as ctx, pytest.raises(PermissionDenied):
        remits.import_file(ctx, path)
    assert counts(settings, *TABLES) == before


# ---- the published samples -----------------------------------------------------------------

SAMPLES = [
    "835_005010X221A1__cob-contractural-adjustment.835",
    "835_005010X221A1__managed-care.835",
    "835_005010X221A1__medicare-part-a.835",
    "835_005010X221A1__secondary-payment.835",
    "835_005010X221A1__tertiary-payment.835",
    "835_mult_loops.txt",
]


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_parses_and_is_kept_for_matching(settings, ctx_for, billed, name):
    from pathlib import Path

    from hpms.interop.x12.x835 import parse_835

    path = Path(__file__).resolve().parents[1] / "data" / "x12" / name
    expected = sum(len(r.claims) for r in parse_835(path.read_text()))
    with pytest.raises((NotFoundError, ConflictError)):  # none of its claims is ours; nor, mostly, the payee
        post(ctx_for, path)
    out = post(ctx_for, path, keep_unmatched=True, force=True)
    assert len(out.unmatched) == expected and out.posted == 0
    assert scalar(settings, "SELECT count(*) FROM remit_claim WHERE posted_at IS NULL") == expected


def test_a_sample_posts_once_its_claims_are_ours(settings, ctx_for, billed):
    """The managed-care sample pays two claims (CLP01 5554555444 and 8765432112): give Bob's and
    Kid's claims those control numbers and the sample posts against them."""
    from pathlib import Path

    import sqlalchemy as sa

    from hpms.db import get_engine

    ids, p = billed
    with get_engine(settings).begin() as conn:
        for number, key in (("5554555444", "ACME1"), ("8765432112", "BETA2")):
            conn.execute(sa.text("UPDATE claim SET control_number = :n WHERE id = :c"), {"n": number, "c": ids[key][0]})
    path = Path(__file__).resolve().parents[1] / "data" / "x12" / "835_005010X221A1__managed-care.835"
    with pytest.raises(ConflictError, match="not to this practice"):  # the sample pays another payee
        post(ctx_for, path)
    out = post(ctx_for, path, force=True)
    assert out.posted == 2 and out.paid == D("945.00") and out.unmatched == []
    assert out.payment == D("945.00")
    paid = scalar(settings, "SELECT -sum(amount_cents) FROM ledger_entry WHERE kind = 'insurance_payment'")
    assert paid == 94500


def test_matching_by_hand_refuses_a_void_request_and_a_reversal_of_nothing(settings, ctx_for, billed, tmp_path):
    from hpms.services.billing import claims
    from hpms.services.payments import remits

    ids, _ = billed
    claim_id, _ = ids["ACME1"]
    call(ctx_for, claims.set_status, claim_id, "submitted")
    call(ctx_for, claims.set_status, claim_id, "accepted", payer_claim_number="PCN1")
    void = call(ctx_for, claims.void, claim_id)
    assert void.frequency == "8"
    undo = claim("ELSEWHERE", [line("99214", "-180", "-100", ("CO", "45", "-80"))], status="22")
    post(ctx_for, write(tmp_path, interchange(payment([undo, bob_paid(ids["BETA2"][1])]))))
    row = call(ctx_for, remits.unmatched)[0]["row"]
    before = counts(settings, *TABLES)
    with pytest.raises(ConflictError, match="void request"):
        call(ctx_for, remits.match, row, void.id)
    with pytest.raises(ConflictError, match="never received"):  # the voided claim was never paid
        call(ctx_for, remits.match, row, claim_id)
    assert counts(settings, *TABLES) == before
