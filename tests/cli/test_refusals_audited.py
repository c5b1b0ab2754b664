"""Refusals leave a trace: a permission refused is a "denied" audit event that stands although
the work was rolled back, and the patients a refused registration showed stay audited."""

from __future__ import annotations

from tests.cli.helpers import error_line, ok


def _events(cli, n: int = 3) -> list[dict]:
    return ok(cli("audit", "log", "--limit", str(n), "--json"))


def test_a_refused_read_is_audited_as_denied(cli, as_user, counts, patient):
    env = as_user("billy", "biller")
    before = counts("patient", "audit_event")
    error_line(cli("audit", "log", env=env), 5, "may not read the audit trail")
    after = counts("patient", "audit_event")
    assert after == {**before, "audit_event": before["audit_event"] + 1}
    denied = _events(cli, 1)[0]
    assert (denied["action"], denied["entity"], denied["entity_id"]) == ("denied", "permission", "audit.read")
    assert denied["username"] == "billy" and "may not read the audit trail" in denied["detail"]
    assert ok(cli("audit", "verify", "--json"))["ok"] is True  # the event is sealed in the chain


def test_a_refused_write_is_denied_and_writes_nothing_else(cli, as_user, counts, patient):
    env = as_user("desk", "front_desk")
    before = counts("fee", "audit_event")
    error_line(cli("fees", "set", "99213", "1", env=env), 5, "change fees")
    assert counts("fee", "audit_event") == {**before, "audit_event": before["audit_event"] + 1}
    assert _events(cli, 1)[0]["entity_id"] == "fee.write"


def test_a_refusal_that_is_no_permission_matter_leaves_no_event(cli, counts, patient):
    before = counts("audit_event")
    error_line(cli("patients", "show", "9999999"), 3, "9999999")
    assert counts("audit_event") == before


def test_the_candidates_a_refused_registration_showed_stay_audited(cli, counts, patient):
    before = counts("patient", "audit_event")
    shown = ok(cli("patients", "show", patient, "--json"))
    r = cli(
        "patients",
        "register",
        "--first-name",
        "Ana",
        "--last-name",
        "Muller",
        "--dob",
        shown["dob"],
        "--json",
    )
    assert r.exit_code == 4, r.stderr
    assert counts("patient")["patient"] == before["patient"]
    event = _events(cli, 1)[0]
    assert (event["action"], event["entity"], event["detail"]) == ("duplicates", "patient", "at registration")
    assert event["patient_ids"] == [shown["id"]]
