"""Eligibility: a 270 for the patients of a day (or one patient), 271 answers matched back to
the pending checks, the latest status per patient, and bad input that writes nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from hpms.errors import NotFoundError, PermissionDenied, ValidationError
from tests.conftest import TEST_DATA
from tests.eligibility_fixtures import (
    DAY,
    Source,
    active_loop,
    answer_271,
    answer_271_sources,
    answer_from_270,
    setup_practice,
)
from tests.services.conftest import fixed_clock
from tests.services.helpers import audit_rows, counts, last_seq, query

X12 = TEST_DATA / "x12"


@pytest.fixture
def practice(ctx_for, register):
    return setup_practice(ctx_for, register)


def run(ctx_for, fn, *args, user=None, **kw):
    from hpms.services.billing import eligibility

    with ctx_for(user, clock=fixed_clock) as ctx:
        return getattr(eligibility, fn)(ctx, *args, **kw)


def checks(settings) -> list[dict]:
    return query(
        settings,
        "SELECT id, patient_id, coverage_id, payer_id, trace_number, service_date, status, plan_name, "
        "plan_begin, plan_end, copay_cents, coinsurance_percent, deductible_cents, "
        "deductible_remaining_cents, reason, responded_at FROM eligibility_check ORDER BY id",
    )


def segs(text: str) -> list[list[str]]:
    return [s.strip().split("*") for s in text.split("~") if s.strip()]


def requested(ctx_for, tmp_path, **kw):
    (tmp_path / "out").mkdir(exist_ok=True)
    out = tmp_path / "out" / "elig.270"
    kw.setdefault("date", "tomorrow")
    return run(ctx_for, "request", out=out, **kw), out


# ---- request -------------------------------------------------------------------------------


def test_request_for_a_day_writes_one_file_and_pending_checks(settings, ctx_for, practice, tmp_path):
    seq = last_seq(settings)
    r, out = requested(ctx_for, tmp_path)
    assert (r.service_date, r.checks, r.patients, r.payers, r.isa_control) == (DAY, 2, 2, 2, 1)
    assert r.skipped == [
        {"patient_id": practice.nora, "mrn": practice.nora_mrn, "reason": "no active coverage on 2026-06-16"}
    ]
    rows = checks(settings)
    assert [(c["patient_id"], c["payer_id"], c["status"], str(c["service_date"]), c["trace_number"]) for c in rows] == [
        (practice.pat, practice.acme, "pending", "2026-06-16", str(rows[0]["id"])),
        (practice.kid, practice.beta, "pending", "2026-06-16", str(rows[1]["id"])),
    ]
    s = segs(out.read_text())
    assert s[0][6].strip() == "SUB01" and s[0][8].strip() == "CH01" and s[0][13] == "000000001"
    # BHT03, echoed in the 271, names the interchange and the date of service
    assert s[3][:4] == ["BHT", "0022", "13", "000000001-20260616"] and r.reference == "000000001-20260616"
    assert ["TRN", "1", str(rows[0]["id"]), "1123456789"] in s and ["TRN", "1", str(rows[1]["id"]), "1123456789"] in s
    assert ["NM1", "IL", "1", "DOE", "PAT", "", "", "", "MI", "M123456"] in s  # the subscriber asks for himself
    assert ["NM1", "IL", "1", "DOE", "PAT", "", "", "", "MI", "M999"] in s  # ... and for his child
    assert ["NM1", "03", "1", "DOE", "KID"] in s and ["DMG", "D8", "20150505", "F"] in s
    assert s.count(["DTP", "291", "D8", "20260616"]) == 2
    # the cancelled visit's patient (Gina Gone, covered on ACME1) is not asked about
    assert not any(x[0] == "NM1" and "GONE" in x for x in s)
    assert ["NM1", "1P", "2", "TEST CLINIC", "", "", "", "", "XX", "1234567893"] in s
    (ev,) = [e for e in audit_rows(settings, seq) if e["entity"] == "eligibility_check"]
    assert (ev["action"], ev["patient_ids_list"]) == ("export", sorted([practice.pat, practice.kid]))
    assert "M123456" not in str(ev)


def test_request_again_reuses_the_open_checks(settings, ctx_for, practice, tmp_path):
    first, _ = requested(ctx_for, tmp_path)
    again, out = requested(ctx_for, tmp_path)
    assert again.check_ids == first.check_ids and again.isa_control == 2
    assert counts(settings, "eligibility_check") == {"eligibility_check": 2}
    assert segs(out.read_text())[0][13] == "000000002"


def test_request_for_one_patient(settings, ctx_for, practice, tmp_path):
    r, out = requested(ctx_for, tmp_path, date=None, patient=practice.kid_mrn)
    assert (r.checks, r.service_date) == (1, dt.date(2026, 6, 15))  # today by default
    [c] = checks(settings)
    assert (c["patient_id"], c["coverage_id"] is not None, c["status"]) == (practice.kid, True, "pending")
    assert ["DTP", "291", "D8", "20260615"] in segs(out.read_text())


@pytest.mark.parametrize(
    "kw, error, message",
    [
        ({"date": "2026-06-17"}, NotFoundError, "no appointments on 2026-06-17"),
        ({"date": None}, ValidationError, "date: give a day"),
        ({"date": "someday"}, ValidationError, "is not a date"),
        ({"date": None, "patient": "9999999"}, NotFoundError, "patient: no patient"),
        ({"date": None, "patient": "NORA"}, NotFoundError, "has no active coverage"),
    ],
)
def test_request_refusals_write_nothing(settings, ctx_for, practice, tmp_path, kw, error, message):
    if kw.get("patient") == "NORA":
        kw["patient"] = practice.nora_mrn
    before = counts(settings, "eligibility_check", "audit_event", "counter")
    with pytest.raises(error, match=message):
        requested(ctx_for, tmp_path, **kw)
    assert counts(settings, "eligibility_check", "audit_event", "counter") == before
    assert list((tmp_path / "out").iterdir()) == []


def test_request_needs_a_profile_and_a_npi(settings, ctx_for, register, tmp_path):
    setup_practice(ctx_for, register, profile=False)
    with pytest.raises(ValidationError, match="submitter and receiver") as exc:
        requested(ctx_for, tmp_path)
    assert (exc.value.action.noun, exc.value.action.verb) == ("billing", "setup")
    assert counts(settings, "eligibility_check") == {"eligibility_check": 0}
    assert list((tmp_path / "out").iterdir()) == []


def test_request_to_a_missing_directory(settings, ctx_for, practice, tmp_path):
    with pytest.raises(ValidationError, match="does not exist") as exc:
        run(ctx_for, "request", date="tomorrow", out=tmp_path / "nope" / "x.270")
    assert exc.value.field == "out"
    assert counts(settings, "eligibility_check") == {"eligibility_check": 0}


def test_permissions(settings, ctx_for, practice, make_user, tmp_path):
    make_user("doc", "provider")
    with pytest.raises(PermissionDenied):
        run(ctx_for, "request", date="tomorrow", out=tmp_path / "x.270", user="doc")
    assert run(ctx_for, "latest", [practice.pat], user="doc")[practice.pat].text == "not checked"
    make_user("aud", "auditor")
    with pytest.raises(PermissionDenied):
        run(ctx_for, "list_checks", user="aud")


# ---- import --------------------------------------------------------------------------------


def test_import_matches_by_trace_and_by_member_id(settings, ctx_for, practice, tmp_path):
    r, _ = requested(ctx_for, tmp_path)
    pat_check, kid_check = r.check_ids
    # Pat's answer echoes the trace; Kid's answer comes without one (matched by payer + member id)
    acme = answer_271(active_loop(str(pat_check), "M123456", "DOE", "PAT"))
    beta = answer_271(
        ["DEP", ["NM1*IL*1*DOE*PAT****MI*M999"], "NM1*03*1*DOE*KID", "DTP*291*D8*20260616", "AAA*Y**58*C"],
        payer="BETA2",
        payer_name="BETA CARE",
    )
    (tmp_path / "acme.271").write_text(acme)
    (tmp_path / "beta.271").write_text(beta)
    seq = last_seq(settings)
    one = run(ctx_for, "import_271", tmp_path / "acme.271")
    assert (one.answers, one.updated, one.unchanged, one.recorded, one.unmatched, one.statuses) == (
        1,
        1,
        0,
        0,
        [],
        {"active": 1},
    )
    two = run(ctx_for, "import_271", tmp_path / "beta.271")
    assert (two.updated, two.statuses, two.check_ids) == (1, {"error": 1}, [kid_check])
    a, b = checks(settings)
    assert (
        a["status"],
        a["plan_name"],
        str(a["plan_begin"]),
        str(a["plan_end"]),
        a["copay_cents"],
        a["coinsurance_percent"],
        a["deductible_cents"],
        a["deductible_remaining_cents"],
        a["reason"],
    ) == ("active", "GOLD PLAN", "2026-01-01", "2026-12-31", 2500, "20", 150000, 75050, None)
    assert a["responded_at"] is not None
    assert (b["status"], b["reason"]) == ("error", "invalid/missing date of birth (correct and resubmit) [2100D]")
    events = [e for e in audit_rows(settings, seq) if e["entity"] == "eligibility_check"]
    assert [(e["action"], e["patient_ids_list"]) for e in events] == [
        ("import", [practice.pat]),
        ("import", [practice.kid]),
    ]

    latest = run(ctx_for, "latest", [practice.pat, practice.kid, practice.nora])
    assert {k: v.text for k, v in latest.items()} == {
        practice.pat: "active",
        practice.kid: "error: invalid/missing date of birth",
        practice.nora: "not checked",
    }
    assert latest[practice.pat].copay == Decimal("25.00") and latest[practice.pat].plan_name == "GOLD PLAN"

    # the same files again: nothing changes, nothing is added (with or without an echoed trace)
    before = checks(settings)
    for name in ("acme.271", "beta.271"):
        again = run(ctx_for, "import_271", tmp_path / name)
        assert (again.answers, again.updated, again.unchanged, again.recorded, again.unmatched) == (1, 0, 1, 0, [])
    assert checks(settings) == before


def test_unmatched_answers_are_reported_or_recorded(settings, ctx_for, practice, tmp_path):
    requested(ctx_for, tmp_path)
    text = answer_271(
        active_loop("424242", "M555", "GONE", "GINA"),  # known coverage, never asked
        active_loop(None, "X000", "NOBODY", "KNOWN"),
    )  # nobody here
    (tmp_path / "a.271").write_text(text)
    r = run(ctx_for, "import_271", tmp_path / "a.271")
    assert (r.answers, r.updated, r.recorded) == (2, 0, 1)
    assert r.unmatched == [
        {
            "payer": "ACME1",
            "member": "…X000",
            "name": "NOBODY, KNOWN",
            "trace": None,
            "reason": "no pending check and no coverage with this member id",
        }
    ]
    new = [c for c in checks(settings) if c["patient_id"] == practice.gone]
    assert [(c["status"], c["trace_number"], str(c["service_date"])) for c in new] == [
        ("active", "424242", "2026-06-16")
    ]
    again = run(ctx_for, "import_271", tmp_path / "a.271")
    assert (again.recorded, again.unchanged) == (0, 1)
    assert len([c for c in checks(settings) if c["patient_id"] == practice.gone]) == 1


def test_a_refused_request_closes_the_payers_open_checks(settings, ctx_for, practice, tmp_path):
    r, _ = requested(ctx_for, tmp_path)
    text = answer_271(receiver_aaa="AAA*N**43*C", reference=r.reference)
    (tmp_path / "a.271").write_text(text)
    r = run(ctx_for, "import_271", tmp_path / "a.271")
    assert (r.updated, r.statuses) == (1, {"error": 1})
    by_patient = {c["patient_id"]: c for c in checks(settings)}
    assert (by_patient[practice.pat]["status"], by_patient[practice.pat]["reason"]) == (
        "error",
        "invalid/missing provider identification (correct and resubmit) [2100B]",
    )
    assert by_patient[practice.kid]["status"] == "pending"  # another payer
    assert run(ctx_for, "import_271", tmp_path / "a.271").updated == 0


@pytest.mark.parametrize(
    "content, message",
    [
        (b"PK\x03\x04 not a text file \xff", "expected an ISA segment"),
        (b"PK\x03\x04\x00\x00\x08\x00 binary", "NUL"),
        (b"Hello, this is not X12", "expected an ISA segment"),
        (None, "missing SE"),  # truncated
        ("wrong", "missing IEA|terminator"),
    ],
)
def test_bad_files_import_nothing(settings, ctx_for, practice, tmp_path, content, message):
    r, _ = requested(ctx_for, tmp_path)
    good = answer_271(active_loop(str(r.check_ids[0]), "M123456", "DOE", "PAT"))
    if content is None:
        content = good[: good.index("EB*C")].encode()
    elif content == "wrong":
        head = good.index("~") + 1
        content = (good[:head] + good[head:].replace("~", "!")).encode()
    (tmp_path / "bad.271").write_bytes(content)
    before = checks(settings), counts(settings, "audit_event")
    with pytest.raises(ValidationError, match=message) as exc:
        run(ctx_for, "import_271", tmp_path / "bad.271")
    assert exc.value.field == "file" and "nothing imported" in exc.value.message
    assert (checks(settings), counts(settings, "audit_event")) == before


def test_import_of_a_missing_file(ctx_for, practice, tmp_path):
    with pytest.raises(ValidationError, match="does not exist"):
        run(ctx_for, "import_271", tmp_path / "none.271")


def test_published_samples_import_as_unmatched(settings, ctx_for, practice):
    r = run(ctx_for, "import_271", X12 / "271_005010X279A1__dependent-health-benefit-check.271")
    assert (r.answers, r.updated, r.recorded, [u["name"] for u in r.unmatched]) == (1, 0, 0, ["SMITH, MARY"])
    r = run(ctx_for, "import_271", X12 / "271_005010X279A1__subscriber-health-benefit-check-error.271")
    assert r.unmatched[0]["reason"] == "provider ineligible for inquiries (resubmission not allowed) [2100B]"
    assert r.warnings == ["segment 10 (SE): SE02 control number '4323' does not match ST02 '4321'"]
    assert counts(settings, "eligibility_check") == {"eligibility_check": 0}


# ---- one 270, several payers ---------------------------------------------------------------

ACME_PAT = ["EB*1*IND*30**ACME PAT", "EB*B*IND*98***27*20*****Y"]
ACME_KID = ["EB*1*IND*30**ACME KID", "EB*B*IND*98***27*15*****Y"]
BETA_PAT = ["EB*6*IND*30**BETA PAT"]
BETA_KID = ["EB*1*IND*30**BETA KID", "EB*B*IND*98***27*35*****Y"]
ANSWERS = {
    ("ACME1", "PAT"): ACME_PAT,
    ("ACME1", "KID"): ACME_KID,
    ("BETA2", "PAT"): BETA_PAT,
    ("BETA2", "KID"): BETA_KID,
}


@pytest.fixture
def covered_twice(settings, ctx_for, practice, tmp_path):
    """Pat is covered by ACME1 (primary) and BETA2 (secondary) under the same member id; Kid by
    BETA2 (primary, M999) and by ACME1 through Pat (M123456, shared with him). One 270 asks
    both payers about both: returns the request, its file and {(mrn, payer id): check id}."""
    from hpms.services.people import coverage

    with ctx_for(clock=fixed_clock) as ctx:
        coverage.add_coverage(ctx, patient=practice.pat_mrn, payer="BETA2", member_id="M123456", priority="secondary")
        coverage.add_coverage(
            ctx,
            patient=practice.kid_mrn,
            payer="ACME1",
            member_id="M123456",
            relationship="child",
            subscriber="Doe, Pat",
            subscriber_dob="1980-01-01",
            priority="secondary",
        )
    r, out = requested(ctx_for, tmp_path)
    assert (r.checks, r.payers) == (4, 2)
    names = {practice.pat: "PAT", practice.kid: "KID"}
    payers = {practice.acme: "ACME1", practice.beta: "BETA2"}
    ids = {(names[c["patient_id"]], payers[c["payer_id"]]): c["id"] for c in checks(settings)}
    return r, out, ids


def answered(settings, ids) -> dict[tuple[str, str], tuple]:
    rows = {c["id"]: c for c in checks(settings)}
    return {
        k: (rows[i]["status"], rows[i]["plan_name"], rows[i]["copay_cents"], rows[i]["reason"]) for k, i in ids.items()
    }


EXPECTED = {
    ("PAT", "ACME1"): ("active", "ACME PAT", 2000, None),
    ("KID", "ACME1"): ("active", "ACME KID", 1500, None),
    ("PAT", "BETA2"): ("inactive", "BETA PAT", None, None),
    ("KID", "BETA2"): ("active", "BETA KID", 3500, None),
}


def import_twice(settings, ctx_for, path):
    """Import `path`, then again: the second import changes no row and adds none."""
    first = run(ctx_for, "import_271", path)
    before = checks(settings)
    again = run(ctx_for, "import_271", path)
    assert (again.answers, again.updated, again.recorded, again.unchanged) == (
        first.answers,
        0,
        0,
        first.updated + first.recorded,
    )
    assert again.unmatched == first.unmatched
    assert checks(settings) == before
    return first


@pytest.mark.parametrize("traces", ["echo", "none", "subscriber"])
def test_each_answer_of_a_two_payer_271_goes_to_its_own_payer_and_person(settings, ctx_for, covered_twice, traces):
    r, out, ids = covered_twice
    text = answer_from_270(out.read_text(), ANSWERS, traces=traces)
    assert text.count("HL*") == 10 and text.count("NM1*PR*") == 2
    path = out.with_name("answer.271")
    path.write_text(text)
    result = import_twice(settings, ctx_for, path)
    assert (result.answers, result.updated, result.recorded, result.unmatched) == (4, 4, 0, [])
    assert result.statuses == {"active": 3, "inactive": 1}
    assert answered(settings, ids) == EXPECTED
    assert counts(settings, "eligibility_check") == {"eligibility_check": 4}


def test_a_trace_of_another_payers_check_is_not_taken(settings, ctx_for, covered_twice):
    """BETA2 echoes the traces of the questions asked of ACME1 (and the other way round): each
    answer still goes to the check of the payer that answers, found by member id and name."""
    r, out, ids = covered_twice
    swap = {str(ids[(who, "ACME1")]): str(ids[(who, "BETA2")]) for who in ("PAT", "KID")}
    swap |= {b: a for a, b in swap.items()}
    path = out.with_name("answer.271")
    path.write_text(answer_from_270(out.read_text(), ANSWERS, trace_map=swap))
    result = import_twice(settings, ctx_for, path)
    assert (result.updated, result.recorded, result.unmatched) == (4, 0, [])
    assert answered(settings, ids) == EXPECTED


def test_a_trace_that_is_not_ours_falls_back_to_the_member(settings, ctx_for, covered_twice):
    r, out, ids = covered_twice
    foreign = {str(i): f"PORTAL-{i}" for i in ids.values()}
    path = out.with_name("answer.271")
    path.write_text(answer_from_270(out.read_text(), ANSWERS, trace_map=foreign))
    result = import_twice(settings, ctx_for, path)
    assert (result.updated, result.recorded, result.unmatched) == (4, 0, [])
    assert answered(settings, ids) == EXPECTED


def test_a_family_member_the_payer_names_but_nobody_asked_about_is_reported(settings, ctx_for, covered_twice):
    """Pat and Kid share ACME1's member id M123456; an answer about Zoe under it matches neither."""
    r, out, ids = covered_twice
    zoe = [
        "DEP",
        ["NM1*IL*1*DOE*PAT****MI*M123456"],
        "NM1*03*1*DOE*ZOE",
        "DMG*D8*20180303",
        "DTP*291*D8*20260616",
        "EB*1*IND*30**ACME ZOE",
    ]
    path = out.with_name("zoe.271")
    path.write_text(answer_271(zoe, reference=r.reference))
    result = import_twice(settings, ctx_for, path)
    assert (result.answers, result.updated, result.recorded) == (1, 0, 0)
    assert [(u["payer"], u["name"], u["member"]) for u in result.unmatched] == [("ACME1", "DOE, ZOE", "…3456")]
    assert result.unmatched[0]["reason"] == (
        "2 patients share this member id and the answer's name and birth date do not tell which one it is about"
    )
    assert {s[0] for s in answered(settings, ids).values()} == {"pending"}


def test_a_dependent_named_under_the_subscribers_own_id_is_not_the_subscriber(settings, ctx_for, practice, tmp_path):
    r, _ = requested(ctx_for, tmp_path)
    zoe = ["DEP", ["NM1*IL*1*DOE*PAT****MI*M123456"], "NM1*03*1*DOE*ZOE", "DTP*291*D8*20260616", "EB*1**30"]
    (tmp_path / "zoe.271").write_text(answer_271(zoe, reference=r.reference))
    result = run(ctx_for, "import_271", tmp_path / "zoe.271")
    assert (result.updated, result.recorded, [u["name"] for u in result.unmatched]) == (0, 0, ["DOE, ZOE"])
    assert result.unmatched[0]["reason"] == (
        "the member id is the subscriber's; the dependent it names has no coverage on file"
    )
    assert [c["status"] for c in checks(settings)] == ["pending", "pending"]


@pytest.mark.parametrize("keep_members", [False, True])
def test_a_payer_level_rejection_closes_only_that_payers_questions_of_the_request(
    settings, ctx_for, practice, covered_twice, tmp_path, keep_members
):
    r, out, ids = covered_twice
    # Pat is also asked about today, in another file: that question is not answered here
    today = run(ctx_for, "request", date="2026-06-15", patient=practice.pat_mrn, out=tmp_path / "today.270")
    assert today.checks == 2
    path = tmp_path / "answer.271"
    answers = {**ANSWERS, ("ACME1", "PAT"): [], ("ACME1", "KID"): []}
    path.write_text(
        answer_from_270(out.read_text(), answers, payer_aaa={"ACME1": "AAA*Y**42*R"}, keep_members=keep_members)
    )
    result = import_twice(settings, ctx_for, path)
    reason = "unable to respond at current time (resubmission allowed) [2100A]"
    assert (result.answers, result.updated, result.unmatched) == (4, 4, [])
    assert answered(settings, ids) == {
        **EXPECTED,
        ("PAT", "ACME1"): ("error", None, None, reason),
        ("KID", "ACME1"): ("error", None, None, reason),
    }
    assert [c["status"] for c in checks(settings) if c["id"] in today.check_ids] == ["pending", "pending"]


def test_a_receiver_level_rejection_of_one_payer_leaves_the_other_payer_alone(settings, ctx_for, covered_twice):
    r, out, ids = covered_twice
    path = out.with_name("answer.271")
    path.write_text(answer_from_270(out.read_text(), ANSWERS, receiver_aaa={"BETA2": "AAA*N**43*C"}))
    result = import_twice(settings, ctx_for, path)
    reason = "invalid/missing provider identification (correct and resubmit) [2100B]"
    assert (result.answers, result.updated, result.unmatched) == (4, 4, [])
    assert answered(settings, ids) == {
        **EXPECTED,
        ("PAT", "BETA2"): ("error", None, None, reason),
        ("KID", "BETA2"): ("error", None, None, reason),
    }


def test_a_rejection_of_a_request_hpms_cannot_tell_is_reported_and_closes_nothing(settings, ctx_for, covered_twice):
    """A 2100A rejection without any 2000C loop whose BHT03 is not one of hpms's references:
    which questions it answers is unknown, so it is listed and every check stays pending."""
    r, out, ids = covered_twice
    path = out.with_name("answer.271")
    path.write_text(answer_271(payer_aaa="AAA*Y**42*R", reference="X-77"))
    result = import_twice(settings, ctx_for, path)
    assert (result.answers, result.updated, result.statuses) == (0, 0, {})
    assert result.unmatched == [
        {
            "payer": "ACME1",
            "member": None,
            "name": None,
            "trace": None,
            "reason": "unable to respond at current time (resubmission allowed) [2100A]",
        }
    ]
    assert {s[0] for s in answered(settings, ids).values()} == {"pending"}


def test_several_sources_in_one_file_keep_their_own_reasons(settings, ctx_for, covered_twice):
    """One 271 built by hand: ACME1 refuses the practice, BETA2 answers without traces."""
    r, out, ids = covered_twice
    beta = (
        ["NM1*IL*1*DOE*PAT****MI*M123456", "DTP*291*D8*20260616", *BETA_PAT],
        ["DEP", ["NM1*IL*1*DOE*PAT****MI*M999"], "NM1*03*1*DOE*KID", "DTP*291*D8*20260616", *BETA_KID],
    )
    path = out.with_name("answer.271")
    path.write_text(
        answer_271_sources(
            Source("ACME1", "ACME HEALTH", receiver_aaa="AAA*N**51*C"),
            Source("BETA2", "BETA CARE", beta),
            reference=r.reference,
        )
    )
    import_twice(settings, ctx_for, path)
    reason = "provider not on file (correct and resubmit) [2100B]"
    assert answered(settings, ids) == {
        **EXPECTED,
        ("PAT", "ACME1"): ("error", None, None, reason),
        ("KID", "ACME1"): ("error", None, None, reason),
    }


# ---- reading -------------------------------------------------------------------------------


def test_list_and_latest(settings, ctx_for, practice, tmp_path):
    r, _ = requested(ctx_for, tmp_path)
    (tmp_path / "a.271").write_text(
        answer_271([f"TRN*2*{r.check_ids[0]}*1", "NM1*IL*1*DOE*PAT****MI*M123456", "EB*6**30"])
    )
    run(ctx_for, "import_271", tmp_path / "a.271")
    rows = run(ctx_for, "list_checks", patient=practice.pat_mrn)
    assert [(x.patient, x.payer, x.status, x.service_date) for x in rows] == [
        ("Pat Doe", "Acme Health", "inactive", DAY)
    ]
    assert [x.status for x in run(ctx_for, "list_checks", date="2026-06-16")] == ["pending", "inactive"]
    assert run(ctx_for, "list_checks", date="2026-06-17") == []
    # a day before the checks' date of service: nothing was asked for it yet
    assert run(ctx_for, "latest", [practice.pat], day="2026-06-15")[practice.pat].text == "not checked"
    assert run(ctx_for, "latest", [practice.pat], day="2026-06-16")[practice.pat].text == "inactive"
