"""`hpms providers`: add, list, show, update; NPI, taxonomy, locations and links to users checked."""

from __future__ import annotations

import json

import pytest

from tests.cli.helpers import error_line, ok, tsv, with_denied

PROVIDER_KEYS = {
    "id",
    "name",
    "first_name",
    "last_name",
    "credentials",
    "npi",
    "taxonomy",
    "username",
    "locations",
    "color",
    "active",
    "version",
}
HEADER = ["ID", "Name", "NPI", "Taxonomy", "Locations", "User", "Color", "Active"]
TABLES = ("provider", "provider_location", "audit_event")


@pytest.fixture
def okafor(cli):
    return ok(
        cli(
            "providers",
            "add",
            "--first-name",
            "Grace",
            "--last-name",
            "Okafor",
            "--credentials",
            "MD",
            "--npi",
            "1234567893",
            "--taxonomy",
            "207q00000x",
            "--location",
            "Main",
            "--color",
            "Teal",
            "--json",
        )
    )


@pytest.fixture
def lakeside(cli):
    ok(cli("locations", "add", "--name", "Lakeside", "--tz", "America/Chicago"))
    return "Lakeside"


def test_add_list_show_json(cli, okafor):
    assert set(okafor) == PROVIDER_KEYS
    assert okafor["name"] == "Grace Okafor, MD"
    assert okafor["npi"] == "1234567893"
    assert okafor["taxonomy"] == "207Q00000X"
    assert okafor["color"] == "teal"
    assert okafor["locations"] == ["Main"]
    assert okafor["active"] is True and okafor["version"] == 1 and okafor["username"] is None

    assert ok(cli("providers", "list", "--json")) == [okafor]
    for ref in ("Okafor", "grace okafor", "Dr. Okafor", str(okafor["id"]), "1234567893"):
        assert ok(cli("providers", "show", ref, "--json")) == okafor, ref


def test_add_plain_talks_on_stderr_and_defaults_to_the_only_location(cli):
    r = cli("providers", "add", "--first-name", "Sam", "--last-name", "Lee")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "added provider" in r.stderr and "Sam Lee" in r.stderr and "Main" in r.stderr
    assert ok(cli("providers", "show", "Lee", "--json"))["locations"] == ["Main"]


def test_list_and_show_plain(cli, okafor):
    ok(cli("providers", "add", "--first-name", "Sam", "--last-name", "Adams", "--credentials", "NP"))
    r = cli("providers", "list")
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == HEADER
    assert [row[1] for row in rows] == ["Sam Adams, NP", "Grace Okafor, MD"]  # by last name
    assert rows[1] == [str(okafor["id"]), "Grace Okafor, MD", "1234567893", "207Q00000X", "Main", "", "teal", "yes"]
    assert r.stderr == ""

    shown = cli("providers", "show", "Okafor")
    assert shown.exit_code == 0, shown.stderr
    lines = {key: value.strip() for key, _, value in (line.partition(" ") for line in shown.stdout.splitlines())}
    assert list(lines) == [
        "id",
        "name",
        "first_name",
        "last_name",
        "credentials",
        "npi",
        "taxonomy",
        "username",
        "locations",
        "color",
        "active",
        "version",
    ]
    assert lines["npi"] == "1234567893" and lines["active"] == "yes" and lines["locations"] == "Main"
    assert lines["username"] == ""


def test_several_locations_and_location_filter(cli, lakeside):
    added = ok(
        cli(
            "providers",
            "add",
            "--first-name",
            "Ann",
            "--last-name",
            "Roe",
            "--location",
            "Main",
            "--location",
            "lakeside",
            "--json",
        )
    )
    assert added["locations"] == ["Main", "Lakeside"]
    ok(cli("providers", "add", "--first-name", "Bo", "--last-name", "Main", "--location", "Main"))
    assert [p["last_name"] for p in ok(cli("providers", "list", "--location", "Lakeside", "--json"))] == ["Roe"]
    assert [p["last_name"] for p in ok(cli("providers", "list", "--location", "Main", "--json"))] == ["Main", "Roe"]
    error_line(cli("providers", "list", "--location", "Nowhere"), 3, "--location", "'Nowhere'")


def test_location_required_when_the_practice_has_several(cli, lakeside, counts):
    before = counts(*TABLES)
    error_line(cli("providers", "add", "--first-name", "Ann", "--last-name", "Roe"), 2, "--location", "several")
    assert counts(*TABLES) == before


def test_update_replaces_locations_and_bumps_the_version(cli, okafor, lakeside):
    out = ok(
        cli(
            "providers",
            "update",
            "Okafor",
            "--location",
            "Lakeside",
            "--credentials",
            "DO",
            "--expected-version",
            "1",
            "--json",
        )
    )
    assert out["locations"] == ["Lakeside"]
    assert out["name"] == "Grace Okafor, DO"
    assert out["version"] == 2
    assert out["npi"] == "1234567893"  # untouched
    # without --location the list stays
    assert ok(cli("providers", "update", "Okafor", "--color", "#00AA00", "--json"))["locations"] == ["Lakeside"]
    # "" clears an optional field
    assert ok(cli("providers", "update", "Okafor", "--credentials", "", "--json"))["name"] == "Grace Okafor"


def test_update_plain_prints_the_provider(cli, okafor):
    r = cli("providers", "update", str(okafor["id"]), "--first-name", "Gracie")
    assert r.exit_code == 0, r.stderr
    assert "first_name   Gracie" in r.stdout
    assert "version      2" in r.stdout


def test_deactivate_hides_from_list_unless_all(cli, okafor):
    out = ok(cli("providers", "update", "Okafor", "--active", "no", "--json"))
    assert out["active"] is False
    assert ok(cli("providers", "list", "--json")) == []
    assert [p["id"] for p in ok(cli("providers", "list", "--all", "--json"))] == [okafor["id"]]
    assert ok(cli("providers", "update", "Okafor", "--active", "yes", "--json"))["active"] is True
    error_line(cli("providers", "update", "Okafor", "--active", "maybe"), 2, "--active", "'maybe'")


def test_link_to_a_user(cli, okafor, make_user):
    make_user("gokafor", "provider")
    out = ok(cli("providers", "update", "Okafor", "--user", "gokafor", "--json"))
    assert out["username"] == "gokafor"
    error_line(cli("providers", "add", "--first-name", "X", "--last-name", "Y", "--user", "gokafor"), 4, "--user")
    error_line(cli("providers", "update", "Okafor", "--user", "nobody"), 3, "--user", "'nobody'")
    assert ok(cli("providers", "show", "Okafor", "--json"))["username"] == "gokafor"


def test_stale_update_is_a_conflict(cli, okafor, counts):
    ok(cli("providers", "update", "Okafor", "--first-name", "G", "--json"))
    before = counts(*TABLES)
    error_line(
        cli("providers", "update", "Okafor", "--last-name", "Other", "--expected-version", "1"),
        4,
        "version 2",
        "expected 1",
    )
    assert counts(*TABLES) == before
    assert ok(cli("providers", "show", "Okafor", "--json"))["last_name"] == "Okafor"


BAD_PROVIDER_FIELDS = [
    (["--npi", "1234567890"], 2, ["--npi", "1234567890"]),
    (["--npi", "12345"], 2, ["--npi"]),
    (["--taxonomy", "207Q"], 2, ["--taxonomy", "'207Q'"]),
    (["--color", "not a color!"], 2, ["--color"]),
    (["--location", "Nowhere"], 3, ["--location", "'Nowhere'"]),
    (["--user", "nobody"], 3, ["--user", "'nobody'"]),
]


def test_bad_provider_fields_write_nothing(cli, counts):
    for args, code, words in BAD_PROVIDER_FIELDS:
        before = counts(*TABLES)
        r = cli("providers", "add", "--first-name", "Ann", "--last-name", "Roe", *args)
        error_line(r, code, *words)
        assert r.stdout == ""
        assert counts(*TABLES) == before


def test_missing_names(cli, counts):
    before = counts(*TABLES)
    error_line(cli("providers", "add", "--first-name", "Ann"), 2, "--last-name")
    error_line(cli("providers", "add", "--last-name", "Roe"), 2, "--first-name")
    assert counts(*TABLES) == before


def test_duplicate_npi_is_a_conflict(cli, okafor, counts):
    before = counts(*TABLES)
    error_line(
        cli("providers", "add", "--first-name", "Ann", "--last-name", "Roe", "--npi", "1234567893"),
        4,
        "--npi",
        "1234567893",
    )
    ok(cli("providers", "add", "--first-name", "Ann", "--last-name", "Roe"))
    error_line(cli("providers", "update", "Roe", "--npi", "1234567893"), 4, "--npi")
    assert counts("provider") == {"provider": before["provider"] + 1}


def test_unknown_provider_and_nothing_to_change(cli, okafor, counts):
    error_line(cli("providers", "show", "Nobody"), 3, "'Nobody'")
    error_line(cli("providers", "show", "999"), 3, "'999'")
    before = counts(*TABLES)
    error_line(cli("providers", "update", "Nobody", "--first-name", "X"), 3, "'Nobody'")
    error_line(cli("providers", "update", "Okafor"), 2, "nothing to change")
    error_line(cli("providers", "update", "Okafor", "--location", "Nowhere"), 3, "--location", "'Nowhere'")
    assert counts(*TABLES) == before
    assert ok(cli("providers", "show", "Okafor", "--json"))["locations"] == ["Main"]


def test_ambiguous_name_asks_for_the_id(cli):
    ok(cli("providers", "add", "--first-name", "Ann", "--last-name", "Roe"))
    ok(cli("providers", "add", "--first-name", "Bob", "--last-name", "Roe"))
    error_line(cli("providers", "show", "Roe"), 2, "several providers")
    assert ok(cli("providers", "show", "Bob Roe", "--json"))["first_name"] == "Bob"


def test_front_desk_may_read_not_write(cli, okafor, as_user, counts):
    env = as_user("maria", "front_desk")
    assert [p["id"] for p in ok(cli("providers", "list", "--json", env=env))] == [okafor["id"]]
    assert ok(cli("providers", "show", "Okafor", "--json", env=env))["id"] == okafor["id"]
    before = counts(*TABLES)
    error_line(
        cli("providers", "add", "--first-name", "Ann", "--last-name", "Roe", env=env), 5, "maria", "change providers"
    )
    error_line(cli("providers", "update", "Okafor", "--active", "no", env=env), 5, "maria")
    assert counts(*TABLES) == with_denied(before, 2)


def test_auditor_may_not_read(cli, okafor, as_user):
    env = as_user("audrey", "auditor")
    error_line(cli("providers", "list", env=env), 5, "audrey", "read providers")


@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["sqlite"])
def test_providers_subprocess(hpms_proc):
    r = hpms_proc("providers", "add", "--first-name", "Grace", "--last-name", "Okafor", "--npi", "1234567893", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["locations"] == ["Main"]
    bad = hpms_proc("providers", "add", "--first-name", "Ann", "--last-name", "Roe", "--npi", "1234567890")
    error_line(bad, 2, "--npi")
    listed = hpms_proc("providers", "list")
    assert listed.exit_code == 0, listed.stderr
    header, rows = tsv(listed.stdout)
    assert header == HEADER
    assert [row[1] for row in rows] == ["Grace Okafor"]
