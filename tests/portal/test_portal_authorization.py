"""Every portal route that takes the id of something a patient owns, tried by another signed-in
patient with the first patient's ids: each answers 404 (the same as an id that does not exist),
shows none of the other patient's data, and changes nothing. The list of routes is checked
against the app's own routes, so a new route that takes an id must be added here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from tests.portal.live import Served, serve
from tests.portal.live import weekday as _weekday
from tests.portal.test_portal_booking import ALEX, PAT, Practice, _token
from tests.services import accounts
from tests.services.conftest import fixed_clock, payer, register  # noqa: F401 - fixtures
from tests.services.helpers import query
from tests.services.sched import book_one, clinic

# route -> the form field that names something of one patient's
ID_ROUTES = {
    "/visit/cancel": "appointment",
    "/visit/cancel/confirm": "appointment",
    "/visit/reschedule": "appointment",
    "/visit/reschedule/confirm": "appointment",
    "/statements/open": "statement",
    "/intake": "appointment",
    "/switch": "patient",
}
# POST routes that take no id of a patient's own records (sign-in, booking by type, links and
# surveys, whose signed token is the only key)
NO_ID = {"/", "/code", "/signout", "/book", "/book/search", "/register", "/v/cancel", "/v/reschedule"}
NO_ID |= {"/v/reschedule/confirm", "/s"}


@pytest.fixture(scope="module")
def site() -> Iterator[Served]:
    with serve() as served:
        yield served


@pytest.fixture
def practice(ctx_for, register, payer, settings, site, tmp_path):  # noqa: F811
    """Pat has a visit to come and a statement; Alex, signed in, has neither."""
    from hpms.services.payments import statements
    from hpms.services.people import patients

    c = clinic(ctx_for, register)
    with ctx_for() as ctx:
        patients.update(ctx, c.mrn, email=PAT[0], dob=PAT[1])
    accounts.visit(ctx_for, c.mrn, payer.id, dt.date(2026, 4, 1), paid="50.00", adjusted="20.00", to_patient="30.00")
    soon = book_one(ctx_for, c, f"{_weekday(5)} 10:00", when=lambda: dt.datetime.now(dt.UTC))
    with ctx_for(clock=lambda: fixed_clock() + dt.timedelta(days=2)) as ctx:
        out = tmp_path / "statements"
        out.mkdir()
        statements.generate(ctx, out=out, min_balance="0.01", older_than="0d", fmt="html")
    alex = register(first_name="Alex", last_name="Roe", dob=ALEX[1], email=ALEX[0])
    site.settings = settings
    try:
        yield Practice(site, settings, c.patient, alex.id, c.type, c.location), soon.id
    finally:
        site.settings = None


def test_the_list_covers_every_form_route():
    from hpms.portal.app import create_app

    app = create_app(lambda: None)  # type: ignore[arg-type, return-value]
    posts = {r.path for r in app.routes if "POST" in (getattr(r, "methods", None) or ())}
    posts -= {p for p in posts if p.startswith("/hooks/")}
    assert posts == set(ID_ROUTES) | NO_ID


def _written(settings) -> dict:
    tables = {t: query(settings, f"SELECT * FROM {t} ORDER BY id") for t in ("appointment", "intake_request")}
    # a session's last use moves with every request; whom it acts for must not
    return tables | {"acting_for": query(settings, "SELECT id, acting_for_id FROM portal_session ORDER BY id")}


def test_another_patients_ids_are_not_found_on_every_route(practice, settings):
    p, visit = practice
    [statement] = query(settings, "SELECT id FROM statement WHERE patient_id = :p", p=p.pat)
    ids = {"appointment": str(visit), "statement": str(statement["id"]), "patient": str(p.pat)}
    with p.browser(ALEX, p.alex) as alex:
        before = _written(settings)
        for route, field in ID_ROUTES.items():
            data = {"csrf": _token(alex), field: ids[field], "start": f"{_weekday(6)}T10:00", "reason": "Checkup"}
            r = alex.post(route, data=data)
            assert r.status_code == 404, (route, r.status_code, r.text[:300])
            assert "Doe" not in r.text, route
        assert _written(settings) == before
    with p.browser(PAT, p.pat) as pat:  # the same ids work for their owner
        r = pat.post("/visit/cancel", data={"csrf": _token(pat), "appointment": str(visit)})
        assert r.status_code == 200, r.text
        r = pat.post("/statements/open", data={"csrf": _token(pat, "/account"), "statement": str(statement["id"])})
        assert r.status_code == 200
