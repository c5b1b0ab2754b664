"""`hpms waitlist`: add, list, remove, offers (freed slots x waiting patients) and fill."""

from __future__ import annotations

import json

import pytest

from tests.cli.helpers import error_line, iso_date, iso_datetime, ok, tsv, with_denied
from tests.cli.test_appointments import MONDAY, at, book_json, setup_clinic

WAITLIST_KEYS = {
    "id",
    "patient_id",
    "patient",
    "type",
    "provider",
    "location",
    "earliest",
    "latest",
    "note",
    "status",
    "appointment_id",
    "created_at",
}
OFFER_KEYS = {
    "entry_id",
    "slot_id",
    "patient_id",
    "patient",
    "type",
    "start",
    "end",
    "provider_id",
    "provider",
    "location",
    "waiting_since",
}
LIST_HEADER = [
    "ID",
    "Patient",
    "Type",
    "Provider",
    "Location",
    "Earliest",
    "Latest",
    "Status",
    "Waiting since",
    "Appointment",
    "Note",
]
WRITE_TABLES = ("waitlist_entry", "appointment", "audit_event")


@pytest.fixture
def clinic(ctx_for):
    return setup_clinic(ctx_for)


def add(cli, mrn, *extra, type_="Follow-up", env=None):
    return cli("waitlist", "add", "--patient", mrn, "--type", type_, *extra, env=env)


def add_json(cli, mrn, *extra, **kw):
    return ok(add(cli, mrn, *extra, "--json", **kw))


def freed_slot(cli, mrn, hhmm="10:00"):
    """Book a visit and cancel it: its time becomes a freed slot."""
    appt = book_json(cli, mrn, at(MONDAY, hhmm))
    ok(cli("appointments", "cancel", str(appt["id"]), "--reason", "patient called"))
    return appt


def test_add_json_and_plain(cli, clinic, counts):
    before = counts(*WRITE_TABLES)
    entry = add_json(
        cli,
        clinic[0],
        "--provider",
        "Okafor",
        "--location",
        "Main",
        "--earliest",
        "2026-01-01",
        "--latest",
        f"{MONDAY.year}-12-31",
        "--note",
        "mornings only",
    )
    assert set(entry) == WAITLIST_KEYS
    assert entry["status"] == "open" and entry["appointment_id"] is None
    assert entry["patient"] == "Pat1 Tester" and entry["type"] == "Follow-up"
    assert entry["provider"] == "Liam Okafor, MD" and entry["location"] == "Main"
    assert iso_date(entry["earliest"]).isoformat() == "2026-01-01"
    assert entry["latest"] == f"{MONDAY.year}-12-31" and entry["note"] == "mornings only"
    iso_datetime(entry["created_at"])
    after = counts(*WRITE_TABLES)
    assert after["waitlist_entry"] == before["waitlist_entry"] + 1
    assert after["audit_event"] == before["audit_event"] + 1
    r = add(cli, clinic[1], type_="New patient")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip().isdigit() and r.stdout == f"{int(r.stdout)}\n"
    assert "added Pat2 Tester to the waitlist for 'New patient'" in r.stderr


@pytest.mark.parametrize(
    "extra, code, words",
    [
        (("--patient", "0999999", "--type", "Follow-up"), 3, ("--patient", "0999999")),
        (("--patient", "{mrn}", "--type", "Massage"), 3, ("--type", "Massage")),
        (("--patient", "{mrn}", "--type", "Follow-up", "--provider", "Nobody"), 3, ("--provider", "Nobody")),
        (("--patient", "{mrn}", "--type", "Follow-up", "--location", "Elsewhere"), 3, ("--location", "Elsewhere")),
        (
            ("--patient", "{mrn}", "--type", "Follow-up", "--earliest", "2027-05-10", "--latest", "2027-05-01"),
            2,
            ("--latest", "before the earliest day"),
        ),
        (("--patient", "{mrn}", "--type", "Follow-up", "--latest", "2020-01-01"), 2, ("--latest", "in the past")),
        (("--patient", "{mrn}", "--type", "Follow-up", "--earliest", "2027-02-30"), 2, ("--earliest", "2027-02-30")),
        (("--type", "Follow-up"), 2, ("--patient", "required")),
        (("--patient", "{mrn}"), 2, ("--type", "required")),
    ],
)
def test_add_bad_input_writes_nothing(cli, clinic, counts, extra, code, words):
    before = counts(*WRITE_TABLES)
    r = cli("waitlist", "add", *(e.format(mrn=clinic[0]) for e in extra))
    error_line(r, code, *words)
    assert r.stdout == ""
    assert counts(*WRITE_TABLES) == before


def test_add_twice_is_a_conflict(cli, clinic, counts):
    entry = add_json(cli, clinic[0])
    before = counts(*WRITE_TABLES)
    error_line(add(cli, clinic[0]), 4, "already waiting", f"entry {entry['id']}")
    assert counts(*WRITE_TABLES) == before


def test_list_and_remove(cli, clinic, counts):
    first = add_json(cli, clinic[0], "--note", "any time")
    second = add_json(cli, clinic[1], type_="New patient")
    listed = ok(cli("waitlist", "list", "--json"))
    assert [e["id"] for e in listed] == [first["id"], second["id"]]
    assert set(listed[0]) == WAITLIST_KEYS
    r = cli("waitlist", "list")
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == LIST_HEADER
    assert [row[:8] for row in rows] == [
        [str(first["id"]), "Pat1 Tester", "Follow-up", "", "", "", "", "open"],
        [str(second["id"]), "Pat2 Tester", "New patient", "", "", "", "", "open"],
    ]
    assert rows[0][10] == "any time"

    removed = ok(cli("waitlist", "remove", str(first["id"]), "--json"))
    assert removed["status"] == "removed" and removed["id"] == first["id"]
    assert [e["id"] for e in ok(cli("waitlist", "list", "--json"))] == [second["id"]]
    assert [e["id"] for e in ok(cli("waitlist", "list", "--status", "removed", "--json"))] == [first["id"]]
    assert len(ok(cli("waitlist", "list", "--status", "all", "--json"))) == 2
    assert ok(cli("waitlist", "list", "--status", "filled", "--json")) == []
    r = cli("waitlist", "remove", str(second["id"]))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "" and f"removed waitlist entry {second['id']}" in r.stderr

    before = counts(*WRITE_TABLES)
    error_line(cli("waitlist", "remove", str(first["id"])), 4, f"entry {first['id']} is removed")
    error_line(cli("waitlist", "remove", "4242"), 3, "4242")
    error_line(cli("waitlist", "list", "--status", "pending"), 2, "--status", "pending")
    assert counts(*WRITE_TABLES) == before
    # a removed patient may wait again
    assert add_json(cli, clinic[0])["status"] == "open"


def test_empty_lists_plain(cli, clinic):
    r = cli("waitlist", "list")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "\t".join(LIST_HEADER) + "\n"
    assert ok(cli("waitlist", "offers", "--json")) == []


def test_offers_and_fill_a_freed_slot(cli, clinic, counts, raw_sql):
    cancelled = freed_slot(cli, clinic[0], "10:00")
    entry = add_json(cli, clinic[1], "--provider", "Okafor")
    offers = ok(cli("waitlist", "offers", "--json"))
    assert len(offers) == 1
    offer = offers[0]
    assert set(offer) == OFFER_KEYS
    assert offer["entry_id"] == entry["id"] and offer["patient"] == "Pat2 Tester"
    assert offer["start"] == cancelled["start"] and offer["provider"] == "Liam Okafor, MD"
    assert offer["location"] == "Main" and offer["type"] == "Follow-up"
    iso_datetime(offer["waiting_since"])
    r = cli("waitlist", "offers")
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == ["Entry", "Slot", "Patient", "Type", "Start", "End", "Provider", "Location", "Waiting since"]
    assert rows[0][:8] == [
        str(entry["id"]),
        str(offer["slot_id"]),
        "Pat2 Tester",
        "Follow-up",
        f"{MONDAY} 10:00",
        "10:30",
        "Liam Okafor, MD",
        "Main",
    ]

    appt = ok(cli("waitlist", "fill", str(entry["id"]), "--slot", str(offer["slot_id"]), "--json"))
    assert appt["start"] == cancelled["start"] and appt["mrn"] == clinic[1] and appt["status"] == "booked"
    filled = ok(cli("waitlist", "list", "--status", "filled", "--json"))
    assert [(e["id"], e["appointment_id"]) for e in filled] == [(entry["id"], appt["id"])]
    assert raw_sql(f"SELECT status FROM freed_slot WHERE id = {offer['slot_id']}")[0][0] == "filled"
    assert ok(cli("waitlist", "offers", "--json")) == []

    before = counts(*WRITE_TABLES)
    error_line(
        cli("waitlist", "fill", str(entry["id"]), "--slot", str(offer["slot_id"])), 4, f"entry {entry['id']} is filled"
    )
    other = add_json(cli, clinic[2])
    before = counts(*WRITE_TABLES)
    error_line(
        cli("waitlist", "fill", str(other["id"]), "--slot", str(offer["slot_id"])), 4, "--slot", "already filled"
    )
    assert counts(*WRITE_TABLES) == before


def test_fill_plain_at_a_time(cli, clinic):
    entry = add_json(cli, clinic[0])
    r = cli("waitlist", "fill", str(entry["id"]), "--at", at(MONDAY, "11:00"), "--provider", "Ito")
    assert r.exit_code == 0, r.stderr
    appt_id = r.stdout.strip()
    assert r.stdout == f"{appt_id}\n"
    assert f"filled waitlist entry {entry['id']}: booked appointment {appt_id} on {MONDAY} 11:00" in r.stderr
    shown = ok(cli("appointments", "show", appt_id, "--json"))
    assert shown["provider"] == "Sara Ito, DO" and shown["mrn"] == clinic[0]


@pytest.mark.parametrize(
    "extra, code, words",
    [
        ((), 2, ("--slot", "a freed slot or a time (at)", "hpms waitlist offers")),
        (("--slot", "1", "--at", "{d} 11:00"), 2, ("--slot",)),
        (("--slot", "999"), 3, ("--slot", "999")),
        (("--at", "{d} 11:00"), 2, ("--provider", "required")),
        (("--at", "{d} 11:00", "--provider", "Nobody"), 3, ("--provider", "Nobody")),
        (("--at", "{d} 20:00", "--provider", "Okafor"), 2, ("--at", "outside working hours")),
        (("--at", "{d} 10:00", "--provider", "Okafor"), 4, ("--at", "already has appointment")),
    ],
)
def test_fill_bad_input_writes_nothing(cli, clinic, counts, extra, code, words):
    book_json(cli, clinic[2], at(MONDAY, "10:00"))
    entry = add_json(cli, clinic[0])
    before = counts(*WRITE_TABLES)
    r = cli("waitlist", "fill", str(entry["id"]), *(e.format(d=MONDAY) for e in extra))
    error_line(r, code, *words)
    assert r.stdout == ""
    assert counts(*WRITE_TABLES) == before
    assert ok(cli("waitlist", "list", "--json"))[0]["status"] == "open"
    error_line(cli("waitlist", "fill", "4242", "--at", at(MONDAY, "11:00")), 3, "4242")


def test_offers_respect_provider_and_dates(cli, clinic):
    freed_slot(cli, clinic[0], "10:00")
    add_json(cli, clinic[1], "--provider", "Ito")
    add_json(cli, clinic[2], "--latest", "+1")
    assert ok(cli("waitlist", "offers", "--json")) == []


def test_permissions(cli, clinic, counts, as_user):
    entry = add_json(cli, clinic[0])
    biller = as_user("bill", "biller")
    before = counts(*WRITE_TABLES)
    error_line(add(cli, clinic[1], env=biller), 5, "bill", "change the wait list")
    error_line(cli("waitlist", "remove", str(entry["id"]), env=biller), 5, "change the wait list")
    assert counts(*WRITE_TABLES) == with_denied(before, 2)
    assert [e["id"] for e in ok(cli("waitlist", "list", "--json", env=biller))] == [entry["id"]]
    desk = as_user("maria", "front_desk")
    assert add_json(cli, clinic[1], env=desk)["status"] == "open"
    auditor = as_user("audrey", "auditor")
    error_line(cli("waitlist", "list", env=auditor), 5, "read the wait list")


@pytest.mark.subprocess
def test_waitlist_subprocess(hpms_proc, cli, clinic):
    freed_slot(cli, clinic[0], "10:00")
    r = hpms_proc("waitlist", "add", "--patient", clinic[1], "--type", "Follow-up")
    assert r.exit_code == 0, r.stderr
    entry_id = r.stdout.strip()
    r = hpms_proc("waitlist", "offers", "--json")
    assert r.exit_code == 0, r.stderr
    offers = json.loads(r.stdout)
    assert [o["entry_id"] for o in offers] == [int(entry_id)]
    r = hpms_proc("waitlist", "fill", entry_id, "--slot", str(offers[0]["slot_id"]))
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip().isdigit()
    r = hpms_proc("waitlist", "remove", entry_id)
    error_line(r, 4, "filled")
