"""`hpms whoami` and who may act: OS login, token users, unknown, disabled and unpermitted users."""

from __future__ import annotations

import json

import pytest

from tests.cli.helpers import error_line, ok, with_denied


def test_whoami_json_is_the_os_user(cli):
    data = ok(cli("whoami", "--json"))
    assert data == {
        "username": "root",
        "full_name": None,
        "roles": ["admin"],
        "auth_method": "os",
        "organization": "Test Clinic",
    }


def test_whoami_plain_is_key_value_lines(cli):
    r = cli("whoami")
    assert r.exit_code == 0, r.stderr
    lines = dict(line.split(None, 1) for line in r.stdout.splitlines() if len(line.split(None, 1)) == 2)
    assert lines["username"] == "root"
    assert lines["auth_method"] == "os"
    assert r.stderr == ""


def test_token_user_works(cli, as_user):
    env = as_user("nightly", "service")
    data = ok(cli("whoami", "--json", env=env))
    assert data["username"] == "nightly"
    assert data["roles"] == ["service"]
    assert data["auth_method"] == "token"


def test_wrong_token_refused(cli, as_user, counts):
    env = as_user("maria", "front_desk")
    before = counts("audit_event")
    r = cli("patients", "list", env={**env, "HPMS_TOKEN": "hpms_not-the-token"})
    error_line(r, 5, "maria")
    assert counts("audit_event") == before


def test_hpms_user_without_token_for_another_name_refused(cli, make_user, counts):
    make_user("maria", "front_desk")
    before = counts("audit_event")
    r = cli("patients", "list", env={"HPMS_USER": "maria"})
    error_line(r, 5, "HPMS_USER=maria", "HPMS_TOKEN")
    assert counts("audit_event") == before


def test_hpms_user_naming_the_os_login_needs_no_token(cli):
    assert ok(cli("whoami", "--json", env={"HPMS_USER": "root"}))["auth_method"] == "os"


def test_unknown_os_user_refused_before_any_data_is_read(cli, patient, monkeypatch, counts, sql_log):
    monkeypatch.setattr("hpms.services.platform.auth.os_login", lambda: "ghost")
    before = counts("audit_event", "patient")
    with sql_log() as statements:
        r = cli("patients", "show", patient, "--json")
    error_line(r, 5, "unknown hpms user 'ghost'")
    assert r.stdout == ""
    assert counts("audit_event", "patient") == before
    touched = " ".join(statements).lower()
    assert "hpms_user" in touched or '"user"' in touched, statements  # the log sees the actor lookup
    assert "from patient" not in touched
    assert "audit_event" not in touched


def test_unknown_token_user_refused(cli, counts, sql_log):
    before = counts("audit_event")
    with sql_log() as statements:
        r = cli("patients", "list", env={"HPMS_USER": "ghost", "HPMS_TOKEN": "hpms_whatever"})
    error_line(r, 5, "ghost")
    assert "from patient" not in " ".join(statements).lower()
    assert counts("audit_event") == before


def test_disabled_os_user_refused(cli, make_user, monkeypatch, counts):
    make_user("maria", "front_desk")
    ok(cli("users", "disable", "maria", "--json"))
    monkeypatch.setattr("hpms.services.platform.auth.os_login", lambda: "maria")
    before = counts("audit_event")
    error_line(cli("patients", "list"), 5, "'maria'", "disabled")
    assert counts("audit_event") == before


def test_disabled_token_user_refused_and_enable_does_not_revive_the_token(cli, as_user, counts):
    env = as_user("nightly", "service")
    assert ok(cli("whoami", "--json", env=env))["username"] == "nightly"
    ok(cli("users", "disable", "nightly", "--json"))
    before = counts("audit_event")
    error_line(cli("whoami", env=env), 5, "nightly")
    ok(cli("users", "enable", "nightly", "--json"))
    error_line(cli("whoami", env=env), 5, "nightly")
    assert counts("audit_event")["audit_event"] == before["audit_event"] + 1  # only the enable itself


def test_front_desk_cannot_read_audit_log(cli, as_user, counts):
    env = as_user("maria", "front_desk")
    before = counts("audit_event")
    r = cli("audit", "log", "--json", env=env)
    error_line(r, 5, "maria", "read the audit trail")
    assert r.stdout == ""
    assert counts("audit_event") == with_denied(before)


@pytest.mark.parametrize(
    "args",
    [
        ("users", "add", "eve", "--role", "admin"),
        ("locations", "add", "--name", "Annex", "--tz", "America/Chicago"),
        ("payers", "add", "--name", "Blue Harbor", "--payer-id", "BHI01"),
        ("keys", "rotate"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_front_desk_denied_admin_commands(cli, as_user, counts, args):
    env = as_user("maria", "front_desk")
    before = counts("audit_event", "hpms_user", "location", "payer")
    error_line(cli(*args, env=env), 5, "maria")
    assert counts("audit_event", "hpms_user", "location", "payer") == with_denied(before)


@pytest.mark.subprocess
def test_whoami_subprocess(hpms_proc, as_user):
    r = hpms_proc("whoami", "--json", env=as_user("nightly", "service"))
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert (data["username"], data["auth_method"]) == ("nightly", "token")
