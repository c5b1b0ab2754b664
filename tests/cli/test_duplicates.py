"""Registration refuses a likely duplicate off a TTY unless --allow-duplicate; --json lists it."""

from __future__ import annotations

import json

from tests.cli.helpers import error_line, ok


def _register(cli, first, last, dob, *extra):
    return cli("patients", "register", "--first-name", first, "--last-name", last, "--dob", dob, *extra)


def test_same_dob_similar_name_is_refused_and_nothing_written(cli, patient, counts):
    before = counts("patient")
    r = _register(cli, "Anna", "Muller", "1985-03-14")
    error_line(r, 4, f"MRN {patient}", "same date of birth, similar name", "--allow-duplicate")
    assert r.stdout == ""
    assert counts("patient") == before


def test_json_lists_the_candidates(cli, patient, counts):
    before = counts("patient")
    r = _register(cli, "Ana", "Mueller", "1985-03-14", "--json")
    assert r.exit_code == 4
    found = json.loads(r.stdout)
    assert [c["patient"]["mrn"] for c in found] == [patient]
    assert found[0]["reasons"] == ["same date of birth, similar name"]
    assert counts("patient") == before


def test_same_phone_is_refused(cli, patient):
    r = _register(cli, "Liam", "Okafor", "2001-07-04", "--phone", "(555) 201-3344")
    error_line(r, 4, f"MRN {patient}", "same phone")


def test_same_ssn_is_refused(cli):
    ok(_register(cli, "Ida", "Nova", "1970-05-05", "--ssn", "123-45-6789", "--json"))
    r = _register(cli, "Liam", "Okafor", "2001-07-04", "--ssn", "123456789", "--json")
    assert r.exit_code == 4
    assert json.loads(r.stdout)[0]["reasons"] == ["same SSN"]


def test_allow_duplicate_registers(cli, patient, counts):
    before = counts("patient")
    out = ok(_register(cli, "Anna", "Müller", "1985-03-14", "--allow-duplicate", "--json"))
    assert out["mrn"] != patient
    assert counts("patient") == {k: n + 1 for k, n in before.items()}


def test_a_different_person_is_not_a_candidate(cli, patient):
    # same birth date, other family name; same family name, other birth date
    ok(_register(cli, "Anders", "Okafor", "1985-03-14", "--json"))
    ok(_register(cli, "Ana", "Müller", "1990-03-14", "--json"))


def test_similar_name_rule():
    from hpms.services.people.patients import similar_name

    assert similar_name("ana", "muller", "anna", "mueller")
    assert similar_name("ana", "muller", "muller", "ana")  # swapped
    assert not similar_name("ana", "li", "ana", "wu")  # short names: one edit only
    assert not similar_name("ana", "muller", "bob", "muller")
