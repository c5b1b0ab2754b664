"""`hpms db`: check, upgrade, backup, restore; unreachable databases and newer schemas."""

from __future__ import annotations

import json
import os
import sqlite3
import stat

import pytest

from hpms.db import head_revision
from tests.cli.conftest import run_subprocess, subprocess_env
from tests.cli.helpers import error_line, ok

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])
postgres_only = pytest.mark.parametrize("backend", ["postgresql"])
UNREACHABLE = "postgresql+psycopg://postgres:Unre4chable-Pw@127.0.0.1:1/x"


def test_db_check_json(cli, settings):
    data = ok(cli("db", "check", "--json"))
    assert data["ok"] is True
    assert data["schema"] == head_revision()
    assert data["schema_ok"] is True
    assert data["integrity"].startswith("ok")
    assert data["foreign_keys"].startswith("ok")
    assert data["database"].startswith("sqlite" if settings.is_sqlite else "postgresql")


def test_db_check_plain(cli):
    r = cli("db", "check")
    assert r.exit_code == 0, r.stderr
    fields = dict(line.split(None, 1) for line in r.stdout.splitlines())
    assert fields["ok"] == "yes"
    assert fields["schema"] == head_revision()


def test_db_upgrade_at_head(cli):
    data = ok(cli("db", "upgrade", "--json"))
    assert data == {
        "schema_before": head_revision(),
        "schema": head_revision(),
        "changed": False,
        "audit_sealed": {"sealed": 0, "problem": None},
    }
    r = cli("db", "upgrade")
    assert r.exit_code == 0 and r.stdout == ""
    assert f"schema already at {head_revision()}" in r.stderr


@sqlite_only
def test_db_backup_json(cli, tmp_path, counts):
    dest = tmp_path / "backup.db"
    before = counts("audit_event")["audit_event"]
    data = ok(cli("db", "backup", str(dest), "--json"))
    assert data == {"backup": str(dest), "bytes": dest.stat().st_size}
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    with sqlite3.connect(dest) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head_revision()
    assert counts("audit_event")["audit_event"] == before + 1  # the backup is audited


@sqlite_only
def test_db_backup_onto_existing_file_refused_without_yes(cli, tmp_path, counts):
    dest = tmp_path / "backup.db"
    dest.write_bytes(b"an older backup")
    before = counts("audit_event")
    r = cli("db", "backup", str(dest))
    error_line(r, 4, "PATH", str(dest), "--yes")
    assert dest.read_bytes() == b"an older backup"
    assert counts("audit_event") == before
    r = cli("db", "backup", str(dest), "--yes")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "" and "backup written to" in r.stderr
    assert dest.read_bytes().startswith(b"SQLite format 3\x00")


@sqlite_only
def test_db_restore_refused_without_yes_then_restores(cli, tmp_path, counts, patient):
    dest = tmp_path / "backup.db"
    ok(cli("db", "backup", str(dest), "--json"))
    ok(cli("patients", "register", "--first-name", "Liam", "--last-name", "Okafor", "--dob", "2001-07-04", "--json"))
    after_backup = counts("patient", "audit_event")
    assert after_backup["patient"] == 2

    error_line(cli("db", "restore", str(dest)), 4, "--yes")
    assert counts("patient", "audit_event") == after_backup

    data = ok(cli("db", "restore", str(dest), "--yes", "--json"))
    assert data["schema"] == head_revision() and data["schema_ok"] is True
    assert counts("patient")["patient"] == 1
    assert ok(cli("audit", "verify", "--json"))["ok"] is True
    assert [p["mrn"] for p in ok(cli("patients", "list", "--json"))] == [patient]


@sqlite_only
def test_db_restore_bad_sources(cli, tmp_path, counts):
    before = counts("patient", "audit_event")
    error_line(cli("db", "restore", str(tmp_path / "missing.db"), "--yes"), 2, "PATH", "does not exist")
    junk = tmp_path / "junk.db"
    junk.write_text("not a database", encoding="utf-8")
    error_line(cli("db", "restore", str(junk), "--yes"), 2, "PATH", "not a SQLite database")
    assert counts("patient", "audit_event") == before


@postgres_only
def test_db_backup_and_restore_on_postgres_point_to_pg_tools(cli, tmp_path):
    error_line(cli("db", "backup", str(tmp_path / "b.db")), 2, "SQLite only", "pg_dump")
    error_line(cli("db", "restore", str(tmp_path / "b.db"), "--yes"), 2, "SQLite only", "pg_restore")
    assert not (tmp_path / "b.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("whoami",),
        ("patients", "list"),
        ("db", "check"),
        ("db", "upgrade"),
        ("init",),
        ("audit", "verify"),
        ("patients", "register", "--first-name", "Ana", "--last-name", "Silva", "--dob", "1990-01-02"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_unreachable_database_is_one_line(fresh_cli, args):
    r = fresh_cli(*args, env={"HPMS_DATABASE_URL": UNREACHABLE})
    line = error_line(r, 1, "cannot connect to database", "127.0.0.1:1")
    assert "Unre4chable-Pw" not in line


@pytest.fixture
def newer_schema(raw_sql):
    """The test database claims schema '9999' (from a newer hpms) for the test's duration."""
    raw_sql("UPDATE alembic_version SET version_num = '9999'")
    yield
    raw_sql(f"UPDATE alembic_version SET version_num = '{head_revision()}'")


@pytest.mark.parametrize(
    "args",
    [
        ("whoami",),
        ("patients", "list"),
        ("db", "check"),
        ("db", "upgrade"),
        ("init",),
        ("audit", "verify"),
        ("locations", "add", "--name", "Annex", "--tz", "America/Chicago"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_newer_schema_refused(cli, newer_schema, counts, args):
    before = counts("location", "audit_event")
    r = cli(*args)
    error_line(r, 1, "schema 9999", "newer", "upgrade hpms")
    assert r.stdout == ""
    assert counts("location", "audit_event") == before


@sqlite_only
def test_restore_of_newer_schema_backup_refused(cli, tmp_path, counts):
    dest = tmp_path / "backup.db"
    ok(cli("db", "backup", str(dest), "--json"))
    with sqlite3.connect(dest) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    before = counts("patient", "audit_event")
    error_line(cli("db", "restore", str(dest), "--yes"), 2, "PATH", "'9999'")
    assert counts("patient", "audit_event") == before


@pytest.mark.subprocess
def test_db_subprocess(hpms_proc):
    r = hpms_proc("db", "check", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True


@pytest.mark.subprocess
def test_unreachable_database_subprocess(clean_env):
    r = run_subprocess(["patients", "list"], subprocess_env(clean_env, UNREACHABLE))
    error_line(r, 1, "cannot connect to database")
    assert r.stdout == ""


@sqlite_only
def test_upgrade_seals_the_audit_events_of_an_older_schema(cli, settings, raw_sql, patient):
    """A database from before sealed audit events (schema 0007: unkeyed digests) is upgraded;
    the upgrade, which has the key, checks the old chain and seals it."""
    import sqlalchemy as sa

    from hpms.db import dispose_engines, get_engine
    from hpms.services.platform import audit

    ok(cli("patients", "show", patient, "--json"))
    dispose_engines()
    from alembic import command

    from hpms.db import _alembic_config

    command.downgrade(_alembic_config(get_engine(settings)), "0007")  # back to the schema without seals
    with get_engine(settings).connect() as conn:
        cols = [c["name"] for c in sa.inspect(conn).get_columns("audit_event")]
        rows = [dict(r) for r in conn.execute(sa.text("SELECT * FROM audit_event ORDER BY seq")).mappings()]
    assert "key_id" not in cols
    prev, statements = audit.GENESIS, []
    for row in rows:
        row["prev_hash"] = prev
        row["at"] = audit._stored_time(row["at"])
        prev = audit.event_hash(row)
        statements.append(
            f"UPDATE audit_event SET prev_hash = '{row['prev_hash']}', hash = '{prev}' WHERE seq = {row['seq']}"
        )
    raw_sql(
        "DROP TRIGGER IF EXISTS audit_event_no_update",
        *statements,
        f"UPDATE audit_head SET last_seq = {rows[-1]['seq']}, last_hash = '{prev}'",
    )
    dispose_engines()
    data = ok(cli("db", "upgrade", "--json"))
    assert (data["schema_before"], data["schema"]) == ("0007", head_revision())
    assert data["audit_sealed"] == {"sealed": len(rows), "problem": None}
    verified = ok(cli("audit", "verify", "--json"))
    assert verified["ok"] is True and verified["events"] == len(rows) >= 3
