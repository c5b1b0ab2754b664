"""`hpms doctor` (pre-flight checks, one line each, exit 1 when one fails) and `hpms keys
export` (the key copy whose age and staleness the checks report)."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat

import pytest

from hpms.db import head_revision
from tests.cli.helpers import error_line, ok, with_denied

NAMES = [
    "database",
    "key file",
    "key in use",
    "key export",
    "audit trail",
    "practice",
    "providers",
    "payers",
    "locations",
    "billing run",
    "backup",
    "folders",
]


def _report(result, code: int) -> dict:
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    data = json.loads(result.stdout)
    assert [c["check"] for c in data["checks"]] == NAMES
    assert data["ok"] is (code == 0)
    assert sum(data["counts"].values()) == len(NAMES)
    return {c["check"]: (c["status"], c["detail"]) for c in data["checks"]}


@pytest.fixture
def ready(cli, settings, tmp_path):
    """A practice set up for billing: profile, a location with an NPI and a full address, a
    provider with NPI and taxonomy, a payer, a backup (SQLite) and a key export."""
    ok(cli("billing", "setup", "--tax-id", "12-3456789", "--submitter-id", "SUB01", "--receiver-id", "CH01", "--json"))
    ok(
        cli(
            "locations",
            "update",
            "Main",
            "--npi",
            "1234567893",
            "--address-line1",
            "1 Main St",
            "--city",
            "Albany",
            "--state",
            "NY",
            "--postal-code",
            "12207-1234",
            "--json",
        )
    )
    ok(
        cli(
            "providers",
            "add",
            "--first-name",
            "Grace",
            "--last-name",
            "Okafor",
            "--npi",
            "1234567893",
            "--taxonomy",
            "207Q00000X",
            "--location",
            "Main",
            "--json",
        )
    )
    ok(cli("payers", "add", "--name", "Acme Health Plan", "--payer-id", "60054", "--claim-filing", "CI", "--json"))
    if settings.is_sqlite:
        ok(cli("db", "backup", str(tmp_path / "backup.db"), "--json"))
    ok(cli("keys", "export", "--to", str(tmp_path / "key.json"), "--json"))
    return tmp_path


def test_a_new_practice_fails_on_what_claims_need_and_writes_nothing(cli, counts):
    before = counts("audit_event", "billing_profile")
    got = _report(cli("doctor", "--json"), 1)
    assert got["database"][0] == "ok" and f"schema {head_revision()} (current)" in got["database"][1]
    assert got["key file"][0] == "ok" and "mode 0600" in got["key file"][1]
    assert got["key in use"][0] == "ok"
    assert got["key export"] == ("warn", "the key was never exported: a lost key file makes the data unreadable")
    assert got["audit trail"][0] == "ok" and "chain verified" in got["audit trail"][1]
    assert got["practice"][0] == "fail"
    assert "no 9-digit tax id" in got["practice"][1] and "submitter and receiver" in got["practice"][1]
    assert got["providers"] == ("warn", "no active provider")
    assert got["payers"] == ("warn", "no payer yet")
    assert got["locations"][0] == "fail"
    assert got["locations"][1].startswith("Main: the location has no group NPI")
    assert "no street address" in got["locations"][1] and "9 digits" in got["locations"][1]
    assert got["billing run"] == ("warn", "no billing run yet")
    assert got["folders"][0] == "ok"
    assert counts("audit_event", "billing_profile") == before


def test_plain_output_is_one_line_per_check_with_the_next_step(cli):
    r = cli("doctor")
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert len(lines) == len(NAMES)
    assert [ln.split(None, 1)[0] for ln in lines][:2] == ["ok", "ok"]
    practice = next(ln for ln in lines if " practice " in ln)
    assert practice.startswith("FAIL") and practice.endswith("set it with `hpms billing setup`")
    export = next(ln for ln in lines if " key export " in ln)
    assert export.startswith("WARN") and "`hpms keys export --to FILE`" in export


def test_a_practice_ready_to_bill_passes(cli, ready, settings):
    got = _report(cli("doctor", "--folder", str(ready), "--json"), 0)
    assert all(status == "ok" for name, (status, _) in got.items() if name not in ("billing run", "backup")), got
    assert got["practice"] == ("ok", "tax id, submitter SUB01 and receiver CH01 set")
    assert got["providers"] == ("ok", "1 active, NPIs and taxonomy codes valid")
    assert got["payers"][0] == got["locations"][0] == "ok"
    assert got["key export"][0] == "ok" and got["key export"][1].startswith("last exported ")
    assert got["billing run"][0] == "warn"
    if settings.is_sqlite:
        assert got["backup"][0] == "ok" and "(today)" in got["backup"][1]
    else:
        assert got["backup"][0] == "skipped" and "pg_dump" in got["backup"][1]
    assert str(ready) in got["folders"][1]
    r = cli("doctor", "--folder", str(ready))
    assert r.exit_code == 0 and "FAIL" not in r.stdout


def test_bad_set_up_rows_are_named(cli, ready, raw_sql):
    raw_sql(
        "UPDATE payer SET claim_filing = 'Q9'",
        "UPDATE provider SET npi = '1234567890', taxonomy = 'BAD'",
        "UPDATE location SET state = 'XX'",
    )
    got = _report(cli("doctor", "--json"), 1)
    assert got["payers"][0] == "fail" and got["payers"][1].startswith("Acme Health Plan: 'Q9' is not a claim filing")
    assert got["providers"][0] == "fail"
    assert "Grace Okafor: NPI 1234567890 fails the check digit" in got["providers"][1]
    assert "'BAD' is not a provider taxonomy code" in got["providers"][1]
    assert got["locations"] == (
        "fail",
        "Main: the billing location's state 'XX' is not a USPS state code (two letters, e.g. NY)",
    )


def test_a_missing_output_folder_fails(cli, tmp_path):
    missing = tmp_path / "nowhere"
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    got = _report(cli("doctor", "--folder", str(missing), "--folder", str(a_file), "--json"), 1)
    assert got["folders"] == (
        "fail",
        f"directory {str(missing)!r} does not exist; directory {str(a_file)!r} is not a directory",
    )
    assert not missing.exists()


def test_a_key_file_others_can_read_fails(cli, settings):
    os.chmod(settings.key_file, 0o644)
    got = _report(cli("doctor", "--json"), 1)
    assert got["key file"] == ("fail", f"{settings.key_file} is readable by others (mode 0644); it must be 0600")
    assert got["key in use"][0] == "fail" and "refusing to use it" in got["key in use"][1]


def test_a_broken_audit_trail_fails(cli, tamper, patient):
    tamper("UPDATE audit_event SET detail = 'x' WHERE seq = 2")
    got = _report(cli("doctor", "--json"), 1)
    assert got["audit trail"][0] == "fail" and got["audit trail"][1].startswith("broken at event 2: ")


def test_without_a_database_the_rest_is_skipped_and_nothing_is_created(fresh_cli, clean_env):
    clean_env.mkdir(parents=True, exist_ok=True)
    got = _report(fresh_cli("doctor", "--json"), 1)
    assert got["database"][0] == "fail" and "no database at" in got["database"][1]
    assert got["key file"][0] == "fail" and "does not exist" in got["key file"][1]
    for name in NAMES[2:10]:
        assert got[name] == ("skipped", "the database cannot be opened"), name
    assert got["backup"][0] == "skipped"
    assert sorted(p.name for p in clean_env.iterdir()) == []


def test_who_may_run_the_checks(cli, as_user, counts):
    assert _report(cli("doctor", "--json", env=as_user("aud", "auditor")), 1)["audit trail"][0] == "ok"
    desk = as_user("desk", "front_desk")
    before = counts("audit_event")
    r = cli("doctor", "--json", env=desk)
    error_line(r, 5, "may not run the pre-flight checks", "admin or auditor")
    assert counts("audit_event") == with_denied(before)


def test_key_export_writes_a_private_copy_that_opens_the_data(cli, settings, tmp_path, counts, patient):
    dest = tmp_path / "key-copy.json"
    data = ok(cli("keys", "export", "--to", str(dest), "--json"))
    assert data["exported"] == str(dest)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    copy = json.loads(dest.read_text())
    assert copy["active"] == data["key_id"] and list(copy["keys"]) == data["keys"]
    event = ok(cli("audit", "log", "--limit", "1", "--json"))[0]
    assert (event["action"], event["entity"], event["entity_id"]) == ("export", "key", data["key_id"])
    os.remove(settings.key_file)
    shown = ok(cli("patients", "show", patient, "--reveal-ssn", "--json", env={"HPMS_KEY_FILE": str(dest)}))
    assert shown["ssn_masked"] == "123-45-6789"


def test_key_export_refusals_write_nothing(cli, settings, tmp_path, as_user, counts):
    dest = tmp_path / "key.json"
    dest.write_text("keep me")
    before = counts("audit_event")
    error_line(cli("keys", "export", "--to", str(dest)), 4, "--to", "exists", "--yes")
    error_line(cli("keys", "export", "--to", str(tmp_path / "no" / "k.json")), 2, "--to", "does not exist")
    error_line(cli("keys", "export", "--to", str(tmp_path)), 2, "--to", "is a directory")
    if not settings.key_from_env:
        error_line(cli("keys", "export", "--to", str(settings.key_file)), 2, "--to", "key file itself")
    assert dest.read_text() == "keep me"
    assert counts("audit_event") == before
    error_line(cli("keys", "export", "--to", str(dest), env=as_user("billy", "biller")), 5, "export the encryption key")
    assert dest.read_text() == "keep me"
    ok(cli("keys", "export", "--to", str(dest), "--yes", "--json"))
    assert json.loads(dest.read_text())["active"]


def test_an_export_made_stale_by_a_rotation_fails(cli, tmp_path):
    ok(cli("keys", "export", "--to", str(tmp_path / "old.json"), "--json"))
    new = ok(cli("keys", "rotate", "--json"))["key_id"]
    status, detail = _report(cli("doctor", "--json"), 1)["key export"]
    assert status == "fail" and detail.endswith(f"but the data is now under key {new}")
    ok(cli("keys", "export", "--to", str(tmp_path / "new.json"), "--json"))
    assert _report(cli("doctor", "--json"), 1)["key export"][0] == "ok"


def test_ages_are_judged_against_the_clock(ready, settings):
    from hpms.services import doctor

    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    report = doctor.run(settings, clock=lambda: later)
    got = {c.name: (c.status, c.detail) for c in report.checks}
    assert got["key export"][0] == "warn" and "(400 days ago)" in got["key export"][1]
    if settings.is_sqlite:
        assert got["backup"][0] == "warn" and "(400 days ago)" in got["backup"][1]
