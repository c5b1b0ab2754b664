"""The account pages over real HTTP (one uvicorn server for the module): the balance, the
statements (each opened as the file that was sent, audited as the patient), the past visits with
what became of them; another patient's statement is 404 and a guardian sees the child's."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest

from tests.portal.live import Served, serve
from tests.portal.test_portal_booking import ALEX, PAT, Practice, _forms, _token
from tests.services import accounts
from tests.services.conftest import fixed_clock, payer, register  # noqa: F401 - fixtures
from tests.services.helpers import audit_rows
from tests.services.sched import book_one, clinic


@pytest.fixture(scope="module")
def site() -> Iterator[Served]:
    with serve() as served:
        yield served


@pytest.fixture
def practice(ctx_for, register, payer, settings, site, tmp_path) -> Iterator[Practice]:  # noqa: F811
    """Pat owes 30.00 and has one statement (HTML), a visit seen and one missed; Alex has none."""
    from hpms.services.payments import statements
    from hpms.services.people import patients
    from hpms.services.scheduling import lifecycle

    c = clinic(ctx_for, register)
    with ctx_for() as ctx:
        patients.update(ctx, c.mrn, email=PAT[0], dob=PAT[1])
    accounts.visit(ctx_for, c.mrn, payer.id, dt.date(2026, 4, 1), paid="50.00", adjusted="20.00", to_patient="30.00")
    seen = book_one(ctx_for, c, "2026-06-15 11:00")
    missed = book_one(ctx_for, c, "2026-06-16 11:00")
    with ctx_for(clock=fixed_clock) as ctx:
        lifecycle.transition(ctx, seen.id, "checkin")
        lifecycle.transition(ctx, seen.id, "complete")
    with ctx_for(clock=lambda: fixed_clock() + dt.timedelta(days=2)) as ctx:
        lifecycle.transition(ctx, missed.id, "noshow")
        out = tmp_path / "statements"
        out.mkdir()
        statements.generate(ctx, out=out, min_balance="0.01", older_than="0d", fmt="html")
    alex = register(first_name="Alex", last_name="Roe", dob=ALEX[1], email=ALEX[0])
    site.settings = settings
    try:
        yield Practice(site, settings, c.patient, alex.id, c.type, c.location)
    finally:
        site.settings = None


def _statement_ids(page: str) -> list[str]:
    return [f["statement"] for f in _forms(page, "/statements/open")]


def test_the_account_shows_balance_statements_and_past_visits(practice, settings):
    with practice.browser(PAT, practice.pat) as b:
        home = b.get("/home")
        assert 'href="/account"' in home.text
        r = b.get("/account")
        assert r.status_code == 200 and len(re.findall(r"<h1[ >]", r.text)) == 1
        assert "You owe <strong>30.00</strong>" in r.text
        assert "To pay, call the practice" in r.text and "Pay online" not in r.text
        [sid] = _statement_ids(r.text)
        assert re.search(r"Statement 0*\d+ of .*: 30.00 due \(HTML\)", r.text)
        assert "Seen" in r.text and "Missed" in r.text and "Monday 15 June 2026, 11:00" in r.text
        seq = max(e["seq"] for e in audit_rows(settings))
        opened = b.post("/statements/open", data={"csrf": _token(b, "/account"), "statement": sid})
        assert opened.status_code == 200 and opened.headers["content-type"].startswith("text/html")
        assert "inline" in opened.headers["content-disposition"] and "no-store" in opened.headers["cache-control"]
        assert "Patient statement" in opened.text and "Amount due: 30.00" in opened.text
    events = [(e["username"], e["action"], e["entity"], e["patient_id"]) for e in audit_rows(settings, seq)]
    assert (f"patient:{practice.pat}", "read", "statement", practice.pat) in events


def test_another_patients_statement_is_not_found(practice, settings):
    with practice.browser(PAT, practice.pat) as pat:
        [sid] = _statement_ids(pat.get("/account").text)
    with practice.browser(ALEX, practice.alex) as alex:
        page = alex.get("/account")
        assert "You owe nothing." in page.text and _statement_ids(page.text) == []
        seq = max(e["seq"] for e in audit_rows(settings))
        for bad in (sid, "999999", "x", ""):
            r = alex.post("/statements/open", data={"csrf": _token(alex, "/account"), "statement": bad})
            assert r.status_code == 404 and "Statement not found" in r.text and "Patient statement" not in r.text
        r = alex.post("/statements/open", data={"statement": sid})
        assert r.status_code == 403
    assert not [e for e in audit_rows(settings, seq) if e["entity"] == "statement"]


def test_signed_out_the_account_goes_to_sign_in(practice):
    import httpx

    with httpx.Client(base_url=practice.site.url, follow_redirects=False, timeout=30) as b:
        r = b.get("/account")
        assert r.status_code == 303 and r.headers["location"] == "/"


def test_a_guardian_sees_the_childs_account(practice, ctx_for, settings):
    from hpms.services.portal import proxies

    with ctx_for() as ctx:
        proxies.add(ctx, guardian=practice.alex, patient=practice.pat)
    with practice.browser(ALEX, practice.alex) as alex:
        r = alex.post("/switch", data={"csrf": _token(alex), "patient": str(practice.pat)})
        assert r.status_code == 303
        page = alex.get("/account")
        assert "Account of Pat Doe" in page.text and "You owe <strong>30.00</strong>" in page.text
        [sid] = _statement_ids(page.text)
        opened = alex.post("/statements/open", data={"csrf": _token(alex, "/account"), "statement": sid})
        assert opened.status_code == 200 and "Amount due: 30.00" in opened.text
    events = [(e["username"], e["entity"], e["patient_id"]) for e in audit_rows(settings) if e["action"] == "read"]
    # the guardian is named as who acted; each event names the patient whose records it read
    assert (f"patient:{practice.alex}", "statement", practice.pat) in events
