"""`hpms locations`: add, list, show, update; time zones validated."""

from __future__ import annotations

import pytest

from tests.cli.helpers import error_line, iso_datetime, ok, tsv

LOCATION_KEYS = {
    "place_of_service",
    "id",
    "name",
    "tz",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "country",
    "phone",
    "npi",
    "created_at",
}


def test_add_list_show_json(cli):
    added = ok(
        cli(
            "locations",
            "add",
            "--name",
            "Lakeside Clinic",
            "--tz",
            "America/Chicago",
            "--city",
            "Chicago",
            "--state",
            "IL",
            "--country",
            "us",
            "--phone",
            "312-555-0100",
            "--npi",
            "1234567893",
            "--json",
        )
    )
    assert set(added) == LOCATION_KEYS
    assert added["tz"] == "America/Chicago"
    assert added["country"] == "US"
    iso_datetime(added["created_at"])

    listed = ok(cli("locations", "list", "--json"))
    assert [loc["name"] for loc in listed] == ["Main", "Lakeside Clinic"]
    assert listed[0]["tz"] == "America/New_York"

    shown = ok(cli("locations", "show", "lakeside clinic", "--json"))
    assert shown == added
    assert ok(cli("locations", "show", str(added["id"]), "--json")) == added


def test_add_plain_talks_on_stderr(cli):
    r = cli("locations", "add", "--name", "Annex", "--tz", "Europe/Berlin")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "added location" in r.stderr and "Europe/Berlin" in r.stderr


def test_list_plain_is_tab_separated_with_header(cli):
    ok(cli("locations", "add", "--name", "Annex", "--tz", "Europe/Berlin", "--city", "Berlin"))
    r = cli("locations", "list")
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == ["ID", "Name", "Time zone", "City", "Phone", "NPI"]
    assert [row[1:4] for row in rows] == [["Main", "America/New_York", ""], ["Annex", "Europe/Berlin", "Berlin"]]
    assert r.stderr == ""


def test_update(cli):
    out = ok(cli("locations", "update", "Main", "--phone", "212-555-0100", "--tz", "America/Chicago", "--json"))
    assert out["phone"] == "212-555-0100"
    assert out["tz"] == "America/Chicago"


def test_unknown_time_zone(cli, counts):
    before = counts("location", "audit_event")
    r = cli("locations", "add", "--name", "X", "--tz", "Mars/Base")
    error_line(r, 2, "--tz", "Mars/Base")
    assert r.stdout == ""
    assert counts("location", "audit_event") == before


def test_update_unknown_time_zone_changes_nothing(cli, counts):
    before = counts("audit_event")
    error_line(cli("locations", "update", "Main", "--tz", "Mars/Base"), 2, "--tz", "Mars/Base")
    assert ok(cli("locations", "show", "Main", "--json"))["tz"] == "America/New_York"
    assert counts("audit_event") == before


@pytest.mark.parametrize(
    "option, value, field",
    [
        ("--phone", "12ab", "--phone"),
        ("--npi", "1234567890", "--npi"),
        ("--country", "USA", "--country"),
    ],
)
def test_bad_location_fields(cli, counts, option, value, field):
    before = counts("location", "audit_event")
    error_line(cli("locations", "add", "--name", "Annex", "--tz", "America/Chicago", option, value), 2, field)
    assert counts("location", "audit_event") == before


def test_missing_name_and_duplicate_name(cli, counts):
    before = counts("location", "audit_event")
    error_line(cli("locations", "add", "--tz", "America/Chicago"), 2, "--name")
    error_line(cli("locations", "add", "--name", "main", "--tz", "America/Chicago"), 4, "'main'")
    assert counts("location", "audit_event") == before


def test_rename_onto_another_location_is_a_conflict(cli, counts):
    ok(cli("locations", "add", "--name", "Annex", "--tz", "Europe/Berlin"))
    before = counts("location", "audit_event")
    error_line(cli("locations", "update", "Main", "--name", "annex"), 4, "--name", "'annex'")
    assert counts("location", "audit_event") == before
    assert ok(cli("locations", "show", "Main", "--json"))["name"] == "Main"
    assert ok(cli("locations", "update", "Main", "--name", "MAIN", "--json"))["name"] == "MAIN"


def test_unknown_location(cli):
    error_line(cli("locations", "show", "Nowhere"), 3, "Nowhere")
    error_line(cli("locations", "update", "999", "--phone", "212-555-0100"), 3, "999")


@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["sqlite"])
def test_locations_subprocess(hpms_proc):
    r = hpms_proc("locations", "list")
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == ["ID", "Name", "Time zone", "City", "Phone", "NPI"]
    assert rows == [["1", "Main", "America/New_York", "", "", ""]]
    assert r.stderr == ""


def test_place_of_service_defaults_to_office_and_is_validated(cli, counts):
    added = ok(cli("locations", "add", "--name", "Tele", "--tz", "America/New_York", "--json"))
    assert added["place_of_service"] == "11"
    changed = ok(cli("locations", "update", "Tele", "--place-of-service", "2", "--json"))
    assert changed["place_of_service"] == "02"
    before = counts("location", "audit_event")
    error_line(cli("locations", "update", "Tele", "--place-of-service", "98"), 2, "--place-of-service", "98")
    assert counts("location", "audit_event") == before
    assert ok(cli("locations", "show", "Tele", "--json"))["place_of_service"] == "02"
