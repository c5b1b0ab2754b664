"""The database layer: migrations, schema checks, SQLite settings, backup/restore, transactions."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from hpms.db import (
    check_schema,
    dispose_engines,
    get_engine,
    head_revision,
    known_revisions,
    make_engine,
    migrate,
    session_scope,
)
from hpms.errors import (
    Action,
    ConflictError,
    ExitCode,
    NotFoundError,
    NotInitializedError,
    SchemaMismatch,
    UsageError,
    ValidationError,
)
from tests.services.helpers import counts, query, snapshot

TABLES = {
    "organization",
    "external_ref",
    "external_visit",
    "location",
    "hpms_user",
    "user_role",
    "patient",
    "payer",
    "coverage",
    "counter",
    "audit_event",
    "audit_head",
    "key_state",
    "alembic_version",
    "online_booking_policy",
    "online_booking_profile",
    "online_booking",
    "portal_code",
    "portal_session",
    "portal_throttle",
    "portal_proxy",
    "api_token",
    "intake_request",
    "intake_upload",
    "provider",
    "provider_location",
    "room",
    "appointment_type",
    "working_hours",
    "time_off",
    "appointment_series",
    "appointment",
    "freed_slot",
    "waitlist_entry",
    "billing_profile",
    "procedure_code",
    "fee",
    "encounter",
    "encounter_diagnosis",
    "encounter_line",
    "billing_run",
    "x12_file",
    "claim",
    "claim_line",
    "claim_event",
    "worklist_item",
    "job_lock",
    "survey_response",
    "ledger_entry",
    "remit_file",
    "remittance",
    "remit_claim",
    "remit_adjustment",
    "payment_application",
    "statement",
    "message",
    "message_attachment",
    "messaging_profile",
    "message_template",
    "reminder_rule",
    "comm_entry",
    "inbound_message",
    "eligibility_check",
    "hl7_receiver",
    "hl7_message",
    "hl7_inbound",
}


def _triggers(engine) -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return set(conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").scalars())
        return set(
            conn.exec_driver_sql(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
                "AND tgrelid IN ('audit_event'::regclass, 'ledger_entry'::regclass)"
            ).scalars()
        )


def test_migrations_run_from_empty_to_head_and_back(settings, scratch_url):
    from alembic import command

    from hpms.db import _alembic_config

    engine = make_engine(scratch_url)
    try:
        assert migrate(engine) == (None, head_revision())
        assert set(sa.inspect(engine).get_table_names()) == TABLES
        assert check_schema(engine) == head_revision()
        assert len(_triggers(engine)) == (6 if settings.is_sqlite else 2)  # audit_event and ledger_entry
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT last_seq, last_hash FROM audit_head").one() == (0, "0" * 64)
        assert migrate(engine) == (head_revision(), head_revision())  # rerun: nothing to do
        command.downgrade(_alembic_config(engine), "base")
        assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
        assert migrate(engine) == (None, head_revision())
        assert set(sa.inspect(engine).get_table_names()) == TABLES
    finally:
        engine.dispose()


def test_revisions_are_known_and_ordered():
    revs = known_revisions()
    assert revs == sorted(revs) and revs[0] == "0001"
    assert head_revision() == revs[-1]


def test_the_test_database_is_at_head(settings):
    assert check_schema(get_engine(settings)) == head_revision()


def test_a_newer_schema_is_refused(settings, scratch_url):
    engine = make_engine(scratch_url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
        with pytest.raises(SchemaMismatch) as err:
            check_schema(engine)
        assert "newer" in err.value.message and "9999" in err.value.message
        assert err.value.exit_code == ExitCode.INTERNAL
        with pytest.raises(SchemaMismatch):
            migrate(engine)  # and the code does not try to "upgrade" it either
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "9999"
    finally:
        engine.dispose()


def test_a_database_without_schema_is_not_initialized(settings, scratch_url):
    if settings.is_sqlite:
        sqlite3.connect(scratch_url.split("///", 1)[1]).close()  # an empty file
    engine = make_engine(scratch_url)
    try:
        with pytest.raises(NotInitializedError) as err:
            check_schema(engine)
        assert err.value.action == Action("init", purpose="first run")
        assert err.value.exit_code == ExitCode.USAGE
    finally:
        engine.dispose()


def test_a_missing_sqlite_file_is_not_initialized(settings, tmp_path):
    from hpms.config import load_settings

    other = load_settings(env={"HPMS_HOME": str(tmp_path / "nothing-here")})
    with pytest.raises(NotInitializedError):
        get_engine(other)
    assert not (tmp_path / "nothing-here").exists()  # nothing was created on the way


def test_open_context_checks_the_schema_first(settings, scratch_url, monkeypatch):
    from hpms.config import load_settings
    from hpms.services.platform.context import open_context

    if settings.is_sqlite:
        sqlite3.connect(scratch_url.split("///", 1)[1]).close()
    monkeypatch.setenv("HPMS_DATABASE_URL", scratch_url)
    with pytest.raises(NotInitializedError):
        with open_context(load_settings()):
            pass


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(settings):
    if not settings.is_sqlite:
        pytest.skip("journal mode, foreign keys and busy timeout are SQLite pragmas")
    with get_engine(settings).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    raw = sqlite3.connect(settings.sqlite_path)  # WAL is a property of the file itself
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def test_foreign_keys_are_enforced(settings, register, payer):
    from hpms.models import Coverage

    before = snapshot(settings)
    with pytest.raises(sa.exc.IntegrityError):
        with session_scope(get_engine(settings)) as session:
            session.add(Coverage(org_id=1, patient_id=987654, payer_id=payer.id, member_id_enc="x", member_id_bidx="y"))
    assert snapshot(settings) == before


def test_mrns_are_unique_in_the_database(settings, register):
    """The unique key holds even when the service check is bypassed."""
    register(mrn="CH-1")
    with pytest.raises(sa.exc.IntegrityError):
        with get_engine(settings).begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO patient (org_id, mrn, first_name, last_name, dob, last_norm, first_norm, consent_sms, "
                    "consent_email, active, version, created_at, updated_at) "
                    "VALUES (1, 'CH-1', 'A', 'B', '1980-01-01', "
                    "'b', 'a', false, false, true, 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                )
            )
    assert counts(settings, "patient") == {"patient": 1}


def test_a_session_scope_that_raises_rolls_everything_back(settings, ctx_for):
    from hpms.services.people import coverage, patients
    from hpms.services.platform import users

    before = snapshot(settings)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with ctx_for() as ctx:
            p = patients.register(ctx, first_name="Ida", last_name="Quill", dob="1980-01-01", ssn="287-65-4321")
            coverage.add_payer(ctx, name="Acme", payer_id="ACME1")
            coverage.add_coverage(ctx, patient=p.mrn, payer="ACME1", member_id="M1")
            users.add_user(ctx, username="dana", roles=["biller"])
            raise Boom
    assert snapshot(settings) == before
    # The MRN counter went back too: the next patient gets the first number.
    with ctx_for() as ctx:
        assert patients.register(ctx, first_name="A", last_name="B", dob="1990-01-01").mrn == "0100001"


def test_a_session_scope_commits_on_success(settings):
    from hpms.models import Payer

    with session_scope(get_engine(settings)) as session:
        session.add(Payer(org_id=1, name="Direct", payer_id="DIR1"))
    assert query(settings, "SELECT payer_id FROM payer") == [{"payer_id": "DIR1"}]


def test_a_readonly_session_reads(settings, register):
    register()
    with session_scope(get_engine(settings), readonly=True) as session:
        assert session.execute(sa.text("SELECT count(*) FROM patient")).scalar() == 1


def _rename_payer():
    from hpms.db import Prepared
    from hpms.models import Payer

    t = Payer.__table__
    return Prepared(
        sa.update(t).where(t.c.payer_id == sa.bindparam("code")).values(name=sa.bindparam("name")).returning(t.c.id)
    )


class _Boom(Exception):
    pass


@pytest.mark.parametrize("fails", [False, True], ids=["commits", "raises"])
def test_a_pipelined_commit_holds_all_of_its_block_or_nothing(settings, ctx_for, fails):
    """commit_pipelined: the block's statements and the audit event that waits on one of them
    commit together, or none does; the connection, held across transactions as the sender
    holds it, works as before after it (a commit takes what follows, a rollback takes it back)."""
    from hpms.db import commit_pipelined
    from hpms.models import Payer
    from hpms.services.platform import audit
    from hpms.services.platform.auth import os_login
    from hpms.services.platform.context import context_for

    with session_scope(get_engine(settings)) as session:
        session.add(Payer(org_id=1, name="Direct", payer_id="DIR1"))
    events = counts(settings, "audit_event")["audit_event"]
    with get_engine(settings).connect() as held:
        with pytest.raises(_Boom), session_scope(get_engine(settings), connection=held) as session:
            ctx = context_for(session, settings, os_login())
            session.commit()  # the block begins a transaction of its own, as in the sender
            try:
                with commit_pipelined(ctx.session):
                    rows = _rename_payer().start(ctx.session.connection(), {"code": "DIR1", "name": "Direct Pay"})
                    seq = audit.record_after(ctx, lambda: [audit.Event("update", "payer", r.id) for r in rows()])
                    assert seq == events + 1
                    if fails:
                        raise _Boom
            except _Boom:
                pass
            ctx.session.add(Payer(org_id=1, name="Later", payer_id="LATE1"))
            ctx.session.commit()
            ctx.session.add(Payer(org_id=1, name="Last", payer_id="LAST1"))
            ctx.session.flush()
            raise _Boom  # takes back the last payer only
    names = [r["name"] for r in query(settings, "SELECT name FROM payer ORDER BY id")]
    assert names == ["Direct" if fails else "Direct Pay", "Later"]
    assert counts(settings, "audit_event")["audit_event"] == events + (0 if fails else 1)
    with ctx_for() as ctx:
        assert audit.verify(ctx).ok


def test_a_pipelined_commit_appends_nothing_when_no_row_changed(settings, ctx_for):
    from hpms.db import commit_pipelined
    from hpms.services.platform import audit

    events = counts(settings, "audit_event")["audit_event"]
    with ctx_for() as ctx:
        with commit_pipelined(ctx.session):
            rows = _rename_payer().start(ctx.session.connection(), {"code": "NONE", "name": "Nobody"})
            assert audit.record_after(ctx, lambda: [audit.Event("update", "payer", r.id) for r in rows()]) == 0
    assert counts(settings, "audit_event")["audit_event"] == events


# --- backup and restore (SQLite; PostgreSQL points to pg_dump / pg_restore) ---


def test_backup_and_restore(settings, ctx_for, register, tmp_path):
    from hpms.services.people import patients
    from hpms.services.platform import admin, audit

    dest = tmp_path / "backup.db"
    if not settings.is_sqlite:
        with pytest.raises(UsageError) as err:
            admin.backup(settings, dest)
        assert "pg_dump" in err.value.hint
        with pytest.raises(UsageError) as err:
            admin.restore(settings, dest, yes=True)
        assert "pg_restore" in err.value.hint
        assert not dest.exists()
        return
    kept = register(first_name="Ida", last_name="Quill", ssn="287-65-4321")
    info = admin.backup(settings, dest)
    assert info["backup"] == str(dest) and info["bytes"] == dest.stat().st_size > 0
    assert dest.read_bytes()[:16] == b"SQLite format 3\x00"
    assert oct(dest.stat().st_mode & 0o777) == oct(0o600)
    with pytest.raises(ConflictError):
        admin.backup(settings, dest)  # exists
    assert admin.backup(settings, dest, overwrite=True)["backup"] == str(dest)
    lost = register(first_name="Otis", last_name="Vance")
    # Refused without yes=True, and nothing changes.
    with pytest.raises(ConflictError) as err:
        admin.restore(settings, dest)
    assert err.value.retry_with == ("yes",)
    assert counts(settings, "patient") == {"patient": 2}
    result = admin.restore(settings, dest, yes=True)
    assert result["schema"] == head_revision() and result["schema_ok"] is True
    assert [r["id"] for r in query(settings, "SELECT id FROM patient")] == [kept.id]
    with ctx_for() as ctx:
        assert patients.show(ctx, kept.mrn, reveal_ssn=True).ssn_masked == "287-65-4321"
        with pytest.raises(NotFoundError):
            patients.show(ctx, lost.mrn)
        assert audit.verify(ctx).ok
    with ctx_for() as ctx:
        actions = [e.action for e in audit.log(ctx, limit=3)]
    assert "restore" in actions
    with get_engine(settings).connect() as conn:  # the restored file is a WAL database again
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_restore_refuses_bad_sources(settings, tmp_path):
    from hpms.services.platform import admin

    before = snapshot(settings)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all, just text")
    if not settings.is_sqlite:
        with pytest.raises(UsageError):
            admin.restore(settings, junk, yes=True)
        assert snapshot(settings) == before
        return
    with pytest.raises(ValidationError):
        admin.restore(settings, junk, yes=True)
    with pytest.raises(ValidationError, match="does not exist"):
        admin.restore(settings, tmp_path / "missing.db", yes=True)
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(ValidationError) as err:
        admin.restore(settings, foreign, yes=True)
    assert "not an hpms database" in err.value.message
    newer = tmp_path / "newer.db"
    dispose_engines()
    admin.backup(settings, newer)
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.commit()
    conn.close()
    with pytest.raises(ValidationError) as err:
        admin.restore(settings, newer, yes=True)
    assert "9999" in err.value.message
    snap = snapshot(settings)
    assert snap["patient"] == before["patient"] and snap["payer"] == before["payer"]


def test_backup_refuses_to_overwrite_the_live_database(settings):
    from hpms.services.platform import admin

    if not settings.is_sqlite:
        with pytest.raises(UsageError):
            admin.backup(settings, settings.home / "hpms.db")
        assert not (settings.home / "hpms.db").exists()
        return
    with pytest.raises((ConflictError, ValidationError)):
        admin.backup(settings, settings.sqlite_path)
    with pytest.raises(ValidationError):
        admin.backup(settings, settings.sqlite_path, overwrite=True)
    assert check_schema(get_engine(settings)) == head_revision()


def test_check_reports_ok(settings):
    from hpms.services.platform import admin

    report = admin.check(settings)
    assert report["ok"] is True and report["schema_ok"] is True and report["schema"] == head_revision()


def test_models_and_migrations_agree(settings):
    """Autogenerate finds nothing to do: the shipped migrations build exactly the models' schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import hpms.models

    metadata = hpms.models.load_all()  # some domains load on first use: take them all
    with get_engine(settings).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


@pytest.mark.subprocess
def test_load_all_registers_every_model_module():
    """A module of tables that hpms.models neither imports nor lists among its lazy domains would
    escape autogenerate; and a patients command does not load the lazy domains."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    import hpms.models

    probe = (
        "import json, sys; import hpms.models; import hpms.services.people.patients; "
        "before = sorted(m for m in sys.modules if m.startswith('hpms.models.')); "
        "hpms.models.load_all(); "
        "print(json.dumps([before, sorted(m for m in sys.modules if m.startswith('hpms.models.'))]))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    before, after = json.loads(done.stdout)
    folder = Path(hpms.models.__file__).parent
    with_tables = {
        f"hpms.models.{p.stem}" for p in folder.glob("*.py") if "table=True" in p.read_text(encoding="utf-8")
    }
    assert with_tables and with_tables <= set(after)
    assert not {f"hpms.models.{d}" for d in hpms.models._LAZY} & set(before)
