"""Secondary claims (SQLite and PostgreSQL): a primary payer's 835 that leaves an amount to the
patient creates a claim to the patient's secondary coverage and moves that amount to it; the
next billing run writes it with the primary's adjudication (COB loops, valid 837P); the
secondary's own 835 settles it and sends its patient responsibility back to the patient."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from hpms.errors import ConflictError, ValidationError
from tests.billing_fixtures import (
    DOS,
    assert_valid_837,
    queue_secondary,
    segments,
    setup_practice,
    signed,
    x12_files,
)
from tests.remit_fixtures import claim, interchange, line, payment
from tests.services.helpers import counts, query, scalar

D = Decimal
TABLES = ("claim", "claim_line", "claim_event", "ledger_entry", "remit_claim", "audit_event")
PAID_ON = dt.date(2026, 11, 20)


def call(ctx_for, fn, *a, **kw):
    with ctx_for() as ctx:
        return fn(ctx, *a, **kw)


def balance(ctx_for, **kw) -> Decimal:
    from hpms.services.payments import ledger

    return call(ctx_for, ledger.balance, **kw)


def post(ctx_for, tmp_path, text: str, name: str = "era.835", **kw):
    from hpms.services.payments import remits

    path = tmp_path / name
    path.write_text(text)
    return call(ctx_for, remits.import_file, path, **kw)


def add_secondary(ctx_for, mrn: str, **kw):
    from hpms.services.people import coverage

    with ctx_for() as ctx:
        return coverage.add_coverage(
            ctx, patient=mrn, payer="BETA2", member_id="S555", priority="secondary", group_number="GB7", **kw
        )


def bob_paid(control, pr="10", **kw):
    """ACME pays Bob's claim: 99213 (CO-45 18.00, PR-2 `pr`), 36415 10.00 (CO-45 5.00)."""
    adj = [("CO", "45", "18")] + ([("PR", "2", pr)] if D(pr) else [])
    paid = str(D("82") - D(pr))
    return claim(
        control,
        [
            line("99213", "100", paid, *adj, mods=["25"], date=DOS),
            line("36415", "15", "10", ("CO", "45", "5"), date=DOS),
        ],
        **kw,
    )


@pytest.fixture
def bob(settings, ctx_for, tmp_path):
    """Bob (ACME1 primary) with a visit billed to ACME1: 99213-25 100.00 + 36415 15.00; returns
    (practice, primary claim id, its control number, the output directory)."""
    from hpms.services.billing import runner as billing

    p = setup_practice(ctx_for)
    signed(ctx_for, p.bob, "E11.9,I10", "99213:25:1,2", "36415::2")
    out = tmp_path / "out"
    out.mkdir()
    assert billing.run(settings, out_dir=str(out)).claims == 1
    row = query(settings, "SELECT id, control_number FROM claim")[0]
    return p, row["id"], row["control_number"], out


def secondaries(settings) -> list[dict]:
    return query(settings, "SELECT * FROM claim WHERE primary_claim_id IS NOT NULL ORDER BY id")


def test_patient_responsibility_goes_to_the_secondary_coverage(settings, ctx_for, bob, tmp_path):
    p, primary, control, _ = bob
    cov = add_secondary(ctx_for, p.bob)
    out = post(ctx_for, tmp_path, interchange(payment([bob_paid(control)], paid_on=PAID_ON)))
    assert (out.posted, out.secondary) == (1, 1)
    [sec] = secondaries(settings)
    assert (sec["payer_id"], sec["coverage_id"], sec["primary_claim_id"], sec["status"], sec["frequency"]) == (
        p.beta,
        cov.id,
        primary,
        "ready",
        "1",
    )
    assert sec["total_cents"] == 11500 and sec["encounter_id"] is not None and sec["x12_file_id"] is None
    assert sec["control_number"] != control and sec["control_number"].isdigit()
    lines = query(
        settings,
        "SELECT seq, code, modifiers, units, pointers, charge_cents FROM claim_line WHERE claim_id = :c ORDER BY seq",
        c=sec["id"],
    )
    assert [(ln["code"], ln["modifiers"], ln["charge_cents"], ln["pointers"]) for ln in lines] == [
        ("99213", "25", 10000, "1,2"),
        ("36415", "", 1500, "2"),
    ]
    events = query(settings, "SELECT status, note FROM claim_event WHERE claim_id = :c", c=sec["id"])
    assert events == [{"status": "ready", "note": f"secondary of claim {primary}"}]
    # the 10.00 the patient owed is now owed by Beta, to the cent
    assert balance(ctx_for, patient=p.bob, responsibility="patient") == D("0.00")
    assert balance(ctx_for, patient=p.bob, responsibility="insurance") == D("10.00")
    assert balance(ctx_for, patient=p.bob) == D("10.00")
    assert balance(ctx_for, claim=primary) == D("10.00")
    assert balance(ctx_for, claim=sec["id"], responsibility="insurance") == D("10.00")
    assert balance(ctx_for, claim=sec["id"]) == D("0.00")
    assert balance(ctx_for, payer="BETA2", responsibility="insurance") == D("10.00")
    moved = query(
        settings,
        "SELECT id, amount_cents, responsibility, payer_id, pair_id, claim_line_id "
        "FROM ledger_entry WHERE kind = 'transfer_to_insurance' ORDER BY id",
    )
    assert [(m["amount_cents"], m["responsibility"], m["payer_id"]) for m in moved] == [
        (1000, "insurance", p.beta),
        (-1000, "patient", p.beta),
    ]
    assert moved[1]["pair_id"] == moved[0]["id"] and moved[0]["pair_id"] is None
    sec_99213 = scalar(settings, "SELECT id FROM claim_line WHERE claim_id = :c AND seq = 1", c=sec["id"])
    assert moved[0]["claim_line_id"] == moved[1]["claim_line_id"] == sec_99213
    assert (
        scalar(settings, "SELECT count(*) FROM ledger_entry WHERE claim_id = :c AND kind = 'charge'", c=sec["id"]) == 0
    )  # the charges stay the primary claim's
    assert (
        scalar(
            settings,
            "SELECT count(*) FROM audit_event WHERE action = 'create' AND entity = 'claim' AND entity_id = :c",
            c=str(sec["id"]),
        )
        == 1
    )
    # the patient's ledger describes the transfer
    from hpms.services.payments import ledger

    kinds = [
        (e.kind, e.insurance, e.patient)
        for e in call(ctx_for, ledger.entries, p.bob)
        if e.kind == "transfer_to_insurance"
    ]
    assert kinds == [("transfer_to_insurance", D("10.00"), None), ("transfer_to_insurance", None, D("-10.00"))]
    assert any(e.description.startswith("Transfer to insurance") for e in call(ctx_for, ledger.entries, p.bob))


def test_importing_or_matching_again_creates_no_second_secondary_claim(settings, ctx_for, bob, tmp_path):
    from hpms.services.payments import remits

    p, primary, control, _ = bob
    add_secondary(ctx_for, p.bob)
    text = interchange(payment([bob_paid(control)]))
    post(ctx_for, tmp_path, text)
    before = counts(settings, *TABLES)
    assert post(ctx_for, tmp_path, text).duplicate
    again = post(ctx_for, tmp_path, text.replace("~\n", "~"), "copy.835")
    assert (again.already_imported, again.posted, again.secondary) == (1, 0, 0)
    after = counts(settings, *TABLES)
    assert {t: after[t] for t in TABLES if t != "audit_event"} == {t: before[t] for t in TABLES if t != "audit_event"}
    # a second payment of the same claim, matched by hand, finds the secondary claim already there
    stray = bob_paid("NOT-OURS", pcn="PCN2")
    kept = post(
        ctx_for, tmp_path, interchange(payment([stray], trace="T2"), isa="000000124"), "stray.835", keep_unmatched=True
    )
    row = kept.unmatched[0]["row"]
    done = call(ctx_for, remits.match, row, primary)
    assert done.posted == 1 and done.secondary == 0
    assert len(secondaries(settings)) == 1
    with pytest.raises(ConflictError, match="was posted"):
        call(ctx_for, remits.match, row, primary)
    assert len(secondaries(settings)) == 1


def test_a_payment_matched_by_hand_creates_the_secondary_claim(settings, ctx_for, bob, tmp_path):
    from hpms.services.payments import remits

    p, primary, _, _ = bob
    add_secondary(ctx_for, p.bob)
    kept = post(ctx_for, tmp_path, interchange(payment([bob_paid("NOT-OURS")])), keep_unmatched=True)
    assert kept.secondary == 0 and secondaries(settings) == []
    done = call(ctx_for, remits.match, kept.unmatched[0]["row"], primary)
    assert done.secondary == 1
    [sec] = secondaries(settings)
    assert sec["primary_claim_id"] == primary
    assert balance(ctx_for, patient=p.bob, responsibility="patient") == D("0.00")


def test_no_secondary_claim_without_a_secondary_coverage(settings, ctx_for, bob, tmp_path):
    p, _, control, _ = bob
    out = post(ctx_for, tmp_path, interchange(payment([bob_paid(control)])))
    assert out.secondary == 0 and secondaries(settings) == []
    assert balance(ctx_for, patient=p.bob, responsibility="patient") == D("10.00")
    assert scalar(settings, "SELECT count(*) FROM ledger_entry WHERE kind = 'transfer_to_insurance'") == 0


def test_no_secondary_claim_for_a_coverage_not_active_on_the_date_of_service(settings, ctx_for, bob, tmp_path):
    p, _, control, _ = bob
    add_secondary(ctx_for, p.bob, valid_from=(DOS + dt.timedelta(days=1)).isoformat())
    out = post(ctx_for, tmp_path, interchange(payment([bob_paid(control)])))
    assert out.secondary == 0 and secondaries(settings) == []


def test_no_secondary_claim_when_nothing_is_left_to_the_patient(settings, ctx_for, bob, tmp_path):
    p, primary, control, _ = bob
    add_secondary(ctx_for, p.bob)
    out = post(ctx_for, tmp_path, interchange(payment([bob_paid(control, pr="0")])))
    assert out.posted == 1 and out.secondary == 0 and secondaries(settings) == []
    assert balance(ctx_for, claim=primary) == D("0.00")


def test_no_secondary_claim_for_a_reversal_or_a_crossover(settings, ctx_for, bob, tmp_path):
    p, primary, control, _ = bob
    post(ctx_for, tmp_path, interchange(payment([bob_paid(control)])))  # no secondary coverage yet
    add_secondary(ctx_for, p.bob)
    undo = claim(
        control,
        [
            line("99213", "-100", "-72", ("CO", "45", "-18"), ("PR", "2", "-10"), mods=["25"], date=DOS),
            line("36415", "-15", "-10", ("CO", "45", "-5"), date=DOS),
        ],
        status="22",
    )
    out = post(ctx_for, tmp_path, interchange(payment([undo], trace="T2"), isa="000000124"), "undo.835")
    assert (out.reversals, out.secondary) == (1, 0) and secondaries(settings) == []
    # the payer forwarded the claim to the secondary payer itself (CLP02 19): hpms bills nothing
    out = post(
        ctx_for,
        tmp_path,
        interchange(payment([bob_paid(control, status="19")], trace="T3"), isa="000000125"),
        "fwd.835",
    )
    assert (out.posted, out.secondary) == (1, 0) and secondaries(settings) == []
    assert balance(ctx_for, patient=p.bob, responsibility="patient") == D("10.00")


def test_a_manual_transfer_to_insurance_and_its_refusals(settings, ctx_for, bob, tmp_path):
    from hpms.services.payments import ledger

    p, primary, control, _ = bob
    post(ctx_for, tmp_path, interchange(payment([bob_paid(control)])))
    before = counts(settings, *TABLES)
    for kw, exc in (
        (dict(amount="-5.00"), ValidationError),
        (dict(amount="5.00", responsibility="patient"), ValidationError),
    ):
        with pytest.raises(exc):
            call(ctx_for, ledger.post, "transfer_to_insurance", kw.pop("amount"), patient=p.bob, payer="ACME1", **kw)
    with pytest.raises(ValidationError, match="payer"):
        call(ctx_for, ledger.post, "transfer_to_insurance", "5.00", patient=p.bob)
    assert counts(settings, *TABLES) == before
    entry = call(ctx_for, ledger.post, "transfer_to_insurance", "4.00", patient=p.bob, claim=primary)
    assert balance(ctx_for, patient=p.bob, responsibility="patient") == D("6.00")
    assert balance(ctx_for, patient=p.bob) == D("10.00")
    call(ctx_for, ledger.reverse, entry, "posted by mistake")  # the pair is reversed together
    assert balance(ctx_for, patient=p.bob, responsibility="patient") == D("10.00")
    assert balance(ctx_for, patient=p.bob, responsibility="insurance") == D("0.00")


def test_the_billing_run_writes_the_secondary_claim_with_the_primarys_adjudication(settings, ctx_for, bob, tmp_path):
    from hpms.services.billing import runner as billing

    p, primary, control, _ = bob
    add_secondary(ctx_for, p.bob)
    post(ctx_for, tmp_path, interchange(payment([bob_paid(control)], paid_on=PAID_ON)))
    [sec] = secondaries(settings)
    out2 = tmp_path / "out2"
    out2.mkdir()
    run = billing.run(settings, out_dir=str(out2))
    assert run.claims == 0 and [f["payer"] for f in run.files] == ["BETA2"] and run.files[0]["claims"] == 1
    assert (run.written, run.secondary, run.held, run.files[0]["secondary"]) == (1, 1, 0, 1)
    [path] = x12_files(out2)
    text = assert_valid_837(path)
    segs = segments(text)

    def find(tag, *first):
        return [s for s in segs if s[0] == tag and tuple(s[1 : 1 + len(first)]) == first]

    assert [s[1] for s in find("CLM")] == [sec["control_number"]]
    assert find("SBR", "S") == [["SBR", "S", "18", "GB7", "", "", "", "", "", "CI"]]
    assert find("SBR", "P") == [["SBR", "P", "18", "", "", "", "", "", "", "CI"]]
    assert find("AMT", "D") == [["AMT", "D", "82"]]
    assert find("AMT", "EAF") == [["AMT", "EAF", "10"]]
    assert find("OI") == [["OI", "", "", "Y", "", "", "Y"]]
    subscribers = find("NM1", "IL")
    assert subscribers[0][-1] == "S555" and subscribers[1] == [
        "NM1",
        "IL",
        "1",
        "JONES",
        "BOB",
        "",
        "",
        "",
        "MI",
        "M123456",
    ]
    assert [s[3] for s in find("NM1", "PR")] == ["BETA CARE", "ACME HEALTH"]
    assert find("NM1", "PR")[1][-2:] == ["PI", "ACME1"]
    assert find("SVD") == [["SVD", "ACME1", "72", "HC:99213:25", "", "1"], ["SVD", "ACME1", "10", "HC:36415", "", "1"]]
    assert find("CAS") == [["CAS", "CO", "45", "18"], ["CAS", "PR", "2", "10"], ["CAS", "CO", "45", "5"]]
    assert find("DTP", "573") == [["DTP", "573", "D8", "20261120"]] * 2
    assert query(settings, "SELECT x12_file_id FROM claim WHERE id = :c", c=sec["id"])[0]["x12_file_id"] is not None
    # a rerun writes nothing twice
    out3 = tmp_path / "out3"
    out3.mkdir()
    assert billing.run(settings, out_dir=str(out3)).files == []


def test_the_secondarys_835_settles_it_and_sends_its_own_share_to_the_patient(settings, ctx_for, bob, tmp_path):
    p, primary, control, _ = bob
    add_secondary(ctx_for, p.bob)
    post(ctx_for, tmp_path, interchange(payment([bob_paid(control)])))
    [sec] = secondaries(settings)
    # Beta pays 6.00 of the 10.00 and leaves 4.00 (deductible) to Bob; CARC 23 is Acme's share
    answer = claim(
        sec["control_number"],
        [
            line("99213", "100", "6", ("OA", "23", "90"), ("PR", "1", "4"), mods=["25"], date=DOS),
            line("36415", "15", "0", ("OA", "23", "15"), date=DOS),
        ],
        pcn="BETA-1",
        patient=("JONES", "BOB", "S555"),
    )
    out = post(
        ctx_for,
        tmp_path,
        interchange(payment([answer], payer=("BETA CARE", "BETA2"), trace="B1"), isa="000000200"),
        "beta.835",
    )
    assert (out.posted, out.denied, out.secondary) == (1, 0, 0)
    assert out.paid == D("6.00") and out.patient_responsibility == D("4.00")
    status = query(settings, "SELECT status, payer_claim_number FROM claim WHERE id = :c", c=sec["id"])[0]
    assert (status["status"], status["payer_claim_number"]) == ("paid", "BETA-1")
    assert balance(ctx_for, claim=sec["id"], responsibility="insurance") == D("0.00")
    assert balance(ctx_for, patient=p.bob, responsibility="insurance") == D("0.00")
    assert balance(ctx_for, patient=p.bob, responsibility="patient") == D("4.00")
    assert balance(ctx_for, patient=p.bob) == D("4.00")
    # CARC 23 is kept with the remittance, not posted
    assert scalar(settings, "SELECT count(*) FROM remit_adjustment WHERE reason_code = '23'") == 2
    assert scalar(settings, "SELECT count(*) FROM ledger_entry WHERE reference = 'OA-23'") == 0
    assert len(secondaries(settings)) == 1  # a secondary claim is not followed by another


def test_a_secondary_paying_the_whole_share_leaves_nothing_owed(settings, ctx_for, bob, tmp_path):
    p, primary, control, _ = bob
    add_secondary(ctx_for, p.bob)
    post(ctx_for, tmp_path, interchange(payment([bob_paid(control)])))
    [sec] = secondaries(settings)
    answer = claim(
        sec["control_number"],
        [
            line("99213", "100", "10", ("OA", "23", "90"), mods=["25"], date=DOS),
            line("36415", "15", "0", ("OA", "23", "15"), date=DOS),
        ],
        patient=("JONES", "BOB", "S555"),
    )
    post(
        ctx_for,
        tmp_path,
        interchange(payment([answer], payer=("BETA CARE", "BETA2"), trace="B1"), isa="000000200"),
        "beta.835",
    )
    assert query(settings, "SELECT status FROM claim WHERE id = :c", c=sec["id"])[0]["status"] == "paid"
    assert balance(ctx_for, patient=p.bob) == D("0.00")
    assert balance(ctx_for, patient=p.bob, responsibility="patient") == D("0.00")


def test_a_statement_shows_the_transfer_once_as_the_patients_share(settings, ctx_for, bob, tmp_path):
    import datetime as dt

    from hpms.services.lookups import find_patient as find
    from hpms.services.payments import statements

    p, primary, control, _ = bob
    add_secondary(ctx_for, p.bob)
    post(ctx_for, tmp_path, interchange(payment([bob_paid(control)], paid_on=PAID_ON)))
    with ctx_for() as ctx:
        data = statements.statement_data(ctx, find(ctx, p.bob), today=dt.date.today(), previous=None)
    moves = [(r["amount"], r["share"]) for r in data["activity"] if "Transfer" in r["description"]]
    assert moves == [(None, 1000), (None, -1000)]  # to the patient, then on to the secondary payer
    assert data["amount_due"] == 0


def _find(segs, tag, *first):
    return [s for s in segs if s[0] == tag and tuple(s[1 : 1 + len(first)]) == first]


def test_the_primary_payers_claim_filing_goes_in_2320(settings, ctx_for, tmp_path):
    from hpms.services.billing import runner as billing
    from hpms.services.people import coverage

    p = setup_practice(ctx_for)
    first = tmp_path / "first"
    first.mkdir()
    queue_secondary(settings, ctx_for, p, first)
    with ctx_for() as ctx:
        coverage.update_payer(ctx, "ACME1", claim_filing="bcbs")
        coverage.update_payer(ctx, "BETA2", claim_filing="HM")
    out = tmp_path / "out"
    out.mkdir()
    run = billing.run(settings, out_dir=str(out))
    segs = segments(assert_valid_837(run.files[0]["path"]))
    assert _find(segs, "SBR", "S") == [["SBR", "S", "18", "GB7", "", "", "", "", "", "HM"]]
    assert _find(segs, "SBR", "P") == [["SBR", "P", "18", "", "", "", "", "", "", "BL"]]


def test_a_secondary_claim_to_medicare_needs_the_medicare_secondary_type(settings, ctx_for, tmp_path):
    """Held (with a work-list row naming the claim) while the coverage has no type; the rest of
    Medicare's file is written; once the type is set the next run writes it with SBR05."""
    from hpms.services.billing import claims
    from hpms.services.billing import runner as billing
    from hpms.services.people import coverage

    p = setup_practice(ctx_for)
    with ctx_for() as ctx:
        coverage.add_payer(ctx, name="Medicare Part B", payer_id="MCRB1", claim_filing="medicare-b")
        coverage.add_coverage(ctx, patient=p.nora, payer="MCRB1", member_id="1EG4TE5MK73")
    first = tmp_path / "first"
    first.mkdir()
    sec = queue_secondary(settings, ctx_for, p, first, payer="MCRB1")
    nora = signed(ctx_for, p.nora, "I10", "99213:1")
    out = tmp_path / "out"
    out.mkdir()

    run = billing.run(settings, out_dir=str(out))
    assert (run.claims, run.written, run.secondary, run.held) == (1, 1, 0, 1)
    [f] = run.files
    assert f["payer"] == "MCRB1" and f["claims"] == 1
    segs = segments(assert_valid_837(f["path"]))
    nora_claim = query(settings, "SELECT control_number FROM claim WHERE encounter_id = :e", e=nora)[0]
    assert [s[1] for s in _find(segs, "CLM")] == [nora_claim["control_number"]]
    assert _find(segs, "SBR") == [["SBR", "P", "18", "", "", "", "", "", "", "MB"]]  # primary: no SBR05
    assert query(settings, "SELECT status, x12_file_id FROM claim WHERE id = :c", c=sec) == [
        {"status": "ready", "x12_file_id": None}
    ]
    with ctx_for() as ctx:
        [item] = claims.worklist(ctx)
    assert (item.claim_id, item.rule_id, item.field, item.patient) == (
        sec,
        "MSP-TYPE",
        "coverage.medicare_secondary_type",
        "Bob Jones",
    )
    assert "no Medicare secondary type" in item.message and "hpms" not in item.message
    held = [e for e in query(settings, "SELECT action, detail FROM audit_event WHERE action = 'hold'")]
    assert len(held) == 1 and "1 claims held" in held[0]["detail"]

    # still not fixed: held again, the same open item (it keeps its age)
    before = query(settings, "SELECT id, created_at FROM worklist_item WHERE resolved_at IS NULL")
    again = billing.run(settings, out_dir=str(out))
    assert (again.written, again.held, again.files) == (0, 1, [])
    assert query(settings, "SELECT id, created_at FROM worklist_item WHERE resolved_at IS NULL") == before

    cov = query(
        settings,
        "SELECT id FROM coverage WHERE payer_id = (SELECT id FROM payer WHERE payer_id = 'MCRB1') "
        "AND priority = 'secondary'",
    )[0]["id"]
    with ctx_for() as ctx:
        coverage.update_coverage(ctx, cov, medicare_secondary_type="12")
    fixed = billing.run(settings, out_dir=str(out))
    assert (fixed.claims, fixed.written, fixed.secondary, fixed.held) == (0, 1, 1, 0)
    segs = segments(assert_valid_837(fixed.files[0]["path"]))
    assert _find(segs, "SBR", "S") == [["SBR", "S", "18", "GB7", "", "12", "", "", "", "MB"]]
    assert _find(segs, "SBR", "P") == [["SBR", "P", "18", "", "", "", "", "", "", "CI"]]
    assert _find(segs, "AMT", "D") == [["AMT", "D", "82"]]
    assert scalar(settings, "SELECT count(*) FROM worklist_item WHERE resolved_at IS NULL") == 0
    with ctx_for() as ctx:
        assert claims.worklist(ctx) == []


def test_a_waiting_claim_whose_patient_lost_the_address_is_held_until_voided(settings, ctx_for, tmp_path):
    import sqlalchemy as sa

    from hpms.db import get_engine
    from hpms.services.billing import claims
    from hpms.services.billing import runner as billing

    p = setup_practice(ctx_for)
    first = tmp_path / "first"
    first.mkdir()
    sec = queue_secondary(settings, ctx_for, p, first)
    with get_engine(settings).begin() as conn:
        conn.execute(
            sa.text("UPDATE patient SET city = NULL, state = 'Ohio' WHERE last_name = 'Jones' AND first_name = 'Bob'")
        )
    out = tmp_path / "out"
    out.mkdir()
    run = billing.run(settings, out_dir=str(out))
    assert (run.written, run.held, run.files) == (0, 1, [])
    assert sorted((w.claim_id, w.rule_id, w.field) for w in call(ctx_for, claims.worklist)) == [
        (sec, "ADDR-PATIENT", "patient.city"),
        (sec, "ADDR-STATE", "patient.state"),
    ]
    call(ctx_for, claims.void, sec, note="billed on paper")
    run = billing.run(settings, out_dir=str(out))
    assert (run.written, run.held) == (0, 0)
    assert call(ctx_for, claims.worklist) == []
