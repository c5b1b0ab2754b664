"""Crash safety of `hpms billing run` with a real process killed by SIGKILL: once while it creates
claims, once while it writes files; a third run takes over the dead run's lock and finishes.
Afterwards every signed encounter is on exactly one original claim, every claim in exactly one
written file, each control number exactly once across the files on disk, no temp file is left,
and the files pass pyx12."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.billing_fixtures import (
    assert_valid_837,
    bulk_copies,
    claim_numbers,
    leftovers,
    setup_practice,
    signed,
    x12_files,
)
from tests.cli.conftest import subprocess_env
from tests.conftest import REPO

BATCH = 2500  # encounters per attempt; the run commits claims 2000 at a time


def _start(settings, out: Path) -> subprocess.Popen:
    env = subprocess_env(settings.home, None if settings.is_sqlite else settings.database_url)
    return subprocess.Popen(
        [sys.executable, "-m", "hpms", "billing", "run", "--out", str(out), "--json"],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 60) -> bool:
    """SIGKILL `proc` as soon as `ready()` holds; False when the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            # the run may have ended between the check and the signal: that attempt does not count
            return proc.returncode == -signal.SIGKILL
        time.sleep(0.002)
    proc.kill()
    proc.wait()
    pytest.fail("the billing run neither reached the kill point nor finished in time")


def _count(raw_sql, sql: str) -> int:
    return raw_sql(sql)[0][0]


def test_killed_runs_are_finished_by_the_next_one(settings, ctx_for, raw_sql, tmp_path):
    p = setup_practice(ctx_for)
    templates = [
        signed(ctx_for, p.bob, "E11.9,I10", "99213:25:1,2", "36415::2"),
        signed(ctx_for, p.kid, "J06.9", "99214:1"),
    ]
    unbillable = signed(ctx_for, p.nora, "J06.9", "99214:1")  # no coverage: stays signed
    out = tmp_path / "out"
    out.mkdir()

    def add_work() -> None:
        for t in templates:
            bulk_copies(settings, t, BATCH // 2)

    # 1. killed while creating claims: some chunk committed, the files not written yet
    killed_in_claims = False
    for _ in range(5):
        add_work()
        before = _count(raw_sql, "SELECT count(*) FROM claim")
        proc = _start(settings, out)
        # the signal may land after the run released its lock (on its way out): that attempt
        # did not die mid-run, so it does not count
        if _kill_when(proc, lambda before=before: _count(raw_sql, "SELECT count(*) FROM claim") > before) and (
            _count(raw_sql, "SELECT count(*) FROM job_lock") == 1  # the dead run's lock is left behind
        ):
            killed_in_claims = True
            break
    assert killed_in_claims, "every run finished before it could be killed"

    # 2. killed while writing a file: recorded (pending), its temp file half written
    def writing() -> bool:
        return any(n.endswith(".tmp") for n in os.listdir(out))

    killed_in_files = False
    for _ in range(5):
        proc = _start(settings, out)
        if _kill_when(proc, writing):
            killed_in_files = True
            break
        add_work()
    assert killed_in_files, "every run finished before it could be killed while writing"
    assert leftovers(out) and _count(raw_sql, "SELECT count(*) FROM x12_file WHERE status = 'pending'") == 1

    # 3. the next run takes the dead process's lock over and finishes everything
    env = subprocess_env(settings.home, None if settings.is_sqlite else settings.database_url)
    done = subprocess.run(
        [sys.executable, "-m", "hpms", "billing", "run", "--out", str(out), "--json"],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr

    signed_left = [r[0] for r in raw_sql("SELECT id FROM encounter WHERE status = 'signed'")]
    assert signed_left == [unbillable]
    total = _count(raw_sql, "SELECT count(*) FROM encounter WHERE status = 'billed'")
    # exactly one original claim per billed encounter
    assert (
        raw_sql(
            "SELECT e.id, count(c.id) FROM encounter e LEFT JOIN claim c ON c.encounter_id = e.id "
            "AND c.frequency = '1' WHERE e.status = 'billed' GROUP BY e.id HAVING count(c.id) <> 1"
        )
        == []
    )
    assert _count(raw_sql, "SELECT count(*) FROM claim") == total
    # every claim in exactly one written file, and the files' counts add up
    assert _count(raw_sql, "SELECT count(*) FROM claim WHERE x12_file_id IS NULL") == 0
    assert raw_sql("SELECT status, count(*) FROM x12_file GROUP BY status") == [("written", len(x12_files(out)))]
    assert _count(raw_sql, "SELECT coalesce(sum(claims), 0) FROM x12_file") == total
    assert _count(raw_sql, "SELECT count(*) FROM job_lock") == 0
    assert leftovers(out) == []

    # on disk: each control number exactly once across all files, matching the database
    on_disk: list[str] = []
    by_file = dict(raw_sql("SELECT filename, claims FROM x12_file"))
    for f in x12_files(out):
        numbers = claim_numbers(f.read_text(encoding="ascii"))
        assert len(numbers) == by_file[f.name], f.name
        on_disk.extend(numbers)
    assert len(on_disk) == len(set(on_disk)) == total
    assert set(on_disk) == {r[0] for r in raw_sql("SELECT control_number FROM claim")}
    # pyx12 is slow on big files: validate the smallest one of each payer
    smallest: dict[str, Path] = {}
    for f in x12_files(out):
        payer = f.name.split("-")[1]
        if payer not in smallest or f.stat().st_size < smallest[payer].stat().st_size:
            smallest[payer] = f
    for f in smallest.values():
        assert_valid_837(f)
