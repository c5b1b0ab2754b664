"""`hpms users`: add, list, show, grant, revoke, disable, enable, token."""

from __future__ import annotations

import pytest

from tests.cli.helpers import error_line, iso_datetime, ok, tsv

USER_KEYS = {"id", "username", "full_name", "roles", "disabled", "has_token", "created_at"}


def test_add_show_list_json(cli):
    added = ok(
        cli("users", "add", "maria", "--role", "front_desk", "--role", "biller", "--full-name", "Maria Lopez", "--json")
    )
    assert set(added) == USER_KEYS
    assert added["roles"] == ["biller", "front_desk"]
    assert added["has_token"] is False and added["disabled"] is False
    iso_datetime(added["created_at"])
    assert ok(cli("users", "show", "maria", "--json")) == added
    listed = ok(cli("users", "list", "--json"))
    assert [u["username"] for u in listed] == ["maria", "root"]


def test_add_plain_and_list_plain(cli):
    r = cli("users", "add", "maria", "--role", "front_desk")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "" and "added user maria (front_desk)" in r.stderr
    r = cli("users", "list")
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == ["User", "Name", "Roles", "Disabled", "Token"]
    assert rows == [["maria", "", "front_desk", "no", "no"], ["root", "", "admin", "no", "no"]]


def test_grant_revoke_disable_enable(cli, make_user):
    make_user("maria", "front_desk")
    assert ok(cli("users", "grant", "maria", "biller", "--json"))["roles"] == ["biller", "front_desk"]
    assert ok(cli("users", "revoke", "maria", "front_desk", "--json"))["roles"] == ["biller"]
    assert ok(cli("users", "disable", "maria", "--json"))["disabled"] is True
    assert ok(cli("users", "enable", "maria", "--json"))["disabled"] is False


def test_token_json_and_plain(cli, make_user):
    make_user("nightly", "service")
    data = ok(cli("users", "token", "nightly", "--json"))
    assert data["username"] == "nightly" and data["token"].startswith("hpms_")
    assert (
        ok(cli("whoami", "--json", env={"HPMS_USER": "nightly", "HPMS_TOKEN": data["token"]}))["username"] == "nightly"
    )
    r = cli("users", "token", "nightly")
    assert r.exit_code == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("hpms_") and "\n" not in token
    assert token not in r.stderr
    assert ok(cli("users", "show", "nightly", "--json"))["has_token"] is True
    # The new token replaced the old one.
    error_line(cli("whoami", env={"HPMS_USER": "nightly", "HPMS_TOKEN": data["token"]}), 5, "nightly")


def test_unknown_role(cli, counts):
    before = counts("hpms_user", "user_role", "audit_event")
    r = cli("users", "add", "x", "--role", "wizard")
    error_line(r, 2, "--role", "wizard")
    assert counts("hpms_user", "user_role", "audit_event") == before


def test_grant_unknown_role(cli, make_user, counts):
    make_user("maria", "front_desk")
    before = counts("user_role", "audit_event")
    error_line(cli("users", "grant", "maria", "wizard"), 2, "ROLE", "wizard")
    assert counts("user_role", "audit_event") == before


@pytest.mark.parametrize(
    "args, code, words",
    [
        (("users", "add", "Bad Name!", "--role", "admin"), 2, ("NAME",)),
        (("users", "add", "maria"), 2, ("--role",)),
        (("users", "add", "root", "--role", "admin"), 4, ("'root'", "already exists")),
        (("users", "show", "nobody"), 3, ("'nobody'",)),
        (("users", "grant", "nobody", "biller"), 3, ("'nobody'",)),
        (("users", "disable", "root"), 4, ("yourself",)),
        (("users", "revoke", "root", "admin"), 4, ("last active admin",)),
        (("users", "token", "nobody"), 3, ("'nobody'",)),
    ],
    ids=[
        "bad-name",
        "no-role",
        "existing",
        "show-unknown",
        "grant-unknown",
        "disable-self",
        "revoke-last-admin",
        "token-unknown",
    ],
)
def test_user_errors(cli, counts, args, code, words):
    before = counts("hpms_user", "user_role", "audit_event")
    error_line(cli(*args), code, *words)
    assert counts("hpms_user", "user_role", "audit_event") == before


@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["sqlite"])
def test_users_subprocess(hpms_proc, counts):
    r = hpms_proc("users", "add", "x", "--role", "wizard")
    error_line(r, 2, "--role", "wizard")
    assert counts("hpms_user")["hpms_user"] == 1
