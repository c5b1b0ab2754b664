"""`hpms portal policies`: online booking policies per type and provider, and the cancellation
window, with bad input refused naming the option and nothing written."""

from __future__ import annotations

import pytest

from tests.cli.helpers import error_line, ok, tsv

TABLES = ("online_booking_policy", "online_booking_profile", "audit_event")


@pytest.fixture
def follow_up(cli):
    ok(cli("appointment-types", "add", "--name", "Follow-up", "--duration", "20", "--json"))
    ok(cli("providers", "add", "--first-name", "Liam", "--last-name", "Okafor", "--npi", "1234567893", "--json"))
    return "Follow-up"


def test_set_show_clear(cli, follow_up, counts):
    empty = ok(cli("portal", "policies", "show", "--json"))
    assert empty == {"cancel_window_hours": 24, "policies": []}
    out = ok(cli("portal", "policies", "set", "--type", follow_up, "--daily-cap", "4", "--json"))
    assert [
        (p["type"], p["provider"], p["enabled"], p["lead_minutes"], p["horizon_days"], p["daily_cap"])
        for p in out["policies"]
    ] == [("Follow-up", None, True, 1440, 60, 4)]
    out = ok(
        cli(
            "portal",
            "policies",
            "set",
            "--type",
            follow_up,
            "--provider",
            "Okafor",
            "--no-new-patients",
            "--cancel-window",
            "12",
            "--json",
        )
    )
    assert out["cancel_window_hours"] == 12
    override = out["policies"][1]
    assert override["provider"] == "Liam Okafor" and override["new_patients_allowed"] is False
    assert override["lead_minutes"] is None  # inherits the type's
    header, rows = tsv(cli("portal", "policies", "show").stdout)
    assert [r[header.index("Provider")] for r in rows] == ["(every provider)", "Liam Okafor"]
    gone = ok(cli("portal", "policies", "clear", "--type", follow_up, "--provider", "Okafor", "--json"))
    assert gone["provider"] == "Liam Okafor"
    assert len(ok(cli("portal", "policies", "show", "--type", follow_up, "--json"))["policies"]) == 1
    before = counts(*TABLES)
    error_line(cli("portal", "policies", "clear", "--type", follow_up, "--provider", "Okafor"), 3, "--provider")
    assert counts(*TABLES) == before


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("--type", "Follow-up", "--lead-minutes", "-5"), 2, ["--lead-minutes", "0 to 43200"]),
        (("--type", "Follow-up", "--horizon-days", "0"), 2, ["--horizon-days", "1 to 366"]),
        (("--type", "Follow-up", "--daily-cap", "2000"), 2, ["--daily-cap", "0 to 1000"]),
        (("--type", "Follow-up", "--lead-minutes", "60", "--cancel-window", "999"), 2, ["--cancel-window", "0 to 336"]),
        (("--lead-minutes", "60"), 2, ["--type", "is required"]),
        (("--type", "Follow-up"), 2, ["nothing to change"]),
        (("--type", "Nope", "--enabled"), 3, ["--type", "'Nope'"]),
        (("--type", "Follow-up", "--provider", "Nobody", "--enabled"), 3, ["--provider", "'Nobody'"]),
    ],
)
def test_bad_values_write_nothing(cli, follow_up, counts, args, code, words):
    before = counts(*TABLES)
    error_line(cli("portal", "policies", "set", *args), code, *words)
    assert counts(*TABLES) == before


def test_a_value_that_is_no_number_is_a_usage_error(cli, follow_up, counts):
    before = counts(*TABLES)
    result = cli("portal", "policies", "set", "--type", follow_up, "--daily-cap", "lots")
    assert result.exit_code == 2
    assert "hpms: error: invalid value for '--daily-cap'" in result.stderr
    assert counts(*TABLES) == before


def test_only_an_admin_sets_policies(cli, follow_up, make_user, token_for, counts):
    make_user("desk", "front_desk")
    env = {"HPMS_USER": "desk", "HPMS_TOKEN": token_for("desk")}
    assert ok(cli("portal", "policies", "show", "--json", env=env))["policies"] == []
    before = counts("online_booking_policy")
    error_line(cli("portal", "policies", "set", "--type", follow_up, "--enabled", env=env), 5, "admin")
    assert counts("online_booking_policy") == before
