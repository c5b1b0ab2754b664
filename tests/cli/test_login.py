"""`hpms login` / `hpms logout`: a verified token kept for one database, used when HPMS_TOKEN is not set."""

from __future__ import annotations

import json
import shutil
import stat

import pytest

from tests.cli.conftest import run_subprocess, subprocess_env
from tests.cli.helpers import error_line, ok


@pytest.fixture
def store(tmp_path, monkeypatch):
    """The user's config directory, in a temp dir; returns the credentials file's path."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("HPMS_CREDENTIALS", raising=False)
    return tmp_path / "xdg" / "hpms" / "credentials.json"


def login_events(raw_sql) -> int:
    return raw_sql("SELECT count(*) FROM audit_event WHERE action = 'login'")[0][0]


def test_login_keeps_the_token_and_later_commands_use_it(cli, make_user, token_for, store, settings, raw_sql):
    make_user("maria", "front_desk")
    token = token_for("maria")
    r = cli("login", "maria", input=token + "\n")
    assert r.exit_code == 0, r.stderr
    assert "signed in as maria" in r.stderr and token not in r.stderr + r.stdout
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
    entries = json.loads(store.read_text())["entries"]
    assert [e["username"] for e in entries.values()] == ["maria"]
    assert login_events(raw_sql) == 1

    # a new process, no HPMS_TOKEN in its environment
    env = subprocess_env(settings.home, None if settings.is_sqlite else settings.database_url)
    assert "HPMS_TOKEN" not in env
    p = run_subprocess(["whoami", "--json"], env)
    assert p.exit_code == 0, p.stderr
    me = json.loads(p.stdout)
    assert (me["username"], me["auth_method"]) == ("maria", "login")
    p = run_subprocess(["patients", "list", "--json"], env)
    assert p.exit_code == 0, p.stderr


def test_hpms_token_wins_over_the_stored_sign_in(cli, make_user, as_user, token_for, store):
    make_user("maria", "front_desk")
    assert cli("login", "maria", input=token_for("maria")).exit_code == 0
    env = as_user("nightly", "service")
    me = ok(cli("whoami", "--json", env=env))
    assert (me["username"], me["auth_method"]) == ("nightly", "token")


def test_a_bad_token_is_refused_and_nothing_is_stored(cli, make_user, token_for, store, raw_sql):
    make_user("maria", "front_desk")
    token_for("maria")
    r = cli("login", "maria", input="hpms_not-the-token\n")
    error_line(r, 5, "authentication failed", "maria")
    assert not store.exists()
    assert login_events(raw_sql) == 0
    r = cli("login", "nobody", input="hpms_whatever\n")
    error_line(r, 5, "authentication failed", "nobody")
    assert not store.exists()


def test_an_empty_token_is_a_usage_error(cli, make_user, store):
    make_user("maria", "front_desk")
    error_line(cli("login", "maria", input=""), 2, "no token")
    assert not store.exists()


def test_the_token_is_never_an_argument(cli, make_user, token_for, store):
    make_user("maria", "front_desk")
    r = cli("login", "maria", token_for("maria"))
    assert r.exit_code == 2
    assert not store.exists()


def test_logout_forgets_the_sign_in(cli, make_user, token_for, store):
    make_user("maria", "front_desk")
    assert cli("login", "maria", input=token_for("maria")).exit_code == 0
    r = cli("logout")
    assert r.exit_code == 0, r.stderr
    assert "signed out" in r.stderr
    assert not store.exists()
    assert ok(cli("whoami", "--json"))["auth_method"] == "os"
    r = cli("logout")
    assert r.exit_code == 0 and "not signed in" in r.stderr
    assert ok(cli("logout", "--json")) == {
        "removed": 0,
        "database": ok(cli("config", "show", "--json"))["database_url"],
    }


def test_a_revoked_stored_token_says_to_sign_in_again(cli, make_user, token_for, store, ctx_for):
    from hpms.services.platform import users

    make_user("maria", "front_desk")
    assert cli("login", "maria", input=token_for("maria")).exit_code == 0
    token_for("maria")  # an admin replaced the token
    error_line(cli("whoami"), 5, "stored sign-in", "maria", "sign in again", "hpms login maria")
    assert cli("login", "maria", input=token_for("maria")).exit_code == 0
    with ctx_for() as ctx:
        users.set_disabled(ctx, "maria", True)
    error_line(cli("patients", "list"), 5, "stored sign-in", "sign in again")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_sign_in_for_another_database_is_ignored(cli, make_user, token_for, store, settings, tmp_path):
    make_user("maria", "front_desk")
    assert cli("login", "maria", input=token_for("maria")).exit_code == 0
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    shutil.copy(settings.home / "hpms.db", other / "hpms.db")
    shutil.copy(settings.home / "hpms.key", other / "hpms.key")
    p = run_subprocess(["whoami", "--json"], subprocess_env(other))
    assert p.exit_code == 0, p.stderr
    assert json.loads(p.stdout)["auth_method"] == "os"
    # and logging out there leaves this database's sign-in alone
    p = run_subprocess(["logout"], subprocess_env(other))
    assert p.exit_code == 0 and "not signed in" in p.stderr
    assert ok(cli("whoami", "--json"))["auth_method"] == "login"


def test_logout_all_forgets_every_database(cli, make_user, token_for, store):
    make_user("maria", "front_desk")
    assert cli("login", "maria", input=token_for("maria")).exit_code == 0
    assert ok(cli("logout", "--all", "--json"))["removed"] == 1
    assert not store.exists()


def test_hpms_credentials_names_the_file(cli, make_user, token_for, store, tmp_path):
    target = tmp_path / "elsewhere" / "creds.json"
    make_user("maria", "front_desk")
    env = {"HPMS_CREDENTIALS": str(target)}
    assert cli("login", "maria", input=token_for("maria"), env=env).exit_code == 0
    assert target.exists() and not store.exists()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert ok(cli("whoami", "--json", env=env))["auth_method"] == "login"


def test_a_damaged_credentials_file_is_named(cli, store):
    store.parent.mkdir(parents=True, mode=0o700)
    store.write_text("not json", encoding="utf-8")
    error_line(cli("whoami"), 2, f"credentials file {store}", "cannot be read")
    assert store.read_text(encoding="utf-8") == "not json"
