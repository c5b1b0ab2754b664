"""`hpms rooms` and `hpms appointment-types`: add and list; names unique, values checked."""

from __future__ import annotations

import json

import pytest

from tests.cli.helpers import error_line, ok, tsv, with_denied

ROOM_KEYS = {"id", "location", "location_id", "name", "kind", "active"}
TYPE_KEYS = {
    "id",
    "name",
    "duration_min",
    "buffer_min",
    "color",
    "self_bookable",
    "needs_room",
    "default_code",
    "active",
}
ROOM_HEADER = ["ID", "Location", "Name", "Kind", "Active"]
TYPE_HEADER = ["ID", "Name", "Minutes", "Buffer", "Self-bookable", "Room", "Code", "Color", "Active"]


# ---- rooms ---------------------------------------------------------------------------------


def test_rooms_add_and_list_json(cli):
    added = ok(cli("rooms", "add", "--location", "Main", "--name", "Exam 1", "--json"))
    assert set(added) == ROOM_KEYS
    assert added["kind"] == "exam" and added["location"] == "Main" and added["active"] is True
    proc = ok(cli("rooms", "add", "--name", "Procedure", "--kind", "procedure", "--json"))  # the only location
    assert proc["location_id"] == added["location_id"]
    assert ok(cli("rooms", "list", "--json")) == [added, proc]


def test_rooms_plain(cli):
    ok(cli("locations", "add", "--name", "Lakeside", "--tz", "America/Chicago"))
    r = cli("rooms", "add", "--location", "lakeside", "--name", "Ultrasound", "--kind", "equipment")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "added room" in r.stderr and "'Ultrasound'" in r.stderr and "Lakeside" in r.stderr
    ok(cli("rooms", "add", "--location", "Main", "--name", "Exam 1"))

    r = cli("rooms", "list")
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == ROOM_HEADER
    assert [row[1:] for row in rows] == [
        ["Main", "Exam 1", "exam", "yes"],
        ["Lakeside", "Ultrasound", "equipment", "yes"],
    ]
    header, rows = tsv(cli("rooms", "list", "--location", "Lakeside").stdout)
    assert [row[2] for row in rows] == ["Ultrasound"]


def test_room_names_are_unique_per_location(cli, counts):
    ok(cli("locations", "add", "--name", "Lakeside", "--tz", "America/Chicago"))
    ok(cli("rooms", "add", "--location", "Main", "--name", "Exam 1"))
    before = counts("room", "audit_event")
    error_line(cli("rooms", "add", "--location", "Main", "--name", "exam 1"), 4, "--name", "'exam 1'")
    assert counts("room", "audit_event") == before
    ok(cli("rooms", "add", "--location", "Lakeside", "--name", "Exam 1"))  # another location: fine
    assert counts("room")["room"] == before["room"] + 1


BAD_ROOMS = [
    (["--location", "Main", "--name", "X", "--kind", "closet"], 2, ["--kind", "closet"]),
    (["--location", "Main"], 2, ["--name"]),
    (["--location", "Nowhere", "--name", "X"], 3, ["--location", "'Nowhere'"]),
]


def test_bad_rooms_write_nothing(cli, counts):
    for args, code, words in BAD_ROOMS:
        before = counts("room", "audit_event")
        r = cli("rooms", "add", *args)
        error_line(r, code, *words)
        assert r.stdout == ""
        assert counts("room", "audit_event") == before


def test_room_needs_location_when_several(cli, counts):
    ok(cli("locations", "add", "--name", "Lakeside", "--tz", "America/Chicago"))
    before = counts("room")
    error_line(cli("rooms", "add", "--name", "Exam 1"), 2, "--location")
    assert counts("room") == before


def test_rooms_list_unknown_location(cli):
    error_line(cli("rooms", "list", "--location", "Nowhere"), 3, "--location", "'Nowhere'")


def test_front_desk_may_list_rooms_not_add(cli, as_user, counts):
    ok(cli("rooms", "add", "--name", "Exam 1"))
    env = as_user("maria", "front_desk")
    assert [r["name"] for r in ok(cli("rooms", "list", "--json", env=env))] == ["Exam 1"]
    before = counts("room", "audit_event")
    error_line(cli("rooms", "add", "--name", "Exam 2", env=env), 5, "maria", "set up schedules")
    assert counts("room", "audit_event") == with_denied(before)


@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["sqlite"])
def test_rooms_subprocess(hpms_proc):
    r = hpms_proc("rooms", "add", "--name", "Exam 1", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["location"] == "Main"
    error_line(hpms_proc("rooms", "add", "--name", "EXAM 1"), 4, "--name")
    listed = hpms_proc("rooms", "list")
    assert listed.exit_code == 0, listed.stderr
    assert tsv(listed.stdout) == (ROOM_HEADER, [["1", "Main", "Exam 1", "exam", "yes"]])


# ---- appointment types ---------------------------------------------------------------------


def test_types_add_and_list_json(cli):
    added = ok(
        cli(
            "appointment-types",
            "add",
            "--name",
            "Follow-up",
            "--duration",
            "20",
            "--buffer",
            "5",
            "--color",
            "#AA00cc",
            "--self-bookable",
            "--code",
            "99213",
            "--json",
        )
    )
    assert set(added) == TYPE_KEYS
    assert added == {
        "id": added["id"],
        "name": "Follow-up",
        "duration_min": 20,
        "buffer_min": 5,
        "color": "#aa00cc",
        "self_bookable": True,
        "needs_room": False,
        "default_code": "99213",
        "active": True,
    }
    plain = ok(
        cli(
            "appointment-types",
            "add",
            "--name",
            "Annual physical",
            "--duration",
            "45",
            "--needs-room",
            "--code",
            "g0438",
            "--json",
        )
    )
    assert plain["buffer_min"] == 0 and plain["needs_room"] is True and plain["self_bookable"] is False
    assert plain["default_code"] == "G0438"
    assert [t["name"] for t in ok(cli("appointment-types", "list", "--json"))] == ["Annual physical", "Follow-up"]


def test_types_plain(cli):
    r = cli("appointment-types", "add", "--name", "New patient", "--duration", "40", "--buffer", "10")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "added appointment type" in r.stderr and "40 min + 10 min buffer" in r.stderr
    r = cli("appointment-types", "list")
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == TYPE_HEADER
    assert [row[1:] for row in rows] == [["New patient", "40", "10", "no", "no", "", "", "yes"]]


def test_types_list_all_shows_inactive(cli, raw_sql):
    ok(cli("appointment-types", "add", "--name", "Old", "--duration", "15"))
    ok(cli("appointment-types", "add", "--name", "Current", "--duration", "15"))
    raw_sql("UPDATE appointment_type SET active = false WHERE name = 'Old'")
    assert [t["name"] for t in ok(cli("appointment-types", "list", "--json"))] == ["Current"]
    listed = ok(cli("appointment-types", "list", "--all", "--json"))
    assert [(t["name"], t["active"]) for t in listed] == [("Current", True), ("Old", False)]


BAD_TYPES = [
    (["--name", "X", "--duration", "abc"], ["--duration", "'abc'"]),
    (["--name", "X", "--duration", "3"], ["--duration", "between 5 and 480"]),
    (["--name", "X", "--duration", "481"], ["--duration"]),
    (["--name", "X"], ["--duration"]),
    (["--name", "X", "--duration", "20", "--buffer", "500"], ["--buffer"]),
    (["--name", "X", "--duration", "20", "--code", "9921"], ["--code", "'9921'"]),
    (["--name", "X", "--duration", "20", "--color", "not a color"], ["--color"]),
    (["--duration", "20"], ["--name"]),
]


def test_bad_types_write_nothing(cli, counts):
    for args, words in BAD_TYPES:
        before = counts("appointment_type", "audit_event")
        r = cli("appointment-types", "add", *args)
        error_line(r, 2, *words)
        assert r.stdout == ""
        assert counts("appointment_type", "audit_event") == before


def test_duplicate_type_name_is_a_conflict(cli, counts):
    ok(cli("appointment-types", "add", "--name", "Follow-up", "--duration", "20"))
    before = counts("appointment_type", "audit_event")
    error_line(cli("appointment-types", "add", "--name", "FOLLOW-UP", "--duration", "30"), 4, "--name", "'FOLLOW-UP'")
    assert counts("appointment_type", "audit_event") == before


def test_front_desk_may_list_types_not_add(cli, as_user, counts):
    ok(cli("appointment-types", "add", "--name", "Follow-up", "--duration", "20"))
    env = as_user("maria", "front_desk")
    assert [t["name"] for t in ok(cli("appointment-types", "list", "--json", env=env))] == ["Follow-up"]
    before = counts("appointment_type", "audit_event")
    error_line(cli("appointment-types", "add", "--name", "X", "--duration", "20", env=env), 5, "maria")
    assert counts("appointment_type", "audit_event") == with_denied(before)


@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["sqlite"])
def test_appointment_types_subprocess(hpms_proc):
    r = hpms_proc("appointment-types", "add", "--name", "Follow-up", "--duration", "20", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["duration_min"] == 20
    error_line(hpms_proc("appointment-types", "add", "--name", "X", "--duration", "0"), 2, "--duration")
    listed = hpms_proc("appointment-types", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert [t["name"] for t in json.loads(listed.stdout)] == ["Follow-up"]
