"""`hpms demo`: a demo clinic in its own home; reruns change nothing; a real practice is refused;
its schedule keeps the rules a clinic's own bookings keep, on both backends."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from zoneinfo import ZoneInfo

import pytest

from tests.cli.helpers import error_line, ok
from tests.conftest import PG_URL, REPO, _run_id, copy_demo, demo_record

BLOCKING = ("booked", "confirmed", "arrived", "in_room", "completed")


def test_demo_home_builds_once(demo_template, fresh_cli, clean_env, tmp_path):
    """The run's shared demo build (`hpms demo --home DIR --json`), then a copy of it."""
    built = demo_template
    data = demo_record(built)["data"]
    assert data["created"] is True
    assert data["home"] == str(built)
    assert data["organization"] == "Riverside Family Medicine"
    assert data["locations"] == 2 and data["payers"] == 4
    assert data["users"] >= 7  # the admin and staff of every role
    assert data["patients"] >= 60 and data["coverages"] > 0
    assert data["providers"] == 3 and data["appointments"] > 200 and data["waitlist"] == 4
    assert (built / "hpms.db").is_file()
    # the billing side: encounters for the completed visits, one billing run, its files
    assert data["encounters"] > 100 and data["claims"] > 50 and data["claim_files"] >= 2
    assert data["worklist"] > 0  # visits of patients without coverage
    assert data["claims_dir"] == str(built / "claims")
    home = copy_demo(built, tmp_path / "demo-clinic")  # the commands below write audit events
    files = sorted((home / "claims").glob("837P-*.x12"))
    assert len(files) == data["claim_files"]
    _assert_valid_837p(min(files, key=lambda p: p.stat().st_size))

    demo_env = {"HPMS_HOME": str(home)}
    locations = ok(fresh_cli("locations", "list", "--json", env=demo_env))
    assert len({loc["tz"] for loc in locations}) == 2
    roles = {r for u in ok(fresh_cli("users", "list", "--json", env=demo_env)) for r in u["roles"]}
    assert roles == {"admin", "front_desk", "biller", "provider", "auditor", "service"}
    assert ok(fresh_cli("audit", "verify", "--json", env=demo_env))["ok"] is True
    # the self-bookable type is open to online booking in the portal
    online = ok(fresh_cli("portal", "policies", "show", "--json", env=demo_env))
    assert [(p["type"], p["enabled"]) for p in online["policies"]] == [("Telehealth", True)], online
    assert ok(fresh_cli("patients", "duplicates", "--json", env=demo_env))
    claims = ok(fresh_cli("claims", "list", "--limit", "10000", "--json", env=demo_env))
    # the files were uploaded; the payers answered for the older visits (paid or denied)
    assert len(claims) == data["claims"]
    statuses = {c["status"] for c in claims}
    # (ready: secondary claims for what a primary payer left to a patient with a second coverage;
    # patient_resp: the allowed amount went to the deductible)
    assert (
        {"submitted", "paid", "denied", "patient_resp"}
        <= statuses
        <= {"ready", "submitted", "paid", "partially_paid", "patient_resp", "denied"}
    )
    assert {f["file"] for f in ok(fresh_cli("billing", "files", "--json", env=demo_env))} == {p.name for p in files}
    work = ok(fresh_cli("claims", "worklist", "--json", env=demo_env))
    assert work and {w["rule_id"] for w in work} == {"PAYER-ID", "DENIAL"}
    # an 835 from each payer every week of the history, each its own file
    assert data["remittances"] >= 12 and data["era_dir"] == str(built / "era")
    assert len(list((home / "era").glob("*.835"))) == data["remittances"]
    remits = ok(fresh_cli("remits", "list", "--json", env=demo_env))
    assert all(r["unmatched"] == 0 and r["posted"] == r["claims"] > 0 for r in remits)
    assert len({r["payment_date"] for r in remits}) >= 3  # paid on several past days
    assert ok(fresh_cli("claims", "denied", "--json", env=demo_env))
    _last_month_has_figures(fresh_cli, demo_env)
    _money_in_json_is_text(fresh_cli, demo_env)

    assert not (clean_env / "hpms.db").exists()  # nothing went to the default home
    r = fresh_cli("demo", "--home", str(home), "--patients", "60")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "already present" in r.stderr
    assert f"  export HPMS_HOME={home}\n" in r.stderr
    assert "\n  hpms patients list --limit 10\n" in r.stderr
    again = ok(fresh_cli("demo", "--home", str(home), "--patients", "60", "--json"))
    assert again["created"] is False
    kept = (
        "patients",
        "users",
        "payers",
        "coverages",
        "providers",
        "appointments",
        "waitlist",
        "encounters",
        "claims",
        "claim_files",
        "worklist",
        "remittances",
        "ledger_entries",
    )
    assert {k: again[k] for k in kept} == {k: data[k] for k in kept}


def _last_month_has_figures(fresh_cli, env) -> None:
    """The demo's history spans the past months: last month's reports are not empty."""
    kpis = {r["kpi"]: r for r in ok(fresh_cli("reports", "show", "kpis", "--period", "last-month", "--json", env=env))}
    assert all(
        kpis[k]["value"] is not None for k in ("Days in A/R", "Clean-claim rate", "Denial rate", "Net collection rate")
    )
    assert 0 < float(kpis["Net collection rate"]["value"]) <= 100
    summary = ok(fresh_cli("reports", "show", "claims-summary", "--period", "last-month", "--json", env=env))
    assert summary and sum(r["claims"] for r in summary) > 0 and sum(r["first_submitted"] for r in summary) > 0
    aging = ok(fresh_cli("reports", "show", "ar-aging", "--period", "last-month", "--json", env=env))
    assert aging and sum(float(r["total"]) for r in aging) > 0


MONEY_KEYS = {
    "amount",
    "balance",
    "charge",
    "copay",
    "credit",
    "deductible",
    "paid",
    "payment",
    "total",
    "adjusted",
    "patient_responsibility",
    "provider_adjustments",
    "amount_due",
    "deductible_remaining",
}


def _money_in_json_is_text(fresh_cli, env) -> None:
    """Every amount in --json output is a string ("12.50"), never a JSON number."""
    import re

    def walk(value, where: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k in MONEY_KEYS and v is not None and not isinstance(v, (str, dict, list)):
                    raise AssertionError(f"{where}: {k} = {v!r} is not a string")
                walk(v, f"{where}.{k}")
        elif isinstance(value, list):
            for v in value:
                walk(v, where)

    from hpms.services import reports

    mrn = ok(fresh_cli("patients", "list", "--limit", "1", "--json", env=env))[0]["mrn"]
    for cmd in (
        ("claims", "list"),
        ("claims", "denied"),
        ("remits", "list"),
        ("payments", "list"),
        ("statements", "list"),
        ("patients", "show", mrn),
        ("patients", "ledger", mrn),
        ("billing", "files"),
        ("eligibility", "list"),
        ("claims", "show", "1"),
    ):
        walk(ok(fresh_cli(*cmd, "--json", env=env)), " ".join(cmd))
    # a report's money columns, by the column types it declares
    for name in (
        "kpis",
        "payments",
        "adjustments",
        "ar-aging",
        "claims-summary",
        "charges",
        "denials-by-carc",
        "provider-productivity",
        "day-sheet",
    ):
        money = [c.key for c in reports.get(name).columns if c.kind == "money"]
        rows = ok(fresh_cli("reports", "show", name, "--period", "last-month", "--json", env=env))
        bad = [(k, r[k]) for r in rows for k in money if r[k] is not None and not isinstance(r[k], str)]
        assert not bad, f"{name}: {bad[:3]}"
    # a KPI's money numerators are strings too; its counts stay whole numbers
    kpis = {r["kpi"]: r for r in ok(fresh_cli("reports", "show", "kpis", "--period", "last-month", "--json", env=env))}
    assert re.fullmatch(r"\d+\.\d\d", kpis["Net collection rate"]["numerator"])
    assert isinstance(kpis["Clean-claim rate"]["numerator"], int)


def _assert_valid_837p(path) -> None:
    """pyx12 reads the whole interchange and finds no error."""
    import io
    import logging

    import pyx12.params
    import pyx12.x12n_document

    logging.getLogger("pyx12").setLevel(logging.CRITICAL)
    text = path.read_text(encoding="ascii")
    assert text.startswith("ISA*") and "~\nCLM*" in text
    assert pyx12.x12n_document.x12n_document(
        param=pyx12.params.params(),
        src_file=io.StringIO(text),
        fd_997=None,
        fd_html=None,
        fd_xmldoc=None,
        fd_json=io.StringIO(),
    ), path.name


@pytest.mark.subprocess
def test_demo_without_a_home_builds_beside_the_default_one(clean_env, tmp_path, monkeypatch):
    """As the README runs it: `.venv/bin/hpms demo` with no HPMS_HOME goes to a demo home of its
    own, never the default home a real practice would use, and the lines it prints work."""
    import shlex

    from tests.cli.conftest import run_subprocess, subprocess_env

    env = subprocess_env(clean_env)
    del env["HPMS_HOME"]
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    exe = REPO / ".venv" / "bin" / "hpms"
    r = subprocess.run(
        [str(exe), "demo", "--patients", "10"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert r.returncode == 0, r.stderr
    demo_home = tmp_path / "data" / "hpms-demo"
    assert (demo_home / "hpms.db").is_file()
    assert not (tmp_path / "data" / "hpms").exists()  # the default home stays untouched
    lines = r.stderr.splitlines()
    export = [ln.strip() for ln in lines if ln.strip().startswith("export HPMS_HOME=")]
    assert export == [f"export HPMS_HOME={shlex.quote(str(demo_home))}"]
    tries = [ln.strip() for ln in lines[lines.index("then try:") + 1 :]]
    assert tries and all(t.startswith(f"{exe} ") for t in tries)
    env["HPMS_HOME"] = str(demo_home)
    for line in tries[:3] + [t for t in tries if "audit verify" in t]:
        done = subprocess.run(
            shlex.split(line), env=env, capture_output=True, text=True, timeout=120, check=False, cwd=REPO
        )
        assert done.returncode == 0, (line, done.stderr)
    real = run_subprocess(["patients", "list"], env | {"HPMS_HOME": str(tmp_path / "data" / "hpms")})
    assert real.exit_code == 2 and "no database at" in real.stderr


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


# ---- the schedule --------------------------------------------------------------------------


@pytest.fixture
def empty_pg_database():
    """A PostgreSQL database of its own with no schema at all (the demo initializes it)."""
    import sqlalchemy as sa

    from tests.conftest import _pg_reason

    reason = _pg_reason()
    if reason:
        pytest.skip(reason)
    name = f"hpms_demo_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{_run_id()}".lower()
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


def _overlaps(conn, column: str, end: str) -> list:
    """Pairs of blocking appointments sharing a provider, room or patient whose times overlap."""
    import sqlalchemy as sa

    blocking = ", ".join(f"'{s}'" for s in BLOCKING)
    return conn.execute(
        sa.text(
            f"SELECT a.id, b.id FROM appointment a JOIN appointment b ON a.{column} = b.{column} AND a.id < b.id "
            f"AND a.start_utc < b.{end} AND b.start_utc < a.{end} "
            f"WHERE a.status IN ({blocking}) AND b.status IN ({blocking})"
        )
    ).all()


def test_demo_schedule_is_consistent(backend, request, fresh_cli, clean_env, tmp_path):
    """On SQLite the run's shared demo build (a copy of it); on PostgreSQL a build of its own."""
    import sqlalchemy as sa

    from hpms.db import make_engine
    from hpms.models import Appointment

    if backend == "sqlite":
        built = request.getfixturevalue("demo_template")
        home = copy_demo(built, tmp_path / "demo-clinic")
        url = f"sqlite:///{home / 'hpms.db'}"
        rec = demo_record(built)
        data, before, after = rec["data"], rec["before"], rec["after"]
    else:
        url = request.getfixturevalue("empty_pg_database")
        before = dt.datetime.now(dt.UTC)
        data = ok(fresh_cli("demo", "--patients", "60", "--json", env={"HPMS_DATABASE_URL": url}))
        after = dt.datetime.now(dt.UTC)
    assert data["created"] is True and data["appointments"] > 200

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            # the database guards agree, but check the rows themselves
            assert _overlaps(conn, "provider_id", "block_end_utc") == []
            assert _overlaps(conn, "room_id", "block_end_utc") == []
            assert _overlaps(conn, "patient_id", "end_utc") == []
            providers = conn.execute(
                sa.text(
                    "SELECT u.username, p.npi FROM provider p JOIN hpms_user u ON u.id = p.user_id ORDER BY u.username"
                )
            ).all()
            assert [u for u, _ in providers] == ["drnguyen", "drpatel", "drsmith"]
            from hpms.codes.npi import is_valid_npi

            assert all(is_valid_npi(npi) for _, npi in providers)
            sites = (
                conn.execute(sa.text("SELECT count(*) FROM provider_location GROUP BY provider_id ORDER BY 1"))
                .scalars()
                .all()
            )
            assert sites == [1, 1, 2]
            assert conn.execute(sa.text("SELECT count(*) FROM working_hours WHERE rrule IS NOT NULL")).scalar_one() == 1
            assert conn.execute(sa.text("SELECT count(*) FROM time_off WHERE provider_id IS NULL")).scalar_one() >= 1
            assert conn.execute(sa.text("SELECT count(*) FROM room")).scalar_one() >= 6
            types = dict(conn.execute(sa.text("SELECT name, needs_room FROM appointment_type")).all())
            assert {"New patient", "Follow-up", "Annual physical", "Telehealth", "Procedure"} <= set(types)
            assert conn.execute(sa.text("SELECT count(*) FROM waitlist_entry WHERE status = 'open'")).scalar_one() == 4
            series = conn.execute(sa.text("SELECT count(*) FROM appointment WHERE series_id IS NOT NULL")).scalar_one()
            assert series >= 4
            tz = dict(conn.execute(sa.text("SELECT id, tz FROM location")).all())
            needs_room = {i for i, n in conn.execute(sa.text("SELECT id, needs_room FROM appointment_type")) if n}
            freed = set(conn.execute(sa.text("SELECT appointment_id FROM freed_slot")).scalars())
            t = Appointment.__table__
            rows = conn.execute(sa.select(t)).all()  # through the column types: aware UTC datetimes
            events = conn.execute(
                sa.text("SELECT count(*) FROM audit_event WHERE entity = 'appointment' AND action = 'create'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert events >= 1  # recorded in bulk, one event per chunk naming the patients

    past = [r for r in rows if r.end_utc <= before]
    future = [r for r in rows if r.start_utc > after + dt.timedelta(minutes=15)]
    assert len(past) > 100 and len(future) > 50
    status = lambda rs, s: sum(r.status == s for r in rs)  # noqa: E731
    assert {r.status for r in past} <= {"completed", "no_show", "cancelled"}
    assert 0.02 < status(past, "no_show") / len(past) < 0.16
    assert 0.04 < status(past, "cancelled") / len(past) < 0.18
    assert any(r.late_cancel for r in past) and not all(r.late_cancel for r in past if r.status == "cancelled")
    assert {r.status for r in future} <= {"booked", "confirmed", "cancelled"}
    assert status(future, "cancelled") < 0.1 * len(future)
    for r in rows:
        local = r.start_utc.astimezone(ZoneInfo(tz[r.location_id]))
        # stored in UTC from wall-clock times: every visit starts on the local quarter hour in hours
        assert 8 <= local.hour < 17 and local.minute % 15 == 0 and local.weekday() < 5, (r.id, local)
        assert r.booked_at <= min(r.start_utc, after)
        assert r.updated_at <= after
        if r.status == "completed":
            assert r.arrived_at <= r.roomed_at <= r.completed_at and r.room_id is not None
        if r.status == "no_show":
            assert r.no_show_at >= r.start_utc and r.arrived_at is None
        if r.status == "cancelled":
            assert r.cancelled_at >= r.booked_at and r.cancel_reason
            assert r.cancelled_at < r.start_utc
            if r.start_utc > after:
                assert r.id in freed
        if r.type_id in needs_room:
            assert r.room_id is not None
