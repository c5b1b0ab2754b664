"""Survey responses: record one, import a CSV (all rows checked before any is written), list."""

from __future__ import annotations

import datetime as dt

import pytest

from hpms.errors import ConflictError, NotFoundError, PermissionDenied, ValidationError
from tests.services.conftest import NOW, fixed_clock
from tests.services.helpers import audit_rows, counts, last_seq
from tests.services.sched import NY, clinic


@pytest.fixture
def visits(ctx_for, register):
    """Three completed visits (1-3 June 2026, 09:00 New York), one booked (4 June) and the clinic."""
    from hpms.models import Appointment
    from hpms.services.platform import localtime as lt

    c = clinic(ctx_for, register)
    ids = []
    with ctx_for(clock=fixed_clock) as ctx:
        for day, status in ((1, "completed"), (2, "completed"), (3, "completed"), (4, "booked")):
            start = lt.wall_to_utc(dt.datetime(2026, 6, day, 9, 0), NY)
            a = Appointment(
                org_id=ctx.org_id,
                patient_id=c.patient,
                provider_id=c.provider,
                location_id=c.location,
                type_id=c.type,
                start_utc=start,
                end_utc=start + dt.timedelta(minutes=30),
                block_end_utc=start + dt.timedelta(minutes=30),
                status=status,
                booked_at=start - dt.timedelta(days=7),
            )
            ctx.session.add(a)
            ctx.session.flush()
            ids.append(a.id)
    return ids


def record(ctx_for, user=None, **kw):
    from hpms.services.people import surveys

    with ctx_for(user, clock=fixed_clock) as ctx:
        return surveys.record(ctx, **kw)


def test_record_and_list(ctx_for, settings, visits):
    seq = last_seq(settings)
    out = record(ctx_for, appointment=visits[0], score="5", comment="  Very kind staff ")
    assert (out.appointment_id, out.score, out.comment, out.provider) == (
        visits[0],
        5,
        "Very kind staff",
        "Ada Lovelace",
    )
    assert out.responded_at == NOW and out.responded_at.utcoffset() == dt.timedelta(hours=-4)
    assert out.visit.isoformat() == "2026-06-01T09:00:00-04:00"
    ev = audit_rows(settings, seq)
    assert [(e["action"], e["entity"], e["entity_id"]) for e in ev] == [("create", "survey_response", str(out.id))]
    assert "Very kind" not in str(ev)
    from hpms.services.people import surveys

    with ctx_for(clock=fixed_clock) as ctx:
        assert [r.id for r in surveys.list_responses(ctx)] == [out.id]
        assert surveys.list_responses(ctx, start="2026-06-16") == []
        assert [r.id for r in surveys.list_responses(ctx, start="2026-06-15", end="2026-06-15")] == [out.id]


@pytest.mark.parametrize("score", ["0", "6", "x", "", "4.5"])
def test_record_refuses_a_bad_score(ctx_for, settings, visits, score):
    with pytest.raises(ValidationError, match="^score: "):
        record(ctx_for, appointment=visits[0], score=score)
    assert counts(settings, "survey_response") == {"survey_response": 0}


def test_record_refuses_unknown_unfinished_and_repeated_visits(ctx_for, settings, visits):
    with pytest.raises(NotFoundError):
        record(ctx_for, appointment=999999, score=3)
    with pytest.raises(ConflictError, match="booked"):
        record(ctx_for, appointment=visits[3], score=3)
    with pytest.raises(ValidationError, match="^comment: "):
        record(ctx_for, appointment=visits[0], score=3, comment="x" * 1001)
    record(ctx_for, appointment=visits[0], score=3)
    with pytest.raises(ConflictError, match="already"):
        record(ctx_for, appointment=visits[0], score=4)
    assert counts(settings, "survey_response") == {"survey_response": 1}


def test_record_needs_surveys_write(ctx_for, make_user, visits):
    make_user("doc", "provider")
    with pytest.raises(PermissionDenied):
        record(ctx_for, "doc", appointment=visits[0], score=5)
    make_user("desk", "front_desk")
    assert record(ctx_for, "desk", appointment=visits[0], score=5).score == 5


def _import(ctx_for, path, user=None):
    from hpms.services.people import surveys

    with ctx_for(user, clock=fixed_clock) as ctx:
        return surveys.import_csv(ctx, path)


def test_import_csv(ctx_for, settings, visits, tmp_path):
    f = tmp_path / "responses.csv"
    f.write_text(
        "appointment_id,score,comment,responded_at\n"
        f"{visits[0]},5,great,2026-06-02 10:00\n"
        f"{visits[1]},2,,\n"
        f'{visits[2]},4,"long, wait",2026-06-04T12:00:00+00:00\n',
        encoding="utf-8",
    )
    seq = last_seq(settings)
    assert _import(ctx_for, f).imported == 3
    ev = audit_rows(settings, seq)
    assert [(e["action"], e["entity"]) for e in ev] == [("import", "survey_response")]
    from hpms.services.people import surveys

    with ctx_for(clock=fixed_clock) as ctx:
        got = {r.appointment_id: r for r in surveys.list_responses(ctx)}
    assert [got[v].score for v in visits[:3]] == [5, 2, 4]
    assert got[visits[0]].responded_at.isoformat() == "2026-06-02T10:00:00-04:00"  # local wall time
    assert got[visits[1]].responded_at == NOW and got[visits[1]].comment is None
    assert got[visits[2]].comment == "long, wait"
    assert got[visits[2]].responded_at.isoformat() == "2026-06-04T08:00:00-04:00"


@pytest.mark.parametrize(
    "body, words",
    [
        ("{0},5\n{1},6\n", ("line 3", "score")),
        ("{0},5\n{3},4\n", ("line 3", "booked")),
        ("{0},5\n999999,4\n", ("line 3", "appointment_id", "999999")),
        ("{0},5\n{0},4\n", ("line 3", "also on line 2")),
        ("{0},5\nabc,4\n", ("line 3", "appointment_id")),
        ("{0},0\n", ("line 2", "score")),
    ],
)
def test_import_writes_nothing_on_a_bad_row(ctx_for, settings, visits, tmp_path, body, words):
    f = tmp_path / "bad.csv"
    f.write_text("appointment_id,score\n" + body.format(*visits), encoding="utf-8")
    before = counts(settings, "survey_response", "audit_event")
    with pytest.raises(ValidationError) as exc:
        _import(ctx_for, f)
    for w in words:
        assert w in str(exc.value)
    assert "nothing imported" in str(exc.value)
    assert counts(settings, "survey_response", "audit_event") == before


def test_import_refuses_an_answered_visit_and_bad_headers(ctx_for, settings, visits, tmp_path):
    record(ctx_for, appointment=visits[1], score=3)
    f = tmp_path / "dup.csv"
    f.write_text(f"appointment_id,score\n{visits[0]},5\n{visits[1]},4\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="line 3.*already"):
        _import(ctx_for, f)
    f.write_text(f"appointment,score\n{visits[0]},5\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="unknown column"):
        _import(ctx_for, f)
    with pytest.raises(ValidationError, match="does not exist"):
        _import(ctx_for, tmp_path / "missing.csv")
    assert counts(settings, "survey_response") == {"survey_response": 1}


def test_import_needs_surveys_write(ctx_for, make_user, visits, tmp_path):
    f = tmp_path / "r.csv"
    f.write_text(f"appointment_id,score\n{visits[0]},5\n", encoding="utf-8")
    make_user("bill", "biller")
    with pytest.raises(PermissionDenied):
        _import(ctx_for, f, "bill")
