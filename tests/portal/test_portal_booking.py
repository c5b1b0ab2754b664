"""Booking, moving and cancelling online through the portal's pages over real HTTP (one uvicorn
server for the module): the search form and its field messages, booking a time (audited with
the patient as the actor), a time just taken by another patient, cancelling outside and inside
the practice's window, moving a visit, another patient's visit and a form without its CSRF token."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import count_rows
from tests.portal.live import CSRF, Served, last_code, serve
from tests.portal.live import weekday as _weekday
from tests.services.conftest import register  # noqa: F401 - fixture
from tests.services.helpers import audit_rows, query
from tests.services.sched import clinic

PAT, ALEX = ("pat.doe@example.org", "1984-03-09"), ("alex.roe@example.org", "1990-02-02")
FORM = re.compile(r'<form method="post" action="([^"]+)">(.*?)</form>', re.S)
INPUT = re.compile(r'name="(\w+)" value="([^"]*)"')


@pytest.fixture(scope="module")
def site() -> Iterator[Served]:
    with serve() as served:
        yield served


@dataclass
class Practice:
    site: Served
    settings: object
    pat: int
    alex: int
    type: int
    location: int

    @contextmanager
    def browser(self, who: tuple[str, str], patient: int) -> Iterator[httpx.Client]:
        """A browser signed in as a patient."""
        with httpx.Client(base_url=self.site.url, follow_redirects=False, timeout=30) as b:
            yield self._sign_in(b, who, patient)

    def _sign_in(self, b: httpx.Client, who: tuple[str, str], patient: int) -> httpx.Client:
        r = b.post("/", data={"csrf": _token(b, "/"), "contact": who[0], "dob": who[1]})
        assert r.status_code == 303, r.text
        r = b.post("/code", data={"csrf": b.cookies.get("hpms_csrf"), "code": last_code(self.settings, patient)})
        assert r.status_code == 303 and r.headers["location"] == "/home", r.text
        return b


@pytest.fixture
def practice(ctx_for, register, settings, site) -> Iterator[Practice]:  # noqa: F811
    from hpms.services.people import patients
    from hpms.services.scheduling import online

    c = clinic(ctx_for, register)
    with ctx_for() as ctx:
        patients.update(ctx, c.mrn, email=PAT[0], dob=PAT[1])
        online.set_policy(ctx, type_ref="Visit", enabled=True, lead_minutes=0, cancel_window=24)
    alex = register(first_name="Alex", last_name="Roe", dob=ALEX[1], email=ALEX[0])
    site.settings = settings
    try:
        yield Practice(site, settings, c.patient, alex.id, c.type, c.location)
    finally:
        site.settings = None


def _token(b: httpx.Client, path: str = "/home") -> str:
    r = b.get(path)
    assert r.status_code == 200, r.text
    found = CSRF.search(r.text)
    assert found
    return found.group(1)


def _forms(page: str, action: str) -> list[dict[str, str]]:
    return [{k: html.unescape(v) for k, v in INPUT.findall(body)} for to, body in FORM.findall(page) if to == action]


def _search(p: Practice, b: httpx.Client, day: dt.date, **changes: str) -> httpx.Response:
    data = {"csrf": _token(b, "/book"), "type": str(p.type), "location": str(p.location), "provider": ""}
    data["start_date"] = day.isoformat()
    data.update(changes)
    return b.post("/book/search", data=data)


def _book_first(p: Practice, b: httpx.Client, day: dt.date) -> dict[str, str]:
    r = _search(p, b, day)
    assert r.status_code == 200, r.text
    slot = _forms(r.text, "/book")[0]
    r = b.post("/book", data=slot)
    assert r.status_code == 303 and r.headers["location"] == "/home?done=booked", r.text
    return slot


def _visits(settings, patient: int) -> list[dict]:
    return query(settings, "SELECT id, status, start_utc FROM appointment WHERE patient_id = :p ORDER BY id", p=patient)


def _written(settings) -> dict:
    return {
        "appointment": query(settings, "SELECT id, status, start_utc, version FROM appointment ORDER BY id"),
        "online_booking": count_rows(settings, "online_booking"),
    }


def _h1s(page: str) -> int:
    return len(re.findall(r"<h1[ >]", page))


def _error_under(page: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="{field}-error">([^<]+)</p>', page)
    assert found, page
    return html.unescape(found.group(1))


def test_search_lists_open_times_and_booking_one_is_audited_as_the_patient(practice, settings):
    with practice.browser(PAT, practice.pat) as b:
        form = b.get("/book")
        assert form.status_code == 200 and _h1s(form.text) == 1 and 'href="#main"' in form.text
        for name in ("type", "location", "provider", "start_date"):
            assert f'<label for="{name}">' in form.text
        assert "First available" in form.text and "<script" not in form.text
        day = _weekday(3)
        r = _search(practice, b, day)
        assert r.status_code == 200 and _h1s(r.text) == 1
        slots = _forms(r.text, "/book")
        assert slots and slots[0]["start"].startswith(day.isoformat())
        assert all(s["start"][:10] >= day.isoformat() for s in slots)
        seq = max(e["seq"] for e in audit_rows(settings))
        r = b.post("/book", data=slots[0])
        assert r.status_code == 303 and r.headers["location"] == "/home?done=booked"
        home = b.get(r.headers["location"])
        assert "Your visit is booked." in home.text and "Reschedule" in home.text and "Cancel" in home.text
    [visit] = _visits(settings, practice.pat)
    assert visit["status"] == "booked"
    [booking] = query(settings, "SELECT * FROM online_booking")
    assert booking["appointment_id"] == visit["id"] and booking["patient_id"] == practice.pat
    events = [(e["username"], e["action"], e["entity"]) for e in audit_rows(settings, seq)]
    assert (f"patient:{practice.pat}", "create", "online_booking") in events


def test_a_time_just_taken_offers_the_alternatives_and_books_nothing(practice, settings):
    with practice.browser(PAT, practice.pat) as pat, practice.browser(ALEX, practice.alex) as alex:
        r = _search(practice, alex, _weekday(3))  # Alex sees the time open...
        slot = _forms(r.text, "/book")[0]
        taken = _book_first(practice, pat, _weekday(3))  # ...Pat takes it first
        assert taken["start"] == slot["start"]
        slot["csrf"] = alex.cookies.get("hpms_csrf") or ""
        r = alex.post("/book", data=slot)
    assert r.status_code == 409 and _h1s(r.text) == 1
    assert "That time was just taken" in r.text
    others = _forms(r.text, "/book")
    assert others and all(o["start"] != slot["start"] for o in others)
    assert len(_visits(settings, practice.pat)) == 1 and _visits(settings, practice.alex) == []
    assert count_rows(settings, "appointment") == 1


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"start_date": "2020-01-06"}, "start_date", "2020-01-06 is in the past"),
        ({"start_date": "2099-01-05"}, "start_date", "2099-01-05 is too far ahead: online booking opens up to"),
        ({"type": "999999"}, "type", "open to online booking"),
        ({"location": ""}, "location", "Is required."),
    ],
)
def test_bad_search_input_shows_the_fields_message_and_writes_nothing(practice, settings, changes, field, message):
    with practice.browser(PAT, practice.pat) as b:
        before = _written(settings)
        r = _search(practice, b, _weekday(3), **changes)
        assert r.status_code == 400 and _h1s(r.text) == 1
        assert message in _error_under(r.text, field)
        bad = b.post("/book", data={"csrf": b.cookies.get("hpms_csrf"), "type": "999999", "location": "x"})
        assert bad.status_code == 400
    assert _written(settings) == before


def test_cancel_asks_first_then_cancels_outside_the_window(practice, settings):
    with practice.browser(PAT, practice.pat) as b:
        _book_first(practice, b, _weekday(4))
        [visit] = _visits(settings, practice.pat)
        token = _token(b)
        ask = b.post("/visit/cancel", data={"csrf": token, "appointment": str(visit["id"])})
        assert ask.status_code == 200 and _h1s(ask.text) == 1 and "Cancel this visit?" in ask.text
        assert _visits(settings, practice.pat)[0]["status"] == "booked"  # asking changes nothing
        [confirm] = _forms(ask.text, "/visit/cancel/confirm")
        r = b.post("/visit/cancel/confirm", data=confirm)
        assert r.status_code == 303 and r.headers["location"] == "/home?done=cancelled"
    assert _visits(settings, practice.pat)[0]["status"] == "cancelled"


def test_cancel_inside_the_window_is_refused_and_changes_nothing(practice, settings, ctx_for):
    from hpms.services.scheduling import online

    with practice.browser(PAT, practice.pat) as b:
        _book_first(practice, b, _weekday(3))
        with ctx_for() as ctx:
            online.set_policy(ctx, cancel_window=14 * 24)
        [visit] = _visits(settings, practice.pat)
        before = _written(settings)
        r = b.post("/visit/cancel/confirm", data={"csrf": _token(b), "appointment": str(visit["id"])})
        assert r.status_code == 409 and _h1s(r.text) == 1
        assert "less than 336 hours away" in r.text and "cannot be cancelled online" in r.text
    assert _written(settings) == before


def test_reschedule_lists_times_for_the_same_visit_and_moves_it(practice, settings):
    with practice.browser(PAT, practice.pat) as b:
        _book_first(practice, b, _weekday(4))
        [visit] = _visits(settings, practice.pat)
        r = b.post("/visit/reschedule", data={"csrf": _token(b), "appointment": str(visit["id"])})
        assert r.status_code == 200 and _h1s(r.text) == 1 and "Move your visit" in r.text
        times = _forms(r.text, "/visit/reschedule/confirm")
        assert times and all(t["appointment"] == str(visit["id"]) for t in times)
        r = b.post("/visit/reschedule/confirm", data=times[-1])
        assert r.status_code == 303 and r.headers["location"] == "/home?done=moved", r.text
    [moved] = _visits(settings, practice.pat)
    assert moved["id"] == visit["id"] and moved["start_utc"] != visit["start_utc"]
    assert count_rows(settings, "appointment") == 1


def test_another_patients_visit_is_not_found_and_nothing_changes(practice, settings):
    with practice.browser(PAT, practice.pat) as pat:
        slot = _book_first(practice, pat, _weekday(4))
    [visit] = _visits(settings, practice.pat)
    before = _written(settings)
    with practice.browser(ALEX, practice.alex) as alex:
        token = _token(alex)
        for path in ("/visit/cancel", "/visit/cancel/confirm", "/visit/reschedule", "/visit/reschedule/confirm"):
            r = alex.post(path, data={"csrf": token, "appointment": str(visit["id"]), "start": slot["start"]})
            assert r.status_code == 404 and "Visit not found" in r.text, path
    assert _written(settings) == before


def test_a_form_without_its_csrf_token_is_refused_and_writes_nothing(practice, settings):
    with practice.browser(PAT, practice.pat) as b:
        r = _search(practice, b, _weekday(3))
        slot = _forms(r.text, "/book")[0]
        before = _written(settings)
        del slot["csrf"]
        assert b.post("/book", data=slot).status_code == 403
        _book_first(practice, b, _weekday(3))
        [visit] = _visits(settings, practice.pat)
        before = _written(settings)
        r = b.post("/visit/cancel/confirm", data={"appointment": str(visit["id"])})
        assert r.status_code == 403 and "Nothing was changed" in r.text
    assert _written(settings) == before


def test_a_guardian_booking_for_a_linked_patient_is_audited_as_the_guardian(practice, settings, ctx_for):
    from hpms.services.portal import proxies

    with ctx_for() as ctx:
        proxies.add(ctx, guardian=practice.pat, patient=practice.alex)
    with practice.browser(PAT, practice.pat) as b:
        r = b.post("/switch", data={"csrf": _token(b), "patient": str(practice.alex)})
        assert r.status_code == 303, r.text
        seq = max(e["seq"] for e in audit_rows(settings))
        _book_first(practice, b, _weekday(3))
    [visit] = _visits(settings, practice.alex)
    assert visit["status"] == "booked" and _visits(settings, practice.pat) == []
    booked = [e for e in audit_rows(settings, seq) if e["entity"] == "online_booking"]
    assert [(e["username"], e["patient_id"]) for e in booked] == [(f"patient:{practice.pat}", practice.alex)]
