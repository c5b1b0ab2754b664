"""Fixtures for the CLI tests: raw SQL on the test database, row counts, the CLI in a real
subprocess, the CLI against a home that has no database yet, and acting as another user."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, count_rows
from tests.sms_server import sms_sink  # noqa: F401 - a fixture of these tests
from tests.smtp_server import smtp_sink, smtp_tls, tls_files  # noqa: F401 - fixtures of these tests


@dataclass
class Proc:
    """A finished `python -m hpms` run, shaped like a CliRunner result."""

    exit_code: int
    stdout: str
    stderr: str


def subprocess_env(home: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    """The parent's environment without any HPMS_* variable, plus the given ones."""
    # (the code-set cache is shared: it is built once per test run, not once per subprocess)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPMS_") or k == "HPMS_CACHE_DIR"}
    env["HPMS_HOME"] = str(home)
    if database_url:
        env["HPMS_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def run_subprocess(args: list[str] | tuple[str, ...], env: dict[str, str], cwd: Path | None = None) -> Proc:
    """Run `python -m hpms ARGS` with no stdin and no TTY; the timeout only guards against a hang."""
    done = subprocess.run(
        [sys.executable, "-m", "hpms", *args],
        env=env,
        cwd=cwd or REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Proc(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def hpms_proc(settings):
    """hpms_proc(*args, env={...}) runs hpms in a subprocess against the test database."""

    def run(*args: str, env: dict[str, str] | None = None) -> Proc:
        full = subprocess_env(settings.home, None if settings.is_sqlite else settings.database_url, **(env or {}))
        return run_subprocess(args, full)

    return run


@pytest.fixture
def raw_sql(settings):
    """raw_sql(statement, ...) runs SQL directly on the test database in one transaction and
    returns the rows of the last statement (if it returns any)."""
    import sqlalchemy as sa

    from hpms.db import get_engine

    def run(*statements: str):
        rows = None
        with get_engine(settings).begin() as conn:
            for stmt in statements:
                res = conn.execute(sa.text(stmt))
                rows = res.all() if res.returns_rows else None
        return rows

    return run


@pytest.fixture
def counts(settings):
    """counts(table, ...) -> {table: rows} for 'nothing was written' checks."""

    def snapshot(*tables: str) -> dict[str, int]:
        return {t: count_rows(settings, t) for t in tables}

    return snapshot


@pytest.fixture
def as_user(make_user, token_for):
    """as_user(name, *roles) creates the user and returns the env to act as it with a token."""

    def make(username: str, *roles: str) -> dict[str, str]:
        make_user(username, *roles)
        return {"HPMS_USER": username, "HPMS_TOKEN": token_for(username)}

    return make


@pytest.fixture
def fresh_cli(clean_env):
    """fresh_cli(*args, env={...}) runs the CLI in-process with HPMS_HOME at a new, empty
    directory (clean_env) and no database URL unless given in env."""
    from typer.testing import CliRunner

    from hpms.cli import app
    from hpms.db import dispose_engines

    def run(*args: str, env: dict[str, str] | None = None):
        full = {"HPMS_HOME": str(clean_env), **(env or {})}
        return CliRunner().invoke(app, list(args), env=full)

    yield run
    dispose_engines()


@pytest.fixture
def sql_log() -> Iterator:
    """with sql_log() as statements: ... collects every SQL statement any engine executes."""
    import sqlalchemy as sa
    from sqlalchemy import event

    @contextmanager
    def capture():
        seen: list[str] = []

        def listener(conn, cursor, statement, parameters, context, executemany):
            seen.append(statement)

        event.listen(sa.engine.Engine, "before_cursor_execute", listener)
        try:
            yield seen
        finally:
            event.remove(sa.engine.Engine, "before_cursor_execute", listener)

    return capture


@pytest.fixture
def patient(cli):
    """A registered patient (synthetic); returns its MRN."""
    import json

    r = cli(
        "patients",
        "register",
        "--first-name",
        "Ana",
        "--last-name",
        "Müller",
        "--dob",
        "1985-03-14",
        "--phone",
        "555-201-3344",
        "--email",
        "ana.muller@example.org",
        "--ssn",
        "123-45-6789",
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)["mrn"]


@pytest.fixture
def payer(cli):
    """A payer with X12 id 60054; returns the payer id."""
    r = cli("payers", "add", "--name", "Acme Health Plan", "--payer-id", "60054", "--city", "Hartford", "--state", "CT")
    assert r.exit_code == 0, r.stderr
    return "60054"


@pytest.fixture
def tamper(settings, raw_sql):
    """tamper(sql) runs an UPDATE/DELETE on audit_event past the append-only trigger, as an
    attacker with direct database access would."""

    def run(statement: str) -> None:
        if settings.is_sqlite:
            raw_sql(
                "DROP TRIGGER IF EXISTS audit_event_no_update",
                "DROP TRIGGER IF EXISTS audit_event_no_delete",
                statement,
            )
        else:  # one transaction: the trigger is enabled again when it commits (or rolls back)
            raw_sql(
                "ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only",
                statement,
                "ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only",
            )

    return run
