"""`hpms appointments`: book (single and series), reschedule, cancel, the visit lifecycle, the
day sheet, show, history, find-slot, ical, and every bad input with its exit code.

Providers, rooms, types and hours are set up through the services; the CLI runs on the real
clock, so visits are booked next year (and today, with --override, for the lifecycle)."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from tests.cli.helpers import error_line, iso_datetime, ok, tsv, with_denied

NY = ZoneInfo("America/New_York")
YEAR = dt.datetime.now(NY).year + 1


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    day = dt.date(year, month, 1)
    day += dt.timedelta(days=(weekday - day.weekday()) % 7)
    return day + dt.timedelta(weeks=n - 1)


MONDAY = _nth_weekday(YEAR, 6, 0, 1)  # a Monday in June next year (EDT, -04:00)
SPRING_FORWARD = _nth_weekday(YEAR, 3, 6, 2)  # 02:00-03:00 does not exist in New York
FALL_BACK = _nth_weekday(YEAR, 11, 6, 1)  # 01:00-02:00 happens twice
NPI = "1234567893"

APPOINTMENT_KEYS = {
    "id",
    "status",
    "start",
    "end",
    "duration_min",
    "patient_id",
    "patient",
    "mrn",
    "provider_id",
    "provider",
    "location_id",
    "location",
    "tz",
    "room_id",
    "room",
    "type_id",
    "type",
    "reason",
    "series_id",
    "series_index",
    "override",
    "late_cancel",
    "cancel_reason",
    "booked_at",
    "confirmed_at",
    "arrived_at",
    "roomed_at",
    "completed_at",
    "no_show_at",
    "cancelled_at",
    "version",
}
SHEET_HEADER = ["ID", "Time", "Until", "Location", "Provider", "Patient", "MRN", "Type", "Status", "Room"]
LIST_HEADER = SHEET_HEADER + ["Eligibility"]  # the day sheet adds the latest eligibility answer
WRITE_TABLES = ("appointment", "appointment_series", "audit_event")


def at(day: dt.date, hhmm: str) -> str:
    return f"{day.isoformat()} {hhmm}"


def setup_clinic(ctx_for, *, patients: int = 3) -> list[str]:
    """Dr Liam Okafor (MO-FR 08:00-17:00 at Main), Dr Sara Ito (the same), types 'Follow-up'
    (30 min) and 'New patient' (60 min + 10 buffer), rooms 'Exam 1' and 'Exam 2', and
    `patients` patients; returns their MRNs."""
    from hpms.services.people import patients as patient_service
    from hpms.services.scheduling import availability, resources

    with ctx_for() as ctx:
        resources.add_provider(ctx, first_name="Liam", last_name="Okafor", credentials="MD", npi=NPI)
        resources.add_provider(ctx, first_name="Sara", last_name="Ito", credentials="DO")
        resources.add_type(ctx, name="Follow-up", duration_min=30)
        resources.add_type(ctx, name="New patient", duration_min=60, buffer_min=10)
        resources.add_room(ctx, location="Main", name="Exam 1")
        resources.add_room(ctx, location="Main", name="Exam 2")
        for name in ("Okafor", "Ito"):
            availability.set_hours(ctx, name, days="MO-FR", start="08:00", end="17:00")
        mrns = [
            patient_service.register(
                ctx, first_name=f"Pat{i}", last_name="Tester", dob="1980-01-0" + str(i % 9 + 1)
            ).mrn
            for i in range(1, patients + 1)
        ]
    return mrns


@pytest.fixture
def clinic(ctx_for):
    return setup_clinic(ctx_for)


def book(cli, mrn, when, *extra, provider="Okafor", type_="Follow-up", env=None):
    return cli(
        "appointments", "book", "--patient", mrn, "--provider", provider, "--type", type_, "--at", when, *extra, env=env
    )


def book_json(cli, mrn, when, *extra, **kw):
    return ok(book(cli, mrn, when, *extra, "--json", **kw))


# ---- booking -------------------------------------------------------------------------------


def test_book_json(cli, clinic, counts):
    before = counts(*WRITE_TABLES)
    out = book_json(cli, clinic[0], at(MONDAY, "09:30"), "--reason", "knee pain", "--room", "Exam 2")
    assert set(out) == APPOINTMENT_KEYS
    assert out["status"] == "booked" and out["version"] == 1
    start = iso_datetime(out["start"])
    assert out["start"] == f"{MONDAY.isoformat()}T09:30:00-04:00"
    assert iso_datetime(out["end"]) - start == dt.timedelta(minutes=30) and out["duration_min"] == 30
    assert out["mrn"] == clinic[0] and out["patient"] == "Pat1 Tester"
    assert out["provider"] == "Liam Okafor, MD" and out["location"] == "Main" and out["tz"] == "America/New_York"
    assert out["type"] == "Follow-up" and out["room"] == "Exam 2" and out["reason"] == "knee pain"
    assert out["series_id"] is None and out["override"] is False
    iso_datetime(out["booked_at"])
    after = counts(*WRITE_TABLES)
    assert after["appointment"] == before["appointment"] + 1
    assert after["audit_event"] == before["audit_event"] + 1
    # provider by NPI and by id, type by id
    again = book_json(cli, clinic[1], at(MONDAY, "10:00"), provider=NPI)
    assert again["provider_id"] == out["provider_id"]
    third = book_json(cli, clinic[2], at(MONDAY, "10:30"), provider=str(out["provider_id"]), type_=str(out["type_id"]))
    assert third["type"] == "Follow-up"


def test_book_plain_prints_the_id(cli, clinic):
    r = book(cli, clinic[0], at(MONDAY, "09:30"))
    assert r.exit_code == 0, r.stderr
    appt_id = r.stdout.strip()
    assert r.stdout == f"{appt_id}\n" and appt_id.isdigit()
    assert f"booked appointment {appt_id}: {MONDAY} 09:30 EDT Follow-up with Liam Okafor, MD" in r.stderr
    assert clinic[0] in r.stderr


def test_series_with_one_collision_books_nothing_then_skips_it(cli, clinic, counts):
    taken = book_json(cli, clinic[1], at(MONDAY + dt.timedelta(weeks=2), "09:40"))
    before = counts(*WRITE_TABLES)
    args = ("--repeat", "FREQ=WEEKLY;COUNT=4")
    line = error_line(
        book(cli, clinic[0], at(MONDAY, "09:30"), *args),
        4,
        "1 of 4 occurrences",
        "nothing booked",
        f"#3 {MONDAY + dt.timedelta(weeks=2)} 09:30",
        f"appointment {taken['id']}",
        "--skip-conflicts",
    )
    assert "#1" not in line and "#2" not in line
    assert counts(*WRITE_TABLES) == before

    out = ok(book(cli, clinic[0], at(MONDAY, "09:30"), *args, "--skip-conflicts", "--json"))
    assert set(out) == {"series_id", "booked", "skipped"}
    assert isinstance(out["series_id"], int)
    assert [a["series_index"] for a in out["booked"]] == [1, 2, 4]
    assert [a["start"] for a in out["booked"]] == [
        f"{MONDAY + dt.timedelta(weeks=w)}T09:30:00-04:00" for w in (0, 1, 3)
    ]
    assert {a["series_id"] for a in out["booked"]} == {out["series_id"]}
    assert len(out["skipped"]) == 1
    skipped = out["skipped"][0]
    assert skipped["index"] == 3 and "already has appointment" in skipped["problem"]
    assert skipped["start"] == f"{MONDAY + dt.timedelta(weeks=2)}T09:30:00-04:00"
    after = counts(*WRITE_TABLES)
    assert after["appointment"] == before["appointment"] + 3
    assert after["appointment_series"] == before["appointment_series"] + 1


def test_series_plain_lists_skipped_on_stderr(cli, clinic):
    book_json(cli, clinic[1], at(MONDAY + dt.timedelta(weeks=1), "09:30"))
    r = book(cli, clinic[0], at(MONDAY, "09:30"), "--repeat", "FREQ=WEEKLY;COUNT=3", "--skip-conflicts")
    assert r.exit_code == 0, r.stderr
    ids = r.stdout.split()
    assert len(ids) == 2 and all(i.isdigit() for i in ids)
    assert f"skipped #2 {MONDAY + dt.timedelta(weeks=1)} 09:30: " in r.stderr
    assert "booked 2 visit(s) of series" in r.stderr and "1 skipped" in r.stderr


def test_series_in_one_go(cli, clinic):
    out = ok(book(cli, clinic[0], at(MONDAY, "08:00"), "--repeat", "RRULE:FREQ=DAILY;BYDAY=MO,WE,FR;COUNT=3", "--json"))
    assert [iso_datetime(a["start"]).date() for a in out["booked"]] == [
        MONDAY,
        MONDAY + dt.timedelta(days=2),
        MONDAY + dt.timedelta(days=4),
    ]
    assert out["skipped"] == []


def _spring_gap():
    return at(SPRING_FORWARD, "02:30")


def _fall_back():
    return at(FALL_BACK, "01:30")


@pytest.mark.parametrize(
    "case, code, words",
    [
        ("gap", 2, ("--at", "does not exist", "spring forward")),
        ("ambiguous", 2, ("--at", "happens twice", "-04:00", "-05:00")),
        ("not-a-time", 2, ("--at", "not a date and time")),
        ("no-at", 2, ("--at", "is required")),
        ("type", 3, ("--type", "Massage")),
        ("provider", 3, ("--provider", "Nobody")),
        ("room", 3, ("--room", "Exam 9")),
        ("patient", 3, ("--patient", "0999999")),
        ("rrule", 2, ("--repeat", "FREQ=SOMETIMES")),
        ("rrule-not", 2, ("--repeat", "not an RRULE")),
        ("rrule-endless", 2, ("--repeat", "COUNT= or UNTIL=")),
        ("past", 2, ("--at", "in the past")),
        ("outside-hours", 2, ("--at", "outside working hours", "--override")),
        ("weekend", 2, ("--at", "not working")),
        ("reason-too-long", 2, ("--reason",)),
    ],
)
def test_bad_input_writes_nothing(cli, clinic, counts, case, code, words):
    patient, provider, type_, when, extra = clinic[0], "Okafor", "Follow-up", at(MONDAY, "09:30"), []
    if case == "gap":
        when = _spring_gap()
    elif case == "ambiguous":
        when = _fall_back()
    elif case == "not-a-time":
        when = "next tuesday-ish"
    elif case == "no-at":
        when = ""
    elif case == "type":
        type_ = "Massage"
    elif case == "provider":
        provider = "Nobody"
    elif case == "room":
        extra = ["--room", "Exam 9"]
    elif case == "patient":
        patient = "0999999"
    elif case == "rrule":
        extra = ["--repeat", "FREQ=SOMETIMES;COUNT=3"]
    elif case == "rrule-not":
        extra = ["--repeat", "every tuesday"]
    elif case == "rrule-endless":
        extra = ["--repeat", "FREQ=WEEKLY"]
    elif case == "past":
        when = "2020-06-01 09:30"
    elif case == "outside-hours":
        when = at(MONDAY, "18:00")
    elif case == "weekend":
        when = at(MONDAY - dt.timedelta(days=1), "10:00")
    elif case == "reason-too-long":
        extra = ["--reason", "x" * 501]
    before = counts(*WRITE_TABLES)
    r = cli("appointments", "book", "--patient", patient, "--provider", provider, "--type", type_, "--at", when, *extra)
    error_line(r, code, *words)
    assert r.stdout == ""
    assert counts(*WRITE_TABLES) == before


def test_dst_ambiguous_time_with_an_offset_books(cli, clinic, ctx_for):
    from hpms.services.scheduling import availability

    with ctx_for() as ctx:  # Sunday night hours so the fall-back hour is working time
        availability.set_hours(ctx, "Okafor", days="SU", start="00:00", end="06:00", add=True)
    first = book_json(cli, clinic[0], f"{FALL_BACK}T01:30-04:00")
    second = book_json(cli, clinic[1], f"{FALL_BACK}T01:30-05:00")
    assert first["start"] == f"{FALL_BACK}T01:30:00-04:00"
    assert second["start"] == f"{FALL_BACK}T01:30:00-05:00"
    assert iso_datetime(second["start"]) - iso_datetime(first["start"]) == dt.timedelta(hours=1)
    # the wall time after the gap exists and is booked as typed
    after_gap = book_json(cli, clinic[2], at(SPRING_FORWARD, "03:00"))
    assert after_gap["start"] == f"{SPRING_FORWARD}T03:00:00-04:00"


def test_slot_taken_is_a_conflict(cli, clinic, counts):
    taken = book_json(cli, clinic[0], at(MONDAY, "09:30"))
    roomed = book_json(cli, clinic[2], at(MONDAY, "11:00"), "--room", "Exam 1")
    before = counts(*WRITE_TABLES)
    error_line(
        book(cli, clinic[1], at(MONDAY, "09:45")), 4, "--at", "already has appointment", str(taken["id"]), "find-slot"
    )
    # a room holds one visit at a time, whoever the provider
    error_line(
        book(cli, clinic[1], at(MONDAY, "11:15"), "--room", "Exam 1", provider="Ito"),
        4,
        "--at",
        "room 'Exam 1' is taken",
        str(roomed["id"]),
    )
    # the same patient cannot be in two places at once
    error_line(book(cli, clinic[0], at(MONDAY, "09:45"), provider="Ito"), 4, "the patient already has")
    assert counts(*WRITE_TABLES) == before


def test_override_outside_hours(cli, clinic, counts, as_user):
    out = book_json(cli, clinic[0], at(MONDAY, "18:00"), "--override")
    assert out["override"] is True
    env = as_user("maria", "front_desk")
    before = counts(*WRITE_TABLES)
    r = book(cli, clinic[1], at(MONDAY, "19:00"), "--override", env=env)
    error_line(r, 5, "maria", "book over the schedule's rules")
    assert counts(*WRITE_TABLES) == with_denied(before)
    # front desk books inside the hours without it
    assert book_json(cli, clinic[1], at(MONDAY, "09:00"), env=env)["override"] is False


def test_override_in_the_past(cli, clinic):
    out = book_json(cli, clinic[0], "2020-06-01 09:30", "--override")
    assert out["override"] is True and out["start"] == "2020-06-01T09:30:00-04:00"


def test_biller_cannot_book(cli, clinic, counts, as_user):
    env = as_user("bill", "biller")
    before = counts(*WRITE_TABLES)
    r = book(cli, clinic[0], at(MONDAY, "09:30"), env=env)
    error_line(r, 5, "bill", "book appointments")
    assert r.stdout == ""
    assert counts(*WRITE_TABLES) == with_denied(before)


# ---- reschedule and cancel -----------------------------------------------------------------


def test_reschedule(cli, clinic, counts):
    appt = book_json(cli, clinic[0], at(MONDAY, "09:30"))
    moved = ok(
        cli(
            "appointments",
            "reschedule",
            str(appt["id"]),
            "--at",
            at(MONDAY, "14:00"),
            "--provider",
            "Ito",
            "--expected-version",
            "1",
            "--json",
        )
    )
    assert moved["id"] == appt["id"] and moved["version"] == 2
    assert moved["start"] == f"{MONDAY}T14:00:00-04:00" and moved["provider"] == "Sara Ito, DO"
    r = cli("appointments", "reschedule", str(appt["id"]), "--at", at(MONDAY, "15:00"))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "" and f"moved appointment {appt['id']}: {MONDAY} 15:00 EDT" in r.stderr
    before = counts(*WRITE_TABLES)
    error_line(
        cli("appointments", "reschedule", str(appt["id"]), "--at", at(MONDAY, "16:00"), "--expected-version", "1"),
        4,
        "version",
    )
    error_line(cli("appointments", "reschedule", str(appt["id"]), "--at", _spring_gap()), 2, "--at", "does not exist")
    error_line(
        cli("appointments", "reschedule", str(appt["id"]), "--at", at(MONDAY, "20:00")),
        2,
        "--at",
        "outside working hours",
    )
    error_line(cli("appointments", "reschedule", "99999", "--at", at(MONDAY, "10:00")), 3, "99999")
    error_line(
        cli("appointments", "reschedule", str(appt["id"]), "--at", at(MONDAY, "10:00"), "--this-and-following"),
        2,
        "--this-and-following",
        "not part of a series",
    )
    assert counts(*WRITE_TABLES) == before


def test_reschedule_series_this_and_following(cli, clinic):
    series = ok(book(cli, clinic[0], at(MONDAY, "09:00"), "--repeat", "FREQ=WEEKLY;COUNT=3", "--json"))
    second = series["booked"][1]
    moved = ok(
        cli(
            "appointments",
            "reschedule",
            str(second["id"]),
            "--at",
            at(MONDAY + dt.timedelta(weeks=1), "11:00"),
            "--this-and-following",
            "--json",
        )
    )
    assert [m["start"] for m in moved] == [f"{MONDAY + dt.timedelta(weeks=w)}T11:00:00-04:00" for w in (1, 2)]
    assert ok(cli("appointments", "show", str(series["booked"][0]["id"]), "--json"))["start"].endswith(
        "T09:00:00-04:00"
    )


def test_cancel_late_and_series(cli, clinic, counts):
    appt = book_json(cli, clinic[0], at(MONDAY, "09:30"))
    before = counts(*WRITE_TABLES)
    error_line(cli("appointments", "cancel", str(appt["id"])), 2, "--reason", "required")
    assert counts(*WRITE_TABLES) == before
    out = ok(cli("appointments", "cancel", str(appt["id"]), "--reason", "patient called", "--late", "--json"))
    assert out["status"] == "cancelled" and out["late_cancel"] is True
    assert out["cancel_reason"] == "patient called" and out["version"] == 2
    iso_datetime(out["cancelled_at"])
    assert counts("freed_slot")["freed_slot"] == 1
    error_line(cli("appointments", "cancel", str(appt["id"]), "--reason", "again"), 4, "cancelled")
    # far ahead and not --late: not a late cancellation; plain output
    other = book_json(cli, clinic[1], at(MONDAY, "11:00"))
    r = cli("appointments", "cancel", str(other["id"]), "--reason", "moved away")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "" and f"cancelled appointment {other['id']}" in r.stderr and "late" not in r.stderr
    assert ok(cli("appointments", "show", str(other["id"]), "--json"))["late_cancel"] is False
    # the slot is free again
    assert book_json(cli, clinic[2], at(MONDAY, "09:30"))["status"] == "booked"


def test_cancel_this_and_following(cli, clinic):
    series = ok(book(cli, clinic[0], at(MONDAY, "09:00"), "--repeat", "FREQ=WEEKLY;COUNT=4", "--json"))
    out = ok(
        cli(
            "appointments",
            "cancel",
            str(series["booked"][2]["id"]),
            "--reason",
            "course ended",
            "--this-and-following",
            "--json",
        )
    )
    assert [a["series_index"] for a in out] == [3, 4]
    assert {a["status"] for a in out} == {"cancelled"}
    listed = ok(
        cli(
            "appointments",
            "list",
            "--from",
            MONDAY.isoformat(),
            "--to",
            (MONDAY + dt.timedelta(weeks=4)).isoformat(),
            "--json",
        )
    )
    assert [a["series_index"] for a in listed] == [1, 2]


# ---- the visit lifecycle -------------------------------------------------------------------


def book_today(cli, mrn):
    """A visit early this morning (in the past, outside hours: the admin overrides)."""
    return book_json(cli, mrn, "today 00:00", "--override")


def test_lifecycle_confirm_checkin_room_complete(cli, clinic):
    appt = book_today(cli, clinic[0])
    aid = str(appt["id"])
    confirmed = ok(cli("appointments", "confirm", aid, "--json"))
    assert confirmed["status"] == "confirmed" and confirmed["version"] == 2
    iso_datetime(confirmed["confirmed_at"])
    arrived = ok(cli("appointments", "checkin", aid, "--expected-version", "2", "--json"))
    assert arrived["status"] == "arrived"
    iso_datetime(arrived["arrived_at"])
    roomed = ok(cli("appointments", "room", aid, "--room", "Exam 2", "--json"))
    assert roomed["status"] == "in_room" and roomed["room"] == "Exam 2"
    iso_datetime(roomed["roomed_at"])
    done = ok(cli("appointments", "complete", aid, "--json"))
    assert done["status"] == "completed" and done["version"] == 5
    assert iso_datetime(done["completed_at"]) >= iso_datetime(done["arrived_at"])
    error_line(cli("appointments", "checkin", aid), 4, f"appointment {aid} is completed")


def test_lifecycle_plain(cli, clinic):
    aid = str(book_today(cli, clinic[0])["id"])
    for args, words in (
        (("confirm", aid), "confirmed"),
        (("checkin", aid), "checked in"),
        (("room", aid, "--room", "Exam 1"), "roomed (room Exam 1)"),
        (("complete", aid), "completed"),
    ):
        r = cli("appointments", *args)
        assert r.exit_code == 0, r.stderr
        assert r.stdout == "" and f"appointment {aid} {words}" in r.stderr


def test_noshow(cli, clinic):
    aid = str(book_today(cli, clinic[0])["id"])
    r = cli("appointments", "noshow", aid)
    assert r.exit_code == 0, r.stderr
    assert f"appointment {aid} marked no-show" in r.stderr
    shown = ok(cli("appointments", "show", aid, "--json"))
    assert shown["status"] == "no_show"
    iso_datetime(shown["no_show_at"])
    # a no-show frees the time for another booking
    assert book_json(cli, clinic[1], "today 00:00", "--override")["status"] == "booked"


def test_noshow_before_the_visit_is_refused(cli, clinic, counts):
    aid = str(book_json(cli, clinic[0], at(MONDAY, "09:30"))["id"])
    before = counts(*WRITE_TABLES)
    error_line(cli("appointments", "noshow", aid), 4, "not started")
    assert counts(*WRITE_TABLES) == before


def test_checkin_of_a_cancelled_visit_is_a_conflict(cli, clinic, counts, raw_sql):
    aid = str(book_today(cli, clinic[0])["id"])
    ok(cli("appointments", "cancel", aid, "--reason", "sick"))
    before = counts(*WRITE_TABLES)
    r = cli("appointments", "checkin", aid)
    error_line(r, 4, f"appointment {aid} is cancelled", "cannot be checked in")
    assert r.stdout == ""
    assert counts(*WRITE_TABLES) == before
    assert raw_sql(f"SELECT status, arrived_at FROM appointment WHERE id = {aid}")[0] == ("cancelled", None)


@pytest.mark.parametrize(
    "args, code, words",
    [
        (("checkin", "{future}"), 2, ("not today",)),
        (("complete", "{future}"), 4, ("booked", "cannot be completed")),
        (("room", "{future}", "--room", "Exam 1"), 4, ("cannot be roomed",)),
        (("confirm", "{future}", "--expected-version", "3"), 4, ("version 1, expected 3",)),
        (("confirm", "4711"), 3, ("4711",)),
        (("confirm", "abc"), 3, ("'abc'",)),
    ],
)
def test_bad_transitions_write_nothing(cli, clinic, counts, args, code, words):
    future = str(book_json(cli, clinic[0], at(MONDAY, "09:30"))["id"])
    before = counts(*WRITE_TABLES)
    error_line(cli("appointments", *(a.format(future=future) for a in args)), code, *words)
    assert counts(*WRITE_TABLES) == before


def test_room_needs_a_known_room(cli, clinic, counts):
    aid = str(book_today(cli, clinic[0])["id"])
    ok(cli("appointments", "checkin", aid))
    before = counts(*WRITE_TABLES)
    error_line(cli("appointments", "room", aid), 2, "--room", "required")
    error_line(cli("appointments", "room", aid, "--room", "Closet"), 3, "--room", "Closet")
    assert counts(*WRITE_TABLES) == before


# ---- reading -------------------------------------------------------------------------------


def test_list_day_sheet(cli, clinic):
    a = book_json(cli, clinic[0], at(MONDAY, "09:30"), "--room", "Exam 1")
    b = book_json(cli, clinic[1], at(MONDAY, "08:00"), provider="Ito", type_="New patient")
    c = book_json(cli, clinic[2], at(MONDAY + dt.timedelta(days=1), "10:00"))
    day = ok(cli("appointments", "list", "--date", MONDAY.isoformat(), "--json"))
    assert [x["id"] for x in day] == [b["id"], a["id"]]
    assert set(day[0]) == APPOINTMENT_KEYS | {"eligibility"} and day[0]["eligibility"] == "not checked"
    r = cli("appointments", "list", "--date", MONDAY.isoformat())
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == LIST_HEADER
    assert rows == [
        [
            str(b["id"]),
            "08:00",
            "09:00",
            "Main",
            "Sara Ito, DO",
            "Pat2 Tester",
            clinic[1],
            "New patient",
            "booked",
            "",
            "not checked",
        ],
        [
            str(a["id"]),
            "09:30",
            "10:00",
            "Main",
            "Liam Okafor, MD",
            "Pat1 Tester",
            clinic[0],
            "Follow-up",
            "booked",
            "Exam 1",
            "not checked",
        ],
    ]
    week = ok(cli("appointments", "list", "--date", (MONDAY + dt.timedelta(days=3)).isoformat(), "--week", "--json"))
    assert [x["id"] for x in week] == [b["id"], a["id"], c["id"]]
    r = cli("appointments", "list", "--date", MONDAY.isoformat(), "--week", "--provider", "Okafor")
    _, rows = tsv(r.stdout)
    assert [row[1] for row in rows] == [f"{MONDAY} 09:30", f"{MONDAY + dt.timedelta(days=1)} 10:00"]
    ranged = ok(
        cli(
            "appointments",
            "list",
            "--from",
            MONDAY.isoformat(),
            "--to",
            (MONDAY + dt.timedelta(days=1)).isoformat(),
            "--patient",
            clinic[2],
            "--json",
        )
    )
    assert [x["id"] for x in ranged] == [c["id"]]
    ok(cli("appointments", "confirm", str(a["id"])))
    ok(cli("appointments", "cancel", str(b["id"]), "--reason", "rain"))
    only = ok(cli("appointments", "list", "--date", MONDAY.isoformat(), "--status", "confirmed,booked", "--json"))
    assert [x["id"] for x in only] == [a["id"]]
    assert [x["id"] for x in ok(cli("appointments", "list", "--date", MONDAY.isoformat(), "--json"))] == [a["id"]]
    every = ok(cli("appointments", "list", "--date", MONDAY.isoformat(), "--all", "--json"))
    assert [(x["id"], x["status"]) for x in every] == [(b["id"], "cancelled"), (a["id"], "confirmed")]
    assert (
        ok(
            cli(
                "appointments",
                "list",
                "--date",
                MONDAY.isoformat(),
                "--status",
                "cancelled",
                "--location",
                "Main",
                "--json",
            )
        )[0]["id"]
        == b["id"]
    )


def test_list_empty_today_plain_has_the_header(cli, clinic):
    r = cli("appointments", "list")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "\t".join(LIST_HEADER) + "\n"
    assert ok(cli("appointments", "list", "--date", "tomorrow", "--json")) == []


@pytest.mark.parametrize(
    "args, code, words",
    [
        (("--status", "waiting"), 2, ("--status", "waiting")),
        (("--date", "2026-02-30"), 2, ("--date", "2026-02-30")),
        (("--from", "2026-12-10", "--to", "2026-12-01"), 2, ("--to", "before the start of the range")),
        (("--provider", "Nobody"), 3, ("--provider", "Nobody")),
        (("--patient", "0999999"), 3, ("--patient",)),
        (("--location", "Elsewhere"), 3, ("Elsewhere",)),
    ],
)
def test_list_bad_input(cli, clinic, args, code, words):
    error_line(cli("appointments", "list", *args), code, *words)


def test_show_and_history(cli, clinic):
    first = book_json(cli, clinic[0], at(MONDAY, "09:30"))
    second = book_json(cli, clinic[0], at(MONDAY + dt.timedelta(days=7), "09:30"))
    ok(cli("appointments", "cancel", str(first["id"]), "--reason", "moved"))
    shown = ok(cli("appointments", "show", str(second["id"]), "--json"))
    assert shown == second
    r = cli("appointments", "show", str(second["id"]))
    assert r.exit_code == 0, r.stderr
    fields = dict(line.split(None, 1) for line in r.stdout.splitlines() if len(line.split(None, 1)) == 2)
    assert [line.split()[0] for line in r.stdout.splitlines()] == list(second)
    assert fields["status"] == "booked" and fields["mrn"] == clinic[0]
    assert fields["start"] == f"{MONDAY + dt.timedelta(days=7)}T09:30:00-04:00"
    hist = ok(cli("appointments", "history", "--patient", clinic[0], "--json"))
    assert [(h["id"], h["status"]) for h in hist] == [(second["id"], "booked"), (first["id"], "cancelled")]
    r = cli("appointments", "history", "--patient", clinic[0])
    header, rows = tsv(r.stdout)
    assert header == SHEET_HEADER and [row[1] for row in rows] == [
        f"{MONDAY + dt.timedelta(days=7)} 09:30",
        f"{MONDAY} 09:30",
    ]
    error_line(cli("appointments", "show", "424242"), 3, "424242")
    error_line(cli("appointments", "history"), 2, "--patient", "required")
    error_line(cli("appointments", "history", "--patient", "0999999"), 3, "--patient")


def test_reads_are_audited(cli, clinic, raw_sql):
    appt = book_json(cli, clinic[0], at(MONDAY, "09:30"))
    ok(cli("appointments", "show", str(appt["id"]), "--json"))
    last = raw_sql("SELECT action, entity, entity_id, patient_id FROM audit_event ORDER BY seq DESC LIMIT 1")[0]
    assert tuple(last) == ("read", "appointment", str(appt["id"]), appt["patient_id"])
    ok(cli("appointments", "list", "--date", MONDAY.isoformat(), "--json"))
    last = raw_sql("SELECT action, entity, patient_ids FROM audit_event ORDER BY seq DESC LIMIT 1")[0]
    assert tuple(last[:2]) == ("read", "appointment") and json.loads(last[2]) == [appt["patient_id"]]


# ---- find-slot -----------------------------------------------------------------------------


def test_find_slot(cli, clinic, counts):
    book_json(cli, clinic[0], at(MONDAY, "08:00"))
    slots = ok(
        cli(
            "appointments",
            "find-slot",
            "--type",
            "Follow-up",
            "--provider",
            "Okafor",
            "--after",
            at(MONDAY, "07:00"),
            "--count",
            "3",
            "--json",
        )
    )
    assert [s["start"] for s in slots] == [f"{MONDAY}T{t}:00-04:00" for t in ("08:30", "08:45", "09:00")]
    assert set(slots[0]) == {"start", "end", "provider_id", "provider", "location_id", "location", "room_id", "room"}
    assert slots[0]["provider"] == "Liam Okafor, MD" and slots[0]["location"] == "Main"
    assert iso_datetime(slots[0]["end"]) - iso_datetime(slots[0]["start"]) == dt.timedelta(minutes=30)
    # any provider: Ito is free at 08:00 and comes first
    anyone = ok(
        cli(
            "appointments",
            "find-slot",
            "--type",
            "Follow-up",
            "--any-provider",
            "--after",
            at(MONDAY, "08:00"),
            "--count",
            "2",
            "--json",
        )
    )
    assert anyone[0]["start"] == f"{MONDAY}T08:00:00-04:00" and anyone[0]["provider"] == "Sara Ito, DO"
    r = cli(
        "appointments",
        "find-slot",
        "--type",
        "Follow-up",
        "--provider",
        "Okafor",
        "--after",
        at(MONDAY, "07:00"),
        "--count",
        "1",
    )
    assert r.exit_code == 0, r.stderr
    header, rows = tsv(r.stdout)
    assert header == ["Start", "End", "Provider", "Location", "Room"]
    assert rows[0][0] == f"{MONDAY} 08:30" and rows[0][2] == "Liam Okafor, MD"
    # a slot found can be booked
    before = counts("appointment")["appointment"]
    book_json(cli, clinic[1], at(MONDAY, "08:30"))
    assert counts("appointment")["appointment"] == before + 1


@pytest.mark.parametrize(
    "args, code, words",
    [
        (("--type", "Follow-up", "--after", "{d} 12:00", "--before", "{d} 09:00"), 2, ("--before", "not after")),
        (("--type", "Follow-up", "--provider", "Okafor", "--any-provider"), 2, ("--any-provider",)),
        (("--type", "Massage"), 3, ("--type", "Massage")),
        (("--type", "Follow-up", "--provider", "Nobody"), 3, ("--provider", "Nobody")),
        (("--type", "Follow-up", "--count", "0"), 2, ("--count",)),
        (("--type", "Follow-up", "--after", "{d} 25:00"), 2, ("--after",)),
        (("--type", "Follow-up", "--after", "{gap}"), 2, ("--after", "does not exist")),
        ((), 2, ("--type", "required")),
    ],
)
def test_find_slot_bad_input(cli, clinic, counts, args, code, words):
    before = counts(*WRITE_TABLES)
    r = cli("appointments", "find-slot", *(a.format(d=MONDAY, gap=_spring_gap()) for a in args))
    error_line(r, code, *words)
    assert r.stdout == ""
    assert counts(*WRITE_TABLES) == before


# ---- ical ----------------------------------------------------------------------------------


def test_ical_stdout_and_file(cli, clinic, tmp_path, raw_sql):
    a = book_json(cli, clinic[0], at(MONDAY, "09:30"))
    book_json(cli, clinic[1], at(MONDAY, "10:00"), provider="Ito")
    r = cli("appointments", "ical", "--provider", "Okafor", "--from", MONDAY.isoformat(), "--to", MONDAY.isoformat())
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("BEGIN:VCALENDAR")
    assert r.stdout.count("BEGIN:VEVENT") == 1
    assert f"UID:appointment-{a['id']}@hpms" in r.stdout
    assert "Pat1" not in r.stdout and "SUMMARY:Follow-up" in r.stdout
    seq_before = raw_sql("SELECT max(seq) FROM audit_event")[0][0]

    target = tmp_path / "cal" / "okafor.ics"
    target.parent.mkdir()
    target.write_text("old contents")
    target.chmod(0o640)
    r = cli(
        "appointments",
        "ical",
        "--provider",
        "Okafor",
        "--from",
        MONDAY.isoformat(),
        "--to",
        MONDAY.isoformat(),
        "-o",
        str(target),
        "--with-names",
    )
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "" and f"wrote 1 event(s) to {target}" in r.stderr
    text = target.read_text()
    assert text.startswith("BEGIN:VCALENDAR") and "SUMMARY:Follow-up: Pat1 Tester" in text
    assert sorted(p.name for p in target.parent.iterdir()) == ["okafor.ics"]  # no temp file left
    assert target.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its mode
    # the names were a read of that patient
    assert raw_sql("SELECT max(seq) FROM audit_event")[0][0] == seq_before + 1

    summary = ok(
        cli(
            "appointments",
            "ical",
            "--provider",
            "Okafor",
            "--from",
            MONDAY.isoformat(),
            "--to",
            MONDAY.isoformat(),
            "-o",
            str(target),
            "--json",
        )
    )
    assert summary == {"path": str(target), "events": 1, "bytes": len(target.read_bytes())}
    assert "Pat1" not in target.read_text()
    fresh = tmp_path / "cal" / "new.ics"
    ok(cli("appointments", "ical", "--provider", "Okafor", "-o", str(fresh)))
    assert fresh.stat().st_mode & 0o777 == 0o600 and fresh.read_text().startswith("BEGIN:VCALENDAR")
    inline = ok(
        cli(
            "appointments",
            "ical",
            "--provider",
            "Ito",
            "--from",
            MONDAY.isoformat(),
            "--to",
            MONDAY.isoformat(),
            "--json",
        )
    )
    assert inline["path"] is None and inline["events"] == 1 and inline["ical"].startswith("BEGIN:VCALENDAR")


def test_ical_bad_input(cli, clinic, tmp_path):
    error_line(cli("appointments", "ical", "--provider", "Nobody"), 3, "--provider")
    error_line(
        cli("appointments", "ical", "--provider", "Okafor", "--from", "2027-05-02", "--to", "2027-05-01"), 2, "--to"
    )
    missing = tmp_path / "no-such-dir" / "x.ics"
    error_line(cli("appointments", "ical", "--provider", "Okafor", "-o", str(missing)), 2, "--output", "no-such-dir")
    assert not missing.parent.exists()


# ---- a real process ------------------------------------------------------------------------


@pytest.mark.subprocess
def test_appointments_subprocess(hpms_proc, clinic):
    r = hpms_proc(
        "appointments",
        "book",
        "--patient",
        clinic[0],
        "--provider",
        "Okafor",
        "--type",
        "Follow-up",
        "--at",
        at(MONDAY, "09:30"),
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    appt = json.loads(r.stdout)
    assert appt["start"] == f"{MONDAY}T09:30:00-04:00"
    r = hpms_proc(
        "appointments",
        "book",
        "--patient",
        clinic[1],
        "--provider",
        "Okafor",
        "--type",
        "Follow-up",
        "--at",
        at(MONDAY, "09:30"),
    )
    error_line(r, 4, "already has appointment")
    r = hpms_proc("appointments", "list", "--date", MONDAY.isoformat())
    assert r.exit_code == 0, r.stderr
    _, rows = tsv(r.stdout)
    assert [row[0] for row in rows] == [str(appt["id"])]
    r = hpms_proc(
        "appointments", "ical", "--provider", "Okafor", "--from", MONDAY.isoformat(), "--to", MONDAY.isoformat()
    )
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("BEGIN:VCALENDAR") and r.stdout.count("BEGIN:VEVENT") == 1
    assert r.stdout.rstrip().endswith("END:VCALENDAR")
