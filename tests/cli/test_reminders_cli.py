"""`hpms reminders`: rules and quiet hours, with bad input refused naming the option."""

from __future__ import annotations

import pytest

from tests.cli.helpers import error_line, ok, tsv


@pytest.fixture
def follow_up(cli):
    ok(cli("appointment-types", "add", "--name", "Follow-up", "--duration", "20", "--json"))
    return "Follow-up"


def test_rules_add_list_remove(cli, follow_up, counts):
    a = ok(cli("reminders", "add", "--hours", "72", "--channel", "email", "--json"))
    b = ok(cli("reminders", "add", "--hours", "24", "--channel", "sms", "--json"))
    none = ok(cli("reminders", "add", "--channel", "none", "--type", follow_up, "--json"))
    assert (a["type"], a["hours_before"], a["channel"]) == (None, 72, "email")
    assert none == {"id": none["id"], "type": "Follow-up", "hours_before": 0, "channel": "none"}
    listed = ok(cli("reminders", "rules", "--json"))
    assert [r["id"] for r in listed] == [a["id"], b["id"], none["id"]]
    header, rows = tsv(cli("reminders", "rules").stdout)
    assert rows[0][header.index("Type")] == "(every type)"
    ok(cli("reminders", "remove", str(b["id"]), "--json"))
    assert [r["id"] for r in ok(cli("reminders", "rules", "--json"))] == [a["id"], none["id"]]
    before = counts("reminder_rule", "audit_event")
    error_line(cli("reminders", "remove", str(b["id"])), 3, "no reminder rule")
    error_line(cli("reminders", "add", "--hours", "72", "--channel", "email"), 4, "--hours", "that rule exists")
    error_line(cli("reminders", "add", "--hours", "5", "--channel", "sms", "--type", follow_up), 4, "no reminders")
    assert counts("reminder_rule", "audit_event") == before


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("--hours", "0", "--channel", "email"), 2, ["--hours", "1 to 720"]),
        (("--hours", "800"), 2, ["--hours", "1 to 720"]),
        (("--hours", "5", "--channel", "pigeon"), 2, ["--channel", "'pigeon'"]),
        (("--channel", "none"), 2, ["--type", "is required with channel none"]),
        (("--hours", "5", "--type", "Nope"), 3, ["--type", "no appointment type 'Nope'"]),
    ],
)
def test_bad_rules_write_nothing(cli, counts, args, code, words):
    before = counts("reminder_rule", "audit_event")
    error_line(cli("reminders", "add", *args), code, *words)
    assert counts("reminder_rule", "audit_event") == before


def test_quiet_hours(cli, counts):
    assert ok(cli("reminders", "quiet", "--until", "9:00", "--from", "7:30pm", "--json")) == {
        "quiet_until": "09:00",
        "quiet_from": "19:30",
    }
    before = counts("messaging_profile", "audit_event")
    error_line(cli("reminders", "quiet", "--until", "21:00", "--from", "20:00"), 2, "--from", "must be after 21:00")
    error_line(cli("reminders", "quiet", "--until", "25:00"), 2, "--until", "not a time")
    assert counts("messaging_profile", "audit_event") == before


def test_only_the_admin_changes_rules(cli, as_user):
    desk = as_user("desk", "front_desk")
    error_line(cli("reminders", "add", "--hours", "24", env=desk), 5, "set up messaging")
    assert ok(cli("reminders", "rules", "--json", env=desk)) == []


def test_a_patient_time_zone_for_reminder_hours(cli, patient, counts):
    assert ok(cli("patients", "update", patient, "--tz", "Asia/Tokyo", "--json"))["tz"] == "Asia/Tokyo"
    assert ok(cli("patients", "show", patient, "--json"))["tz"] == "Asia/Tokyo"
    before = counts("patient", "audit_event")
    error_line(cli("patients", "update", patient, "--tz", "Mars/Olympus"), 2, "--tz", "Mars/Olympus")
    assert counts("patient", "audit_event") == before
    out = ok(
        cli(
            "patients",
            "register",
            "--first-name",
            "Kenji",
            "--last-name",
            "Sato",
            "--dob",
            "1979-04-02",
            "--tz",
            "Europe/Berlin",
            "--json",
        )
    )
    assert out["tz"] == "Europe/Berlin"
