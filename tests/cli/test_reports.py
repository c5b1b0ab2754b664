"""`hpms reports`: list, show, export in each format, output placeholders, and refusals (bad
parameters, permissions) that leave no file behind."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.cli.helpers import error_line, ok


@pytest.fixture
def out(tmp_path) -> Path:
    """An empty directory for the exports (out also holds HPMS_HOME)."""
    path = tmp_path / "out"
    path.mkdir()
    return path


MONEY_REPORTS = ("charges", "charges-by-code", "claims-summary", "ar-aging", "provider-productivity")


def test_list_shows_every_report(cli):
    names = {r["name"] for r in ok(cli("reports", "list", "--json"))}
    assert {"appointments-by-day", "appointments-list", "day-sheet", *MONEY_REPORTS} <= names


def test_export_csv_to_stdout(cli):
    r = cli("reports", "export", "appointments-by-day", "--from", "2026-03-01", "--to", "2026-03-03")
    assert r.exit_code == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows == [
        ["Day", "Booked", "Completed", "No-shows", "Cancelled"],
        ["2026-03-01", "0", "0", "0", "0"],
        ["2026-03-02", "0", "0", "0", "0"],
        ["2026-03-03", "0", "0", "0", "0"],
    ]


def test_money_report_with_no_data_has_only_its_header(cli):
    r = cli("reports", "export", "charges", "--period", "2026-03", "--format", "tsv")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "Month\tProvider\tEncounters signed\tEncounters billed\tLines\tCharges\n"
    assert ok(cli("reports", "show", "ar-aging", "--period", "2026-03", "--as-of", "2026-04-15", "--json")) == []


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "html", "xlsx", "ods"])
def test_export_to_a_file_with_placeholders(cli, out, fmt):
    r = cli(
        "reports",
        "export",
        "appointments-by-day",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-02",
        "--format",
        fmt,
        "-o",
        str(out / ("abd-{from}-{to}." + fmt)),
        "--json",
    )
    summary = ok(r)
    path = out / f"abd-2026-03-01-2026-03-02.{fmt}"
    assert summary == {
        "report": "appointments-by-day",
        "format": fmt,
        "path": str(path),
        "rows": 2,
        "from": "2026-03-01",
        "to": "2026-03-02",
    }
    assert [p.name for p in out.iterdir()] == [path.name]
    assert path.stat().st_size > 0


def test_format_comes_from_the_file_name(cli, out):
    r = cli(
        "reports",
        "export",
        "appointments-by-day",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-01",
        "-o",
        str(out / "days.xlsx"),
    )
    assert r.exit_code == 0, r.stderr
    from openpyxl import load_workbook

    ws = load_workbook(out / "days.xlsx").active
    assert [c.value for c in next(ws.iter_rows())] == ["Day", "Booked", "Completed", "No-shows", "Cancelled"]
    assert type(ws.cell(2, 2).value) is int


@pytest.mark.parametrize("fmt", ["xlsx", "ods"])
def test_binary_format_without_output_is_refused(cli, fmt):
    r = cli("reports", "export", "appointments-by-day", "--period", "2026-03", "--format", fmt)
    error_line(r, 2, "-o", fmt)
    assert r.stdout == ""


def _refused(cli, out: Path, code: int, *args: str, words=(), to: str | None = None):
    target = to or str(out / "out.csv")
    r = cli("reports", "export", *args, "-o", target)
    error_line(r, code, *words)
    assert [p.name for p in out.iterdir() if p.name != "afile"] == []
    return r


def test_bad_parameters_exit_codes_and_no_file(cli, out):
    _refused(cli, out, 3, "no-such-report", "--period", "2026-03", words=["no-such-report"])
    _refused(cli, out, 2, "charges", "--from", "2026-03-10", "--to", "2026-03-01", words=["--to"])
    _refused(cli, out, 2, "charges", "--period", "someday", words=["--period"])
    _refused(cli, out, 2, "charges", "--period", "2026-03", "--from", "2026-03-01", words=["--period"])
    _refused(cli, out, 3, "charges", "--period", "2026-03", "--provider", "Nobody")
    _refused(cli, out, 3, "claims-summary", "--period", "2026-03", "--payer", "NOPAYER", words=["--payer"])
    _refused(cli, out, 2, "ar-aging", "--period", "2026-03", "--as-of", "soon", words=["--as-of"])
    _refused(cli, out, 2, "charges", "--period", "2026-03", "--format", "pdf", words=["--format"])
    _refused(cli, out, 2, "charges", "--period", "2026-03", words=["-o", "placeholder"], to=str(out / "x-{month}.csv"))
    # unwritable paths: a directory that does not exist, a "directory" that is a file
    _refused(
        cli, out, 2, "charges", "--period", "2026-03", words=["-o", "does not exist"], to=str(out / "missing" / "x.csv")
    )
    (out / "afile").write_text("")
    _refused(cli, out, 2, "charges", "--period", "2026-03", words=["-o"], to=str(out / "afile" / "x.csv"))
    assert sorted(p.name for p in out.iterdir()) == ["afile"]


def test_front_desk_cannot_run_money_reports(cli, as_user, out):
    env = as_user("desk", "front_desk")
    for name in MONEY_REPORTS:
        r = cli("reports", "export", name, "--period", "2026-03", "-o", str(out / f"{name}.csv"), env=env)
        error_line(r, 5)
    assert list(out.iterdir()) == []
    # ...but may run the schedule reports
    r = cli("reports", "export", "appointments-by-day", "--period", "2026-03", env=env)
    assert r.exit_code == 0, r.stderr
    names = {r["name"] for r in ok(cli("reports", "list", "--json", env=env))}
    assert "charges" in names  # listed (the list is not filtered), refused when run


def test_biller_can_run_money_reports(cli, as_user):
    env = as_user("bill", "biller")
    for name in MONEY_REPORTS:
        assert cli("reports", "export", name, "--period", "2026-03", "--format", "json", env=env).exit_code == 0


def test_show_day_sheet(cli):
    r = cli("reports", "show", "day-sheet", "--from", "2026-03-10", "--json")
    assert json.loads(r.stdout) == []
