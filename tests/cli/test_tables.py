"""One contract for lists: local times to the minute in tables, `Z` times in JSON, MRNs, and
one `--limit` convention that says when it cut."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.cli.helpers import ok, tsv

NEW_YORK = ZoneInfo("America/New_York")  # the test practice's location


def test_json_datetimes_in_utc_end_in_z():
    from hpms.commands._common import to_jsonable

    at = dt.datetime(2026, 12, 7, 15, 4, 5, 123456, tzinfo=dt.UTC)
    assert to_jsonable({"at": at}) == {"at": "2026-12-07T15:04:05.123456Z"}
    local = dt.datetime(2026, 12, 7, 10, 4, tzinfo=NEW_YORK)
    assert to_jsonable(local) == "2026-12-07T10:04:00-05:00"  # a visit's local time keeps its offset
    assert to_jsonable(dt.datetime(2026, 12, 7, 10, 4)) == "2026-12-07T10:04:00"


def test_table_times_are_local_to_the_minute():
    from hpms.commands._common import local_minute

    assert local_minute("2026-07-01T16:30:59.999Z", "America/New_York") == "2026-07-01 12:30"
    assert local_minute("2026-12-01T16:30:00+00:00", "America/New_York") == "2026-12-01 11:30"
    assert local_minute(dt.datetime(2026, 12, 1, 16, 30, 12, tzinfo=dt.UTC), None) == "2026-12-01 16:30"
    assert local_minute("2026-12-01T09:00:00", "America/Chicago") == "2026-12-01 09:00"  # wall-clock already


def test_fee_list_shows_the_practice_time_and_json_keeps_utc(cli):
    ok(cli("fees", "set", "99213", "125", "--json"))
    stamp = ok(cli("fees", "list", "--json"))[0]["updated_at"]
    assert stamp.endswith("Z")
    header, rows = tsv(cli("fees", "list").stdout)
    local = dt.datetime.fromisoformat(stamp).astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M")
    assert rows[0][header.index("Updated")] == local


def test_waitlist_since_is_local_to_the_minute(cli, patient):
    ok(cli("appointment-types", "add", "--name", "Follow-up", "--duration", "20", "--json"))
    ok(cli("waitlist", "add", "--patient", patient, "--type", "Follow-up", "--json"))
    since = ok(cli("waitlist", "list", "--json"))[0]["created_at"]
    header, rows = tsv(cli("waitlist", "list").stdout)
    cell = rows[0][header.index("Waiting since")]
    assert cell == dt.datetime.fromisoformat(since).astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M")


def _register(cli, n: int) -> None:
    for i in range(n):
        ok(
            cli(
                "patients",
                "register",
                "--first-name",
                f"Ana{chr(97 + i)}",
                "--last-name",
                f"Lima{chr(97 + i)}",
                "--dob",
                f"19{70 + i}-01-02",
                "--json",
            )
        )


def test_a_cut_list_says_so_on_stderr_and_json_stays_clean(cli):
    _register(cli, 3)
    r = cli("patients", "list", "--limit", "2")
    assert r.exit_code == 0 and len(tsv(r.stdout)[1]) == 2
    assert r.stderr.strip() == "showing the first 2 patients; there may be more (--limit)"
    r = cli("patients", "list", "--limit", "2", "--json")
    assert r.exit_code == 0 and r.stderr == "" and len(ok(r)) == 2
    r = cli("patients", "list", "--limit", "5")
    assert r.exit_code == 0 and r.stderr == ""
    r = cli("patients", "search", "lima", "--limit", "1")
    assert r.stderr.strip() == "showing the first 1 patients; there may be more (--limit)"


def _limit_defaults() -> dict[str, object]:
    from typer.main import get_command

    from hpms.cli import app

    out: dict[str, object] = {}

    def walk(cmd, path: str) -> None:
        for p in cmd.params:
            if p.name == "limit":
                out[path] = p.default
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}")

    walk(get_command(app), "hpms")
    return out


def test_every_list_that_cuts_has_the_same_default_limit():
    defaults = _limit_defaults()
    assert {"hpms patients list", "hpms audit log", "hpms codes search", "hpms encounters list"} <= set(defaults)
    # `messages send --limit` and `hl7 send --limit` cap how many messages one run sends (all that
    # are due by default): no list
    senders = {"hpms messages send", "hpms hl7 send"}
    assert {path: d for path, d in defaults.items() if d != 50 and path not in senders} == {}


@pytest.mark.parametrize("args", [("codes", "search", "E11", "--limit", "3")])
def test_other_lists_say_they_cut(cli, args):
    r = cli(*args)
    assert r.exit_code == 0, r.stderr
    assert len(tsv(r.stdout)[1]) == 3
    assert r.stderr.strip() == "showing the first 3 codes; there may be more (--limit)"
