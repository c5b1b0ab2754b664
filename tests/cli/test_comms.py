"""`hpms comms`: a patient's communication log, messages and staff entries together."""

from __future__ import annotations

import pytest

from tests.cli.helpers import error_line, ok, tsv


def _queue(ctx_for, mrn: str, **kw) -> int:
    from hpms.services.lookups import find_patient
    from hpms.services.messages import outbox

    with ctx_for() as ctx:
        msg = outbox.enqueue(
            ctx,
            channel="email",
            recipient="ana.muller@example.org",
            subject="Your visit",
            body="See you",
            template="reminder",
            patient_id=find_patient(ctx, mrn).id,
            **kw,
        )
        return int(msg.id or 0)


def test_the_log_holds_messages_and_what_staff_recorded(cli, ctx_for, patient, counts):
    mid = _queue(ctx_for, patient)
    call = ok(
        cli("comms", "add", patient, "--kind", "call", "--direction", "in", "--text", "Asked to move Tuesday", "--json")
    )
    assert (call["source"], call["kind"], call["direction"], call["state"]) == ("staff", "call", "in", None)
    entries = ok(cli("comms", "log", patient, "--json"))
    assert [(e["source"], e["id"]) for e in entries] == [("staff", call["id"]), ("message", mid)]
    assert entries[1]["kind"] == "email" and entries[1]["state"] == "queued" and entries[1]["summary"] == "Your visit"
    header, rows = tsv(cli("comms", "log", patient).stdout)
    assert [r[header.index("What")] for r in rows] == ["call", "email"]
    assert rows[1][1] == "…"  # a queued message's icon
    reads = [e for e in ok(cli("audit", "log", "--json")) if e["entity"] == "comm_log"]
    assert reads and all(e["patient_id"] for e in reads)


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("--kind", "fax", "--text", "x"), 2, ["--kind", "'fax'"]),
        (("--kind", "call", "--text", "  "), 2, ["--text"]),
        (("--kind", "call", "--text", "x", "--direction", "up"), 2, ["--direction", "'up'"]),
        (("--kind", "call", "--text", "x", "--at", "2099-01-01 10:00"), 2, ["--at", "in the future"]),
    ],
)
def test_bad_entries_write_nothing(cli, patient, counts, args, code, words):
    before = counts("comm_entry", "audit_event")
    error_line(cli("comms", "add", patient, *args), code, *words)
    assert counts("comm_entry", "audit_event") == before


def test_unknown_patient_and_roles(cli, patient, as_user, counts):
    error_line(cli("comms", "log", "0999999"), 3, "0999999")
    billy = as_user("billy", "biller")
    error_line(cli("comms", "log", patient, env=billy), 5, "read messages to patients")
    desk = as_user("desk", "front_desk")
    note = ok(cli("comms", "add", patient, "--kind", "note", "--text", "Prefers mornings", "--json", env=desk))
    assert note["by"] == "desk"
