"""`hpms patients`: register, show, list, search, update, duplicates, merge and their bad input."""

from __future__ import annotations

import json

import pytest

from tests.cli.helpers import error_line, iso_date, iso_datetime, ok, tsv, with_denied

SHOW_KEYS = {
    "tz",
    "id",
    "mrn",
    "first_name",
    "middle_name",
    "last_name",
    "preferred_name",
    "dob",
    "sex_at_birth",
    "gender_identity",
    "phone",
    "phone_alt",
    "email",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "country",
    "preferred_channel",
    "consent_sms",
    "consent_email",
    "ssn_masked",
    "active",
    "merged_into_id",
    "version",
    "created_at",
    "updated_at",
}
LIST_HEADER = ["MRN", "Last", "First", "Preferred", "DOB", "Phone"]


def register(cli, first, last, dob, *extra):
    return ok(cli("patients", "register", "--first-name", first, "--last-name", last, "--dob", dob, *extra, "--json"))


def test_register_json(cli):
    out = register(
        cli,
        "Ana",
        "Müller",
        "1985-03-14",
        "--middle-name",
        "Sofia",
        "--sex-at-birth",
        "female",
        "--phone",
        "555-201-3344",
        "--email",
        "ana.muller@example.org",
        "--preferred-channel",
        "sms",
        "--consent-sms",
        "--ssn",
        "123-45-6789",
        "--country",
        "us",
    )
    assert set(out) == SHOW_KEYS
    assert out["mrn"] == "0100001"
    assert iso_date(out["dob"]).isoformat() == "1985-03-14"
    created = iso_datetime(out["created_at"])
    assert iso_datetime(out["updated_at"]) == created
    assert out["ssn_masked"] == "***-**-6789"
    assert out["consent_sms"] is True and out["consent_email"] is False
    assert out["country"] == "US"
    assert out["version"] == 1 and out["active"] is True


def test_register_plain_prints_the_mrn_only(cli):
    r = cli("patients", "register", "--first-name", "Liam", "--last-name", "Okafor", "--dob", "2001-07-04")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "0100001\n"
    assert "registered Liam Okafor as MRN 0100001" in r.stderr


def test_register_keeps_a_given_mrn(cli):
    assert register(cli, "Liam", "Okafor", "2001-07-04", "--mrn", "A-77")["mrn"] == "A-77"


def test_show_json_plain_and_reveal(cli, patient):
    out = ok(cli("patients", "show", patient, "--json"))
    assert out["mrn"] == patient
    assert out["ssn_masked"] == "***-**-6789"
    assert ok(cli("patients", "show", str(out["id"]), "--json"))["mrn"] == patient
    r = cli("patients", "show", patient)
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == [
        "id",
        "mrn",
        "first_name",
        "middle_name",
        "last_name",
        "preferred_name",
        "dob",
        "sex_at_birth",
        "gender_identity",
        "phone",
        "phone_alt",
        "email",
        "address_line1",
        "address_line2",
        "city",
        "state",
        "postal_code",
        "country",
        "preferred_channel",
        "consent_sms",
        "consent_email",
        "tz",
        "ssn_masked",
        "active",
        "merged_into_id",
        "version",
        "created_at",
        "updated_at",
        "balance",
        "credit",
    ]
    assert out["balance"] == "0.00" and out["credit"] == "0.00"
    assert "123-45-6789" not in r.stdout
    assert ok(cli("patients", "show", patient, "--reveal-ssn", "--json"))["ssn_masked"] == "123-45-6789"


def test_front_desk_cannot_reveal_ssn(cli, patient, as_user, counts):
    env = as_user("maria", "front_desk")
    before = counts("audit_event")
    error_line(cli("patients", "show", patient, "--reveal-ssn", env=env), 5, "maria")
    assert counts("audit_event") == with_denied(before)


def test_list_json_and_plain(cli):
    register(cli, "Liam", "Okafor", "2001-07-04", "--phone", "555-201-0001")
    register(cli, "Émile", "Dubois", "1970-12-31")
    listed = ok(cli("patients", "list", "--json"))
    assert [(p["last_name"], p["first_name"]) for p in listed] == [("Dubois", "Émile"), ("Okafor", "Liam")]
    assert set(listed[0]) == {"id", "mrn", "first_name", "last_name", "preferred_name", "dob", "phone", "active"}
    iso_date(listed[0]["dob"])
    r = cli("patients", "list")
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == LIST_HEADER
    assert rows == [
        ["0100002", "Dubois", "Émile", "", "1970-12-31", ""],
        ["0100001", "Okafor", "Liam", "", "2001-07-04", "555-201-0001"],
    ]
    assert r.stderr == ""
    assert ok(cli("patients", "list", "--limit", "1", "--offset", "1", "--json"))[0]["last_name"] == "Okafor"


def test_empty_list_plain_has_the_header(cli):
    r = cli("patients", "list")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "\t".join(LIST_HEADER) + "\n"


def test_search(cli, patient):
    register(cli, "Liam", "Okafor", "2001-07-04")
    for query in ("mull", "MÜLLER", "muller an", "Müller, Ana", "1985-03-14", "03/14/1985", "(555) 201-3344", patient):
        found = ok(cli("patients", "search", query, "--json"))
        assert [p["mrn"] for p in found] == [patient], query
    r = cli("patients", "search", "oka")
    header, rows = tsv(r.stdout)
    assert header == LIST_HEADER and [row[1] for row in rows] == ["Okafor"]
    assert ok(cli("patients", "search", "nobody-like-this", "--json")) == []


def test_search_bad_date(cli):
    error_line(cli("patients", "search", "2026-02-30"), 2, "QUERY", "2026-02-30")


def test_list_and_search_are_audited_with_patient_ids(cli, patient, raw_sql):
    ok(cli("patients", "search", "mull", "--json"))
    last = raw_sql("SELECT action, patient_ids FROM audit_event ORDER BY seq DESC LIMIT 1")[0]
    assert last[0] == "search"
    assert json.loads(last[1]) == [ok(cli("patients", "show", patient, "--json"))["id"]]


def test_update(cli, patient):
    out = ok(cli("patients", "update", patient, "--phone", "555-201-9999", "--consent-email", "--json"))
    assert out["phone"] == "555-201-9999" and out["consent_email"] is True
    assert out["version"] == 2
    assert iso_datetime(out["updated_at"]) >= iso_datetime(out["created_at"])
    r = cli("patients", "update", patient, "--email", "", "--expected-version", "2")
    assert r.exit_code == 0, r.stderr
    assert (
        dict(line.split(None, 1) for line in r.stdout.splitlines() if len(line.split(None, 1)) == 2)["version"] == "3"
    )


def test_stale_update_is_a_conflict(cli, patient, counts):
    before = counts("audit_event")
    error_line(cli("patients", "update", patient, "--phone", "555-201-9999", "--expected-version", "7"), 4, "version")
    assert ok(cli("patients", "show", patient, "--json"))["phone"] == "555-201-3344"
    assert counts("audit_event")["audit_event"] == before["audit_event"] + 1  # only the show


@pytest.mark.parametrize(
    "option, value, words",
    [
        ("--dob", "2026-02-30", ("dob", "2026-02-30")),
        ("--dob", "2099-01-01", ("dob", "future")),
        ("--dob", "14.03.1985", ("dob", "not a date")),
        ("--email", "ana@", ("email", "ana@")),
        ("--email", "ana.example.org", ("email",)),
        ("--phone", "555-CALL-NOW", ("phone", "555-CALL-NOW")),
        ("--phone", "12345", ("phone",)),
        ("--ssn", "123-45-678", ("ssn", "9 digits")),
        ("--ssn", "1234567890", ("ssn", "9 digits")),
        ("--ssn", "abc-de-fghi", ("ssn",)),
        ("--sex-at-birth", "robot", ("--sex-at-birth", "robot")),
        ("--country", "Germany", ("country",)),
        ("--mrn", "A B", ("mrn",)),
    ],
)
def test_register_bad_input(cli, counts, option, value, words):
    before = counts("patient", "audit_event", "counter")
    args = {"--first-name": "Ana", "--last-name": "Silva", "--dob": "1990-01-02", option: value}
    r = cli("patients", "register", *[x for kv in args.items() for x in kv])
    error_line(r, 2, *words)
    assert r.stdout == ""
    assert counts("patient", "audit_event", "counter") == before


@pytest.mark.parametrize("missing", ["--first-name", "--last-name", "--dob"])
def test_register_missing_required(cli, counts, missing):
    before = counts("patient", "audit_event")
    args = {"--first-name": "Ana", "--last-name": "Silva", "--dob": "1990-01-02"}
    del args[missing]
    r = cli("patients", "register", *[x for kv in args.items() for x in kv])
    error_line(r, 2, missing, "required")
    assert counts("patient", "audit_event") == before


def test_duplicate_mrn(cli, counts):
    register(cli, "Liam", "Okafor", "2001-07-04", "--mrn", "A-77")
    before = counts("patient", "audit_event")
    r = cli(
        "patients", "register", "--first-name", "Ana", "--last-name", "Silva", "--dob", "1990-01-02", "--mrn", "A-77"
    )
    error_line(r, 4, "mrn", "A-77")
    assert counts("patient", "audit_event") == before


def test_update_bad_input_changes_nothing(cli, patient, counts):
    before = counts("audit_event")
    error_line(cli("patients", "update", patient, "--dob", "2026-02-30"), 2, "dob")
    error_line(cli("patients", "update", patient, "--email", "not-an-email"), 2, "email")
    error_line(cli("patients", "update", patient), 2, "nothing to change")
    assert counts("audit_event") == before
    out = ok(cli("patients", "show", patient, "--json"))
    assert out["dob"] == "1985-03-14" and out["version"] == 1


@pytest.mark.parametrize(
    "args",
    [
        ("patients", "show", "0999999"),
        ("patients", "show", "999"),
        ("patients", "update", "0999999", "--phone", "555-201-9999"),
        ("patients", "merge", "0100001", "0999999", "--yes"),
        ("patients", "merge", "0999999", "0100001", "--yes"),
        ("coverage", "list", "0999999"),
        ("audit", "log", "--patient", "0999999"),
    ],
    ids=lambda a: " ".join(a[:3]),
)
def test_unknown_patient(cli, patient, counts, args):
    before = counts("patient", "audit_event")
    unknown = "'999'" if "999" in args else "'0999999'"
    error_line(cli(*args), 3, "no patient", unknown)
    assert counts("patient", "audit_event") == before


def test_duplicates(cli, patient):
    register(cli, "Anna", "Müller", "1985-03-14", "--phone", "555-201-3344", "--allow-duplicate")
    register(cli, "Liam", "Okafor", "2001-07-04")
    pairs = ok(cli("patients", "duplicates", "--json"))
    assert len(pairs) == 1
    assert pairs[0]["keep"]["mrn"] == patient and pairs[0]["duplicate"]["mrn"] == "0100002"
    assert pairs[0]["score"] >= 50 and pairs[0]["reasons"]
    r = cli("patients", "duplicates")
    header, rows = tsv(r.stdout)
    assert header == ["Score", "MRN", "Name", "MRN 2", "Name 2", "Why"]
    assert rows[0][1] == patient and rows[0][3] == "0100002"


def test_merge_refused_without_yes_then_merges(cli, patient, payer, counts, raw_sql):
    dup = register(cli, "Anna", "Müller", "1985-03-14", "--allow-duplicate")["mrn"]
    ok(cli("coverage", "add", dup, "--payer", payer, "--member-id", "XJH123456789", "--json"))
    before = counts("patient", "coverage", "audit_event")
    state = raw_sql("SELECT mrn, active, merged_into_id, version FROM patient ORDER BY id")

    r = cli("patients", "merge", patient, dup)
    error_line(r, 2, "--yes")
    assert r.stdout == ""
    assert counts("patient", "coverage", "audit_event") == before
    assert raw_sql("SELECT mrn, active, merged_into_id, version FROM patient ORDER BY id") == state

    out = ok(cli("patients", "merge", patient, dup, "--yes", "--json"))
    assert out["mrn"] == patient and out["version"] == 2
    assert [c["member_id"] for c in ok(cli("coverage", "list", patient, "--json"))] == ["XJH123456789"]
    error_line(cli("patients", "update", dup, "--phone", "555-201-9999"), 3, f"merged into MRN {patient}")
    assert ok(cli("patients", "show", dup, "--json"))["merged_into_id"] == out["id"]
    assert [p["mrn"] for p in ok(cli("patients", "list", "--json"))] == [patient]
    r = cli("patients", "merge", patient, patient, "--yes")
    assert r.exit_code in (3, 4)


@pytest.mark.subprocess
def test_patients_subprocess(hpms_proc):
    r = hpms_proc(
        "patients", "register", "--first-name", "Ana", "--last-name", "Müller", "--dob", "1985-03-14", "--json"
    )
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["mrn"] == "0100001"
    r = hpms_proc("patients", "search", "mül")
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == LIST_HEADER and rows[0][:3] == ["0100001", "Müller", "Ana"]


def test_search_needs_exactly_one_query_kind(cli, counts):
    """No QUERY and no --ssn/--member-id, or both: a usage error, and no audit event."""
    from tests.cli.helpers import error_line

    before = counts("audit_event")
    error_line(cli("patients", "search"), 2, "QUERY", "--member-id")
    error_line(cli("patients", "search", "smith", "--member-id", "X123"), 2, "QUERY")
    assert counts("audit_event") == before
