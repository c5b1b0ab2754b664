"""Fixtures: every test that takes `settings` runs once on SQLite and once on PostgreSQL.

PostgreSQL comes from HPMS_TEST_POSTGRES_URL (default: the local server's `test` database);
each xdist worker gets its own database, migrated once and truncated between tests.
When no server is reachable the PostgreSQL half is skipped with the reason shown.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_URL = os.environ.get("HPMS_TEST_POSTGRES_URL", PG_DEFAULT)
REPO = Path(__file__).resolve().parent.parent
TEST_DATA = REPO / "tests" / "data"  # sample files the tests read (see its README.md)
ENV_VARS = (
    "HPMS_HOME",
    "HPMS_DATABASE_URL",
    "HPMS_CONFIG",
    "HPMS_KEY",
    "HPMS_KEY_FILE",
    "HPMS_USER",
    "HPMS_TOKEN",
    "HPMS_NEW_KEY",
    "HPMS_CREDENTIALS",
    "HPMS_SMTP_URL",
    "HPMS_SMS_URL",
    "HPMS_PUBLIC_URL",
    "HPMS_INBOUND_EMAIL_SECRET",
    "HPMS_PORTAL_BEHIND_TLS",
    "HPMS_PORTAL_DEV_CODES",
    "HPMS_PORTAL_PUBLIC_URL",
)

_pg_state: dict[str, object] = {}


def _convert_the_cli_once() -> None:
    """Typer's CliRunner converts the app it is given into Click commands on every invoke,
    reading the parameters of all ~290 commands (0.3-0.5 s a call, most of a CLI test's
    time). The whole tree, `hpms.cli.app`, is converted once per process here: Click commands
    keep no state between runs. Apps a test builds itself are converted on each invoke, as
    before."""
    import typer.testing

    convert = typer.testing._get_command
    done: dict[str, object] = {}

    def get_command(app):
        import hpms.cli

        if app is not hpms.cli.__dict__.get("app"):
            return convert(app)
        if "tree" not in done:
            done["tree"] = convert(app)
        return done["tree"]

    typer.testing._get_command = get_command


_convert_the_cli_once()


def _pg_reason() -> str | None:
    """None when PostgreSQL is reachable, else why not (cached)."""
    if "reason" not in _pg_state:
        try:
            import sqlalchemy as sa

            eng = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with eng.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            eng.dispose()
            _pg_state["reason"] = None
        except Exception as exc:  # noqa: BLE001
            _pg_state["reason"] = f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}"
    return _pg_state["reason"]  # type: ignore[return-value]


def pytest_collection_finish(session) -> None:
    """The collected modules (hpms, SQLAlchemy, Textual, the code tables: over a million objects)
    live for the whole run: move them out of the collector's sight, and collect less often. The
    default thresholds made each worker rescan its whole heap every few tests, a fifth of the
    suite's time; the tests' own garbage is still collected."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def pytest_report_header(config):
    reason = _pg_reason()
    return f"hpms: PostgreSQL tests {'SKIPPED: ' + reason if reason else 'enabled at ' + PG_URL}"


@pytest.fixture(scope="session", autouse=True)
def code_cache_dir(tmp_path_factory) -> Iterator[Path]:
    """One HPMS_CACHE_DIR for the whole run, shared by the xdist workers: the ICD-10-CM table
    is built at most once (its builder takes a lock)."""
    base = tmp_path_factory.getbasetemp()
    path = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "hpms-cache"
    path.mkdir(exist_ok=True)
    before = os.environ.get("HPMS_CACHE_DIR")
    os.environ["HPMS_CACHE_DIR"] = str(path)
    yield path
    if before is None:
        os.environ.pop("HPMS_CACHE_DIR", None)
    else:
        os.environ["HPMS_CACHE_DIR"] = before


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite database holding the bootstrapped 'Test Clinic', copied for each test
    (running the migrations for every test would dominate the suite's time)."""
    from hpms.config import load_settings
    from hpms.db import dispose_engines
    from hpms.services.platform import admin

    home = tmp_path_factory.mktemp("template")
    cfg = load_settings(env={"HPMS_HOME": str(home)})
    admin.init(cfg, practice="Test Clinic", tz="America/New_York", location="Main")
    dispose_engines()
    return home / "hpms.db"


def _shared_dir(tmp_path_factory) -> Path:
    """A directory the xdist workers of one run share (the run's own base when not distributed)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def demo_env(home: Path) -> dict[str, str]:
    """The environment of a command run on the demo clinic in `home` (no other HPMS_ setting)."""
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("HPMS_") or k == "HPMS_CACHE_DIR"}
    env["HPMS_HOME"] = str(home)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO)
    return env


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    """One demo clinic (`hpms demo --home DIR --json`, the default size) for the whole run, built
    by the first worker to ask (the others wait on a lock file). Tests read it or copy it; none
    writes to it. Beside it, `demo.json` holds what the build printed and when it ran."""
    import datetime as dt
    import fcntl
    import json
    import subprocess
    import sys

    root = _shared_dir(tmp_path_factory)
    home = root / "demo-clinic"
    record = root / "demo.json"
    with open(root / "demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            shutil.rmtree(home, ignore_errors=True)
            before = dt.datetime.now(dt.UTC)
            proc = subprocess.run(
                [sys.executable, "-m", "hpms", "demo", "--home", str(home), "--json"],
                env=demo_env(home),
                capture_output=True,
                text=True,
                timeout=600,
            )
            after = dt.datetime.now(dt.UTC)
            assert proc.returncode == 0, proc.stderr
            data = json.loads(proc.stdout)
            record.write_text(json.dumps({"data": data, "before": before.isoformat(), "after": after.isoformat()}))
    return home


def demo_record(home: Path) -> dict:
    """What the shared demo build printed (`data`) and when it started and ended (`before`,
    `after`, aware UTC datetimes)."""
    import datetime as dt
    import json

    rec = json.loads((home.parent / "demo.json").read_text())
    return rec | {k: dt.datetime.fromisoformat(rec[k]) for k in ("before", "after")}


def copy_demo(template: Path, to: Path) -> Path:
    """A private copy of the demo clinic at `to` (a test that runs commands writes audit events)."""
    shutil.copytree(template, to)
    return to


def _run_id() -> str:
    """Shared by the xdist workers of one run, different between runs (so two runs on one
    PostgreSQL server never drop each other's databases)."""
    return (os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"p{os.getpid()}")[:12]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    reason = _pg_reason()
    if reason:
        if os.environ.get("HPMS_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"HPMS_TEST_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    import sqlalchemy as sa

    from hpms.db import make_engine, migrate

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"hpms_test_{worker}_{_run_id()}".lower()
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
        # A test database need not survive a crash of the server: commits return without
        # waiting for the WAL flush (transactions stay atomic and isolated).
        conn.exec_driver_sql(f"ALTER DATABASE {name} SET synchronous_commit = off")
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    from hpms.db import dispose_engines

    dispose_engines()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


_PG_RESET: dict[str, tuple[object, str]] = {}


def _truncate_pg(url: str) -> None:
    """Empty every table and restart every sequence, as at the end of the migrations.

    DELETE, not TRUNCATE: TRUNCATE gives each of ~60 tables and their indexes new files, ~0.6 s
    a test, where deleting the few rows a test wrote takes milliseconds. The replica role turns
    off the foreign-key and append-only triggers for this one transaction (the test server's
    superuser may), so the order of the tables does not matter."""
    import sqlalchemy as sa

    if url not in _PG_RESET:
        eng = sa.create_engine(url, poolclass=sa.pool.StaticPool)
        with eng.connect() as conn:
            tables = [
                r[0]
                for r in conn.exec_driver_sql(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                )
            ]
        script = "".join(f'DELETE FROM "{t}";' for t in tables)
        script += (
            "SELECT count(setval(c.oid, 1, false)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'S' AND n.nspname = 'public';"
            f"INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, 0, '{'0' * 64}');"
            "INSERT INTO key_state (id, active_kid) VALUES (1, NULL);"
        )
        _PG_RESET[url] = (eng, script)
    eng, script = _PG_RESET[url]
    with eng.begin() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.exec_driver_sql(script)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def clean_env(monkeypatch, tmp_path) -> Path:
    """No HPMS_* variable leaks in from the developer's shell; HPMS_HOME is a temp dir."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("HPMS_HOME", str(home))
    return home


@pytest.fixture
def settings(request, backend, clean_env, monkeypatch, sqlite_template):
    """An initialized practice ('Test Clinic', location 'Main' in America/New_York) whose first
    admin is the OS user running the tests."""
    import sqlalchemy as sa

    from hpms.config import load_settings
    from hpms.db import dispose_engines, get_engine, session_scope
    from hpms.services.platform.admin import _adopt_key
    from hpms.services.platform.auth import os_login
    from hpms.services.platform.crypto import create_key_file
    from hpms.services.platform.org import bootstrap

    home = clean_env
    home.mkdir(parents=True, mode=0o700)
    if backend == "sqlite":
        shutil.copy(sqlite_template, home / "hpms.db")
        os.chmod(home / "hpms.db", 0o600)
        # the template's key: it sealed the template's audit events and is its database's key
        shutil.copy(sqlite_template.with_name("hpms.key"), home / "hpms.key")
        os.chmod(home / "hpms.key", 0o600)
        cfg = load_settings()
    else:
        url = request.getfixturevalue("pg_database")
        _truncate_pg(url)
        monkeypatch.setenv("HPMS_DATABASE_URL", url)
        cfg = load_settings()
        create_key_file(cfg.key_file)
        with session_scope(get_engine(cfg)) as session:
            bootstrap(
                session,
                cfg,
                practice="Test Clinic",
                tz="America/New_York",
                location_name="Main",
                admin_username=os_login(),
            )
        with session_scope(get_engine(cfg)) as session:  # this test's key is the database's key
            session.execute(sa.text("UPDATE key_state SET active_kid = NULL"))
            _adopt_key(session, cfg, key_created=False)
    yield cfg
    dispose_engines()


@pytest.fixture
def ctx_for(settings):
    """ctx_for(username=None) -> context manager yielding a Ctx in one committed transaction."""
    from hpms.db import get_engine, session_scope
    from hpms.services.platform.auth import os_login
    from hpms.services.platform.context import context_for

    @contextmanager
    def make(username: str | None = None, clock=None):
        with session_scope(get_engine(settings)) as session:
            kwargs = {"clock": clock} if clock else {}
            yield context_for(session, settings, username or os_login(), **kwargs)

    return make


@pytest.fixture
def make_user(ctx_for):
    """make_user(name, *roles) creates a user as the admin and returns its name."""
    from hpms.services.platform import users

    def make(username: str, *roles: str) -> str:
        with ctx_for() as ctx:
            users.add_user(ctx, username=username, roles=list(roles) or ["front_desk"])
        return username

    return make


@pytest.fixture
def token_for(ctx_for):
    """token_for(name) -> an API token for that user (the user must exist)."""
    from hpms.services.platform import users

    def make(username: str) -> str:
        with ctx_for() as ctx:
            return users.issue_token(ctx, username)

    return make


@pytest.fixture
def cli(settings):
    """cli(*args, env={...}) runs the hpms CLI in-process against the test database."""
    from typer.testing import CliRunner

    from hpms.cli import app

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None):
        runner = CliRunner()
        full_env = {"HPMS_HOME": str(settings.home)}
        if not settings.is_sqlite:
            full_env["HPMS_DATABASE_URL"] = settings.database_url
        full_env.update(env or {})
        return runner.invoke(app, list(args), env=full_env, input=input)

    return run


def count_rows(settings, table: str) -> int:
    """Rows in a table, read directly (for 'nothing was written' checks)."""
    import sqlalchemy as sa

    from hpms.db import get_engine

    with get_engine(settings).connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
