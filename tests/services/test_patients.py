"""Patient registration, bad input, search, listing, update, duplicates and merge."""

from __future__ import annotations

import datetime as dt

import pytest

from hpms.errors import ConflictError, ExitCode, NotFoundError, ValidationError
from hpms.services import lookups
from tests.services.conftest import NOW, fixed_clock
from tests.services.helpers import audit_rows, last_seq, query, snapshot

FULL = dict(
    first_name="Ana",
    middle_name="Beatriz",
    last_name="Müller",
    preferred_name="Bea",
    dob="1985-03-14",
    sex_at_birth="Female",
    gender_identity="woman",
    phone="(555) 867-5309",
    phone_alt="+1 555 300 4000",
    email="ana.mueller@example.org",
    address_line1="12 Quillfeather Lane",
    address_line2="Apt 3",
    city="Springfield",
    state="IL",
    postal_code="62704",
    country="us",
    preferred_channel="sms",
    consent_sms=True,
    consent_email="yes",
    ssn="287-65-4321",
)


def _ctx(ctx_for, user=None):
    return ctx_for(user, clock=fixed_clock)


def _search(ctx_for, q, **kw):
    from hpms.services.people import patients

    with _ctx(ctx_for) as ctx:
        return [p.id for p in patients.search(ctx, q, **kw)]


def test_register_with_every_field(settings, ctx_for):
    from hpms.services.people import patients

    with _ctx(ctx_for) as ctx:
        p = patients.register(ctx, **FULL)
    assert p.mrn == "0100001"
    assert (p.first_name, p.middle_name, p.last_name, p.preferred_name) == ("Ana", "Beatriz", "Müller", "Bea")
    assert p.dob == dt.date(1985, 3, 14)
    assert p.sex_at_birth == "female" and p.gender_identity == "woman"
    assert p.phone == "(555) 867-5309" and p.phone_alt == "+1 555 300 4000"
    assert p.email == "ana.mueller@example.org"
    assert (p.address_line1, p.address_line2, p.city, p.state, p.postal_code, p.country) == (
        "12 Quillfeather Lane",
        "Apt 3",
        "Springfield",
        "IL",
        "62704",
        "US",
    )
    assert p.preferred_channel == "sms" and p.consent_sms is True and p.consent_email is True
    assert p.ssn_masked == "***-**-4321"
    assert p.active and p.merged_into_id is None and p.version == 1
    assert p.created_at == NOW == p.updated_at
    with _ctx(ctx_for) as ctx:
        shown = patients.show(ctx, p.mrn)
    assert shown.model_dump(exclude={"ssn_masked"}) == p.model_dump(exclude={"ssn_masked"})
    row = query(settings, "SELECT first_norm, last_norm, phone_digits, phone_alt_digits, email_norm FROM patient")[0]
    assert row == {
        "first_norm": "ana",
        "last_norm": "muller",
        "phone_digits": "5558675309",
        "phone_alt_digits": "5553004000",
        "email_norm": "ana.mueller@example.org",
    }


def test_register_minimal_fields_has_defaults(ctx_for):
    from hpms.services.people import patients

    with _ctx(ctx_for) as ctx:
        p = patients.register(ctx, first_name="  Li  ", last_name="Wu", dob=dt.date(2000, 1, 2))
    assert (p.first_name, p.last_name, p.dob) == ("Li", "Wu", dt.date(2000, 1, 2))
    assert p.ssn_masked is None and p.email is None and p.consent_sms is False and p.consent_email is False


def test_mrns_come_from_a_sequence(settings, register):
    mrns = [register(first_name=f"P{i}").mrn for i in range(3)]
    assert mrns == ["0100001", "0100002", "0100003"]
    explicit = register(mrn="A-77")
    assert explicit.mrn == "A-77"
    assert register().mrn == "0100004"


def test_the_sequence_skips_an_mrn_taken_explicitly(register):
    assert register().mrn == "0100001"
    assert register(mrn="0100002").mrn == "0100002"
    assert register().mrn == "0100003"


def test_duplicate_mrn_is_a_conflict_and_writes_nothing(settings, ctx_for, register):
    from hpms.services.people import patients

    register(mrn="CHART-9")
    before = snapshot(settings)
    with pytest.raises(ConflictError) as err:
        with _ctx(ctx_for) as ctx:
            patients.register(ctx, first_name="Other", last_name="Person", dob="1990-01-01", mrn="CHART-9")
    assert err.value.exit_code == ExitCode.CONFLICT == 4
    assert err.value.field == "mrn" and "CHART-9" in err.value.message
    assert snapshot(settings) == before


BAD = [
    ("impossible date", {"dob": "2026-02-30"}, "dob", "not a valid date"),
    ("impossible US date", {"dob": "02/30/2026"}, "dob", "not a valid date"),
    ("not a date", {"dob": "14.03.1985"}, "dob", "not a date"),
    ("future birth date", {"dob": "2026-06-16"}, "dob", "future"),
    ("ancient birth date", {"dob": "1890-01-01"}, "dob", "130 years"),
    ("missing birth date", {"dob": None}, "dob", "required"),
    ("missing first name", {"first_name": "   "}, "first_name", "required"),
    ("missing last name", {"last_name": None}, "last_name", "required"),
    ("name too long", {"last_name": "x" * 101}, "last_name", "longer"),
    ("control character", {"first_name": "A\x07na"}, "first_name", "control"),
    ("malformed email", {"email": "ana@"}, "email", "e-mail"),
    ("email without domain dot", {"email": "ana at example.org"}, "email", "e-mail"),
    ("malformed phone", {"phone": "555-CALL-NOW"}, "phone", "phone"),
    ("phone too short", {"phone": "12345"}, "phone", "phone"),
    ("phone too long", {"phone": "+1 555 123 4567 8901 2"}, "phone", "phone"),
    ("malformed alt phone", {"phone_alt": "n/a"}, "phone_alt", "phone"),
    ("SSN with 8 digits", {"ssn": "123-45-678"}, "ssn", "9 digits"),
    ("SSN with 10 digits", {"ssn": "1234567890"}, "ssn", "9 digits"),
    ("SSN with letters", {"ssn": "12A-45-6789"}, "ssn", "9 digits"),
    ("impossible SSN area", {"ssn": "000-12-3456"}, "ssn", "not a valid SSN"),
    ("unknown sex at birth", {"sex_at_birth": "robot"}, "sex_at_birth", "not one of"),
    ("unknown channel", {"preferred_channel": "pigeon"}, "preferred_channel", "not one of"),
    ("sms channel without phone", {"preferred_channel": "sms"}, "preferred_channel", "phone"),
    ("email channel without email", {"preferred_channel": "email"}, "preferred_channel", "e-mail"),
    ("bad country", {"country": "USA"}, "country", "two-letter"),
    ("bad consent", {"consent_sms": "maybe"}, "consent_sms", "yes/no"),
    ("bad explicit mrn", {"mrn": "A 1"}, "mrn", "letters, digits"),
]


@pytest.mark.parametrize(("case", "change", "field", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_refused_naming_the_field_and_writes_nothing(settings, ctx_for, case, change, field, words):
    from hpms.services.people import patients

    data = {"first_name": "Ana", "last_name": "Quill", "dob": "1985-03-14", **change}
    before = snapshot(settings)
    with pytest.raises(ValidationError) as err:
        with _ctx(ctx_for) as ctx:
            patients.register(ctx, **data)
    assert err.value.exit_code == ExitCode.USAGE == 2
    assert err.value.field == field
    assert words in err.value.message
    assert str(err.value).startswith(f"{field}: ")
    assert snapshot(settings) == before
    for digits in ("123456789", "1234567890"):  # a refused SSN is not echoed back
        assert digits not in err.value.message


def test_birth_date_today_is_accepted(register):
    assert register(dob=NOW.date().isoformat()).dob == NOW.date()


@pytest.mark.parametrize("call", ["show", "update", "merge_keep", "merge_dup", "coverage", "audit"])
def test_unknown_patient_is_not_found_and_writes_nothing(settings, ctx_for, register, payer, call):
    from hpms.services.people import coverage, patients
    from hpms.services.platform import audit_query

    p = register()
    before = snapshot(settings)
    calls = {
        "show": lambda ctx: patients.show(ctx, "9999999"),
        "update": lambda ctx: patients.update(ctx, "NOPE-1", phone="555-123-4567"),
        "merge_keep": lambda ctx: patients.merge(ctx, "424242", p.mrn),
        "merge_dup": lambda ctx: patients.merge(ctx, p.mrn, "424242"),
        "coverage": lambda ctx: coverage.add_coverage(ctx, patient="0199999", payer="ACME1", member_id="M1"),
        "audit": lambda ctx: audit_query.log(ctx, patient="0199999"),
    }
    with pytest.raises(NotFoundError) as err:
        with _ctx(ctx_for) as ctx:
            calls[call](ctx)
    assert err.value.exit_code == ExitCode.NOT_FOUND == 3
    assert err.value.action is not None and (err.value.action.noun, err.value.action.verb) == ("patients", "search")
    assert snapshot(settings) == before


def test_find_by_mrn_or_id(ctx_for, register):

    p = register()
    with _ctx(ctx_for) as ctx:
        assert lookups.find_patient(ctx, p.mrn).id == p.id
        assert lookups.find_patient(ctx, p.id).id == p.id
        assert lookups.find_patient(ctx, f" {p.id} ").id == p.id


# --- search ---


@pytest.fixture
def people(register):
    return {
        "ana": register(first_name="Ana", last_name="Müller", dob="1985-03-14", phone="(555) 867-5309"),
        "otto": register(first_name="Otto", last_name="Mulligan", dob="1970-07-07", phone_alt="555.300.4000"),
        "zoe": register(first_name="Zoë", last_name="Åberg", dob="1985-03-14", phone="+44 20 7946 0958"),
        "jon": register(first_name="Jon", last_name="Smith", dob="1992-11-30", mrn="LEGACY-12"),
    }


@pytest.mark.parametrize(
    "q",
    [
        "mul",
        "MÜL",
        "Mül",
        "muller",
        "muller an",
        "Müller, Ana",
        "ana müller",
        "ANA MULLER",
        "  muller   ana ",
        "Muller,A",
    ],
)
def test_search_by_name_prefix_is_accent_and_case_insensitive(ctx_for, people, q):
    ids = _search(ctx_for, q)
    assert people["ana"].id in ids
    assert people["zoe"].id not in ids and people["jon"].id not in ids


def test_search_by_name_prefix_precision(ctx_for, people):
    assert _search(ctx_for, "mul") == [people["ana"].id, people["otto"].id]
    assert _search(ctx_for, "muller an") == [people["ana"].id]
    assert _search(ctx_for, "Müller, Otto") == []
    assert _search(ctx_for, "zoe") == [people["zoe"].id]
    assert _search(ctx_for, "aberg") == [people["zoe"].id]
    assert _search(ctx_for, "ot") == [people["otto"].id]  # first name prefix
    assert _search(ctx_for, "Smithers") == []


@pytest.mark.parametrize("q", ["1985-03-14", "03/14/1985", "3/14/1985"])
def test_search_by_date_of_birth(ctx_for, people, q):
    assert sorted(_search(ctx_for, q)) == sorted([people["ana"].id, people["zoe"].id])


@pytest.mark.parametrize(
    "q", ["555-867-5309", "(555) 867-5309", "5558675309", "+1 555 867 5309", "1-555-867-5309", "555.867.5309"]
)
def test_search_by_phone_in_any_format(ctx_for, people, q):
    assert _search(ctx_for, q) == [people["ana"].id]


def test_search_by_alternate_and_international_phone(ctx_for, people):
    assert _search(ctx_for, "555 300 4000") == [people["otto"].id]
    assert _search(ctx_for, "+44 20 7946 0958") == [people["zoe"].id]
    assert _search(ctx_for, "555-000-0000") == []


def test_search_by_mrn(ctx_for, people):
    assert _search(ctx_for, people["otto"].mrn) == [people["otto"].id]
    assert _search(ctx_for, "LEGACY-12") == [people["jon"].id]
    assert _search(ctx_for, "0199999") == []


def test_search_limit_and_empty_query(settings, ctx_for, people):
    from hpms.services.people import patients

    assert len(_search(ctx_for, "mul", limit=1)) == 1
    before = snapshot(settings)
    for q, kw, field in (
        ("   ", {}, "query"),
        ("mul", {"limit": 0}, "limit"),
        ("mul", {"limit": 1001}, "limit"),
        ("2026-02-30", {}, "query"),
    ):
        with pytest.raises(ValidationError) as err:
            with _ctx(ctx_for) as ctx:
                patients.search(ctx, q, **kw)
        assert err.value.field == field
    assert snapshot(settings) == before


# --- list ---


def test_list_pages_through_everyone_in_name_order(settings, ctx_for, register):
    from hpms.services.people import patients

    names = ["Young", "Adams", "Lopez", "Baker", "Ng", "Zimmer", "Čapek"]
    for n in names:
        register(first_name="Pat", last_name=n)
    seen = []
    with _ctx(ctx_for) as ctx:
        for offset in range(0, 8, 3):
            page = patients.list_patients(ctx, limit=3, offset=offset)
            assert len(page) == min(3, len(names) - offset)
            seen += [p.last_name for p in page]
        assert patients.list_patients(ctx, limit=3, offset=7) == []
    assert seen == ["Adams", "Baker", "Čapek", "Lopez", "Ng", "Young", "Zimmer"]
    for kw, field in (({"limit": 0}, "limit"), ({"limit": 10001}, "limit"), ({"offset": -1}, "offset")):
        with pytest.raises(ValidationError) as err:
            with _ctx(ctx_for) as ctx:
                patients.list_patients(ctx, **kw)
        assert err.value.field == field


# --- update ---


def test_update_changes_fields_and_bumps_the_version(settings, ctx_for, register):
    from hpms.services.people import patients

    p = register(first_name="Ana", last_name="Quill", phone="555-111-2222", email="a@example.org")
    seq = last_seq(settings)
    with _ctx(ctx_for) as ctx:
        out = patients.update(
            ctx, p.mrn, expected_version=1, last_name="Quíll-Smith", phone="555 999 8888", email="", ssn="287-65-4321"
        )
    assert out.version == 2
    assert (out.last_name, out.phone, out.email, out.ssn_masked) == ("Quíll-Smith", "555 999 8888", None, "***-**-4321")
    row = query(settings, "SELECT last_norm, phone_digits, email_norm FROM patient WHERE id = :i", i=p.id)[0]
    assert row == {"last_norm": "quill-smith", "phone_digits": "5559998888", "email_norm": None}
    assert _search(ctx_for, "quill-sm") == [p.id]
    assert _search(ctx_for, "555-111-2222") == []
    ev = audit_rows(settings, seq)[0]
    assert ev["action"] == "update" and sorted(ev["fields_list"]) == ["email", "last_name", "phone", "ssn"]


def test_update_with_a_stale_version_is_a_conflict(settings, ctx_for, register):
    from hpms.services.people import patients

    p = register(first_name="Ana", last_name="Quill")
    with _ctx(ctx_for) as ctx:
        patients.update(ctx, p.mrn, expected_version=1, city="Springfield")
    before = snapshot(settings)
    with pytest.raises(ConflictError) as err:
        with _ctx(ctx_for) as ctx:
            patients.update(ctx, p.mrn, expected_version=1, city="Shelbyville")
    assert err.value.exit_code == 4
    assert "version 2" in err.value.message
    assert snapshot(settings) == before
    with _ctx(ctx_for) as ctx:
        assert patients.show(ctx, p.mrn).city == "Springfield"


def test_update_refuses_bad_values_nothing_to_change_and_mrn(settings, ctx_for, register):
    from hpms.services.people import patients

    p = register(first_name="Ana", last_name="Quill")
    before = snapshot(settings)
    for kw, field in (
        ({"dob": "2026-02-30"}, "dob"),
        ({"email": "nope"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"ssn": "12-34"}, "ssn"),
        ({}, "options"),
        ({"mrn": "X-1"}, "mrn"),
        ({"preferred_channel": "email"}, "preferred_channel"),
    ):
        with pytest.raises(ValidationError) as err:
            with _ctx(ctx_for) as ctx:
                patients.update(ctx, p.mrn, **kw)
        assert err.value.field == field, kw
    assert snapshot(settings) == before


@pytest.mark.parametrize(
    ("channel", "field", "change"),
    [
        ("sms", "phone", {"phone": ""}),
        ("email", "email", {"email": ""}),
        ("sms", "preferred_channel", {"preferred_channel": "sms", "phone": ""}),
    ],
)
def test_update_cannot_remove_the_contact_the_preferred_channel_needs(
    settings, ctx_for, register, channel, field, change
):
    from hpms.services.people import patients

    p = register(phone="555-123-4567", email="ida@example.org", preferred_channel=channel)
    before = snapshot(settings)
    with pytest.raises(ValidationError) as err:
        with _ctx(ctx_for) as ctx:
            patients.update(ctx, p.mrn, **change)
    assert err.value.field == field
    assert snapshot(settings) == before
    with _ctx(ctx_for) as ctx:  # switching the channel away first makes it possible
        patients.update(
            ctx, p.mrn, preferred_channel="mail", **{k: v for k, v in change.items() if k != "preferred_channel"}
        )
        out = patients.update(ctx, p.mrn, phone="555-765-4321")
    assert out.preferred_channel == "mail" and out.phone == "555-765-4321"


def test_update_with_unchanged_values_writes_no_event(settings, ctx_for, register):
    from hpms.services.people import patients

    p = register(first_name="Ana", last_name="Quill", city="Springfield")
    seq = last_seq(settings)
    with _ctx(ctx_for) as ctx:
        out = patients.update(ctx, p.mrn, city="Springfield")
    assert out.version == 1
    assert last_seq(settings) == seq


# --- duplicates and merge ---


def test_duplicates_are_ranked(ctx_for, register):
    from hpms.services.people import patients

    a1 = register(first_name="Ana", last_name="Müller", dob="1985-03-14", phone="555-867-5309")
    a2 = register(first_name="Ana", last_name="Muller", dob="1985-03-14", phone="(555) 867 5309")
    b1 = register(first_name="Jonathan", last_name="Smith", dob="1970-01-01")
    b2 = register(first_name="Jonathon", last_name="Smith", dob="1970-01-01")
    c1 = register(first_name="Kim", last_name="Lee", dob="1990-05-05", phone="555-222-0001")
    c2 = register(first_name="Kimberly", last_name="Lee", dob="1991-06-06", phone="555.222.0001")
    register(first_name="Unrelated", last_name="Person", dob="1990-05-05", phone="555-222-0001")
    with _ctx(ctx_for) as ctx:
        found = patients.duplicates(ctx, min_score=20)
        default = patients.duplicates(ctx)
    pairs = [(c.keep.id, c.duplicate.id) for c in found]
    assert pairs[:3] == [(a1.id, a2.id), (b1.id, b2.id), (c1.id, c2.id)]
    assert [c.score for c in found[:3]] == [95, 50, 25]
    assert found[0].reasons == ["same name and date of birth", "same phone"]
    assert found[1].reasons[0].startswith("same date of birth, similar name")
    assert found[2].reasons == ["same phone"]
    assert all(s1 >= s2 for s1, s2 in zip([c.score for c in found], [c.score for c in found[1:]]))
    # The default threshold leaves out a shared phone alone.
    assert [(c.keep.id, c.duplicate.id) for c in default] == [(a1.id, a2.id), (b1.id, b2.id)]


def test_same_ssn_is_a_strong_duplicate(ctx_for, register):
    from hpms.services.people import patients

    a = register(first_name="Robert", last_name="Ng", dob="1960-02-02", ssn="287-65-4321")
    b = register(first_name="Bob", last_name="Nguyen", dob="1961-02-02", ssn="287654321")
    with _ctx(ctx_for) as ctx:
        found = patients.duplicates(ctx)
    assert [(c.keep.id, c.duplicate.id, c.reasons) for c in found] == [(a.id, b.id, ["same SSN"])]


@pytest.fixture
def pair(register, ctx_for, payer):
    """A patient and a duplicate registration of the same person, the duplicate with coverage."""
    from hpms.services.people import coverage

    keep = register(first_name="Ana", last_name="Müller", dob="1985-03-14")
    dup = register(
        first_name="Ana",
        last_name="Muller",
        dob="1985-03-14",
        phone="555-867-5309",
        email="ana@example.org",
        ssn="287-65-4321",
    )
    with _ctx(ctx_for) as ctx:
        cov = coverage.add_coverage(ctx, patient=dup.mrn, payer="ACME1", member_id="MBR1", valid_from="2025-01-01")
    return keep, dup, cov


def test_merge_moves_coverage_fills_gaps_and_retires_the_duplicate(settings, ctx_for, pair):
    from hpms.services.people import coverage, patients

    keep, dup, cov = pair
    seq = last_seq(settings)
    with _ctx(ctx_for) as ctx:
        out = patients.merge(ctx, keep.mrn, dup.mrn)
    assert out.id == keep.id and out.version == 2
    assert (out.phone, out.email, out.ssn_masked) == ("555-867-5309", "ana@example.org", "***-**-4321")
    with _ctx(ctx_for) as ctx:
        covs = coverage.list_coverage(ctx, keep.mrn)
        retired = patients.show(ctx, dup.id)
        assert coverage.list_coverage(ctx, dup.mrn) == []
    assert [(c.id, c.patient_id, c.member_id) for c in covs] == [(cov.id, keep.id, "MBR1")]
    assert retired.active is False and retired.merged_into_id == keep.id
    # Search finds KEEP by the data it got from DUPLICATE; the retired record no longer shows.
    assert _search(ctx_for, "555-867-5309") == [keep.id]
    assert _search(ctx_for, "muller") == [keep.id]
    rows = audit_rows(settings, seq)[:2]
    assert [(r["action"], r["patient_id"]) for r in rows] == [("merge", keep.id), ("merge", dup.id)]
    assert "coverage=1" in rows[0]["detail"]
    assert set(rows[0]["fields_list"]) == {"phone", "email", "ssn"}


def test_find_of_a_merged_patient_says_where_it_went(ctx_for, pair):
    from hpms.services.people import patients

    keep, dup, _ = pair
    with _ctx(ctx_for) as ctx:
        patients.merge(ctx, keep.mrn, dup.mrn)
    for ref in (dup.mrn, dup.id):
        with pytest.raises(NotFoundError) as err:
            with _ctx(ctx_for) as ctx:
                lookups.find_patient(ctx, ref)
        assert f"merged into MRN {keep.mrn}" in err.value.message
        assert err.value.action.target == keep.mrn
    with _ctx(ctx_for) as ctx:
        assert lookups.find_patient(ctx, dup.mrn, include_merged=True).id == dup.id


def test_merge_refuses_the_same_patient_and_writes_nothing(settings, ctx_for, pair):
    from hpms.services.people import patients

    keep, _, _ = pair
    before = snapshot(settings)
    with pytest.raises(ConflictError) as err:
        with _ctx(ctx_for) as ctx:
            patients.merge(ctx, keep.mrn, str(keep.id))
    assert err.value.exit_code == 4 and "same patient" in err.value.message
    assert snapshot(settings) == before


def test_merge_refuses_an_already_merged_patient(settings, ctx_for, pair, register):
    from hpms.services.people import patients

    keep, dup, _ = pair
    third = register(first_name="Ana", last_name="Mueller", dob="1985-03-14")
    with _ctx(ctx_for) as ctx:
        patients.merge(ctx, keep.mrn, dup.mrn)
    before = snapshot(settings)
    for a, b in ((third.mrn, dup.mrn), (dup.mrn, third.mrn)):
        with pytest.raises(NotFoundError) as err:
            with _ctx(ctx_for) as ctx:
                patients.merge(ctx, a, b)
        assert "merged into" in err.value.message
    assert snapshot(settings) == before


def test_merge_refuses_an_inactive_patient(settings, ctx_for, pair):
    from hpms.models import Patient
    from hpms.services.people import patients

    keep, dup, _ = pair
    with _ctx(ctx_for) as ctx:  # deactivated by some other means than a merge
        ctx.session.get(Patient, dup.id).active = False
    before = snapshot(settings)
    for a, b in ((keep.mrn, dup.mrn), (dup.mrn, keep.mrn)):
        with pytest.raises(ConflictError) as err:
            with _ctx(ctx_for) as ctx:
                patients.merge(ctx, a, b)
        assert "active" in err.value.message
    assert snapshot(settings) == before


def test_list_and_search_skip_inactive_unless_asked(ctx_for, pair):
    from hpms.services.people import patients

    keep, dup, _ = pair
    with _ctx(ctx_for) as ctx:
        patients.merge(ctx, keep.mrn, dup.mrn)
    with _ctx(ctx_for) as ctx:
        assert [p.id for p in patients.list_patients(ctx)] == [keep.id]
        assert {p.id for p in patients.list_patients(ctx, include_inactive=True)} == {keep.id, dup.id}
        assert {p.id for p in patients.search(ctx, "mul", include_inactive=True)} == {keep.id, dup.id}
