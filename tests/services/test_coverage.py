"""Payers and patients' insurance coverage."""

from __future__ import annotations

import datetime as dt

import pytest

from hpms.errors import Action, ConflictError, ExitCode, NotFoundError, ValidationError
from tests.services.conftest import fixed_clock
from tests.services.helpers import audit_rows, last_seq, snapshot


def _ctx(ctx_for, user=None):
    return ctx_for(user, clock=fixed_clock)


def test_add_and_list_payers(settings, ctx_for):
    from hpms.services.people import coverage

    seq = last_seq(settings)
    with _ctx(ctx_for) as ctx:
        zed = coverage.add_payer(
            ctx,
            name="Zenith Mutual",
            payer_id="ZEN01",
            address_line1="1 Main St",
            city="Hartford",
            state="CT",
            postal_code="06101",
            phone="860-555-0100",
        )
        acme = coverage.add_payer(ctx, name="Acme Health", payer_id="60054")
    assert (zed.name, zed.payer_id, zed.city, zed.phone) == ("Zenith Mutual", "ZEN01", "Hartford", "860-555-0100")
    with _ctx(ctx_for) as ctx:
        listed = coverage.list_payers(ctx)
        assert [p.payer_id for p in listed] == ["60054", "ZEN01"]  # by name
        assert coverage.show_payer(ctx, "60054").id == acme.id
        assert coverage.show_payer(ctx, acme.id).id == acme.id
        assert coverage.show_payer(ctx, "zenith mutual").id == zed.id
    assert [(r["action"], r["entity"]) for r in audit_rows(settings, seq)] == [("create", "payer")] * 2


@pytest.mark.parametrize(
    ("kw", "exc", "field"),
    [
        ({"payer_id": "AC ME"}, ValidationError, "payer_id"),
        ({"payer_id": "A"}, ValidationError, "payer_id"),
        ({"payer_id": "ACME-1"}, ValidationError, "payer_id"),
        ({"payer_id": ""}, ValidationError, "payer_id"),
        ({"name": "  "}, ValidationError, "name"),
        ({"phone": "call us"}, ValidationError, "phone"),
        ({"payer_id": "ACME1"}, ConflictError, None),
    ],
)
def test_bad_or_duplicate_payers_are_refused(settings, ctx_for, payer, kw, exc, field):
    from hpms.services.people import coverage

    before = snapshot(settings)
    data = {"name": "Another Payer", "payer_id": "OTHER9", **kw}
    with pytest.raises(exc) as err:
        with _ctx(ctx_for) as ctx:
            coverage.add_payer(ctx, **data)
    if field:
        assert err.value.field == field and err.value.exit_code == 2
    else:
        assert err.value.exit_code == 4 and "ACME1" in err.value.message
    assert snapshot(settings) == before


def test_unknown_payer_is_not_found(ctx_for, payer):
    from hpms.services.people import coverage

    with pytest.raises(NotFoundError) as err:
        with _ctx(ctx_for) as ctx:
            coverage.show_payer(ctx, "NOPE")
    assert err.value.exit_code == 3


@pytest.fixture
def pat(register):
    return register(first_name="Ida", last_name="Quill", dob="1980-02-02")


def test_add_coverage(settings, ctx_for, payer, pat):
    from hpms.services.people import coverage

    seq = last_seq(settings)
    with _ctx(ctx_for) as ctx:
        c = coverage.add_coverage(
            ctx,
            patient=pat.mrn,
            payer="ACME1",
            member_id="XQZ123",
            group_number="G-9",
            valid_from="2026-01-01",
            valid_to="2026-12-31",
        )
    assert (c.patient_id, c.payer_id, c.payer_name, c.payer_code) == (pat.id, payer.id, "Acme Health", "ACME1")
    assert (c.member_id, c.group_number, c.relationship, c.priority) == ("XQZ123", "G-9", "self", "primary")
    assert (c.valid_from, c.valid_to, c.active) == (dt.date(2026, 1, 1), dt.date(2026, 12, 31), True)
    assert c.subscriber_last_name is None
    ev = audit_rows(settings, seq)
    assert [(r["action"], r["entity"], r["patient_id"]) for r in ev] == [("create", "coverage", pat.id)]
    assert "member_id" in ev[0]["fields_list"] and "XQZ123" not in str(ev)


def test_dependent_coverage_names_the_subscriber(ctx_for, payer, pat):
    from hpms.services.people import coverage

    with _ctx(ctx_for) as ctx:
        a = coverage.add_coverage(
            ctx,
            patient=pat.mrn,
            payer="ACME1",
            member_id="S1",
            relationship="spouse",
            subscriber="Quill, Robert James",
            subscriber_dob="1978-08-08",
        )
        b = coverage.add_coverage(
            ctx,
            patient=pat.mrn,
            payer="ACME1",
            member_id="S2",
            relationship="child",
            subscriber="Mary Ann Quill",
            priority="secondary",
        )
    assert (a.relationship, a.subscriber_first_name, a.subscriber_last_name, a.subscriber_dob) == (
        "spouse",
        "Robert James",
        "Quill",
        dt.date(1978, 8, 8),
    )
    assert (b.subscriber_first_name, b.subscriber_last_name, b.subscriber_dob) == ("Mary Ann", "Quill", None)


BAD_COVERAGE = [
    ("unknown payer", {"payer": "NOPE"}, NotFoundError, None),
    ("unknown patient", {"patient": "0199999"}, NotFoundError, None),
    ("spouse without subscriber", {"relationship": "spouse"}, ValidationError, "subscriber"),
    ("child without subscriber", {"relationship": "child", "subscriber": "  "}, ValidationError, "subscriber"),
    ("subscriber for self", {"subscriber": "Someone Else"}, ValidationError, "subscriber"),
    ("unknown relationship", {"relationship": "cousin", "subscriber": "A B"}, ValidationError, "relationship"),
    ("unknown priority", {"priority": "quaternary"}, ValidationError, "priority"),
    ("to before from", {"valid_from": "2026-03-01", "valid_to": "2026-02-28"}, ValidationError, "valid_to"),
    ("impossible from", {"valid_from": "2026-02-30"}, ValidationError, "valid_from"),
    ("bad member id", {"member_id": "has space"}, ValidationError, "member_id"),
    ("empty member id", {"member_id": ""}, ValidationError, "member_id"),
    (
        "future subscriber dob",
        {"relationship": "spouse", "subscriber": "A B", "subscriber_dob": "2030-01-01"},
        ValidationError,
        "subscriber_dob",
    ),
]


@pytest.mark.parametrize(("case", "kw", "exc", "field"), BAD_COVERAGE, ids=[b[0] for b in BAD_COVERAGE])
def test_bad_coverage_is_refused_and_writes_nothing(settings, ctx_for, payer, pat, case, kw, exc, field):
    from hpms.services.people import coverage

    data = {"patient": pat.mrn, "payer": "ACME1", "member_id": "M100", **kw}
    before = snapshot(settings)
    with pytest.raises(exc) as err:
        with _ctx(ctx_for) as ctx:
            coverage.add_coverage(ctx, **data)
    if field:
        assert err.value.field == field and err.value.exit_code == ExitCode.USAGE
    else:
        assert err.value.exit_code == ExitCode.NOT_FOUND
    assert snapshot(settings) == before


@pytest.mark.parametrize(
    ("first", "second", "clash"),
    [
        ((None, None), (None, None), True),
        (("2025-01-01", None), ("2026-01-01", "2026-06-30"), True),
        (("2025-01-01", "2025-12-31"), ("2025-12-31", None), True),  # one shared day
        ((None, "2025-06-30"), ("2025-01-01", None), True),
        (("2025-01-01", "2025-12-31"), ("2026-01-01", None), False),
        ((None, "2024-12-31"), ("2025-01-01", "2025-12-31"), False),
    ],
)
def test_same_priority_may_not_overlap(settings, ctx_for, payer, pat, first, second, clash):
    from hpms.services.people import coverage

    with _ctx(ctx_for) as ctx:
        c1 = coverage.add_coverage(
            ctx, patient=pat.mrn, payer="ACME1", member_id="M1", valid_from=first[0], valid_to=first[1]
        )
    before = snapshot(settings)

    def call(ctx):
        return coverage.add_coverage(
            ctx,
            patient=pat.mrn,
            payer="ACME1",
            member_id="M2",  # noqa: E731
            valid_from=second[0],
            valid_to=second[1],
        )

    if clash:
        with pytest.raises(ConflictError) as err:
            with _ctx(ctx_for) as ctx:
                call(ctx)
        assert err.value.exit_code == 4
        assert str(c1.id) in err.value.message and err.value.field == "priority"
        assert err.value.action == Action(
            "coverage", "end", target=str(c1.id), give=(("on", "DATE"),), purpose="end it with"
        )
        assert snapshot(settings) == before
    else:
        with _ctx(ctx_for) as ctx:
            call(ctx)
        assert snapshot(settings)["coverage"] == 2
    # Another priority never clashes.
    with _ctx(ctx_for) as ctx:
        coverage.add_coverage(
            ctx,
            patient=pat.mrn,
            payer="ACME1",
            member_id="M3",
            priority="secondary",
            valid_from=second[0],
            valid_to=second[1],
        )


def test_list_orders_primary_first(settings, ctx_for, payer, pat, register):
    from hpms.services.people import coverage

    other = register(first_name="Other", last_name="Person")
    with _ctx(ctx_for) as ctx:
        coverage.add_payer(ctx, name="Beta Care", payer_id="BETA2")
        t = coverage.add_coverage(ctx, patient=pat.mrn, payer="ACME1", member_id="T1", priority="tertiary")
        p = coverage.add_coverage(ctx, patient=pat.mrn, payer="BETA2", member_id="P1", priority="primary")
        s = coverage.add_coverage(ctx, patient=pat.mrn, payer="ACME1", member_id="S1", priority="Secondary")
        coverage.add_coverage(ctx, patient=other.mrn, payer="ACME1", member_id="O1")
    seq = last_seq(settings)
    with _ctx(ctx_for) as ctx:
        listed = coverage.list_coverage(ctx, pat.mrn)
    assert [(c.id, c.priority, c.member_id) for c in listed] == [
        (p.id, "primary", "P1"),
        (s.id, "secondary", "S1"),
        (t.id, "tertiary", "T1"),
    ]
    assert listed[0].payer_name == "Beta Care"
    rows = audit_rows(settings, seq)
    assert [(r["action"], r["entity"], r["patient_id"]) for r in rows] == [("read", "coverage", pat.id)]


def test_end_coverage(settings, ctx_for, payer, pat):
    from hpms.services.people import coverage

    with _ctx(ctx_for) as ctx:
        c = coverage.add_coverage(ctx, patient=pat.mrn, payer="ACME1", member_id="M1", valid_from="2025-01-01")
    seq = last_seq(settings)
    with _ctx(ctx_for) as ctx:
        ended = coverage.end_coverage(ctx, c.id, on="2026-03-31")
    assert (ended.valid_to, ended.active, ended.member_id) == (dt.date(2026, 3, 31), False, "M1")
    assert [(r["action"], r["entity"], r["patient_id"]) for r in audit_rows(settings, seq)] == [
        ("update", "coverage", pat.id)
    ]
    with _ctx(ctx_for) as ctx:
        assert coverage.list_coverage(ctx, pat.mrn) == []
        assert [x.id for x in coverage.list_coverage(ctx, pat.mrn, include_inactive=True)] == [c.id]
        # The ended coverage no longer blocks a new primary.
        new = coverage.add_coverage(ctx, patient=pat.mrn, payer="ACME1", member_id="M2", valid_from="2026-04-01")
    assert new.active


def test_end_coverage_in_the_future_keeps_it_active(ctx_for, payer, pat):
    from hpms.services.people import coverage

    with _ctx(ctx_for) as ctx:
        c = coverage.add_coverage(ctx, patient=pat.mrn, payer="ACME1", member_id="M1")
        ended = coverage.end_coverage(ctx, c.id, on="2026-12-31")
    assert (ended.valid_to, ended.active) == (dt.date(2026, 12, 31), True)
    with _ctx(ctx_for) as ctx:
        today = coverage.end_coverage(ctx, c.id)
    assert (today.valid_to, today.active) == (fixed_clock().date(), False)


def test_end_coverage_refusals(settings, ctx_for, payer, pat):
    from hpms.services.people import coverage

    with _ctx(ctx_for) as ctx:
        c = coverage.add_coverage(ctx, patient=pat.mrn, payer="ACME1", member_id="M1", valid_from="2026-01-01")
    before = snapshot(settings)
    with pytest.raises(ValidationError) as err:
        with _ctx(ctx_for) as ctx:
            coverage.end_coverage(ctx, c.id, on="2025-12-31")
    assert err.value.field == "on"
    with pytest.raises(NotFoundError):
        with _ctx(ctx_for) as ctx:
            coverage.end_coverage(ctx, 999999, on="2026-02-01")
    with pytest.raises(ValidationError):
        with _ctx(ctx_for) as ctx:
            coverage.end_coverage(ctx, c.id, on="2026-02-30")
    assert snapshot(settings) == before


def test_coverage_of_an_unknown_patient_is_not_found(settings, ctx_for, payer):
    from hpms.services.people import coverage

    before = snapshot(settings)
    with pytest.raises(NotFoundError) as err:
        with _ctx(ctx_for) as ctx:
            coverage.list_coverage(ctx, "0199999")
    assert err.value.exit_code == 3
    assert snapshot(settings) == before


# ---- claim filing indicator (SBR09) and Medicare secondary type (SBR05) -----------------------------


@pytest.mark.parametrize(
    ("given", "code"),
    [
        (None, "CI"),
        ("MB", "MB"),
        ("mc", "MC"),
        ("medicare-b", "MB"),
        ("Medicare_Part_B", "MB"),
        ("medicaid", "MC"),
        ("commercial", "CI"),
        ("bcbs", "BL"),
        ("hmo", "HM"),
        ("tricare", "CH"),
        ("va", "VA"),
        ("workers-comp", "WC"),
        ("16", "16"),
        ("zz", "ZZ"),
    ],
)
def test_payer_claim_filing_by_code_or_name(settings, ctx_for, given, code):
    from hpms.services.people import coverage

    with _ctx(ctx_for) as ctx:
        added = coverage.add_payer(ctx, name="Some Plan", payer_id="PLAN1", claim_filing=given)
    assert added.claim_filing == code
    with _ctx(ctx_for) as ctx:
        assert coverage.show_payer(ctx, "PLAN1").claim_filing == code


@pytest.mark.parametrize("bad", ["XX", "medicare", "C1", "commercial plan", "MBB"])
def test_a_bad_claim_filing_is_refused_and_writes_nothing(settings, ctx_for, payer, bad):
    from hpms.services.people import coverage

    before = snapshot(settings)
    for call in (
        lambda ctx: coverage.add_payer(ctx, name="Other", payer_id="OTHER9", claim_filing=bad),
        lambda ctx: coverage.update_payer(ctx, "ACME1", name="Renamed", claim_filing=bad),
    ):
        with pytest.raises(ValidationError) as err:
            with _ctx(ctx_for) as ctx:
                call(ctx)
        assert err.value.field == "claim_filing" and err.value.exit_code == ExitCode.USAGE
        assert repr(bad) in err.value.message and "MB" in err.value.message and "medicare-b" in err.value.message
    assert snapshot(settings) == before
    with _ctx(ctx_for) as ctx:
        assert (coverage.show_payer(ctx, "ACME1").name, coverage.show_payer(ctx, "ACME1").claim_filing) == (
            "Acme Health",
            "CI",
        )


def test_update_payer(settings, ctx_for, payer):
    from hpms.services.people import coverage

    seq = last_seq(settings)
    with _ctx(ctx_for) as ctx:
        out = coverage.update_payer(
            ctx, "ACME1", claim_filing="bcbs", city="Boston", state="MA", phone="617-555-0100", payer_id="ACME2"
        )
    assert (out.id, out.claim_filing, out.city, out.state, out.phone, out.payer_id, out.name) == (
        payer.id,
        "BL",
        "Boston",
        "MA",
        "617-555-0100",
        "ACME2",
        "Acme Health",
    )
    [ev] = audit_rows(settings, seq)
    assert (ev["action"], ev["entity"], ev["entity_id"]) == ("update", "payer", str(payer.id))
    assert sorted(ev["fields_list"]) == ["city", "claim_filing", "payer_id", "phone", "state"]
    with _ctx(ctx_for) as ctx:
        assert coverage.show_payer(ctx, "ACME2").claim_filing == "BL"
        same = coverage.update_payer(ctx, payer.id, payer_id="ACME2", name="Acme Health")  # its own id is no clash
    assert same.payer_id == "ACME2"


@pytest.mark.parametrize(
    ("ref", "kw", "exc", "field"),
    [
        ("ACME1", {}, ValidationError, "options"),
        ("ACME1", {"payer_id": "BETA2"}, ConflictError, None),
        ("ACME1", {"payer_id": "BE TA"}, ValidationError, "payer_id"),
        ("ACME1", {"name": " "}, ValidationError, "name"),
        ("ACME1", {"phone": "call us"}, ValidationError, "phone"),
        ("NOPE", {"name": "X"}, NotFoundError, None),
    ],
)
def test_update_payer_refusals_write_nothing(settings, ctx_for, payer, ref, kw, exc, field):
    from hpms.services.people import coverage

    with _ctx(ctx_for) as ctx:
        coverage.add_payer(ctx, name="Beta Care", payer_id="BETA2")
    before = snapshot(settings)
    with pytest.raises(exc) as err:
        with _ctx(ctx_for) as ctx:
            coverage.update_payer(ctx, ref, **kw)
    if field:
        assert err.value.field == field
    assert snapshot(settings) == before


@pytest.fixture
def medicare(ctx_for):
    from hpms.services.people import coverage

    with ctx_for() as ctx:
        return coverage.add_payer(ctx, name="Medicare Part B", payer_id="MCRB1", claim_filing="MB")


def test_medicare_secondary_type_on_add_and_update(settings, ctx_for, payer, medicare, pat):
    from hpms.services.people import coverage

    with _ctx(ctx_for) as ctx:
        coverage.add_coverage(ctx, patient=pat.mrn, payer="ACME1", member_id="P1")
        c = coverage.add_coverage(
            ctx,
            patient=pat.mrn,
            payer="MCRB1",
            member_id="1EG4TE5MK73",
            priority="secondary",
            medicare_secondary_type="12",
        )
    assert c.medicare_secondary_type == "12"
    seq = last_seq(settings)
    with _ctx(ctx_for) as ctx:
        out = coverage.update_coverage(ctx, c.id, medicare_secondary_type="43")
        assert [x.medicare_secondary_type for x in coverage.list_coverage(ctx, pat.mrn)] == [None, "43"]
    assert out.medicare_secondary_type == "43"
    [ev] = audit_rows(settings, seq)[:1]
    assert (ev["action"], ev["entity"], ev["fields_list"], ev["patient_id"]) == (
        "update",
        "coverage",
        ["medicare_secondary_type"],
        pat.id,
    )
    with _ctx(ctx_for) as ctx:
        cleared = coverage.update_coverage(ctx, c.id, medicare_secondary_type="none", group_number="G7")
    assert (cleared.medicare_secondary_type, cleared.group_number) == (None, "G7")


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"payer": "MCRB1", "priority": "secondary", "medicare_secondary_type": "11"}, "not a Medicare secondary type"),
        ({"payer": "MCRB1", "priority": "secondary", "medicare_secondary_type": "MB"}, "not a Medicare secondary type"),
        ({"payer": "ACME1", "priority": "secondary", "medicare_secondary_type": "12"}, "only for a Medicare coverage"),
        ({"payer": "MCRB1", "priority": "primary", "medicare_secondary_type": "12"}, "secondary or tertiary"),
    ],
)
def test_a_bad_medicare_secondary_type_is_refused(settings, ctx_for, payer, medicare, pat, kw, words):
    from hpms.services.people import coverage

    before = snapshot(settings)
    with pytest.raises(ValidationError) as err:
        with _ctx(ctx_for) as ctx:
            coverage.add_coverage(ctx, patient=pat.mrn, member_id="M1", **kw)
    assert err.value.field == "medicare_secondary_type" and words in err.value.message
    assert snapshot(settings) == before
    # the same on an update, of a coverage that exists
    with _ctx(ctx_for) as ctx:
        c = coverage.add_coverage(ctx, patient=pat.mrn, member_id="M1", payer=kw["payer"], priority=kw["priority"])
    before = snapshot(settings)
    with pytest.raises(ValidationError) as err:
        with _ctx(ctx_for) as ctx:
            coverage.update_coverage(ctx, c.id, medicare_secondary_type=kw["medicare_secondary_type"])
    assert err.value.field == "medicare_secondary_type" and words in err.value.message
    assert snapshot(settings) == before


def test_update_coverage_refusals(settings, ctx_for, payer, pat):
    from hpms.services.people import coverage

    with _ctx(ctx_for) as ctx:
        c = coverage.add_coverage(ctx, patient=pat.mrn, payer="ACME1", member_id="M1")
    before = snapshot(settings)
    with pytest.raises(ValidationError) as err:
        with _ctx(ctx_for) as ctx:
            coverage.update_coverage(ctx, c.id)
    assert err.value.field == "options"
    with pytest.raises(NotFoundError):
        with _ctx(ctx_for) as ctx:
            coverage.update_coverage(ctx, 999999, group_number="G1")
    assert snapshot(settings) == before
