"""`hpms payments`, `hpms statements` and `hpms patients ledger`: JSON output, exit codes, one
error line naming the field for every bad input, and nothing written when refused."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.cli.helpers import error_line, ok, tsv, with_denied
from tests.services import accounts

D = dt.date
WRITES = ("ledger_entry", "payment_application", "statement", "audit_event")


@pytest.fixture
def acct(ctx_for):
    payer = accounts.setup(ctx_for)
    ida = accounts.patient(ctx_for, "Ida", "Quill")
    otis = accounts.patient(ctx_for, "Otis", "Reed")
    march = accounts.visit(ctx_for, ida, payer, D(2026, 3, 1), paid="60.00", adjusted="20.00", to_patient="20.00")
    april = accounts.visit(ctx_for, ida, payer, D(2026, 4, 1), paid="60.00", adjusted="20.00", to_patient="20.00")
    other = accounts.visit(ctx_for, otis, payer, D(2026, 2, 1), paid="50.00", adjusted="20.00", to_patient="30.00")
    return {"ida": ida, "otis": otis, "march": march, "april": april, "other": other}


def test_record_list_refund_json(cli, acct):
    out = ok(
        cli(
            "payments",
            "record",
            "--patient",
            acct["ida"],
            "--amount",
            "50.00",
            "--method",
            "card",
            "--reference",
            "R-1",
            "--json",
        )
    )
    assert out["amount"] == "50.00" and out["method"] == "card" and out["reference"] == "R-1"
    assert [(a["encounter_id"], a["amount"]) for a in out["applied"]] == [
        (acct["march"], "20.00"),
        (acct["april"], "20.00"),
    ]
    assert (out["unapplied"], out["credit"], out["balance"]) == ("10.00", "10.00", "-10.00")
    copay = ok(
        cli(
            "payments",
            "record",
            "--patient",
            acct["otis"],
            "--amount",
            "25",
            "--method",
            "cash",
            "--apply-to",
            str(acct["other"]),
            "--json",
        )
    )
    assert copay["encounter_id"] == acct["other"] and copay["balance"] == "5.00"
    refund = ok(cli("payments", "refund", "--patient", acct["ida"], "--amount", "4.00", "--method", "check", "--json"))
    assert refund["kind"] == "refund" and refund["credit"] == "6.00"
    rows = ok(cli("payments", "list", "--json"))
    assert [(r["mrn"], r["kind"], r["amount"]) for r in rows] == [
        (acct["ida"], "patient_payment", "50.00"),
        (acct["otis"], "patient_payment", "25.00"),
        (acct["ida"], "refund", "4.00"),
    ]
    assert len(ok(cli("payments", "list", "--patient", acct["otis"], "--json"))) == 1
    r = cli("payments", "list")
    header, body = tsv(r.stdout)
    assert header[:3] == ["ID", "Date", "Kind"] and len(body) == 3
    shown = ok(cli("patients", "show", acct["ida"], "--json"))
    assert (shown["balance"], shown["credit"]) == ("-6.00", "6.00")


def test_record_plain_prints_the_id(cli, acct):
    r = cli("payments", "record", "--patient", acct["ida"], "--amount", "5.00", "--method", "cash")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip().isdigit()
    assert "recorded 5.00 (cash)" in r.stderr and "balance 35.00" in r.stderr


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--amount", "-5.00"], 2, ["--amount", "negative"]),
        (["--amount", "0"], 2, ["--amount", "zero"]),
        (["--amount", "abc"], 2, ["--amount", "not an amount"]),
        (["--amount", "1e5"], 2, ["--amount", "not an amount"]),
        (["--amount", "NaN"], 2, ["--amount", "not an amount"]),
        (["--amount", "1,000.00"], 2, ["--amount", "thousands separators"]),
        (["--amount", "12.345"], 2, ["--amount", "two decimal places"]),
        (["--method", "bitcoin"], 2, ["--method", "unknown method"]),
        (["--patient", "9999999"], 3, ["--patient", "no patient"]),
        (["--apply-to", "99999"], 3, ["--apply-to", "no encounter"]),
        (["--apply-to", "OTHER"], 2, ["--apply-to", "is not patient"]),
    ],
)
def test_bad_payment_input(cli, acct, counts, args, code, words):
    base = {"--patient": acct["ida"], "--amount": "10.00", "--method": "cash"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    if given.get("--apply-to") == "OTHER":
        given["--apply-to"] = str(acct["other"])
    base.update(given)
    before = counts(*WRITES)
    argv = [x for kv in base.items() for x in kv]
    error_line(cli("payments", "record", *argv, "--json"), code, *words)
    assert counts(*WRITES) == before


def test_refund_larger_than_the_credit(cli, acct, counts):
    ok(cli("payments", "record", "--patient", acct["ida"], "--amount", "45.00", "--method", "cash", "--json"))
    before = counts(*WRITES)
    error_line(
        cli("payments", "refund", "--patient", acct["ida"], "--amount", "5.01", "--method", "cash"),
        2,
        "--amount",
        "credit",
        "5.00",
    )
    assert counts(*WRITES) == before


def test_front_desk_may_record_not_refund(cli, acct, as_user, counts):
    env = as_user("maria", "front_desk")
    ok(cli("payments", "record", "--patient", acct["ida"], "--amount", "50.00", "--method", "cash", "--json", env=env))
    before = counts(*WRITES)
    error_line(
        cli("payments", "refund", "--patient", acct["ida"], "--amount", "1.00", "--method", "cash", env=env), 5, "maria"
    )
    assert counts(*WRITES) == with_denied(before)


def test_statements_generate_and_list(cli, acct, tmp_path):
    out = tmp_path / "statements"
    out.mkdir()
    run = ok(cli("statements", "generate", "--out", str(out), "--format", "txt", "--json"))
    assert run["statements"] == 2 and run["amount_due"] == "70.00"
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(f["filename"] for f in run["files"])
    for f in run["files"]:
        text = (out / f["filename"]).read_text(encoding="utf-8")
        mine, theirs = (acct["ida"], acct["otis"]) if f["mrn"] == acct["ida"] else (acct["otis"], acct["ida"])
        assert f"MRN {mine}" in text and theirs not in text
    listed = ok(cli("statements", "list", "--patient", acct["otis"], "--json"))
    assert [s["mrn"] for s in listed] == [acct["otis"]]
    r = cli("statements", "generate", "--out", str(tmp_path / "again"), "--min-balance", "100")
    error_line(r, 2, "--out")
    (tmp_path / "again").mkdir()
    r = cli("statements", "generate", "--out", str(tmp_path / "again"), "--min-balance", "100")
    assert r.exit_code == 0 and "0 statement(s)" in r.stderr and list((tmp_path / "again").iterdir()) == []


@pytest.mark.parametrize(
    "args, words",
    [
        (["--min-balance", "five"], ["--min-balance", "not an amount"]),
        (["--older-than", "30"], ["--older-than", "30d"]),
        (["--older-than", "a month"], ["--older-than"]),
        (["--format", "docx"], ["--format"]),
        (["--out", "FILE"], ["--out", "not a directory"]),
        (["--out", "MISSING"], ["--out", "does not exist"]),
    ],
)
def test_bad_statement_options(cli, acct, tmp_path, counts, args, words):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "file").write_text("x")
    argv = ["--out", str(out)] + [
        {"FILE": str(tmp_path / "file"), "MISSING": str(tmp_path / "nope")}.get(a, a) for a in args
    ]
    before = counts(*WRITES)
    error_line(cli("statements", "generate", *argv), 2, *words)
    assert counts(*WRITES) == before and list(out.iterdir()) == []


def test_patient_ledger(cli, acct):
    ok(cli("payments", "record", "--patient", acct["otis"], "--amount", "10.00", "--method", "cash", "--json"))
    rows = ok(cli("patients", "ledger", acct["otis"], "--json"))
    assert [r["kind"] for r in rows] == [
        "charge",
        "insurance_payment",
        "contractual_adjustment",
        "transfer_to_patient",
        "transfer_to_patient",
        "patient_payment",
    ]
    assert [r["balance"] for r in rows] == ["100.00", "50.00", "30.00", "0.00", "30.00", "20.00"]
    assert rows[-1]["patient"] == "-10.00" and rows[-1]["insurance"] is None
    assert rows[-1]["patient_balance"] == "20.00" and rows[-1]["insurance_balance"] == "0.00"
    header, body = tsv(cli("patients", "ledger", acct["otis"]).stdout)
    assert header[0] == "Date" and len(body) == 6
    error_line(cli("patients", "ledger", "9999999"), 3, "no patient")
