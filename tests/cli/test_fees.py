"""`hpms fees`: set, import and list, money as strings in JSON, and every bad input with its exit
code and nothing written."""

from __future__ import annotations

from tests.cli.helpers import error_line, ok, tsv, with_denied

FEE_KEYS = {"id", "code", "modifier", "payer_id", "payer", "payer_code", "amount", "updated_at"}


def _payer(ctx_for):
    from hpms.services.people import coverage

    with ctx_for() as ctx:
        return coverage.add_payer(ctx, name="Acme Health", payer_id="ACME1")


def test_set_and_list(cli, ctx_for):
    acme = _payer(ctx_for)
    out = ok(cli("fees", "set", "99213", "125", "--json"))
    assert set(out) == FEE_KEYS
    assert out["amount"] == "125.00" and out["code"] == "99213" and out["payer"] is None and out["modifier"] is None
    r = cli("fees", "set", "99213", "140.5", "--modifier", "25")
    assert r.exit_code == 0 and r.stdout == "" and "99213-25 costs 140.50 on the default schedule" in r.stderr
    out = ok(cli("fees", "set", "99213", "90", "--payer", "ACME1", "--json"))
    assert out["payer_id"] == acme.id and out["payer_code"] == "ACME1"
    ok(cli("fees", "set", "99213", "130", "--json"))  # replaces
    listed = ok(cli("fees", "list", "--json"))
    assert [(f["code"], f["modifier"], f["payer_code"], f["amount"]) for f in listed] == [
        ("99213", None, None, "130.00"),
        ("99213", "25", None, "140.50"),
        ("99213", None, "ACME1", "90.00"),
    ]
    assert [f["amount"] for f in ok(cli("fees", "list", "--payer", "Acme Health", "--json"))] == ["90.00"]
    header, rows = tsv(cli("fees", "list", "--payer", "default").stdout)
    assert header == ["Code", "Modifier", "Schedule", "Amount", "Updated"]
    assert [r[:4] for r in rows] == [["99213", "", "default", "130.00"], ["99213", "25", "default", "140.50"]]


def test_set_refuses_bad_input_and_writes_nothing(cli, ctx_for, counts):
    _payer(ctx_for)
    before = counts("fee", "audit_event")
    error_line(cli("fees", "set", "99213", "12.345"), 2, "AMOUNT", "two decimal places")
    error_line(cli("fees", "set", "99213", "0"), 2, "AMOUNT", "more than 0")
    error_line(cli("fees", "set", "99213", "--", "-5"), 2, "AMOUNT")
    error_line(cli("fees", "set", "99213", "100000"), 2, "AMOUNT", "less than 100000")
    error_line(cli("fees", "set", "A0999", "10"), 2, "CODE", "unknown procedure code 'A0999'")
    error_line(cli("fees", "set", "99-13", "10"), 2, "CODE", "not a procedure code")
    error_line(cli("fees", "set", "99213", "10", "--modifier", "ZZ"), 2, "--modifier", "unknown modifier")
    error_line(cli("fees", "set", "99213", "10", "--payer", "NOPE"), 3, "--payer", "no payer 'NOPE'")
    error_line(cli("fees", "list", "--payer", "NOPE"), 3, "--payer")
    assert counts("fee", "audit_event") == before


def test_import(cli, ctx_for, counts, tmp_path):
    _payer(ctx_for)
    path = tmp_path / "fees.csv"
    path.write_text(
        "code,amount,modifier,payer\n99213,125.00,,\n99213,140,25,\n99213,90,,ACME1\nG0439,175,,\n", encoding="utf-8"
    )
    before = counts("fee", "audit_event")
    dry = ok(cli("fees", "import", str(path), "--dry-run", "--json"))
    assert dry == {"rows": 4, "created": 4, "updated": 0, "unchanged": 0, "dry_run": True, "errors": []}
    assert counts("fee", "audit_event") == before
    r = cli("fees", "import", str(path))
    assert r.exit_code == 0, r.stderr
    assert "imported 4 price(s): 4 new, 0 changed, 0 unchanged" in r.stderr
    assert counts("fee", "audit_event") == {"fee": before["fee"] + 4, "audit_event": before["audit_event"] + 1}
    path.write_text("code,amount\n99213,130\nG0439,175\n", encoding="utf-8")
    assert ok(cli("fees", "import", str(path), "--json"))["updated"] == 1


def test_import_with_a_bad_amount_writes_nothing(cli, counts, tmp_path):
    path = tmp_path / "fees.csv"
    path.write_text("code,amount\n99213,125.00\n99214,abc\n36415,1.234\n", encoding="utf-8")
    before = counts("fee", "audit_event")
    r = cli("fees", "import", str(path))
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert lines[0] == f"{path}:3: amount: 'abc' is not an amount (digits with at most two decimal places, e.g. 125.00)"
    assert lines[1] == f"{path}:4: amount: '1.234' has more than two decimal places"
    assert lines[-1].startswith("hpms: error: FILE: 2 invalid row(s), the first at line 3 (amount:")
    assert "nothing imported" in lines[-1]
    out = ok_json_error(cli("fees", "import", str(path), "--json"))
    assert out["created"] == 0 and [(e["line"], e["field"]) for e in out["errors"]] == [(3, "amount"), (4, "amount")]
    assert counts("fee", "audit_event") == before
    error_line(cli("fees", "import", str(tmp_path / "none.csv")), 2, "FILE", "does not exist")


def ok_json_error(result):
    import json

    assert result.exit_code == 2, result.stderr
    return json.loads(result.stdout)


def test_front_desk_reads_but_cannot_set(cli, as_user, counts):
    ok(cli("fees", "set", "99213", "125"))
    env = as_user("desk", "front_desk")
    before = counts("fee", "audit_event")
    error_line(cli("fees", "set", "99213", "1", env=env), 5, "change fees")
    assert counts("fee", "audit_event") == with_denied(before)
    assert [f["amount"] for f in ok(cli("fees", "list", "--json", env=env))] == ["125.00"]
    auditor = as_user("audrey", "auditor")
    error_line(cli("fees", "list", env=auditor), 5, "read fees")
