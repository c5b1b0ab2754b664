"""The pages signed links in messages open, over real HTTP (one uvicorn server for the module):
a reminder's link cancels or moves its one visit without a sign-in, under the online booking's
rules and audited as the patient; an expired, altered, misdirected or spent link is the same 404;
a survey link records one answer (a bad score re-renders the form and writes nothing; a second
answer is refused), and the satisfaction report counts it."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from hpms.services.platform.context import system_clock
from tests.conftest import count_rows
from tests.portal.live import CSRF, Served, serve
from tests.portal.live import weekday as _weekday
from tests.portal.test_portal_booking import _forms
from tests.services.conftest import fixed_clock, register  # noqa: F401 - fixture
from tests.services.helpers import audit_rows, query
from tests.services.sched import book_one, clinic

EXPIRED = "This link has expired"


@pytest.fixture(scope="module")
def site() -> Iterator[Served]:
    with serve() as served:
        yield served


@pytest.fixture
def practice(ctx_for, register, settings, site):  # noqa: F811
    from hpms.services.scheduling import online

    c = clinic(ctx_for, register)
    with ctx_for() as ctx:
        online.set_policy(ctx, type_ref="Visit", enabled=True, lead_minutes=0, cancel_window=24)
    site.settings = settings
    try:
        yield c
    finally:
        site.settings = None


@contextmanager
def _browser(site: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, follow_redirects=False, timeout=30) as b:
        yield b


def _token(ctx_for, purpose: str, appointment_id: int, patient_id: int, expires: dt.datetime | None = None) -> str:
    from hpms.services.portal import links

    with ctx_for() as ctx:
        when = expires or ctx.now() + dt.timedelta(days=20)
        return links.make(ctx, purpose=purpose, appointment_id=appointment_id, patient_id=patient_id, expires_at=when)


def _visit(ctx_for, c, days: int = 4):
    day = _weekday(days)
    return book_one(ctx_for, c, f"{day.isoformat()} 10:00", when=system_clock)


def _status(settings, appointment_id: int) -> dict:
    [row] = query(settings, "SELECT status, start_utc, version FROM appointment WHERE id = :a", a=appointment_id)
    return row


def _csrf(page: str) -> str:
    found = CSRF.search(page)
    assert found
    return found.group(1)


def _expired(r: httpx.Response) -> None:
    assert r.status_code == 404 and EXPIRED in r.text, r.text
    assert "Sign out" not in r.text and "Doe" not in r.text


def test_a_manage_link_cancels_its_visit_without_a_sign_in(practice, ctx_for, settings, site):
    appt = _visit(ctx_for, practice)
    token = _token(ctx_for, "manage", appt.id, practice.patient)
    seq = max(e["seq"] for e in audit_rows(settings))
    with _browser(site) as b:
        page = b.get(f"/v/{token}")
        assert page.status_code == 200 and "Your visit" in page.text and "Sign out" not in page.text
        assert "Cancel this visit" in page.text and "Choose another time" in page.text
        [form] = _forms(page.text, "/v/cancel")
        assert form["token"] == token
        assert _status(settings, appt.id)["status"] == "booked"  # opening it changes nothing
        r = b.post("/v/cancel", data=form)
        assert r.status_code == 200 and "Your visit is cancelled." in r.text
        _expired(b.get(f"/v/{token}"))  # a cancelled visit: the link is spent
        _expired(b.post("/v/cancel", data=form))
    assert _status(settings, appt.id)["status"] == "cancelled"
    events = [(e["username"], e["action"], e["entity"]) for e in audit_rows(settings, seq)]
    assert (f"patient:{practice.patient}", "read", "appointment") in events
    assert (f"patient:{practice.patient}", "update", "appointment") in events


def test_a_manage_link_moves_its_visit(practice, ctx_for, settings, site):
    appt = _visit(ctx_for, practice)
    token = _token(ctx_for, "manage", appt.id, practice.patient)
    before = _status(settings, appt.id)
    with _browser(site) as b:
        page = b.get(f"/v/{token}")
        [form] = _forms(page.text, "/v/reschedule")
        times = b.post("/v/reschedule", data=form)
        assert times.status_code == 200 and "Sign out" not in times.text
        choices = _forms(times.text, "/v/reschedule/confirm")
        assert choices and all(c["token"] == token for c in choices)
        r = b.post("/v/reschedule/confirm", data=choices[-1])
        assert r.status_code == 200 and "Your visit has been moved." in r.text, r.text
    after = _status(settings, appt.id)
    assert after["status"] == "booked" and after["start_utc"] != before["start_utc"]
    assert count_rows(settings, "appointment") == 1


def test_inside_the_cancellation_window_the_link_changes_nothing(practice, ctx_for, settings, site):
    from hpms.services.scheduling import online

    appt = _visit(ctx_for, practice, days=3)
    with ctx_for() as ctx:
        online.set_policy(ctx, cancel_window=14 * 24)
    token = _token(ctx_for, "manage", appt.id, practice.patient)
    before = _status(settings, appt.id)
    with _browser(site) as b:
        page = b.get(f"/v/{token}")
        r = b.post("/v/cancel", data=_forms(page.text, "/v/cancel")[0])
        assert r.status_code == 409 and "less than 336 hours away" in r.text and "Sign out" not in r.text
        times = b.post("/v/reschedule", data=_forms(page.text, "/v/reschedule")[0])
        choice = _forms(times.text, "/v/reschedule/confirm")[0]
        r = b.post("/v/reschedule/confirm", data=choice)
        assert r.status_code == 409 and "cannot be moved online" in r.text and "less than 336 hours" in r.text
    assert _status(settings, appt.id) == before


def test_expired_altered_misdirected_links_are_the_same_404_and_write_nothing(
    practice,
    ctx_for,
    register,  # noqa: F811
    settings,
    site,
):
    appt = _visit(ctx_for, practice)
    other = register(first_name="Alex", last_name="Roe")
    good = _token(ctx_for, "manage", appt.id, practice.patient)
    body, mac = good.split(".")
    bad = {
        "expired": _token(ctx_for, "manage", appt.id, practice.patient, dt.datetime.now(dt.UTC) - dt.timedelta(1)),
        "altered": body + "." + ("A" if mac[0] != "A" else "B") + mac[1:],
        "survey link": _token(ctx_for, "survey", appt.id, practice.patient),
        "another patient": _token(ctx_for, "manage", appt.id, other.id),
        "nonsense": "not-a-token",
    }
    before = (_status(settings, appt.id), count_rows(settings, "message"))
    with _browser(site) as b:
        csrf = _csrf(b.get(f"/v/{good}").text)
        for why, token in bad.items():
            _expired(b.get(f"/v/{token}"))
            for path in ("/v/cancel", "/v/reschedule", "/v/reschedule/confirm"):
                r = b.post(path, data={"csrf": csrf, "token": token, "start": "2030-01-07T10:00:00-05:00"})
                assert r.status_code == 404 and EXPIRED in r.text, (why, path)
        r = b.post("/v/cancel", data={"token": good})  # no CSRF token
        assert r.status_code == 403
    assert (_status(settings, appt.id), count_rows(settings, "message")) == before


@pytest.fixture
def seen(practice, ctx_for):
    """A visit of Pat's completed on 15 June 2026, and a survey link to it."""
    from hpms.services.scheduling import lifecycle

    appt = book_one(ctx_for, practice, "2026-06-15 11:00")
    with ctx_for(clock=fixed_clock) as ctx:
        lifecycle.transition(ctx, appt.id, "checkin")
        lifecycle.transition(ctx, appt.id, "complete")
    return appt, _token(ctx_for, "survey", appt.id, practice.patient)


def _error_under(page: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="{field}-error">([^<]+)</p>', page)
    assert found, page
    return html.unescape(found.group(1))


def test_a_survey_link_records_one_answer_that_the_report_counts(practice, seen, ctx_for, settings, site):
    from hpms.services import reports

    appt, token = seen
    with _browser(site) as b:
        page = b.get(f"/s/{token}")
        assert page.status_code == 200 and "How was your visit?" in page.text and "Sign out" not in page.text
        assert page.text.count('type="radio" name="score"') == 5
        csrf = _csrf(page.text)
        for score, said in (("7", "'7' is not a score from 1 to 5"), ("", "Is required."), ("x", "'x' is not")):
            r = b.post("/s", data={"csrf": csrf, "token": token, "score": score, "comment": "kept"})
            assert r.status_code == 400 and said in _error_under(r.text, "score"), score
            assert ">kept</textarea>" in r.text
        assert count_rows(settings, "survey_response") == 0
        assert b.post("/s", data={"token": token, "score": "5"}).status_code == 403
        seq = max(e["seq"] for e in audit_rows(settings))
        r = b.post("/s", data={"csrf": csrf, "token": token, "score": "4", "comment": "Kind staff"})
        assert r.status_code == 200 and "Your answer has been recorded" in r.text
        again = b.post("/s", data={"csrf": csrf, "token": token, "score": "1"})
        assert again.status_code == 409 and "answered already" in again.text
        reopened = b.get(f"/s/{token}")
        assert reopened.status_code == 409 and "answered already" in reopened.text
        _expired(b.get(f"/s/{_token(ctx_for, 'manage', appt.id, practice.patient)}"))
    [row] = query(settings, "SELECT appointment_id, patient_id, score, comment FROM survey_response")
    assert (row["appointment_id"], row["patient_id"], row["score"], row["comment"]) == (
        appt.id,
        practice.patient,
        4,
        "Kind staff",
    )
    events = [(e["username"], e["action"], e["entity"]) for e in audit_rows(settings, seq)]
    assert (f"patient:{practice.patient}", "create", "survey_response") in events
    with ctx_for(clock=fixed_clock) as ctx:
        _, _, it = reports.run(ctx, "satisfaction", start="2026-06-01", end="2026-06-30")
        [(month, _, responses, avg, *scores, rate)] = list(it)
    assert (month, responses, avg, scores[3]) == ("2026-06", 1, 4, 1)


def test_a_survey_link_to_a_visit_not_completed_opens_nothing(practice, ctx_for, settings, site):
    appt = _visit(ctx_for, practice)
    token = _token(ctx_for, "survey", appt.id, practice.patient)
    with _browser(site) as b:
        _expired(b.get(f"/s/{token}"))
    assert count_rows(settings, "survey_response") == 0
