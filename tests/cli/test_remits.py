"""`hpms remits` and the denial commands of `hpms claims` through the CLI: --json output, the
documented exit codes, and refusals that write nothing."""

from __future__ import annotations

import pytest

from tests.billing_fixtures import DOS, setup_practice, signed
from tests.cli.helpers import error_line, ok, tsv
from tests.remit_fixtures import claim, interchange, line, payment

TABLES = ("ledger_entry", "remit_file", "remittance", "remit_claim", "remit_adjustment", "worklist_item")


@pytest.fixture
def billed(ctx_for, cli, tmp_path):
    p = setup_practice(ctx_for)
    signed(ctx_for, p.bob, "E11.9,I10", "99213:25:1,2", "36415::2")
    signed(ctx_for, p.kid, "J06.9", "99214:1")
    out = tmp_path / "out"
    out.mkdir()
    ok(cli("billing", "run", "--out", str(out), "--json"))
    return {r["payer_code"]: r for r in ok(cli("claims", "list", "--json"))}


def era(tmp_path, claims, name="era.835", **kw):
    path = tmp_path / name
    path.write_text(interchange(payment(claims, **kw)))
    return str(path)


def test_import_posts_and_reports(cli, billed, tmp_path, counts):
    acme, beta = billed["ACME1"], billed["BETA2"]
    paid = claim(
        acme["control_number"],
        [
            line("99213", "100", "80", ("CO", "45", "20"), mods=["25"], date=DOS),
            line("36415", "15", "10", ("PR", "3", "5"), date=DOS),
        ],
    )
    denied = claim(
        beta["control_number"],
        [line("99214", "180", "0", ("CO", "97", "180"))],
        status="4",
        pcn="B-1",
        patient=("JONES", "KID", "M999"),
    )
    path = era(tmp_path, [paid, denied])
    dry = ok(cli("remits", "import", path, "--dry-run", "--json"))
    assert dry["dry_run"] is True and dry["posted"] == 2 and counts(*TABLES)["ledger_entry"] == 3
    out = ok(cli("remits", "import", path, "--json"))
    assert (out["posted"], out["denied"], out["paid"], out["patient_responsibility"]) == (2, 1, "90.00", "5.00")
    again = cli("remits", "import", path)
    assert again.exit_code == 0 and "already posted as file" in again.stderr
    rows = ok(cli("remits", "list", "--json"))
    assert [(r["payment"], r["claims"], r["posted"]) for r in rows] == [("90.00", 2, 2)]
    statuses = {r["payer_code"]: r["status"] for r in ok(cli("claims", "list", "--json"))}
    assert statuses == {"ACME1": "paid", "BETA2": "denied"}
    d = ok(cli("claims", "denied", "--json"))
    assert [(r["claim_id"], r["reason"]) for r in d] == [(beta["id"], "97")]
    assert "bundled" in d[0]["reason_text"].lower() or "included" in d[0]["reason_text"].lower()
    header, table = tsv(cli("claims", "denied").stdout)
    assert header[:3] == ["Claim", "Control #", "DOS"] and len(table) == 1
    assert ok(cli("claims", "denied", "--reason", "50", "--json")) == []
    a = ok(cli("claims", "appeal", str(beta["id"]), "--note", "corrected coding sent", "--json"))
    assert a["appeals"] == 1
    error_line(cli("claims", "appeal", str(beta["id"])), 2, "--note")
    error_line(cli("claims", "appeal", str(acme["id"]), "--note", "x"), 4, "no open denial")


def test_unmatched_and_match(cli, billed, tmp_path):
    beta = billed["BETA2"]
    other = claim("ELSEWHERE1", [line("99214", "180", "100", ("CO", "45", "80"))], patient=("JONES", "KID", "M999"))
    mixed = claim(
        billed["ACME1"]["control_number"],
        [line("99213", "100", "100", mods=["25"], date=DOS), line("36415", "15", "15", date=DOS)],
    )
    out = ok(cli("remits", "import", era(tmp_path, [mixed, other]), "--json"))
    assert out["posted"] == 1 and [u["control_number"] for u in out["unmatched"]] == ["ELSEWHERE1"]
    rows = ok(cli("remits", "unmatched", "--json"))
    assert [r["control_number"] for r in rows] == ["ELSEWHERE1"]
    row = str(rows[0]["row"])
    error_line(cli("remits", "match", row, "NOPE"), 3, "CLAIM_ID")
    error_line(cli("remits", "match", "abc", str(beta["id"])), 2, "CLAIM_ROW")
    done = ok(cli("remits", "match", row, beta["control_number"], "--json"))
    assert done["posted"] == 1 and done["paid"] == "100.00"
    assert ok(cli("remits", "unmatched", "--json")) == []
    error_line(cli("remits", "match", row, str(beta["id"])), 4, "was posted")


def test_a_re_enveloped_payment_exits_0_and_a_reused_trace_exits_4(cli, billed, tmp_path, counts):
    acme, beta = billed["ACME1"], billed["BETA2"]
    paid = claim(
        acme["control_number"],
        [line("99213", "100", "80", ("CO", "45", "20"), mods=["25"], date=DOS), line("36415", "15", "15", date=DOS)],
    )
    first = ok(cli("remits", "import", era(tmp_path, [paid]), "--json"))
    file_id = ok(cli("remits", "list", "--json"))[0]["file_id"]
    before = counts(*TABLES)
    resent = tmp_path / "resent.835"
    resent.write_text(interchange(payment([paid]), isa="000000777", gs="9"))
    again = cli("remits", "import", str(resent))
    assert again.exit_code == 0, again.stderr
    assert f"already posted as file {file_id}" in again.stderr and "nothing posted" in again.stderr
    out = ok(cli("remits", "import", str(resent), "--json"))
    assert out["posted"] == 0 and out["already_posted"][0]["file_id"] == file_id
    assert out["already_posted"][0]["payment"] == first["payment"] == "95.00"  # money as strings
    other = claim(beta["control_number"], [line("99214", "180", "180")], patient=("JONES", "KID", "M999"))
    reused = tmp_path / "reused.835"
    reused.write_text(interchange(payment([other]), isa="000000778"))  # TRACE1 again, 180.00
    line_ = error_line(cli("remits", "import", str(reused)), 4, "already posted in file")
    assert "95.00" in line_ and "180.00" in line_
    assert counts(*TABLES) == before
    forced = ok(cli("remits", "import", str(reused), "--force", "--json"))
    assert forced["posted"] == 1


def test_a_file_for_another_payee_exits_4_naming_it(cli, billed, tmp_path, counts):
    acme = billed["ACME1"]
    paid = claim(
        acme["control_number"],
        [line("99213", "100", "100", mods=["25"], date=DOS), line("36415", "15", "15", date=DOS)],
    )
    before = counts(*TABLES)
    path = era(tmp_path, [paid], payee=["N1*PE*OTHER CLINIC*XX*1999999984"])
    error_line(cli("remits", "import", path), 4, "OTHER CLINIC (NPI 1999999984)")
    assert counts(*TABLES) == before
    assert ok(cli("remits", "import", path, "--force", "--json"))["posted"] == 1


@pytest.mark.parametrize(
    "text, code, words",
    [
        ("not an edi file at all\n", 2, "not a valid 835"),
        ("", 2, "is empty"),
    ],
)
def test_bad_files_exit_non_zero_and_post_nothing(cli, billed, tmp_path, counts, text, code, words):
    path = tmp_path / "bad.835"
    path.write_text(text)
    before = counts(*TABLES)
    error_line(cli("remits", "import", str(path)), code, words)
    assert counts(*TABLES) == before


def test_unbalanced_truncated_and_foreign_files(cli, billed, tmp_path, counts):
    acme = billed["ACME1"]
    c = claim(acme["control_number"], [line("99213", "100", "80", ("CO", "45", "20"), mods=["25"], date=DOS)])
    before = counts(*TABLES)
    error_line(cli("remits", "import", era(tmp_path, [c], "bpr.835", bpr="1.00")), 2, "does not balance")
    full = (tmp_path / "bpr.835").read_text()
    (tmp_path / "cut.835").write_text(full[:200])
    error_line(cli("remits", "import", str(tmp_path / "cut.835")), 2, "not a valid 835")
    foreign = claim("NOT-HERE", [line("99213", "100", "80", ("CO", "45", "20"))])
    error_line(cli("remits", "import", era(tmp_path, [foreign], "f.835")), 3, "none of the 1 claims")
    error_line(cli("remits", "import", str(tmp_path / "missing.835")), 2, "FILE", "does not exist")
    assert counts(*TABLES) == before
