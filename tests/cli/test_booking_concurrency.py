"""Double booking under real concurrency: eight `hpms appointments book` processes started at
once against one provider. Two groups of four ask for times that all overlap each other (the
same minute; and 11:00, 11:10, 11:20, 11:25 with 30-minute visits), so whatever the order the
processes run in, exactly one per group can win and every other one must fail with exit 4 and
a one-line error, and the tables hold no overlap.

A second test makes the race certain instead of likely: the test holds a booking of the same
time in a transaction it has not committed while the CLI books. On PostgreSQL the CLI's own
check cannot see that row, so its insert waits on the exclusion constraint and fails when the
test commits; on SQLite the CLI waits for the write lock and then finds the row."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.cli.conftest import Proc, subprocess_env
from tests.cli.helpers import error_line
from tests.cli.test_appointments import MONDAY, at
from tests.conftest import REPO

GROUPS = {"same minute": ["09:00"] * 4, "overlapping": ["11:00", "11:10", "11:20", "11:25"]}


def _setup(ctx_for) -> list[str]:
    from hpms.services.people import patients
    from hpms.services.scheduling import availability, resources

    with ctx_for() as ctx:
        resources.add_provider(ctx, first_name="Liam", last_name="Okafor", npi="1234567893")
        resources.add_type(ctx, name="Follow-up", duration_min=30, buffer_min=0)
        availability.set_hours(ctx, "Okafor", days="MO-FR", start="08:00", end="17:00")
        return [
            patients.register(ctx, first_name=f"Racer{i}", last_name="Tester", dob=f"1990-01-{i + 1:02d}").mrn
            for i in range(8)
        ]


def _env(settings) -> dict[str, str]:
    return subprocess_env(settings.home, None if settings.is_sqlite else settings.database_url)


def _start(env, mrn: str, hhmm: str) -> subprocess.Popen:
    args = [
        sys.executable,
        "-m",
        "hpms",
        "appointments",
        "book",
        "--patient",
        mrn,
        "--provider",
        "Okafor",
        "--type",
        "Follow-up",
        "--at",
        at(MONDAY, hhmm),
        "--json",
    ]
    return subprocess.Popen(
        args, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _overlaps(raw_sql) -> list:
    return raw_sql(
        "SELECT a.id, b.id FROM appointment a JOIN appointment b ON a.provider_id = b.provider_id AND a.id < b.id "
        "WHERE a.status NOT IN ('cancelled', 'no_show') AND b.status NOT IN ('cancelled', 'no_show') "
        "AND a.start_utc < b.block_end_utc AND b.start_utc < a.block_end_utc"
    )


@pytest.mark.subprocess
def test_concurrent_bookings_never_overlap(settings, ctx_for, raw_sql, cli):
    mrns = _setup(ctx_for)
    env = _env(settings)
    plan = [(group, hhmm) for group, times in GROUPS.items() for hhmm in times]
    procs = [(group, hhmm, _start(env, mrn, hhmm)) for mrn, (group, hhmm) in zip(mrns, plan, strict=True)]
    results = []
    for group, hhmm, p in procs:
        out, err = p.communicate(timeout=300)
        results.append((group, hhmm, Proc(p.returncode, out, err)))

    winners = []
    for group in GROUPS:
        mine = [(hhmm, r) for g, hhmm, r in results if g == group]
        won = [(hhmm, r) for hhmm, r in mine if r.exit_code == 0]
        assert len(won) == 1, f"{group}: {[(h, r.exit_code, r.stderr) for h, r in mine]}"
        for _, r in mine:
            if r.exit_code == 0:
                continue
            error_line(r, 4)
            assert r.stdout == ""
            assert "already has appointment" in r.stderr or "booked at that time by someone else" in r.stderr, r.stderr
        appt = json.loads(won[0][1].stdout)
        assert appt["start"] == f"{MONDAY}T{won[0][0]}:00-04:00" and appt["status"] == "booked"
        winners.append(appt)

    # straight from the tables: two visits, and no two blocking visits of the provider overlap
    assert sorted(r[0] for r in raw_sql("SELECT id FROM appointment")) == sorted(w["id"] for w in winners)
    assert _overlaps(raw_sql) == []
    # one creation event per winner, and the audit chain is intact after the race
    creates = raw_sql("SELECT count(*) FROM audit_event WHERE action = 'create' AND entity = 'appointment'")[0][0]
    assert creates == 2
    verified = cli("audit", "verify")
    assert verified.exit_code == 0, verified.stderr


def _waiting_on_a_lock(raw_sql) -> bool:
    rows = raw_sql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return rows[0][0] > 0


@pytest.mark.subprocess
def test_the_database_refuses_an_overlap_the_check_cannot_see(settings, ctx_for, raw_sql):
    from hpms.services.scheduling import appointments

    mrns = _setup(ctx_for)
    env = _env(settings)
    with ctx_for() as ctx:
        held = appointments.book(ctx, patient=mrns[0], provider="Okafor", type="Follow-up", at=at(MONDAY, "09:00"))
        proc = _start(env, mrns[1], "09:15")
        if settings.is_sqlite:
            time.sleep(2)  # the CLI waits for the write lock (busy timeout 10 s)
        else:
            deadline = time.monotonic() + 120
            while not _waiting_on_a_lock(raw_sql):  # its insert waits on the exclusion constraint
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the CLI never reached the constraint"
                time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()
    out, err = proc.communicate(timeout=300)
    result = Proc(proc.returncode, out, err)
    if settings.is_sqlite:
        error_line(result, 4, "--at", "already has appointment", str(held.booked[0].id))
    else:
        error_line(result, 4, "the provider was booked at that time by someone else just now", "find-slot")
    assert out == ""
    assert [r[0] for r in raw_sql("SELECT id FROM appointment")] == [held.booked[0].id]
    assert _overlaps(raw_sql) == []
