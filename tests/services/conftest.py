"""Fixtures for the service-layer tests (the shared ones live in tests/conftest.py)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import pytest

from tests.conftest import PG_URL

# A fixed "now" so that date rules (future birth dates, coverage periods) do not drift.
NOW = dt.datetime(2026, 6, 15, 14, 30, tzinfo=dt.UTC)


def fixed_clock() -> dt.datetime:
    return NOW


@pytest.fixture
def scratch_url(request, settings, tmp_path) -> Iterator[str]:
    """The URL of an empty database (no schema) on the test's backend, dropped afterwards."""
    if settings.is_sqlite:
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    import sqlalchemy as sa

    name = f"hpms_scratch_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture
def register(ctx_for):
    """register(**fields) registers a patient as the admin (fixed clock) and returns it."""
    from hpms.services.people import patients

    def make(**data):
        data.setdefault("first_name", "Test")
        data.setdefault("last_name", "Patient")
        data.setdefault("dob", "1980-01-01")
        data.setdefault("allow_duplicate", True)  # test patients share the default name and birth date
        with ctx_for(clock=fixed_clock) as ctx:
            return patients.register(ctx, **data)

    return make


@pytest.fixture
def payer(ctx_for):
    """A payer 'Acme Health' (X12 id ACME1) added by the admin."""
    from hpms.services.people import coverage

    with ctx_for() as ctx:
        return coverage.add_payer(ctx, name="Acme Health", payer_id="ACME1")
