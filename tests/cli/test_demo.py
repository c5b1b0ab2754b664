"""`hpms demo`: a demo clinic in its own home; reruns change nothing; a real practice is refused."""

from __future__ import annotations

import pytest

from tests.cli.helpers import error_line, ok


def test_demo_home_builds_once(fresh_cli, clean_env, tmp_path):
    home = tmp_path / "demo-clinic"
    data = ok(fresh_cli("demo", "--home", str(home), "--patients", "60", "--json"))
    assert data["created"] is True
    assert data["home"] == str(home)
    assert data["organization"] == "Riverside Family Medicine"
    assert data["locations"] == 2 and data["payers"] == 4
    assert data["users"] >= 7  # the admin and staff of every role
    assert data["patients"] >= 60 and data["coverages"] > 0
    assert (home / "hpms.db").is_file()
    assert not (clean_env / "hpms.db").exists()

    demo_env = {"HPMS_HOME": str(home)}
    locations = ok(fresh_cli("locations", "list", "--json", env=demo_env))
    assert len({loc["tz"] for loc in locations}) == 2
    roles = {r for u in ok(fresh_cli("users", "list", "--json", env=demo_env)) for r in u["roles"]}
    assert roles == {"admin", "front_desk", "biller", "provider", "auditor", "service"}
    assert ok(fresh_cli("audit", "verify", "--json", env=demo_env))["ok"] is True
    assert ok(fresh_cli("patients", "duplicates", "--json", env=demo_env))

    r = fresh_cli("demo", "--home", str(home), "--patients", "60")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "already present" in r.stderr
    assert f"HPMS_HOME={home} hpms patients list" in r.stderr
    again = ok(fresh_cli("demo", "--home", str(home), "--patients", "60", "--json"))
    assert again["created"] is False
    assert {k: again[k] for k in ("patients", "users", "payers", "coverages")} == \
        {k: data[k] for k in ("patients", "users", "payers", "coverages")}


def test_demo_refuses_a_real_practice(cli, counts):
    tables = ("patient", "hpms_user", "location", "payer", "coverage", "audit_event")
    before = counts(*tables)
    error_line(cli("demo", "--patients", "60"), 4, "'Test Clinic'", "hpms demo --home DIR")
    assert counts(*tables) == before


def test_demo_bad_patient_count(fresh_cli, tmp_path):
    r = fresh_cli("demo", "--home", str(tmp_path / "d"), "--patients", "0")
    assert r.exit_code == 2
    assert not (tmp_path / "d").exists()


@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["sqlite"])

def test_demo_subprocess(hpms_proc, counts):
    before = counts("patient", "audit_event")
    r = hpms_proc("demo", "--patients", "60", "--json")
    error_line(r, 4, "'Test Clinic'")
    assert r.stdout == ""
    assert counts("patient", "audit_event") == before
