"""Signed links in messages: a token opens only for its purpose, until it expires, and not once
altered; reminders carry a visit's manage link only when the portal's public address is set;
completing a visit queues its survey with a survey link, inside the quiet hours and only on a
channel the patient agreed to."""

from __future__ import annotations

import dataclasses
import datetime as dt
from contextlib import contextmanager

import pytest

from tests.services.conftest import NOW, fixed_clock
from tests.services.helpers import query
from tests.services.sched import book_one, clinic

PORTAL = "https://portal.example.org"


@pytest.fixture
def ctx_with(settings):
    """ctx_with(clock=..., **settings changes) -> a Ctx in one committed transaction."""
    from hpms.db import get_engine, session_scope
    from hpms.services.platform.auth import os_login
    from hpms.services.platform.context import context_for

    @contextmanager
    def make(clock=fixed_clock, **changes):
        cfg = dataclasses.replace(settings, **changes)
        with session_scope(get_engine(cfg)) as session:
            yield context_for(session, cfg, os_login(), clock=clock)

    return make


def _at(when: dt.datetime):
    return lambda: when


def test_a_token_says_what_it_was_made_for_until_it_expires(ctx_with):
    from hpms.services.portal import links

    expires = NOW + dt.timedelta(hours=2)
    with ctx_with() as ctx:
        token = links.make(ctx, purpose=links.MANAGE, appointment_id=41, patient_id=7, expires_at=expires)
        assert all(c.isalnum() or c in "-_." for c in token) and len(token) < 80
        link = links.check(ctx, token, links.MANAGE)
    assert link == links.Link(links.MANAGE, 41, 7, expires.replace(microsecond=0))
    with ctx_with(clock=_at(expires - dt.timedelta(seconds=1))) as ctx:
        assert links.check(ctx, token, links.MANAGE) is not None
    with ctx_with(clock=_at(expires)) as ctx:
        assert links.check(ctx, token, links.MANAGE) is None


def test_a_token_for_another_purpose_or_altered_in_any_way_opens_nothing(ctx_with):
    import base64

    from hpms.services.portal import links

    with ctx_with() as ctx:
        token = links.make(
            ctx, purpose=links.SURVEY, appointment_id=41, patient_id=7, expires_at=NOW + dt.timedelta(days=1)
        )
        assert links.check(ctx, token, links.SURVEY) is not None
        assert links.check(ctx, token, links.MANAGE) is None
        body, mac = token.split(".")
        other_visit = base64.urlsafe_b64encode(b"s.42.7." + str(int(NOW.timestamp()) + 86400).encode()).decode()
        forged = [
            other_visit.rstrip("=") + "." + mac,  # another visit under the same signature
            body + "." + ("A" if mac[0] != "A" else "B") + mac[1:],  # a changed signature
            body,
            token + ".x",
            "",
            "%%%.%%%",
            "x" * 500,
        ]
        for bad in forged:
            assert links.check(ctx, bad, links.SURVEY) is None, bad
        assert links.check(ctx, None, links.SURVEY) is None


def test_urls_are_empty_without_the_portals_public_address(ctx_with):
    from hpms.services.portal import links

    with ctx_with() as ctx:
        assert links.manage_url(ctx, appointment_id=1, patient_id=2, start=NOW + dt.timedelta(days=1)) == ""
        assert links.survey_url(ctx, appointment_id=1, patient_id=2, sent_at=NOW) == ""
    with ctx_with(portal_public_url=PORTAL) as ctx:
        url = links.manage_url(ctx, appointment_id=1, patient_id=2, start=NOW + dt.timedelta(days=1))
        assert url.startswith(PORTAL + "/v/")
        found = links.check(ctx, url.rsplit("/", 1)[1], links.MANAGE)
        assert found is not None and found.expires_at == NOW + dt.timedelta(days=1)
        survey = links.survey_url(ctx, appointment_id=1, patient_id=2, sent_at=NOW)
        assert links.check(ctx, survey.rsplit("/", 1)[1], links.SURVEY).expires_at == NOW + dt.timedelta(days=30)


@pytest.fixture
def visit(ctx_for, register):
    from hpms.services.people import patients

    c = clinic(ctx_for, register)
    with ctx_for(clock=fixed_clock) as ctx:
        patients.update(ctx, c.mrn, email="pat@example.org", phone="212-555-0142", consent_email=True, consent_sms=True)
    return c


def _messages(settings, template: str) -> list[dict]:
    return query(
        settings,
        "SELECT channel, recipient, state, due_at, error, subject, body, appointment_id FROM message "
        "WHERE template = :t ORDER BY id",
        t=template,
    )


def test_a_reminder_carries_the_manage_link_only_with_the_public_address(ctx_for, ctx_with, visit, settings):
    from hpms.models import Appointment
    from hpms.services.messages import reminders
    from hpms.services.messages import templates as t
    from hpms.services.portal import links

    with ctx_for(clock=fixed_clock) as ctx:
        reminders.add_rule(ctx, hours_before=24, channel="email")
        t.set_template(ctx, "reminder", "email", body="See you {date}. Change it: {manage_link}", subject="Visit")
    appt = book_one(ctx_for, visit, "2026-06-22 10:00")  # queued without a public address
    with ctx_with(portal_public_url=PORTAL) as ctx:
        reminders.queue_for(ctx, ctx.session.get(Appointment, appt.id))
    without, with_link = _messages(settings, "reminder")
    assert without["state"] == "cancelled" and without["body"].endswith("Change it: ")
    assert with_link["state"] == "queued"
    url = with_link["body"].split("Change it: ")[1]
    assert url.startswith(PORTAL + "/v/")
    with ctx_with() as ctx:
        link = links.check(ctx, url.rsplit("/", 1)[1], links.MANAGE)
    assert link is not None and (link.appointment_id, link.patient_id) == (appt.id, visit.patient)
    assert link.expires_at == appt.start.astimezone(dt.UTC)


def _complete(ctx_with, appt_id: int, **changes) -> None:
    from hpms.services.scheduling import lifecycle

    with ctx_with(**changes) as ctx:
        lifecycle.transition(ctx, appt_id, "checkin")
        lifecycle.transition(ctx, appt_id, "complete")


def test_completing_a_visit_queues_its_survey_with_a_link_inside_the_quiet_hours(ctx_for, ctx_with, visit, settings):
    from hpms.services.portal import links

    appt = book_one(ctx_for, visit, "2026-06-15 11:00")  # today, 15:00 UTC
    _complete(ctx_with, appt.id, portal_public_url=PORTAL, survey_delay_hours=10)
    [msg] = _messages(settings, "survey")
    assert (msg["channel"], msg["recipient"], msg["state"]) == ("email", "pat@example.org", "queued")
    # 14:30 UTC + 10 h is 20:30 in New York: the last minute before the quiet hours, 19:59
    assert str(msg["due_at"]).startswith("2026-06-15 23:59")
    assert msg["subject"] == "How was your visit on Mon 15 Jun 2026?" and msg["appointment_id"] == appt.id
    url = msg["body"].split("\n\n")[2]
    assert url.startswith(PORTAL + "/s/")
    with ctx_with() as ctx:
        link = links.check(ctx, url.rsplit("/", 1)[1], links.SURVEY)
        assert links.check(ctx, url.rsplit("/", 1)[1], links.MANAGE) is None
    assert link is not None and (link.appointment_id, link.patient_id) == (appt.id, visit.patient)


def test_no_survey_without_consent_or_when_the_practice_sends_none(ctx_for, ctx_with, visit, settings):
    from hpms.services.people import patients

    first = book_one(ctx_for, visit, "2026-06-15 11:00")
    _complete(ctx_with, first.id, portal_public_url=PORTAL)  # no survey_delay_hours: off
    second = book_one(ctx_for, visit, "2026-06-15 12:00")
    _complete(ctx_with, second.id, survey_delay_hours=2)  # no public address: no link, no survey
    assert _messages(settings, "survey") == []
    with ctx_for(clock=fixed_clock) as ctx:
        patients.update(ctx, visit.mrn, consent_email=False, consent_sms=False)
    third = book_one(ctx_for, visit, "2026-06-15 13:00")
    _complete(ctx_with, third.id, portal_public_url=PORTAL, survey_delay_hours=2)
    [msg] = _messages(settings, "survey")
    assert (msg["state"], msg["error"], msg["body"]) == ("skipped", "the patient has not agreed to email", "")


def test_the_portal_address_and_survey_delay_settings(tmp_path):
    from hpms.config import load_settings
    from hpms.errors import UsageError

    default = load_settings(env={}, home=tmp_path)
    assert default.portal_public_url is None and default.survey_delay_hours is None
    got = load_settings(env={"HPMS_PORTAL_PUBLIC_URL": PORTAL + "/"}, home=tmp_path)
    assert got.portal_public_url == PORTAL and got.sources["portal_public_url"] == "HPMS_PORTAL_PUBLIC_URL"
    with pytest.raises(UsageError, match="portal_public_url: 'ftp://x' is not an http"):
        load_settings(env={"HPMS_PORTAL_PUBLIC_URL": "ftp://x"}, home=tmp_path)
    config = tmp_path / "config.toml"
    config.write_text("survey_delay_hours = 6\n", encoding="utf-8")
    assert load_settings(env={}, home=tmp_path).survey_delay_hours == 6
    config.write_text("survey_delay_hours = 800\n", encoding="utf-8")
    with pytest.raises(UsageError, match="survey_delay_hours: 800 is not from 0 to 720"):
        load_settings(env={}, home=tmp_path)
