"""Claims after the billing run (SQLite and PostgreSQL): mark a file submitted, payer statuses,
replacement (frequency 7) and void (frequency 8) claims written by the next run, a new
original after a rejection, the work list, and the files a later run must leave alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpms.errors import ConflictError, NotFoundError, ValidationError
from tests.billing_fixtures import assert_valid_837, claim_numbers, segments, setup_practice, signed, x12_files
from tests.services.helpers import counts, query, scalar

TABLES = ("claim", "claim_line", "claim_event", "x12_file", "audit_event")


@pytest.fixture
def billed(settings, ctx_for, tmp_path):
    """Two encounters billed (ACME1 and BETA2): returns (out dir, {payer code: claim id}, {payer code: file})."""
    from hpms.services.billing import runner as billing

    p = setup_practice(ctx_for)
    signed(ctx_for, p.bob, "E11.9,I10", "99213:25:1,2", "36415::2")
    signed(ctx_for, p.kid, "J06.9", "99214:1")
    out = tmp_path / "out"
    out.mkdir()
    s = billing.run(settings, out_dir=str(out))
    assert s.claims == 2
    ids = {r["payer_id"]: r["id"] for r in query(settings, "SELECT id, payer_id FROM claim")}
    claims = {"ACME1": ids[p.acme], "BETA2": ids[p.beta]}
    files = {f["payer"]: f for f in s.files}
    return out, claims, files


def call(ctx_for, fn, *a, **kw):
    with ctx_for() as ctx:
        return fn(ctx, *a, **kw)


def refused(settings, ctx_for, exc, words, fn, *a, **kw):
    """The call raises `exc` naming `words`, and writes nothing."""
    before = counts(settings, *TABLES)
    with pytest.raises(exc) as info:
        call(ctx_for, fn, *a, **kw)
    assert words in str(info.value), str(info.value)
    assert counts(settings, *TABLES) == before
    return info.value


def run_again(settings, out):
    from hpms.services.billing import runner as billing

    return billing.run(settings, out_dir=str(out))


def test_mark_submitted_flips_the_files_claims_once(settings, ctx_for, billed):
    from hpms.services.billing import claims

    out, ids, files = billed
    acme = files["ACME1"]
    out_ = call(ctx_for, claims.mark_submitted, acme["path"])
    assert out_ == {"file": Path(acme["path"]).name, "claims": 1}
    assert call(ctx_for, claims.show, ids["ACME1"]).status == "submitted"
    assert call(ctx_for, claims.show, ids["BETA2"]).status == "ready"
    f = query(settings, "SELECT status, submitted_at FROM x12_file WHERE id = :i", i=acme["id"])[0]
    assert f["status"] == "submitted" and f["submitted_at"] is not None
    hist = call(ctx_for, claims.show, ids["ACME1"]).history
    assert [h.status for h in hist] == ["ready", "submitted"] and hist[1].note == Path(acme["path"]).name
    refused(settings, ctx_for, ConflictError, "already marked submitted", claims.mark_submitted, acme["id"])
    missing = refused(settings, ctx_for, NotFoundError, "no 837P file", claims.mark_submitted, "837P-NOPE.x12")
    assert (missing.action.noun, missing.action.verb) == ("billing", "files")
    # by id and by bare name
    assert call(ctx_for, claims.mark_submitted, str(files["BETA2"]["id"]))["claims"] == 1
    listed = {f["id"]: f for f in call(ctx_for, claims.list_files)}
    assert {f["status"] for f in listed.values()} == {"submitted"}


def test_set_status_follows_the_transitions(settings, ctx_for, billed):
    from hpms.services.billing import claims

    _, ids, _ = billed
    cid = ids["ACME1"]
    refused(settings, ctx_for, ConflictError, "cannot become accepted", claims.set_status, cid, "accepted")
    refused(settings, ctx_for, ValidationError, "status", claims.set_status, cid, "bogus")
    refused(settings, ctx_for, NotFoundError, "no claim", claims.set_status, 9999, "submitted")
    assert call(ctx_for, claims.set_status, cid, "submitted").status == "submitted"
    c = call(ctx_for, claims.set_status, cid, "accepted", payer_claim_number="PCN-1", note="277CA")
    assert (c.status, c.payer_claim_number) == ("accepted", "PCN-1")
    assert c.history[-1].note == "277CA"
    assert call(ctx_for, claims.set_status, cid, "paid").status == "paid"
    assert call(ctx_for, claims.set_status, cid, "closed").status == "closed"
    refused(settings, ctx_for, ConflictError, "allowed: none", claims.set_status, cid, "paid")
    # by control number too
    cn = call(ctx_for, claims.show, ids["BETA2"]).control_number
    assert call(ctx_for, claims.set_status, cn, "submitted").id == ids["BETA2"]


def test_a_replacement_is_written_with_frequency_7_and_ref_f8(settings, ctx_for, billed):
    from hpms.services.billing import claims

    out, ids, files = billed
    cid = ids["ACME1"]
    call(ctx_for, claims.mark_submitted, files["ACME1"]["id"])
    # not adjudicated yet: nothing to replace
    refused(settings, ctx_for, ConflictError, "only rejected or adjudicated", claims.resubmit, cid)
    call(ctx_for, claims.set_status, cid, "accepted")
    assert (
        refused(settings, ctx_for, ValidationError, "is required", claims.resubmit, cid).field == "payer_claim_number"
    )
    call(ctx_for, claims.set_status, cid, "paid", payer_claim_number="2026123456789")
    new = call(ctx_for, claims.resubmit, cid, note="corrected modifier")
    assert (new.frequency, new.status, new.original_claim_id, new.payer_claim_number) == (
        "7",
        "ready",
        cid,
        "2026123456789",
    )
    orig = call(ctx_for, claims.show, cid)
    assert new.lines == orig.lines and new.total == orig.total
    assert new.control_number != orig.control_number and orig.history[-1].note == "corrected modifier"

    s = run_again(settings, out)
    assert (s.claims, [f["payer"] for f in s.files]) == (0, ["ACME1"])
    text = assert_valid_837(s.files[0]["path"])
    assert claim_numbers(text) == [new.control_number]
    seg = segments(text)
    clm = next(x for x in seg if x[0] == "CLM")
    assert clm[5] == "11:B:7"
    assert seg[seg.index(clm) + 1] == ["REF", "F8", "2026123456789"]
    assert call(ctx_for, claims.show, new.id).file == Path(s.files[0]["path"]).name
    # the original file is untouched
    assert claim_numbers(Path(files["ACME1"]["path"]).read_text()) == [orig.control_number]


def test_void_of_a_submitted_claim_queues_a_frequency_8_claim(settings, ctx_for, billed):
    from hpms.services.billing import claims

    out, ids, files = billed
    cid = ids["BETA2"]
    call(ctx_for, claims.mark_submitted, files["BETA2"]["path"])
    call(ctx_for, claims.set_status, cid, "accepted", payer_claim_number="PCN-77")
    v = call(ctx_for, claims.void, cid, note="wrong patient")
    assert (v.frequency, v.status, v.original_claim_id, v.payer_claim_number) == ("8", "ready", cid, "PCN-77")
    orig = call(ctx_for, claims.show, cid)
    assert orig.status == "void" and orig.history[-1].note == "wrong patient"
    refused(settings, ctx_for, ConflictError, "is void", claims.void, cid)
    s = run_again(settings, out)
    text = assert_valid_837(s.files[0]["path"])
    seg = segments(text)
    clm = next(x for x in seg if x[0] == "CLM")
    assert clm[1] == v.control_number and clm[5] == "11:B:8"
    assert ["REF", "F8", "PCN-77"] in seg


def test_void_of_an_adjudicated_claim_needs_the_payer_claim_number(settings, ctx_for, billed):
    from hpms.services.billing import claims

    _, ids, files = billed
    cid = ids["ACME1"]
    call(ctx_for, claims.mark_submitted, files["ACME1"]["id"])
    call(ctx_for, claims.set_status, cid, "accepted")
    assert refused(settings, ctx_for, ValidationError, "is required", claims.void, cid).field == "payer_claim_number"
    v = call(ctx_for, claims.void, cid, payer_claim_number="P-9")
    assert (v.frequency, v.payer_claim_number) == ("8", "P-9")


def test_void_of_a_submitted_claim_without_a_payer_claim_number_is_refused(settings, ctx_for, billed):
    from hpms.services.billing import claims

    _, ids, files = billed
    cid = ids["ACME1"]
    call(ctx_for, claims.mark_submitted, files["ACME1"]["id"])
    before = scalar(settings, "SELECT count(*) FROM claim")
    assert refused(settings, ctx_for, ValidationError, "is required", claims.void, cid).field == "payer_claim_number"
    assert scalar(settings, "SELECT count(*) FROM claim") == before
    assert call(ctx_for, claims.show, cid).status == "submitted"


def test_void_of_a_ready_claim_just_voids_it(settings, ctx_for, billed):
    from hpms.services.billing import claims

    _, ids, _ = billed
    before = scalar(settings, "SELECT count(*) FROM claim")
    v = call(ctx_for, claims.void, ids["ACME1"])
    assert (v.id, v.status, v.frequency) == (ids["ACME1"], "void", "1")
    assert scalar(settings, "SELECT count(*) FROM claim") == before
    assert v.history[-1].note == "voided before submission"
    refused(settings, ctx_for, NotFoundError, "no claim", claims.void, "000999999")


def test_a_rejected_claim_gets_a_new_original(settings, ctx_for, billed):
    from hpms.services.billing import claims

    out, ids, files = billed
    cid = ids["ACME1"]
    call(ctx_for, claims.mark_submitted, files["ACME1"]["id"])
    call(ctx_for, claims.set_status, cid, "rejected", note="bad member id")
    wl = call(ctx_for, claims.worklist)
    assert [(w.rule_id, w.claim_id) for w in wl] == [("REJECTED", cid)]
    assert wl[0].patient == "Bob Jones" and "hpms" not in wl[0].message
    new = call(ctx_for, claims.resubmit, cid)
    # the partial unique index allows a second original once the first is rejected
    assert (new.frequency, new.status, new.original_claim_id) == ("1", "ready", None)
    enc = new.encounter_id
    assert scalar(settings, "SELECT count(*) FROM claim WHERE encounter_id = :e AND frequency = '1'", e=enc) == 2
    # a second resubmission of the same rejection would be a second live original
    refused(settings, ctx_for, ConflictError, f"already resubmitted: claim {new.id}", claims.resubmit, cid)
    # and the rejection is off the work list: it has been dealt with
    assert call(ctx_for, claims.worklist) == []
    s = run_again(settings, out)
    text = assert_valid_837(s.files[0]["path"])
    assert claim_numbers(text) == [new.control_number]
    assert next(x for x in segments(text) if x[0] == "CLM")[5] == "11:B:1"


def test_the_live_original_is_unique_per_encounter_and_payer(settings, ctx_for, billed):
    """The database itself refuses a second live original (what keeps a crashed or concurrent run
    from billing twice)."""
    import sqlalchemy as sa

    from hpms.db import get_engine

    _, ids, _ = billed
    row = query(settings, "SELECT * FROM claim WHERE id = :i", i=ids["ACME1"])[0]
    row = {k: v for k, v in row.items() if k != "id"}
    row["control_number"] = "999999999"
    cols = ", ".join(row)
    with pytest.raises(sa.exc.IntegrityError):
        with get_engine(settings).begin() as conn:
            conn.execute(sa.text(f"INSERT INTO claim ({cols}) VALUES ({', '.join(':' + k for k in row)})"), row)
    row["frequency"] = "7"
    with get_engine(settings).begin() as conn:
        conn.execute(sa.text(f"INSERT INTO claim ({cols}) VALUES ({', '.join(':' + k for k in row)})"), row)


def test_worklist_lists_scrub_findings_then_rejections(settings, ctx_for, billed):
    from hpms.services.billing import claims

    out, ids, files = billed
    nora = query(settings, "SELECT mrn FROM patient WHERE first_name = 'Nora'")[0]["mrn"]
    bad = signed(ctx_for, nora, "J06.9", "99214:1")
    run_again(settings, out)
    call(ctx_for, claims.mark_submitted, files["BETA2"]["id"])
    call(ctx_for, claims.set_status, ids["BETA2"], "rejected")
    wl = call(ctx_for, claims.worklist)
    assert [(w.rule_id, w.encounter_id, w.claim_id) for w in wl] == [
        ("PAYER-ID", bad, None),
        ("REJECTED", wl[1].encounter_id, ids["BETA2"]),
    ]
    assert wl[0].patient == "Nora Cover" and wl[1].patient == "Kid Jones"


def test_list_and_show(settings, ctx_for, billed):
    from hpms.services.billing import claims

    _, ids, files = billed
    rows = call(ctx_for, claims.list_claims)
    assert [r.id for r in rows] == sorted(ids.values(), reverse=True)
    assert {r.payer_code for r in rows} == {"ACME1", "BETA2"}
    assert [r.id for r in call(ctx_for, claims.list_claims, payer="BETA2")] == [ids["BETA2"]]
    assert call(ctx_for, claims.list_claims, status="submitted") == []
    with pytest.raises(NotFoundError) as err:
        call(ctx_for, claims.list_claims, payer="NOPE")
    assert err.value.field == "payer"
    c = call(ctx_for, claims.show, ids["ACME1"])
    assert [(ln.code, ln.modifiers, ln.pointers, str(ln.charge)) for ln in c.lines] == [
        ("99213", ["25"], [1, 2], "100.00"),
        ("36415", [], [2], "15.00"),
    ]
    assert c.file == Path(files["ACME1"]["path"]).name and c.patient == "Bob Jones"


def test_a_file_moved_away_after_writing_is_not_written_again(settings, ctx_for, billed):
    from hpms.services.billing import claims

    out, ids, files = billed
    call(ctx_for, claims.mark_submitted, files["ACME1"]["id"])
    for f in x12_files(out):
        f.unlink()  # uploaded and moved to an archive
    s = run_again(settings, out)
    assert (s.files, s.recovered_files) == ([], 0)
    assert x12_files(out) == []
    assert {r["status"] for r in query(settings, "SELECT status FROM x12_file")} == {"submitted", "written"}
    assert call(ctx_for, claims.show, ids["ACME1"]).status == "submitted"
