"""`hpms claims`: list, show, scrub, rules, mark-submitted, set-status, void, resubmit, worklist;
bad input exits with the documented code and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.billing_fixtures import assert_valid_837, segments, setup_practice, signed
from tests.cli.helpers import error_line, ok, tsv

TABLES = ("claim", "claim_line", "claim_event", "x12_file", "worklist_item", "audit_event")
RULE_IDS = [
    "NPI-BILLING",
    "NPI-RENDERING",
    "TAX-ID",
    "ZIP-9",
    "ADDR-BILLING",
    "ADDR-PATIENT",
    "ADDR-STATE",
    "ADDR-ZIP",
    "DX-PRESENT",
    "DX-NODOT",
    "DX-EXISTS",
    "DX-BILLABLE",
    "DX-POINTER",
    "LINES-PRESENT",
    "PROC-VALID",
    "MODIFIER-VALID",
    "UNITS-POSITIVE",
    "DOS-NOT-FUTURE",
    "LINE-DUPLICATE",
    "POS-VALID",
    "PAYER-ID",
    "SUBSCRIBER",
    "MSP-TYPE",
    "FEE-PRESENT",
    "CLAIM-TOTAL",
]


@pytest.fixture
def billed(settings, ctx_for, cli, tmp_path):
    """Bob's claim on ACME1 and Kid's on BETA2, billed through the CLI; Nora's encounter fails
    (no coverage). Returns (out, practice, summary, {payer: claim id}, nora's encounter id)."""
    p = setup_practice(ctx_for)
    signed(ctx_for, p.bob, "E11.9,I10", "99213:25:1,2", "36415::2")
    signed(ctx_for, p.kid, "J06.9", "99214:1")
    bad = signed(ctx_for, p.nora, "J06.9", "99214:1")
    out = tmp_path / "out"
    out.mkdir()
    summary = ok(cli("billing", "run", "--out", str(out), "--json"))
    ids = {r["payer_code"]: r["id"] for r in ok(cli("claims", "list", "--json"))}
    return out, p, summary, ids, bad


def test_rules_lists_every_rule_id(fresh_cli):
    """No database needed."""
    data = ok(fresh_cli("claims", "rules", "--json"))
    assert [row["rule_id"] for row in data] == RULE_IDS
    assert all(row["description"] and row["version"] for row in data)
    header, rows = tsv(fresh_cli("claims", "rules").stdout)
    assert header == ["Rule", "What it checks"] and [r[0] for r in rows] == RULE_IDS


def test_list_and_show(settings, cli, billed):
    out, p, summary, ids, _ = billed
    rows = ok(cli("claims", "list", "--json"))
    assert [(r["payer_code"], r["status"], r["frequency"], str(r["total"]), r["patient"]) for r in rows] == [
        ("BETA2", "ready", "1", "180.00", "Kid Jones"),
        ("ACME1", "ready", "1", "115.00", "Bob Jones"),
    ]
    assert ok(cli("claims", "list", "--status", "submitted", "--json")) == []
    assert [r["id"] for r in ok(cli("claims", "list", "--payer", "ACME1", "--json"))] == [ids["ACME1"]]
    header, table = tsv(cli("claims", "list").stdout)
    assert header[:3] == ["ID", "Control #", "Status"] and len(table) == 2
    c = ok(cli("claims", "show", str(ids["ACME1"]), "--json"))
    assert [(ln["code"], ln["modifiers"], ln["pointers"], str(ln["charge"])) for ln in c["lines"]] == [
        ("99213", ["25"], [1, 2], "100.00"),
        ("36415", [], [2], "15.00"),
    ]
    assert [h["status"] for h in c["history"]] == ["ready"]
    # by control number, and as text
    r = cli("claims", "show", c["control_number"])
    assert r.exit_code == 0, r.stderr
    assert "line 1: 99213:25 x1 dx 1,2 100.00" in r.stdout and "line 2: 36415 x1 dx 2 15.00" in r.stdout
    error_line(cli("claims", "show", "424242"), 3, "no claim")
    error_line(cli("claims", "list", "--status", "bogus"), 2, "--status")
    error_line(cli("claims", "list", "--payer", "NOPE"), 3, "--payer")


def test_list_pages_and_says_when_more_exist(settings, cli, billed):
    _, _, _, ids, _ = billed
    first = cli("claims", "list", "--limit", "1", "--json")
    assert first.exit_code == 0, first.stderr
    import json

    assert [r["id"] for r in json.loads(first.stdout)] == [ids["BETA2"]]
    assert "showing 1-1 of 2 claims" in first.stderr and "--offset 1" in first.stderr
    second = cli("claims", "list", "--limit", "1", "--offset", "1", "--json")
    assert [r["id"] for r in json.loads(second.stdout)] == [ids["ACME1"]] and second.stderr == ""
    whole = cli("claims", "list")
    assert whole.stderr == ""  # everything shown: nothing to say
    error_line(cli("claims", "list", "--limit", "0"), 2, "--limit")
    error_line(cli("claims", "list", "--offset", "-1"), 2, "--offset")


def test_scrub(settings, ctx_for, cli, billed, counts):
    out, p, _, _, bad = billed
    clean = signed(ctx_for, p.bob, "I10", "99214:1")
    before = counts(*TABLES[:-1])
    assert ok(cli("claims", "scrub", str(clean), "--json")) == []
    r = cli("claims", "scrub", str(clean))
    assert r.exit_code == 0 and "1 encounters scrubbed, no error" in r.stderr
    r = cli("claims", "scrub", "--json")  # every signed encounter: the clean one and Nora's
    assert r.exit_code == 4
    import json

    rows = json.loads(r.stdout)
    assert [(x["encounter_id"], x["rule_id"], x["severity"]) for x in rows] == [(bad, "PAYER-ID", "error")]
    assert "1 error(s) in 1 of 2 encounters" in r.stderr
    error_line(cli("claims", "scrub", str(bad)), 4, "1 error(s)")
    error_line(cli("claims", "scrub", "99999"), 3, "no encounter 99999")
    assert counts(*TABLES[:-1]) == before


def test_submit_accept_resubmit_and_the_next_run(settings, cli, billed, counts):
    out, p, summary, ids, _ = billed
    acme = next(f for f in summary["files"] if f["payer"] == "ACME1")
    data = ok(cli("claims", "mark-submitted", acme["path"], "--json"))
    assert data == {"file": Path(acme["path"]).name, "claims": 1}
    before = counts(*TABLES)
    error_line(cli("claims", "mark-submitted", acme["path"]), 4, "already marked submitted")
    error_line(cli("claims", "mark-submitted", "nope.x12"), 3, "no 837P file")
    assert counts(*TABLES) == before
    r = cli("claims", "mark-submitted", str(next(f["id"] for f in summary["files"] if f["payer"] == "BETA2")))
    assert r.exit_code == 0 and "1 claims submitted" in r.stderr

    cid = str(ids["ACME1"])
    before = counts(*TABLES)
    error_line(cli("claims", "set-status", cid, "paid"), 4, "cannot become paid")
    error_line(cli("claims", "set-status", cid, "bogus"), 2, "STATUS")
    error_line(cli("claims", "set-status", "424242", "accepted"), 3, "no claim")
    error_line(cli("claims", "resubmit", cid), 4, "only rejected or adjudicated")
    assert counts(*TABLES) == before
    c = ok(
        cli(
            "claims",
            "set-status",
            cid,
            "accepted",
            "--payer-claim-number",
            "2026123456789",
            "--note",
            "277CA",
            "--json",
        )
    )
    assert (c["status"], c["payer_claim_number"]) == ("accepted", "2026123456789")
    r = cli("claims", "set-status", cid, "paid")
    assert r.exit_code == 0 and "paid" in r.stdout
    new = ok(cli("claims", "resubmit", cid, "--note", "corrected", "--json"))
    assert (new["frequency"], new["status"], new["original_claim_id"], new["payer_claim_number"]) == (
        "7",
        "ready",
        ids["ACME1"],
        "2026123456789",
    )
    run = ok(cli("billing", "run", "--out", str(out), "--json"))
    assert [(f["payer"], f["claims"]) for f in run["files"]] == [("ACME1", 1)]
    seg = segments(assert_valid_837(run["files"][0]["path"]))
    assert next(s for s in seg if s[0] == "CLM")[5] == "11:B:7" and ["REF", "F8", "2026123456789"] in seg


def test_void(settings, cli, billed, counts):
    out, p, summary, ids, _ = billed
    # before submission: just void
    r = cli("claims", "void", str(ids["BETA2"]), "--note", "duplicate visit")
    assert r.exit_code == 0, r.stderr
    shown = ok(cli("claims", "show", str(ids["BETA2"]), "--json"))
    assert shown["status"] == "void" and shown["history"][-1]["note"] == "duplicate visit"
    before = counts(*TABLES)
    error_line(cli("claims", "void", str(ids["BETA2"])), 4, "is void")
    error_line(cli("claims", "void", "424242"), 3, "no claim")
    assert counts(*TABLES) == before
    # after submission: a frequency 8 claim for the next run
    ok(cli("claims", "mark-submitted", next(f["path"] for f in summary["files"] if f["payer"] == "ACME1"), "--json"))
    ok(cli("claims", "set-status", str(ids["ACME1"]), "accepted", "--payer-claim-number", "PCN-5", "--json"))
    v = ok(cli("claims", "void", str(ids["ACME1"]), "--json"))
    assert (v["frequency"], v["status"], v["payer_claim_number"]) == ("8", "ready", "PCN-5")
    run = ok(cli("billing", "run", "--out", str(out), "--json"))
    seg = segments(assert_valid_837(run["files"][0]["path"]))
    assert next(s for s in seg if s[0] == "CLM")[5] == "11:B:8"


def test_worklist_and_a_rejection(settings, cli, billed, counts):
    out, p, summary, ids, bad = billed
    rows = ok(cli("claims", "worklist", "--json"))
    assert [(w["encounter_id"], w["rule_id"], w["patient"]) for w in rows] == [(bad, "PAYER-ID", "Nora Cover")]
    header, table = tsv(cli("claims", "worklist").stdout)
    assert header == ["Since", "Encounter", "Claim", "Patient", "Rule", "Field", "Message"] and len(table) == 1
    ok(cli("claims", "mark-submitted", next(f["path"] for f in summary["files"] if f["payer"] == "BETA2"), "--json"))
    ok(cli("claims", "set-status", str(ids["BETA2"]), "rejected", "--note", "member not found", "--json"))
    rows = ok(cli("claims", "worklist", "--json"))
    assert [w["rule_id"] for w in rows] == ["PAYER-ID", "REJECTED"] and rows[1]["claim_id"] == ids["BETA2"]
    new = ok(cli("claims", "resubmit", str(ids["BETA2"]), "--json"))
    assert (new["frequency"], new["original_claim_id"]) == ("1", None)
    before = counts(*TABLES)
    error_line(cli("claims", "resubmit", str(ids["BETA2"])), 4, "already resubmitted")
    assert counts(*TABLES) == before
    assert [w["rule_id"] for w in ok(cli("claims", "worklist", "--json"))] == ["PAYER-ID"]


def test_front_desk_cannot_read_or_change_claims(settings, cli, billed, as_user, counts):
    out, p, summary, ids, _ = billed
    desk = as_user("desk", "front_desk")
    before = counts(*TABLES[:-1])
    for args in (
        ("list",),
        ("show", str(ids["ACME1"])),
        ("worklist",),
        ("scrub",),
        ("mark-submitted", summary["files"][0]["path"]),
        ("set-status", str(ids["ACME1"]), "submitted"),
        ("void", str(ids["ACME1"])),
    ):
        error_line(cli("claims", *args, env=desk), 5)
    assert counts(*TABLES[:-1]) == before
