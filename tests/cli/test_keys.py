"""`hpms keys`: generate and rotate the field-encryption key; data without the key stays sealed."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import stat

import pytest

from tests.cli.helpers import error_line, ok


@pytest.fixture
def covered_patient(cli, patient, payer):
    ok(cli("coverage", "add", patient, "--payer", payer, "--member-id", "XJH123456789", "--json"))
    return patient


def test_generate_prints_one_key(fresh_cli, clean_env):
    r = fresh_cli("keys", "generate")
    assert r.exit_code == 0, r.stderr
    assert len(base64.urlsafe_b64decode(r.stdout.strip())) == 32
    assert r.stdout.count("\n") == 1
    assert not (clean_env / "hpms.db").exists()


def test_rotate_json(cli, settings, covered_patient, raw_sql):
    before = raw_sql("SELECT ssn_enc, ssn_bidx FROM patient")
    data = ok(cli("keys", "rotate", "--json"))
    assert data["reencrypted"] == {"ssn": 1, "member_id": 1, "attachment": 0, "hl7_inbound": 0}
    assert data["key_id"] != data["previous_key_id"]
    key_file = settings.home / "hpms.key"
    assert data["key_file"] == str(key_file)
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert list(json.loads(key_file.read_text())["keys"]) == [data["key_id"]]
    assert raw_sql("SELECT ssn_enc, ssn_bidx FROM patient") != before
    assert ok(cli("patients", "show", covered_patient, "--reveal-ssn", "--json"))["ssn_masked"] == "123-45-6789"
    assert ok(cli("coverage", "list", covered_patient, "--json"))[0]["member_id"] == "XJH123456789"
    assert [p["mrn"] for p in ok(cli("patients", "search", "123-45-6789", "--json"))] == [covered_patient]


def test_rotate_plain_talks_on_stderr(cli, covered_patient):
    r = cli("keys", "rotate")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "re-encrypted 1 SSN(s) and 1 member id(s)" in r.stderr
    assert "back up the new key file" in r.stderr


def test_rotate_with_env_key_needs_a_new_key(fresh_cli, clean_env):
    from hpms.services.platform.crypto import encode_key, new_key

    def audit_events() -> int:
        with sqlite3.connect(clean_env / "hpms.db") as conn:
            return conn.execute("SELECT count(*) FROM audit_event").fetchone()[0]

    k1, k2 = encode_key(new_key()), encode_key(new_key())
    env1 = {"HPMS_KEY": k1}
    assert ok(fresh_cli("init", "--practice", "Env Key Clinic", "--tz", "UTC", "--json", env=env1))["key_file"] is None
    assert not (clean_env / "hpms.key").exists()
    mrn = ok(
        fresh_cli(
            "patients",
            "register",
            "--first-name",
            "Emma",
            "--last-name",
            "Rossi",
            "--dob",
            "1990-01-02",
            "--ssn",
            "234-56-7890",
            "--json",
            env=env1,
        )
    )["mrn"]
    before = audit_events()
    error_line(fresh_cli("keys", "rotate", env=env1), 2, "HPMS_KEY", "HPMS_NEW_KEY")
    assert audit_events() == before
    data = ok(fresh_cli("keys", "rotate", "--json", env={**env1, "HPMS_NEW_KEY": k2}))
    assert data["reencrypted"]["ssn"] == 1 and data["key_file"] is None
    shown = ok(fresh_cli("patients", "show", mrn, "--reveal-ssn", "--json", env={"HPMS_KEY": k2}))
    assert shown["ssn_masked"] == "234-56-7890"
    error_line(fresh_cli("patients", "show", mrn, env=env1), 1, "key")


def test_database_without_the_key_reveals_nothing(cli, settings, covered_patient, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    if settings.is_sqlite:
        ok(cli("db", "backup", str(other / "copy.db"), "--json"))
        url = f"sqlite:///{other / 'copy.db'}"
        raw = (other / "copy.db").read_bytes()
        assert b"123456789" not in raw and b"XJH123456789" not in raw
    else:
        url = settings.database_url
    env = {"HPMS_HOME": str(other), "HPMS_DATABASE_URL": url}
    for args in (
        ("patients", "show", covered_patient),
        ("coverage", "list", covered_patient),
        ("patients", "search", "123-45-6789"),
    ):
        r = cli(*args, env=env)
        error_line(r, 1, "no encryption key")
        assert "6789" not in r.stdout and "XJH123456789" not in r.stdout


@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["sqlite"])
def test_keys_subprocess(hpms_proc, covered_patient):
    r = hpms_proc("keys", "rotate", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["reencrypted"] == {"ssn": 1, "member_id": 1, "attachment": 0, "hl7_inbound": 0}


def test_a_malformed_new_key_is_a_usage_error(cli, counts):
    from tests.cli.helpers import error_line

    before = counts("audit_event", "patient")
    error_line(cli("keys", "rotate", env={"HPMS_NEW_KEY": "not-a-key"}), 2, "HPMS_NEW_KEY")
    assert counts("audit_event", "patient") == before


def test_a_key_file_others_can_read_is_refused(cli, settings, covered_patient, raw_sql):
    key_file = settings.home / "hpms.key"
    before = raw_sql("SELECT ssn_enc FROM patient")
    os.chmod(key_file, 0o644)
    try:
        r = cli("patients", "show", covered_patient, "--reveal-ssn")
        line = error_line(r, 1, str(key_file), "readable by others", "0644", "0600", "owner alone")
        assert "6789" not in r.stdout and "6789" not in line
        error_line(cli("keys", "rotate"), 1, str(key_file), "readable by others")
        assert raw_sql("SELECT ssn_enc FROM patient") == before
    finally:
        os.chmod(key_file, 0o600)
    assert ok(cli("patients", "show", covered_patient, "--reveal-ssn", "--json"))["ssn_masked"] == "123-45-6789"
