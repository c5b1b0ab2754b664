"""Registration and pre-visit forms over real HTTP (one uvicorn server for the module): a new
patient's registration staged (not in the chart) with a card photo, bad input and bad photos
bring the form back with the field's message and write nothing, a body over the cap is 413,
the per-address limit, a pre-visit form for one's own visit (another patient's is 404), and a
post without its CSRF token."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import count_rows
from tests.portal.live import CSRF, Served, serve, weekday
from tests.portal.test_portal_booking import ALEX, PAT, Practice, practice  # noqa: F401 - fixture
from tests.services.conftest import register  # noqa: F401 - fixture
from tests.services.helpers import audit_rows, query
from tests.services.sched import Clinic, book_one

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
FORM = {
    "first_name": "Jamie",
    "last_name": "Lane",
    "dob": "1991-04-05",
    "email": "jamie.lane@example.org",
    "consent_sms": "yes",
    "reason": "Back pain",
    "payer_name": "Acme Health",
    "member_id": "XZ-12345",
}


@pytest.fixture(scope="module")
def site() -> Iterator[Served]:
    with serve() as served:
        yield served


def _token(b: httpx.Client, path: str) -> str:
    r = b.get(path)
    assert r.status_code == 200, r.text
    found = CSRF.search(r.text)
    assert found
    return found.group(1)


def _error_under(page: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="{field}-error">([^<]+)</p>', page)
    assert found, page
    return html.unescape(found.group(1))


@pytest.fixture
def browser(site, settings) -> Iterator[httpx.Client]:
    site.settings = settings
    try:
        with httpx.Client(base_url=site.url, follow_redirects=False, timeout=30) as b:
            yield b
    finally:
        site.settings = None


def _staged(settings) -> tuple[int, int, int]:
    return (
        count_rows(settings, "intake_request"),
        count_rows(settings, "intake_upload"),
        count_rows(settings, "patient"),
    )


def test_a_registration_is_staged_with_its_photo(browser, settings):
    page = browser.get("/register")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    for name in ("first_name", "dob", "member_id", "card_front", "card_back"):
        assert f'<label for="{name}">' in page.text
    patients = count_rows(settings, "patient")
    r = browser.post(
        "/register",
        data={"csrf": CSRF.search(page.text).group(1), **FORM},
        files={"card_front": ("card.png", PNG, "image/png"), "card_back": ("", b"", "application/octet-stream")},
    )
    assert r.status_code == 200 and "Thank you" in r.text, r.text
    assert "Jamie" not in str(r.url) and count_rows(settings, "patient") == patients
    row = query(settings, "SELECT id, kind, state, submitted_by FROM intake_request")[0]
    assert (row["kind"], row["state"]) == ("register", "pending") and row["submitted_by"].startswith("applicant:127.")
    assert [u["side"] for u in query(settings, "SELECT side FROM intake_upload")] == ["front"]


@pytest.mark.parametrize(
    ("change", "files", "field", "words"),
    [
        ({"last_name": ""}, {}, "last_name", "Is required"),
        ({"member_id": "bad id!"}, {}, "member_id", "letters, digits"),
        ({}, {"card_back": ("card.gif", b"GIF89a....", "image/png")}, "card_back", "JPEG, PNG or PDF"),
    ],
)
def test_bad_input_brings_the_form_back_and_writes_nothing(browser, settings, change, files, field, words, caplog):
    caplog.set_level(logging.DEBUG)
    token = _token(browser, "/register")
    before = _staged(settings)
    r = browser.post("/register", data={"csrf": token, **FORM, **change}, files=files or None)
    assert r.status_code == 400
    assert words in _error_under(r.text, field)
    assert 'value="Jamie"' in r.text  # what was typed stays
    assert _staged(settings) == before
    assert "Jamie" not in caplog.text and "XZ-12345" not in caplog.text and "Jamie" not in str(r.url)


def test_a_photo_over_the_cap_is_refused(browser, settings):
    token = _token(browser, "/register")
    cap = settings.portal_upload_mb * 1024 * 1024
    r = browser.post(
        "/register", data={"csrf": token, **FORM}, files={"card_front": ("c.jpg", b"\xff\xd8\xff" + b"\0" * cap)}
    )
    assert r.status_code == 400 and "larger than 5 MB" in _error_under(r.text, "card_front")
    huge = b"\xff\xd8\xff" + b"\0" * (2 * cap + 512 * 1024)
    r = browser.post("/register", data={"csrf": token, **FORM}, files={"card_front": ("c.jpg", huge)})
    assert r.status_code == 413 and "at most 5 MB" in r.text
    assert _staged(settings)[:2] == (0, 0)


def test_without_the_csrf_token_nothing_is_staged(browser, settings):
    browser.get("/register")
    r = browser.post("/register", data=FORM)
    assert r.status_code == 403 and _staged(settings)[:2] == (0, 0)


def test_one_address_may_send_ten_in_the_window(browser, settings):
    token = _token(browser, "/register")
    for _ in range(10):
        assert browser.post("/register", data={"csrf": token, **FORM}).status_code == 200
    r = browser.post("/register", data={"csrf": token, **FORM})
    assert r.status_code == 429 and "Too many forms" in r.text
    assert count_rows(settings, "intake_request") == 10


def test_a_pre_visit_form_for_ones_own_visit(practice: Practice, ctx_for, settings):  # noqa: F811
    from hpms.services.scheduling import resources

    with ctx_for() as ctx:
        provider = resources.list_providers(ctx)[0].id
    c = Clinic(provider=provider, type=practice.type, patient=practice.pat, mrn="", location=practice.location)
    mine = book_one(ctx_for, c, f"{weekday(3).isoformat()} 09:00", patient=str(practice.pat))
    theirs = book_one(ctx_for, c, f"{weekday(3).isoformat()} 10:00", patient=str(practice.alex))
    with practice.browser(PAT, practice.pat) as b:
        assert "/intake" in b.get("/home").text
        page = b.get("/intake")
        assert page.status_code == 200 and f'value="{mine.id}"' in page.text and f'value="{theirs.id}"' not in page.text
        token = CSRF.search(page.text).group(1)
        before = _staged(settings)
        r = b.post("/intake", data={"csrf": token, "appointment": str(theirs.id), "phone": "2175550100"})
        assert r.status_code == 404 and "Visit not found" in r.text
        r = b.post("/intake", data={"csrf": token, "appointment": str(mine.id), "dob": "2999-01-01"})
        assert r.status_code == 400 and _error_under(r.text, "dob")
        assert _staged(settings) == before
        r = b.post(
            "/intake",
            data={"csrf": token, "appointment": str(mine.id), "phone": "2175550100"},
            files={"card_front": ("c.pdf", b"%PDF-1.4 test", "application/pdf")},
        )
        assert r.status_code == 200 and "Thank you" in r.text
    row = query(settings, "SELECT id, kind, patient_id, appointment_id, submitted_by FROM intake_request")[0]
    assert (row["kind"], row["patient_id"], row["appointment_id"]) == ("update", practice.pat, mine.id)
    assert row["submitted_by"] == f"patient:{practice.pat}"
    ev = [e for e in audit_rows(settings) if e["entity"] == "intake_request"][-1]
    assert ev["username"] == f"patient:{practice.pat}" and ev["patient_id"] == practice.pat
    assert ALEX  # the other patient of the practice


def test_the_pre_visit_form_needs_a_sign_in(browser):
    assert browser.get("/intake").headers["location"] == "/"
