"""`hpms coverage`: add, list, end; member ids encrypted at rest."""

from __future__ import annotations

import pytest

from tests.cli.helpers import error_line, iso_date, iso_datetime, ok, tsv

COVERAGE_KEYS = {
    "id",
    "patient_id",
    "payer_id",
    "payer_name",
    "payer_code",
    "member_id",
    "group_number",
    "relationship",
    "subscriber_first_name",
    "subscriber_last_name",
    "subscriber_dob",
    "priority",
    "valid_from",
    "valid_to",
    "active",
    "medicare_secondary_type",
    "created_at",
}


def test_add_and_list_json(cli, patient, payer, raw_sql):
    out = ok(
        cli(
            "coverage",
            "add",
            patient,
            "--payer",
            payer,
            "--member-id",
            "XJH123456789",
            "--group",
            "G100",
            "--from",
            "2026-01-01",
            "--json",
        )
    )
    assert set(out) == COVERAGE_KEYS
    assert out["member_id"] == "XJH123456789"
    assert out["payer_code"] == payer and out["priority"] == "primary" and out["relationship"] == "self"
    assert iso_date(out["valid_from"]).isoformat() == "2026-01-01"
    assert out["valid_to"] is None
    iso_datetime(out["created_at"])
    second = ok(
        cli(
            "coverage",
            "add",
            patient,
            "--payer",
            "Acme Health Plan",
            "--member-id",
            "S-99887766",
            "--relationship",
            "spouse",
            "--subscriber",
            "Jonas Müller",
            "--subscriber-dob",
            "1983-05-02",
            "--priority",
            "secondary",
            "--json",
        )
    )
    assert second["subscriber_first_name"] == "Jonas" and second["subscriber_last_name"] == "Müller"
    assert second["subscriber_dob"] == "1983-05-02"
    listed = ok(cli("coverage", "list", patient, "--json"))
    assert [c["priority"] for c in listed] == ["primary", "secondary"]
    stored = " ".join(str(r) for r in raw_sql("SELECT member_id_enc, member_id_bidx FROM coverage"))
    assert "XJH123456789" not in stored and "99887766" not in stored


def test_add_plain_and_list_plain(cli, patient, payer):
    r = cli("coverage", "add", patient, "--payer", payer, "--member-id", "XJH123456789")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "" and "added primary coverage" in r.stderr
    r = cli("coverage", "list", patient)
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == ["ID", "Priority", "Payer", "Member id", "Group", "Relationship", "From", "To"]
    assert rows[0][1:4] == ["primary", "Acme Health Plan", "XJH123456789"]


def test_medicare_secondary_type(cli, patient, payer, counts):
    ok(cli("payers", "add", "--name", "Medicare Part B", "--payer-id", "MCRB1", "--claim-filing", "MB"))
    ok(cli("coverage", "add", patient, "--payer", payer, "--member-id", "XJH1", "--json"))
    before = counts("coverage", "audit_event")
    error_line(
        cli(
            "coverage",
            "add",
            patient,
            "--payer",
            "MCRB1",
            "--member-id",
            "1EG4TE5MK73",
            "--priority",
            "secondary",
            "--medicare-secondary-type",
            "99",
        ),
        2,
        "--medicare-secondary-type",
        "'99'",
    )
    error_line(
        cli(
            "coverage",
            "add",
            patient,
            "--payer",
            payer,
            "--member-id",
            "XJH2",
            "--priority",
            "secondary",
            "--medicare-secondary-type",
            "12",
        ),
        2,
        "--medicare-secondary-type",
        "only for a Medicare coverage",
    )
    assert counts("coverage", "audit_event") == before
    cov = ok(
        cli(
            "coverage",
            "add",
            patient,
            "--payer",
            "MCRB1",
            "--member-id",
            "1EG4TE5MK73",
            "--priority",
            "secondary",
            "--medicare-secondary-type",
            "12",
            "--json",
        )
    )
    assert cov["medicare_secondary_type"] == "12"
    out = ok(cli("coverage", "update", str(cov["id"]), "--medicare-secondary-type", "43", "--json"))
    assert (out["id"], out["medicare_secondary_type"], out["member_id"]) == (cov["id"], "43", "1EG4TE5MK73")
    assert [c["medicare_secondary_type"] for c in ok(cli("coverage", "list", patient, "--json"))] == [None, "43"]
    before = counts("coverage", "audit_event")
    error_line(
        cli("coverage", "update", str(cov["id"]), "--medicare-secondary-type", "X1"), 2, "--medicare-secondary-type"
    )
    error_line(cli("coverage", "update", str(cov["id"])), 2, "nothing to change")
    error_line(cli("coverage", "update", "999", "--group", "G1"), 3, "no coverage 999")
    assert counts("coverage", "audit_event") == before
    r = cli("coverage", "update", str(cov["id"]), "--medicare-secondary-type", "none")
    assert r.exit_code == 0, r.stderr
    assert ok(cli("coverage", "list", patient, "--json"))[1]["medicare_secondary_type"] is None


def test_end(cli, patient, payer):
    cov = ok(
        cli(
            "coverage",
            "add",
            patient,
            "--payer",
            payer,
            "--member-id",
            "XJH123456789",
            "--from",
            "2019-01-01",
            "--json",
        )
    )
    out = ok(cli("coverage", "end", str(cov["id"]), "--on", "2019-12-31", "--json"))
    assert out["valid_to"] == "2019-12-31" and out["active"] is False
    assert ok(cli("coverage", "list", patient, "--json")) == []
    assert [c["id"] for c in ok(cli("coverage", "list", patient, "--include-inactive", "--json"))] == [cov["id"]]


@pytest.mark.parametrize(
    "extra, code, words",
    [
        (("--payer", "NOPE1", "--member-id", "XJH1"), 3, ("no payer", "NOPE1")),
        (("--payer", "999", "--member-id", "XJH1"), 3, ("no payer", "999")),
        (("--member-id", "XJH1"), 2, ("--payer", "required")),
        (("--payer", "60054"), 2, ("--member-id", "required")),
        (("--payer", "60054", "--member-id", "XJH 1"), 2, ("--member-id",)),
        (("--payer", "60054", "--member-id", "XJH1", "--from", "2026-02-30"), 2, ("--from", "2026-02-30")),
        (("--payer", "60054", "--member-id", "XJH1", "--to", "2026-13-01"), 2, ("--to", "2026-13-01")),
        (("--payer", "60054", "--member-id", "XJH1", "--from", "2026-06-01", "--to", "2026-01-01"), 2, ("--to",)),
        (("--payer", "60054", "--member-id", "XJH1", "--relationship", "cousin"), 2, ("--relationship", "cousin")),
        (("--payer", "60054", "--member-id", "XJH1", "--priority", "first"), 2, ("--priority", "first")),
        (("--payer", "60054", "--member-id", "XJH1", "--relationship", "child"), 2, ("--subscriber", "required")),
        (("--payer", "60054", "--member-id", "XJH1", "--subscriber", "Jonas Müller"), 2, ("--subscriber",)),
        (
            (
                "--payer",
                "60054",
                "--member-id",
                "XJH1",
                "--relationship",
                "child",
                "--subscriber",
                "Jonas Müller",
                "--subscriber-dob",
                "2099-01-01",
            ),
            2,
            ("--subscriber-dob", "future"),
        ),
    ],
    ids=[
        "unknown-payer",
        "unknown-payer-id",
        "no-payer",
        "no-member",
        "bad-member",
        "bad-from",
        "bad-to",
        "to-before-from",
        "bad-relationship",
        "bad-priority",
        "no-subscriber",
        "self-subscriber",
        "future-sub-dob",
    ],
)
def test_add_errors(cli, patient, payer, counts, extra, code, words):
    before = counts("coverage", "audit_event")
    r = cli("coverage", "add", patient, *extra)
    error_line(r, code, *words)
    assert r.stdout == ""
    assert counts("coverage", "audit_event") == before


def test_unknown_patient(cli, payer, counts):
    before = counts("coverage", "audit_event")
    error_line(cli("coverage", "add", "0999999", "--payer", payer, "--member-id", "XJH1"), 3, "no patient", "0999999")
    assert counts("coverage", "audit_event") == before


def test_overlapping_priority_is_a_conflict(cli, patient, payer, counts):
    ok(cli("coverage", "add", patient, "--payer", payer, "--member-id", "XJH1", "--json"))
    before = counts("coverage", "audit_event")
    error_line(
        cli("coverage", "add", patient, "--payer", payer, "--member-id", "XJH2"), 4, "--priority", "coverage end"
    )
    assert counts("coverage", "audit_event") == before


def test_end_errors(cli, patient, payer, counts):
    cov = ok(cli("coverage", "add", patient, "--payer", payer, "--member-id", "XJH1", "--from", "2026-01-01", "--json"))
    before = counts("audit_event")
    error_line(cli("coverage", "end", "999"), 3, "no coverage 999")
    error_line(cli("coverage", "end", str(cov["id"]), "--on", "2026-02-30"), 2, "--on")
    error_line(cli("coverage", "end", str(cov["id"]), "--on", "2025-12-31"), 2, "--on", "before")
    assert counts("audit_event") == before


@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["sqlite"])
def test_coverage_subprocess(cli, hpms_proc, patient, payer):
    ok(cli("coverage", "add", patient, "--payer", payer, "--member-id", "XJH123456789", "--json"))
    r = hpms_proc("coverage", "list", patient)
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header[:4] == ["ID", "Priority", "Payer", "Member id"]
    assert rows[0][1:4] == ["primary", "Acme Health Plan", "XJH123456789"]


def test_coverage_without_a_payer_is_refused(cli, counts):
    from tests.cli.helpers import error_line

    mrn = cli(
        "patients", "register", "--first-name", "Ida", "--last-name", "Nova", "--dob", "1970-05-05"
    ).stdout.strip()
    before = counts("coverage", "audit_event")
    error_line(cli("coverage", "add", mrn, "--member-id", "M123"), 2, "--payer", "required")
    assert counts("coverage", "audit_event") == before
