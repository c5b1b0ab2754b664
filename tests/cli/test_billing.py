"""`hpms billing`: setup, run (JSON summary, one-line summary, lock, bad options) and files."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.billing_fixtures import assert_valid_837, leftovers, queue_secondary, setup_practice, signed, x12_files
from tests.cli.helpers import error_line, ok, tsv

TABLES = ("claim", "claim_line", "x12_file", "billing_run", "worklist_item", "job_lock", "billing_profile")
SUMMARY_KEYS = {
    "run_id",
    "dry_run",
    "encounters",
    "claims",
    "failed",
    "skipped_other_payers",
    "total",
    "written",
    "secondary",
    "held",
    "files",
    "recovered_files",
}


@pytest.fixture
def practice(settings, ctx_for):
    return setup_practice(ctx_for)


@pytest.fixture
def out(tmp_path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


def signed_statuses(raw_sql) -> dict[int, str]:
    return dict(raw_sql("SELECT id, status FROM encounter"))


def test_setup_show_and_set(settings, ctx_for, cli, counts):
    show = ok(cli("billing", "setup", "--json"))
    assert show == {
        "tax_id": None,
        "submitter_id": None,
        "submitter_name": None,
        "receiver_id": None,
        "receiver_name": None,
        "contact_name": None,
        "contact_phone": None,
        "production": False,
    }
    assert counts("billing_profile") == {"billing_profile": 0}
    data = ok(
        cli(
            "billing",
            "setup",
            "--tax-id",
            "12-3456789",
            "--submitter-id",
            "SUB01",
            "--receiver-id",
            "CH01",
            "--receiver-name",
            "Claims Clearing Inc",
            "--production",
            "--json",
        )
    )
    assert (data["tax_id"], data["submitter_id"], data["receiver_id"], data["receiver_name"], data["production"]) == (
        "123456789",
        "SUB01",
        "CH01",
        "Claims Clearing Inc",
        True,
    )
    # plain output: one field per line
    r = cli("billing", "setup")
    assert r.exit_code == 0 and "123456789" in r.stdout and "SUB01" in r.stdout
    before = ok(cli("billing", "setup", "--json"))
    for args, field in (
        (("--tax-id", "12-34567"), "--tax-id"),
        (("--tax-id", "12-345678X"), "--tax-id"),
        (("--submitter-id", "SUB 01!"), "--submitter-id"),
    ):
        error_line(cli("billing", "setup", *args), 2, field)
    assert ok(cli("billing", "setup", "--json")) == before
    ok(cli("billing", "setup", "--test", "--json"))
    assert ok(cli("billing", "setup", "--json"))["production"] is False


def test_run_json_summary_then_rerun(settings, ctx_for, practice, cli, out, raw_sql):
    e1 = signed(ctx_for, practice.bob, "E11.9,I10", "99213:25:1,2", "36415::2")
    e2 = signed(ctx_for, practice.kid, "J06.9", "99214:1")
    e3 = signed(ctx_for, practice.nora, "J06.9", "99214:1")
    data = ok(cli("billing", "run", "--out", str(out), "--json"))
    assert set(data) == SUMMARY_KEYS
    assert (
        data["dry_run"],
        data["encounters"],
        data["claims"],
        data["failed"],
        data["skipped_other_payers"],
        data["recovered_files"],
    ) == (False, 3, 2, 1, 0, 0)
    assert (data["written"], data["secondary"], data["held"]) == (2, 0, 0)
    assert isinstance(data["run_id"], int)
    assert str(data["total"]) == "295.00"
    assert sorted(f["payer"] for f in data["files"]) == ["ACME1", "BETA2"]
    for f in data["files"]:
        assert set(f) >= {"id", "path", "payer", "claims", "total", "isa_control"}
        assert f["claims"] == 1
        assert_valid_837(f["path"])
    assert signed_statuses(raw_sql) == {e1: "billed", e2: "billed", e3: "signed"}
    again = ok(cli("billing", "run", "--out", str(out), "--json"))
    assert (again["encounters"], again["claims"], again["failed"], again["files"], again["written"]) == (1, 0, 1, [], 0)
    assert raw_sql("SELECT count(*) FROM claim") == [(2,)]
    assert leftovers(out) == []


def test_run_without_json_prints_paths_and_one_summary_line(settings, ctx_for, practice, cli, out):
    signed(ctx_for, practice.bob, "I10", "99213:1")
    r = cli("billing", "run", "--out", str(out))
    assert r.exit_code == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("billing run ")
    assert lines[0].endswith(": billed 1 claims (100.00), 0 to the work list; wrote 1 claims (0 secondary) in 1 files")
    assert r.stdout.splitlines() == [str(p) for p in x12_files(out)]


def test_a_run_that_writes_only_secondary_claims_counts_them(settings, ctx_for, practice, cli, out, tmp_path):
    queue_secondary(settings, ctx_for, practice, out)
    second = tmp_path / "second"
    second.mkdir()
    data = ok(cli("billing", "run", "--out", str(second), "--json", "--dry-run"))
    assert (data["claims"], data["written"], data["secondary"], data["held"], data["files"]) == (0, 1, 1, 0, [])
    r = cli("billing", "run", "--out", str(second))
    assert r.exit_code == 0, r.stderr
    [summary] = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert summary.endswith(": billed 0 claims (0.00), 0 to the work list; wrote 1 claims (1 secondary) in 1 files")
    [path] = x12_files(second)
    assert r.stdout.splitlines() == [str(path)]
    assert_valid_837(path)
    third = tmp_path / "third"
    third.mkdir()
    data = ok(cli("billing", "run", "--out", str(third), "--json"))
    assert (data["claims"], data["written"], data["secondary"], data["files"]) == (0, 0, 0, [])


def test_a_held_secondary_claim_is_counted_and_listed(settings, ctx_for, practice, cli, out, tmp_path, raw_sql):
    from hpms.services.people import coverage

    with ctx_for() as ctx:
        coverage.add_payer(ctx, name="Medicare Part B", payer_id="MCRB1", claim_filing="MB")
    sec = queue_secondary(settings, ctx_for, practice, out, payer="MCRB1")
    second = tmp_path / "second"
    second.mkdir()
    dry = ok(cli("billing", "run", "--out", str(second), "--json", "--dry-run"))
    assert (dry["written"], dry["held"]) == (0, 1)
    assert [(f["claim_id"], f["rule_id"], f["field"]) for f in dry["findings"]] == [
        (sec, "MSP-TYPE", "coverage.medicare_secondary_type")
    ]
    r = cli("billing", "run", "--out", str(second))
    assert r.exit_code == 0, r.stderr
    assert "wrote 0 claims (0 secondary, 1 held for the work list) in 0 files" in r.stderr
    assert r.stdout == "" and x12_files(second) == []
    work = ok(cli("claims", "worklist", "--json"))
    assert [(w["claim_id"], w["rule_id"]) for w in work] == [(sec, "MSP-TYPE")]
    assert raw_sql(f"SELECT status, x12_file_id FROM claim WHERE id = {sec}") == [("ready", None)]


def test_dry_run(settings, ctx_for, practice, cli, out, counts, raw_sql):
    signed(ctx_for, practice.bob, "I10", "99213:1")
    bad = signed(ctx_for, practice.nora, "J06.9", "99214:1")
    before = counts(*TABLES)
    data = ok(cli("billing", "run", "--dry-run", "--json"))
    assert (data["run_id"], data["dry_run"], data["claims"], data["failed"], data["files"]) == (None, True, 1, 1, [])
    assert [(f["encounter_id"], f["rule_id"]) for f in data["findings"]] == [(bad, "PAYER-ID")]
    r = cli("billing", "run", "--dry-run")
    assert r.exit_code == 0 and "would bill 1 claims" in r.stderr
    assert counts(*TABLES) == before
    assert raw_sql("SELECT count(*) FROM encounter WHERE status = 'signed'") == [(2,)]


def test_exit_75_while_another_run_holds_the_lock(settings, ctx_for, practice, cli, out, raw_sql, counts):
    e = signed(ctx_for, practice.bob, "I10", "99213:1")
    raw_sql(
        "INSERT INTO job_lock (name, holder, host, pid, acquired_at, heartbeat_at) VALUES "
        f"('billing_run', 'cron', '{socket.gethostname()}', {os.getppid()}, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    before = counts(*TABLES)
    error_line(cli("billing", "run", "--out", str(out), "--json"), 75, "another billing run holds the lock")
    assert counts(*TABLES) == before
    assert signed_statuses(raw_sql) == {e: "signed"}
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    "args, code, words",
    [
        ((), 2, "--out"),
        (("--out", "/nonexistent/dir"), 2, "--out"),
        (("--through", "someday"), 2, "--through"),
        (("--payer", "NOPE9"), 3, "--payer"),
    ],
)
def test_bad_options_bill_nothing(settings, ctx_for, practice, cli, out, counts, raw_sql, args, code, words):
    e = signed(ctx_for, practice.bob, "I10", "99213:1")
    if args and args[0] != "--out":
        args = (*args, "--out", str(out))
    before = counts(*TABLES)
    error_line(cli("billing", "run", *args), code, words)
    assert counts(*TABLES) == before
    assert signed_statuses(raw_sql) == {e: "signed"}


def test_no_billing_profile(settings, ctx_for, cli, out, counts):
    p = setup_practice(ctx_for, profile=False)
    signed(ctx_for, p.bob, "I10", "99213:1")
    before = counts(*TABLES)
    error_line(cli("billing", "run", "--out", str(out)), 2, "billing setup")
    assert counts(*TABLES) == before


def test_files(settings, ctx_for, practice, cli, out):
    signed(ctx_for, practice.bob, "I10", "99213:1")
    signed(ctx_for, practice.kid, "J06.9", "99214:1")
    assert ok(cli("billing", "files", "--json")) == []
    ok(cli("billing", "run", "--out", str(out), "--json"))
    rows = ok(cli("billing", "files", "--json"))
    assert [(r["payer"], r["claims"], str(r["total"]), r["status"]) for r in rows] == [
        ("BETA2", 1, "180.00", "written"),
        ("ACME1", 1, "100.00", "written"),
    ]
    assert {r["file"] for r in rows} == {p.name for p in x12_files(out)}
    assert all(r["directory"] == str(out.resolve()) for r in rows)
    header, table = tsv(cli("billing", "files").stdout)
    assert header == ["ID", "File", "Payer", "Claims", "Total", "Status", "Written"]
    assert [row[2] for row in table] == ["BETA2", "ACME1"]


def test_permissions(settings, ctx_for, practice, cli, out, as_user, counts):
    signed(ctx_for, practice.bob, "I10", "99213:1")
    desk = as_user("desk", "front_desk")
    robot = as_user("robot", "service")
    before = counts(*TABLES)
    error_line(cli("billing", "run", "--out", str(out), env=desk), 5)
    error_line(cli("billing", "setup", "--tax-id", "98-7654321", env=desk), 5)
    error_line(cli("billing", "files", env=desk), 5)
    error_line(cli("claims", "list", env=desk), 5)
    assert counts(*TABLES) == before
    data = ok(cli("billing", "run", "--out", str(out), "--json", env=robot))
    assert data["claims"] == 1
    error_line(cli("claims", "list", env=robot), 5)
    error_line(cli("billing", "setup", "--tax-id", "98-7654321", env=robot), 5)
