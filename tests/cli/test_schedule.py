"""`hpms schedule`: working hours, time off and holidays, a provider's week, the policy."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from tests.cli.helpers import error_line, iso_date, ok, tsv, with_denied

HOURS_KEYS = {
    "id",
    "provider_id",
    "provider",
    "location",
    "days",
    "start_time",
    "end_time",
    "effective_from",
    "effective_to",
    "rrule",
}
HOURS_HEADER = ["ID", "Provider", "Location", "Days", "Start", "End", "From", "To", "Rule"]
TIMEOFF_KEYS = {"id", "provider_id", "provider", "location", "starts", "ends", "reason"}
TIMEOFF_HEADER = ["ID", "Provider", "Location", "From", "To", "Reason"]
WEEK_HEADER = ["Date", "Day", "Location", "Hours", "Free", "Free min", "Booked", "Time off"]
DAY_KEYS = {
    "date",
    "weekday",
    "location",
    "tz",
    "hours",
    "time_off",
    "free",
    "free_min",
    "booked",
    "booked_min",
    "appointments",
}


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo("America/New_York")).date()


def monday(weeks_ahead: int = 2) -> dt.date:
    """The Monday of a week safely in the future."""
    t = today()
    return t - dt.timedelta(days=t.weekday()) + dt.timedelta(weeks=weeks_ahead)


def day(offset: int, weeks_ahead: int = 2) -> str:
    return (monday(weeks_ahead) + dt.timedelta(days=offset)).isoformat()


@pytest.fixture
def okafor(cli):
    return ok(
        cli("providers", "add", "--first-name", "Grace", "--last-name", "Okafor", "--credentials", "MD", "--json")
    )


@pytest.fixture
def hours(cli, okafor):
    return ok(
        cli("schedule", "hours", "set", "Okafor", "--days", "MO-FR", "--start", "08:00", "--end", "17:00", "--json")
    )


@pytest.fixture
def booked(cli, hours, patient, ctx_for):
    """One 20-minute follow-up (5 minutes buffer) with Okafor on Monday in two weeks at 10:00."""
    from hpms.services.scheduling import appointments

    ok(cli("appointment-types", "add", "--name", "Follow-up", "--duration", "20", "--buffer", "5"))
    with ctx_for() as ctx:
        out = appointments.book(ctx, patient=patient, provider="Okafor", type="Follow-up", at=f"{day(0)} 10:00")
    return out.booked[0].id


# ---- working hours -------------------------------------------------------------------------


def test_hours_set_and_list(cli, hours, okafor):
    assert len(hours) == 1
    rule = hours[0]
    assert set(rule) == HOURS_KEYS
    assert rule["provider_id"] == okafor["id"] and rule["provider"] == "Grace Okafor, MD"
    assert (rule["location"], rule["days"], rule["start_time"], rule["end_time"]) == (
        "Main",
        "MO,TU,WE,TH,FR",
        "08:00",
        "17:00",
    )
    assert iso_date(rule["effective_from"]) == today() and rule["effective_to"] is None and rule["rrule"] is None
    assert ok(cli("schedule", "hours", "list", "--json")) == hours
    assert ok(cli("schedule", "hours", "list", "--provider", "Okafor", "--location", "Main", "--json")) == hours

    r = cli("schedule", "hours", "list")
    assert r.exit_code == 0, r.stderr
    assert tsv(r.stdout) == (
        HOURS_HEADER,
        [
            [
                str(rule["id"]),
                "Grace Okafor, MD",
                "Main",
                "MO,TU,WE,TH,FR",
                "08:00",
                "17:00",
                today().isoformat(),
                "",
                "",
            ]
        ],
    )


def test_hours_set_plain_prints_the_rules_in_force(cli, okafor):
    r = cli(
        "schedule",
        "hours",
        "set",
        "Okafor",
        "--location",
        "main",
        "--days",
        "mon,wed",
        "--start",
        "9am",
        "--end",
        "1pm",
        "--from",
        day(0),
        "--to",
        day(13),
    )
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == HOURS_HEADER
    assert [row[3:8] for row in rows] == [["MO,WE", "09:00", "13:00", day(0), day(13)]]


def test_new_hours_end_the_old_ones_for_those_days(cli, hours):
    rules = ok(
        cli(
            "schedule",
            "hours",
            "set",
            "Okafor",
            "--days",
            "FR",
            "--start",
            "09:00",
            "--end",
            "12:00",
            "--from",
            day(0),
            "--json",
        )
    )
    got = sorted((r["days"], r["start_time"], r["end_time"], r["effective_from"], r["effective_to"]) for r in rules)
    assert got == sorted(
        [
            ("MO,TU,WE,TH,FR", "08:00", "17:00", today().isoformat(), day(-1)),
            ("MO,TU,WE,TH", "08:00", "17:00", day(0), None),
            ("FR", "09:00", "12:00", day(0), None),
        ]
    )
    on = ok(cli("schedule", "hours", "list", "--on", day(4), "--json"))
    assert sorted((r["days"], r["start_time"]) for r in on) == [("FR", "09:00"), ("MO,TU,WE,TH", "08:00")]
    # --add keeps what is there
    added = ok(
        cli(
            "schedule",
            "hours",
            "set",
            "Okafor",
            "--days",
            "FR",
            "--start",
            "13:00",
            "--end",
            "16:00",
            "--from",
            day(0),
            "--add",
            "--json",
        )
    )
    assert len(added) == 4


def test_every_other_friday_with_an_rrule(cli, okafor):
    rules = ok(
        cli(
            "schedule",
            "hours",
            "set",
            "Okafor",
            "--rrule",
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR",
            "--start",
            "08:00",
            "--end",
            "12:00",
            "--from",
            day(0),
            "--json",
        )
    )
    assert [(r["days"], r["rrule"]) for r in rules] == [("FR", "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR")]
    first = ok(cli("schedule", "show", "Okafor", "--week", day(0), "--json"))
    second = ok(cli("schedule", "show", "Okafor", "--week", day(7), "--json"))
    third = ok(cli("schedule", "show", "Okafor", "--week", day(14), "--json"))
    assert [d["weekday"] for d in first["days"] if d["hours"]] == ["Fri"]
    assert [d["hours"] for d in second["days"] if d["hours"]] == []
    assert [d["hours"] for d in third["days"] if d["hours"]] == [["08:00-12:00"]]


def test_hours_remove(cli, hours, counts):
    rule_id = hours[0]["id"]
    r = cli("schedule", "hours", "remove", str(rule_id))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "" and f"removed working hours {rule_id}" in r.stderr
    assert ok(cli("schedule", "hours", "list", "--json")) == []
    before = counts("working_hours", "audit_event")
    error_line(cli("schedule", "hours", "remove", str(rule_id)), 3, f"'{rule_id}'")
    error_line(cli("schedule", "hours", "remove", "abc"), 3, "'abc'")
    assert counts("working_hours", "audit_event") == before


def test_hours_remove_json(cli, hours):
    removed = ok(cli("schedule", "hours", "remove", str(hours[0]["id"]), "--json"))
    assert removed == hours[0]


BAD_HOURS = [
    (["Okafor", "--days", "MO-XX", "--start", "08:00", "--end", "17:00"], 2, ["--days", "'XX'"]),
    (["Okafor", "--start", "08:00", "--end", "17:00"], 2, ["--days"]),
    (["Okafor", "--days", "MO-FR", "--start", "17:00", "--end", "08:00"], 2, ["--end", "not after"]),
    (["Okafor", "--days", "MO-FR", "--start", "25:00", "--end", "26:00"], 2, ["--start", "'25:00'"]),
    (["Okafor", "--days", "MO-FR", "--start", "08:00", "--end", "17:00", "--from", "2026-02-30"], 2, ["--from"]),
    (
        [
            "Okafor",
            "--days",
            "MO-FR",
            "--start",
            "08:00",
            "--end",
            "17:00",
            "--from",
            "2030-01-10",
            "--to",
            "2030-01-09",
        ],
        2,
        ["--to", "before"],
    ),
    (["Okafor", "--rrule", "FREQ=SOMETIMES", "--start", "08:00", "--end", "12:00"], 2, ["--rrule", "FREQ=SOMETIMES"]),
    (["Okafor", "--rrule", "BYDAY=FR", "--start", "08:00", "--end", "12:00"], 2, ["--rrule", "FREQ="]),
    (["Nobody", "--days", "MO-FR", "--start", "08:00", "--end", "17:00"], 3, ["'Nobody'"]),
    (
        ["Okafor", "--location", "Nowhere", "--days", "MO-FR", "--start", "08:00", "--end", "17:00"],
        3,
        ["--location", "'Nowhere'"],
    ),
]


def test_bad_hours_write_nothing(cli, okafor, counts):
    for args, code, words in BAD_HOURS:
        before = counts("working_hours", "audit_event")
        r = cli("schedule", "hours", "set", *args)
        error_line(r, code, *words)
        assert r.stdout == ""
        assert counts("working_hours", "audit_event") == before


def test_hours_only_where_the_provider_works(cli, okafor, counts):
    ok(cli("locations", "add", "--name", "Lakeside", "--tz", "America/Chicago"))
    before = counts("working_hours", "audit_event")
    error_line(
        cli(
            "schedule",
            "hours",
            "set",
            "Okafor",
            "--location",
            "Lakeside",
            "--days",
            "MO",
            "--start",
            "8",
            "--end",
            "12",
        ),
        2,
        "--location",
        "does not work at Lakeside",
    )
    assert counts("working_hours", "audit_event") == before


def test_hours_list_filters_and_errors(cli, hours):
    error_line(cli("schedule", "hours", "list", "--provider", "Nobody"), 3, "--provider", "'Nobody'")
    error_line(cli("schedule", "hours", "list", "--location", "Nowhere"), 3, "--location", "'Nowhere'")
    error_line(cli("schedule", "hours", "list", "--on", "someday"), 2, "--on", "'someday'")
    assert ok(cli("schedule", "hours", "list", "--on", "2001-01-01", "--json")) == []


# ---- time off ------------------------------------------------------------------------------


def test_timeoff_add_list_remove(cli, hours):
    added = ok(
        cli(
            "schedule",
            "timeoff",
            "add",
            "--provider",
            "Okafor",
            "--from",
            day(1),
            "--to",
            day(2),
            "--reason",
            "conference",
            "--json",
        )
    )
    assert set(added) == {"time_off", "affected_appointments"}
    off = added["time_off"]
    assert set(off) == TIMEOFF_KEYS
    assert off["provider"] == "Grace Okafor, MD" and off["location"] is None and off["reason"] == "conference"
    assert off["starts"] == f"{day(1)}T00:00:00" and off["ends"] == f"{day(3)}T00:00:00"  # the whole last day
    assert added["affected_appointments"] == []

    assert ok(cli("schedule", "timeoff", "list", "--json")) == [off]
    assert ok(
        cli("schedule", "timeoff", "list", "--provider", "Okafor", "--from", day(0), "--to", day(1), "--json")
    ) == [off]
    assert ok(cli("schedule", "timeoff", "list", "--from", day(3), "--json")) == []

    r = cli("schedule", "timeoff", "list")
    assert r.exit_code == 0, r.stderr
    assert tsv(r.stdout) == (
        TIMEOFF_HEADER,
        [[str(off["id"]), "Grace Okafor, MD", "(all)", f"{day(1)} 00:00", f"{day(3)} 00:00", "conference"]],
    )

    r = cli("schedule", "timeoff", "remove", str(off["id"]))
    assert r.exit_code == 0, r.stderr
    assert f"removed time off {off['id']}" in r.stderr
    assert ok(cli("schedule", "timeoff", "list", "--json")) == []


def test_timeoff_plain_and_holiday_at_one_location(cli, okafor):
    r = cli(
        "schedule",
        "timeoff",
        "add",
        "--holiday",
        "--location",
        "Main",
        "--from",
        f"{day(3)} 12:00",
        "--to",
        f"{day(3)} 17:00",
        "--reason",
        "staff meeting",
    )
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "added time off" in r.stderr and "practice holiday" in r.stderr
    assert f"{day(3)} 12:00 to {day(3)} 17:00" in r.stderr
    header, rows = tsv(cli("schedule", "timeoff", "list").stdout)
    assert [row[1:] for row in rows] == [
        ["(practice holiday)", "Main", f"{day(3)} 12:00", f"{day(3)} 17:00", "staff meeting"]
    ]
    removed = ok(cli("schedule", "timeoff", "remove", rows[0][0], "--json"))
    assert removed["provider"] is None and removed["location"] == "Main"


def test_timeoff_warns_about_booked_appointments(cli, booked):
    r = cli("schedule", "timeoff", "add", "--provider", "Okafor", "--from", day(0), "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["affected_appointments"] == [booked]
    warning = [line for line in r.stderr.splitlines() if "warning" in line]
    assert warning == [
        f"hpms: warning: the time off overlaps 1 booked appointment(s): {booked}; "
        "they stay booked until moved or cancelled"
    ]

    plain = cli("schedule", "timeoff", "add", "--holiday", "--from", f"{day(0)} 10:15", "--to", f"{day(0)} 11:00")
    assert plain.exit_code == 0, plain.stderr
    assert plain.stdout == ""
    assert f"overlaps 1 booked appointment(s): {booked}" in plain.stderr
    # not the next day
    quiet = cli("schedule", "timeoff", "add", "--provider", "Okafor", "--from", day(1))
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr


BAD_TIMEOFF = [
    (["--from", "2030-01-10"], 2, ["--provider", "--holiday"]),
    (["--provider", "Okafor", "--holiday", "--from", "2030-01-10"], 2, ["--provider", "--holiday"]),
    (["--provider", "Okafor"], 2, ["--from"]),
    (["--provider", "Okafor", "--from", "2030-01-10", "--to", "2030-01-09"], 2, ["--to", "not after"]),
    (["--provider", "Okafor", "--from", "2030-01-10 14:00", "--to", "2030-01-10 09:00"], 2, ["--to"]),
    (["--provider", "Okafor", "--from", "2030-13-10"], 2, ["--from", "2030-13-10"]),
    (["--provider", "Nobody", "--from", "2030-01-10"], 3, ["--provider", "'Nobody'"]),
    (["--holiday", "--location", "Nowhere", "--from", "2030-01-10"], 3, ["--location", "'Nowhere'"]),
]


def test_bad_timeoff_writes_nothing(cli, okafor, counts):
    for args, code, words in BAD_TIMEOFF:
        before = counts("time_off", "audit_event")
        r = cli("schedule", "timeoff", "add", *args)
        error_line(r, code, *words)
        assert r.stdout == ""
        assert counts("time_off", "audit_event") == before


def test_timeoff_list_and_remove_errors(cli, okafor, counts):
    error_line(cli("schedule", "timeoff", "list", "--provider", "Nobody"), 3, "--provider", "'Nobody'")
    error_line(cli("schedule", "timeoff", "list", "--location", "Nowhere"), 3, "--location", "'Nowhere'")
    error_line(cli("schedule", "timeoff", "list", "--from", "soon"), 2, "--from", "'soon'")
    before = counts("time_off", "audit_event")
    error_line(cli("schedule", "timeoff", "remove", "999"), 3, "'999'")
    assert counts("time_off", "audit_event") == before


# ---- the week ------------------------------------------------------------------------------


def test_show_week_json(cli, booked):
    ok(cli("schedule", "timeoff", "add", "--holiday", "--from", day(1), "--reason", "Holiday"))
    ok(
        cli(
            "schedule", "timeoff", "add", "--provider", "Okafor", "--from", f"{day(2)} 12:00", "--to", f"{day(2)} 17:00"
        )
    )
    week = ok(cli("schedule", "show", "Okafor", "--week", day(3), "--json"))
    iso = monday().isocalendar()
    assert week["week"] == f"{iso[0]}-W{iso[1]:02d}"
    assert iso_date(week["from"]) == monday() and iso_date(week["to"]) == monday() + dt.timedelta(days=6)
    assert week["provider"] == "Grace Okafor, MD"
    days = week["days"]
    assert [d["weekday"] for d in days] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert set(days[0]) == DAY_KEYS
    mon, tue, wed, thu, _, sat, _ = days
    assert mon["hours"] == ["08:00-17:00"]
    assert mon["free"] == ["08:00-10:00", "10:25-17:00"]  # 20 minutes + 5 minutes buffer
    assert (mon["booked"], mon["booked_min"], mon["free_min"]) == (1, 20, 515)
    assert [(a["id"], a["type"], a["status"]) for a in mon["appointments"]] == [(booked, "Follow-up", "booked")]
    assert "patient" not in json.dumps(mon["appointments"])
    assert tue["free"] == [] and [t["reason"] for t in tue["time_off"]] == ["Holiday"]
    assert wed["free"] == ["08:00-12:00"]
    assert thu["free_min"] == 540 and sat["hours"] == []
    # the same week, named other ways
    assert ok(cli("schedule", "show", "Okafor", "--week", week["week"], "--json")) == week
    assert (
        ok(cli("schedule", "show", str(week["provider_id"]), "--week", day(0), "--location", "Main", "--json")) == week
    )


def test_show_week_plain(cli, booked):
    ok(cli("schedule", "timeoff", "add", "--holiday", "--from", day(1), "--reason", "Holiday"))
    r = cli("schedule", "show", "Okafor", "--week", day(0))
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == WEEK_HEADER
    assert len(rows) == 7
    assert rows[0] == [day(0), "Mon", "Main", "08:00-17:00", "08:00-10:00, 10:25-17:00", "515", "1", ""]
    assert rows[1] == [day(1), "Tue", "Main", "08:00-17:00", "", "0", "0", "Holiday"]
    assert rows[5] == [day(5), "Sat", "Main", "", "", "0", "0", ""]
    assert "Grace Okafor, MD" in r.stderr and day(0) in r.stderr


def test_show_this_and_next_week(cli, hours):
    this = ok(cli("schedule", "show", "Okafor", "--json"))
    nxt = ok(cli("schedule", "show", "Okafor", "--week", "next", "--json"))
    assert iso_date(this["from"]) == monday(0)
    assert iso_date(nxt["from"]) == monday(1)
    assert [d["hours"] for d in nxt["days"]][:5] == [["08:00-17:00"]] * 5


def test_show_errors(cli, okafor):
    ok(cli("locations", "add", "--name", "Lakeside", "--tz", "America/Chicago"))
    error_line(cli("schedule", "show", "Nobody"), 3, "'Nobody'")
    error_line(cli("schedule", "show", "Okafor", "--week", "someday"), 2, "--week", "'someday'")
    error_line(cli("schedule", "show", "Okafor", "--location", "Lakeside"), 2, "--location", "Lakeside")


# ---- policy --------------------------------------------------------------------------------


def test_policy_show_and_set(cli, counts):
    assert ok(cli("schedule", "policy", "--json")) == {"late_cancel_hours": 24, "slot_step_min": 15}
    r = cli("schedule", "policy")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == ["late_cancel_hours  24", "slot_step_min      15"]
    assert ok(cli("schedule", "policy", "--late-cancel-hours", "48", "--json")) == {
        "late_cancel_hours": 48,
        "slot_step_min": 15,
    }
    assert ok(cli("schedule", "policy", "--slot-step", "10", "--json")) == {
        "late_cancel_hours": 48,
        "slot_step_min": 10,
    }
    before = counts("audit_event")
    error_line(cli("schedule", "policy", "--slot-step", "7"), 2, "--slot-step")
    error_line(cli("schedule", "policy", "--late-cancel-hours", "many"), 2, "--late-cancel-hours", "'many'")
    error_line(cli("schedule", "policy", "--late-cancel-hours", "1000"), 2, "--late-cancel-hours")
    assert counts("audit_event") == before
    assert ok(cli("schedule", "policy", "--json")) == {"late_cancel_hours": 48, "slot_step_min": 10}


# ---- who may -------------------------------------------------------------------------------


def test_front_desk_sets_hours_and_time_off_not_policy(cli, okafor, as_user, counts):
    env = as_user("maria", "front_desk")
    rules = ok(
        cli("schedule", "hours", "set", "Okafor", "--days", "MO-FR", "--start", "8", "--end", "17", "--json", env=env)
    )
    assert len(rules) == 1
    ok(cli("schedule", "timeoff", "add", "--provider", "Okafor", "--from", day(0), "--json", env=env))
    assert ok(cli("schedule", "policy", "--json", env=env))["slot_step_min"] == 15
    before = counts("audit_event")
    error_line(cli("schedule", "policy", "--slot-step", "30", env=env), 5, "maria", "set up schedules")
    assert counts("audit_event") == with_denied(before)


def test_biller_may_read_not_change_the_schedule(cli, hours, as_user, counts):
    env = as_user("bill", "biller")
    assert len(ok(cli("schedule", "hours", "list", "--json", env=env))) == 1
    assert ok(cli("schedule", "show", "Okafor", "--json", env=env))["provider"] == "Grace Okafor, MD"
    before = counts("working_hours", "time_off", "audit_event")
    error_line(
        cli("schedule", "hours", "set", "Okafor", "--days", "SA", "--start", "8", "--end", "12", env=env),
        5,
        "bill",
        "change schedules",
    )
    error_line(cli("schedule", "hours", "remove", str(hours[0]["id"]), env=env), 5, "bill")
    error_line(cli("schedule", "timeoff", "add", "--holiday", "--from", day(0), env=env), 5, "bill")
    assert counts("working_hours", "time_off", "audit_event") == with_denied(before, 3)


def test_auditor_may_not_see_the_schedule(cli, hours, as_user):
    env = as_user("audrey", "auditor")
    error_line(cli("schedule", "show", "Okafor", env=env), 5, "audrey", "read schedules")


@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["sqlite"])
def test_schedule_subprocess(cli, okafor, hpms_proc):
    r = hpms_proc(
        "schedule", "hours", "set", "Okafor", "--days", "MO-FR", "--start", "08:00", "--end", "17:00", "--json"
    )
    assert r.exit_code == 0, r.stderr
    assert [rule["days"] for rule in json.loads(r.stdout)] == ["MO,TU,WE,TH,FR"]
    error_line(hpms_proc("schedule", "timeoff", "add", "--from", day(0)), 2, "--provider", "--holiday")
    week = hpms_proc("schedule", "show", "Okafor", "--week", day(0))
    assert week.exit_code == 0, week.stderr
    header, rows = tsv(week.stdout)
    assert header == WEEK_HEADER
    assert [row[3] for row in rows] == ["08:00-17:00"] * 5 + ["", ""]
