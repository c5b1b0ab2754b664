"""Files hpms writes: created 0600 whatever the umask, written whole (temp name, rename), a
failed write leaves nothing, a killed writer's temp file is removed by the next write there."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpms import fileio
from hpms.errors import FileWriteError, ValidationError
from tests.billing_fixtures import setup_practice, signed

UMASKS = [0, 0o022]


@pytest.fixture(params=UMASKS, ids=lambda m: f"umask{m:03o}")
def umask(request):
    before = os.umask(request.param)
    yield request.param
    os.umask(before)


@pytest.fixture(autouse=True)
def fresh_sweeps():
    fileio._swept.clear()  # each test's directories are new; the sweep runs once per directory
    yield
    fileio._swept.clear()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_a_new_file_is_private_whatever_the_umask(tmp_path, umask):
    target = tmp_path / "a.txt"
    fileio.write_atomically(target, b"one")
    assert (target.read_bytes(), mode(target)) == (b"one", 0o600)
    with fileio.atomic_file(tmp_path / "b.txt", encoding="utf-8") as fh:
        fh.write("two")
    assert mode(tmp_path / "b.txt") == 0o600
    with fileio.atomic_path(tmp_path / "c.db") as tmp:
        assert mode(tmp) == 0o600  # private before the first byte
        tmp.write_bytes(b"three")
    assert (mode(tmp_path / "c.db"), names(tmp_path)) == (0o600, ["a.txt", "b.txt", "c.db"])


def test_a_replaced_file_keeps_its_mode_and_a_given_mode_wins(tmp_path, umask):
    target = tmp_path / "feed.ics"
    target.write_bytes(b"old")
    target.chmod(0o640)
    fileio.write_atomically(target, b"new")
    assert (target.read_bytes(), mode(target)) == (b"new", 0o640)
    fileio.write_atomically(target, b"public", mode=0o644)
    assert mode(target) == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "report.csv"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), fileio.atomic_file(target, encoding="utf-8") as fh:
        fh.write("half")
        raise RuntimeError("the query failed")
    assert (target.read_bytes(), names(tmp_path)) == (b"old", ["report.csv"])


def test_a_full_disk_is_a_file_write_error_naming_the_file(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "fsync", full)
    target = tmp_path / "x.270"
    with pytest.raises(FileWriteError) as err:
        fileio.write_atomically(target, b"ISA*")
    assert str(target) in err.value.message and "No space left on device" in err.value.message
    assert int(err.value.exit_code) == 74
    assert names(tmp_path) == []


def test_directories_that_do_not_take_files(tmp_path, monkeypatch):
    with pytest.raises(ValidationError, match="does not exist") as err:
        fileio.write_atomically(tmp_path / "nope" / "x.csv", b"", field="out")
    assert err.value.field == "out"
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ValidationError, match="is not a directory"):
        fileio.check_directory(tmp_path / "file", field="out")
    ro = tmp_path / "ro"
    ro.mkdir()
    deny_writes_under(monkeypatch, ro)
    with pytest.raises(ValidationError, match="is not writable") as err:
        fileio.check_directory(ro, field="out")
    assert err.value.field == "out" and names(ro) == []


def deny_writes_under(monkeypatch, directory: Path) -> None:
    """Make `directory` refuse new files, also for root (whom a chmod does not stop)."""
    directory.chmod(0o555)
    real_open = os.open

    def refusing(path, flags, *args, **kwargs):
        if str(path).startswith(str(directory) + os.sep) and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(fileio.os, "open", refusing)


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_a_killed_writers_temp_file_is_removed_by_the_next_write(tmp_path):
    killed = tmp_path / f".report.csv.{dead_pid()}.0badc0de.tmp"
    killed.write_bytes(b"half a report")
    alive = tmp_path / f".other.csv.{os.getppid()}.00000001.tmp"  # a writer still running
    alive.write_bytes(b"in progress")
    old = tmp_path / f".other.csv.{os.getppid()}.00000002.tmp"  # untouched for over an hour
    old.write_bytes(b"forgotten")
    hour_ago = time.time() - fileio.STALE_AFTER - 60
    os.utime(old, (hour_ago, hour_ago))
    unrelated = tmp_path / ".notes.tmp"
    unrelated.write_bytes(b"not ours")
    fileio.write_atomically(tmp_path / "report.csv", b"whole")
    assert names(tmp_path) == sorted([alive.name, unrelated.name, "report.csv"])


def test_read_input_errors_name_the_field(tmp_path):
    with pytest.raises(ValidationError, match="does not exist") as err:
        fileio.read_input(tmp_path / "none.835", field="file")
    assert err.value.field == "file" and int(err.value.exit_code) == 2
    with pytest.raises(ValidationError, match="is a directory"):
        fileio.read_input(tmp_path, field="file")


# ---- the commands that write patient data -------------------------------------------------------


@pytest.fixture
def out(tmp_path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


def test_report_exports_are_private(cli, out, umask):
    for name in ("visits.csv", "visits.xlsx", "visits.ods", "visits.html"):
        r = cli("reports", "export", "appointments-by-day", "--period", "2026-03", "-o", str(out / name))
        assert r.exit_code == 0, r.stderr
        assert mode(out / name) == 0o600
    assert names(out) == ["visits.csv", "visits.html", "visits.ods", "visits.xlsx"]


def test_a_killed_export_is_cleaned_by_the_next_export(cli, out):
    killed = out / f".visits.csv.{dead_pid()}.12345678.tmp"
    killed.write_bytes(b"Date,Appointments\n2026-03-0")
    r = cli("reports", "export", "appointments-by-day", "--period", "2026-03", "-o", str(out / "visits.csv"))
    assert r.exit_code == 0, r.stderr
    assert names(out) == ["visits.csv"]


def test_backups_calendar_feeds_and_superbills_are_private(cli, out, umask, ctx_for, settings):
    practice = setup_practice(ctx_for)
    encounter = signed(ctx_for, practice.bob, "I10", "99213:1")
    expected = {"feed.ics": 0o600, "superbill.txt": 0o600}
    if settings.is_sqlite:  # (PostgreSQL is backed up with pg_dump)
        r = cli("db", "backup", str(out / "backup.db"))
        assert r.exit_code == 0, r.stderr
        expected["backup.db"] = 0o600
    r = cli("encounters", "superbill", str(encounter), "-o", str(out / "superbill.txt"))
    assert r.exit_code == 0, r.stderr
    r = cli("appointments", "ical", "--provider", "Smith", "-o", str(out / "feed.ics"))
    assert r.exit_code == 0, r.stderr
    assert {n: mode(out / n) for n in names(out)} == expected


def test_claim_files_are_private(settings, ctx_for, out, umask):
    from hpms.services.billing import runner

    practice = setup_practice(ctx_for)
    signed(ctx_for, practice.bob, "I10", "99213:1")
    summary = runner.run(settings, out_dir=str(out))
    paths = [Path(f["path"]) for f in summary.files]
    assert paths and all(mode(p) == 0o600 for p in paths)
    assert names(out) == sorted(p.name for p in paths)


def test_init_says_where_the_key_is_and_to_back_it_up_apart(fresh_cli, clean_env, umask):
    r = fresh_cli("init", "--practice", "Riverside", "--tz", "America/Chicago")
    assert r.exit_code == 0, r.stderr
    key = clean_env / "hpms.key"
    assert f"encryption key: created {key}; back it up, apart from the database" in r.stderr
    assert (mode(key), mode(clean_env / "hpms.db")) == (0o600, 0o600)
    again = fresh_cli("init")
    assert f"encryption key: in {key}; back it up, apart from the database" in again.stderr
