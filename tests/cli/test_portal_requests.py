"""`hpms portal requests`: the front desk's list of registrations and pre-visit forms sent from
the portal, the likely duplicates, accepting (refused on a likely duplicate unless --merge-into
or --new), rejecting, and saving a card photo (0600); bad input names the option, writes nothing."""

from __future__ import annotations

import os
import stat

import pytest

from tests.cli.helpers import error_line, ok, tsv
from tests.services.conftest import register  # noqa: F401 - fixture

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
FORM = {
    "first_name": "Jamie",
    "last_name": "Lane",
    "dob": "1991-04-05",
    "email": "jamie.lane@example.org",
    "payer_name": "Acme Health Plan",
    "member_id": "XZ-12345",
}
TABLES = ("patient", "coverage", "intake_request")


@pytest.fixture
def staged(ctx_for):
    """staged(**changes) stages a registration as an applicant and returns its id."""
    from hpms.services.portal import intake

    def make(**changes: str) -> str:
        with ctx_for() as ctx:
            out = intake.register_online(
                ctx, form={**FORM, **changes}, uploads=[intake.Upload("front", PNG)], client="127.0.0.1"
            )
        return str(out.id)

    return make


def test_list_show_accept(cli, staged, payer, counts):
    rid = staged()
    header, rows = tsv(cli("portal", "requests", "list").stdout)
    assert header[:3] == ["Id", "Kind", "State"] and rows[0][:3] == [rid, "register", "pending"]
    shown = ok(cli("portal", "requests", "show", rid, "--json"))
    assert shown["member_id"] == "XZ-12345" and shown["candidates"] == [] and shown["photos"] == ["front"]
    out = ok(cli("portal", "requests", "accept", rid, "--json"))
    assert out["created"] is True and out["coverage_id"]
    assert ok(cli("portal", "requests", "list", "--json")) == []
    assert [r["id"] for r in ok(cli("portal", "requests", "list", "--state", "accepted", "--json"))] == [int(rid)]
    before = counts(*TABLES)
    error_line(cli("portal", "requests", "accept", rid), 4, "already accepted")
    assert counts(*TABLES) == before


def test_a_likely_duplicate_is_refused_unless_merged(cli, staged, payer, register, counts):  # noqa: F811
    known = register(first_name="Jamie", last_name="Lane", dob="1991-04-05")
    rid = staged()
    shown = ok(cli("portal", "requests", "show", rid, "--json"))
    assert [c["patient"]["mrn"] for c in shown["candidates"]] == [known.mrn]
    human = cli("portal", "requests", "show", rid)
    assert human.exit_code == 0 and "XZ-12345" in human.stdout and "Jamie" in human.stdout
    assert f"likely on file: MRN {known.mrn}" in human.stderr
    before = counts(*TABLES)
    error_line(cli("portal", "requests", "accept", rid), 4, f"MRN {known.mrn}", "--new")
    assert counts(*TABLES) == before
    out = ok(cli("portal", "requests", "accept", rid, "--merge-into", known.mrn, "--json"))
    assert out["patient_mrn"] == known.mrn and out["created"] is False


def test_reject_and_photo(cli, staged, tmp_path, counts):
    rid = staged()
    before = counts(*TABLES)
    error_line(cli("portal", "requests", "reject", rid), 2, "--reason", "required")
    error_line(cli("portal", "requests", "list", "--state", "maybe"), 2, "--state")
    error_line(cli("portal", "requests", "photo", rid, "--side", "back", "-o", str(tmp_path / "b")), 3, "--side")
    assert counts(*TABLES) == before and not (tmp_path / "b").exists()
    target = tmp_path / "front.png"
    out = ok(cli("portal", "requests", "photo", rid, "--side", "front", "-o", str(target), "--json"))
    assert out == {"path": str(target), "content_type": "image/png", "bytes": len(PNG)}
    assert target.read_bytes() == PNG and stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert ok(cli("portal", "requests", "reject", rid, "--reason", "sent twice", "--json"))["state"] == "rejected"


def test_not_found_and_not_allowed(cli, as_user):
    error_line(cli("portal", "requests", "show", "4242"), 3, "ID", "4242")
    env = as_user("bill", "biller")
    error_line(cli("portal", "requests", "list", env=env), 5, "front_desk")
