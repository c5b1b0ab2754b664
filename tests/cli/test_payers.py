"""`hpms payers`: add, list, show."""

from __future__ import annotations

import json

import pytest

from tests.cli.helpers import error_line, iso_datetime, ok, tsv, with_denied

PAYER_KEYS = {
    "id",
    "name",
    "payer_id",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "phone",
    "claim_filing",
    "created_at",
}


def test_add_list_show_json(cli):
    added = ok(
        cli(
            "payers",
            "add",
            "--name",
            "Acme Health Plan",
            "--payer-id",
            "60054",
            "--city",
            "Hartford",
            "--state",
            "CT",
            "--phone",
            "860-555-0199",
            "--json",
        )
    )
    assert set(added) == PAYER_KEYS
    assert added["payer_id"] == "60054" and added["phone"] == "860-555-0199" and added["claim_filing"] == "CI"
    iso_datetime(added["created_at"])
    ok(cli("payers", "add", "--name", "Blue Harbor Insurance", "--payer-id", "BHI01", "--claim-filing", "bcbs"))
    listed = ok(cli("payers", "list", "--json"))
    assert [(p["payer_id"], p["claim_filing"]) for p in listed] == [("60054", "CI"), ("BHI01", "BL")]
    for ref in ("60054", "acme health plan"):
        assert ok(cli("payers", "show", ref, "--json")) == added


def test_add_plain_and_list_plain(cli):
    r = cli("payers", "add", "--name", "Acme Health Plan", "--payer-id", "60054", "--city", "Hartford")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "" and "added payer" in r.stderr and "60054" in r.stderr and "files as CI" in r.stderr
    r = cli("payers", "list")
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == ["ID", "Payer id", "Name", "Filing", "City", "Phone"]
    assert [row[1:5] for row in rows] == [["60054", "Acme Health Plan", "CI", "Hartford"]]


def test_show_plain(cli, payer):
    r = cli("payers", "show", payer)
    assert r.exit_code == 0, r.stderr
    fields = dict(line.split(None, 1) for line in r.stdout.splitlines() if len(line.split(None, 1)) == 2)
    assert fields["payer_id"] == payer and fields["name"] == "Acme Health Plan" and fields["claim_filing"] == "CI"


@pytest.mark.parametrize(
    "args, code, words",
    [
        (("--name", "Acme", "--payer-id", "60 054"), 2, ("--payer-id", "60 054")),
        (("--payer-id", "60054"), 2, ("--name", "required")),
        (("--name", "Acme"), 2, ("--payer-id", "required")),
        (("--name", "Acme", "--payer-id", "ACME1", "--phone", "call us"), 2, ("--phone",)),
        (("--name", "Other", "--payer-id", "60054"), 4, ("--payer-id", "60054", "already exists")),
        (("--name", "Other", "--payer-id", "OTH1", "--claim-filing", "medicare"), 2, ("--claim-filing", "'medicare'")),
    ],
    ids=["bad-id", "no-name", "no-id", "bad-phone", "duplicate", "bad-claim-filing"],
)
def test_add_errors(cli, payer, counts, args, code, words):
    before = counts("payer", "audit_event")
    error_line(cli("payers", "add", *args), code, *words)
    assert counts("payer", "audit_event") == before


def test_update(cli, payer, counts):
    out = ok(cli("payers", "update", payer, "--claim-filing", "medicare-b", "--name", "Medicare Part B", "--json"))
    assert (out["payer_id"], out["name"], out["claim_filing"], out["city"]) == (
        payer,
        "Medicare Part B",
        "MB",
        "Hartford",
    )
    assert ok(cli("payers", "show", payer, "--json")) == out
    r = cli("payers", "update", payer, "--claim-filing", "MC")
    assert r.exit_code == 0 and r.stdout == "" and "updated payer" in r.stderr and "files as MC" in r.stderr
    before = counts("payer", "audit_event")
    error_line(cli("payers", "update", payer, "--claim-filing", "XX"), 2, "--claim-filing", "'XX'")
    error_line(cli("payers", "update", payer), 2, "nothing to change")
    error_line(cli("payers", "update", "NOPE1", "--name", "X"), 3, "no payer", "NOPE1")
    assert counts("payer", "audit_event") == before
    assert ok(cli("payers", "show", payer, "--json"))["claim_filing"] == "MC"


def test_unknown_payer(cli, payer):
    error_line(cli("payers", "show", "NOPE1"), 3, "no payer", "NOPE1")


def test_front_desk_may_read_not_add(cli, payer, as_user, counts):
    env = as_user("maria", "front_desk")
    assert [p["payer_id"] for p in ok(cli("payers", "list", "--json", env=env))] == [payer]
    before = counts("payer", "audit_event")
    error_line(cli("payers", "add", "--name", "X", "--payer-id", "XX1", env=env), 5, "maria")
    error_line(cli("payers", "update", payer, "--claim-filing", "MB", env=env), 5, "maria")
    assert counts("payer", "audit_event") == with_denied(before, 2)


@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["sqlite"])
def test_payers_subprocess(hpms_proc):
    r = hpms_proc("payers", "add", "--name", "Acme Health Plan", "--payer-id", "60054", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["payer_id"] == "60054"
    assert "added payer" not in r.stderr
