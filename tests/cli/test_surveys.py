"""`hpms surveys`: record, import and list, with their exit codes."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.cli.helpers import error_line, iso_datetime, ok, tsv

KEYS = {
    "id",
    "appointment_id",
    "patient_id",
    "patient",
    "mrn",
    "provider_id",
    "provider",
    "visit",
    "score",
    "comment",
    "responded_at",
}


@pytest.fixture
def visits(ctx_for):
    """Two completed visits and a booked one (1-3 June 2026, 09:00 New York)."""
    from hpms.models import Appointment
    from hpms.services.people import patients
    from hpms.services.platform import localtime as lt
    from hpms.services.scheduling import resources

    with ctx_for() as ctx:
        pat = patients.register(ctx, first_name="Ana", last_name="Roe", dob="1980-01-01")
        prov = resources.add_provider(ctx, first_name="Liam", last_name="Okafor", npi="1234567893")
        t = resources.add_type(ctx, name="Visit", duration_min=30)
        from hpms.services.lookups import find_location

        loc = find_location(ctx, "Main")
        ids = []
        for day, status in ((1, "completed"), (2, "completed"), (3, "booked")):
            start = lt.wall_to_utc(dt.datetime(2026, 6, day, 9, 0), "America/New_York")
            a = Appointment(
                org_id=ctx.org_id,
                patient_id=pat.id,
                provider_id=prov.id,
                location_id=loc.id,
                type_id=t.id,
                start_utc=start,
                end_utc=start + dt.timedelta(minutes=30),
                block_end_utc=start + dt.timedelta(minutes=30),
                status=status,
                booked_at=start - dt.timedelta(days=3),
            )
            ctx.session.add(a)
            ctx.session.flush()
            ids.append(str(a.id))
    return ids


def test_record_list_and_errors(cli, visits, counts):
    r = cli("surveys", "record", "--appointment", visits[0], "--score", "5", "--comment", "Very kind")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip().isdigit() and "recorded score 5" in r.stderr
    out = ok(cli("surveys", "list", "--json"))
    assert len(out) == 1 and set(out[0]) == KEYS
    assert (out[0]["score"], out[0]["comment"], out[0]["appointment_id"]) == (5, "Very kind", int(visits[0]))
    iso_datetime(out[0]["responded_at"])
    header, rows = tsv(cli("surveys", "list").stdout)
    assert header[:3] == ["ID", "Appointment", "Visit"] and len(rows) == 1
    before = counts("survey_response", "audit_event")
    error_line(cli("surveys", "record", "--appointment", visits[0], "--score", "4"), 4, "already")
    error_line(cli("surveys", "record", "--appointment", visits[2], "--score", "4"), 4, "booked")
    error_line(cli("surveys", "record", "--appointment", "999999", "--score", "4"), 3, "999999")
    error_line(cli("surveys", "record", "--appointment", visits[1], "--score", "0"), 2, "--score")
    error_line(cli("surveys", "record", "--appointment", visits[1], "--score", "6"), 2, "--score")
    assert counts("survey_response", "audit_event") == before
    assert ok(cli("surveys", "record", "--appointment", visits[1], "--score", "3", "--json"))["score"] == 3


def test_import_good_and_bad(cli, visits, counts, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(f"appointment_id,score\n{visits[0]},5\n{visits[1]},9\n", encoding="utf-8")
    before = counts("survey_response", "audit_event")
    error_line(cli("surveys", "import", str(bad)), 2, "line 3", "score", "nothing imported")
    assert counts("survey_response", "audit_event") == before
    good = tmp_path / "good.csv"
    good.write_text(f"appointment_id,score,comment\n{visits[0]},5,ok\n{visits[1]},4,\n", encoding="utf-8")
    r = cli("surveys", "import", str(good))
    assert r.exit_code == 0, r.stderr
    assert "imported 2 survey response(s)" in r.stderr
    after = counts("survey_response", "audit_event")
    assert after == {"survey_response": 2, "audit_event": before["audit_event"] + 1}
    error_line(cli("surveys", "import", str(tmp_path / "none.csv")), 2, "none.csv", "does not exist")


def test_permissions(cli, visits, as_user):
    env = as_user("doc", "provider")
    error_line(cli("surveys", "record", "--appointment", visits[0], "--score", "5", env=env), 5)
    assert ok(cli("surveys", "list", "--json", env=env)) == []
    env = as_user("desk", "front_desk")
    assert ok(cli("surveys", "record", "--appointment", visits[0], "--score", "5", "--json", env=env))["score"] == 5
