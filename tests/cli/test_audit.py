"""`hpms audit`: the log (filters, permissions, no PHI values) and the hash-chain verification."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest

from tests.cli.helpers import error_line, iso_datetime, ok, tsv

EVENT_KEYS = {"seq", "at", "username", "action", "entity", "entity_id", "patient_id", "patient_ids", "fields", "detail"}


def test_log_json(cli, patient):
    ok(cli("patients", "show", patient, "--json"))
    events = ok(cli("audit", "log", "--json"))
    assert [e["seq"] for e in events] == [3, 2, 1]
    assert all(set(e) == EVENT_KEYS for e in events)
    for e in events:
        iso_datetime(e["at"])
    read, create, init = events
    assert (init["action"], init["entity"]) == ("init", "organization")
    assert (create["action"], create["entity"], create["username"]) == ("create", "patient", "root")
    assert create["patient_id"] == read["patient_id"] and create["patient_id"] is not None
    assert {"first_name", "last_name", "dob", "ssn", "phone", "email", "mrn"} <= set(create["fields"])
    assert read["action"] == "read"


def test_log_never_holds_phi_values(cli, patient, raw_sql):
    ok(cli("patients", "show", patient, "--reveal-ssn", "--json"))
    ok(cli("patients", "search", "müller", "--json"))
    r = cli("audit", "log", "--json")
    dumped = r.stdout + " ".join(str(row) for row in raw_sql("SELECT * FROM audit_event"))
    for value in (
        "Müller",
        "Ana",
        "1985-03-14",
        "555-201-3344",
        "ana.muller@example.org",
        "123-45-6789",
        "6789",
        "müller",
    ):
        assert value not in dumped, value


def test_log_plain_is_tab_separated(cli, patient):
    r = cli("audit", "log")
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == ["#", "When", "User", "Action", "Entity", "Id", "Patient(s)", "Fields", "Detail"]
    assert [row[0] for row in rows] == ["2", "1"]
    assert rows[0][3:5] == ["create", "patient"]
    assert rows[0][6] == patient  # the MRN, not the internal id
    # the practice's time (its location is in New York), to the minute
    at = iso_datetime(ok(cli("audit", "log", "--limit", "1", "--json"))[0]["at"])
    local = at.astimezone(ZoneInfo("America/New_York"))
    assert rows[0][1] == local.strftime("%Y-%m-%d %H:%M")
    assert r.stderr == ""  # nothing was cut


def test_log_says_when_it_cut(cli, patient):
    for _ in range(3):
        ok(cli("patients", "show", patient, "--json"))
    r = cli("audit", "log", "--limit", "2")
    assert r.exit_code == 0, r.stderr
    assert len(tsv(r.stdout)[1]) == 2
    total = len(ok(cli("audit", "log", "--json")))
    assert r.stderr.strip() == f"showing 2 of {total - 1} events (--limit)"  # the JSON read came after


def test_log_filters(cli, patient, as_user):
    other = ok(
        cli("patients", "register", "--first-name", "Liam", "--last-name", "Okafor", "--dob", "2001-07-04", "--json")
    )
    env = as_user("maria", "front_desk")
    ok(cli("patients", "show", other["mrn"], "--json", env=env))
    ok(cli("patients", "list", "--json", env=env))
    by_patient = ok(cli("audit", "log", "--patient", other["mrn"], "--json"))
    assert [e["action"] for e in by_patient] == ["list", "read", "create"]  # the list named it too
    assert all(e["patient_id"] == other["id"] or other["id"] in (e["patient_ids"] or []) for e in by_patient)
    by_user = ok(cli("audit", "log", "--user", "maria", "--json"))
    assert [e["action"] for e in by_user] == ["list", "read"]
    assert len(ok(cli("audit", "log", "--limit", "2", "--json"))) == 2
    assert ok(cli("audit", "log", "--since", "2999-01-01", "--json")) == []
    assert len(ok(cli("audit", "log", "--since", "2000-01-01", "--json"))) > 5


def test_reading_the_log_is_audited(cli, raw_sql):
    ok(cli("audit", "log", "--json"))
    assert raw_sql("SELECT action, entity FROM audit_event ORDER BY seq DESC LIMIT 1")[0] == ("read", "audit")


def test_log_bad_input(cli, counts):
    before = counts("audit_event")
    error_line(cli("audit", "log", "--since", "2026-02-30"), 2, "--since", "2026-02-30")
    error_line(cli("audit", "log", "--limit", "0"), 2, "--limit")
    error_line(cli("audit", "log", "--patient", "0999999"), 3, "no patient")
    assert counts("audit_event") == before


def test_auditor_may_read_log_and_verify(cli, patient, as_user):
    env = as_user("grace", "auditor")
    assert ok(cli("audit", "log", "--json", env=env))
    assert ok(cli("audit", "verify", "--json", env=env))["ok"] is True
    error_line(cli("patients", "show", patient, env=env), 5, "grace")


def test_verify_intact(cli, patient):
    data = ok(cli("audit", "verify", "--json"))
    assert data == {
        "ok": True,
        "events": 2,
        "first_bad_seq": None,
        "problem": None,
        "sealed_with": [data["sealed_with"][0]],
        "checkpoint": None,
    }
    assert len(data["sealed_with"][0]) == 8  # the id of the practice key
    r = cli("audit", "verify")
    assert r.exit_code == 0 and r.stdout == ""
    assert "audit trail intact: 2 events" in r.stderr


def test_database_refuses_to_edit_the_log(settings, raw_sql, patient):
    import sqlalchemy as sa

    with pytest.raises(sa.exc.DBAPIError):
        raw_sql("UPDATE audit_event SET detail = 'x' WHERE seq = 2")
    with pytest.raises(sa.exc.DBAPIError):
        raw_sql("DELETE FROM audit_event WHERE seq = 2")


def test_verify_detects_an_edited_event(cli, patient, tamper):
    ok(cli("patients", "show", patient, "--json"))
    tamper("UPDATE audit_event SET username = 'nobody' WHERE seq = 2")
    r = cli("audit", "verify")
    error_line(r, 1, "audit trail broken at event 2", "altered")
    assert r.stdout == ""
    data = json.loads(cli("audit", "verify", "--json").stdout)
    assert data["ok"] is False and data["first_bad_seq"] == 2


def test_verify_detects_a_deleted_event(cli, patient, tamper):
    ok(cli("patients", "show", patient, "--json"))
    tamper("DELETE FROM audit_event WHERE seq = 2")
    error_line(cli("audit", "verify"), 1, "event 2", "missing")


def test_verify_detects_a_deleted_last_event(cli, patient, tamper):
    tamper("DELETE FROM audit_event WHERE seq = 2")
    error_line(cli("audit", "verify"), 1, "event 2", "head records 2")


def test_verify_detects_a_rehashed_edit(cli, settings, patient, tamper):
    """Recomputing the edited event's digest does not help: without the key it is no seal."""
    import sqlalchemy as sa

    from hpms.db import get_engine
    from hpms.models import AuditEvent
    from hpms.services.platform.audit import event_hash

    ok(cli("patients", "show", patient, "--json"))
    with get_engine(settings).connect() as conn:
        row = dict(conn.execute(sa.select(AuditEvent.__table__).where(AuditEvent.seq == 2)).mappings().one())
    row["username"] = "nobody"
    tamper(f"UPDATE audit_event SET username = 'nobody', hash = '{event_hash(row)}' WHERE seq = 2")
    error_line(cli("audit", "verify"), 1, "audit trail broken at event 2", "event 2 was altered")


@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["sqlite"])
def test_audit_subprocess(hpms_proc, patient, tamper):
    tamper("UPDATE audit_event SET detail = 'nothing to see' WHERE seq = 1")
    r = hpms_proc("audit", "verify")
    error_line(r, 1, "audit trail broken at event 1", "altered")
    assert r.stdout == ""


def test_checkpoint_written_private_and_verified(cli, settings, patient, tmp_path):
    import os

    from tests.conftest import count_rows

    out = tmp_path / "cp.json"
    info = ok(cli("audit", "checkpoint", "-o", str(out), "--json"))
    assert os.stat(out).st_mode & 0o777 == 0o600
    saved = json.loads(out.read_text())
    assert info == {**saved, "file": str(out)}
    assert set(saved) == {"format", "seq", "seal", "at", "key_id", "signature"}
    assert saved["format"] == "hpms-audit-checkpoint/1" and saved["at"].endswith("Z")
    assert saved["seq"] == count_rows(settings, "audit_event") - 1  # the checkpoint event follows it
    r = cli("audit", "verify", "--checkpoint", str(out))
    assert r.exit_code == 0, r.stderr
    assert f"checkpoint at event {saved['seq']}" in r.stderr and "matches" in r.stderr
    printed = cli("audit", "checkpoint")  # on stdout, for a pipe to safekeeping
    assert json.loads(printed.stdout)["seq"] == saved["seq"] + 1


def test_verify_finds_a_rewind_behind_the_checkpoint(cli, settings, patient, tamper, tmp_path, raw_sql):
    head = raw_sql("SELECT last_seq, last_hash, mac, key_id FROM audit_head")[0]
    ok(cli("patients", "show", patient, "--json"))
    out = tmp_path / "cp.json"
    ok(cli("audit", "checkpoint", "-o", str(out)))
    tamper(f"DELETE FROM audit_event WHERE seq > {head[0]}")
    raw_sql(f"UPDATE audit_head SET last_seq = {head[0]}, last_hash = '{head[1]}', mac = '{head[2]}'")
    assert cli("audit", "verify").exit_code == 0  # the rewound database is consistent on its own
    error_line(
        cli("audit", "verify", "--checkpoint", str(out)),
        1,
        f"audit trail broken at event {head[0] + 1}",
        "events were removed",
    )
    r = cli("audit", "verify", "--checkpoint", str(out), "--json")
    assert r.exit_code == 1
    report = json.loads(r.stdout)
    assert report["ok"] is False and report["first_bad_seq"] == head[0] + 1
    assert report["checkpoint"]["ok"] is False


def test_checkpoint_input_and_output_errors(cli, settings, patient, tmp_path, tamper):
    from tests.conftest import count_rows

    before = count_rows(settings, "audit_event")
    error_line(cli("audit", "verify", "--checkpoint", str(tmp_path / "none.json")), 2, "checkpoint", "does not exist")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    error_line(cli("audit", "verify", "--checkpoint", str(bad)), 2, "checkpoint", "is not a checkpoint")
    error_line(cli("audit", "checkpoint", "-o", str(tmp_path / "no" / "cp.json")), 2, "output", "does not exist")
    tamper("UPDATE audit_event SET detail = 'x' WHERE seq = 1")
    error_line(cli("audit", "checkpoint", "-o", str(tmp_path / "cp.json")), 4, "broken at event 1")
    assert not (tmp_path / "cp.json").exists()
    assert count_rows(settings, "audit_event") == before


@pytest.mark.parametrize("backend", ["sqlite"])  # PostgreSQL refuses a malformed timestamp on write
def test_verify_json_reports_a_malformed_row(cli, settings, patient, tamper):
    tamper("UPDATE audit_event SET at = 'not a time' WHERE seq = 2")
    r = cli("audit", "verify", "--json")
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    report = json.loads(r.stdout)
    assert report["first_bad_seq"] == 2 and report["problem"].startswith("event 2 is malformed")
    error_line(cli("audit", "verify"), 1, "event 2 is malformed")
