"""`hpms patients import`: all-or-nothing CSV import, --skip-invalid, --dry-run and bad files."""

from __future__ import annotations

import json

import pytest

from tests.cli.helpers import error_line, ok, with_denied

GOOD = (
    "first_name,last_name,dob,phone,email,ssn,consent_sms\n"
    "Ana,Müller,1985-03-14,555-201-3344,ana.muller@example.org,123-45-6789,yes\n"
    "Liam,Okafor,2001-07-04,,,,\n"
    "Zoë,Tanaka,03/09/1962,+1 312 555 0142,,,no\n"
)


def write(tmp_path, text: str, name: str = "patients.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_import_json(cli, tmp_path, counts):
    before = counts("audit_event")["audit_event"]
    data = ok(cli("patients", "import", str(write(tmp_path, GOOD)), "--json"))
    assert data == {
        "imported": 3,
        "rows": 3,
        "skipped": 0,
        "errors": [],
        "first_mrn": "0100001",
        "last_mrn": "0100003",
        "dry_run": False,
    }
    listed = ok(cli("patients", "list", "--json"))
    assert sorted(p["last_name"] for p in listed) == ["Müller", "Okafor", "Tanaka"]
    assert {p["last_name"]: p["dob"] for p in listed}["Tanaka"] == "1962-03-09"
    assert ok(cli("patients", "show", "0100001", "--json"))["ssn_masked"] == "***-**-6789"
    assert counts("audit_event")["audit_event"] == before + 1 + 2  # one naming the 3 created, then list and show


def test_import_plain_talks_on_stderr(cli, tmp_path):
    r = cli("patients", "import", str(write(tmp_path, GOOD)))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "imported 3 patient(s); 0 row(s) skipped" in r.stderr


def test_import_with_byte_order_mark(cli, tmp_path):
    assert ok(cli("patients", "import", str(write(tmp_path, GOOD, encoding="utf-8-sig")), "--json"))["imported"] == 3


def test_dry_run_writes_nothing(cli, tmp_path, counts):
    before = counts("patient", "audit_event", "counter")
    data = ok(cli("patients", "import", str(write(tmp_path, GOOD)), "--dry-run", "--json"))
    assert data["imported"] == 3 and data["dry_run"] is True
    assert counts("patient", "audit_event", "counter") == before


def test_missing_column(cli, tmp_path, counts):
    before = counts("patient", "audit_event")
    path = write(tmp_path, "first_name,last_name\nAna,Müller\n")
    error_line(cli("patients", "import", str(path)), 2, "dob", "column missing")
    assert counts("patient", "audit_event") == before


def test_unknown_column(cli, tmp_path, counts):
    before = counts("patient", "audit_event")
    path = write(tmp_path, "first_name,last_name,dob,shoe_size\nAna,Müller,1985-03-14,38\n")
    error_line(cli("patients", "import", str(path)), 2, "shoe_size")
    assert counts("patient", "audit_event") == before


def test_wrong_encoding(cli, tmp_path, counts):
    before = counts("patient", "audit_event")
    path = write(tmp_path, "first_name,last_name,dob\nJosé,García,1985-03-14\n", encoding="latin-1")
    error_line(cli("patients", "import", str(path)), 2, "FILE", "UTF-8")
    assert counts("patient", "audit_event") == before


def test_missing_file(cli, tmp_path):
    error_line(cli("patients", "import", str(tmp_path / "nope.csv")), 2, "FILE", "nope.csv", "does not exist")


def test_invalid_date_row_writes_nothing(cli, tmp_path, counts):
    before = counts("patient", "audit_event", "counter")
    path = write(tmp_path, GOOD + "Emma,Rossi,2026-02-30,,,,\n")
    r = cli("patients", "import", str(path))
    assert r.exit_code == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert f"{path}:5: dob: '2026-02-30' is not a valid date (day is out of range for month)" in lines
    errors = [ln for ln in lines if ln.startswith("hpms: error: ")]
    assert len(errors) == 1
    assert "dob" in errors[0] and "line 5" in errors[0] and "nothing imported" in errors[0]
    assert "Traceback" not in r.stderr
    assert counts("patient", "audit_event", "counter") == before


def test_every_bad_row_is_listed(cli, tmp_path, counts):
    before = counts("patient")
    path = write(
        tmp_path,
        GOOD + "Emma,Rossi,2026-02-30,,,,\nNoah,Khan,1990-01-01,,not-an-email,,\nMia,Santos,1990-01-01,,,12345,\n",
    )
    r = cli("patients", "import", str(path))
    assert r.exit_code == 2 and r.stdout == ""
    assert [ln.split(": ")[0:2] for ln in r.stderr.splitlines()[:3]] == [
        [f"{path}:5", "dob"],
        [f"{path}:6", "email"],
        [f"{path}:7", "ssn"],
    ]
    assert "3 invalid row(s)" in r.stderr
    r = cli("patients", "import", str(path), "--json")
    assert r.exit_code == 2
    data = json.loads(r.stdout)
    assert data["imported"] == 0
    assert [(e["line"], e["field"]) for e in data["errors"]] == [(5, "dob"), (6, "email"), (7, "ssn")]
    assert counts("patient") == before


def test_skip_invalid_imports_the_rest(cli, tmp_path, counts):
    path = write(tmp_path, GOOD + "Emma,Rossi,2026-02-30,,,,\n")
    data = ok(cli("patients", "import", str(path), "--skip-invalid", "--json"))
    assert data["imported"] == 3 and data["rows"] == 4 and data["skipped"] == 1
    assert data["errors"] == [
        {"line": 5, "field": "dob", "message": "'2026-02-30' is not a valid date (day is out of range for month)"}
    ]
    assert counts("patient")["patient"] == 3


def test_skip_invalid_plain_reports_skipped_rows(cli, tmp_path):
    path = write(tmp_path, GOOD + "Emma,Rossi,2099-01-01,,,,\n")
    r = cli("patients", "import", str(path), "--skip-invalid")
    assert r.exit_code == 0, r.stderr
    assert f"{path}:5: dob: 2099-01-01 is in the future (skipped)" in r.stderr.splitlines()
    assert "imported 3 patient(s); 1 row(s) skipped" in r.stderr


def test_duplicate_mrns(cli, tmp_path, counts):
    ok(
        cli(
            "patients",
            "register",
            "--first-name",
            "Liam",
            "--last-name",
            "Okafor",
            "--dob",
            "2001-07-04",
            "--mrn",
            "OLD-1",
            "--json",
        )
    )
    before = counts("patient", "audit_event")
    path = write(
        tmp_path,
        "first_name,last_name,dob,mrn\nAna,Müller,1985-03-14,OLD-1\n"
        "Emma,Rossi,1990-01-01,OLD-2\nNoah,Khan,1990-01-01,OLD-2\n",
    )
    r = cli("patients", "import", str(path))
    assert r.exit_code == 2
    assert f"{path}:2: mrn: 'OLD-1' is already assigned to another patient" in r.stderr
    assert f"{path}:4: mrn: 'OLD-2' also on line 3" in r.stderr
    assert counts("patient", "audit_event") == before


def test_front_desk_may_import_provider_may_not(cli, tmp_path, as_user, counts):
    path = write(tmp_path, GOOD)
    assert ok(cli("patients", "import", str(path), "--json", env=as_user("maria", "front_desk")))["imported"] == 3
    provider = as_user("drsmith", "provider")
    before = counts("patient", "audit_event")
    error_line(cli("patients", "import", str(path), env=provider), 5, "drsmith")
    assert counts("patient", "audit_event") == with_denied(before)


@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["sqlite"])
def test_import_subprocess(hpms_proc, tmp_path, counts):
    path = write(tmp_path, GOOD + "Emma,Rossi,2026-02-30,,,,\n")
    r = hpms_proc("patients", "import", str(path))
    assert r.exit_code == 2, r.stderr
    assert f"{path}:5: dob:" in r.stderr
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("hpms: error: ")]
    assert counts("patient")["patient"] == 0
