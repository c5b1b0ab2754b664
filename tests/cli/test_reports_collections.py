"""`hpms reports` for payments, adjustments, denials and KPIs: the options reach the reports,
an empty practice gives headers (and KPI rows without values), bad options exit 2 and write no
file, and the front desk is refused."""

from __future__ import annotations

import pytest

from tests.cli.helpers import error_line, ok

NEW = ("payments", "adjustments", "adjustments-by-reason", "denials-by-carc", "kpis")


def test_listed(cli):
    names = {r["name"] for r in ok(cli("reports", "list", "--json"))}
    assert set(NEW) <= names


@pytest.mark.parametrize("name", NEW[:4])
def test_empty_practice_gives_headers(cli, name):
    r = cli("reports", "export", name, "--period", "2026-03", "--format", "tsv")
    assert r.exit_code == 0, r.stderr
    assert len(r.stdout.splitlines()) == 1


def test_payments_by_payer_and_kpis(cli):
    r = cli("reports", "export", "payments", "--period", "2026-03", "--by", "payer", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == ["Group,Insurance payments,Patient payments,Refunds,Net payments,Entries"]
    rows = ok(cli("reports", "show", "kpis", "--period", "2026-03", "--json"))
    assert [(k["kpi"], k["value"]) for k in rows] == [
        ("Days in A/R", None),
        ("Clean-claim rate", None),
        ("Denial rate", None),
        ("Net collection rate", None),
    ]
    assert rows[0]["numerator"] == "0.00" and rows[0]["unit"] == "days"  # an amount: a string
    assert rows[1]["numerator"] == 0  # a count: a number


def test_bad_grouping_exits_2_and_writes_nothing(cli, tmp_path):
    target = tmp_path / "p.csv"
    r = cli("reports", "export", "payments", "--period", "2026-03", "--by", "fortnight", "-o", str(target))
    error_line(r, 2, "--by", "fortnight")
    r = cli("reports", "export", "adjustments", "--period", "2026-03", "--by", "type", "-o", str(target))
    error_line(r, 2, "--by")
    assert not target.exists()


def test_front_desk_is_refused(cli, as_user):
    env = as_user("desk", "front_desk")
    for name in NEW:
        error_line(cli("reports", "export", name, "--period", "2026-03", env=env), 5)
