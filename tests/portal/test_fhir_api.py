"""The FHIR read API over real HTTP (one uvicorn server on loopback) on a copy of the demo
clinic: bearer tokens (missing, unknown, expired, revoked: 401 with WWW-Authenticate; a role
that may not: 403), Patient read, Appointment and Slot searches as searchset Bundles, every
answer valid for the fhir.resources R4B models, every PHI read audited as the token."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import httpx
import pytest

from hpms.interop.fhir import writing as w
from tests.conftest import copy_demo
from tests.portal.live import Served, serve
from tests.services.helpers import audit_rows, last_seq, query


@pytest.fixture(scope="module")
def demo_settings(demo_template, tmp_path_factory):
    from hpms.config import load_settings
    from hpms.db import dispose_engines

    home = copy_demo(demo_template, tmp_path_factory.mktemp("fhir-api") / "demo-clinic")
    yield load_settings(env={}, home=home)
    dispose_engines()


@pytest.fixture(scope="module")
def site(demo_settings) -> Iterator[Served]:
    with serve() as served:
        served.settings = demo_settings
        yield served


def _as_admin(settings):
    from contextlib import contextmanager

    from hpms.db import get_engine, session_scope
    from hpms.services.platform.auth import os_login
    from hpms.services.platform.context import context_for

    @contextmanager
    def ctx():
        with session_scope(get_engine(settings)) as session:
            yield context_for(session, settings, os_login())

    return ctx()


def _token(settings, name: str, role: str) -> str:
    from hpms.services.interop import api_tokens

    with _as_admin(settings) as ctx:
        out = api_tokens.create_token(ctx, name=name, role=role)
    assert out.token and out.token.startswith("hpmsapi_")
    return out.token


@pytest.fixture(scope="module")
def tokens(demo_settings) -> dict[str, str]:
    return {role: _token(demo_settings, f"api-{role}", role) for role in ("provider", "auditor", "service")}


def _get(site: Served, path: str, token: str | None = None, **params) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(site.url + path, params=params, headers=headers, timeout=30)


def _fhir(r: httpx.Response, status: int = 200):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    return w.validate(r.json())


def test_metadata_needs_no_token(site):
    cap = _fhir(_get(site, "/fhir/metadata"))
    assert cap.fhirVersion == "4.3.0" and cap.implementation.url == site.url + "/fhir"
    served = {r.type: [i.code for i in r.interaction] for r in cap.rest[0].resource}
    assert served == {"Patient": ["read"], "Appointment": ["search-type"], "Slot": ["search-type"]}


def test_a_token_that_does_not_work_is_401(site, demo_settings, tokens):
    from hpms.services.interop import api_tokens

    expired = _token(demo_settings, "old", "provider")
    revoked = _token(demo_settings, "gone", "provider")
    with _as_admin(demo_settings) as ctx:
        rows = {t.name: t.id for t in api_tokens.list_tokens(ctx)}
        api_tokens.revoke_token(ctx, rows["gone"])
    import sqlalchemy as sa

    from hpms.db import get_engine

    with get_engine(demo_settings).begin() as conn:
        conn.execute(
            sa.text("UPDATE api_token SET expires_at = :t WHERE name = 'old'"),
            {"t": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)},
        )
    before = last_seq(demo_settings)
    for token in (None, "hpmsapi_nope", expired, revoked, tokens["provider"] + "x"):
        r = _get(site, "/fhir/Patient/1", token)
        outcome = _fhir(r, 401)
        assert r.headers["www-authenticate"].startswith("Bearer ")
        assert outcome.issue[0].code == "login" and "token" in outcome.issue[0].diagnostics
    r = httpx.get(site.url + "/fhir/Patient/1", headers={"Authorization": "Basic eDp5"}, timeout=30)
    assert r.status_code == 401
    assert last_seq(demo_settings) == before  # nothing was read
    with _as_admin(demo_settings) as ctx:
        states = {t.name: t.state for t in api_tokens.list_tokens(ctx)}
    assert states["old"] == "expired" and states["gone"] == "revoked"


def test_a_role_that_may_not_is_403(site, demo_settings, tokens):
    outcome = _fhir(_get(site, "/fhir/Patient/1", tokens["auditor"]), 403)
    assert outcome.issue[0].code == "forbidden" and "read patients" in outcome.issue[0].diagnostics
    _fhir(_get(site, "/fhir/Appointment", tokens["auditor"], patient="1"), 403)
    _fhir(_get(site, "/fhir/Patient/1", tokens["service"]), 403)  # the service role reads no patients
    denied = [e for e in audit_rows(demo_settings) if e["action"] == "denied" and e["username"] == "token:api-service"]
    assert [e["entity_id"] for e in denied] == ["patient.read"]


def test_read_a_patient(site, demo_settings, tokens):
    before = last_seq(demo_settings)
    patient = _fhir(_get(site, "/fhir/Patient/1", tokens["provider"]))
    assert patient.id == "1"
    assert [(i.system, i.value) for i in patient.identifier] == [(w.MRN_SYSTEM, "0100001")]  # never the SSN
    events = audit_rows(demo_settings, before)
    assert [(e["action"], e["entity"], e["patient_id"], e["username"], e["user_id"]) for e in events] == [
        ("read", "patient", 1, "token:api-provider", None)
    ]
    used = query(demo_settings, "SELECT last_used_at FROM api_token WHERE name = 'api-provider'")
    assert used[0]["last_used_at"] is not None
    for unknown in ("99999", "abc", "Patient-1"):
        outcome = _fhir(_get(site, f"/fhir/Patient/{unknown}", tokens["provider"]), 404)
        assert outcome.issue[0].code == "not-found"
    assert len(audit_rows(demo_settings, before)) == 1


def test_search_a_patients_appointments(site, demo_settings, tokens):
    rows = query(demo_settings, "SELECT id, start_utc FROM appointment WHERE patient_id = 1 ORDER BY start_utc, id")
    assert len(rows) >= 2
    before = last_seq(demo_settings)
    bundle = _fhir(_get(site, "/fhir/Appointment", tokens["provider"], patient="1"))
    assert bundle.type == "searchset" and bundle.total == len(rows)
    assert [e.resource.id for e in bundle.entry] == [str(r["id"]) for r in rows]
    assert all(e.search.mode == "match" for e in bundle.entry)
    assert bundle.entry[0].fullUrl == f"{site.url}/fhir/Appointment/{rows[0]['id']}"
    events = audit_rows(demo_settings, before)
    assert [(e["action"], e["entity"], e["patient_ids_list"], e["username"]) for e in events] == [
        ("read", "appointment", [1], "token:api-provider")
    ]
    start = rows[-1]["start_utc"]
    start = dt.datetime.fromisoformat(start) if isinstance(start, str) else start
    zone = query(demo_settings, "SELECT tz FROM location ORDER BY id")[0]["tz"]
    day = (start.replace(tzinfo=dt.UTC) if start.tzinfo is None else start).astimezone(ZoneInfo(zone)).date()
    one_day = _fhir(_get(site, "/fhir/Appointment", tokens["provider"], patient="Patient/1", date=day.isoformat()))
    assert str(rows[-1]["id"]) in [e.resource.id for e in one_day.entry] and one_day.total < len(rows) + 1
    later = _get(site, "/fhir/Appointment", tokens["provider"], patient="1", date=f"gt{day.isoformat()}")
    assert _fhir(later).total == 0
    window = httpx.get(
        site.url + "/fhir/Appointment",
        params=[("patient", "1"), ("date", "ge2000-01-01"), ("date", f"le{day.isoformat()}")],
        headers={"Authorization": f"Bearer {tokens['provider']}"},
        timeout=30,
    )
    assert _fhir(window).total == len(rows)
    bad = _fhir(_get(site, "/fhir/Appointment", tokens["provider"], patient="1", date="2026-02-30"), 400)
    assert bad.issue[0].code == "invalid" and bad.issue[0].diagnostics.startswith("date: ")
    _fhir(_get(site, "/fhir/Appointment", tokens["provider"], patient="99999"), 404)
    missing = _fhir(_get(site, "/fhir/Appointment", tokens["provider"]), 400)
    assert missing.issue[0].diagnostics == "patient: is required"


def test_search_a_schedules_slots(site, demo_settings, tokens):
    busy = query(
        demo_settings,
        "SELECT a.id, a.provider_id, a.location_id, a.start_utc, l.tz FROM appointment a"
        " JOIN location l ON l.id = a.location_id WHERE a.status IN ('booked', 'confirmed') ORDER BY a.id DESC",
    )[0]
    start = busy["start_utc"]
    start = dt.datetime.fromisoformat(start) if isinstance(start, str) else start
    day = (start.replace(tzinfo=dt.UTC) if start.tzinfo is None else start).astimezone(ZoneInfo(busy["tz"])).date()
    schedule = f"{busy['provider_id']}-{busy['location_id']}"
    before = last_seq(demo_settings)
    bundle = _fhir(_get(site, "/fhir/Slot", tokens["service"], schedule=schedule, start=day.isoformat()))
    slots = [e.resource for e in bundle.entry]
    assert {s.schedule.reference for s in slots} == {f"Schedule/{schedule}"}
    assert f"appointment-{busy['id']}" in {s.id for s in slots if s.status == "busy"}
    free = [s for s in slots if s.status == "free"]
    taken = [s for s in slots if s.status == "busy"]
    assert free, "a working day has open time"
    assert not [(f.id, b.id) for f in free for b in taken if f.start < b.end and b.start < f.end]
    assert [s.start for s in slots] == sorted(s.start for s in slots)
    assert last_seq(demo_settings) == before  # open and busy times name no patient
    assert _fhir(_get(site, "/fhir/Slot", tokens["service"], schedule="99-99", start=day.isoformat()), 404)
    no_day = _fhir(_get(site, "/fhir/Slot", tokens["service"], schedule=schedule), 400)
    assert no_day.issue[0].diagnostics == "start: is required"
    _fhir(_get(site, "/fhir/Slot", tokens["auditor"], schedule=schedule, start=day.isoformat()), 403)
