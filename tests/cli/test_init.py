"""`hpms init`, and every command refused before it ran."""

from __future__ import annotations

import json
import os
import stat

import pytest

from hpms.db import head_revision
from tests.cli.conftest import run_subprocess, subprocess_env
from tests.cli.helpers import error_line, ok
from tests.conftest import PG_URL, _pg_reason


def test_init_fresh_home_json(fresh_cli, clean_env):
    r = fresh_cli(
        "init", "--practice", "Riverside Family Medicine", "--tz", "Europe/Berlin", "--location", "Main", "--json"
    )
    data = ok(r)
    assert data["created"] is True
    assert data["schema_before"] is None
    assert data["schema"] == head_revision()
    assert data["organization"] == "Riverside Family Medicine"
    assert data["admin"] == "root"
    assert data["key_created"] is True
    assert (clean_env / "hpms.db").is_file()
    key_file = clean_env / "hpms.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert data["key_file"] == str(key_file)

    locations = ok(fresh_cli("locations", "list", "--json"))
    assert [(loc["name"], loc["tz"]) for loc in locations] == [("Main", "Europe/Berlin")]
    assert ok(fresh_cli("whoami", "--json"))["roles"] == ["admin"]


def test_init_plain_talks_on_stderr_only(fresh_cli):
    r = fresh_cli("init", "--practice", "Riverside", "--tz", "America/Chicago")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "initialized 'Riverside'" in r.stderr
    assert "admin: root" in r.stderr
    r = fresh_cli("init")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "already initialized ('Riverside')" in r.stderr


def test_init_again_keeps_the_practice(cli, counts):
    before = counts("organization", "location", "hpms_user", "audit_event")
    data = ok(cli("init", "--practice", "Another Name", "--tz", "Europe/Paris", "--json"))
    assert data["created"] is False
    assert data["organization"] == "Test Clinic"
    assert data["schema_before"] == data["schema"] == head_revision()
    assert counts("organization", "location", "hpms_user", "audit_event") == before


def test_init_unknown_tz_fresh_home_creates_nothing(fresh_cli, clean_env):
    r = fresh_cli("init", "--practice", "X", "--tz", "Mars/Base")
    error_line(r, 2, "--tz", "Mars/Base")
    assert not (clean_env / "hpms.db").exists()
    assert not (clean_env / "hpms.key").exists()


def test_init_unknown_tz_on_existing_database_changes_nothing(cli, counts):
    before = counts("organization", "location", "audit_event")
    error_line(cli("init", "--tz", "Mars/Base"), 2, "--tz", "Mars/Base")
    assert counts("organization", "location", "audit_event") == before


BEFORE_INIT = [
    ("whoami",),
    ("patients", "list"),
    ("patients", "show", "0100001"),
    ("patients", "register", "--first-name", "Ana", "--last-name", "Silva", "--dob", "1990-01-02"),
    ("locations", "list"),
    ("locations", "add", "--name", "Lakeside", "--tz", "America/Chicago"),
    ("users", "list"),
    ("payers", "list"),
    ("coverage", "list", "0100001"),
    ("audit", "log"),
    ("audit", "verify"),
    ("db", "check"),
    ("db", "upgrade"),
    ("keys", "rotate"),
]


@pytest.mark.parametrize("args", BEFORE_INIT, ids=lambda a: " ".join(a[:2]))
def test_commands_before_init_say_run_init(fresh_cli, clean_env, args):
    r = fresh_cli(*args)
    error_line(r, 2, "hpms init")
    assert not (clean_env / "hpms.db").exists()


def test_backup_before_init(fresh_cli, clean_env, tmp_path):
    error_line(fresh_cli("db", "backup", str(tmp_path / "b.db")), 2, "hpms init")
    assert not (clean_env / "hpms.db").exists()
    assert not (tmp_path / "b.db").exists()


def test_config_show_works_before_init(fresh_cli, clean_env):
    data = ok(fresh_cli("config", "show", "--json"))
    assert data["home"] == str(clean_env)
    assert not (clean_env / "hpms.db").exists()


@pytest.fixture
def empty_pg_url():
    """A PostgreSQL database with no hpms schema."""
    reason = _pg_reason()
    if reason:
        pytest.skip(reason)
    import sqlalchemy as sa

    run = (os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"p{os.getpid()}")[:12]
    name = f"hpms_test_empty_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{run}".lower()
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    from hpms.db import dispose_engines

    dispose_engines()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


def test_postgres_without_schema_says_run_init(fresh_cli, empty_pg_url):
    r = fresh_cli("patients", "list", env={"HPMS_DATABASE_URL": empty_pg_url})
    error_line(r, 2, "no hpms schema", "hpms init")


@pytest.mark.subprocess
def test_init_subprocess(clean_env):
    env = subprocess_env(clean_env)
    r = run_subprocess(["init", "--practice", "Lakeside Clinic", "--tz", "America/Chicago", "--json"], env)
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["created"] is True and data["organization"] == "Lakeside Clinic"
    assert (clean_env / "hpms.db").is_file()


@pytest.mark.subprocess
def test_before_init_subprocess(clean_env):
    r = run_subprocess(["patients", "list"], subprocess_env(clean_env))
    error_line(r, 2, "hpms init")
    assert not (clean_env / "hpms.db").exists()
