"""Providers, rooms, types, working hours (across changes of clocks) and time off."""

from __future__ import annotations

import datetime as dt

import pytest

from hpms.errors import ConflictError, ExitCode, NotFoundError, ValidationError
from hpms.services import lookups
from tests.services.conftest import fixed_clock
from tests.services.helpers import audit_rows, last_seq, query
from tests.services.sched import (
    BERLIN,
    JAN,
    LA,
    NPI_A,
    NPI_B,
    NPI_C,
    NY,
    clinic,
    clock,
    hm,
    open_utc,
    provider,
    utc,
)

D = dt.date


# ---- providers -----------------------------------------------------------------------------


def test_add_provider_with_every_field(settings, ctx_for, make_user):
    from hpms.services.scheduling import resources

    make_user("ada", "provider")
    with ctx_for(clock=fixed_clock) as ctx:
        p = resources.add_provider(
            ctx,
            first_name=" Ada ",
            last_name="Lovelace",
            credentials="MD",
            npi=NPI_A,
            taxonomy="207q00000x",
            color="#00AA88",
            username="ada",
        )
    assert (p.first_name, p.last_name, p.name) == ("Ada", "Lovelace", "Ada Lovelace, MD")
    assert (p.npi, p.taxonomy, p.color, p.username) == (NPI_A, "207Q00000X", "#00aa88", "ada")
    assert p.locations == ["Main"] and p.active and p.version == 1
    ev = [r for r in audit_rows(settings) if r["entity"] == "provider"]
    assert [(e["action"], e["entity_id"]) for e in ev] == [("create", str(p.id))]


@pytest.mark.parametrize("npi", ["1234567890", "123456789", "12345678931", "abcdefghij", "1234567894"])
def test_npi_check_digit_is_luhn_with_prefix_80840(settings, ctx_for, npi):
    from hpms.services.scheduling import resources

    with pytest.raises(ValidationError) as err:
        with ctx_for() as ctx:
            resources.add_provider(ctx, first_name="Ada", last_name="Lovelace", npi=npi)
    assert err.value.field == "npi"
    assert err.value.exit_code == ExitCode.USAGE
    assert query(settings, "SELECT count(*) AS n FROM provider") == [{"n": 0}]


def test_duplicate_npi_is_a_conflict(settings, ctx_for):
    from hpms.services.scheduling import resources

    with ctx_for() as ctx:
        a = provider(ctx, npi=NPI_A)
        b = provider(ctx, first="Ben", last="Byron", npi=NPI_B)
    with pytest.raises(ConflictError) as err:
        with ctx_for() as ctx:
            provider(ctx, first="Cy", last="Clark", npi=NPI_A)
    assert err.value.exit_code == ExitCode.CONFLICT and NPI_A in err.value.message
    with pytest.raises(ConflictError):
        with ctx_for() as ctx:
            resources.update_provider(ctx, b.id, npi=NPI_A)
    with ctx_for() as ctx:  # its own NPI again is not a clash
        assert resources.update_provider(ctx, a.id, npi=NPI_A).version == 2


def test_provider_lookup_by_id_npi_and_name(settings, ctx_for):

    with ctx_for() as ctx:
        ada = provider(ctx, "Ada", "Lovelace", NPI_A)
        ben = provider(ctx, "Ben", "Lovelace", NPI_B)
        cy = provider(ctx, "Cy", "Zuse", NPI_C, credentials="DO")
    with ctx_for() as ctx:
        assert lookups.find_provider(ctx, ada.id).id == ada.id
        assert lookups.find_provider(ctx, str(ben.id)).id == ben.id
        assert lookups.find_provider(ctx, NPI_C).id == cy.id
        assert lookups.find_provider(ctx, "zuse").id == cy.id
        assert lookups.find_provider(ctx, "Dr. Cy Zuse").id == cy.id
        assert lookups.find_provider(ctx, "Ben LOVELACE").id == ben.id
        with pytest.raises(ValidationError) as err:
            lookups.find_provider(ctx, "Lovelace")
        assert err.value.field == "provider"
        assert f"ids {ada.id}, {ben.id}" in err.value.message
        with pytest.raises(NotFoundError):
            lookups.find_provider(ctx, "Hopper")
        with pytest.raises(NotFoundError):
            lookups.find_provider(ctx, "9999")
        with pytest.raises(NotFoundError):
            lookups.find_provider(ctx, NPI_A[:-1] + "0")


@pytest.mark.parametrize("tax", ["207Q0000X", "207Q00000Y", "X07Q00000X", "207Q00000XX"])
def test_taxonomy_format(settings, ctx_for, tax):
    with pytest.raises(ValidationError) as err:
        with ctx_for() as ctx:
            provider(ctx, taxonomy=tax)
    assert err.value.field == "taxonomy"


def test_provider_locations(settings, ctx_for):
    from hpms.services.platform import org
    from hpms.services.scheduling import resources

    with ctx_for() as ctx:
        org.add_location(ctx, name="West", tz=LA)
    with pytest.raises(ValidationError) as err:
        with ctx_for() as ctx:
            provider(ctx)
    assert err.value.field == "location" and "several locations" in err.value.message
    with pytest.raises(NotFoundError):
        with ctx_for() as ctx:
            provider(ctx, locations=["Nowhere"])
    with ctx_for() as ctx:
        p = provider(ctx, locations=["west", "Main", "West"])
        assert p.locations == ["Main", "West"]
        assert resources.update_provider(ctx, p.id, locations=["West"]).locations == ["West"]
        assert [x.name for x in resources.list_providers(ctx, location="Main")] == []
        assert [x.id for x in resources.list_providers(ctx, location="West")] == [p.id]
        resources.update_provider(ctx, p.id, active=False)
        assert resources.list_providers(ctx) == []
        assert [x.active for x in resources.list_providers(ctx, include_inactive=True)] == [False]


def test_rooms_and_types(settings, ctx_for):
    from hpms.services.scheduling import resources

    with ctx_for() as ctx:
        r = resources.add_room(ctx, location="Main", name="Exam 1")
        t = resources.add_type(
            ctx, name="Annual", duration_min="45", buffer_min=10, default_code="99396", needs_room=True
        )
    assert (r.location, r.name, r.kind) == ("Main", "Exam 1", "exam")
    assert (t.duration_min, t.buffer_min, t.default_code, t.needs_room) == (45, 10, "99396", True)
    with pytest.raises(ConflictError):
        with ctx_for() as ctx:
            resources.add_room(ctx, location="Main", name="exam 1")
    with pytest.raises(ConflictError):
        with ctx_for() as ctx:
            resources.add_type(ctx, name="ANNUAL", duration_min=30)
    for kw, field in (
        (dict(duration_min=4), "duration"),
        (dict(duration_min=481), "duration"),
        (dict(duration_min=30, buffer_min=121), "buffer"),
        (dict(duration_min=30, default_code="9921"), "code"),
    ):
        with pytest.raises(ValidationError) as err:
            with ctx_for() as ctx:
                resources.add_type(ctx, name="X", **kw)
        assert err.value.field == field


# ---- working hours across changes of clocks --------------------------------------------------

DST_DAYS = [
    (NY, D(2026, 3, 8), -4),
    (NY, D(2026, 11, 1), -5),
    (NY, D(2026, 3, 7), -5),
    (NY, D(2026, 10, 31), -4),
    (BERLIN, D(2026, 3, 29), 2),
    (BERLIN, D(2026, 10, 25), 1),
    (BERLIN, D(2026, 3, 28), 1),
]


@pytest.mark.parametrize(("tz", "day", "offset"), DST_DAYS, ids=[f"{z}-{d}" for z, d, _ in DST_DAYS])
def test_hours_stay_local_on_days_clocks_change(settings, ctx_for, register, tz, day, offset):
    from hpms.services.scheduling.slots import find_slot

    c = clinic(ctx_for, register, tz=tz, days="daily", at=clock(JAN))
    start = dt.datetime.combine(day, dt.time(8), tzinfo=dt.UTC) - dt.timedelta(hours=offset)
    end = dt.datetime.combine(day, dt.time(17), tzinfo=dt.UTC) - dt.timedelta(hours=offset)
    assert open_utc(ctx_for, c.provider, "Main", day) == [(start, end)]
    with ctx_for(clock=clock(JAN)) as ctx:
        slots = find_slot(ctx, type=c.type, provider=c.provider, after=f"{day} 00:00", before=f"{day} 23:00", count=500)
    assert [s.start for s in slots[:1]] == [start]
    assert slots[-1].end == end and len(slots) == 9 * 4 - 1
    assert hm(slots[0].start) == f"{day} 08:00 {offset:+03d}00"
    assert hm(slots[-1].start) == f"{day} 16:30 {offset:+03d}00"
    assert {s.start.utcoffset() for s in slots} == {dt.timedelta(hours=offset)}


def test_hours_starting_in_the_gap_begin_when_the_clocks_resume(settings, ctx_for, register):
    c = clinic(ctx_for, register, days="SU", start="02:00", end="04:00", at=clock(JAN))
    assert open_utc(ctx_for, c.provider, "Main", D(2026, 3, 8)) == [(utc(2026, 3, 8, 7), utc(2026, 3, 8, 8))]
    # the repeated hour counts once: 01:00 EDT .. 04:00 EST is four real hours
    with ctx_for(clock=clock(JAN)) as ctx:
        from hpms.services.scheduling import availability

        availability.set_hours(ctx, c.provider, days="SU", start="01:00", end="04:00", effective_from="2026-10-01")
    assert open_utc(ctx_for, c.provider, "Main", D(2026, 11, 1)) == [(utc(2026, 11, 1, 5), utc(2026, 11, 1, 9))]


def test_every_other_friday(settings, ctx_for, register):
    from hpms.services.scheduling import availability

    c = clinic(ctx_for, register, days="MO")
    with ctx_for(clock=fixed_clock) as ctx:
        rules = availability.set_hours(
            ctx,
            c.provider,
            rrule="freq=weekly;interval=2;byday=FR",
            start="9am",
            end="1pm",
            effective_from="2026-07-03",
        )
    fri = [r for r in rules if r.rrule]
    assert [(r.days, r.rrule, r.start_time, r.end_time) for r in fri] == [
        ("FR", "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR", "09:00", "13:00")
    ]
    spans = open_utc(ctx_for, c.provider, "Main", D(2026, 6, 29), D(2026, 8, 2))
    fridays = sorted({s.date() for s, _ in spans if s.weekday() == 4})
    assert fridays == [D(2026, 7, 3), D(2026, 7, 17), D(2026, 7, 31)]
    assert (utc(2026, 7, 17, 13), utc(2026, 7, 17, 17)) in spans
    # the Monday rule is untouched
    assert sorted({s.date() for s, _ in spans if s.weekday() == 0}) == [
        D(2026, 6, 29),
        D(2026, 7, 6),
        D(2026, 7, 13),
        D(2026, 7, 20),
        D(2026, 7, 27),
    ]


def test_invalid_hours_are_refused(settings, ctx_for, register):
    from hpms.services.scheduling import availability

    c = clinic(ctx_for, register)
    for kw, field in (
        (dict(days="MO", start="17:00", end="08:00"), "end"),
        (dict(days="MO", start="9", end="9"), "end"),
        (dict(days="XX", start="8", end="9"), "days"),
        (dict(days="MO", start="8", end="9", effective_from="2026-07-01", effective_to="2026-06-30"), "effective_to"),
        (dict(rrule="BYDAY=FR", start="8", end="9"), "rrule"),
        (dict(rrule="FREQ=WEEKLY;BYDAY=XX", start="8", end="9"), "rrule"),
        (dict(rrule="DTSTART:20260101T000000\nFREQ=WEEKLY", start="8", end="9"), "rrule"),
    ):
        with pytest.raises(ValidationError) as err:
            with ctx_for(clock=fixed_clock) as ctx:
                availability.set_hours(ctx, c.provider, **kw)
        assert err.value.field == field, kw


def _rules(ctx_for, provider_id, **kw):
    from hpms.services.scheduling import availability

    with ctx_for(clock=fixed_clock) as ctx:
        return [
            (r.days, r.start_time, r.end_time, r.effective_from, r.effective_to)
            for r in availability.list_hours(ctx, provider=provider_id, **kw)
        ]


def test_set_hours_replaces_those_days_and_keeps_the_others(settings, ctx_for, register):
    from hpms.services.scheduling import availability

    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        availability.set_hours(ctx, c.provider, days="mon,wed", start="09:00", end="12:00", effective_from="2026-07-01")
    assert sorted(_rules(ctx_for, c.provider)) == sorted(
        [
            ("MO,TU,WE,TH,FR", "08:00", "17:00", D(2026, 1, 1), D(2026, 6, 30)),
            ("TU,TH,FR", "08:00", "17:00", D(2026, 7, 1), None),
            ("MO,WE", "09:00", "12:00", D(2026, 7, 1), None),
        ]
    )
    assert open_utc(ctx_for, c.provider, "Main", D(2026, 6, 29)) == [(utc(2026, 6, 29, 12), utc(2026, 6, 29, 21))]
    assert open_utc(ctx_for, c.provider, "Main", D(2026, 7, 6)) == [(utc(2026, 7, 6, 13), utc(2026, 7, 6, 16))]
    assert open_utc(ctx_for, c.provider, "Main", D(2026, 7, 7)) == [(utc(2026, 7, 7, 12), utc(2026, 7, 7, 21))]
    # --add puts a second span on Mondays instead of replacing
    with ctx_for(clock=fixed_clock) as ctx:
        availability.set_hours(
            ctx, c.provider, days="MO", start="13:00", end="15:00", effective_from="2026-07-01", add=True
        )
    assert open_utc(ctx_for, c.provider, "Main", D(2026, 7, 6)) == [
        (utc(2026, 7, 6, 13), utc(2026, 7, 6, 16)),
        (utc(2026, 7, 6, 17), utc(2026, 7, 6, 19)),
    ]
    # replacing Mondays from a later date ends both Monday rules, the Wednesday part survives
    with ctx_for(clock=fixed_clock) as ctx:
        availability.set_hours(ctx, c.provider, days="MO", start="10:00", end="11:00", effective_from="2026-08-03")
    rules = _rules(ctx_for, c.provider, on="2026-08-05")
    assert sorted(rules) == sorted(
        [
            ("TU,TH,FR", "08:00", "17:00", D(2026, 7, 1), None),
            ("WE", "09:00", "12:00", D(2026, 8, 3), None),
            ("MO", "10:00", "11:00", D(2026, 8, 3), None),
        ]
    )
    assert open_utc(ctx_for, c.provider, "Main", D(2026, 8, 3)) == [(utc(2026, 8, 3, 14), utc(2026, 8, 3, 15))]
    assert open_utc(ctx_for, c.provider, "Main", D(2026, 8, 5)) == [(utc(2026, 8, 5, 13), utc(2026, 8, 5, 16))]
    assert open_utc(ctx_for, c.provider, "Main", D(2026, 7, 27)) == [
        (utc(2026, 7, 27, 13), utc(2026, 7, 27, 16)),
        (utc(2026, 7, 27, 17), utc(2026, 7, 27, 19)),
    ]


def test_a_rule_starting_on_the_same_day_is_replaced_outright(settings, ctx_for, register):
    from hpms.services.scheduling import availability

    c = clinic(ctx_for, register, effective_from="2026-07-01")
    with ctx_for(clock=fixed_clock) as ctx:
        availability.set_hours(ctx, c.provider, days="MO-FR", start="07:00", end="15:00", effective_from="2026-07-01")
    assert _rules(ctx_for, c.provider) == [("MO,TU,WE,TH,FR", "07:00", "15:00", D(2026, 7, 1), None)]


def test_a_temporary_change_ends_and_the_old_hours_resume(settings, ctx_for, register):
    from hpms.services.scheduling import availability

    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        availability.set_hours(
            ctx,
            c.provider,
            days="WE",
            start="10:00",
            end="11:00",
            effective_from="2026-08-03",
            effective_to="2026-08-09",
        )
    assert open_utc(ctx_for, c.provider, "Main", D(2026, 8, 5)) == [(utc(2026, 8, 5, 14), utc(2026, 8, 5, 15))]
    for day in (D(2026, 7, 29), D(2026, 8, 4), D(2026, 8, 12), D(2026, 8, 13)):
        assert open_utc(ctx_for, c.provider, "Main", day) == [
            (dt.datetime.combine(day, dt.time(12), dt.UTC), dt.datetime.combine(day, dt.time(21), dt.UTC))
        ], day
    # one rule (not two) gives each day its hours after the change
    for day in ("2026-08-04", "2026-08-10", "2026-08-12"):
        rules = _rules(ctx_for, c.provider, on=day)
        weekday = dt.date.fromisoformat(day).strftime("%a").upper()[:2]
        assert sum(weekday in r[0].split(",") for r in rules) == 1, (day, rules)


def test_a_temporary_change_keeps_the_fortnightly_rhythm(settings, ctx_for, register):
    from hpms.services.scheduling import availability

    c = clinic(ctx_for, register, days="MO")
    with ctx_for(clock=fixed_clock) as ctx:
        availability.set_hours(
            ctx,
            c.provider,
            rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=FR",
            start="09:00",
            end="13:00",
            effective_from="2026-07-03",
        )
        # a different Friday for two weeks; the fortnightly rule comes back after it
        availability.set_hours(
            ctx,
            c.provider,
            days="FR",
            start="14:00",
            end="15:00",
            effective_from="2026-07-06",
            effective_to="2026-07-19",
        )
    spans = open_utc(ctx_for, c.provider, "Main", D(2026, 7, 1), D(2026, 8, 31))
    fridays = [(s.date(), s.hour) for s, _ in spans if s.weekday() == 4]
    assert fridays == [
        (D(2026, 7, 3), 13),
        (D(2026, 7, 10), 18),
        (D(2026, 7, 17), 18),
        (D(2026, 7, 31), 13),
        (D(2026, 8, 14), 13),
        (D(2026, 8, 28), 13),
    ]


def test_hours_are_per_location(settings, ctx_for, register):
    from hpms.services.platform import org
    from hpms.services.scheduling import availability, resources

    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        org.add_location(ctx, name="West", tz=LA)
        resources.update_provider(ctx, c.provider, locations=["Main", "West"])
        with pytest.raises(ValidationError) as err:
            availability.set_hours(ctx, c.provider, days="SA", start="9", end="12")
        assert err.value.field == "location" and "Main, West" in err.value.message
        availability.set_hours(
            ctx, c.provider, location="West", days="SA", start="9", end="12", effective_from="2026-01-01"
        )
        out = availability.week(ctx, c.provider, week_of="2026-06-20")
    assert open_utc(ctx_for, c.provider, "West", D(2026, 6, 20)) == [(utc(2026, 6, 20, 16), utc(2026, 6, 20, 19))]
    assert open_utc(ctx_for, c.provider, "Main", D(2026, 6, 20)) == []
    assert open_utc(ctx_for, c.provider, "West", D(2026, 6, 19)) == []
    by_key = {(d["date"], d["location"]): d for d in out["days"]}
    assert by_key[(D(2026, 6, 20), "West")]["hours"] == ["09:00-12:00"]
    assert by_key[(D(2026, 6, 19), "Main")]["hours"] == ["08:00-17:00"]
    assert by_key[(D(2026, 6, 19), "Main")]["free_min"] == 540
    assert out["week"] == "2026-W25"


# ---- time off ------------------------------------------------------------------------------


def test_provider_time_off_removes_open_time(settings, ctx_for, register):
    from hpms.services.scheduling import availability

    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        whole, _ = availability.add_time_off(ctx, provider=c.provider, start="2026-06-17", reason="CME")
        part, _ = availability.add_time_off(ctx, provider=c.provider, start="2026-06-18 12:00", end="2026-06-18 13:30")
        span, _ = availability.add_time_off(ctx, provider=c.provider, start="2026-06-22", end="2026-06-23")
    assert (whole.starts, whole.ends, whole.reason) == (dt.datetime(2026, 6, 17), dt.datetime(2026, 6, 18), "CME")
    assert (span.starts, span.ends) == (dt.datetime(2026, 6, 22), dt.datetime(2026, 6, 24))
    assert open_utc(ctx_for, c.provider, "Main", D(2026, 6, 17)) == []
    assert open_utc(ctx_for, c.provider, "Main", D(2026, 6, 18)) == [
        (utc(2026, 6, 18, 12), utc(2026, 6, 18, 16)),
        (utc(2026, 6, 18, 17, 30), utc(2026, 6, 18, 21)),
    ]
    assert open_utc(ctx_for, c.provider, "Main", D(2026, 6, 22), D(2026, 6, 24)) == [
        (utc(2026, 6, 24, 12), utc(2026, 6, 24, 21))
    ]
    with ctx_for(clock=fixed_clock) as ctx:
        listed = availability.list_time_off(ctx, provider=c.provider)
        assert [t.id for t in listed] == [whole.id, part.id, span.id]
        availability.remove_time_off(ctx, whole.id)
    assert open_utc(ctx_for, c.provider, "Main", D(2026, 6, 17)) == [(utc(2026, 6, 17, 12), utc(2026, 6, 17, 21))]
    with pytest.raises(ValidationError) as err:
        with ctx_for(clock=fixed_clock) as ctx:
            availability.add_time_off(ctx, provider=c.provider, start="2026-06-18 13:00", end="2026-06-18 12:00")
    assert err.value.field == "end"


def test_time_off_reports_the_appointments_it_overlaps(settings, ctx_for, register):
    from hpms.services.scheduling import availability
    from tests.services.sched import book_one

    c = clinic(ctx_for, register)
    a = book_one(ctx_for, c, "2026-06-17 09:00")
    book_one(ctx_for, c, "2026-06-18 09:00")
    with ctx_for(clock=fixed_clock) as ctx:
        _, affected = availability.add_time_off(ctx, provider=c.provider, start="2026-06-17")
    assert affected == [a.id]


def test_practice_holiday_at_one_location_leaves_the_other_open(settings, ctx_for, register):
    from hpms.services.platform import org
    from hpms.services.scheduling import availability, resources

    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        org.add_location(ctx, name="West", tz=LA)
        resources.update_provider(ctx, c.provider, locations=["Main", "West"])
        availability.set_hours(
            ctx, c.provider, location="West", days="MO-FR", start="8", end="17", effective_from="2026-01-01"
        )
        hol, _ = availability.add_time_off(ctx, location="Main", start="2026-07-03", reason="Independence Day")
    assert (hol.provider_id, hol.location) == (None, "Main")
    assert open_utc(ctx_for, c.provider, "Main", D(2026, 7, 3)) == []
    assert open_utc(ctx_for, c.provider, "West", D(2026, 7, 3)) == [(utc(2026, 7, 3, 15), utc(2026, 7, 4, 0))]
    # a holiday of the whole practice closes both, each in its own zone
    with ctx_for(clock=fixed_clock) as ctx:
        availability.add_time_off(ctx, start="2026-12-25")
    assert open_utc(ctx_for, c.provider, "Main", D(2026, 12, 25)) == []
    assert open_utc(ctx_for, c.provider, "West", D(2026, 12, 25)) == []
    assert open_utc(ctx_for, c.provider, "West", D(2026, 12, 24)) == [(utc(2026, 12, 24, 16), utc(2026, 12, 25, 1))]


def test_policy(settings, ctx_for):
    from hpms.services.scheduling import availability

    with ctx_for() as ctx:
        assert availability.get_policy(ctx) == {"late_cancel_hours": 24, "slot_step_min": 15}
        assert availability.set_policy(ctx, late_cancel_hours=48, slot_step_min=30) == {
            "late_cancel_hours": 48,
            "slot_step_min": 30,
        }
    for kw, field in (
        (dict(slot_step_min=7), "slot_step"),
        (dict(late_cancel_hours=-1), "late_cancel_hours"),
        ({}, "options"),
    ):
        with pytest.raises(ValidationError) as err:
            with ctx_for() as ctx:
                availability.set_policy(ctx, **kw)
        assert err.value.field == field
    with ctx_for() as ctx:
        assert availability.get_policy(ctx) == {"late_cancel_hours": 48, "slot_step_min": 30}


def test_setup_writes_are_audited(settings, ctx_for, register):
    from hpms.services.scheduling import availability

    seq = last_seq(settings)
    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        availability.add_time_off(ctx, provider=c.provider, start="2026-06-17")
    entities = [(r["action"], r["entity"]) for r in audit_rows(settings, seq)]
    for pair in (
        ("create", "provider"),
        ("create", "appointment_type"),
        ("update", "working_hours"),
        ("create", "time_off"),
    ):
        assert pair in entities
